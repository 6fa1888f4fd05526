"""The dataset annotation language: where a company's personal data lives in one database.

One YAML file per application database says how to connect to it (never with a
password in the file), which columns are entry points for an identity, how every other
row reaches a subject (`owners`: links over foreign keys, link tables, values), the data
category of each column and what erasure does to it. `docs/datasets.md` is the
reference; keep the two in step. Field descriptions double as hints in errors.

The models check each table on its own; what needs the whole file (a link naming an
undeclared table) is checked in `lawful.datasets.checks`, what needs the policy or the
live database there too.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator
from sqlalchemy.engine import make_url

from lawful.policy.model import CategoryKey, Flag, Model, Name
from lawful.policy.vocabulary import checked, choice, describe, fail, unknown
from lawful.subjects import IdentityKind

LANGUAGE_VERSION = 1

# Table and column names as the database spells them: letters, digits, _ and $, not
# starting with a digit (quoted identifiers with spaces are rare enough to refuse).
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")
Identifier = checked(
    _IDENT.match,
    "'{value}' is not a table or column name: letters, digits, '_' or '$', not starting "
    "with a digit",
)
_CLOCK = re.compile(r"^([A-Za-z_][A-Za-z0-9_$]{0,127}\.){0,4}[A-Za-z_][A-Za-z0-9_$]{0,127}$")
ClockColumn = checked(
    _CLOCK.match,
    "'{value}' is not a column: write a column of this table (at), or table.column of a "
    "table this one is linked to by an owner link (orders.placed_at; a longer path of "
    "linked tables ends with the column: support_tickets.customers.last_login_at)",
)
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EnvName = checked(
    _ENV.match, "'{value}' is not an environment variable name (e.g. SHOP_DATABASE_URL)"
)


class Role(StrEnum):
    """How a row linked to a subject's row relates to the subject."""

    owner = "owner"  # the row is the subject's: access returns it, erasure erases it
    accessor = "accessor"  # the subject may see it (a thread, a share): access only
    refers = "refers"  # someone else's row that points at the subject: erasure unlinks it


class Match(StrEnum):
    """How an identity column is compared with a normalised identity."""

    exact = "exact"  # the column holds the normalised form (uses its index)
    casefold = "casefold"  # compare lower-cased: emails typed in any case
    phone = "phone"  # ignore spaces, dashes, dots and parentheses: '+44 20 7946 0958'


class Release(StrEnum):
    """What a shared row undergoes when one of its owners erases and others remain."""

    unlink = "unlink"  # set this link's columns to NULL
    keep = "keep"  # leave the row as it is (it points at the eraser's anonymised row)


class TableErase(StrEnum):
    delete = "delete"
    anonymize = "anonymize"
    keep = "keep"


class Generalize(StrEnum):
    year = "year"  # a date or time → 1 January of its year
    month = "month"  # → the first of its month
    ip = "ip"  # an IPv4 address → its /24 (a.b.c.0), IPv6 → its /48


class ColumnErase(StrEnum):
    """Word forms of a column's erasure action (the others are mappings: fixed, ...)."""

    null = "null"
    hash = "hash"
    keep = "keep"
    delete = "delete"


