"""Where each retention rule applies: the annotated tables, compiled against the live schema.

A dataset's tables name the policy's rules that apply to them (`retention:`), each with
the column its period is counted from: a column of the table, or of a table reached over
owner links (`orders.placed_at`, `support_tickets.customers.last_login_at`). A `Target`
is one (rule, table) pair bound to its database: the clock as an SQL expression, what
the rule does to an expired row, and what keeps a row from being deleted (rows of other
tables still pointing at it).

A clock on a linked table is the latest clock of the linked rows (`MAX` over them, a
correlated subquery): a row several rows own (an address two customers share, a
referral between two customers) expires when the last of them does. A row whose clock
is NULL never expires; a row whose clock is on linked rows and that no linked row
reaches any more (its owners were deleted, or anonymized and unlinked: an address no
customer and no order points at) is an orphan, and counts as expired: nothing is left
to count its period from, and erasure would have removed it with its owner.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from lawful.datasets.checks import find_rule
from lawful.datasets.graph import Graph, TablePlan
from lawful.datasets.load import DatasetError
from lawful.datasets.masks import ColumnMask, column_mask
from lawful.datasets.model import RetentionUse, TableErase
from lawful.policy import Policy
from lawful.policy.durations import Duration
from lawful.policy.model import RetentionRule
from lawful.policy.problems import Path, Problem, sort_problems

Action = Literal["delete", "anonymize"]


@dataclass(frozen=True)
class Reference:
    """Rows of `table` whose `columns` hold the swept table's `targets` values."""

    table: sa.Table
    columns: tuple[str, ...]
    targets: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.table.name


@dataclass(frozen=True)
class Target:
    """One retention rule applied to one table of one dataset."""

    dataset: str
    rule: str
    spec: RetentionRule
    use: RetentionUse
    plan: TablePlan
    action: Action
    clock: sa.ColumnElement[Any]  # over plan.table
    orphan: sa.ColumnElement[bool] | None  # a linked clock: no linked row reaches the row
    clock_kind: Literal["date", "naive", "aware"]  # how the cutoff is compared with it
    references: tuple[Reference, ...]  # rows that keep a row from being deleted
    masks: tuple[ColumnMask, ...]  # anonymize: the table's column masks

    @property
    def table(self) -> str:
        return self.plan.name

    @property
    def keep(self) -> Duration:
        assert self.spec.keep is not None  # checked when the dataset was loaded
        return self.spec.keep

    def bound(self, cutoff: dt.datetime) -> Any:
        """The cutoff as the clock column compares: a date, naive UTC, or aware UTC."""
        cutoff = cutoff.astimezone(dt.UTC)
        if self.clock_kind == "date":
            return cutoff.date()
        if self.clock_kind == "naive":
            return cutoff.replace(tzinfo=None)
        return cutoff


def dataset_targets(graph: Graph, policy: Policy) -> list[Target]:
    """Every (rule, table) of the dataset, in the order a sweep runs them.

    Children before the rows they reference (the graph's delete order), and within a
    table anonymizing rules before deleting ones. Raises DatasetError naming every clock
    that is missing or not a date or time.
    """
    problems: list[Problem] = []
    targets: list[Target] = []
    for name in graph.delete_order:
        plan = graph.tables[name]
        for i, use in enumerate(plan.spec.retention):
            path: Path = ("tables", name, "retention", i, "from")
            spec = find_rule(policy, use.rule)
            if spec is None or spec.keep is None:
                continue  # the load-time checks reported it
            clock = _clock(graph, plan, use, path, problems)
            if clock is None:
                continue
            expression, kind, orphan = clock
            action: Action = (
                "anonymize"
                if spec.then.value == "anonymize" and plan.spec.erase is TableErase.anonymize
                else "delete"
            )
            targets.append(
                Target(
                    dataset=graph.key,
                    rule=use.rule,
                    spec=spec,
                    use=use,
                    plan=plan,
                    action=action,
                    clock=expression,
                    orphan=orphan,
                    clock_kind=kind,
                    references=tuple(references(graph, name)) if action == "delete" else (),
                    masks=tuple(_masks(plan)) if action == "anonymize" else (),
                )
            )
    if problems:
        raise DatasetError(sort_problems([graph.loaded.place(p) for p in problems]))
    targets.sort(key=lambda t: (graph.delete_order.index(t.table), t.action == "delete"))
    return targets


