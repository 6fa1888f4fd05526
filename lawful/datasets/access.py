"""Access and rectification: the subject's rows as a copy, and corrections to them.

Access returns each table's rows of the subject with the personal columns only (those
annotated with a category outside `system.*`), each column with its category, and each
row with the subject's role: `owner` (theirs) or `accessor` (a thread or share they take
part in). Rows of others that merely refer to the subject are not theirs to see.

Rectification validates every change first (the column is annotated personal data, the
value fits the column, an identity is normalised) and refuses them all if one is wrong;
it then updates the subject's own rows, leaving rows shared with others (whose data
would change too) and reporting them.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.datasets.checks import is_personal
from lawful.datasets.erase import shared_rows
from lawful.datasets.graph import Graph
from lawful.datasets.model import Role
from lawful.datasets.sql import KeyList, Runner, Statement, chunks
from lawful.datasets.sql import statement as cached
from lawful.datasets.traverse import RANK, Found
from lawful.policy.vocabulary import did_you_mean
from lawful.subjects import IdentityError
from lawful.subjects.identity import normalise


@dataclass
class TableAccess:
    table: str
    description: str | None
    columns: dict[str, str]  # column -> category
    rows: list[dict[str, Any]]  # {"role": ..., "data": {column: value}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "description": self.description,
            "categories": dict(self.columns),
            "rows": [
                {"role": r["role"], "data": {k: plain(v) for k, v in r["data"].items()}}
                for r in self.rows
            ],
        }


@dataclass
class DatasetAccess:
    dataset: str
    tables: list[TableAccess]

    @property
    def rows(self) -> int:
        return sum(len(t.rows) for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "tables": [t.to_dict() for t in self.tables],
        }


def access_report(found: Found) -> DatasetAccess:
    """The subject's rows in `found` as a copy they can read, grouped by table."""
    tables = []
    visible = RANK[Role.accessor]
    roles = {rank: role.value for role, rank in RANK.items()}
    for name, plan in found.graph.tables.items():
        table = found.tables[name]
        if not table.rows:
            continue
        columns: dict[str, str] = cached(
            plan.table,
            ("personal", table.columns),
            lambda plan=plan, table=table: {
                c: spec.category
                for c, spec in plan.spec.columns.items()
                if is_personal(spec.category) and c in table.index
            },
        )
        names = tuple(columns)
        positions = [table.index[c] for c in names]
        rows = [
            {
                "role": roles[rank],
                "data": {c: row[i] for c, i in zip(names, positions, strict=True)},
            }
            for key, row in table.rows.items()
            if (rank := table.ranks[key]) >= visible
        ]
        if rows:
            tables.append(TableAccess(name, plan.spec.description, dict(columns), rows))
    return DatasetAccess(found.graph.key, tables)


def plain(value: Any) -> Any:
    """A JSON-ready form of a database value."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


# --- rectification ------------------------------------------------------------------------


class RectifyError(ValueError):
    """Corrections that can't be applied; none was. The message lists each, without values."""


@dataclass
class TableRectified:
    table: str
    columns: list[str]
    updated: int = 0
    unchanged: int = 0
    skipped_shared: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "columns": list(self.columns),
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped_shared": self.skipped_shared,
        }


@dataclass
class DatasetRectified:
    dataset: str
    tables: list[TableRectified] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "dry_run": self.dry_run,
            "tables": [t.to_dict() for t in self.tables],
        }


