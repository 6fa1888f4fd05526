"""What `lawful scan` reads of a live database, and what it concludes column by column.

The tables (SQLAlchemy reflection): columns with their types, keys, unique columns and
declared foreign keys, plus the links the database does not declare, guessed from column
names (`customer_id`, `CustomerId`, `customerid` → customers). At most `sample` rows per
table are read, one query per table, and reduced at once to what the values look like
(`lawful.datasets.recognise.Values`): the values themselves are not kept.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from lawful.datasets.recognise import (
    NO_VALUES,
    UNKNOWN,
    Guess,
    TableContext,
    Values,
    address_context,
    family,
    guess_column,
    intrinsic,
    is_lookup_named,
    person_table,
    singular,
    summarise,
    table_words,
    words,
)

# Names an annotation can hold (lawful.datasets.model.Identifier).
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")


@dataclass
class ColumnInfo:
    """A column: its type family and constraints, its values' shape, and what it holds."""

    name: str
    kind: str  # text, number, time, bool, bytes, other
    nullable: bool
    length: int | None
    unique: bool
    odd: str | None = None  # a type no fixed value fits: enum, time of day
    values: Values = NO_VALUES
    guess: Guess = UNKNOWN
    note: str | None = None  # a conclusion worth a comment


@dataclass
class TableInfo:
    """A table as reflected, its key (guessed when none is declared) and its columns."""

    name: str
    columns: dict[str, ColumnInfo]
    key: tuple[str, ...]
    key_note: str | None  # set when the database declares no primary key
    ctx: TableContext | None = None

    @property
    def intrinsic(self) -> bool:
        """Holds personal data on its own (a name, an email...), whatever it belongs to."""
        return any(intrinsic(c.guess.category) for c in self.columns.values())

    def identity_columns(self, kind: str) -> list[str]:
        return [c.name for c in self.columns.values() if c.guess.identity == kind]


@dataclass(frozen=True)
class Edge:
    """child.child_cols → parent.parent_cols: a declared foreign key, or a guess from names."""

    child: str
    child_cols: tuple[str, ...]
    parent: str
    parent_cols: tuple[str, ...]
    declared: bool


@dataclass
class Schema:
    """Everything read: the tables, and the links between them (declared or guessed)."""

    tables: dict[str, TableInfo]
    edges: list[Edge]
    skipped: list[str]  # tables whose names an annotation can't hold


def read_schema(conn: Connection, schema: str | None, sample: int) -> Schema:
    """Reflect the schema's tables (views left out), sample them, and link them."""
    inspector = sa.inspect(conn)
    names = sorted(inspector.get_table_names(schema=schema))
    usable = [n for n in names if IDENT.match(n)]
    skipped = [n for n in names if not IDENT.match(n)]
    metadata = sa.MetaData(schema=schema)
    with warnings.catch_warnings():  # types SQLAlchemy does not know are read as NullType
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        metadata.reflect(conn, only=usable, resolve_fks=False, views=False)
    reflected = {n: metadata.tables[f"{schema}.{n}" if schema else n] for n in usable}
    uniques = _unique_sets(inspector, schema, reflected)
    tables: dict[str, TableInfo] = {}
    for name, table in reflected.items():
        info = _table_info(name, table, uniques.get(name, []))
        _sample(conn, table, info, sample)
        tables[name] = info
    for info in tables.values():
        _recognise(info)
    edges = _declared_edges(inspector, schema, tables)
    edges += _candidate_edges(tables, edges)
    return Schema(tables, edges, skipped)


def _unique_sets(
    inspector: Any, schema: str | None, reflected: dict[str, sa.Table]
) -> dict[str, list[frozenset[str]]]:
    out: dict[str, list[frozenset[str]]] = {n: [] for n in reflected}
    try:
        for (_, name), items in inspector.get_multi_unique_constraints(schema=schema).items():
            if name in out:
                out[name] += [frozenset(u["column_names"]) for u in items if u["column_names"]]
    except NotImplementedError:
        pass
    for (_, name), items in inspector.get_multi_indexes(schema=schema).items():
        if name in out:
            out[name] += [
                frozenset(ix["column_names"])
                for ix in items
                if ix.get("unique") and ix["column_names"] and all(ix["column_names"])
            ]
    return out


