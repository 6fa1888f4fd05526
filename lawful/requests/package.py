"""The access and portability package: built, sealed at rest, fetched by a signed link.

`build_package` makes the zip a person receives: `data.json` (everything, structured),
one CSV per table of theirs (`csv/<dataset>/<table>.csv`) and per kind of lawful's own
records about them (`records/<name>.csv`), and `summary.html`, a readable page with the
information Art. 15 GDPR lists and the data. The same contents give the same bytes (fixed
timestamps and order), so the package can be hashed into the request's receipt.

`store_package` seals the zip with AES-GCM in `request_packages`, bound to the request's
ref, with the SHA-256 of the plaintext and an expiry. The person fetches it through a
signed link (`link_token`, checked by `check_link`); `open_package` decrypts it, verifies
the hash and records the first download; `purge_expired` deletes the content of every
expired package in one statement, leaving the row as proof of what was delivered when.

The link token travels in clear (mail, browser history, proxies), so it holds only the
request's ref and the expiry, signed with HMAC-SHA256 under `keyring.derive("package-links")`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, PackageLoader, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from lawful.datasets.access import DatasetAccess, plain
from lawful.requests.tables import request_packages, requests
from lawful.subjects import tokens
from lawful.subjects.keyring import Keyring, KeyringError

__all__ = [
    "DEFAULT_WINDOW",
    "KINDS",
    "LINK_KEY_PURPOSE",
    "LinkRejected",
    "PackageContents",
    "PackageError",
    "PackageLink",
    "PackageUnavailable",
    "build_package",
    "check_link",
    "link_token",
    "open_package",
    "purge_expired",
    "store_package",
]

FORMAT = "lawful.package"
FORMAT_VERSION = 1
KINDS = ("access", "portability")
DEFAULT_WINDOW = timedelta(days=7)
LINK_KEY_PURPOSE = "package-links"
LINK_VERSION = 1
MAX_TOKEN_CHARS = 512  # a real token is about 120 characters
MAX_PACKAGE_BYTES = 2**31 - 1  # request_packages.size is a 32-bit integer

# Names that become paths in the zip: no separators, no leading dot, nothing to escape.
_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
_REF = re.compile(r"[A-Za-z0-9_-]{1,32}")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class PackageError(Exception):
    """A package can't be built, stored or delivered; the message says why and what to do."""


class LinkRejected(PackageError):
    """A download link that can't be honoured. `reason`: malformed, signature or expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PackageUnavailable(PackageError):
    """A valid link whose package can't be given. `reason`: missing, expired, deleted, corrupt."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class PackageContents:
    """Everything a package holds about one person, for one request."""

    controller: str  # the controller's name, as the person knows it
    request_ref: str
    kind: str  # "access" or "portability"
    generated_at: datetime
    datasets: list[DatasetAccess]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # lawful's own
    information: dict[str, Any] = field(default_factory=dict)  # from art15_information


@dataclass(frozen=True)
class PackageLink:
    token: str
    expires_at: datetime


# --- the zip ------------------------------------------------------------------------------


def build_package(contents: PackageContents) -> bytes:
    """The zip: data.json, summary.html, csv/<dataset>/<table>.csv and records/<name>.csv."""
    generated_at = _check_contents(contents)
    files: dict[str, bytes] = {}
    # Each value as text once (the CSV files and the summary show the same text).
    tables: list[tuple[str, str, list[str], list[list[str]]]] = []
    for dataset in contents.datasets:
        for table in dataset.tables:
            columns = list(table.columns)
            rows = [[_cell(r["data"].get(c)) for c in columns] for r in table.rows]
            path = f"csv/{_part(dataset.dataset, 'dataset')}/{_part(table.table, 'table')}.csv"
            tables.append((path, f"{dataset.dataset} / {table.table}", columns, rows))
    records: list[tuple[str, str, list[str], list[list[str]]]] = []
    for name, rows_of in contents.records.items():
        columns = _columns(rows_of)
        rows = [[_cell(row.get(c)) for c in columns] for row in rows_of]
        records.append((f"records/{_part(name, 'record kind')}.csv", name, columns, rows))

    csv_paths = [path for path, *_ in (*tables, *records)]
    if len(set(csv_paths)) != len(csv_paths):
        repeated = sorted({p for p in csv_paths if csv_paths.count(p) > 1})
        raise PackageError(
            f"two tables would be written to the same file ({', '.join(repeated)}); "
            "give each dataset a distinct key"
        )
    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "controller": contents.controller,
        "request": {"ref": contents.request_ref, "kind": contents.kind},
        "generated_at": generated_at.isoformat(),
        "information": contents.information,
        "datasets": [d.to_dict() for d in contents.datasets],
        "records": {
            name: [{str(k): _plain(v) for k, v in row.items()} for row in rows]
            for name, rows in contents.records.items()
        },
        "files": csv_paths,
    }
    # One line, no indentation: json's C encoder only runs without `indent`, and for a
    # person with many rows the indented form took most of the package's build time. The
    # human-readable view is summary.html.
    files["data.json"] = (json.dumps(document, ensure_ascii=False, default=str) + "\n").encode(
        "utf-8"
    )
    files["summary.html"] = _summary(contents, generated_at, tables, records).encode("utf-8")
    for path, _, columns, rows in (*tables, *records):
        files[path] = _csv(columns, rows)
    return _zip(files, generated_at)


