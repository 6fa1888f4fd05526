"""Sweeps: the rows whose retention period is over, deleted or anonymized, in batches.

For each target (a rule on a table, `lawful.retention.targets`) a sweep walks the table
in batches, each batch its own transaction, so a sweep can be interrupted at any point
and run again: what was committed is not found again (deleted rows are gone, anonymized
rows already hold their masked values and are not counted twice), and the rest is done.

* Integer keys are walked by key range (`key >= lo AND key < lo + batch`, the next `lo`
  the first key at or after the range's end): one `DELETE ... WHERE <range> AND clock <
  cutoff` per range, the same statement on SQLite, PostgreSQL and MySQL, which reads
  each part of the table once however many rows expired.
* Other keys are walked by keyset (`key > last ORDER BY key LIMIT batch`, the keys read
  and then deleted by key in the same transaction).
* Anonymizing reads the batch's expired rows, applies the table's column masks (as
  erasure does, `lawful.datasets.masks`) and writes only the rows that change, one
  executemany per batch.

What a sweep never touches: rows the rule does not cover (only the annotated table, only
rows past the cutoff: `clock < cutoff`, so a NULL clock never expires), rows under a legal
hold (their keys are excluded in the statement; a hold on a whole table skips it), and,
when deleting, rows still referenced by rows of annotated tables that stay (a foreign key
or a link): those are skipped and counted, and go in a later sweep once their children
have gone. Tables are swept children first, so one sweep removes a whole expired tree.
"""

from __future__ import annotations

import datetime as dt
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from lawful.datasets.erase import describe_failure
from lawful.datasets.masks import MaskKeyMissing
from lawful.policy.durations import Duration
from lawful.retention.targets import Target

DEFAULT_BATCH = 10_000
# PostgreSQL walks the heap by block ranges: a range holding about this many rows per
# statement. Larger than elsewhere: each statement scans the range once in order, so
# fewer, longer ranges cost less per row (0.88 of one hand-written DELETE over 1M of 5M
# rows in bench/sweep.py, against 0.64 with ranges of 10,000 rows), and a range's
# transaction holds row locks only on the expired rows it deletes.
BLOCK_BATCH = 200_000
Key = tuple[Any, ...]


@dataclass(frozen=True)
class Held:
    """What legal holds keep out of one table's sweep: the whole table, or these rows."""

    table: bool = False
    keys: frozenset[Key] = frozenset()

    def __bool__(self) -> bool:
        return self.table or bool(self.keys)


NOTHING_HELD = Held()


@dataclass
class TableSweep:
    """What a sweep of one rule on one table did, or (dry run) would do."""

    rule: str
    dataset: str | None  # None: lawful's own records
    table: str
    action: str  # delete, anonymize (or, in lawful's records, what is cleared)
    clock: str  # the column the period is counted from
    cutoff: dt.datetime
    rows: int = 0  # deleted or anonymized (dry run: would be)
    held: int = 0  # expired, but under a legal hold
    skipped: int = 0  # expired, but still referenced by rows that stay
    oldest: Any = None  # dry run: the oldest clock value among the rows that would go
    batches: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        oldest = self.oldest.isoformat() if hasattr(self.oldest, "isoformat") else self.oldest
        return {
            "rule": self.rule,
            "dataset": self.dataset,
            "table": self.table,
            "action": self.action,
            "from": self.clock,
            "cutoff": self.cutoff.isoformat(),
            "rows": self.rows,
            "held": self.held,
            "skipped": self.skipped,
            "oldest": oldest,
            "batches": self.batches,
            "error": self.error,
        }


@dataclass
class RuleSweep:
    """One rule's tables in one run."""

    rule: str
    keep: str
    then: str
    tables: list[TableSweep] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def failed(self) -> bool:
        return any(t.error for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "keep": self.keep,
            "then": self.then,
            "rows": self.rows,
            "tables": [t.to_dict() for t in self.tables],
        }


