"""Find every row of a subject: breadth-first over the ownership graph, set-based.

Hop 0 looks the identities up in the tables that hold identities (one query per table,
all identity columns at once). Each further hop queries each table once for all the
rows the previous hop reached in the tables it links to (`WHERE fk IN (...)`, in
batches), so the number of statements grows with the depth of the graph, never with the
number of rows; the statements of one hop go to the database together (one round trip
on PostgreSQL, see `lawful.datasets.sql.Runner`). A row reached twice is kept once, with
the strongest role it was reached with; cycles end because only new rows (or rows whose
role grew) go on to the next hop.

Roles: a row reached through an `owner` link from a subject's row is the subject's; an
`accessor` link (or an owner link from a row the subject only accesses) makes it one the
subject may see; a `refers` link marks someone else's row that points at the subject.
Rows the subject only refers to are not followed further.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.datasets.graph import Graph, LinkPlan, TablePlan
from lawful.datasets.model import Match, Role
from lawful.datasets.sql import KeyList, Params, Runner, Statement, chunks, coerce, phone_digits
from lawful.datasets.sql import statement as cached
from lawful.subjects import Identity, IdentityError, IdentityKind
from lawful.subjects.identity import normalise

RANK = {Role.refers: 0, Role.accessor: 1, Role.owner: 2}
ROLES = {rank: role for role, rank in RANK.items()}

Key = tuple[Any, ...]
Condition = tuple[KeyList, list[Key]]  # the columns' condition, and the values it takes
Query = tuple[Statement, Params]
T = TypeVar("T")


@dataclass
class FoundTable:
    """The rows of one table reached from the subject, by key."""

    plan: TablePlan
    columns: tuple[str, ...]
    rows: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    ranks: dict[Key, int] = field(default_factory=dict)
    matched: set[Key] = field(default_factory=set)  # rows an identity column matched

    def __post_init__(self) -> None:
        # Where each column is in the rows (worked out once per graph, shared, not changed).
        self.index, self.key_positions, self.key_of = cached(
            self.plan.table, ("layout", self.columns), lambda: _layout(self.plan, self.columns)
        )

    @property
    def name(self) -> str:
        return self.plan.name

    def role(self, key: Key) -> Role:
        return ROLES[self.ranks[key]]

    def keys(self, role: Role | None = None) -> list[Key]:
        if role is None:
            return list(self.rows)
        rank = RANK[role]
        return [k for k, r in self.ranks.items() if r == rank]

    def value(self, key: Key, column: str) -> Any:
        return self.rows[key][self.index[column]]

    def values(self, key: Key, columns: Sequence[str]) -> tuple[Any, ...]:
        row = self.rows[key]
        return tuple(row[self.index[c]] for c in columns)

    def counts(self) -> dict[str, int]:
        tally = Counter(self.ranks.values())
        return {role.value: tally[RANK[role]] for role in Role}


@dataclass
class Found:
    """Every row of a subject in one dataset, per table (tables with none are empty)."""

    graph: Graph
    tables: dict[str, FoundTable]
    identities: frozenset[Identity]
    statements: int = 0
    searched: set[Identity] = field(default_factory=set)  # given, and found by expansion
    # For an erasure: others' rows holding the values the walk fetched a table's rows by,
    # per owner link of that table, asked in the same step (see `_Walker._prefetch`).
    prefetched: dict[tuple[str, int], list[tuple[set[Key], Any, list[Sequence[Any]]]]] = field(
        default_factory=dict
    )

    @property
    def total(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())

    def __bool__(self) -> bool:
        return self.total > 0


def traverse(
    conn: Connection,
    graph: Graph,
    identities: Iterable[Identity],
    *,
    columns: str = "all",
) -> Found:
    """The subject's rows in `graph`'s database, found from `identities`.

    `columns="all"` reads whole rows (for access); `"erase"` reads only what erasure
    needs (keys, links, identities and masked columns).
    """
    given = frozenset(identities)
    found = Found(
        graph=graph,
        tables={
            name: FoundTable(
                plan,
                cached(
                    plan.table,
                    ("columns", columns),
                    lambda plan=plan: _columns(graph, plan, columns),
                ),
            )
            for name, plan in graph.tables.items()
        },
        identities=given,
    )
    walker = _Walker(conn, graph, found, prefetch=columns == "erase")
    frontier = walker.identities(given)
    while frontier:
        frontier = walker.hop(frontier)
    found.statements += walker.runner.statements
    return found


@lru_cache(maxsize=65_536)
def normalised_identity(kind: IdentityKind, raw: str) -> str | None:
    """A value found in an identity column, normalised as `kind`; None if it is not one.

    Kept for the next time: the same email or phone number turns up on many rows (a
    household, a batch of subjects), and parsing a phone number costs a fifth of a ms.
    """
    try:
        return normalise(kind, raw)
    except IdentityError:
        return None


def _layout(
    plan: TablePlan, columns: tuple[str, ...]
) -> tuple[dict[str, int], tuple[int, ...], Callable[[Sequence[Any]], Key]]:
    """Each column's position in a row of `columns`, the key's positions, a row's key."""
    index = {name: i for i, name in enumerate(columns)}
    positions = tuple(index[c] for c in plan.key)
    return index, positions, tuple_getter(positions)