class Mask(Model):
    """A column's erasure action written as a mapping: one of fixed, generalize, truncate."""

    fixed: str | int | float | None = Field(
        None, description="replace the value with this one, e.g. 'erased'"
    )
    generalize: choice(Generalize, "a generalisation") | None = Field(
        None, description="year or month (dates), ip (addresses → /24 or /48)"
    )
    truncate: Annotated[int, Field(ge=1)] | None = Field(
        None, description="keep this many leading characters, e.g. 2 of a postal code"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Mask:
        given = [
            name for name in ("fixed", "generalize", "truncate") if name in self.model_fields_set
        ]
        if len(given) != 1:
            raise fail(
                "write exactly one of fixed (a value), generalize (year, month, ip) or "
                f"truncate (a length); got {', '.join(given) or 'none'}"
            )
        return self


def _column_erase(value: object) -> object:
    if value is None or isinstance(value, dict | Mask | ColumnErase):
        return value
    if isinstance(value, str) and value in ColumnErase.__members__:
        return ColumnErase(value)
    if value == "nullify":
        return ColumnErase.null
    words = [*ColumnErase.__members__, "{fixed: ...}", "{generalize: ...}", "{truncate: ...}"]
    raise fail(unknown(value, "a column's erasure action", words))


ColumnAction = Annotated[
    Annotated[
        Annotated[ColumnErase, Tag("<word>")] | Annotated[Mask, Tag("<mapping>")],
        Discriminator(lambda v: "<mapping>" if isinstance(v, dict | Mask) else "<word>"),
    ]
    | None,
    BeforeValidator(_column_erase),
]


class Column(Model):
    category: CategoryKey | None = Field(
        None, description="the fideslang data category, e.g. user.contact.email"
    )
    erase: ColumnAction = Field(
        None,
        description="null, hash, keep, delete, {fixed: value}, {generalize: year|month|ip} "
        "or {truncate: n}",
    )
    reason: str | None = Field(None, description="why the value is kept, in words")
    rule: Name | None = Field(None, description="the policy's retention rule that keeps it")
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `email: user.contact.email` is short for `email: {category: user.contact.email}`.
        return {"category": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _explicit_null(self) -> Column:
        # `erase: null` is written as YAML null: it means "set NULL", not "no action".
        if self.erase is None and "erase" in self.model_fields_set:
            object.__setattr__(self, "erase", ColumnErase.null)
        if self.erase is ColumnErase.keep and not self.reason:
            raise fail("a kept column needs a reason: why erasure must leave it (and a rule)")
        if self.rule and self.erase is not ColumnErase.keep:
            raise fail("rule goes with erase: keep (the retention rule that keeps the value)")
        return self


class Identity(Model):
    kind: choice(IdentityKind, "a kind of identity") = Field(
        description="email, phone, account, device or customer"
    )
    match: choice(Match, "a way to match") | None = Field(
        None, description="exact, casefold (default for emails) or phone (default for phones)"
    )
    expands: Flag = Field(
        True, description="values found here are searched for too (a phone leads to its email)"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @property
    def matching(self) -> Match:
        if self.match is not None:
            return self.match
        if self.kind is IdentityKind.email:
            return Match.casefold
        if self.kind is IdentityKind.phone:
            return Match.phone
        return Match.exact


class Link(Model):
    """How this table's rows reach a subject: through rows of another annotated table."""

    table: Identifier = Field(description="the annotated table this one is linked to")
    on: dict[Identifier, Identifier] = Field(
        description="this table's column: that table's column, e.g. {customer_id: id}"
    )
    role: choice(Role, "a role") = Field(
        Role.owner, description="owner (the rows are the subject's), accessor or refers"
    )
    release: choice(Release, "a release action") | None = Field(
        None,
        description="when the row has other owners: unlink (set these columns NULL) or keep",
    )

    @field_validator("on")
    @classmethod
    def _some(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise fail("name the columns that link the tables, e.g. {customer_id: id}")
        return value


class RetentionUse(Model):
    """Where one of the policy's retention rules applies in a table, and its clock."""

    rule: Name = Field(
        description="the policy's retention rule: a name under retention, or a purpose's "
        "inline rule by the purpose's name"
    )
    from_: ClockColumn = Field(
        alias="from",
        description="the date or time column the period is counted from: a column of "
        "this table (at), or of a table it is linked to by owner links (orders.placed_at)",
    )

    @property
    def path(self) -> tuple[str, ...]:
        """The linked tables the clock is reached through, nearest first (may be empty)."""
        return tuple(self.from_.split(".")[:-1])

    @property
    def column(self) -> str:
        """The clock column, in the last table of `path` (or in this table)."""
        return self.from_.split(".")[-1]


class Table(Model):
    description: str | None = None
    subject: Name | None = Field(
        None, description="the policy's subject kind whose rows these are, e.g. customer"
    )
    primary_key: (
        Annotated[list[Identifier], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]
        | None
    ) = Field(None, description="the columns that identify a row (default: the database's key)")
    identities: dict[Identifier, Identity] = Field(
        {}, description="columns holding an identity, e.g. {email: email}"
    )
    owners: list[Link] = Field(
        [], description="links to the tables whose rows this table's rows belong to"
    )
    erase: choice(TableErase, "a table's erasure action") = Field(
        TableErase.delete,
        description="delete (the default), anonymize (apply the columns') or keep",
    )
    reason: str | None = Field(None, description="why the rows are kept, when erase is keep")
    rule: Name | None = Field(None, description="the policy's retention rule that keeps them")
    columns: dict[Identifier, Column] = Field(
        {}, description="the columns holding personal data, each with its category"
    )
    retention: list[RetentionUse] = Field(
        [],
        description="the retention rules that apply to the rows, each with the column its "
        "period is counted from, e.g. [{rule: customer_records, from: last_login_at}]",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Table:
        if self.erase is TableErase.keep and not self.reason:
            raise fail("kept rows need a reason: why erasure must leave them (and a rule)")
        if self.rule and self.erase is not TableErase.keep:
            raise fail("rule goes with erase: keep (the retention rule that keeps the rows)")
        if not self.identities and not self.owners:
            raise fail(
                "say how rows reach a subject: identities (columns holding an email, phone, "
                "id...) or owners (links to other tables)"
            )
        return self

    @property
    def deletes(self) -> bool:
        """Whether erasing the subject's rows deletes them (table or a column says so)."""
        return self.erase is TableErase.delete or any(
            c.erase is ColumnErase.delete for c in self.columns.values()
        )


class Connection(Model):
    url: str | None = Field(
        None, description="the database URL without a password, e.g. sqlite:///shop.db"
    )
    url_env: EnvName | None = Field(
        None, description="the environment variable holding the URL (with its password)"
    )
    schema_: Identifier | None = Field(
        None, alias="schema", description="the database schema, e.g. public (default: the default)"
    )

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parsed = make_url(value)
        except Exception:
            raise fail(
                "malformed database URL: write it like postgresql://user@host:5432/dbname "
                "or sqlite:///shop.db"
            ) from None
        if parsed.password:
            raise fail(
                "a password does not belong in a dataset file: put the whole URL in an "
                "environment variable and name it with url_env"
            )
        return value

    @model_validator(mode="after")
    def _one(self) -> Connection:
        if (self.url is None) == (self.url_env is None):
            raise fail(
                "give the database as url (without a password) or url_env (the name of an "
                "environment variable holding the URL), exactly one of them"
            )
        return self


def _check_version(value: object) -> object:
    if value == LANGUAGE_VERSION and not isinstance(value, bool):
        return value
    raise fail(
        f"this lawful reads dataset files written for version {LANGUAGE_VERSION}; "
        f"got {describe(value)} (write lawful: {LANGUAGE_VERSION})"
    )


class Dataset(Model):
    lawful: Annotated[int, BeforeValidator(_check_version)] = Field(
        description=f"the annotation language version: {LANGUAGE_VERSION}"
    )
    dataset: Name = Field(description="a short name for this database, e.g. shop")
    description: str | None = None
    connection: Connection = Field(description="how to reach the database: url or url_env")
    tables: dict[Identifier, Table] = Field(
        description="the tables holding personal data, each with how its rows reach a subject"
    )

    @field_validator("tables")
    @classmethod
    def _some(cls, value: dict[str, Table]) -> dict[str, Table]:
        if not value:
            raise fail("annotate at least one table")
        return value

    @property
    def key(self) -> str:
        return self.dataset
