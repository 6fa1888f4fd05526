"""Request jobs on SQLite and PostgreSQL: claims, leases, fencing, steps, resume, retries,
several worker processes, and a worker killed mid-step whose job another one finishes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from lawful.requests.jobs import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    InStore,
    JobError,
    Jobs,
    LeaseLost,
    Outcome,
    enqueue,
    is_retryable,
)
from lawful.requests.tables import request_jobs, request_steps, requests
from lawful.store.store import Store, open_store
from tests.conftest import PG_TEST_URL, _fresh_database, _with_driver
from tests.requests import job_worker

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2020, 1, 1, tzinfo=UTC)  # queued long ago: available to claims now


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def controller(store: Store) -> int:
    return store.ensure_controller("acme", "Acme Ltd")


@pytest.fixture
def effects_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """A second database on the same backend: the "company" database steps act on."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'effects.db'}"
        return
    admin = _with_driver(os.environ.get("LAWFUL_TEST_PG") or PG_TEST_URL, "postgresql", "psycopg")
    yield from _fresh_database("PostgreSQL", admin, "LAWFUL_TEST_PG", " WITH (FORCE)")


def new_requests(store: Store, controller: int, count: int = 1) -> list[int]:
    """Minimal request rows, for the jobs' foreign key."""
    now = datetime.now(UTC)
    rows = [
        {
            "controller_id": controller,
            "ref": uuid.uuid4().hex,
            "kind": "erasure",
            "state": "in_progress",
            "identity_kind": "email",
            "identity_hash": "0" * 64,
            "channel": "api",
            "received_at": now,
            "due_at": now + timedelta(days=30),
            "updated_at": now,
        }
        for _ in range(count)
    ]

    def insert(conn: Connection) -> list[int]:
        return [
            conn.execute(sa.insert(requests).values(row)).inserted_primary_key[0] for row in rows
        ]

    return store.write(insert)


def queue(store: Store, controller: int, request_id: int, now: datetime = T0) -> None:
    store.write(
        lambda conn: enqueue(conn, request_id=request_id, controller_id=controller, now=now)
    )


def jobs_rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(request_jobs).order_by(request_jobs.c.request_id)))


def steps_rows(store: Store, request_id: int) -> list[Any]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(request_steps)
                .where(request_steps.c.request_id == request_id)
                .order_by(request_steps.c.seq)
            )
        )


def serialization_failure() -> OperationalError:
    """The error SQLAlchemy raises for PostgreSQL's 40001, built from psycopg's own."""
    return OperationalError("UPDATE t SET x = 1", {}, psycopg.errors.SerializationFailure())


# -- enqueue and claim -----------------------------------------------------------------


