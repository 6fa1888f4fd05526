"""The tamper-evident audit log: one hash chain of events per controller.

Each event carries the hash of the previous one; its own hash covers the controller,
its sequence number, time, kind, subject and data. Editing, deleting, inserting or
reordering events breaks a link that `verify` reports. The chain head (newest seq and
hash) is kept apart, so removing the newest events is detected as well.

Events never hold raw personal data: a subject is named only by the keyed hash of an
identity, and `data` must not contain personal data (callers pass ids, counts, names of
purposes and rules).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit.tables import audit_events, audit_heads
from lawful.store import Store
from lawful.store.bulk import insert_rows
from lawful.store.tables import controllers

GENESIS = "0" * 64  # the "previous hash" of a chain's first event
_BATCH = 1000


@dataclass(frozen=True)
class NewEvent:
    """An event to append: what happened, to whom (identity hash), and details."""

    kind: str
    subject: str | None = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    seq: int
    at: datetime
    kind: str
    subject: str | None
    data: dict[str, Any] | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "subject": self.subject,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold."""

    seq: int
    reason: str


@dataclass(frozen=True)
class Verification:
    controller: str
    checked: int
    head_seq: int
    broken: Break | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.broken is None


def event_hash(
    controller: str,
    seq: int,
    at: datetime,
    kind: str,
    subject: str | None,
    data: Mapping[str, Any] | None,
    prev_hash: str,
) -> str:
    """The hash of one event, over a canonical JSON form of everything it says."""
    body = json.dumps(
        [controller, seq, _timestamp(at), kind, subject, data, prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _timestamp(at: datetime) -> str:
    # Microseconds in UTC: what every backend stores and returns unchanged.
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append(
    conn: Connection, controller_id: int, controller: str, events: Iterable[NewEvent]
) -> list[Event]:
    """Chain `events` onto the controller's log inside the caller's transaction.

    Writing the event in the same transaction as the change it records means one is
    never committed without the other. The chain head row is locked first (an UPDATE
    takes a row lock on PostgreSQL and the write lock on SQLite), so concurrent writers
    of one controller append one after the other and never fork the chain.
    """
    batch = list(events)
    if not batch:
        return []
    for event in batch:
        _check(event)
    head = lock_head(conn, controller_id)
    seq, prev = head
    now = datetime.now(UTC)
    written: list[Event] = []
    for event in batch:
        seq += 1
        data = dict(event.data) if event.data is not None else None
        digest = event_hash(controller, seq, now, event.kind, event.subject, data, prev)
        written.append(Event(seq, now, event.kind, event.subject, data, prev, digest))
        prev = digest
    insert_rows(
        conn,
        audit_events,
        [
            {
                "controller_id": controller_id,
                "seq": e.seq,
                "at": e.at,
                "kind": e.kind,
                "subject": e.subject,
                "data": e.data,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            }
            for e in written
        ],
    )
    conn.execute(_MOVE_HEAD, {"p_controller": controller_id, "p_seq": seq, "p_hash": prev})
    _hold(conn, controller_id, (seq, prev))
    return written


def _check(event: NewEvent) -> None:
    if not event.kind or len(event.kind) > 100:
        raise ValueError("an audit event needs a kind of 1 to 100 characters, e.g. consent.given")
    if event.subject is not None and len(event.subject) != 64:
        raise ValueError("an audit event names a subject by its 64-character identity hash only")
    if event.data is not None:
        json.dumps(event.data)  # must be plain JSON: raises TypeError otherwise


def lock_head(conn: Connection, controller_id: int) -> tuple[int, str]:
    """Lock and read the chain head, creating it for a controller's first event.

    A transaction that will append events should call this before it touches other
    rows: every writer then takes its locks in the same order (head first), so two
    writers cannot deadlock holding one lock each.
    """
    held = _held(conn, controller_id)
    if held is not None:
        return held
    head = _take_head(conn, controller_id)
    _hold(conn, controller_id, head)
    return head


def _held(conn: Connection, controller_id: int) -> tuple[int, str] | None:
    """The head as this transaction last locked or moved it (no statement needed)."""
    held = conn.info.get(("audit_head", controller_id))
    if held is not None and held[0] is conn.get_transaction():
        return held[1], held[2]
    return None


def _hold(conn: Connection, controller_id: int, head: tuple[int, str]) -> None:
    # Keyed to the transaction object: a later transaction on the pooled connection
    # does not see it, and locks (and reads) the head afresh.
    conn.info[("audit_head", controller_id)] = (conn.get_transaction(), *head)


# Built once: every event's transaction runs them (parameter p_controller, and for the
# move p_seq and p_hash).
_LOCK_HEAD = (
    sa.update(audit_heads)
    .where(audit_heads.c.controller_id == sa.bindparam("p_controller"))
    # A no-op update: its only effect is the lock, taken before anything is read.
    .values(seq=audit_heads.c.seq)
)
_LOCK_AND_READ_HEAD = _LOCK_HEAD.returning(audit_heads.c.seq, audit_heads.c.hash)
_MOVE_HEAD = (
    sa.update(audit_heads)
    .where(audit_heads.c.controller_id == sa.bindparam("p_controller"))
    .values(seq=sa.bindparam("p_seq"), hash=sa.bindparam("p_hash"))
)


def _take_head(conn: Connection, controller_id: int) -> tuple[int, str]:
    params = {"p_controller": controller_id}
    # Where the backend has UPDATE … RETURNING (PostgreSQL, SQLite), the lock reads the
    # head too.
    if conn.dialect.update_returning:
        head = conn.execute(_LOCK_AND_READ_HEAD, params).first()
        if head is not None:
            return int(head.seq), str(head.hash)
    elif conn.execute(_LOCK_HEAD, params).rowcount != 0:
        return _read_head(conn, controller_id)
    # The first event of this controller; a concurrent creator makes the insert fail on
    # the primary key, and the caller's retry then finds the head.
    conn.execute(sa.insert(audit_heads).values(controller_id=controller_id, seq=0, hash=GENESIS))
    return _read_head(conn, controller_id)


def _read_head(conn: Connection, controller_id: int) -> tuple[int, str]:
    row = conn.execute(
        sa.select(audit_heads.c.seq, audit_heads.c.hash).where(
            audit_heads.c.controller_id == controller_id
        )
    ).one()
    return int(row.seq), str(row.hash)


class AuditLog:
    """A controller's audit log in a store: append, read, verify."""

    def __init__(self, store: Store, controller: str) -> None:
        self.store = store
        self.controller = controller

    def _controller_id(self, conn: Connection) -> int | None:
        return conn.scalar(sa.select(controllers.c.id).where(controllers.c.key == self.controller))

    def record(
        self, kind: str, *, subject: str | None = None, data: Mapping[str, Any] | None = None
    ) -> Event:
        """Append one event in its own transaction."""
        [event] = self.record_many([NewEvent(kind, subject, data)])
        return event

    def record_many(self, events: Iterable[NewEvent]) -> list[Event]:
        batch = list(events)

        def work(conn: Connection) -> list[Event]:
            controller_id = self._controller_id(conn)
            if controller_id is None:
                raise ValueError(
                    f"no controller '{self.controller}' in the store; load its policy first"
                )
            return append(conn, controller_id, self.controller, batch)

        return self.store.write(work)

    def events(
        self, *, subject: str | None = None, after: int = 0, last: int | None = None
    ) -> list[Event]:
        """Events in chain order, optionally for one subject hash, or only the `last` few."""
        with self.store.engine.connect() as conn:
            controller_id = self._controller_id(conn)
            if controller_id is None:
                return []
            query = sa.select(audit_events).where(
                audit_events.c.controller_id == controller_id, audit_events.c.seq > after
            )
            if subject is not None:
                query = query.where(audit_events.c.subject == subject)
            if last is not None:
                newest = query.order_by(audit_events.c.seq.desc()).limit(last)
                return [_event(row) for row in reversed(conn.execute(newest).all())]
            return [_event(row) for row in conn.execute(query.order_by(audit_events.c.seq))]

    def verify(self) -> Verification:
        """Recompute every link; report the first that does not hold."""
        with self.store.engine.connect() as conn:
            controller_id = self._controller_id(conn)
            if controller_id is None:
                return Verification(self.controller, 0, 0)
            head = conn.execute(
                sa.select(audit_heads.c.seq, audit_heads.c.hash).where(
                    audit_heads.c.controller_id == controller_id
                )
            ).first()
            head_seq, head_hash = (int(head.seq), str(head.hash)) if head else (0, GENESIS)
            checked, broken = _walk(self.controller, _stream(conn, controller_id))
            if broken is None:
                last_seq, last_hash = checked
                if (last_seq, last_hash) != (head_seq, head_hash):
                    broken = Break(
                        last_seq + 1 if last_seq < head_seq else last_seq,
                        f"the chain ends at event {last_seq} but its head records event {head_seq}: "
                        "events were deleted from the end or appended outside lawful",
                    )
                return Verification(self.controller, checked[0], head_seq, broken)
            return Verification(self.controller, broken.seq - 1, head_seq, broken)


def _stream(conn: Connection, controller_id: int) -> Iterator[Any]:
    query = (
        sa.select(audit_events)
        .where(audit_events.c.controller_id == controller_id)
        .order_by(audit_events.c.seq)
        .execution_options(yield_per=_BATCH)
    )
    yield from conn.execute(query)


def _walk(controller: str, rows: Iterable[Any]) -> tuple[tuple[int, str], Break | None]:
    expected_seq, prev = 1, GENESIS
    for row in rows:
        if row.seq != expected_seq:
            what = "missing" if row.seq > expected_seq else "out of order"
            return (expected_seq - 1, prev), Break(expected_seq, f"event {expected_seq} is {what}")
        if row.prev_hash != prev:
            return (expected_seq - 1, prev), Break(
                row.seq,
                f"event {row.seq} does not follow event {row.seq - 1}: its link was changed",
            )
        digest = event_hash(
            controller, row.seq, row.at, row.kind, row.subject, row.data, row.prev_hash
        )
        if digest != row.hash:
            return (expected_seq - 1, prev), Break(
                row.seq, f"event {row.seq} was altered after it was written"
            )
        expected_seq, prev = row.seq + 1, row.hash
    return (expected_seq - 1, prev), None


def _event(row: Any) -> Event:
    return Event(row.seq, row.at, row.kind, row.subject, row.data, row.prev_hash, row.hash)