def cutoff(keep: Duration, now: dt.datetime) -> dt.datetime:
    """The instant a clock must be before for its period of `keep` to be over at `now`.

    The inverse of `Duration.add_to`: months and years first (clamped to the month's
    end), then weeks, days and hours; business days step back over weekends.
    """
    if keep.business_days:
        day, left = now, keep.business_days
        while left:
            day -= dt.timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
        return day
    months = keep.years * 12 + keep.months
    year, month = divmod(now.month - 1 - months, 12)
    year += now.year
    month += 1
    back = now.replace(year=year, month=month, day=min(now.day, monthrange(year, month)[1]))
    return back - dt.timedelta(weeks=keep.weeks, days=keep.days, hours=keep.hours)


# --- conditions ---------------------------------------------------------------------------


def _key_columns(target: Target) -> list[sa.ColumnElement[Any]]:
    return [target.plan.table.c[c] for c in target.plan.key]


def _expired(target: Target, limit: dt.datetime) -> sa.ColumnElement[bool]:
    """Past the cutoff; or, for a clock on linked rows, reached by none of them (an orphan)."""
    past = target.clock < sa.literal(target.bound(limit), type_=target.clock.type)
    return past if target.orphan is None else sa.or_(past, target.orphan)


def _held(target: Target, held: Held) -> sa.ColumnElement[bool] | None:
    """Rows of the held keys (None when no row is held one by one)."""
    if not held.keys:
        return None
    columns = _key_columns(target)
    if len(columns) == 1:
        return columns[0].in_([k[0] for k in held.keys])
    return sa.tuple_(*columns).in_([tuple(k) for k in held.keys])


def _free(target: Target) -> sa.ColumnElement[bool] | None:
    """Rows no row of an annotated table points at (None when nothing can point at them)."""
    if not target.references:
        return None
    table = target.plan.table
    conditions = []
    for i, ref in enumerate(target.references):
        other = ref.table.alias(f"ref_{i}")
        match = sa.and_(
            *(other.c[a] == table.c[b] for a, b in zip(ref.columns, ref.targets, strict=True))
        )
        conditions.append(~sa.exists().where(match))
    return sa.and_(*conditions)


def _sweepable(target: Target, limit: dt.datetime, held: Held) -> sa.ColumnElement[bool]:
    """Expired, not held, and (deleting) not referenced: the rows a sweep may touch."""
    parts = [_expired(target, limit)]
    held_rows = _held(target, held)
    if held_rows is not None:
        parts.append(~held_rows)
    free = _free(target) if target.action == "delete" else None
    if free is not None:
        parts.append(free)
    return sa.and_(*parts)


def _new(target: Target, limit: dt.datetime) -> TableSweep:
    return TableSweep(
        rule=target.rule,
        dataset=target.dataset,
        table=target.table,
        action=target.action,
        clock=target.use.from_,
        cutoff=limit,
    )


# --- counting -----------------------------------------------------------------------------


def _count_held_and_skipped(
    conn: Connection, target: Target, limit: dt.datetime, held: Held, out: TableSweep
) -> None:
    """Expired rows under a hold, and (deleting) expired rows still referenced."""
    expired = _expired(target, limit)
    if held.table:
        out.held = conn.execute(
            sa.select(sa.func.count()).select_from(target.plan.table).where(expired)
        ).scalar_one()
        return
    held_rows = _held(target, held)
    free = _free(target) if target.action == "delete" else None
    if held_rows is None and free is None:
        return
    columns = []
    if held_rows is not None:
        columns.append(sa.func.sum(sa.case((held_rows, 1), else_=0)))
    if free is not None:
        not_held = ~held_rows if held_rows is not None else sa.true()
        columns.append(sa.func.sum(sa.case((sa.and_(not_held, ~free), 1), else_=0)))
    row = conn.execute(sa.select(*columns).select_from(target.plan.table).where(expired)).one()
    values = list(row)
    if held_rows is not None:
        out.held = int(values.pop(0) or 0)
    if free is not None:
        out.skipped = int(values.pop(0) or 0)