def test_enqueue_is_idempotent(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    queue(store, controller, rid, T0 + timedelta(hours=1))
    (row,) = jobs_rows(store)
    assert (row.state, row.attempts, row.available_at) == (QUEUED, 0, T0)

    jobs = Jobs(store)
    claim = jobs.claim(now=datetime.now(UTC))
    assert claim is not None
    queue(store, controller, rid)  # running: untouched
    (row,) = jobs_rows(store)
    assert (row.state, row.lease_owner, row.attempts) == (RUNNING, jobs.worker, 1)

    jobs.steps(claim, ["only"])
    jobs.finish_step(claim, 1, {})
    jobs.complete(claim)
    queue(store, controller, rid)  # done: untouched
    assert jobs_rows(store)[0].state == DONE


def test_enqueue_requeues_a_failed_job(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    claim = jobs.claim(now=datetime.now(UTC))
    assert claim is not None
    jobs.give_up(claim, "TimeoutError")
    assert (jobs_rows(store)[0].state, jobs_rows(store)[0].last_error) == (FAILED, "TimeoutError")
    queue(store, controller, rid)
    (row,) = jobs_rows(store)
    assert (row.state, row.attempts, row.last_error, row.lease_owner) == (QUEUED, 0, None, None)


def test_claim_takes_the_oldest_available_job(store: Store, controller: int) -> None:
    early, late, future, other = new_requests(store, controller, 4)
    tenant = store.ensure_controller("tenant", "Tenant")
    queue(store, controller, late, T0 + timedelta(seconds=1))
    queue(store, controller, early, T0)
    queue(store, controller, future, T0 + timedelta(hours=1))
    queue(store, tenant, other, T0 + timedelta(seconds=2))
    jobs = Jobs(store, lease=timedelta(days=1))  # the jobs taken stay taken
    now = T0 + timedelta(minutes=1)

    # Another controller's job is only taken by a worker for it (or for all).
    taken = jobs.claim(now=now, controller_id=tenant)
    assert taken is not None and (taken.request_id, taken.controller_id) == (other, tenant)
    first, second = jobs.claim(now=now), jobs.claim(now=now)
    assert first is not None and second is not None
    assert (first.request_id, second.request_id) == (early, late)
    assert first.lease_until == now + jobs.lease and first.attempts == 1
    assert jobs.claim(now=now) is None  # the last one is not available yet
    last = jobs.claim(now=T0 + timedelta(hours=2))
    assert last is not None and last.request_id == future


# -- leases and fencing ----------------------------------------------------------------


def test_expired_lease_lets_another_worker_take_over_and_fences_the_first(
    store: Store, controller: int
) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    a, b = Jobs(store, worker="a"), Jobs(store, worker="b")
    claim_a = a.claim()
    assert claim_a is not None
    a.steps(claim_a, ["erase", "notify"])
    a.start_step(claim_a, 1)

    assert b.claim() is None  # a's lease holds
    # b looks again after a's lease ran out (a is presumed dead).
    claim_b = b.claim(now=claim_a.lease_until + timedelta(seconds=1))
    assert claim_b is not None and (claim_b.worker, claim_b.attempts) == ("b", 2)

    # a wakes up: none of its writes go through.
    with pytest.raises(LeaseLost, match="no longer holds the job"):
        a.finish_step(claim_a, 1, {"rows": 1})
    for write in (
        lambda: a.renew(claim_a),
        lambda: a.steps(claim_a, ["erase", "notify"]),
        lambda: a.start_step(claim_a, 2),
        lambda: a.fail_step(claim_a, 1, "ValueError"),
        lambda: a.complete(claim_a),
        lambda: a.retry(claim_a, "ValueError", timedelta(0)),
        lambda: a.give_up(claim_a, "ValueError"),
    ):
        with pytest.raises(LeaseLost):
            write()
    with pytest.raises(LeaseLost):  # nor can b write with a's claim
        b.finish_step(claim_a, 1, {})

    steps = b.steps(claim_b, ["erase", "notify"])
    assert [(s.name, s.state, s.attempts) for s in steps] == [
        ("erase", "pending", 1),
        ("notify", "pending", 0),
    ]
    for step in steps:
        b.start_step(claim_b, step.seq)
        b.finish_step(claim_b, step.seq, {"by": "b"})
    b.complete(claim_b)
    assert [row.result for row in steps_rows(store, rid)] == [{"by": "b"}, {"by": "b"}]
    (job,) = jobs_rows(store)
    assert (job.state, job.attempts, job.lease_owner) == (DONE, 2, None)


def test_an_expired_lease_fences_even_before_a_takeover(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    # The worker's own clock, moved by hand: a slow machine can't expire the lease early.
    now = [datetime.now(UTC)]
    jobs = Jobs(store, lease=timedelta(milliseconds=300), clock=lambda: now[0])
    claim = jobs.claim()
    assert claim is not None
    now[0] += timedelta(milliseconds=100)
    jobs.steps(claim, ["only"])
    claim = jobs.renew(claim)  # until +400 ms
    now[0] += timedelta(milliseconds=400)
    with pytest.raises(LeaseLost):
        jobs.finish_step(claim, 1, {})
    assert steps_rows(store, rid)[0].state == "pending"


# -- steps -----------------------------------------------------------------------------


def test_steps_are_recorded_once_and_cannot_change(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    claim = jobs.claim()
    assert claim is not None
    first = jobs.steps(claim, ["dataset:shop:erase", "consent:withdraw"])
    assert [(s.seq, s.name, s.state) for s in first] == [
        (1, "dataset:shop:erase", "pending"),
        (2, "consent:withdraw", "pending"),
    ]
    assert jobs.steps(claim, ["dataset:shop:erase", "consent:withdraw"]) == first
    with pytest.raises(JobError, match="cannot change once recorded"):
        jobs.steps(claim, ["consent:withdraw", "dataset:shop:erase"])
    with pytest.raises(ValueError, match="at least one step"):
        jobs.steps(claim, [])
    assert len(steps_rows(store, rid)) == 2


def test_the_first_step_can_start_as_the_steps_are_recorded(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    claim = jobs.claim()
    assert claim is not None
    before = datetime.now(UTC)
    first, second = jobs.steps(claim, ["a", "b"], start_first=True)
    assert (first.attempts, second.attempts, second.started_at) == (1, 0, None)
    # In UTC, as every time lawful reads back, and now.
    assert first.started_at is not None and first.started_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= first.started_at <= datetime.now(UTC)
    assert [(r.attempts, r.started_at) for r in steps_rows(store, rid)] == [
        (1, first.started_at),
        (0, None),
    ]


def test_never_complete_while_a_step_is_not_done(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    claim = jobs.claim()
    assert claim is not None
    with pytest.raises(JobError, match="no steps recorded"):
        jobs.complete(claim)
    jobs.steps(claim, ["erase", "verify"])
    jobs.finish_step(claim, 1, {"rows": 3})
    with pytest.raises(JobError, match="steps 2:verify are not done"):
        jobs.complete(claim)
    jobs.fail_step(claim, 2, "TimeoutError")
    with pytest.raises(JobError, match="2:verify"):
        jobs.complete(claim)
    assert jobs_rows(store)[0].state == RUNNING
    jobs.start_step(claim, 2)
    jobs.finish_step(claim, 2, {"left": 0})
    with pytest.raises(JobError, match="already done"):
        jobs.start_step(claim, 2)
    jobs.complete(claim)
    assert jobs_rows(store)[0].state == DONE


def test_an_in_store_effect_happens_exactly_once(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    claim = jobs.claim()
    assert claim is not None
    jobs.steps(claim, ["withdraw"])
    calls: list[int] = []

    def effect(conn: Connection) -> None:
        calls.append(1)
        conn.execute(sa.update(requests).where(requests.c.id == rid).values(kind="withdrawal"))

    jobs.finish_step(claim, 1, {"withdrawn": 1}, effect=effect)
    jobs.finish_step(claim, 1, {"withdrawn": 1}, effect=effect)  # a retried completion
    assert calls == [1]

    def failing(conn: Connection) -> None:
        conn.execute(sa.update(requests).where(requests.c.id == rid).values(kind="erasure"))
        raise RuntimeError("boom")

    (other,) = new_requests(store, controller)
    queue(store, controller, other)
    claim2 = jobs.claim()
    assert claim2 is not None
    jobs.steps(claim2, ["withdraw"])
    with pytest.raises(RuntimeError):
        jobs.finish_step(claim2, 1, {}, effect=failing)
    with store.engine.connect() as conn:  # the effect rolled back with the step's record
        assert conn.scalar(sa.select(requests.c.kind).where(requests.c.id == rid)) == "withdrawal"
    assert steps_rows(store, other)[0].state == "pending"


def test_errors_recorded_are_short_reasons(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    claim = jobs.claim()
    assert claim is not None
    with pytest.raises(ValueError, match="class name"):
        jobs.retry(claim, "no such user alice@example.com", timedelta(seconds=1))
    with pytest.raises(ValueError, match="class name"):
        jobs.give_up(claim, "x" * 300)
    assert jobs_rows(store)[0].state == RUNNING


# -- run -------------------------------------------------------------------------------


class Counted:
    """A step function that counts its calls and fails as told on given calls."""

    def __init__(self, fail_on: dict[int, BaseException] | None = None) -> None:
        self.calls = 0
        self.fail_on = fail_on or {}

    def __call__(self, _: Connection | None) -> dict[str, Any]:
        self.calls += 1
        if self.calls in self.fail_on:
            raise self.fail_on[self.calls]
        return {"call": self.calls}


def test_run_resumes_without_redoing_done_steps(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    a, b, c = Counted(), Counted({1: ValueError("bad value for alice@example.com")}), Counted()
    claim = jobs.claim()
    assert claim is not None
    result = jobs.run(claim, [("a", a), ("b", b), ("c", c)])
    # A non-transient error: the step fails, the job waits in the queue, no message kept.
    assert (result.state, result.ran, result.error) == (QUEUED, ("a",), "ValueError")
    assert [(r.state, r.result) for r in steps_rows(store, rid)] == [
        ("done", {"call": 1}),
        ("failed", {"error": "ValueError"}),
        ("pending", None),
    ]
    (job,) = jobs_rows(store)
    assert (job.state, job.last_error, job.lease_owner) == (QUEUED, "ValueError", None)
    assert job.available_at > datetime.now(UTC)
    assert jobs.claim() is None  # backing off

    claim = jobs.claim(now=job.available_at)
    assert claim is not None and claim.attempts == 2
    result = jobs.run(claim, [("a", a), ("b", b), ("c", c)])
    assert (result.state, result.skipped, result.ran) == (DONE, ("a",), ("b", "c"))
    assert (a.calls, b.calls, c.calls) == (1, 2, 1)
    assert [r.state for r in steps_rows(store, rid)] == ["done"] * 3
    assert jobs_rows(store)[0].state == DONE


@pytest.mark.parametrize(
    "error",
    [
        serialization_failure(),
        OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")),
    ],
    ids=["pg-serialization", "sqlite-locked"],
)
def test_a_transient_error_is_retried_in_place(
    store: Store, controller: int, error: OperationalError
) -> None:
    assert is_retryable(error)
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store, backoff=0.001)
    flaky = Counted({1: error, 2: error})
    claim = jobs.claim()
    assert claim is not None
    result = jobs.run(claim, [("flaky", flaky)])
    assert (result.state, flaky.calls) == (DONE, 3)
    (step,) = steps_rows(store, rid)
    assert (step.state, step.attempts, step.result) == ("done", 3, {"call": 3})


def test_transient_errors_past_the_limit_requeue_the_job(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store, backoff=0.001, retries=2)
    failure = serialization_failure()
    stuck = Counted({n: failure for n in range(1, 10)})
    claim = jobs.claim()
    assert claim is not None
    result = jobs.run(claim, [("ok", Counted()), ("stuck", stuck)])
    assert (result.state, result.error, stuck.calls) == (QUEUED, "OperationalError", 3)
    (job,) = jobs_rows(store)
    assert (job.state, job.last_error) == (QUEUED, "OperationalError")
    assert [(r.state, r.attempts) for r in steps_rows(store, rid)] == [("done", 1), ("pending", 3)]


def test_a_job_claimed_too_often_is_given_up(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store, max_attempts=2, lease=timedelta(seconds=1))
    now = datetime.now(UTC)
    for n in range(3):  # two workers died holding it
        claim = jobs.claim(now=now + timedelta(seconds=2 * n))
        assert claim is not None
    assert claim.attempts == 3
    step = Counted()
    result = jobs.run(claim, [("s", step)])
    assert (result.state, step.calls) == (FAILED, 0)
    assert (jobs_rows(store)[0].state, jobs_rows(store)[0].last_error) == (
        FAILED,
        "too many attempts",
    )


@pytest.mark.postgresql
def test_a_dropped_connection_is_retried(pg_url: str) -> None:
    store = open_store(pg_url)
    controller = store.ensure_controller("acme", "Acme Ltd")
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store, backoff=0.01)
    database = store.engine.url.database
    killer = sa.create_engine(store.engine.url.set(database="postgres"), poolclass=sa.NullPool)
    killed: list[int] = []

    def cut(_: Connection | None) -> dict[str, Any]:
        if not killed:  # the first time, end every session on lawful's store
            with killer.connect() as conn:
                killed.extend(
                    conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :db AND pid <> pg_backend_pid()"
                        ),
                        {"db": database},
                    ).scalars()
                )
        return {"cut": len(killed)}

    claim = jobs.claim()
    assert claim is not None
    result = jobs.run(claim, [("cut", cut), ("after", Counted())])
    assert killed and all(killed)  # the store's pooled connections were really ended
    assert result.state == DONE
    steps = steps_rows(store, rid)
    assert [(s.name, s.state) for s in steps] == [("cut", "done"), ("after", "done")]
    assert steps[0].attempts == 2  # its completion failed on the dead connection, then ran again
    killer.dispose()
    store.close()


def test_the_lease_is_renewed_while_a_long_step_runs(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store, lease=timedelta(milliseconds=600))
    claim = jobs.claim()
    assert claim is not None
    seen: list[datetime] = []

    def long(_: Connection | None) -> dict[str, Any]:
        time.sleep(1.5)  # outlives the lease several times over
        job = jobs.job(rid)
        assert job is not None and job.lease_until is not None
        seen.append(job.lease_until)
        return {}

    with pytest.raises(ValueError, match="shorter than the lease"):
        jobs.run(claim, [("long", long)], renew_every=timedelta(seconds=1))
    result = jobs.run(claim, [("long", long)], renew_every=timedelta(milliseconds=150))
    assert result.state == DONE
    assert seen[0] > claim.lease_until + timedelta(milliseconds=500)


def test_a_run_that_lost_its_lease_records_nothing_more(store: Store, controller: int) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    a, b = Jobs(store, worker="a"), Jobs(store, worker="b")
    claim = a.claim()
    assert claim is not None
    taken: list[Any] = []

    def overtaken(_: Connection | None) -> dict[str, Any]:
        # Meanwhile another worker decides a is dead and takes the job.
        taken.append(b.claim(now=claim.lease_until + timedelta(seconds=1)))
        return {"by": "a"}

    later = Counted()
    with pytest.raises(LeaseLost):
        a.run(claim, [("overtaken", overtaken), ("later", later)])
    assert taken[0] is not None and later.calls == 0
    assert [s.state for s in steps_rows(store, rid)] == ["pending", "pending"]
    (job,) = jobs_rows(store)
    assert (job.state, job.lease_owner) == (RUNNING, "b")


def test_statements_on_the_store_per_job(store: Store, controller: int) -> None:
    """The issue's budget is 30 statements on lawful's store per request; a job of three
    steps (two elsewhere, one in lawful's store) takes 7 of them (BEGIN IMMEDIATE not
    counted): the claim 1; the plan 2 (the fence, the steps inserted with the first one
    started); the first step done and the second started 1 (fenced in the statement);
    the second done with the third carried out, the job released 3."""
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        claim = jobs.claim()
        assert claim is not None
        local = InStore(lambda conn: {"local": 1})
        result = jobs.run(claim, [("a", Counted()), ("b", Counted()), ("c", local)])
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert result.state == DONE
    assert len(statements) == 7, "\n".join(statements)


def test_each_step_is_started_once_and_finished_whatever_its_neighbours(
    store: Store, controller: int
) -> None:
    # Plain steps start with their predecessor's completion; an InStore step runs in the
    # completion of the plain one before it; the step after that is started by itself.
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    claim = jobs.claim()
    assert claim is not None
    local = InStore(lambda conn: {"local": 1})
    steps = [("a", Counted()), ("b", local), ("c", Counted()), ("d", Counted())]
    result = jobs.run(claim, steps)
    assert (result.state, result.ran) == (DONE, ("a", "b", "c", "d"))
    rows = steps_rows(store, rid)
    assert [(r.name, r.state, r.attempts) for r in rows] == [
        ("a", "done", 1),
        ("b", "done", 1),
        ("c", "done", 1),
        ("d", "done", 1),
    ]
    assert all(r.started_at is not None and r.started_at <= r.finished_at for r in rows)
    assert [r.result for r in rows] == [{"call": 1}, {"local": 1}, {"call": 1}, {"call": 1}]
    (job,) = jobs_rows(store)
    assert (job.state, job.lease_owner) == (DONE, None)


def test_a_closing_step_sees_every_step_once_as_recorded(store: Store, controller: int) -> None:
    # With with_steps, an InStore step gets the job's steps as recorded: each once, the
    # ones before it done with their results (here it runs in its predecessor's commit).
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    seen: list[tuple[str, str, Any]] = []

    def close(conn: Connection, steps: list[Any]) -> dict[str, Any]:
        seen.extend((st.name, st.state, st.result) for st in steps)
        return {"closed": True}

    claim = jobs.claim()
    assert claim is not None
    steps = [("a", Counted()), ("b", Counted()), ("close", InStore(close, with_steps=True))]
    assert jobs.run(claim, steps).state == DONE
    assert seen == [
        ("a", "done", {"call": 1}),
        ("b", "done", {"call": 1}),
        ("close", "pending", None),
    ]


def test_an_in_store_step_that_fails_after_a_plain_one_is_the_one_that_failed(
    store: Store, controller: int
) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid)
    jobs = Jobs(store)
    calls = {"local": 0}

    def local(conn: Connection) -> dict[str, Any]:
        # It fails in the plain step's completion (rolled back with it), and again when
        # run by itself; the next run finds it working.
        calls["local"] += 1
        if calls["local"] <= 2:
            raise ValueError("bad value for alice@example.com")
        return {"local": calls["local"]}

    plain = Counted()
    claim = jobs.claim()
    assert claim is not None
    result = jobs.run(claim, [("plain", plain), ("local", InStore(local))])
    # The plain step's work is kept (recorded done); the failure is the InStore step's.
    assert (result.state, result.ran, result.error) == (QUEUED, ("plain",), "ValueError")
    assert [(r.state, r.result) for r in steps_rows(store, rid)] == [
        ("done", {"call": 1}),
        ("failed", {"error": "ValueError"}),
    ]
    (job,) = jobs_rows(store)
    claim = jobs.claim(now=job.available_at)
    assert claim is not None
    result = jobs.run(claim, [("plain", plain), ("local", InStore(local))])
    assert (result.state, result.skipped, result.ran) == (DONE, ("plain",), ("local",))
    assert plain.calls == 1
    assert [r.state for r in steps_rows(store, rid)] == ["done", "done"]


@pytest.fixture
def effects_table(store: Store) -> Iterator[sa.Table]:
    """A table of lawful's store for a step's effect to write to."""
    table = sa.Table(
        f"effects_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        sa.Column("request_id", sa.BigInteger, primary_key=True),
    )
    table.create(store.engine)
    yield table
    table.drop(store.engine)


def test_an_outcome_is_made_with_its_step_record_and_only_then(
    store: Store, controller: int, effects_table: sa.Table
) -> None:
    first, second = new_requests(store, controller, 2)
    queue(store, controller, first)
    queue(store, controller, second)
    jobs = Jobs(store)

    def step_for(request_id: int) -> Any:
        def fn(_: Connection | None) -> Outcome:
            def effect(conn: Connection) -> dict[str, Any]:
                conn.execute(sa.insert(effects_table).values(request_id=request_id))
                return {"stored": True}

            return Outcome({"built": 1}, effect)

        return fn

    claim = jobs.claim()
    assert claim is not None and claim.request_id == first
    assert jobs.run(claim, [("make", step_for(first))]).state == DONE
    (row,) = steps_rows(store, first)
    # The effect's part of the result is recorded with the rest.
    assert (row.state, row.result) == ("done", {"built": 1, "stored": True})

    # A worker that lost the job while it worked: neither the effect nor the record stays.
    claim = jobs.claim()
    assert claim is not None and claim.request_id == second
    thief = Jobs(store, worker="thief")

    def stolen(_: Connection | None) -> Outcome:
        store.write(
            lambda conn: conn.execute(
                sa.update(request_jobs)
                .where(request_jobs.c.request_id == second)
                .values(lease_owner=thief.worker)
            )
        )
        return step_for(second)(None)

    with pytest.raises(LeaseLost):
        jobs.run(claim, [("make", stolen)])
    with store.engine.connect() as conn:
        made = conn.execute(sa.select(effects_table.c.request_id)).scalars().all()
    assert made == [first]
    assert [r.state for r in steps_rows(store, second)] == ["pending"]


# -- the worker loop -------------------------------------------------------------------


def test_work_drains_the_queue_and_requeues_a_failing_handler(
    store: Store, controller: int
) -> None:
    good, bad = new_requests(store, controller, 2)
    now = datetime.now(UTC) - timedelta(seconds=1)
    queue(store, controller, good, now)
    queue(store, controller, bad, now)
    jobs = Jobs(store)

    def handler(claim: Any) -> None:
        if claim.request_id == bad:
            raise KeyError("customer-1@example.com")
        jobs.run(claim, [("only", Counted())])

    assert jobs.work(handler, once=True) == 2
    done, failed = jobs.job(good), jobs.job(bad)
    assert done is not None and done.state == DONE
    assert failed is not None and (failed.state, failed.last_error) == (QUEUED, "KeyError")
    assert [s.state for s in jobs.recorded_steps(good)] == ["done"]


# -- several processes -----------------------------------------------------------------


def _worker(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.requests.job_worker", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_workers_in_several_processes_take_each_job_once(
    store: Store, controller: int, store_url: str
) -> None:
    ids = new_requests(store, controller, 50)
    store.write(
        lambda conn: [
            enqueue(conn, request_id=rid, controller_id=controller, now=T0) for rid in ids
        ]
    )
    start = time.time() + 3  # all four are up before any claims
    workers = [
        subprocess.Popen(
            _worker("drain", "--store", store_url, "--start-at", str(start)),
            env=_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    taken: list[list[int]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        taken.append(json.loads(out))
    everything = [rid for part in taken for rid in part]
    assert sorted(everything) == sorted(ids)  # each job once, none left
    assert sum(1 for part in taken if part) >= 2, "the claims did not run concurrently"
    rows = jobs_rows(store)
    assert {(row.state, row.attempts) for row in rows} == {(DONE, 1)}
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(request_steps)) == 50


def test_a_killed_worker_s_job_is_finished_by_another_exactly_once(
    store: Store, controller: int, store_url: str, effects_url: str
) -> None:
    (rid,) = new_requests(store, controller)
    queue(store, controller, rid, datetime.now(UTC) - timedelta(seconds=1))
    effects = sa.create_engine(effects_url, poolclass=sa.NullPool)
    job_worker.effects_metadata.create_all(effects)
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {job_worker.LOCAL_TABLE} (n INTEGER NOT NULL)"))
        conn.execute(sa.text(f"INSERT INTO {job_worker.LOCAL_TABLE} (n) VALUES (0)"))

    def rows(step: str) -> list[int]:
        with effects.connect() as conn:
            return list(
                conn.execute(
                    sa.select(job_worker.effects.c.n)
                    .where(job_worker.effects.c.step == step)
                    .order_by(job_worker.effects.c.n)
                ).scalars()
            )

    lease = 3.0
    process = subprocess.Popen(
        _worker("slow", "--store", store_url, "--effects", effects_url, "--lease", str(lease)),
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if len(rows("slow")) >= 2:  # well inside the slow step
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]

    slow_before = rows("slow")
    assert 2 <= len(slow_before) < job_worker.SLOW_ROWS
    (job,) = jobs_rows(store)
    assert (job.state, job.attempts) == (RUNNING, 1)
    assert [(s.name, s.state) for s in steps_rows(store, rid)] == [
        ("first", "done"),
        ("slow", "pending"),
        ("local", "pending"),
    ]

    # A second worker: nothing to claim while the dead one's lease lasts, then takes over.
    jobs = Jobs(store, lease=timedelta(seconds=lease))
    claim = jobs.claim()
    waited_from = time.monotonic()
    while claim is None and time.monotonic() - waited_from < 30:
        time.sleep(0.1)
        claim = jobs.claim()
    assert claim is not None and claim.attempts == 2
    result = jobs.run(claim, job_worker.steps(effects, tick=0.01))
    assert (result.state, result.skipped, result.ran) == (DONE, ("first",), ("slow", "local"))

    # Each step's effect happened exactly once; only the interrupted step ran twice.
    assert rows("first") == [1]
    assert rows("slow") == list(range(1, job_worker.SLOW_ROWS + 1))
    with effects.connect() as conn:
        started = sorted(conn.execute(sa.select(job_worker.runs.c.step)).scalars())
    assert started == ["first", "slow", "slow"]
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text(f"SELECT n FROM {job_worker.LOCAL_TABLE}")) == 1
    (job,) = jobs_rows(store)
    assert (job.state, job.attempts, job.lease_owner) == (DONE, 2, None)
    assert [(s.state, s.attempts) for s in steps_rows(store, rid)] == [
        ("done", 1),
        ("done", 2),
        ("done", 1),
    ]
    effects.dispose()
