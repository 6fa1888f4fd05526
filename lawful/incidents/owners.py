"""Whose rows are these? From every row of a table back to the identities of its owners.

The datasets' traversal (lawful.datasets.traverse) goes down, from one subject's
identities to their rows. A breach, or a search for children by birth date, needs the
other direction for a whole table at once: from all its rows (or those matching a
condition) up through the annotation's `owner` links to the tables that hold identities,
and their identity columns. That is a join per path, so it runs as one statement per
identity table: the `UNION` of one `SELECT DISTINCT` per path, joining the table to its
owners hop by hop. The number of statements depends on the annotation, never on the
rows.

Only links with the `owner` role are followed: a row someone may only see (`accessor`)
or that merely points at someone (`refers`) is not theirs. Paths are simple (a table
appears once on a path), so a self-referencing link (folders in folders) is followed
one level; deeper nesting is reached only through the rows' other owner links.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lawful.datasets.graph import Graph, LinkPlan, TablePlan
from lawful.datasets.model import Match, Role
from lawful.datasets.traverse import normalised_identity
from lawful.subjects import IdentityKind

MAX_DEPTH = 8  # hops from a table to an identity table; annotations rarely need 4

# One identity per subject row: the one people are reached by first.
KIND_ORDER = (
    IdentityKind.email,
    IdentityKind.phone,
    IdentityKind.account,
    IdentityKind.customer,
    IdentityKind.device,
)

Where = Callable[[sa.Table], sa.ColumnElement[bool] | None]


@dataclass(frozen=True)
class OwnerPath:
    """Owner links from `start` up to `end`, a table holding identities (none: start is)."""

    start: str
    links: tuple[LinkPlan, ...]

    @property
    def end(self) -> str:
        return self.links[-1].target if self.links else self.start


def owner_paths(graph: Graph, start: str, max_depth: int = MAX_DEPTH) -> list[OwnerPath]:
    """Every simple path of owner links from `start` to a table with identities."""
    out: list[OwnerPath] = []

    def walk(table: str, links: tuple[LinkPlan, ...], seen: frozenset[str]) -> None:
        if graph.tables[table].identities:
            out.append(OwnerPath(start, links))
        if len(links) >= max_depth:
            return
        for link in graph.tables[table].links:
            if link.role is Role.owner and link.target not in seen:
                walk(link.target, (*links, link), seen | {link.target})

    walk(start, (), frozenset({start}))
    return out


@dataclass(frozen=True)
class OwnerQuery:
    """One statement: the distinct identity values of `end`'s rows owning `start`'s rows.

    Its columns are the identity columns of `end` (in `identities` order), then the
    `extra` columns of `start` asked for.
    """

    start: str
    end: TablePlan
    statement: sa.Select[Any] | sa.CompoundSelect
    extra: tuple[str, ...]
    paths: int


def owner_queries(
    graph: Graph,
    start: str,
    *,
    extra: Sequence[str] = (),
    where: Where | None = None,
) -> list[OwnerQuery]:
    """The statements giving the identities of whoever owns `start`'s rows, per identity table.

    `where(start_table)` restricts the rows of `start` (e.g. a birth date after a cutoff);
    `extra` columns of `start` come along with each distinct owner (one output row per
    owner and extra values).
    """
    by_end: dict[str, list[sa.Select[Any]]] = {}
    for path in owner_paths(graph, start):
        by_end.setdefault(path.end, []).append(_select(graph, path, extra, where))
    out = []
    for end, selects in by_end.items():
        statement: sa.Select[Any] | sa.CompoundSelect = (
            selects[0].distinct() if len(selects) == 1 else sa.union(*selects)
        )
        out.append(OwnerQuery(start, graph.tables[end], statement, tuple(extra), len(selects)))
    return out


def _select(
    graph: Graph, path: OwnerPath, extra: Sequence[str], where: Where | None
) -> sa.Select[Any]:
    aliases = [graph.tables[path.start].table.alias("t0")]
    joined: Any = aliases[0]
    for i, link in enumerate(path.links, start=1):
        target = graph.tables[link.target].table.alias(f"t{i}")
        on = sa.and_(
            *(
                aliases[-1].c[local] == target.c[remote]
                for local, remote in zip(link.local, link.remote, strict=True)
            )
        )
        joined = joined.join(target, on)
        aliases.append(target)
    start, end = aliases[0], aliases[-1]
    columns = [
        end.c[c].label(f"i{n}") for n, (c, _) in enumerate(graph.tables[path.end].identities)
    ]
    columns += [start.c[c].label(f"x{n}") for n, c in enumerate(extra)]
    query = sa.select(*columns).select_from(joined)
    condition = where(start) if where is not None else None
    if condition is not None:
        query = query.where(condition)
    return query


def identity_picker(plan: TablePlan) -> Callable[[Sequence[Any]], str | None]:
    """For a row of an `OwnerQuery` of `plan`, the "kind:value" text of its first identity.

    The identities are tried in `KIND_ORDER` (an email first); a value is normalised as
    lawful normalises identities, except in a column annotated `match: exact`, which by
    the annotation already holds the normalised form. None when the row holds none.
    """
    order = sorted(
        range(len(plan.identities)),
        key=lambda i: KIND_ORDER.index(plan.identities[i][1].kind),
    )
    specs = [(i, plan.identities[i][1]) for i in order]

    def pick(row: Sequence[Any]) -> str | None:
        for i, spec in specs:
            raw = row[i]
            if raw is None:
                continue
            text = str(raw)
            if spec.matching is Match.exact and spec.kind is not IdentityKind.phone:
                value: str | None = text.strip() or None
            else:
                value = normalised_identity(spec.kind, text)
            if value is not None:
                return f"{spec.kind}:{value}"
        return None

    return pick


def stream(conn: sa.Connection, statement: Any, batch: int) -> Iterator[Sequence[Sequence[Any]]]:
    """The statement's rows in batches, read with a server-side cursor where there is one."""
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(statement)
    try:
        yield from result.partitions(batch)
    finally:
        result.close()