def plan_target(
    engine: Engine, target: Target, limit: dt.datetime, held: Held, mask_key: bytes | None
) -> TableSweep:
    """A dry run: how many rows would go, how many are held or skipped, the oldest clock."""
    out = _new(target, limit)
    try:
        with engine.connect() as conn:
            _count_held_and_skipped(conn, target, limit, held, out)
            if held.table:
                return out
            if target.action == "delete":
                row = conn.execute(
                    sa.select(sa.func.count(), sa.func.min(target.clock))
                    .select_from(target.plan.table)
                    .where(_sweepable(target, limit, held))
                ).one()
                out.rows, out.oldest = int(row[0]), row[1]
                return out
        _walk(engine, target, limit, held, mask_key, DEFAULT_BATCH, out, write=False)
    except DBAPIError as exc:
        out.error = describe_failure(exc, target.dataset)
    return out


def sweep_target(
    engine: Engine,
    target: Target,
    limit: dt.datetime,
    held: Held,
    mask_key: bytes | None,
    batch: int = DEFAULT_BATCH,
) -> TableSweep:
    """Delete or anonymize the table's expired rows, one transaction per batch."""
    out = _new(target, limit)
    try:
        if held:
            with engine.connect() as conn:
                _count_held_and_skipped(conn, target, limit, held, out)
        if held.table:
            return out
        _walk(engine, target, limit, held, mask_key, batch, out, write=True)
        if target.references and not held:
            with engine.connect() as conn:  # what the references kept, after the walk
                _count_held_and_skipped(conn, target, limit, held, out)
    except DBAPIError as exc:
        out.error = describe_failure(exc, target.dataset)
    return out


# --- the walk -------------------------------------------------------------------------------


def _integer_lead(target: Target) -> bool:
    python_type = target.plan.python_types.get(target.plan.key[0])
    return python_type is int


def _walk(
    engine: Engine,
    target: Target,
    limit: dt.datetime,
    held: Held,
    mask_key: bytes | None,
    batch: int,
    out: TableSweep,
    *,
    write: bool,
) -> None:
    if batch < 1:
        raise ValueError(f"a sweep batch is 1 row or more, not {batch}")
    where = _sweepable(target, limit, held)
    if target.action == "delete" and _block_ranges(engine):
        _by_blocks(engine, target, where, BLOCK_BATCH if batch == DEFAULT_BATCH else batch, out)
    elif _integer_lead(target):
        _by_range(engine, target, where, mask_key, batch, out, write=write)
    else:
        _by_keyset(engine, target, where, mask_key, batch, out, write=write)


def _by_range(
    engine: Engine,
    target: Target,
    where: sa.ColumnElement[bool],
    mask_key: bytes | None,
    batch: int,
    out: TableSweep,
    *,
    write: bool,
) -> None:
    table = target.plan.table
    lead = table.c[target.plan.key[0]]
    with engine.connect() as conn:
        low, top = conn.execute(sa.select(sa.func.min(lead), sa.func.max(lead))).one()
    delete = sa.delete(table).where(lead >= sa.bindparam("lo"), lead < sa.bindparam("hi"), where)
    while low is not None and low <= top:
        high = low + batch
        with engine.begin() as conn:
            in_range = sa.and_(lead >= low, lead < high)
            if target.action == "delete":
                out.rows += conn.execute(delete, {"lo": low, "hi": high}).rowcount
            else:
                _anonymize(conn, target, sa.and_(in_range, where), mask_key, out, write=write)
            out.batches += 1
            low = conn.execute(sa.select(sa.func.min(lead)).where(lead >= high)).scalar()


def _block_ranges(engine: Engine) -> bool:
    """PostgreSQL 14 and later scan a range of a table's blocks by itself (TID range scan)."""
    if engine.dialect.name != "postgresql":
        return False
    if engine.dialect.server_version_info is None:
        with engine.connect():
            pass  # the first connection tells the server's version
    version = engine.dialect.server_version_info or (0,)
    return version >= (14,)


_BLOCKS = sa.text(
    "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int, c.reltuples, "
    "c.relpages FROM pg_class c WHERE c.oid = CAST(:table AS regclass)"
)


