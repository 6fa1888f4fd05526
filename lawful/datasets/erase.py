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
of keys. A failure rolls everything back, and since every mask is idempotent and deleted
rows are not found again, running the erasure again finishes the work and changes nothing
that was already done, which the report says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.datasets.graph import Graph, LinkPlan, TablePlan
from lawful.datasets.masks import ColumnMask, MaskKeyMissing, column_mask
from lawful.datasets.model import ColumnErase, Release, Role, TableErase
from lawful.datasets.sql import batch_size, bind_values, chunks, coerce, keys_in
from lawful.datasets.traverse import RANK, Found, Key
from lawful.subjects import IdentityError, IdentityKind
from lawful.subjects.identity import normalise


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


def plan_erasure(
    conn: Connection, found: Found, mask_key: bytes | None
) -> tuple[dict[str, _Work], list[TableOutcome]]:
    """What erasing `found` takes, table by table, and the outcome it will report."""
    graph = found.graph
    shared = shared_rows(conn, found, mask_key)
    works: dict[str, _Work] = {}
    outcomes: list[TableOutcome] = []
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
        mine = [k for k, r in table.ranks.items() if r == RANK[Role.owner]]
        alone = [k for k in mine if k not in shared.get(name, ())]
        together = [k for k in mine if k in shared.get(name, ())]
        _release(found, plan, together, work, out, Role.owner, shared, mask_key)
        _release(found, plan, table.keys(Role.refers), work, out, Role.refers, shared, mask_key)
        _release(found, plan, table.keys(Role.accessor), work, out, Role.accessor, shared, mask_key)
        _own(found, plan, alone, work, out, mask_key)
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
    constant = all(m.constant for m in masks)
    if constant:
        work.constant = {m.column: m.apply(None, mask_key) for m in masks}
    for key in keys:
        changes = _changes(table.rows[key], table.index, masks, mask_key)
        if not changes:
            out.unchanged += 1
        elif constant:
            work.masked.append(key)
        else:
            work.per_row.append((key, changes))
    out.anonymized = len(work.masked) + len(work.per_row)
    if not masks:
        out.reasons.append("no column has an erasure action: the rows are left as they are")


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
        released |= _forget_identities(found, plan, [k for k in keys if k in table.matched], work, mask_key)
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
                column_mask(column, column_spec, plan.python_types.get(column), _length(plan, column))
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
    try:
        return kind, normalise(kind, str(raw))
    except IdentityError:
        return None


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
    target = found.tables[link.target]
    types = [found.graph.tables[link.table].python_types.get(c) for c in link.local]
    out = set()
    for key, rank in target.ranks.items():
        if rank == RANK[Role.owner] and key not in kept:
            out.add(
                tuple(
                    coerce(v, t)
                    for v, t in zip(target.values(key, link.remote), types, strict=True)
                )
            )
    return out


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
    inherits: list[tuple[str, Key, str, set[Key]]] = []  # row, and the subject rows it hangs off
    for name, plan in graph.tables.items():
        table = found.tables[name]
        mine = [k for k, r in table.ranks.items() if r == RANK[Role.owner]]
        if not mine:
            continue
        for link in plan.links:
            if link.role is not Role.owner:
                continue
            by_value = _subject_rows_by_value(found, link)
            unexplained: dict[Key, list[Key]] = {}
            for key in mine:
                value = _link_value(table, key, link)
                if value is None:
                    continue
                ours = by_value.get(value, set())
                if ours:
                    inherits.append((name, key, link.target, ours))
                if not (ours and link.remote_is_key):
                    unexplained.setdefault(value, []).append(key)
            for value in _others(conn, found, link, list(unexplained), mask_key):
                shared[name].update(unexplained[value])
        if plan.identities:
            shared[name].update(_someone_elses(found, plan, mine))
    changed = True
    while changed:
        changed = False
        for name, key, target, ours in inherits:
            if key not in shared[name] and ours & shared[target]:
                shared[name].add(key)
                changed = True
    return shared


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


def _subject_rows_by_value(found: Found, link: LinkPlan) -> dict[Key, set[Key]]:
    target = found.tables[link.target]
    types = [found.graph.tables[link.table].python_types.get(c) for c in link.local]
    out: dict[Key, set[Key]] = {}
    for key, rank in target.ranks.items():
        if rank == RANK[Role.owner]:
            value = tuple(
                coerce(v, t) for v, t in zip(target.values(key, link.remote), types, strict=True)
            )
            out.setdefault(value, set()).add(key)
    return out


