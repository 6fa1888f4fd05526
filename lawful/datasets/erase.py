"""Erasure: apply the annotated actions to a subject's rows, in one transaction per database.

The plan is computed from the rows found, before anything is written:

* a row owned by the subject alone gets its table's action: deleted, anonymized (each
  column's mask), or kept with the reason and retention rule that keep it;
* a row with other owners (a household's address, a message between two people) is only
  released: the links that make it the subject's are set NULL (`release: unlink`), or it is
  kept as it is (`release: keep`); the last owner to erase gets the table's action;
* someone else's row that merely refers to the subject (`refers`) is unlinked the same way;
* rows the subject only accesses are left alone.

Then, in one transaction: the updates (unlinking first frees rows for deletion), then the
deletes in foreign-key order, children first. Each is one statement per table per batch
of keys (or of the link values that picked the rows, see `_through`), all sent together.
A failure rolls everything back, and since every mask is idempotent and deleted
rows are not found again, running the erasure again finishes the work and changes nothing
that was already done, which the report says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.datasets.graph import Graph, LinkPlan, TablePlan
from lawful.datasets.masks import ColumnMask, MaskKeyMissing, column_mask
from lawful.datasets.model import ColumnErase, Release, Role, TableErase
from lawful.datasets.sql import (
    KeyList,
    Params,
    Runner,
    Statement,
    batch_size,
    chunks,
    coerce,
)
from lawful.datasets.sql import statement as cached
from lawful.datasets.traverse import RANK, Found, Key, normalised_identity, tuple_getter
from lawful.subjects import IdentityKind

Query = tuple[Statement, Params]


@dataclass
class TableOutcome:
    """What erasure did (or, in a dry run, would do) to one table's rows of the subject."""

    table: str
    found: int = 0  # the subject's own rows
    accessed: int = 0  # rows the subject may see but does not own (left alone)
    referring: int = 0  # others' rows pointing at the subject
    deleted: int = 0
    anonymized: int = 0
    unlinked: int = 0  # shared or referring rows whose link to the subject was cut
    kept: int = 0  # rows left as they are: kept by a rule, or shared with other owners
    unchanged: int = 0  # nothing to change: erased by an earlier run, or holding nothing to erase
    reasons: list[str] = field(default_factory=list)
    kept_columns: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return self.deleted + self.anonymized + self.unlinked

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "found": self.found,
            "accessed": self.accessed,
            "referring": self.referring,
            "deleted": self.deleted,
            "anonymized": self.anonymized,
            "unlinked": self.unlinked,
            "kept": self.kept,
            "unchanged": self.unchanged,
            "reasons": list(self.reasons),
            "kept_columns": dict(self.kept_columns),
        }


@dataclass
class DatasetErasure:
    dataset: str
    tables: list[TableOutcome]
    dry_run: bool
    statements: int = 0

    @property
    def found(self) -> int:
        return sum(t.found + t.referring for t in self.tables)

    @property
    def changed(self) -> int:
        return sum(t.changed for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "dry_run": self.dry_run,
            "found": self.found,
            "changed": self.changed,
            "tables": [t.to_dict() for t in self.tables if t.found or t.accessed or t.referring],
        }


class ErasureFailed(Exception):
    """The database refused a change; nothing of this dataset's erasure was written."""


# --- the plan ---------------------------------------------------------------------------


@dataclass
class _Work:
    """The statements one table needs."""

    plan: TablePlan
    deletes: list[Key] = field(default_factory=list)
    constant: dict[str, Any] = field(default_factory=dict)  # column -> value, for `masked`
    masked: list[Key] = field(default_factory=list)
    per_row: list[tuple[Key, dict[str, Any]]] = field(default_factory=list)
    unlinks: dict[tuple[str, ...], list[Key]] = field(default_factory=dict)
    # When the rows to mask or delete are exactly those holding these values in the
    # columns of the one link that reached them, the statements pick them by those values
    # (a customer's id) rather than by their keys (50,000 of them): see `_through`.
    through: LinkPlan | None = None
    through_values: list[Key] = field(default_factory=list)