def _check_contents(contents: PackageContents) -> datetime:
    if not isinstance(contents, PackageContents):
        raise TypeError(f"build_package takes PackageContents, got {type(contents).__name__}")
    if contents.kind not in KINDS:
        raise PackageError(
            f"a package is for an access or portability request, not {contents.kind!r}; "
            f"use one of {', '.join(KINDS)}"
        )
    if not isinstance(contents.request_ref, str) or not _REF.fullmatch(contents.request_ref):
        raise PackageError(
            "request_ref must be the request's public ref (up to 32 letters, digits, '_' or '-')"
        )
    for dataset in contents.datasets:
        if not isinstance(dataset, DatasetAccess):
            raise TypeError(
                f"datasets must hold DatasetAccess (from Datasets.access), got "
                f"{type(dataset).__name__}"
            )
    for name, rows in contents.records.items():
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise TypeError(f"records[{name!r}] must be a list of dicts, one per record")
    return tokens.utc(contents.generated_at, "generated_at")


def _part(name: str, what: str) -> str:
    if not isinstance(name, str) or not _PATH_PART.fullmatch(name):
        raise PackageError(
            f"the {what} name {name!r} can't be a file name in the package: use letters, "
            "digits, '_', '.' or '-', not starting with '.'"
        )
    return name


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every key of the rows, in the order first seen (records of one kind may differ)."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(str(key), None)
    return list(seen)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return plain(value)


def _cell(value: Any) -> str:
    """A value as CSV text: empty for null, JSON for lists and objects, ISO for dates."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def _csv(columns: list[str], rows: list[list[str]]) -> bytes:
    """The rows (values already as text, `_cell`) as RFC 4180 CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _cells_html(row: list[str]) -> Markup:
    """A row's cells as escaped `<td>` elements: built here, not cell by cell in the
    template, where a person with thousands of rows made the summary slow to render."""
    return Markup("".join([f"<td>{escape(cell)}</td>" for cell in row]))