def _others(
    conn: Connection, found: Found, link: LinkPlan, values: list[Key], mask_key: bytes | None
) -> set[Key]:
    """Which `values` (of the link's local columns) a row not owned by the subject holds.

    A row already erased by anonymization (every masked column holds its masked value)
    is an owner no more: when the last owner of a shared row erases, the row goes.
    """
    if not values:
        return set()
    plan = found.graph.tables[link.target]
    target = found.tables[link.target]
    remote = [plan.table.c[c] for c in link.remote]
    key_cols = [plan.table.c[c] for c in plan.key]
    masks = (
        _masks(plan) if plan.spec.erase is TableErase.anonymize and not plan.spec.deletes else []
    )
    masked_cols = [plan.table.c[m.column] for m in masks]
    masked_index = {m.column: i for i, m in enumerate(masks)}
    local_types = [found.graph.tables[link.table].python_types.get(c) for c in link.local]
    remote_types = [plan.python_types.get(c) for c in link.remote]
    asked = [
        tuple(coerce(v, t) for v, t in zip(value, remote_types, strict=True)) for value in values
    ]
    back = dict(zip(asked, values, strict=True))
    stmt = sa.select(*remote, *key_cols, *masked_cols).where(keys_in(remote, "v"))
    out: set[Key] = set()
    width, keys = len(remote), len(key_cols)
    for chunk in chunks([a for a in asked if None not in a], batch_size(found.graph.backend)):
        found.statements += 1
        for row in conn.execute(stmt, {"v": bind_values(chunk, width)}):
            key = tuple(row[width : width + keys])
            if target.ranks.get(key) == RANK[Role.owner]:
                continue
            if masks and _erased(tuple(row[width + keys :]), masked_index, masks, mask_key):
                continue  # an erased subject's anonymized row
            value = tuple(row[:width])
            original = back.get(value)
            if original is None:  # the database returned it in its own type
                original = tuple(coerce(v, t) for v, t in zip(value, local_types, strict=True))
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
    return [
        m
        for name, col in plan.spec.columns.items()
        if (m := column_mask(name, col, plan.python_types.get(name), _length(plan, name)))
    ]


# --- applying it --------------------------------------------------------------------------


def apply_erasure(conn: Connection, graph: Graph, works: dict[str, _Work]) -> int:
    """Run the planned statements in `conn`'s transaction; the number of statements."""
    count = 0
    size = batch_size(graph.backend)
    for work in works.values():
        count += _unlink(conn, work, size)
        count += _mask(conn, work, size)
    for name in graph.delete_order:
        count += _delete(conn, works[name], size)
    return count


def _key_where(plan: TablePlan) -> sa.ColumnElement[bool]:
    return keys_in([plan.table.c[c] for c in plan.key], "k")


def _unlink(conn: Connection, work: _Work, size: int) -> int:
    count = 0
    plan = work.plan
    for columns, keys in work.unlinks.items():
        stmt = sa.update(plan.table).where(_key_where(plan)).values({c: None for c in columns})
        count += _each_batch(conn, stmt, plan, keys, size)
    return count


def _mask(conn: Connection, work: _Work, size: int) -> int:
    plan = work.plan
    count = 0
    if work.masked:
        stmt = sa.update(plan.table).where(_key_where(plan)).values(work.constant)
        count += _each_batch(conn, stmt, plan, work.masked, size)
    if work.per_row:
        # One statement per set of changed columns, run with executemany over the rows.
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, changes in work.per_row:
            params = {f"k{i}": v for i, v in enumerate(key)}
            params |= {f"v_{c}": v for c, v in changes.items()}
            by_shape.setdefault(tuple(sorted(changes)), []).append(params)
        for columns, rows in by_shape.items():
            where = sa.and_(
                *(plan.table.c[c] == sa.bindparam(f"k{i}") for i, c in enumerate(plan.key))
            )
            stmt = (
                sa.update(plan.table)
                .where(where)
                .values({c: sa.bindparam(f"v_{c}") for c in columns})
            )
            for chunk in chunks(rows, size):
                conn.execute(stmt, list(chunk))
                count += 1
    return count


def _delete(conn: Connection, work: _Work, size: int) -> int:
    if not work.deletes:
        return 0
    plan = work.plan
    return _each_batch(
        conn, sa.delete(plan.table).where(_key_where(plan)), plan, work.deletes, size
    )


def _each_batch(
    conn: Connection, stmt: Any, plan: TablePlan, keys: Iterable[Key], size: int
) -> int:
    count = 0
    width = len(plan.key)
    for chunk in chunks(list(keys), size):
        conn.execute(stmt, {"k": bind_values(chunk, width)})
        count += 1
    return count


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