def plan_erasure(
    conn: Connection, found: Found, mask_key: bytes | None
) -> tuple[dict[str, _Work], list[TableOutcome]]:
    """What erasing `found` takes, table by table, and the outcome it will report."""
    graph = found.graph
    shared = shared_rows(conn, found, mask_key)
    works: dict[str, _Work] = {}
    outcomes: list[TableOutcome] = []
    owner = RANK[Role.owner]
    for name, plan in graph.tables.items():
        table = found.tables[name]
        work = _Work(plan)
        out = TableOutcome(name)
        counts = table.counts()
        out.found, out.accessed, out.referring = (
            counts["owner"],
            counts["accessor"],
            counts["refers"],
        )
        mine = [k for k, r in table.ranks.items() if r == owner]
        theirs_too = shared.get(name, set())
        alone = [k for k in mine if k not in theirs_too]
        together = [k for k in mine if k in theirs_too]
        _release(found, plan, together, work, out, Role.owner, shared, mask_key)
        _release(found, plan, table.keys(Role.refers), work, out, Role.refers, shared, mask_key)
        _release(found, plan, table.keys(Role.accessor), work, out, Role.accessor, shared, mask_key)
        _own(found, plan, alone, work, out, mask_key)
        _through(found, plan, alone, work, out)
        works[name] = work
        outcomes.append(out)
    return works, outcomes


def _own(
    found: Found,
    plan: TablePlan,
    keys: list[Key],
    work: _Work,
    out: TableOutcome,
    mask_key: bytes | None,
) -> None:
    """The table's action on rows the subject alone owns."""
    spec = plan.spec
    for column, col in spec.columns.items():
        if col.erase is ColumnErase.keep and keys:
            out.kept_columns[column] = _kept_because(col.reason, col.rule)
    if not keys:
        return
    if spec.erase is TableErase.keep:
        out.kept += len(keys)
        out.reasons.append(f"{len(keys)} kept: {_kept_because(spec.reason, spec.rule)}")
        return
    if spec.deletes:
        work.deletes = keys
        out.deleted = len(keys)
        return
    masks = _masks(plan)
    table = found.tables[plan.name]
    if masks and all(m.constant for m in masks):
        # The same values for every row: one set-based UPDATE of the rows not holding them.
        work.constant = {m.column: m.apply(None, mask_key) for m in masks}
        current = tuple_getter([table.index[m.column] for m in masks])
        erased = tuple(work.constant.values())
        for key in keys:
            if current(table.rows[key]) == erased:
                out.unchanged += 1
            else:
                work.masked.append(key)
    else:
        for key in keys:
            changes = _changes(table.rows[key], table.index, masks, mask_key)
            if not changes:
                out.unchanged += 1
            else:
                work.per_row.append((key, changes))
    out.anonymized = len(work.masked) + len(work.per_row)
    if not masks:
        out.reasons.append("no column has an erasure action: the rows are left as they are")


def _through(
    found: Found, plan: TablePlan, alone: list[Key], work: _Work, out: TableOutcome
) -> None:
    """Let the statements pick the rows by the link they were reached through, if that is exact.

    It is when every row of the table that was found gets the same set-based action
    (deleted, or masked with constant values, none already erased), the table has one
    link, an owner link to a key of its target, and no identity columns, and the link's
    columns hold the same type on both sides: then the rows holding the link values of
    the rows found are the rows found (the walk asked for exactly those values).
    """
    table = found.tables[plan.name]
    if len(plan.links) != 1 or plan.identities or not alone or len(alone) != len(table.ranks):
        return
    link = plan.links[0]
    if link.role is not Role.owner or not link.remote_is_key:
        return
    if work.unlinks or work.per_row or out.unchanged or not (work.deletes or work.masked):
        return
    theirs = found.graph.tables[link.target].python_types
    for local, remote in zip(link.local, link.remote, strict=True):
        mine = plan.python_types.get(local)
        if mine is None or mine is not theirs.get(remote):
            return  # values converted to compare them: the database might pick others
    value = tuple_getter([table.index[c] for c in link.local])
    values = {value(table.rows[k]) for k in alone}
    if any(None in v for v in values):
        return
    work.through, work.through_values = link, list(values)