def _zip(files: dict[str, bytes], generated_at: datetime) -> bytes:
    """The files zipped with fixed metadata, so the same files give the same bytes."""
    stamp = generated_at.timetuple()[:6]
    stamp = max(_ZIP_EPOCH, min(stamp, (2107, 12, 31, 23, 59, 58)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever machine builds it
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


# --- the summary page ---------------------------------------------------------------------


BASIS_TEXT = {
    "consent": "your consent",
    "contract": "a contract with you, or steps you asked for before one",
    "legal_obligation": "a legal obligation we must comply with",
    "vital_interests": "to protect your or another person's vital interests",
    "public_interest": "a task in the public interest",
    "legitimate_interests": "our legitimate interests",
}
RIGHT_TEXT = {
    "confirm": "confirm whether we hold data about you",
    "access": "give you a copy of your data (like this one)",
    "portability": "give you your data in a machine-readable form, or send it to another service",
    "rectification": "correct inaccurate data",
    "erasure": "erase your data",
    "account_closure": "close your account",
    "restriction": "restrict how we use your data",
    "objection": "stop using your data for a purpose based on our legitimate interests, "
    "and for direct marketing at any time",
    "withdraw_consent": "withdraw your consent at any time, without affecting what was done before",
    "opt_out_sale": "stop selling or sharing your personal information",
    "restrict_recipients": "stop sharing your data with recipients you name",
    "explain_decision": "explain an automated decision about you, and have a person review it",
    "information": "tell you how we process your data",
}
SAFEGUARD_TEXT = {
    "adequacy": "an adequacy decision",
    "scc": "standard contractual clauses",
    "bcr": "binding corporate rules",
    "dpf": "the EU-U.S. Data Privacy Framework",
    "contract": "a contract",
    "consent": "your consent",
    "separate_consent": "your separate consent",
    "security_assessment": "a security assessment",
    "certification": "a certification",
    "standard_contract": "a standard contract",
    "derogation": "a derogation for a specific situation (GDPR Art. 49)",
    "deidentification": "de-identification before the transfer",
}


@pass_context
def _category_name(context: Context, key: str) -> str:
    return str(context["category_names"].get(key, key))


@cache
def _templates() -> Environment:
    # Autoescape everything: names, addresses and free text in the data are untrusted.
    env = Environment(
        loader=PackageLoader("lawful.requests", "templates"),
        autoescape=True,
        # The information may come partial (a caller's own dict): a missing key shows nothing.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["category_name"] = _category_name
    env.filters["country"] = lambda code: "anywhere" if code == "*" else code
    env.filters["safeguard"] = lambda name: SAFEGUARD_TEXT.get(name, name)
    env.globals.update(basis_text=BASIS_TEXT, right_text=RIGHT_TEXT)
    return env


def _summary(
    contents: PackageContents,
    generated_at: datetime,
    tables: list[tuple[str, str, list[str], list[list[str]]]],
    records: list[tuple[str, str, list[str], list[list[str]]]],
) -> str:
    information = contents.information
    names = {c["key"]: c["name"] for c in information.get("categories", []) if "key" in c}
    shown_tables = []
    index = 0
    for dataset in contents.datasets:
        for table in dataset.tables:
            path, title, columns, rows = tables[index]
            index += 1
            shown_tables.append(
                {
                    "id": f"t{index}",
                    "title": title,
                    "description": table.description,
                    "file": path,
                    "columns": [
                        {"name": c, "category": names.get(table.columns[c], table.columns[c])}
                        for c in columns
                    ],
                    "roles": [r["role"] for r in table.rows],
                    "rows": [_cells_html(row) for row in rows],
                }
            )
    shown_records = [
        {
            "id": f"r{n}",
            "title": title,
            "file": path,
            "columns": columns,
            "rows": [_cells_html(row) for row in rows],
        }
        for n, (path, title, columns, rows) in enumerate(records, 1)
    ]
    return (
        _templates()
        .get_template("package.html")
        .render(
            controller=contents.controller,
            request_ref=contents.request_ref,
            kind=contents.kind,
            generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
            info=information,
            tables=shown_tables,
            records=shown_records,
            row_count=sum(len(t["rows"]) for t in shown_tables),
            category_names=names,
        )
    )


# --- sealed at rest -----------------------------------------------------------------------


def store_package(
    conn: Connection,
    keyring: Keyring,
    *,
    request_id: int,
    request_ref: str,
    data: bytes,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> PackageLink:
    """Seal `data` (the zip) for the request and return its download link.

    Idempotent per request: when the request already has a package, nothing is replaced
    and its existing link is returned (a retried job step must not change what was
    delivered, nor the hash its receipt names).
    """
    now = tokens.utc(now, "now")
    if not isinstance(window, timedelta) or window <= timedelta(0):
        raise PackageError(f"the download window must be a positive timedelta, got {window!r}")
    if not isinstance(data, bytes | bytearray) or not data:
        raise PackageError("data must be the package's bytes (from build_package), not empty")
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageError(
            f"the package is {len(data):,} bytes; at most {MAX_PACKAGE_BYTES:,} can be stored"
        )
    _check_ref(request_ref)
    existing = _existing(conn, request_id, request_ref)
    if existing is not None:
        return PackageLink(link_token(keyring, request_ref, existing), existing)

    # Whole seconds: the link carries the expiry as unix seconds, and both must agree.
    expires_at = (now + window).replace(microsecond=0)
    key_id, sealed = keyring.encrypt_bytes(bytes(data), context=_context(request_ref))
    values = {
        "request_id": request_id,
        "content": sealed,
        "key_id": key_id,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "created_at": now,
        "expires_at": expires_at,
    }
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        # A concurrent call for the same request may have won: keep its package.
        module = postgresql if dialect == "postgresql" else sqlite
        insert = module.insert(request_packages).on_conflict_do_nothing(
            index_elements=["request_id"]
        )
        if conn.execute(insert, values).rowcount == 0:
            existing = _existing(conn, request_id, request_ref)
            assert existing is not None, "a conflicting package row is there"
            return PackageLink(link_token(keyring, request_ref, existing), existing)
    else:
        conn.execute(sa.insert(request_packages), values)
    return PackageLink(link_token(keyring, request_ref, expires_at), expires_at)


def _existing(conn: Connection, request_id: int, request_ref: str) -> datetime | None:
    """The expiry of the request's package, if it has one; checks the request and its ref."""
    row = conn.execute(
        sa.select(requests.c.ref, request_packages.c.expires_at)
        .select_from(
            requests.outerjoin(request_packages, request_packages.c.request_id == requests.c.id)
        )
        .where(requests.c.id == request_id)
    ).first()
    if row is None:
        raise PackageError(
            f"there is no request with id {request_id}; a package belongs to a stored request"
        )
    if row.ref != request_ref:
        raise PackageError(
            f"request {request_id} has another ref than the one given; pass the request's "
            "own ref (the package is sealed to it)"
        )
    return row.expires_at


def open_package(conn: Connection, keyring: Keyring, token: str, now: datetime) -> bytes:
    """The zip behind a download link, checked against its hash; the first download is noted.

    Raises LinkRejected for a bad link and PackageUnavailable when the package is gone,
    expired or does not match what was stored.
    """
    now = tokens.utc(now, "now")
    ref = check_link(keyring, token, now)
    p = request_packages
    row = conn.execute(
        sa.select(
            p.c.id,
            p.c.content,
            p.c.key_id,
            p.c.sha256,
            p.c.expires_at,
            p.c.downloaded_at,
            p.c.deleted_at,
        )
        .select_from(p.join(requests, requests.c.id == p.c.request_id))
        .where(requests.c.ref == ref)
    ).first()
    if row is None:
        raise PackageUnavailable(
            "missing", f"no package has been prepared for request {ref}; it may still be running"
        )
    if row.deleted_at is not None or row.content is None:
        when = _when(row.deleted_at) if row.deleted_at is not None else "already"
        raise PackageUnavailable(
            "deleted",
            f"the package of request {ref} was deleted ({when}) at the end of its download "
            "window; make a new access request to receive your data again",
        )
    if now >= row.expires_at:
        raise PackageUnavailable(
            "expired",
            f"the package of request {ref} could be downloaded until {_when(row.expires_at)}; "
            "make a new access request to receive your data again",
        )
    try:
        data = keyring.decrypt_bytes(row.key_id, row.content, context=_context(ref))
    except KeyringError as exc:
        raise PackageUnavailable(
            "corrupt", f"the package of request {ref} can't be opened: {exc}"
        ) from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise PackageUnavailable(
            "corrupt",
            f"the package of request {ref} does not match the hash recorded when it was "
            "stored; it was not delivered (report this to the controller)",
        )
    if row.downloaded_at is None:
        conn.execute(
            sa.update(p)
            .where(p.c.id == row.id, p.c.downloaded_at.is_(None))
            .values(downloaded_at=now)
        )
    return data


def purge_expired(conn: Connection, now: datetime) -> int:
    """Delete the content of every expired package (one statement); the rows stay as proof."""
    now = tokens.utc(now, "now")
    p = request_packages
    result = conn.execute(
        sa.update(p)
        .where(p.c.expires_at <= now, p.c.deleted_at.is_(None))
        .values(content=None, deleted_at=now)
    )
    return result.rowcount


def _context(request_ref: str) -> bytes:
    # Binds the ciphertext to its request: a package copied to another row won't open.
    return f"request-package:{request_ref}".encode()


# --- signed links -------------------------------------------------------------------------


def link_token(keyring: Keyring, request_ref: str, expires_at: datetime) -> str:
    """A URL-safe token that lets its holder download the request's package until `expires_at`."""
    _check_ref(request_ref)
    expires = tokens.utc(expires_at, "expires_at")
    payload = {"v": LINK_VERSION, "r": request_ref, "e": int(expires.timestamp())}
    return tokens.sign(keyring.derive(LINK_KEY_PURPOSE), payload)


def check_link(keyring: Keyring, token: str, now: datetime) -> str:
    """The request ref a download token is for; raises LinkRejected saying what is wrong."""
    now = tokens.utc(now, "now")

    def malformed(why: str) -> LinkRejected:
        return LinkRejected("malformed", f"the download link is malformed: {why}")

    payload = tokens.open_signed(
        keyring.derive(LINK_KEY_PURPOSE),
        token,
        max_chars=MAX_TOKEN_CHARS,
        malformed=malformed,
        forged=lambda: LinkRejected(
            "signature", "the download link was altered or signed with another key"
        ),
        hint="; check it was copied whole",
    )
    if payload.get("v") != LINK_VERSION:
        raise malformed(f"unknown version (this lawful reads version {LINK_VERSION})")
    ref, stamp = payload.get("r"), payload.get("e")
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        raise malformed("its request ref ('r') is missing or not a ref")
    if type(stamp) is not int:
        raise malformed("its expiry ('e') is missing or not whole unix seconds")
    try:
        expires_at = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise malformed("its expiry ('e') is out of range") from None
    if now >= expires_at:
        raise LinkRejected(
            "expired",
            f"the download link expired at {_when(expires_at)}; make a new access request "
            "to receive your data again",
        )
    return ref


# --- helpers ------------------------------------------------------------------------------


def _check_ref(ref: object) -> None:
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        raise PackageError(
            "request_ref must be the request's public ref (up to 32 letters, digits, '_' or '-')"
        )


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