def _clock(
    graph: Graph, plan: TablePlan, use: RetentionUse, path: Path, problems: list[Problem]
) -> (
    tuple[sa.ColumnElement[Any], Literal["date", "naive", "aware"], sa.ColumnElement[bool] | None]
    | None
):
    """The clock over `plan.table`, how it compares, and (a linked clock) the orphan test;
    None (with a problem) if it can't be."""
    chain = [plan]
    for hop in use.path:
        current = chain[-1]
        if hop not in graph.tables or not any(link.target == hop for link in current.links):
            return None  # reported by the load-time checks
        chain.append(graph.tables[hop])
    last = chain[-1]
    column = last.table.c.get(use.column)
    if column is None:
        names = ", ".join(c.name for c in last.table.columns)
        problems.append(
            Problem(f"table '{last.name}' has no column '{use.column}'; its columns: {names}", path)
        )
        return None
    kind = _time_kind(column)
    if kind is None:
        problems.append(
            Problem(
                f"{last.name}.{column.name} ({column.type}) is not a date or time, so no period "
                "can be counted from it; name a DATE or TIMESTAMP column",
                path,
            )
        )
        return None
    orphan = None
    if len(chain) > 1:
        parent = chain[1].table.alias("linked")
        orphan = ~sa.exists().where(_joins(plan, plan.table, parent, chain[1].name))
    return _nested(graph, chain, plan.table, 0, use.column), kind, orphan


def _joins(
    plan: TablePlan, table: sa.FromClause, parent: sa.FromClause, parent_name: str
) -> sa.ColumnElement[bool]:
    """`table`'s rows joined to `parent`'s by every owner link between them."""
    return sa.or_(
        *(
            sa.and_(
                *(table.c[a] == parent.c[b] for a, b in zip(link.local, link.remote, strict=True))
            )
            for link in plan.links
            if link.target == parent_name
        )
    )


def _nested(
    graph: Graph, chain: list[TablePlan], table: sa.FromClause, depth: int, column: str
) -> sa.ColumnElement[Any]:
    """The clock seen from `table` (chain[depth]): its column, or the latest linked one."""
    if depth == len(chain) - 1:
        return table.c[column]
    plan, parent = chain[depth], chain[depth + 1]
    alias = parent.table.alias(f"clock_{depth + 1}")
    inner = _nested(graph, chain, alias, depth + 1, column)
    return (
        sa.select(sa.func.max(inner))
        .where(_joins(plan, table, alias, parent.name))
        .correlate(table)
        .scalar_subquery()
    )


def _time_kind(column: sa.Column[Any]) -> Literal["date", "naive", "aware"] | None:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return None
    if issubclass(python_type, dt.datetime):
        return "aware" if getattr(column.type, "timezone", False) else "naive"
    if issubclass(python_type, dt.date):
        return "date"
    return None


def references(graph: Graph, name: str) -> Iterator[Reference]:
    """The annotated tables whose rows point at `name`'s rows: declared foreign keys, and
    links whose columns hold another table's key."""
    seen: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()

    def once(
        table: sa.Table, columns: tuple[str, ...], targets: tuple[str, ...]
    ) -> Iterator[Reference]:
        key = (table.name, columns, targets)
        if key not in seen:
            seen.add(key)
            yield Reference(table, columns, targets)

    for other in graph.tables.values():
        for fk in other.table.foreign_key_constraints:
            parent = fk.elements[0].target_fullname.split(".")[-2]
            if parent == name:
                targets = tuple(e.target_fullname.split(".")[-1] for e in fk.elements)
                yield from once(other.table, tuple(fk.column_keys), targets)
        for link in other.links:
            if link.target == name and not link.local_is_key:
                yield from once(other.table, link.local, link.remote)
    for link in graph.tables[name].links:
        if link.local_is_key:  # the linked table's rows hold this table's key
            yield from once(graph.tables[link.target].table, link.remote, link.local)


def _masks(plan: TablePlan) -> Iterator[ColumnMask]:
    for name, spec in plan.spec.columns.items():
        length = getattr(plan.table.c[name].type, "length", None)
        mask = column_mask(name, spec, plan.python_types.get(name), length)
        if mask is not None:
            yield mask