def _changes(
    row: tuple[Any, ...], index: dict[str, int], masks: list[ColumnMask], key: bytes | None
) -> dict[str, Any]:
    changes = {}
    for mask in masks:
        current = row[index[mask.column]]
        new = mask.apply(current, key)
        if new != current:
            changes[mask.column] = new
    return changes


def _release(
    found: Found,
    plan: TablePlan,
    keys: list[Key],
    work: _Work,
    out: TableOutcome,
    role: Role,
    shared: dict[str, set[Key]],
    mask_key: bytes | None,
) -> None:
    """Cut what ties rows the subject does not own alone to the subject.

    `role` says which rows these are: the subject's rows that others own too (owner),
    others' rows that refer to the subject (refers), or rows the subject may only see
    (accessor). Each link of that role pointing at the subject's rows is unlinked when
    its `release` says so; a shared row found by one of the subject's identities also
    loses those identities (the column's mask, else NULL). A link to a row of the
    subject's that others own too (a group) is left: that row stays for them, and so
    does what hangs off it.
    """
    if not keys:
        return
    table = found.tables[plan.name]
    released: set[Key] = set()
    for link in plan.links:
        if link.role is not role:
            continue
        theirs = _subject_values(found, link, shared.get(link.target, set()))
        hits = [k for k in keys if _link_value(table, k, link) in theirs]
        if hits and link.release is Release.unlink:
            work.unlinks.setdefault(link.local, []).extend(hits)
            released.update(hits)
    if role is Role.owner and plan.identities:
        released |= _forget_identities(
            found, plan, [k for k in keys if k in table.matched], work, mask_key
        )
    out.unlinked += len(released)
    rest = len(keys) - len(released)
    if role is Role.owner:
        if released:
            out.reasons.append(
                f"{len(released)} shared with other subjects: unlinked from this one, kept for them"
            )
        if rest:
            out.kept += rest
            out.reasons.append(f"{rest} kept: shared with other subjects")
    elif role is Role.refers:
        if released:
            out.reasons.append(
                f"{len(released)} of other people's rows pointed at this subject: the link is removed"
            )
        if rest:
            out.kept += rest
            out.reasons.append(
                f"{rest} of other people's rows point at this subject: left as they are (release: keep)"
            )
    elif released:
        out.reasons.append(
            f"{len(released)} rows this subject could see: their link to this subject is removed"
        )


def _forget_identities(
    found: Found, plan: TablePlan, keys: list[Key], work: _Work, mask_key: bytes | None
) -> set[Key]:
    """Clear the subject's identities from shared rows they were found by; the rows changed."""
    table = found.tables[plan.name]
    ours = subject_identities(found)
    changed: set[Key] = set()
    for key in keys:
        changes: dict[str, Any] = {}
        for column, spec in plan.identities:
            value = table.value(key, column)
            if _identity_of(spec.kind, value) not in ours:
                continue
            column_spec = plan.spec.columns.get(column)
            mask = (
                column_mask(
                    column, column_spec, plan.python_types.get(column), _length(plan, column)
                )
                if column_spec is not None
                else None
            )
            if mask is not None:
                new = mask.apply(value, mask_key)
            elif plan.table.c[column].nullable and column not in plan.key:
                new = None
            else:
                continue  # NOT NULL without a mask: the check warns; the row stays as it is
            if new != value:
                changes[column] = new
        if changes:
            work.per_row.append((key, changes))
            changed.add(key)
    return changed


def subject_identities(found: Found) -> set[tuple[IdentityKind, str]]:
    """The subject's identities: those searched, and those on the rows they matched."""
    out = {(i.kind, i.value) for i in found.searched}
    for table in found.tables.values():
        for column, spec in table.plan.identities:
            if column not in table.index:
                continue
            for key in table.matched:
                identity = _identity_of(spec.kind, table.value(key, column))
                if identity is not None:
                    out.add(identity)
    return out