def validate_changes(graph: Graph, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{"table.column": value}` checked and converted: `{table: {column: value}}`.

    Raises RectifyError naming every change that can't apply (and never the value).
    """
    out, problems = check_changes(graph, changes)
    if problems:
        raise RectifyError("; ".join(f"{target}: {why}" for target, why in problems.items()))
    return out


def check_changes(
    graph: Graph, changes: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each change checked: the converted ones as `{table: {column: value}}`, and what is
    wrong with each other one, by its `table.column` (never quoting the value)."""
    out: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for target, value in changes.items():
        table_name, _, column = target.partition(".")
        why = not_rectifiable(graph, table_name, column)
        if why is not None:
            problems[target] = why
            continue
        plan = graph.tables[table_name]
        try:
            converted = _convert(plan.table.c[column], value)
            identity = plan.spec.identities.get(column)
            if identity is not None and converted is not None:
                converted = normalise(identity.kind, str(converted))
        except (ValueError, IdentityError) as exc:
            problems[target] = str(exc)
            continue
        out.setdefault(table_name, {})[column] = converted
    return out, problems


def not_rectifiable(graph: Graph, table_name: str, column: str) -> str | None:
    """Why `table_name.column` can't be rectified, whatever the value; None if it can."""
    plan = graph.tables.get(table_name)
    if plan is None or not column:
        guess = did_you_mean(table_name, graph.tables)
        hint = f"; did you mean '{guess}.{column}'?" if guess and column else ""
        return f"not a table.column of dataset {graph.key}{hint}"
    spec = plan.spec.columns.get(column)
    if spec is None or not is_personal(spec.category):
        personal = [c for c, s in plan.spec.columns.items() if is_personal(s.category)]
        return (
            f"only annotated personal columns can be rectified; in {table_name}: "
            f"{', '.join(personal) or 'none'}"
        )
    linked = {c for link in plan.links for c in link.local} | set(plan.key)
    linked |= {c for link in graph.incoming[table_name] for c in link.remote}
    if column in linked:
        return "a key or link column decides whose rows these are; it can't be rectified"
    return None


@dataclass(frozen=True)
class Correctable:
    """A column a person may ask to have corrected, as a form offers it."""

    dataset: str
    table: str
    column: str
    category: str
    label: str  # the column's description, or its name in words
    table_label: str  # the table's description, or its name
    identity: str | None  # the kind of identity it holds (email, phone...), if any
    python_type: type | None
    max_length: int | None
    nullable: bool
    subject_table: bool  # rows found by the person's identity, not through another table

    @property
    def target(self) -> str:
        """How a rectification's `changes` name it: `dataset.table.column`."""
        return f"{self.dataset}.{self.table}.{self.column}"


def correctable_columns(graph: Graph) -> list[Correctable]:
    """The columns `validate_changes` accepts, in the annotation's order."""
    found = []
    for name, plan in graph.tables.items():
        for column, spec in plan.spec.columns.items():
            if not_rectifiable(graph, name, column) is not None or column not in plan.table.c:
                continue
            identity = plan.spec.identities.get(column)
            sql_column = plan.table.c[column]
            found.append(
                Correctable(
                    dataset=graph.key,
                    table=name,
                    column=column,
                    category=str(spec.category),
                    label=spec.description or column.replace("_", " ").capitalize(),
                    table_label=plan.spec.description or name.replace("_", " ").capitalize(),
                    identity=str(identity.kind) if identity is not None else None,
                    python_type=plan.python_types.get(column),
                    max_length=getattr(sql_column.type, "length", None),
                    nullable=bool(sql_column.nullable),
                    subject_table=bool(plan.spec.identities),
                )
            )
    return found


def _convert(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        if not column.nullable:
            raise ValueError("the column is NOT NULL; give a value")
        return None
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    if python_type is str:
        text = str(value)
        length = getattr(column.type, "length", None)
        if length is not None and len(text) > length:
            raise ValueError(f"the value is longer than the column allows ({length} characters)")
        return text
    if isinstance(value, python_type) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        if python_type is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if python_type is int:
            return int(text)
        if python_type is float:
            return float(text)
        if python_type is Decimal:
            return Decimal(text)
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(text)
        if python_type is dt.date:
            return dt.date.fromisoformat(text)
    except (ValueError, InvalidOperation):
        raise ValueError(
            f"the value is not a valid {python_type.__name__} for this column"
        ) from None
    return value


def rectify_found(
    conn: Connection,
    found: Found,
    changes: dict[str, dict[str, Any]],
    mask_key: bytes | None,
    *,
    dry_run: bool = False,
) -> DatasetRectified:
    """Apply validated `changes` to the subject's own rows (not those shared with others)."""
    report = DatasetRectified(found.graph.key, dry_run=dry_run)
    shared = shared_rows(conn, found, mask_key) if changes else {}
    runner = Runner(conn)
    for name, values in changes.items():
        plan = found.graph.tables[name]
        table = found.tables[name]
        out = TableRectified(name, sorted(values))
        todo = []
        for key, rank in table.ranks.items():
            if rank != RANK[Role.owner]:
                continue
            if key in shared[name]:
                out.skipped_shared += 1
            elif all(table.value(key, c) == v for c, v in values.items() if c in table.index):
                out.unchanged += 1
            else:
                todo.append(key)
        out.updated = len(todo)
        if todo and not dry_run:
            keys = KeyList([plan.table.c[c] for c in plan.key], "k", found.graph.backend)
            queries = []
            for chunk in chunks(todo, keys.batch):
                one, params = keys.form(chunk)
                update = sa.update(plan.table).where(keys.condition(one)).values(values)
                queries.append((Statement(update), params))
            runner.run(queries)
        report.tables.append(out)
    return report
