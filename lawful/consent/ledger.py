"""The consent ledger in SQL: append records, keep the current state, read both.

Functions here run inside the caller's transaction (`Store.write`), so a record, the
state it leads to and its audit event commit together or not at all. Writes are
set-based: a batch of choices is one INSERT of records, one upsert of state and one
append to the audit chain, whatever its size.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

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


def load_states(
    conn: Connection,
    controller_id: int,
    subject_ids: Iterable[int],
    *,
    topics: Sequence[tuple[str, Sequence[str] | None]] | None = None,
) -> dict[int, SubjectState]:
    """The current state of each subject: one query per batch of subjects.

    `topics` narrows the choices read to what one decision needs, as (topic, keys or
    None for every key) pairs; by default every choice is read.
    """
    ids = list(dict.fromkeys(subject_ids))
    states: dict[int, SubjectState] = {}
    s, c = subjects.c, consent_state.c
    columns = (s.id, s.ref, s.kind, s.jurisdiction, s.country, s.birth_date, c.topic, c.key)
    columns += (c.scope, c.state, c.method, c.expires_at, c.policy_version)
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        if conn.dialect.name == "postgresql":
            # Driven from the ids (index probes), whatever the tables' statistics say.
            where_topics, topic_params = _topics_sql(topics, "%s")
            driving, params = unnest(chunk, "bigint")
            sql = (
                "SELECT s.id, s.ref, s.kind, s.jurisdiction, s.country, s.birth_date,"
                " c.topic, c.key, c.scope, c.state, c.method, c.expires_at, c.policy_version"
                f" FROM {driving} AS w(id)"
                " JOIN subjects s ON s.id = w.id"
                f" LEFT JOIN consent_state c ON c.subject_id = s.id{where_topics}"
                " WHERE s.controller_id = %s"
            )
            rows = conn.exec_driver_sql(sql, (*params, *topic_params, controller_id)).all()
        else:
            source = subjects.outerjoin(consent_state, _join_condition(topics))
            query = (
                sa.select(*columns)
                .select_from(source)
                .where(s.controller_id == controller_id, s.id.in_(chunk))
            )
            rows = conn.execute(query).all()
        for row in rows:
            state = states.get(row[0])
            if state is None:
                state = states[row[0]] = SubjectState(
                    row[0], row[1], row[2], row[3], row[4], row[5], {}
                )
            if row[6] is not None:
                state.choices[(row[6], row[7], row[8])] = Choice(row[9], row[10], row[11], row[12])
    return states


def load_states_by_hash(
    conn: Connection,
    controller_id: int,
    hashes: Sequence[str],
    *,
    topics: Sequence[tuple[str, Sequence[str] | None]] | None = None,
) -> dict[str, SubjectState]:
    """The current state of the subject of each identity hash; unknown hashes are absent.

    Identities, subjects and their choices are read together: one query per batch of
    1000 hashes (PostgreSQL: 10,000, as one array parameter) or, when the batch names
    at least half of the controller's identities, one query over all of them (reading
    the rest costs less than sending every hash). This is the hot path of batch
    decisions, so the statement is written in SQL and its rows read through the driver.
    """
    dialect = conn.dialect.name
    mark = "?" if dialect == "sqlite" else "%s"
    where_topics, topic_params = _topics_sql(topics, mark)
    select = (
        "SELECT i.hash, s.id, s.ref, s.kind, s.jurisdiction, s.country, s.birth_date,"
        " c.topic, c.key, c.scope, c.state, c.method, c.expires_at, c.policy_version"
        " FROM identities i JOIN subjects s ON s.id = i.subject_id"
        f" LEFT JOIN consent_state c ON c.subject_id = s.id{where_topics}"
        f" WHERE i.controller_id = {mark}"
    )
    wanted = set(hashes)
    found: dict[str, SubjectState] = {}
    if len(wanted) >= _SCAN_FROM:
        known = conn.exec_driver_sql(
            f"SELECT count(*) FROM identities WHERE controller_id = {mark}", (controller_id,)
        ).scalar_one()
        if 2 * len(wanted) >= known:
            rows = conn.exec_driver_sql(select, (*topic_params, controller_id)).all()
            _read_states(rows, found, wanted, _TEXT_TIMES.get(dialect))
            return found
    unique = list(wanted)
    if dialect == "postgresql":
        # The join is driven from the hashes (one index probe each): an IN list gets a
        # whole-table scan per batch on a table that grew since it was last analyzed.
        for start in range(0, len(unique), 10 * _BATCH):
            chunk = unique[start : start + 10 * _BATCH]
            driving, params = unnest(chunk, "digest")
            driven = select.replace(
                " FROM identities i ",
                f" FROM {driving} AS h(hash) JOIN identities i ON i.hash = h.hash ",
            )
            rows = conn.exec_driver_sql(driven, (*params, *topic_params, controller_id)).all()
            _read_states(rows, found, None, None)
        return found
    for start in range(0, len(unique), _BATCH):
        chunk = unique[start : start + _BATCH]
        in_list = f"i.hash IN ({', '.join([mark] * len(chunk))})"
        params = (*topic_params, controller_id, *chunk)
        rows = conn.exec_driver_sql(f"{select} AND {in_list}", params).all()
        _read_states(rows, found, None, _TEXT_TIMES.get(dialect))
    return found


_SCAN_FROM = 5000  # batches this large may read all of a controller's identities at once


def _read_states(
    rows: Sequence[Any],
    found: dict[str, SubjectState],
    wanted: set[str] | None,
    parse_time: Any,
) -> None:
    """Fold joined rows (hash, subject…, choice…) into one SubjectState per hash."""
    for row in rows:
        state = found.get(row[0])
        if state is None:
            if wanted is not None and row[0] not in wanted:
                continue
            born = row[6]
            if born is not None and not isinstance(born, date):
                born = date.fromisoformat(born)
            state = found[row[0]] = SubjectState(row[1], row[2], row[3], row[4], row[5], born, {})
        if row[7] is not None:
            expires = row[12]
            if expires is not None and parse_time is not None:
                expires = parse_time(expires)
            state.choices[(row[7], row[8], row[9])] = Choice(row[10], row[11], expires, row[13])


def _utc_text(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _naive_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


# How each backend hands back a UTC timestamp read without SQLAlchemy's types
# (see lawful.store.types.UTCDateTime): SQLite as text, MySQL as naive UTC.
_TEXT_TIMES = {"sqlite": _utc_text, "mysql": _naive_utc, "mariadb": _naive_utc}


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


def _join_condition(topics: Sequence[tuple[str, Sequence[str] | None]] | None) -> Any:
    c = consent_state.c
    on = c.subject_id == subjects.c.id
    if topics is None:
        return on
    wanted = [
        c.topic == topic if keys is None else sa.and_(c.topic == topic, c.key.in_(list(keys)))
        for topic, keys in topics
    ]
    return sa.and_(on, sa.or_(*wanted))


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