def _identity_of(kind: IdentityKind, raw: Any) -> tuple[IdentityKind, str] | None:
    """A column's value as a normalised identity; None when empty or not one (a bare phone)."""
    if raw is None:
        return None
    value = normalised_identity(kind, str(raw))
    return None if value is None else (kind, value)


def _kept_because(reason: str | None, rule: str | None) -> str:
    text = reason or "kept"
    return f"{text} (retention rule {rule})" if rule else text


def _length(plan: TablePlan, column: str) -> int | None:
    return getattr(plan.table.c[column].type, "length", None)


def _link_value(table: Any, key: Key, link: LinkPlan) -> Key | None:
    value = table.values(key, link.local)
    return None if any(v is None for v in value) else value


def _subject_values(found: Found, link: LinkPlan, kept: set[Key]) -> set[Key]:
    """The link's remote values on the subject's own rows, as the local columns hold them.

    Rows in `kept` (shared with other subjects, so they stay) are left out.
    """
    return {value for value, key in _owned_values(found, link) if key not in kept}


# --- shared rows --------------------------------------------------------------------------


def shared_rows(conn: Connection, found: Found, mask_key: bytes | None) -> dict[str, set[Key]]:
    """The subject's rows that other subjects own too, per table.

    A row is shared when one of its owner links points at a row that is not the
    subject's (found by one query per link, only for values the subject's rows don't
    explain), or at a row of the subject's that is itself shared (computed to a fixpoint,
    so a cycle of links settles).
    """
    graph = found.graph
    shared: dict[str, set[Key]] = {name: set() for name in graph.tables}
    # Per owner link: the table's rows of the subject (keys, rows, the link's value on a row)
    # and the subject's rows of the target by value (None when the value is the key of the
    # target's row). Rows whose value shared rows of the target hold are shared too.
    inherits: list[
        tuple[str, str, list[Key], dict[Key, Any], Callable[[Any], Key], _ByValue | None]
    ] = []
    asks: list[tuple[str, LinkPlan, dict[Key, list[Key]]]] = []  # values to ask the database
    owner = RANK[Role.owner]
    for name, plan in graph.tables.items():
        table = found.tables[name]
        mine = [k for k, r in table.ranks.items() if r == owner]
        if not mine:
            continue
        rows = table.rows
        for link in plan.links:
            if link.role is not Role.owner:
                continue
            local = tuple_getter([table.index[c] for c in link.local])
            by_value = None if _to_key(found, link) else _subject_rows_by_value(found, link)
            target = found.tables[link.target].ranks
            unexplained: dict[Key, list[Key]] = {}
            for key in mine:
                value = local(rows[key])
                if None in value:
                    continue
                ours = target.get(value) == owner if by_value is None else value in by_value
                if not (ours and link.remote_is_key):  # may be another's: ask the database
                    unexplained.setdefault(value, []).append(key)
            inherits.append((name, link.target, mine, rows, local, by_value))
            if unexplained:
                asks.append((name, link, unexplained))
        if plan.identities:
            shared[name].update(_someone_elses(found, plan, mine))
    # One query per link, all sent at once.
    answers = _others(conn, found, [(link, list(values)) for _, link, values in asks], mask_key)
    for (name, _, unexplained), values in zip(asks, answers, strict=True):
        for value in values:
            shared[name].update(unexplained[value])
    # To a fixpoint: rows hanging off shared rows are shared; only the tables whose shared
    # rows grew in the last round can make more (usually none grew at all).
    grew = {name for name, keys in shared.items() if keys}
    while grew:
        targets, grew = grew, set()
        for name, target, mine, rows, local, by_value in inherits:
            if target not in targets:
                continue
            theirs = set(shared[target])
            hits = []
            for key in mine:
                value = local(rows[key])
                if None in value:
                    continue
                if by_value is None:  # the value is the key of the target's row
                    hangs = value in theirs
                else:
                    hangs = not by_value.get(value, _NONE).isdisjoint(theirs)
                if hangs:
                    hits.append(key)
            if not shared[name].issuperset(hits):
                shared[name].update(hits)
                grew.add(name)
    return shared


_ByValue = dict[Key, set[Key]]
_NONE: frozenset[Key] = frozenset()


