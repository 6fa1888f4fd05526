"""The ownership graph: a dataset's annotations bound to its live schema, and checked.

`build_graph` reflects the annotated tables (SQLAlchemy reflection), checks the
annotation against them (tables and columns exist, every table has a key, masks fit the
column types, links join columns of compatible types) and compiles what traversal and
erasure need: each table's key, its links in both directions, and the order in which
deletes respect the foreign keys.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.datasets.load import DatasetError, LoadedDataset
from lawful.datasets.masks import HASH_MIN_LENGTH
from lawful.datasets.model import (
    Column,
    ColumnErase,
    Generalize,
    Identity,
    Mask,
    Release,
    Role,
    Table,
    TableErase,
)
from lawful.policy.problems import Path, Problem, sort_problems
from lawful.policy.vocabulary import did_you_mean


@dataclass(frozen=True)
class LinkPlan:
    """One `owners` entry of `table`: its rows are reached from rows of `target`."""

    table: str
    target: str
    local: tuple[str, ...]  # columns of `table`
    remote: tuple[str, ...]  # the matching columns of `target`
    role: Role
    release: Release  # resolved: unlink only when the local columns can be NULL
    local_is_key: bool  # the local columns identify one row of `table` (the link points down)
    remote_is_key: bool  # the remote columns identify one row of `target`
    index: int  # position under owners, for messages


@dataclass(frozen=True)
class TablePlan:
    name: str
    spec: Table
    table: sa.Table
    key: tuple[str, ...]
    identities: tuple[tuple[str, Identity], ...]
    links: tuple[LinkPlan, ...]
    python_types: dict[str, type | None]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns)


@dataclass(frozen=True)
class Graph:
    """A dataset compiled against its database; built once per process and reused."""

    loaded: LoadedDataset
    backend: str
    tables: dict[str, TablePlan]
    # For each table, the links of other tables that are reached from its rows.
    incoming: dict[str, tuple[LinkPlan, ...]]
    delete_order: tuple[str, ...]  # children before the rows they reference
    warnings: tuple[Problem, ...] = field(default=())

    @property
    def key(self) -> str:
        return self.loaded.key


def build_graph(loaded: LoadedDataset, conn: Connection) -> Graph:
    """Reflect the annotated tables and check the annotation against them.

    Raises DatasetError listing every mismatch (with file positions); warnings are kept
    on the graph.
    """
    dataset = loaded.dataset
    schema = dataset.connection.schema_ if dataset.connection is not None else None
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names(schema=schema))
    existing |= set(inspector.get_view_names(schema=schema))
    problems: list[Problem] = []
    for name in dataset.tables:
        if name not in existing:
            guess = did_you_mean(name, existing)
            hint = f"did you mean '{guess}'?" if guess else "check the name and the connection"
            where = f"schema {schema}" if schema else "the database"
            problems.append(
                Problem(f"{where} has no table '{name}'; {hint}", path=("tables", name))
            )
    metadata = sa.MetaData(schema=schema)
    present = [name for name in dataset.tables if name in existing]
    metadata.reflect(conn, only=present, resolve_fks=False)
    reflected = {name: metadata.tables[f"{schema}.{name}" if schema else name] for name in present}

    uniques = {name: _unique_sets(inspector, name, schema, reflected[name]) for name in present}
    plans: dict[str, TablePlan] = {}
    for name, table in reflected.items():
        spec = dataset.tables[name]
        problems.extend(_check_columns(name, spec, table, reflected, dataset.tables))
        key = tuple(spec.primary_key or [c.name for c in table.primary_key.columns])
        if not key:
            problems.append(
                Problem(
                    "the table has no primary key; name the columns that identify a row "
                    "under primary_key (erasure changes rows by their key)",
                    path=("tables", name),
                )
            )
        links = tuple(
            _link_plan(name, i, link, table, reflected.get(link.table), uniques)
            for i, link in enumerate(spec.owners)
        )
        plans[name] = TablePlan(
            name=name,
            spec=spec,
            table=table,
            key=key,
            identities=tuple(spec.identities.items()),
            links=links,
            python_types={c.name: _python_type(c) for c in table.columns},
        )
    problems = [loaded.place(p) for p in problems]
    if any(p.severity == "error" for p in problems):
        raise DatasetError(sort_problems(problems))

    warnings = [loaded.place(p) for p in _warnings(plans, inspector, schema)]
    incoming: dict[str, list[LinkPlan]] = {name: [] for name in plans}
    for plan in plans.values():
        for link in plan.links:
            incoming[link.target].append(link)
    return Graph(
        loaded=loaded,
        backend=conn.dialect.name,
        tables=plans,
        incoming={k: tuple(v) for k, v in incoming.items()},
        delete_order=_delete_order(plans),
        warnings=tuple(sort_problems(warnings)),
    )


# --- reflection helpers -----------------------------------------------------------------


def _unique_sets(
    inspector: Any, name: str, schema: str | None, table: sa.Table
) -> list[frozenset[str]]:
    sets = [frozenset(c.name for c in table.primary_key.columns)]
    with contextlib.suppress(NotImplementedError):  # a dialect without unique constraints
        sets += [
            frozenset(u["column_names"])
            for u in inspector.get_unique_constraints(name, schema=schema)
        ]
    sets += [
        frozenset(ix["column_names"])
        for ix in inspector.get_indexes(name, schema=schema)
        if ix.get("unique") and all(ix["column_names"])
    ]
    return [s for s in sets if s]


def _python_type(column: sa.Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _family(tp: type | None) -> str | None:
    if tp is None:
        return None
    if tp is bool:
        return "bool"
    if issubclass(tp, int | float) or tp.__name__ == "Decimal":
        return "number"
    if issubclass(tp, str):
        return "text"
    if issubclass(tp, dt.datetime | dt.date):
        return "time"
    return tp.__name__


# --- checks against the live schema -----------------------------------------------------


def _missing_column(path: Path, column: str, table: sa.Table) -> Problem:
    names = [c.name for c in table.columns]
    guess = did_you_mean(column, names)
    hint = f"did you mean '{guess}'?" if guess else f"its columns: {', '.join(names)}"
    return Problem(f"table '{table.name}' has no column '{column}'; {hint}", path=path)


def _check_columns(
    name: str,
    spec: Table,
    table: sa.Table,
    reflected: dict[str, sa.Table],
    annotated: dict[str, Table],
) -> Iterator[Problem]:
    cols = table.columns
    base: Path = ("tables", name)
    for i, column in enumerate(spec.primary_key or []):
        if column not in cols:
            yield _missing_column((*base, "primary_key", i), column, table)
    for column in spec.identities:
        if column not in cols:
            yield _missing_column((*base, "identities", column), column, table)
    for i, link in enumerate(spec.owners):
        target = reflected.get(link.table)
        for local, remote in link.on.items():
            path: Path = (*base, "owners", i, "on", local)
            if local not in cols:
                yield _missing_column(path, local, table)
            if target is not None and remote not in target.columns:
                yield _missing_column(path, remote, target)
            if local in cols and target is not None and remote in target.columns:
                a, b = (
                    _family(_python_type(cols[local])),
                    _family(_python_type(target.columns[remote])),
                )
                if a and b and a != b:
                    yield Problem(
                        f"{name}.{local} holds {a} but {link.table}.{remote} holds {b}; the "
                        "values are converted to compare them, which only finds rows whose "
                        "values convert exactly",
                        path=path,
                        severity="warning",
                    )
        if link.release is Release.unlink:
            for local in link.on:
                if local in cols and not _nullable_non_key(cols[local], table, spec):
                    yield Problem(
                        f"release: unlink sets {name}.{local} to NULL, but it is NOT NULL or "
                        "part of the key; use release: keep",
                        path=(*base, "owners", i, "release"),
                    )
    for column, colspec in spec.columns.items():
        path = (*base, "columns", column)
        if column not in cols:
            yield _missing_column(path, column, table)
            continue
        if spec.erase is TableErase.anonymize:
            yield from _check_mask((*path, "erase"), colspec, cols[column], table, spec)
    del annotated  # the links' targets are checked by check_dataset


def _nullable_non_key(column: sa.Column[Any], table: sa.Table, spec: Table) -> bool:
    key = spec.primary_key or [c.name for c in table.primary_key.columns]
    return bool(column.nullable) and column.name not in key


def _check_mask(
    path: Path, spec: Column, column: sa.Column[Any], table: sa.Table, tspec: Table
) -> Iterator[Problem]:
    action = spec.erase
    if action is None or action in (ColumnErase.keep, ColumnErase.delete):
        return
    key = tspec.primary_key or [c.name for c in table.primary_key.columns]
    if column.name in key:
        yield Problem(
            "a key column can't be masked (rows are found and changed by their key); "
            "keep it, or delete the row",
            path=path,
        )
        return
    family = _family(_python_type(column))
    length = getattr(column.type, "length", None)
    what = f"{table.name}.{column.name} ({column.type})"
    if action is ColumnErase.null:
        if not column.nullable:
            yield Problem(
                f"{what} is NOT NULL, so erasure can't set it to NULL; use {{fixed: ...}}, "
                "hash, or delete the row",
                path=path,
            )
    elif action is ColumnErase.hash:
        if family != "text":
            yield Problem(
                f"hash writes text, but {what} does not hold text; use null or {{fixed: ...}}",
                path=path,
            )
        elif length is not None and length < HASH_MIN_LENGTH:
            yield Problem(
                f"hash writes at least {HASH_MIN_LENGTH} characters, but {what} holds {length}; "
                "use null or {fixed: ...}",
                path=path,
            )
    elif isinstance(action, Mask):
        if action.generalize in (Generalize.year, Generalize.month) and family != "time":
            yield Problem(
                f"generalize: {action.generalize} needs a date or time, but {what} is not one",
                path=path,
            )
        elif action.generalize is Generalize.ip and family != "text":
            yield Problem(f"generalize: ip needs a text column, but {what} is not one", path=path)
        elif action.truncate is not None and family != "text":
            yield Problem(f"truncate needs a text column, but {what} is not one", path=path)
        elif "fixed" in action.model_fields_set:
            yield from _check_fixed(path, action.fixed, column, family, length, what)


def _check_fixed(
    path: Path,
    value: object,
    column: sa.Column[Any],
    family: str | None,
    length: int | None,
    what: str,
) -> Iterator[Problem]:
    if value is None:
        if not column.nullable:
            yield Problem(f"{what} is NOT NULL; give a fixed value that is not null", path=path)
        return
    if family == "number" and not isinstance(value, int | float):
        yield Problem(
            f"{what} holds numbers; give a number as the fixed value", path=(*path, "fixed")
        )
    elif family == "text" and not isinstance(value, str):
        yield Problem(f"{what} holds text; write the fixed value in quotes", path=(*path, "fixed"))
    elif family == "text" and length is not None and len(str(value)) > length:
        yield Problem(
            f"the fixed value is longer than {what} allows ({length})", path=(*path, "fixed")
        )
    elif family == "time" and not _parses_as_time(value):
        yield Problem(
            f"{what} holds dates; give the fixed value as a date like 1970-01-01",
            path=(*path, "fixed"),
        )


def _parses_as_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _link_plan(
    name: str,
    index: int,
    link: Any,
    table: sa.Table,
    target: sa.Table | None,
    uniques: dict[str, list[frozenset[str]]],
) -> LinkPlan:
    local = tuple(link.on)
    remote = tuple(link.on.values())
    mine = uniques.get(name, [])
    theirs = uniques.get(link.table, [])
    local_is_key = any(u <= set(local) for u in mine)
    remote_is_key = any(u <= set(remote) for u in theirs)
    release = link.release
    if release is None and link.role is Role.accessor:
        release = Release.keep  # an accessor's erasure leaves what they could see, unless told
    if release is None:
        cols = table.columns
        can_unlink = not local_is_key and all(
            c in cols and cols[c].nullable and c not in {k.name for k in table.primary_key.columns}
            for c in local
        )
        release = Release.unlink if can_unlink else Release.keep
    del target
    return LinkPlan(
        table=name,
        target=link.table,
        local=local,
        remote=remote,
        role=link.role,
        release=release,
        local_is_key=local_is_key,
        remote_is_key=remote_is_key,
        index=index,
    )


def _warnings(plans: dict[str, TablePlan], inspector: Any, schema: str | None) -> Iterator[Problem]:
    deleting = {name for name, p in plans.items() if p.spec.deletes}
    try:
        foreign = inspector.get_multi_foreign_keys(schema=schema)
    except NotImplementedError:  # pragma: no cover - every dialect lawful supports has it
        foreign = {}
    for (_, child), fks in foreign.items():
        if child in plans:
            continue
        for fk in fks:
            parent = fk.get("referred_table")
            if parent in deleting:
                yield Problem(
                    f"table '{child}' (not annotated) references {parent} through "
                    f"{', '.join(fk['constrained_columns'])}; deleting a subject's {parent} rows "
                    f"fails while {child} rows point at them: annotate {child} or anonymize "
                    f"{parent} instead",
                    path=("tables", parent, "erase"),
                    severity="warning",
                )
    for name, plan in plans.items():
        indexed = _indexed_columns(inspector, name, schema, plan.table)
        for column, _ in plan.identities:
            spec = plan.spec.identities[column]
            if column not in indexed and spec.matching.value == "exact":
                yield Problem(
                    f"no index starts with {name}.{column}: every lookup reads the whole "
                    f"table; CREATE INDEX ON {name} ({column})",
                    path=("tables", name, "identities", column),
                    severity="warning",
                )
        for link in plan.links:
            if link.local[0] not in indexed:
                yield Problem(
                    f"no index starts with {name}.{link.local[0]}: every hop through this link "
                    f"reads the whole table; CREATE INDEX ON {name} ({', '.join(link.local)})",
                    path=("tables", name, "owners", link.index),
                    severity="warning",
                )


def _indexed_columns(inspector: Any, name: str, schema: str | None, table: sa.Table) -> set[str]:
    """Columns that lead some index (or the primary key): lookups on them are cheap."""
    leading = {c.name for c in list(table.primary_key.columns)[:1]}
    for ix in inspector.get_indexes(name, schema=schema):
        if ix["column_names"] and ix["column_names"][0]:
            leading.add(ix["column_names"][0])
    with contextlib.suppress(NotImplementedError):
        for u in inspector.get_unique_constraints(name, schema=schema):
            if u["column_names"]:
                leading.add(u["column_names"][0])
    return leading


def _delete_order(plans: dict[str, TablePlan]) -> tuple[str, ...]:
    """Tables ordered so rows are deleted before the rows they reference (Kahn's algorithm).

    A table waits for every table that references it: through a foreign key declared in
    the database, or through a link whose local columns point at another table's row.
    Cycles (a table referencing itself, or a loop) keep their annotation order.
    """
    before: dict[str, set[str]] = {name: set() for name in plans}  # parent -> children
    for name, plan in plans.items():
        for fk in plan.table.foreign_keys:
            # "schema.table.column" or "table.column"; the referenced table may be unreflected.
            parent = fk.target_fullname.split(".")[-2]
            if parent in plans and parent != name:
                before[parent].add(name)
        for link in plan.links:
            if not link.local_is_key and link.target != name:
                before[link.target].add(name)
    order: list[str] = []
    waiting = {name: set(children) for name, children in before.items()}
    while waiting:
        ready = [n for n, children in waiting.items() if not children - set(order)]
        if not ready:  # a cycle: break it at the first table in annotation order
            ready = [next(iter(waiting))]
        for n in ready:
            if n in waiting:
                order.append(n)
                del waiting[n]
    return tuple(order)