def tuple_getter(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function taking these positions of a row, as a tuple (even of one)."""
    if len(positions) == 1:
        return itemgetter(slice(positions[0], positions[0] + 1))  # a one-item tuple, in C
    return itemgetter(*positions)


def _columns(graph: Graph, plan: TablePlan, mode: str) -> tuple[str, ...]:
    if mode == "all":
        return plan.columns
    needed = set(plan.key) | {c for c, _ in plan.identities}
    for link in plan.links:
        needed.update(link.local)
    for link in graph.incoming[plan.name]:
        needed.update(link.remote)
    needed.update(name for name, c in plan.spec.columns.items() if c.erase is not None)
    return tuple(c for c in plan.columns if c in needed)


class _Walker:
    """The walk; each round of identities and each hop is one step of statements.

    A step's statements (one, or one per batch, for each table) don't depend on each
    other's results, so they are built first and run together (one round trip on
    PostgreSQL), then the rows are taken table by table.
    """

    def __init__(
        self, conn: Connection, graph: Graph, found: Found, *, prefetch: bool = False
    ) -> None:
        self.graph = graph
        self.found = found
        self.runner = Runner(conn)
        self.prefetch = prefetch

    def _run(self, step: list[tuple[T, list[Query]]]) -> Iterator[tuple[T, list[Sequence[Any]]]]:
        """Run every query of the step at once; each item with the rows of its queries."""
        results = self.runner.run([query for _, queries in step for query in queries])
        at = 0
        for item, queries in step:
            yield item, [row for result in results[at : at + len(queries)] for row in result]
            at += len(queries)

    # -- hop 0: identities -----------------------------------------------------------

    def identities(self, given: frozenset[Identity]) -> dict[str, set[Key]]:
        """Rows matching the identities; identity columns marked `expands` feed new values."""
        frontier: dict[str, set[Key]] = {}
        searched = self.found.searched
        pending = set(given)
        while pending:
            searched |= pending
            by_kind: dict[IdentityKind, list[str]] = {}
            for identity in pending:
                by_kind.setdefault(identity.kind, []).append(identity.value)
            pending = set()
            step = [(plan, self._lookup(plan, by_kind)) for plan in self.graph.tables.values()]
            for plan, rows in self._run([(plan, queries) for plan, queries in step if queries]):
                new = self._identified(plan, rows)
                if not new:
                    continue
                frontier.setdefault(plan.name, set()).update(new)
                pending |= self._expansions(plan, new) - searched
        return frontier

    def _lookup(self, plan: TablePlan, by_kind: dict[IdentityKind, list[str]]) -> list[Query]:
        """The queries finding the table's rows that hold one of the identities."""
        conditions: list[Condition] = []
        for i, (column, spec) in enumerate(plan.identities):
            values = by_kind.get(spec.kind)
            if not values:
                continue
            python_type = plan.python_types.get(column) if spec.matching is Match.exact else str
            typed = [v for v in (coerce(x, python_type) for x in values) if v is not None]
            if typed:
                keys = cached(
                    plan.table,
                    ("identity", i),
                    lambda i=i, column=column, spec=spec: _identity_keys(
                        plan, column, spec.matching, i, self.graph.backend
                    ),
                )
                conditions.append((keys, [(v,) for v in typed]))
        return self._queries(self.found.tables[plan.name], conditions)

    def _identified(self, plan: TablePlan, rows: list[Sequence[Any]]) -> set[Key]:
        """Take the rows an identity matched: the subject's own; the keys of the new ones."""
        table = self.found.tables[plan.name]
        new: set[Key] = set()
        for row in rows:
            key = table.key_of(row)
            table.matched.add(key)
            if table.ranks.get(key, -1) < RANK[Role.owner]:
                table.rows[key] = tuple(row)
                table.ranks[key] = RANK[Role.owner]
                new.add(key)
        return new

    def _expansions(self, plan: TablePlan, keys: set[Key]) -> set[Identity]:
        table = self.found.tables[plan.name]
        out: set[Identity] = set()
        for column, spec in plan.identities:
            if not spec.expands or column not in table.index:
                continue
            for key in keys:
                raw = table.value(key, column)
                value = None if raw is None else normalised_identity(spec.kind, str(raw))
                if value is not None:  # else a malformed value: nothing to search for
                    out.add(Identity._normalised(spec.kind, value))
        return out

    # -- further hops: links -----------------------------------------------------------

    def hop(self, frontier: dict[str, set[Key]]) -> dict[str, set[Key]]:
        """Query every table linked to the rows reached last time, once per table."""
        wanted: dict[str, list[tuple[LinkPlan, dict[Key, int]]]] = {}
        for source, keys in frontier.items():
            src = self.found.tables[source]
            for link in self.graph.incoming[source]:
                values = _reached(self.graph, src, keys, link)
                if link.local_is_key and tuple(link.local) == self.graph.tables[link.table].key:
                    # The link points at rows by their key: skip rows already reached as well.
                    target = self.found.tables[link.table]
                    values = {v: r for v, r in values.items() if target.ranks.get(v, -1) < r}
                if values:
                    wanted.setdefault(link.table, []).append((link, values))
        nxt: dict[str, set[Key]] = {}
        step: list[tuple[Any, list[Query]]] = [
            ((name, links), self._linked(name, links)) for name, links in wanted.items()
        ]
        if self.prefetch:
            step += self._prefetch(wanted)
        for item, rows in self._run(step):
            if item[0] is _PREFETCH:
                _, owner, values, question = item
                found = self.found.prefetched.setdefault((owner.table, owner.index), [])
                found.append((values, question, rows))
                continue
            name, links = item
            new = self._follow(self.graph.tables[name], links, rows)
            if new:
                nxt[name] = new
        return nxt

    def _prefetch(
        self, wanted: dict[str, list[tuple[LinkPlan, dict[Key, int]]]]
    ) -> list[tuple[Any, list[Query]]]:
        """For an erasure: with each table's rows, whether others' rows hold them too.

        An erasure asks, for the subject's rows of a table, which of them rows not the
        subject's also own (a household's address): `erase._Others`. When the walk
        fetches a table's rows by the same columns one of its owner links uses, that
        question's values are the values fetched, so it goes in the same step (the same
        round trip on PostgreSQL) instead of a step of its own after the walk.
        """
        from lawful.datasets.erase import _Others  # erase builds on this module

        out: list[tuple[Any, list[Query]]] = []
        for name, links in wanted.items():
            plan = self.graph.tables[name]
            for fetch, values in links:
                for owner in plan.links:
                    if owner.role is not Role.owner or tuple(owner.local) != tuple(fetch.local):
                        continue
                    if owner.remote_is_key:
                        continue  # a key of the subject's own row explains itself: not asked
                    question = _Others(self.found, owner, list(values))
                    if question.queries:
                        out.append(((_PREFETCH, owner, set(values), question), question.queries))
        return out

    def _linked(self, name: str, links: list[tuple[LinkPlan, dict[Key, int]]]) -> list[Query]:
        """The queries finding the table's rows whose links hold the values reached."""
        plan = self.graph.tables[name]
        backend = self.graph.backend
        conditions: list[Condition] = [
            (
                cached(
                    plan.table,
                    ("link", link.index),
                    lambda link=link: KeyList(
                        [plan.table.c[c] for c in link.local], f"l{link.index}", backend
                    ),
                ),
                list(values),
            )
            for link, values in links
        ]
        return self._queries(self.found.tables[name], conditions)

    def _follow(
        self,
        plan: TablePlan,
        links: list[tuple[LinkPlan, dict[Key, int]]],
        rows: list[Sequence[Any]],
    ) -> set[Key]:
        """Take the rows the links reached, each with the strongest role it was reached with."""
        table = self.found.tables[plan.name]
        reached = [
            (tuple_getter([table.index[c] for c in link.local]), values) for link, values in links
        ]
        key_of, ranks, found_rows = table.key_of, table.ranks, table.rows
        new: set[Key] = set()
        single = len(reached) == 1
        local, values = reached[0]
        for row in rows:
            if single:  # the common case: reached through one link
                rank = values.get(local(row), -1)
            else:
                rank = max(v.get(get(row), -1) for get, v in reached)
            if rank < 0:
                continue  # matched only after a conversion the values don't round-trip
            key = key_of(row)
            if ranks.get(key, -1) < rank:
                found_rows[key] = tuple(row)
                ranks[key] = rank
                new.add(key)
        return new

    def _queries(self, table: FoundTable, conditions: list[Condition]) -> list[Query]:
        """One statement OR-ing every condition when the values fit a batch; else one per batch."""
        if not conditions:
            return []
        if sum(len(values) for _, values in conditions) <= min(k.batch for k, _ in conditions):
            params: dict[str, Any] = {}
            shape = []
            for keys, values in conditions:
                one, given = keys.form(values)
                params |= given
                shape.append((keys, one))
            return [(self._select(table, tuple(shape)), params)]
        queries: list[Query] = []
        for keys, values in conditions:
            for chunk in chunks(values, keys.batch):
                one, given = keys.form(chunk)
                queries.append((self._select(table, ((keys, one),)), given))
        return queries

    def _select(self, table: FoundTable, conditions: tuple[tuple[KeyList, bool], ...]) -> Statement:
        """The table's columns read where any of the conditions holds (built once).

        Each condition is a key list and whether it takes a single value (`KeyList.form`).
        """
        sql_table = table.plan.table

        def build() -> Statement:
            cols = [sql_table.c[c] for c in table.columns]
            where = sa.or_(*(keys.condition(one) for keys, one in conditions))
            return Statement(sa.select(*cols).where(where))

        shape = ("select", table.columns, tuple((k.name, one) for k, one in conditions))
        return cached(sql_table, shape, build)