def _someone_elses(found: Found, plan: TablePlan, mine: list[Key]) -> set[Key]:
    """Rows reached through links that hold another person's identity: theirs too.

    A table with identities holds people's own rows (an invitation holds the invitee's
    email). Reached from the subject through a link but not found by the subject's
    identities, such a row is also the person's whose identity it holds.
    """
    table = found.tables[plan.name]
    ours: set[tuple[IdentityKind, str]] | None = None
    out = set()
    for key in mine:
        if key in table.matched:
            continue
        ours = ours if ours is not None else subject_identities(found)
        for column, spec in plan.identities:
            identity = _identity_of(spec.kind, table.value(key, column))
            if identity is not None and identity not in ours:
                out.add(key)
                break
    return out


def _to_key(found: Found, link: LinkPlan) -> bool:
    """Whether the link holds the key of its target's rows, typed alike on both sides (a
    foreign key to a primary key, the usual case): then a value is the key of the row."""
    target = found.graph.tables[link.target]
    types = found.graph.tables[link.table].python_types
    return link.remote == target.key and all(
        types.get(local) is not None and types.get(local) is target.python_types.get(remote)
        for local, remote in zip(link.local, link.remote, strict=True)
    )


def _subject_rows_by_value(found: Found, link: LinkPlan) -> dict[Key, set[Key]]:
    """The subject's own rows of the link's target, by the link value they hold."""
    by_value: dict[Key, set[Key]] = {}
    for value, key in _owned_values(found, link):
        by_value.setdefault(value, set()).add(key)
    return by_value


def _owned_values(found: Found, link: LinkPlan) -> Iterator[tuple[Key, Key]]:
    """The link's remote values on the subject's own rows of its target (as the linking
    table's columns hold them), each with the row's key."""
    target = found.tables[link.target]
    types = [found.graph.tables[link.table].python_types.get(c) for c in link.local]
    get = tuple_getter([target.index[c] for c in link.remote])
    owner, rows = RANK[Role.owner], target.rows
    single = types[0] if len(types) == 1 else None
    for key, rank in target.ranks.items():
        if rank != owner:
            continue
        value = get(rows[key])
        if single is not None and type(value[0]) is single:
            yield value, key  # already of the linking column's type (the usual case)
        else:
            yield tuple(coerce(v, t) for v, t in zip(value, types, strict=True)), key


def _others(
    conn: Connection,
    found: Found,
    asks: list[tuple[LinkPlan, list[Key]]],
    mask_key: bytes | None,
) -> list[set[Key]]:
    """For each link, which of its values (local columns) a row not owned by the subject holds.

    A row already erased by anonymization (every masked column holds its masked value)
    is an owner no more: when the last owner of a shared row erases, the row goes. The
    links' queries don't depend on each other: they run together.
    """
    out: list[set[Key] | None] = []
    questions: list[_Others] = []
    for link, values in asks:
        known = _prefetched(found, link, values, mask_key)
        out.append(known)
        if known is None:
            questions.append(_Others(found, link, values))
    runner = Runner(conn)
    results = runner.run([query for q in questions for query in q.queries])
    found.statements += runner.statements
    at = 0
    asked = iter(questions)
    for i, known in enumerate(out):
        if known is not None:
            continue
        q = next(asked)
        rows = [row for result in results[at : at + len(q.queries)] for row in result]
        out[i] = q.answer(rows, mask_key)
        at += len(q.queries)
    return [answer or set() for answer in out]


def _prefetched(
    found: Found, link: LinkPlan, values: list[Key], mask_key: bytes | None
) -> set[Key] | None:
    """The answer from what the walk asked along the way, if it asked for all `values`."""
    asked = found.prefetched.get((link.table, link.index))
    if not asked:
        return None
    wanted = set(values)
    if not wanted <= set().union(*(covered for covered, _, _ in asked)):
        return None
    held: set[Key] = set()
    for _, question, rows in asked:
        held |= question.answer(rows, mask_key)
    return held & wanted


