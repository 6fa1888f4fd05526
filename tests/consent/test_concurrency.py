"""Several OS processes, each with its own Engine, write consent to one store at once.

Afterwards the audit chain verifies, every ledger record has its audit event (none
lost, none extra), every identity names exactly one subject created once, and each
subject's current state and decisions follow its newest record.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from psycopg.errors import DeadlockDetected

from lawful.audit import AuditLog
from lawful.audit.tables import audit_events
from lawful.consent import ChoiceInput, DecisionLogging, Status, Topic, ledger
from lawful.consent.tables import consent_records, consent_state
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.subjects import Identity, Keyring
from lawful.subjects.tables import identities, subjects

POLICY = Path(__file__).with_name("policy.yaml")
OPERATIONS = 50  # gives and withdraws per worker, one transaction each
BATCH = 100  # choices in each worker's one record_many
SHARED = [f"email:shared{k}@example.com" for k in range(10)]  # every worker writes these
PURPOSES = ("newsletter", "ad_sharing")  # both decided by consent alone


def _own(worker: int, n: int) -> str:
    return f"email:w{worker}-{n}@example.com"


def _open(url: str, keyring: Keyring) -> Engine:
    loaded = load_policy_text(POLICY.read_text(), str(POLICY))
    return Engine.open(loaded, url, keyring=keyring, decision_logging=DecisionLogging(mode="off"))


def _work(
    url: str, keyring_json: str, worker: int, start: Any, errors: Path
) -> None:  # pragma: no cover - runs in the child processes
    try:
        engine = _open(url, Keyring.from_json(keyring_json))
        start.wait(60)  # all workers write at once
        with engine:
            consent = engine.consent
            for i in range(OPERATIONS):
                if i == OPERATIONS // 2:
                    _batch(consent, worker)
                # even steps: the shared subjects, odd steps: this worker's own
                subject = SHARED[(i + worker) % len(SHARED)] if i % 2 == 0 else _own(worker, i % 7)
                purpose = PURPOSES[i % 3 == 0]
                if (i // 2 + worker) % 3 == 2:
                    consent.withdraw(subject, purpose)
                else:
                    consent.give(subject, purpose, method="form" if i % 3 else "banner")
    except BaseException:
        errors.joinpath(f"worker-{worker}.txt").write_text(traceback.format_exc())
        raise


def _batch(consent: Any, worker: int) -> None:  # pragma: no cover - in the child processes
    """One record_many: the shared subjects (in a different order per worker) and 90 new."""
    shared = SHARED if worker % 2 else list(reversed(SHARED))
    names = [*shared, *(_own(worker, 100 + j) for j in range(BATCH - len(SHARED)))]
    consent.record_many(
        ChoiceInput(
            subject=name,
            topic=Topic.consent,
            key="newsletter",
            state=Status.withdrawn if (j + worker) % 4 == 0 else Status.given,
        )
        for j, name in enumerate(names)
    )


def _run_workers(url: str, keyring: Keyring, count: int, tmp_path: Path) -> dict[str, str]:
    """Run `count` workers at once; the traceback of each that failed, by name."""
    # The parent records the policy first, so the workers find version 1 unchanged.
    _open(url, keyring).close()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(count)
    workers = [
        context.Process(target=_work, args=(url, keyring.to_json(), w, start, tmp_path))
        for w in range(count)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(300)
        if p.is_alive():  # hung: end it, and report it as failed
            p.kill()
            p.join()
    return {p.name: _error(tmp_path, w) for w, p in enumerate(workers) if p.exitcode != 0}


def _error(tmp_path: Path, worker: int) -> str:
    path = tmp_path / f"worker-{worker}.txt"
    return path.read_text() if path.exists() else "(no traceback: killed or timed out)"


def _check(url: str, keyring: Keyring, count: int, *, complete: bool = True) -> None:
    """The invariants of what the workers committed; `complete` when none of them failed."""
    engine = _open(url, keyring)
    with engine:
        store = engine.store
        key = engine.policy.key
        assert AuditLog(store, key).verify().ok

        with store.engine.connect() as conn:
            records = conn.execute(
                sa.select(
                    consent_records.c.ref,
                    consent_records.c.subject_id,
                    consent_records.c.key,
                    consent_records.c.scope,
                    consent_records.c.state,
                    consent_records.c.at,
                ).where(consent_records.c.topic == "consent")
            ).all()
            consent_events = conn.execute(
                sa.select(audit_events.c.kind, audit_events.c.data).where(
                    audit_events.c.kind.like("consent.%")
                )
            ).all()
            created = conn.scalar(
                sa.select(sa.func.count()).where(audit_events.c.kind == "subject.created")
            )
            subject_rows = conn.execute(sa.select(subjects.c.id, subjects.c.ref)).all()
            identity_rows = conn.execute(
                sa.select(identities.c.hash, identities.c.subject_id)
            ).all()
            states = {
                (row.subject_id, row.key, row.scope): row.record_ref
                for row in conn.execute(
                    sa.select(
                        consent_state.c.subject_id,
                        consent_state.c.key,
                        consent_state.c.scope,
                        consent_state.c.record_ref,
                    ).where(consent_state.c.topic == "consent")
                )
            }

        # No event lost, none written twice, each for its own record.
        expected = count * (OPERATIONS + BATCH)
        assert (len(records) == expected) if complete else (len(records) < expected)
        assert len(consent_events) == len(records)
        assert sorted(e.data["record"] for e in consent_events) == sorted(r.ref for r in records)
        by_ref = {r.ref: r for r in records}
        assert all(e.kind == f"consent.{by_ref[e.data['record']].state}" for e in consent_events)

        # Each identity was created once, as one subject.
        used = {*SHARED}
        for w in range(count):
            used |= {_own(w, i % 7) for i in range(1, OPERATIONS, 2)}
            used |= {_own(w, 100 + j) for j in range(BATCH - len(SHARED))}
        hashes = {keyring.hash(Identity.parse(name)): name for name in used}
        stored = {h for h, _ in identity_rows}
        assert len(stored) == len(identity_rows)
        assert (stored == set(hashes)) if complete else (stored <= set(hashes))
        used = {hashes[h] for h in stored}
        assert len({s for _, s in identity_rows}) == len(identity_rows) == len(subject_rows)
        assert created == len(subject_rows)

        # The current state and the decisions follow each subject's newest record.
        newest: dict[tuple[int, str, str], list[Any]] = defaultdict(list)
        for r in records:
            group = newest[(r.subject_id, r.key, r.scope)]
            if not group or r.at > group[0].at:
                group[:] = [r]
            elif r.at == group[0].at:  # the same microsecond: either may win
                group.append(r)
        assert set(states) == set(newest)
        subject_of = {h: s for h, s in identity_rows}
        for name in sorted(used):
            subject_id = subject_of[keyring.hash(Identity.parse(name))]
            for purpose in PURPOSES:
                group = newest.get((subject_id, purpose, ""))
                decision = engine.decide(name, purpose)
                if group is None:
                    assert not decision.allowed and decision.rule != "consent.withdrawn"
                    continue
                current = states[(subject_id, purpose, "")]
                assert current in {r.ref for r in group}
                state = by_ref[current].state
                assert decision.allowed is (state in ("given", "renewed")), (name, decision)
                if state == "withdrawn":
                    assert decision.rule == "consent.withdrawn", (name, decision)


class DeadlockNotRetried(Exception):
    """A writer died of a PostgreSQL deadlock that the store did not retry."""


@pytest.mark.postgresql
def test_four_processes_write_consent_at_once(pg_url: str, tmp_path: Path) -> None:
    keyring = Keyring.generate()
    failures = _run_workers(pg_url, keyring, 4, tmp_path)
    # Whatever committed is whole: a deadlocked transaction left no record without its event.
    _check(pg_url, keyring, 4, complete=not failures)
    deadlocked = {name: tb for name, tb in failures.items() if "DeadlockDetected" in tb}
    assert failures == deadlocked, failures  # any other failure is a bug of its own
    if deadlocked:
        raise DeadlockNotRetried(next(iter(deadlocked.values())))


def test_two_processes_write_consent_to_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    keyring = Keyring.generate()
    failures = _run_workers(sqlite_url, keyring, 2, tmp_path)
    assert not failures, failures
    _check(sqlite_url, keyring, 2)


@pytest.mark.postgresql
def test_a_new_subject_and_a_known_one_written_at_once_do_not_deadlock(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving the four processes above hit by chance, forced with two threads.

    A: record_many for a new subject (its subject.created event locks the audit head) and
    a known subject S. B, once A holds the head: give for S (locks S's consent_state row,
    then waits for the head). A then upserts S's consent_state row.
    """
    keyring = Keyring.generate()
    first, second = _open(pg_url, keyring), _open(pg_url, keyring)
    known = SHARED[0]
    first.consent.give(known, "newsletter")
    a_holds_head, b_started = threading.Event(), threading.Event()
    real_upsert = ledger.upsert

    def upsert(*args: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "A":
            a_holds_head.set()
            b_started.wait(10)
            time.sleep(0.5)  # B reaches its wait for the head
        real_upsert(*args, **kwargs)

    monkeypatch.setattr(ledger, "upsert", upsert)
    errors: dict[str, BaseException] = {}

    def a() -> None:
        try:
            first.consent.record_many(
                ChoiceInput(subject=name, topic=Topic.consent, key="newsletter", state=state)
                for name, state in ((_own(0, 0), Status.given), (known, Status.withdrawn))
            )
        except BaseException as exc:
            errors["A"] = exc

    def b() -> None:
        a_holds_head.wait(10)
        b_started.set()
        try:
            second.consent.give(known, "newsletter", method="form")
        except BaseException as exc:
            errors["B"] = exc

    threads = [threading.Thread(target=a, name="A"), threading.Thread(target=b, name="B")]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        for exc in errors.values():
            if isinstance(getattr(exc, "orig", None), DeadlockDetected):
                raise DeadlockNotRetried(str(exc)) from exc
            raise exc
        assert AuditLog(first.store, first.policy.key).verify().ok
    finally:
        first.close()
        second.close()