_PREFETCH = object()  # marks the prefetched questions among a step's items


def _reached(graph: Graph, src: FoundTable, keys: Iterable[Key], link: LinkPlan) -> dict[Key, int]:
    """The link's values on these rows of `src` (as the linking table holds them), each with
    the strongest role it reaches rows with; rows others own (refers) lead nowhere."""
    types = [graph.tables[link.table].python_types.get(c) for c in link.local]
    positions = [src.index[c] for c in link.remote]
    refers, role = RANK[Role.refers], RANK[link.role]
    rows, ranks = src.rows, src.ranks
    values: dict[Key, int] = {}
    if len(positions) == 1:  # the common case, without a tuple per row until the end
        position, python_type = positions[0], types[0]
        for key in keys:
            rank = ranks[key]
            if rank == refers:
                continue  # someone else's row: what hangs off it is not the subject's
            v = rows[key][position]
            if v is None:
                continue
            if python_type is not None and type(v) is not python_type:
                v = coerce(v, python_type)
                if v is None:
                    continue
            reach = rank if rank < role else role
            if values.get((v,), -1) < reach:
                values[(v,)] = reach
        return values
    remote = tuple_getter(positions)
    for key in keys:
        rank = ranks[key]
        if rank == refers:
            continue
        value = tuple(coerce(v, t) for v, t in zip(remote(rows[key]), types, strict=True))
        if None in value:
            continue
        reach = rank if rank < role else role
        if values.get(value, -1) < reach:
            values[value] = reach
    return values


def _identity_keys(
    plan: TablePlan, column: str, matching: Match, position: int, backend: str
) -> KeyList:
    """The condition on an identity column, compared as its `match` says."""
    col: sa.ColumnElement[Any] = plan.table.c[column]
    name = f"i{position}"
    if matching is Match.casefold:
        return KeyList([sa.func.lower(col)], name, backend, [sa.String()])
    if matching is Match.phone:
        return KeyList([phone_digits(col)], name, backend, [sa.String()])
    return KeyList([col], name, backend)