class _Others:
    """The query asking which values of a link rows of others hold, and its answer."""

    def __init__(self, found: Found, link: LinkPlan, values: list[Key]) -> None:
        plan = found.graph.tables[link.target]
        self.found, self.link, self.plan = found, link, plan
        anonymized = plan.spec.erase is TableErase.anonymize and not plan.spec.deletes
        self.masks = _masks(plan) if anonymized else []
        self.masked_index = {m.column: i for i, m in enumerate(self.masks)}
        self.local_types = [found.graph.tables[link.table].python_types.get(c) for c in link.local]
        remote_types = [plan.python_types.get(c) for c in link.remote]
        asked = [
            tuple(coerce(v, t) for v, t in zip(value, remote_types, strict=True))
            for value in values
        ]
        self.back = dict(zip(asked, values, strict=True))
        backend = found.graph.backend
        keys = cached(
            plan.table,
            ("remote", link.remote),
            lambda: KeyList([plan.table.c[c] for c in link.remote], "v", backend),
        )

        columns = [*link.remote, *plan.key, *(m.column for m in self.masks)]
        self.queries: list[Query] = []
        for chunk in chunks([a for a in asked if None not in a], keys.batch):
            one, params = keys.form(chunk)
            stmt = cached(
                plan.table,
                ("others", link.remote, len(self.masks), one),
                lambda one=one: Statement(
                    sa.select(*(plan.table.c[c] for c in columns)).where(keys.condition(one))
                ),
            )
            self.queries.append((stmt, params))

    def answer(self, rows: list[Sequence[Any]], mask_key: bytes | None) -> set[Key]:
        target = self.found.tables[self.link.target]
        width, keys = len(self.link.remote), len(self.plan.key)
        out: set[Key] = set()
        for row in rows:
            key = tuple(row[width : width + keys])
            if target.ranks.get(key) == RANK[Role.owner]:
                continue
            masked = tuple(row[width + keys :])
            if self.masks and _erased(masked, self.masked_index, self.masks, mask_key):
                continue  # an erased subject's anonymized row
            value = tuple(row[:width])
            original = self.back.get(value)
            if original is None:  # the database returned it in its own type
                original = tuple(coerce(v, t) for v, t in zip(value, self.local_types, strict=True))
            out.add(original)
        return out


def _erased(
    row: tuple[Any, ...], index: dict[str, int], masks: list[ColumnMask], key: bytes | None
) -> bool:
    try:
        return not _changes(row, index, masks, key)
    except MaskKeyMissing:  # a value that is not hashed yet: the row is not erased
        return False


def _masks(plan: TablePlan) -> list[ColumnMask]:
    """The table's column masks (made once per graph; not to be changed)."""
    return cached(
        plan.table,
        ("masks",),
        lambda: [
            m
            for name, col in plan.spec.columns.items()
            if (m := column_mask(name, col, plan.python_types.get(name), _length(plan, name)))
        ],
    )


# --- applying it --------------------------------------------------------------------------


def apply_erasure(conn: Connection, graph: Graph, works: dict[str, _Work]) -> int:
    """Run the planned statements in `conn`'s transaction; the number of statements.

    None depends on another's result, so they are sent together (one round trip on
    PostgreSQL) and run in order: the updates, then the deletes, children first.
    """
    queries: list[Query] = []
    for work in works.values():
        queries += _unlink(work, graph.backend)
        queries += _mask(work, graph.backend)
    for name in graph.delete_order:
        queries += _delete(works[name], graph.backend)
    runner = Runner(conn)
    runner.run(queries)
    return runner.statements


def _by_key(
    plan: TablePlan,
    backend: str,
    shape: tuple[Any, ...],
    build: Callable[[sa.ColumnElement[bool]], Any],
    keys: list[Key],
    columns: tuple[str, ...] | None = None,
) -> list[Query]:
    """`build(where)` run on the rows with these keys, a batch of keys at a time.

    `columns` picks the rows by other columns than the key (a link's, see `_through`).
    Each statement shape is built once per graph (`shape` names it), in the form for a
    single key and in the form for a list (`KeyList.form`).
    """
    columns = columns or plan.key
    keys_ = cached(
        plan.table,
        ("keys", columns),
        lambda: KeyList([plan.table.c[c] for c in columns], "k", backend),
    )
    queries: list[Query] = []
    for chunk in chunks(keys, keys_.batch):
        one, params = keys_.form(chunk)
        stmt = cached(
            plan.table,
            (*shape, columns, one),
            lambda one=one: Statement(build(keys_.condition(one))),
        )
        queries.append((stmt, params))
    return queries


