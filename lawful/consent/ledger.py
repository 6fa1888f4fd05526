"""The consent ledger in SQL: append records, keep the current state, read both.

Functions here run inside the caller's transaction (`Store.write`), so a record, the
state it leads to and its audit event commit together or not at all. Writes are
set-based: a batch of choices is one INSERT of records, one upsert of state and one
append to the audit chain, whatever its size.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.audit.log import NewEvent, append
from lawful.consent.decide import Choice, SubjectState
from lawful.consent.records import ConsentRecord, Status, Topic
from lawful.consent.tables import consent_records, consent_state
from lawful.store.arrays import unnest
from lawful.store.bulk import insert_rows
from lawful.store.upsert import upsert
from lawful.subjects.tables import subjects

_BATCH = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class NewChoice:
    """A choice to append to the ledger, for an already resolved subject."""

    subject_id: int
    subject_ref: str
    audit_id: str  # the subject's pseudonym in the audit log
    topic: Topic
    key: str
    scope: str
    state: Status
    method: str
    at: datetime
    expires_at: datetime | None = None
    policy_version: int | None = None
    notice_hash: str | None = None
    language: str | None = None
    jurisdiction: str | None = None
    actor: str | None = None
    evidence: Mapping[str, Any] | None = None


def append_choices(
    conn: Connection, controller_id: int, controller_key: str, choices: Sequence[NewChoice]
) -> list[ConsentRecord]:
    """Append records, move the current state forward, and write one audit event each."""
    if not choices:
        return []
    refs = [uuid.uuid4().hex for _ in choices]
    rows = [
        {
            "controller_id": controller_id,
            "subject_id": c.subject_id,
            "ref": ref,
            "topic": str(c.topic),
            "key": c.key,
            "scope": c.scope,
            "state": str(c.state),
            "method": c.method,
            "at": c.at,
            "expires_at": c.expires_at,
            "policy_version": c.policy_version,
            "notice_hash": c.notice_hash,
            "language": c.language,
            "jurisdiction": c.jurisdiction,
            "actor": c.actor,
            "evidence": dict(c.evidence) if c.evidence is not None else None,
        }
        for c, ref in zip(choices, refs, strict=True)
    ]
    insert_rows(conn, consent_records, rows)
    # The newest choice per topic wins; an older one (an import of past records) does
    # not overwrite a newer state.
    newest: dict[tuple[int, str, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["subject_id"], row["topic"], row["key"], row["scope"])
        if key not in newest or newest[key]["at"] <= row["at"]:
            newest[key] = row
    states = [
        {
            "controller_id": controller_id,
            "subject_id": r["subject_id"],
            "topic": r["topic"],
            "key": r["key"],
            "scope": r["scope"],
            "state": r["state"],
            "method": r["method"],
            "at": r["at"],
            "expires_at": r["expires_at"],
            "policy_version": r["policy_version"],
            "record_ref": r["ref"],
        }
        for r in newest.values()
    ]
    for start in range(0, len(states), _BATCH):
        upsert(
            conn,
            consent_state,
            states[start : start + _BATCH],
            keys=("subject_id", "topic", "key", "scope"),
            newer="at",
        )
    append(
        conn,
        controller_id,
        controller_key,
        [
            NewEvent(
                f"{'consent' if c.topic is Topic.consent else 'preference'}.{c.state}",
                subject=c.audit_id,
                data={
                    "record": ref,
                    "topic": str(c.topic),
                    "key": c.key,
                    "scope": c.scope or None,
                    "method": c.method,
                    "policy_version": c.policy_version,
                },
            )
            for c, ref in zip(choices, refs, strict=True)
        ],
    )
    return [
        ConsentRecord(
            ref=ref,
            subject_ref=c.subject_ref,
            topic=c.topic,
            key=c.key,
            scope=c.scope,
            state=c.state,
            method=c.method,
            at=c.at,
            expires_at=c.expires_at,
            policy_version=c.policy_version,
            notice_hash=c.notice_hash,
            language=c.language,
            jurisdiction=c.jurisdiction,
            actor=c.actor,
            evidence=dict(c.evidence) if c.evidence is not None else None,
        )
        for c, ref in zip(choices, refs, strict=True)
    ]


Topics = Sequence[tuple[str, Sequence[str] | None]]
StateRow = tuple[Any, ...]

# What a decision reads of a subject and of each current choice: the row readers below
# return driver tuples (lookup key, *_DECIDES[, *_WHO]), at the positions that follow.
# Who the subject is (_WHO) is read only when asked: a decision never needs it.
_DECIDES = (
    "s.kind, s.jurisdiction, s.country, s.birth_date,"
    " c.topic, c.key, c.scope, c.state, c.method, c.expires_at, c.policy_version"
)
_WHO = "s.id, s.ref"
KIND, JURISDICTION, COUNTRY, BORN = 1, 2, 3, 4
TOPIC, KEY, SCOPE, STATE, METHOD, EXPIRES, VERSION = 5, 6, 7, 8, 9, 10, 11
ID, REF = 12, 13


def load_states(
    conn: Connection,
    controller_id: int,
    subject_ids: Iterable[int],
    *,
    topics: Topics | None = None,
) -> dict[int, SubjectState]:
    """The current state of each subject: one query per batch of subjects.

    `topics` narrows the choices read to what one decision needs, as (topic, keys or
    None for every key) pairs; by default every choice is read.
    """
    rows = state_rows(conn, controller_id, subject_ids, topics=topics, who=True)
    values = RowValues.of(conn)
    return {key: values.state(group) for key, group in group_rows(rows).items()}


def load_states_by_hash(
    conn: Connection, controller_id: int, hashes: Sequence[str], *, topics: Topics | None = None
) -> dict[str, SubjectState]:
    """The current state of the subject of each identity hash; unknown hashes are absent."""
    rows = state_rows_by_hash(conn, controller_id, hashes, topics=topics, who=True)
    values = RowValues.of(conn)
    wanted = set(hashes)
    return {key: values.state(group) for key, group in group_rows(rows).items() if key in wanted}


def state_rows(
    conn: Connection,
    controller_id: int,
    subject_ids: Iterable[int],
    *,
    topics: Topics | None = None,
    who: bool = False,
) -> list[StateRow]:
    """The joined rows (id, subject…, choice…) of each subject, as the driver returns them.

    One row per current choice, or one with the choice columns NULL for a subject
    without any; subjects not found have none. `RowValues` reads them; `who` adds the
    subject's id and ref. One query per 1000 subjects.
    """
    ids = list(dict.fromkeys(subject_ids))
    dialect = conn.dialect.name
    mark = "?" if dialect == "sqlite" else "%s"
    where_topics, topic_params = _topics_sql(topics, mark)
    columns = f"{_DECIDES}, {_WHO}" if who else _DECIDES
    rows: list[StateRow] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        if dialect == "postgresql":
            # Driven from the ids (index probes), whatever the tables' statistics say.
            driving, params = unnest(chunk, "bigint")
            source = f"{driving} AS w(id) JOIN subjects s ON s.id = w.id"
            where, tail = f"s.controller_id = {mark}", [controller_id]
        else:
            source = "subjects s"
            where = f"s.controller_id = {mark} AND s.id IN ({', '.join([mark] * len(chunk))})"
            params, tail = [], [controller_id, *chunk]
        sql = (
            f"SELECT s.id, {columns} FROM {source}"
            f" LEFT JOIN consent_state c ON c.subject_id = s.id{where_topics} WHERE {where}"
        )
        rows += _tuples(conn, sql, (*params, *topic_params, *tail))
    return rows


def state_rows_by_hash(
    conn: Connection,
    controller_id: int,
    hashes: Sequence[str],
    *,
    topics: Topics | None = None,
    who: bool = False,
) -> Sequence[StateRow]:
    """The joined rows (hash, subject…, choice…) of the subject of each identity hash.

    Identities, subjects and their choices are read together: one query per batch of
    1000 hashes (PostgreSQL: 10,000, as one array parameter) or, when the batch names
    at least half of the controller's identities, one query over all of them (reading
    the rest costs less than sending every hash: rows of identities not asked for are
    then among the rows returned). Unknown hashes have no row. This is the hot path of
    batch decisions: plain SQL, read through the driver.
    """
    select, params = _by_hash(conn, controller_id, topics, who)
    unique = list(dict.fromkeys(hashes))
    if _read_whole(conn, controller_id, len(unique)):
        return _tuples(conn, select, params)
    return _by_hash_batches(conn, select, params, unique)


def hash_and_read(
    conn: Connection,
    controller_id: int,
    identities: Sequence[T],
    hash_them: Callable[[Sequence[T]], list[str]],
    *,
    topics: Topics | None = None,
    who: bool = False,
) -> tuple[list[str], Sequence[StateRow]]:
    """`hash_them(identities)` and the state rows of those hashes (`state_rows_by_hash`).

    When the batch names so many identities that all of the controller's are read, the
    query needs no hash: on PostgreSQL it is sent first and the server reads while the
    identities are hashed here (a batch's two largest costs, overlapped). `identities`
    may name one several times; they count as many for the choice of the whole read.
    """
    select, params = _by_hash(conn, controller_id, topics, who)
    if not _read_whole(conn, controller_id, len(identities)):
        hashes = hash_them(identities)
        return hashes, _by_hash_batches(conn, select, params, list(dict.fromkeys(hashes)))
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name != "postgresql" or not _pipelines(driver):
        return hash_them(identities), _tuples(conn, select, params)
    # Pipeline mode: execute() sends the query and returns; fetchall() collects it.
    with driver.pipeline(), driver.cursor() as cursor:
        cursor.execute(select, params)
        hashes = hash_them(identities)
        return hashes, cursor.fetchall()


_SCAN_FROM = 5000  # batches this large may read all of a controller's identities at once


def _pipelines(driver: Any) -> bool:
    """Whether this is a psycopg connection that can send a query without waiting for
    its result (pipeline mode: libpq 14 and later)."""
    import psycopg  # only PostgreSQL stores get here

    return isinstance(driver, psycopg.Connection) and psycopg.Pipeline.is_supported()


def _by_hash(
    conn: Connection, controller_id: int, topics: Topics | None, who: bool
) -> tuple[str, tuple[Any, ...]]:
    """The query for the state rows of a controller's identities, and its parameters."""
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    where_topics, topic_params = _topics_sql(topics, mark)
    select = (
        f"SELECT i.hash, {f'{_DECIDES}, {_WHO}' if who else _DECIDES}"
        " FROM identities i JOIN subjects s ON s.id = i.subject_id"
        f" LEFT JOIN consent_state c ON c.subject_id = s.id{where_topics}"
        f" WHERE i.controller_id = {mark}"
    )
    return select, (*topic_params, controller_id)


def _read_whole(conn: Connection, controller_id: int, count: int) -> bool:
    """Whether a batch naming `count` identities reads all of the controller's."""
    if count < _SCAN_FROM:
        return False
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    known = conn.exec_driver_sql(
        f"SELECT count(*) FROM identities WHERE controller_id = {mark}", (controller_id,)
    ).scalar_one()
    return bool(2 * count >= known)


def _by_hash_batches(
    conn: Connection, select: str, params: tuple[Any, ...], unique: list[str]
) -> list[StateRow]:
    """The rows of `select` (from `_by_hash`) for these hashes only, batch by batch."""
    rows: list[StateRow] = []
    if conn.dialect.name == "postgresql":
        # The join is driven from the hashes (one index probe each): an IN list gets a
        # whole-table scan per batch on a table that grew since it was last analyzed.
        for start in range(0, len(unique), 10 * _BATCH):
            chunk = unique[start : start + 10 * _BATCH]
            driving, driving_params = unnest(chunk, "digest")
            driven = select.replace(
                " FROM identities i ",
                f" FROM {driving} AS h(hash) JOIN identities i ON i.hash = h.hash ",
            )
            rows += _tuples(conn, driven, (*driving_params, *params))
        return rows
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    for start in range(0, len(unique), _BATCH):
        chunk = unique[start : start + _BATCH]
        in_list = f"i.hash IN ({', '.join([mark] * len(chunk))})"
        rows += _tuples(conn, f"{select} AND {in_list}", (*params, *chunk))
    return rows


def _tuples(conn: Connection, sql: str, params: Sequence[Any]) -> Sequence[StateRow]:
    """The rows of a query as the driver's own tuples, in the caller's transaction.

    Plain tuples, without SQLAlchemy's result layer: `RowValues` reads their dates and
    times the same way for every query here.
    """
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def group_rows(rows: Iterable[StateRow]) -> dict[Any, list[StateRow]]:
    """State rows gathered by their lookup key (the first column): one list per subject."""
    groups: dict[Any, list[StateRow]] = {}
    for row in rows:
        group = groups.get(row[0])
        if group is None:
            groups[row[0]] = [row]
        else:
            group.append(row)
    return groups


@dataclass(frozen=True)
class RowValues:
    """How one backend's driver hands back the dates and times of a state row.

    Plain SQL skips SQLAlchemy's types (lawful.store.types.UTCDateTime): SQLite returns
    ISO text, in UTC without a zone; MySQL naive UTC datetimes; PostgreSQL aware ones.
    """

    read_time: Callable[[Any], datetime] | None  # text to datetime (None: the driver's)
    naive: bool  # times carry no zone and are UTC
    read_date: Callable[[Any], date] | None  # text to date (None: the driver's)

    @classmethod
    def of(cls, conn: Connection) -> RowValues:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            return cls(datetime.fromisoformat, True, date.fromisoformat)
        return cls(None, dialect in ("mysql", "mariadb"), None)

    def time(self, value: Any) -> datetime:
        """A time of a row as an aware datetime."""
        when: datetime = value if self.read_time is None else self.read_time(value)
        return when.replace(tzinfo=UTC) if self.naive else when

    def state(self, rows: Sequence[StateRow]) -> SubjectState:
        """One subject's state from its rows (with its id and ref if they were read)."""
        first = rows[0]
        born = first[BORN]
        if born is not None and self.read_date is not None and not isinstance(born, date):
            born = self.read_date(born)
        choices = {
            (row[TOPIC], row[KEY], row[SCOPE]): Choice(
                row[STATE],
                row[METHOD],
                None if row[EXPIRES] is None else self.time(row[EXPIRES]),
                row[VERSION],
            )
            for row in rows
            if row[TOPIC] is not None
        }
        who = first[ID:]
        return SubjectState(
            who[0] if who else None,
            who[1] if who else None,
            first[KIND],
            first[JURISDICTION],
            first[COUNTRY],
            born,
            choices,
        )


def _topics_sql(
    topics: Sequence[tuple[str, Sequence[str] | None]] | None, mark: str
) -> tuple[str, list[str]]:
    if topics is None:
        return "", []
    parts: list[str] = []
    params: list[str] = []
    for topic, keys in topics:
        if keys is None:
            parts.append(f"c.topic = {mark}")
            params.append(topic)
        else:
            parts.append(f"(c.topic = {mark} AND c.key IN ({', '.join([mark] * len(keys))}))")
            params.extend([topic, *keys])
    return f" AND ({' OR '.join(parts)})", params


def history(
    conn: Connection, controller_id: int, subject_ids: Sequence[int], refs: Mapping[int, str]
) -> list[ConsentRecord]:
    """Every record of these subjects (a subject and those merged into it), oldest first."""
    query = (
        sa.select(consent_records)
        .where(
            consent_records.c.controller_id == controller_id,
            consent_records.c.subject_id.in_(list(subject_ids)),
        )
        .order_by(consent_records.c.at, consent_records.c.id)
    )
    return [_record(row, refs[row.subject_id]) for row in conn.execute(query)]


def record_by_ref(
    conn: Connection, controller_id: int, ref: str
) -> tuple[ConsentRecord, int] | None:
    """A record and its subject id, by the record's public ref."""
    row = conn.execute(
        sa.select(consent_records, subjects.c.ref.label("subject_ref"))
        .join(subjects, subjects.c.id == consent_records.c.subject_id)
        .where(consent_records.c.controller_id == controller_id, consent_records.c.ref == ref)
    ).first()
    if row is None:
        return None
    return _record(row, row.subject_ref), row.subject_id


def merged_refs(conn: Connection, subject_id: int, ref: str) -> dict[int, str]:
    """A subject and every subject merged into it: id → ref."""
    merged = conn.execute(
        sa.select(subjects.c.id, subjects.c.ref).where(subjects.c.merged_into == subject_id)
    ).all()
    return {subject_id: ref, **{id_: r for id_, r in merged}}


def move_state(conn: Connection, survivor_id: int, other_id: int) -> int:
    """On a merge: the other subject's choices join the survivor's, the newer one winning.

    The ledger keeps each record under the subject that made it; only the current state
    moves. Returns how many choices moved.
    """
    c = consent_state.c
    theirs = conn.execute(sa.select(consent_state).where(c.subject_id == other_id)).mappings().all()
    if not theirs:
        return 0
    rows = [{**row, "subject_id": survivor_id} for row in theirs]
    upsert(conn, consent_state, rows, keys=("subject_id", "topic", "key", "scope"), newer="at")
    conn.execute(sa.delete(consent_state).where(c.subject_id == other_id))
    return len(rows)


def _record(row: Any, subject_ref: str) -> ConsentRecord:
    return ConsentRecord(
        ref=row.ref,
        subject_ref=subject_ref,
        topic=Topic(row.topic),
        key=row.key,
        scope=row.scope,
        state=Status(row.state),
        method=row.method,
        at=row.at,
        expires_at=row.expires_at,
        policy_version=row.policy_version,
        notice_hash=row.notice_hash,
        language=row.language,
        jurisdiction=row.jurisdiction,
        actor=row.actor,
        evidence=row.evidence,
    )