def _by_blocks(
    engine: Engine, target: Target, where: sa.ColumnElement[bool], batch: int, out: TableSweep
) -> None:
    """PostgreSQL: delete block range by block range (`ctid`), one pass over the heap.

    A range of about `batch` rows' blocks per statement, read by a TID range scan as a
    sequential scan reads them, so the walk reads the table once, in order, with no
    index. The last range is open, so rows added during the sweep are seen too.
    """
    table = target.plan.table
    name = engine.dialect.identifier_preparer.format_table(table)
    with engine.connect() as conn:
        blocks, tuples, pages = conn.execute(_BLOCKS, {"table": name}).one()
    per_block = max(1, int(tuples / pages)) if pages and tuples and tuples > 0 else 50
    step = max(1, batch // per_block)
    ranged = sa.text("ctid >= CAST(:lo AS tid) AND ctid < CAST(:hi AS tid)")
    opened = sa.text("ctid >= CAST(:lo AS tid)")
    low = 0
    while True:
        last = low + step >= blocks
        statement = sa.delete(table).where(opened if last else ranged, where)
        params = {"lo": f"({low},0)"} if last else {"lo": f"({low},0)", "hi": f"({low + step},0)"}
        with engine.begin() as conn:
            out.rows += conn.execute(statement, params).rowcount
        out.batches += 1
        if last:
            return
        low += step


def _by_keyset(
    engine: Engine,
    target: Target,
    where: sa.ColumnElement[bool],
    mask_key: bytes | None,
    batch: int,
    out: TableSweep,
    *,
    write: bool,
) -> None:
    table = target.plan.table
    columns = _key_columns(target)
    last: Key | None = None
    while True:
        after = where if last is None else sa.and_(where, sa.tuple_(*columns) > sa.tuple_(*last))
        with engine.begin() as conn:
            if target.action == "delete":
                keys = [
                    tuple(r)
                    for r in conn.execute(
                        sa.select(*columns).where(after).order_by(*columns).limit(batch)
                    )
                ]
                if keys:
                    picked = (
                        columns[0].in_([k[0] for k in keys])
                        if len(columns) == 1
                        else sa.tuple_(*columns).in_(keys)
                    )
                    out.rows += conn.execute(sa.delete(table).where(picked, where)).rowcount
            else:
                keys = _anonymize(conn, target, after, mask_key, out, write=write, limit=batch)
            out.batches += 1
        if len(keys) < batch:
            return
        last = keys[-1]


def _anonymize(
    conn: Connection,
    target: Target,
    where: sa.ColumnElement[bool],
    mask_key: bytes | None,
    out: TableSweep,
    *,
    write: bool,
    limit: int | None = None,
) -> list[Key]:
    """Mask the selected rows that are not masked yet; the keys read (in key order)."""
    plan = target.plan
    table = plan.table
    keys = _key_columns(target)
    masked = [table.c[m.column] for m in target.masks]
    query = sa.select(*keys, *masked, target.clock.label("lawful_clock")).where(where)
    query = query.order_by(*keys)
    if limit is not None:
        query = query.limit(limit)
    if write:
        query = query.with_for_update()
    rows = conn.execute(query).all()
    width = len(keys)
    changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        values: dict[str, Any] = {}
        for i, mask in enumerate(target.masks):
            current = row[width + i]
            try:
                new = mask.apply(current, mask_key)
            except MaskKeyMissing:
                if write:
                    raise
                new = object()  # a dry run without the keyring: not hashed yet, so it changes
            if new != current:
                values[mask.column] = new
        if not values:
            continue  # anonymized by an earlier sweep
        out.rows += 1
        clock = row[-1]
        if clock is not None and (out.oldest is None or clock < out.oldest):
            out.oldest = clock
        params = {f"k{i}": row[i] for i in range(width)}
        params |= {f"v_{c}": v for c, v in values.items()}
        changed.setdefault(tuple(sorted(values)), []).append(params)
    if write:
        for columns, params in changed.items():
            statement = (
                sa.update(table)
                .where(*(table.c[c] == sa.bindparam(f"k{i}") for i, c in enumerate(plan.key)))
                .values({c: sa.bindparam(f"v_{c}") for c in columns})
            )
            conn.execute(statement, params)
    return [tuple(r[:width]) for r in rows]


def rule_order(sweeps: Sequence[TableSweep]) -> list[str]:
    """The rules of `sweeps` in the order they first appear."""
    return list(dict.fromkeys(s.rule for s in sweeps))