def _rows_of(work: _Work, keys: list[Key]) -> tuple[list[Key], tuple[str, ...] | None]:
    """How the statements pick these rows: by key, or by the link values (`_through`)."""
    if work.through is not None:
        return work.through_values, work.through.local
    return keys, None


def _unlink(work: _Work, backend: str) -> list[Query]:
    plan = work.plan
    queries: list[Query] = []
    for columns, keys in work.unlinks.items():
        nulls = {c: None for c in columns}
        queries += _by_key(
            plan,
            backend,
            ("unlink", columns),
            lambda where, nulls=nulls: sa.update(plan.table).where(where).values(nulls),
            keys,
        )
    return queries


def _mask(work: _Work, backend: str) -> list[Query]:
    plan = work.plan
    queries: list[Query] = []
    if work.masked:
        queries += _by_key(
            plan,
            backend,
            ("mask", tuple(work.constant.items())),
            lambda where: sa.update(plan.table).where(where).values(work.constant),
            *_rows_of(work, work.masked),
        )
    if work.per_row:
        # One statement per set of changed columns, run with executemany over the rows.
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, changes in work.per_row:
            params = {f"k{i}": v for i, v in enumerate(key)}
            params |= {f"v_{c}": v for c, v in changes.items()}
            by_shape.setdefault(tuple(sorted(changes)), []).append(params)
        for columns, rows in by_shape.items():

            def build(columns: tuple[str, ...] = columns) -> Statement:
                where = sa.and_(
                    *(plan.table.c[c] == sa.bindparam(f"k{i}") for i, c in enumerate(plan.key))
                )
                values = {c: sa.bindparam(f"v_{c}") for c in columns}
                return Statement(sa.update(plan.table).where(where).values(values))

            stmt = cached(plan.table, ("per row", columns), build)
            queries += [(stmt, list(chunk)) for chunk in chunks(rows, batch_size(backend))]
    return queries


def _delete(work: _Work, backend: str) -> list[Query]:
    if not work.deletes:
        return []
    plan = work.plan
    return _by_key(
        plan,
        backend,
        ("delete",),
        lambda where: sa.delete(plan.table).where(where),
        *_rows_of(work, work.deletes),
    )


def describe_failure(exc: sa.exc.DBAPIError, dataset: str) -> str:
    """What the database refused, without the values it quoted (they may be personal)."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    table = getattr(diag, "table_name", None)
    text = str(orig).strip().splitlines()[0] if orig is not None else type(exc).__name__
    if constraint or table:
        where = " ".join(
            x
            for x in (
                f"table {table}" if table else "",
                f"constraint {constraint}" if constraint else "",
            )
            if x
        )
        return f"dataset {dataset}: the database refused the change ({where}); nothing was changed"
    # MySQL/SQLite messages name constraints and tables, not values; cut anything quoted.
    cleaned = _without_values(text)
    return f"dataset {dataset}: the database refused the change ({cleaned}); nothing was changed"


def _without_values(text: str) -> str:
    import re

    return re.sub(r"\(([^()]*)\)=\([^)]*\)", r"(\1)=(…)", text)


def outcomes_lines(outcomes: Iterable[TableOutcome]) -> Iterator[str]:
    for out in outcomes:
        if not (out.found or out.accessed or out.referring):
            continue
        parts = [
            f"{n} {what}"
            for n, what in (
                (out.deleted, "deleted"),
                (out.anonymized, "anonymized"),
                (out.unlinked, "unlinked"),
                (out.kept, "kept"),
                (out.unchanged, "unchanged"),
                (out.accessed, "accessed only, left alone"),
            )
            if n
        ]
        yield f"{out.table}: {', '.join(parts) or 'nothing to do'}"