def _python_type(column: sa.Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _odd_type(column: sa.Column[Any]) -> str | None:
    if isinstance(column.type, sa.Enum):
        return "an enumeration"
    if _python_type(column) is dt.time:
        return "a time of day"
    return None


def _table_info(name: str, table: sa.Table, uniques: list[frozenset[str]]) -> TableInfo:
    single = {next(iter(u)) for u in uniques if len(u) == 1}
    pk = [c.name for c in table.primary_key.columns]
    if len(pk) == 1:
        single.add(pk[0])
    columns = {
        c.name: ColumnInfo(
            name=c.name,
            kind=family(_python_type(c)),
            nullable=bool(c.nullable),
            length=getattr(c.type, "length", None),
            unique=c.name in single,
            odd=_odd_type(c),
        )
        for c in table.columns
        if IDENT.match(c.name)
    }
    key, note = tuple(pk), None
    if not key or not all(k in columns for k in key):
        key, note = _guess_key(name, columns, uniques)
    return TableInfo(name=name, columns=columns, key=key, key_note=note)


def _guess_key(
    name: str, columns: dict[str, ColumnInfo], uniques: list[frozenset[str]]
) -> tuple[tuple[str, ...], str]:
    for unique in sorted(uniques, key=len):
        if all(c in columns and not columns[c].nullable for c in unique):
            return tuple(
                sorted(unique)
            ), "review: no primary key; a unique constraint identifies a row"
    ids = [
        c.name
        for c in columns.values()
        if not c.nullable and (c.name.lower() == "id" or words(c.name)[-1:] == ["id"])
    ]
    own = [c for c in ids if singular(words(c)[0]) in table_words(name) or c.lower() == "id"]
    if own or ids:
        return ((own or ids)[0],), (
            "review: no primary key; this id column is assumed to identify a row"
        )
    required = tuple(c.name for c in columns.values() if not c.nullable) or tuple(columns)
    return required, "review: no primary key; these columns are assumed to identify a row"


def _sample(conn: Connection, table: sa.Table, info: TableInfo, sample: int) -> None:
    """Read at most `sample` rows (one query) and keep only what the values look like."""
    if sample <= 0:
        return
    cols = [
        table.c[c.name]
        for c in info.columns.values()
        if c.kind not in ("bytes",) and not isinstance(table.c[c.name].type, sa.types.NullType)
    ]
    if not cols:
        return
    try:
        rows = conn.execute(sa.select(*cols).limit(sample)).all()
    except DBAPIError:
        conn.rollback()  # only reads: nothing is lost, and the next query may run
        return  # unreadable (permissions, an odd type): recognise by names only
    for i, col in enumerate(cols):
        info.columns[col.name].values = summarise([row[i] for row in rows])


def _recognise(info: TableInfo) -> None:
    names = list(info.columns)
    person = person_table(info.name, names)
    info.ctx = TableContext(
        name=info.name,
        person=person,
        address=person or address_context(info.name, names),
        lookup=is_lookup_named(info.name) and not person,  # suppliers have contacts
    )
    for column in info.columns.values():
        guess = guess_column(column.name, column.kind, column.values, info.ctx)
        if guess.identity and info.ctx.person and column.values.distinct < 1.0:
            # Two people with one phone (an office line) or one email: it finds both.
            guess = Guess(guess.category, guess.how)
            column.note = "review: several rows share a value in the sample, so not an identity"
        column.guess = guess


def _declared_edges(inspector: Any, schema: str | None, tables: dict[str, TableInfo]) -> list[Edge]:
    edges = []
    for (_, name), fks in sorted(
        inspector.get_multi_foreign_keys(schema=schema).items(), key=lambda kv: kv[0][1]
    ):
        if name not in tables:
            continue
        for fk in fks:
            parent = fk.get("referred_table")
            if fk.get("referred_schema") not in (None, schema) or parent not in tables:
                continue
            local, remote = tuple(fk["constrained_columns"]), tuple(fk["referred_columns"])
            if not local or len(local) != len(remote):
                continue
            if all(c in tables[name].columns for c in local) and all(
                c in tables[parent].columns for c in remote
            ):
                edges.append(Edge(name, local, parent, remote, declared=True))
    return edges


def _candidate_edges(tables: dict[str, TableInfo], declared: list[Edge]) -> list[Edge]:
    """Links the database does not declare, guessed from names: customer_id → customers.id."""
    covered = {(e.child, c) for e in declared for c in e.child_cols}
    index: dict[str, list[str]] = {}
    for name in tables:
        tw = table_words(name)
        for form in {"".join(tw), tw[-1]} if tw else ():
            index.setdefault(form, []).append(name)
    out = []
    for name, info in tables.items():
        for column in info.columns.values():
            if (name, column.name) in covered or column.kind not in ("number", "text"):
                continue
            if info.key_note and column.name in info.key:
                continue  # a key guessed for a table without one (an inherited partition)
            target = _target(column.name, name, info, tables, index)
            if target is None:
                continue
            (remote,) = tables[target].key
            if tables[target].columns[remote].kind != column.kind:
                continue
            out.append(Edge(name, (column.name,), target, (remote,), declared=False))
    return out


def _target(
    column: str,
    table: str,
    info: TableInfo,
    tables: dict[str, TableInfo],
    index: dict[str, list[str]],
) -> str | None:
    w = words(column)
    if len(w) >= 2 and w[-1] == "id":
        stems = ["".join(w[i:-1]) for i in range(len(w) - 1)]
    elif len(w) == 1 and w[0].endswith("id") and len(w[0]) > 3:
        stems = [w[0][:-2]]  # customerid
    else:
        return None
    for stem in stems:
        found = [t for t in index.get(singular(stem), []) if t != table]
        exact = [t for t in found if "".join(table_words(t)) == singular(stem)]
        found = exact or found
        if len(found) != 1:
            continue
        target = found[0]
        if len(tables[target].key) != 1 or tables[target].key_note is not None:
            continue
        if info.key == (column,) and "".join(table_words(table)) == singular(stem):
            continue  # a table's own key (customers.customer_id)
        return target
    return None
