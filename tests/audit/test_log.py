"""The audit log detects any tampering in the database, and never forks under concurrency."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from lawful.audit import GENESIS, AuditLog, NewEvent
from lawful.audit.tables import audit_events, audit_heads
from lawful.store import Store, open_store

SUBJECT = "a" * 64  # an identity hash; never a raw identity


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        opened.ensure_controller("acme", "Acme Ltd")
        opened.ensure_controller("other", "Other Ltd")
        yield opened


@pytest.fixture
def log(store: Store) -> AuditLog:
    audit = AuditLog(store, "acme")
    for i in range(1, 7):
        audit.record("consent.given", subject=SUBJECT, data={"purpose": "newsletter", "n": i})
    return audit


def _sql(store: Store, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _acme(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT id FROM controllers WHERE key = 'acme'"))


def test_events_chain_from_genesis_and_verify(log: AuditLog) -> None:
    events = log.events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert events[2].data == {"purpose": "newsletter", "n": 3}
    result = log.verify()
    assert (result.ok, result.checked, result.head_seq) == (True, 6, 6)


def test_chains_are_per_controller(store: Store, log: AuditLog) -> None:
    other = AuditLog(store, "other")
    first = other.record("policy.version_recorded", data={"version": 1})
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert log.verify().ok and other.verify().ok


def test_updated_event_is_detected(store: Store, log: AuditLog) -> None:
    _sql(
        store,
        "UPDATE audit_events SET data = :d WHERE seq = 3 AND controller_id = :c",
        d='{"purpose": "ads", "n": 3}',
        c=_acme(store),
    )
    result = log.verify()
    assert not result.ok
    assert (result.broken.seq, result.broken.reason) == (
        3,
        "event 3 was altered after it was written",
    )
    assert result.checked == 2


def test_updated_kind_or_time_is_detected(store: Store, log: AuditLog) -> None:
    _sql(
        store,
        "UPDATE audit_events SET kind = 'consent.withdrawn' WHERE seq = 5 AND controller_id = :c",
        c=_acme(store),
    )
    assert log.verify().broken.seq == 5


def test_deleted_event_is_detected(store: Store, log: AuditLog) -> None:
    _sql(store, "DELETE FROM audit_events WHERE seq = 4 AND controller_id = :c", c=_acme(store))
    broken = log.verify().broken
    assert (broken.seq, broken.reason) == (4, "event 4 is missing")


def test_deleted_newest_event_is_detected(store: Store, log: AuditLog) -> None:
    _sql(store, "DELETE FROM audit_events WHERE seq = 6 AND controller_id = :c", c=_acme(store))
    broken = log.verify().broken
    assert broken.seq == 6
    assert broken.reason.startswith("the chain ends at event 5 but its head records event 6")


def test_inserted_event_is_detected(store: Store, log: AuditLog) -> None:
    # make room in the middle and slip an event in, with a plausible link
    acme = _acme(store)
    with store.engine.begin() as conn:
        for seq in range(6, 3, -1):
            conn.execute(
                sa.text(
                    "UPDATE audit_events SET seq = seq + 1 WHERE seq = :s AND controller_id = :c"
                ),
                {"s": seq, "c": acme},
            )
        third = conn.execute(
            sa.select(audit_events.c.hash).where(
                audit_events.c.seq == 3, audit_events.c.controller_id == acme
            )
        ).scalar_one()
        conn.execute(
            sa.insert(audit_events).values(
                controller_id=acme,
                seq=4,
                at=log.events()[0].at,
                kind="consent.given",
                subject=SUBJECT,
                data={"forged": True},
                prev_hash=third,
                hash="f" * 64,
            )
        )
    broken = log.verify().broken
    assert (broken.seq, broken.reason) == (4, "event 4 was altered after it was written")


def test_event_appended_outside_lawful_is_detected(store: Store, log: AuditLog) -> None:
    from lawful.audit import event_hash

    last = log.events()[-1]
    digest = event_hash("acme", 7, last.at, "consent.given", None, None, last.hash)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(audit_events).values(
                controller_id=_acme(store),
                seq=7,
                at=last.at,
                kind="consent.given",
                subject=None,
                data=None,
                prev_hash=last.hash,
                hash=digest,
            )
        )
    broken = log.verify().broken
    assert broken is not None and "head records event 6" in broken.reason


def test_reordered_events_are_detected(store: Store, log: AuditLog) -> None:
    acme = _acme(store)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_events SET seq = 100 WHERE seq = 2 AND controller_id = :c"),
            {"c": acme},
        )
        conn.execute(
            sa.text("UPDATE audit_events SET seq = 2 WHERE seq = 3 AND controller_id = :c"),
            {"c": acme},
        )
        conn.execute(
            sa.text("UPDATE audit_events SET seq = 3 WHERE seq = 100 AND controller_id = :c"),
            {"c": acme},
        )
    broken = log.verify().broken
    assert (broken.seq, broken.reason) == (
        2,
        "event 2 does not follow event 1: its link was changed",
    )


def test_events_for_one_subject(store: Store, log: AuditLog) -> None:
    log.record("consent.given", subject="b" * 64, data={"purpose": "newsletter"})
    assert [e.seq for e in log.events(subject="b" * 64)] == [7]
    assert len(log.events(subject=SUBJECT)) == 6


def test_bad_events_are_refused_before_anything_is_written(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="identity hash only"):
        log.record("consent.given", subject="someone@example.com")
    with pytest.raises(ValueError, match="needs a kind"):
        log.record("")
    with pytest.raises(TypeError):
        log.record("consent.given", data={"when": object()})
    assert log.verify().head_seq == 6


def test_a_batch_is_chained_in_one_transaction(log: AuditLog) -> None:
    written = log.record_many(NewEvent("decision.made", data={"i": i}) for i in range(2500))
    assert [written[0].seq, written[-1].seq] == [7, 2506]
    assert log.verify().ok


def _append_many(url: str, worker: int, count: int) -> None:
    with open_store(url) as store:
        log = AuditLog(store, "acme")
        for i in range(count):
            log.record("consent.given", data={"worker": worker, "i": i})


def test_concurrent_writers_never_fork_the_chain_or_lose_an_event(
    store: Store, store_url: str
) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(store_url, w, 40)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    log = AuditLog(store, "acme")
    events = log.events()
    assert [e.seq for e in events] == list(range(1, 161))
    assert sorted((e.data["worker"], e.data["i"]) for e in events) == [
        (w, i) for w in range(4) for i in range(40)
    ]
    result = log.verify()
    assert result.ok and result.checked == 160
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(audit_heads.c.seq)) == 160
