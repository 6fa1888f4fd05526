"""Durable execution of requests: a job per request, claimed under a lease, done step by step.

A request with work to do gets a job (`enqueue`, in the transaction that decides it). A
worker (`Jobs`) claims the oldest available job, or one whose lease expired because its
worker died, and holds it under a lease it keeps renewing. The job's steps are recorded
(`request_steps`) and each is marked done with its result when it has been carried out,
so a worker that takes over skips the steps already done.

Fencing: every write a worker makes about a job checks, in the same statement, that the
lease is still its own and unexpired (`WHERE lease_owner = :me AND lease_until > now`),
and raises `LeaseLost` otherwise; a worker presumed dead that wakes up cannot record over
the one that took over. On PostgreSQL that statement also locks the job's row, so a
takeover waits for the transaction or skips the job.

Exactly once:
- A step whose effect is in lawful's own store (`InStore`) runs inside the transaction
  that marks it done: the effect and its record commit together or not at all.
- A step against another database (a company dataset's erasure) commits there, then its
  completion is recorded here. A crash between the two runs the step again on resume, so
  such a step must be idempotent: run a second time, it must change nothing (an erasure
  finds nothing left to erase; an insert checks what is already there).

Claims: on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1` and the update in one
transaction, so workers in several processes or machines never take the same job. On
SQLite every write here starts with `BEGIN IMMEDIATE`, taking the database's write lock
before reading, so two processes on one file cannot both claim a job either.

Errors recorded here (`last_error`, a failed step's result) are class names or short
reasons, never messages that could hold personal data.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError, OperationalError

from lawful.requests.tables import request_jobs, request_steps
from lawful.store.store import Store, StoreError, is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")

# Job states.
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

# Step states; a step done or skipped is finished and never run again.
PENDING = "pending"
STEP_DONE = "done"
STEP_FAILED = "failed"
SKIPPED = "skipped"
_FINISHED = (STEP_DONE, SKIPPED)

_NAME_MAX = 200  # request_steps.name
_WORKER_MAX = 64  # request_jobs.lease_owner
_ERROR_MAX = 200  # well under request_jobs.last_error
# SQLSTATEs a retry can cure: connection lost (class 08), server shutting down or the
# backend terminated (57P01-3), deadlock and serialisation failure.
_TRANSIENT_SQLSTATES = ("57P01", "57P02", "57P03", "40001", "40P01")


class JobError(Exception):
    """A job or step can't be moved as asked; the message says why."""


class LeaseLost(JobError):
    """This worker no longer holds the job: its lease expired or another worker took it."""


@dataclass(frozen=True)
class Claim:
    """A job held by `worker` until `lease_until`; `attempts` counts claims, this one included."""

    request_id: int
    controller_id: int
    worker: str
    lease_until: datetime
    attempts: int


@dataclass(frozen=True)
class Job:
    request_id: int
    controller_id: int
    state: str
    attempts: int
    available_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class Step:
    request_id: int
    seq: int  # from 1, in the order the steps run
    name: str
    state: str  # pending, done, failed, skipped
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.state in _FINISHED


@dataclass(frozen=True)
class InStore:
    """A step whose effect is in lawful's own store: `fn(conn)` runs in the transaction
    that marks the step done, so it happens exactly once; it returns the step's result.

    With `with_steps`, it is called `fn(conn, steps)`, `steps` being every step of the job
    as recorded when it runs (a closing step reads its predecessors' results there).
    """

    fn: Callable[..., dict[str, Any]]
    with_steps: bool = False

    def __call__(self, conn: Connection | None, steps: Sequence[Step] = ()) -> dict[str, Any]:
        if conn is None:
            raise JobError("an InStore step needs the store's connection")
        result = self.fn(conn, list(steps)) if self.with_steps else self.fn(conn)
        if not isinstance(result, dict):
            raise TypeError(f"a step's result must be a dict, got {type(result).__name__}")
        return result


@dataclass(frozen=True)
class Outcome:
    """What a plain step may return instead of its result dict: the result and a change to
    lawful's own store, made in the transaction that marks the step done (exactly once,
    like an InStore step; the work before it, outside the store, must be idempotent).
    `effect(conn)` may return more of the result, known only once the change is made."""

    result: dict[str, Any]
    effect: Callable[[Connection], dict[str, Any] | None]


class _AlreadyDone(Exception):
    """A step found finished while recording it: the transaction is rolled back and the
    run goes on from the steps as recorded (an earlier commit went through)."""


class _NextFailed(Exception):
    """The InStore step run in its predecessor's finishing transaction failed; `error`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(type(error).__name__)
        self.error = error


@dataclass(frozen=True)
class RunResult:
    """How `Jobs.run` left the job: done, queued (to be retried) or failed."""

    state: str
    ran: tuple[str, ...]  # steps carried out by this run
    skipped: tuple[str, ...]  # steps found done (resumed)
    error: str | None = None  # class name of the error that stopped the run


StepFn = Callable[[Connection | None], "dict[str, Any] | Outcome"]


def enqueue(
    conn: Connection, *, request_id: int, controller_id: int, now: datetime, new: bool = False
) -> None:
    """Queue request `request_id`'s job, in the caller's transaction.

    Idempotent: a job already queued, running or done is left as it is. A failed job is
    queued again with its attempts reset (someone decided to try again).
    A concurrent enqueue of the same request makes the insert fail on the primary key;
    run this inside `Store.write`, which retries, and the retry finds the job.
    `new`: the request was written in this very transaction, so it has no job yet.
    """
    state = (
        None
        if new
        else conn.scalar(
            sa.select(request_jobs.c.state).where(request_jobs.c.request_id == request_id)
        )
    )
    if state is None:
        conn.execute(
            sa.insert(request_jobs).values(
                request_id=request_id,
                controller_id=controller_id,
                state=QUEUED,
                attempts=0,
                available_at=now,
                updated_at=now,
            )
        )
    elif state == FAILED:
        conn.execute(
            sa.update(request_jobs)
            .where(request_jobs.c.request_id == request_id, request_jobs.c.state == FAILED)
            .values(
                state=QUEUED,
                attempts=0,
                available_at=now,
                lease_owner=None,
                lease_until=None,
                last_error=None,
                updated_at=now,
            )
        )


def is_retryable(exc: BaseException) -> bool:
    """A database failure a retry can cure: a lost connection, a deadlock, a serialisation
    failure, SQLite's busy database (also when the store gave up retrying it)."""
    if isinstance(exc, StoreError) and exc.__cause__ is not None:
        return is_retryable(exc.__cause__)
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError) and is_transient(exc):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES


def default_worker() -> str:
    """hostname:pid:random, unique per Jobs instance."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"[-_WORKER_MAX:]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Jobs:
    """Claims and carries out request jobs in `store`, as worker `worker`.

    `retries` transient database errors are retried in place per step, with exponential
    back-off from `backoff` seconds; past that the job goes back to the queue, available
    again after `retry_delay(attempts)`. A job claimed more than `max_attempts` times is
    given up (failed).
    """

    def __init__(
        self,
        store: Store,
        *,
        worker: str | None = None,
        lease: timedelta = timedelta(seconds=30),
        retries: int = 5,
        backoff: float = 0.05,
        max_attempts: int = 10,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        worker = default_worker() if worker is None else worker
        if not worker or len(worker) > _WORKER_MAX:
            raise ValueError(f"worker must be 1 to {_WORKER_MAX} characters, got {worker!r}")
        if lease <= timedelta(0):
            raise ValueError(f"lease must be positive, got {lease}")
        if retries < 0 or max_attempts < 1:
            raise ValueError("retries must be >= 0 and max_attempts >= 1")
        self.store = store
        self.worker = worker
        self.lease = lease
        self.retries = retries
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.clock = clock
        self._sqlite = store.engine.dialect.name == "sqlite"

    def __repr__(self) -> str:
        return f"Jobs({self.store!r}, worker={self.worker!r})"

    # -- claiming ----------------------------------------------------------------------

    def claim(
        self, *, now: datetime | None = None, controller_id: int | None = None
    ) -> Claim | None:
        """Take the oldest job that is queued and available, or running under an expired
        lease (its worker died); None when there is none. Counts an attempt."""
        now = self.clock() if now is None else now
        lease_until = now + self.lease

        def take(conn: Connection) -> Claim | None:
            params = {
                "p_now": now,
                "p_lease_until": lease_until,
                "p_worker": self.worker,
                "p_controller": controller_id,
            }
            row = conn.execute(_claim_statement(controller_id is not None), params).first()
            if row is None:
                return None
            return Claim(row.request_id, row.controller_id, self.worker, lease_until, row.attempts)

        return self._write(take)

    def renew(self, claim: Claim) -> Claim:
        """Extend the lease by `lease` from now; LeaseLost if it is no longer ours."""
        now = self.clock()
        lease_until = now + self.lease

        def extend(conn: Connection) -> None:
            self._fence(conn, claim, now, lease_until=lease_until)

        self._write(extend)
        return Claim(
            claim.request_id, claim.controller_id, claim.worker, lease_until, claim.attempts
        )

    # -- steps -------------------------------------------------------------------------

    def steps(
        self,
        claim: Claim,
        names: Sequence[str],
        *,
        start_first: bool | Callable[[int], bool] = False,
    ) -> list[Step]:
        """The job's steps, created on the first call in the order of `names`.

        A later call must name the same steps in the same order: a job's plan does not
        change once recorded (a resumed job would otherwise skip or repeat work). With
        `start_first` (or when `start_first(seq)` says so for it), the first step not
        finished is also started (as `start_step` does) in the same transaction: `run`
        saves a round trip and a commit.
        """
        names = list(names)
        if not names:
            raise ValueError("a job needs at least one step; pass the names of its steps")
        for name in names:
            if not isinstance(name, str) or not name or len(name) > _NAME_MAX:
                raise ValueError(f"step names must be 1 to {_NAME_MAX} characters, got {name!r}")

        def plan(conn: Connection) -> list[Step]:
            now = self.clock()
            self._fence(conn, claim, now)
            # The first call records the steps (the first one started, when asked) in one
            # statement; on a later call the rows are there and only read.
            first_started = start_first(1) if callable(start_first) else start_first
            fresh = [
                {
                    "request_id": claim.request_id,
                    "seq": seq,
                    "name": name,
                    "state": PENDING,
                    "attempts": 1 if seq == 1 and first_started else 0,
                    "started_at": now if seq == 1 and first_started else None,
                }
                for seq, name in enumerate(names, start=1)
            ]
            inserted = _insert_steps(conn, fresh)
            if len(inserted) == len(names):
                return sorted(inserted, key=lambda st: st.seq)
            steps = _steps(conn, claim.request_id)
            recorded = [step.name for step in steps]
            if recorded != names:
                raise JobError(
                    f"the job for request {claim.request_id} has steps {recorded} "
                    f"recorded, not {names}: a job's steps cannot change once recorded"
                )
            if start_first:
                first = next((step for step in steps if not step.finished), None)
                wanted = start_first(first.seq) if callable(start_first) and first else True
                if first is not None and wanted:
                    started = self._start(conn, claim, first.seq, now)
                    steps = [started if st.seq == first.seq and started else st for st in steps]
            return steps

        return self._write(plan)

    def start_step(self, claim: Claim, seq: int) -> Step:
        """Record that step `seq` is starting (its attempts count up)."""

        def start(conn: Connection) -> Step:
            now = self.clock()
            self._fence(conn, claim, now)
            started = self._start(conn, claim, seq, now)
            if started is None:
                step = self._step(conn, claim, seq)  # raises when there is no such step
                raise JobError(
                    f"step {seq} ({step.name}) of request {claim.request_id} is already "
                    f"{step.state}: it is not run again"
                )
            return started

        return self._write(start)

    def finish_step(
        self,
        claim: Claim,
        seq: int,
        result: dict[str, Any],
        *,
        effect: Callable[[Connection], None] | None = None,
    ) -> Step:
        """Mark step `seq` done with `result` (counts and reasons, no personal data).

        `effect(conn)` runs in the same transaction: a change to lawful's own store made
        there happens exactly once. A step already done is returned as it is and `effect`
        is not run again (a retried completion whose first commit went through).
        """
        if not isinstance(result, dict):
            raise TypeError(f"a step's result must be a dict, got {type(result).__name__}")

        if effect is None:
            return self._finish(claim, seq, result)
        run_effect = effect

        def produce(conn: Connection) -> dict[str, Any]:
            run_effect(conn)
            return result

        return self._finish(claim, seq, produce)

    def fail_step(self, claim: Claim, seq: int, error: str) -> Step:
        """Mark step `seq` failed with `error`, a class name or short reason. A failed step
        runs again when the job is retried."""
        error = _check_error(error)

        def fail(conn: Connection) -> Step:
            now = self.clock()
            self._fence(conn, claim, now)
            step = self._step(conn, claim, seq)
            if step.finished:
                raise JobError(
                    f"step {seq} ({step.name}) of request {claim.request_id} is already "
                    f"{step.state}; it cannot fail"
                )
            s = request_steps.c
            conn.execute(
                sa.update(request_steps)
                .where(s.request_id == claim.request_id, s.seq == seq)
                .values(state=STEP_FAILED, finished_at=now, result={"error": error})
            )
            return self._step(conn, claim, seq)

        return self._write(fail)

    # -- ending a claim ----------------------------------------------------------------

    def complete(self, claim: Claim) -> None:
        """Mark the job done; refused (JobError) while any step is not done."""

        def done(conn: Connection) -> None:
            now = self.clock()
            self._fence(conn, claim, now)
            steps = _steps(conn, claim.request_id)
            if not steps:
                raise JobError(
                    f"the job for request {claim.request_id} has no steps recorded; "
                    "record them with Jobs.steps and carry them out first"
                )
            pending = [f"{step.seq}:{step.name}" for step in steps if not step.finished]
            if pending:
                raise JobError(
                    f"the job for request {claim.request_id} cannot be completed: steps "
                    f"{', '.join(pending)} are not done"
                )
            self._release(conn, claim, state=DONE, now=now, last_error=None)

        self._write(done)

    def retry(self, claim: Claim, error: str, delay: timedelta) -> None:
        """Put the job back in the queue, available after `delay`; `error` is a class name
        or short reason (never personal data)."""
        error = _check_error(error)
        if delay < timedelta(0):
            raise ValueError(f"delay must not be negative, got {delay}")

        def requeue(conn: Connection) -> None:
            now = self.clock()
            self._fence(conn, claim, now)
            self._release(conn, claim, state=QUEUED, now=now, last_error=error, delay=delay)

        self._write(requeue)

    def give_up(self, claim: Claim, error: str) -> None:
        """Mark the job failed (no more attempts); `error` as for `retry`."""
        error = _check_error(error)

        def fail(conn: Connection) -> None:
            now = self.clock()
            self._fence(conn, claim, now)
            self._release(conn, claim, state=FAILED, now=now, last_error=error)

        self._write(fail)

    # -- reading -----------------------------------------------------------------------

    def job(self, request_id: int) -> Job | None:
        """The job of request `request_id`, None when it has none."""
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(request_jobs).where(request_jobs.c.request_id == request_id)
            ).first()
        return None if row is None else Job(**row._mapping)

    def recorded_steps(self, request_id: int) -> list[Step]:
        """The steps recorded for request `request_id`, in order (no claim needed)."""
        with self.store.engine.connect() as conn:
            return _steps(conn, request_id)

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        claim: Claim,
        steps: Sequence[tuple[str, StepFn]],
        *,
        renew_every: timedelta | None = None,
    ) -> RunResult:
        """Carry out the job's `steps` (name, fn) in order and complete it.

        Steps already done are skipped (a resumed job). A plain `fn` is called with None
        and must be idempotent (see the module's docstring); an `InStore` fn is called
        with the connection of the transaction that marks it done. A transient database
        error is retried in place with back-off, `retries` times, then the job goes back
        to the queue. Another error fails the step and requeues the job, or gives it up
        after `max_attempts`. The lease is renewed every `renew_every` (default: a third
        of the lease) in a background thread while the run lasts; LeaseLost is raised
        when another worker took the job over.
        """
        if claim.attempts > self.max_attempts:
            self._retrying(lambda: self.give_up(claim, "too many attempts"))
            return RunResult(FAILED, (), (), "too many attempts")
        every = renew_every or self.lease / 3
        if not timedelta(0) < every < self.lease:
            raise ValueError(
                f"renew_every must be positive and shorter than the lease ({self.lease}), "
                f"got {every}"
            )
        names = [name for name, _ in steps]
        fns = [fn for _, fn in steps]
        outside = [not isinstance(fn, InStore) for fn in fns]
        ran: list[str] = []
        skipped: list[str] = []
        with _Heartbeat(self, claim, every.total_seconds()) as heartbeat:
            # The first step still to do, when it runs outside the store, is started in the
            # transaction that records the plan.
            recorded = self._retrying(
                lambda: self.steps(claim, names, start_first=lambda seq: outside[seq - 1])
            )
            started = next((i for i, st in enumerate(recorded) if not st.finished), None)
            if started is not None and not outside[started]:
                started = None
            skipped = [name for name, st in zip(names, recorded, strict=True) if st.finished]
            released = False
            i = 0
            while i < len(steps):
                if recorded[i].finished:
                    i += 1
                    continue
                heartbeat.check()
                try:
                    error, done = self._run_step(claim, recorded, i, fns, started=i == started)
                except _AlreadyDone:
                    recorded = self.recorded_steps(claim.request_id)
                    started = None
                    continue
                heartbeat.check()
                if error is not None:
                    return self._after_error(claim, recorded[i], error, ran, skipped)
                for k, step in sorted(done.items()):
                    recorded[k] = step
                    if step.finished:
                        ran.append(names[k])
                # A plain step's finishing transaction may have started the next one.
                started = next((k for k, step in done.items() if not step.finished), None)
                released = all(st.finished for st in recorded)
                i = max(k for k, step in done.items() if step.finished) + 1
            if not released:
                self._retrying(lambda: self.complete(claim))
        return RunResult(DONE, tuple(ran), tuple(skipped))

    def work(
        self,
        handler: Callable[[Claim], None],
        *,
        stop: threading.Event | None = None,
        poll: float = 0.5,
        once: bool = False,
        controller_id: int | None = None,
    ) -> int:
        """Claim jobs and hand each to `handler` (which ends it, e.g. through `run`) until
        `stop` is set; with `once`, return as soon as no job is available. Returns the
        number of jobs handled. A handler's error requeues its job (or gives it up)."""
        stop = stop or threading.Event()
        handled = 0
        while not stop.is_set():
            try:
                claim = self.claim(controller_id=controller_id)
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                log.warning("claiming a job failed (%s); trying again", type(exc).__name__)
                stop.wait(poll)
                continue
            if claim is None:
                if once:
                    break
                stop.wait(poll)
                continue
            handled += 1
            try:
                handler(claim)
            except LeaseLost:
                log.warning("worker %s lost the job of request %s", self.worker, claim.request_id)
            except Exception as exc:
                log.warning(
                    "the job of request %s failed (%s)", claim.request_id, type(exc).__name__
                )
                self._end_failed(claim, type(exc).__name__)
        return handled

    # -- helpers -----------------------------------------------------------------------

    def retry_delay(self, attempts: int) -> timedelta:
        """How long a job waits after its `attempts`-th attempt failed: 2^n s, at most 1 h."""
        return timedelta(seconds=min(2 ** min(attempts, 12), 3600))

    def _run_step(
        self, claim: Claim, recorded: list[Step], i: int, fns: Sequence[StepFn], *, started: bool
    ) -> tuple[BaseException | None, dict[int, Step]]:
        """Run step `i` to done: (the error that stopped it, or None; the steps recorded done,
        by index). LeaseLost and _AlreadyDone raise.

        A plain step is started (unless `started`: on its first attempt it was, with the
        plan or its predecessor), carried out, and finished in a transaction that also
        starts the next step, or carries out the next step when that one is InStore. The
        transaction that leaves no step to do also releases the job as done.
        """
        fn = fns[i]
        left = [k for k in range(i + 1, len(fns)) if not recorded[k].finished]
        nxt = left[0] if left else None
        for attempt in range(self.retries + 1):
            try:
                if isinstance(fn, InStore):
                    step = self._in_store(claim, recorded, i, fn, complete=nxt is None)
                    return None, {i: step}
                if not (started and attempt == 0):
                    self.start_step(claim, recorded[i].seq)
                out = fn(None)
                if isinstance(out, Outcome):
                    result, effect = out.result, out.effect
                else:
                    result, effect = out, None
                if not isinstance(result, dict):
                    raise TypeError(
                        f"step {recorded[i].name!r} returned {type(result).__name__}, not a dict"
                    )
                also = nxt if nxt is not None and isinstance(fns[nxt], InStore) else None
                if also is not None:
                    try:
                        return None, self._advance(
                            claim, recorded, i, result, effect, run=(also, fns[also]),
                            complete=len(left) == 1,
                        )  # fmt: skip
                    except _NextFailed:
                        pass  # recorded alone below; the InStore step runs (and fails) by itself
                return None, self._advance(
                    claim, recorded, i, result, effect,
                    start=nxt, complete=nxt is None,
                )  # fmt: skip
            except (LeaseLost, _AlreadyDone):
                raise
            except Exception as exc:
                if not is_retryable(exc) or attempt == self.retries:
                    return exc, {}
                log.info(
                    "step %s of request %s: %s, retrying",
                    recorded[i].seq,
                    claim.request_id,
                    type(exc).__name__,
                )
                self._sleep(attempt)
        raise AssertionError("unreachable")

    def _advance(
        self,
        claim: Claim,
        recorded: list[Step],
        i: int,
        result: dict[str, Any],
        effect: Callable[[Connection], dict[str, Any] | None] | None,
        *,
        start: int | None = None,
        run: tuple[int, StepFn] | None = None,
        complete: bool,
    ) -> dict[int, Step]:
        """One transaction: step `i` marked done with `result` (and its `effect`); then step
        `start` started, or step `run` (InStore) carried out and marked done; with
        `complete`, the job released as done (no step is left)."""

        def advance(conn: Connection) -> dict[int, Step]:
            now = self.clock()
            if complete:
                self._fence(conn, claim, now, release=True)
            full = result
            if effect is not None:
                # Made first: found already done, the step's record rolls the effect back.
                full = {**result, **(effect(conn) or {})}
            nxt = recorded[start] if start is not None else None
            done = self._mark_done(
                conn, claim, recorded[i].seq, now, full, start=nxt, fence=not complete
            )
            if run is not None:
                k, fn = run
                assert isinstance(fn, InStore)
                known = [done.get(st.seq, st) for st in recorded]  # done is by seq
                try:
                    outcome = fn(conn, known)
                except Exception as exc:
                    raise _NextFailed(exc) from exc
                done.update(
                    self._mark_done(
                        conn, claim, recorded[k].seq, now, outcome, count=True, fence=False
                    )
                )
            return {n: done[st.seq] for n, st in enumerate(recorded) if st.seq in done}

        return self._write(advance)

    def _in_store(
        self, claim: Claim, recorded: list[Step], i: int, fn: InStore, *, complete: bool
    ) -> Step:
        """Carry out InStore step `i` and mark it done in one transaction; with `complete`,
        the job is released as done there too."""

        def run(conn: Connection) -> Step:
            now = self.clock()
            self._fence(conn, claim, now, release=complete)
            result = fn(conn, recorded)
            done = self._mark_done(
                conn, claim, recorded[i].seq, now, result, count=True, fence=False
            )
            return done[recorded[i].seq]

        return self._write(run)

    def _mark_done(
        self,
        conn: Connection,
        claim: Claim,
        seq: int,
        now: datetime,
        result: dict[str, Any],
        *,
        count: bool = False,
        start: Step | None = None,
        fence: bool = True,
    ) -> dict[int, Step]:
        """Mark step `seq` done with `result` and start step `start` (its attempts count up), in
        one statement; the steps so changed, by seq. `count`: an InStore step, started and
        finished at once. `fence`: the statement also checks (and on PostgreSQL locks) that
        the job is still ours, as `_fence` does, when the transaction has not fenced yet.

        A step found finished raises _AlreadyDone (which rolls the transaction back); a
        lease found lost, LeaseLost.
        """
        if fence:
            self._check_worker(claim)
        query = _mark_done_statement(count=count, start=start is not None, fence=fence)
        params = {
            "p_request_id": claim.request_id,
            "p_seq": seq,
            "p_next": start.seq if start is not None else None,
            "p_now": now,
            "p_result": result,
            "p_worker": self.worker,
        }
        rows = conn.execute(query, params).all()
        changed = {row.seq: _step(row) for row in rows}
        if seq in changed:
            return changed
        if fence:
            self._fence(conn, claim, now)  # LeaseLost when that is why nothing changed
        raise _AlreadyDone(f"step {seq} of request {claim.request_id}")

    def _check_worker(self, claim: Claim) -> None:
        if claim.worker != self.worker:
            raise LeaseLost(
                f"the claim on request {claim.request_id} belongs to worker {claim.worker}, "
                f"not {self.worker}"
            )

    def _after_error(
        self,
        claim: Claim,
        step: Step,
        error: BaseException,
        ran: list[str],
        skipped: list[str],
    ) -> RunResult:
        reason = type(error).__name__
        log.warning(
            "step %s of request %s stopped the job (%s)", step.seq, claim.request_id, reason
        )
        if not is_retryable(error):
            self._retrying(lambda: self.fail_step(claim, step.seq, reason))
        state = self._end_failed(claim, reason)
        return RunResult(state, tuple(ran), tuple(skipped), reason)

    def _end_failed(self, claim: Claim, reason: str) -> str:
        """Requeue a job whose attempt failed, or give it up after max_attempts."""
        try:
            if claim.attempts >= self.max_attempts:
                self._retrying(lambda: self.give_up(claim, reason))
                return FAILED
            delay = self.retry_delay(claim.attempts)
            self._retrying(lambda: self.retry(claim, reason, delay))
            return QUEUED
        except LeaseLost:
            # Another worker has it already: nothing left for us to record.
            return QUEUED

    def _finish(
        self,
        claim: Claim,
        seq: int,
        produce: Callable[[Connection], dict[str, Any]] | dict[str, Any],
    ) -> Step:
        """Mark step `seq` done with the result `produce` (or `produce(conn)`, run in the
        same transaction, only if the step is not done yet)."""

        def finish(conn: Connection) -> Step:
            now = self.clock()
            self._fence(conn, claim, now)
            if callable(produce):
                step = self._step(conn, claim, seq)
                if step.finished:
                    return self._already(claim, step)
                result = produce(conn)
            else:
                result = produce
            if not isinstance(result, dict):
                raise TypeError(f"a step's result must be a dict, got {type(result).__name__}")
            try:
                return self._mark_done(conn, claim, seq, now, result, fence=False)[seq]
            except _AlreadyDone:  # a retried completion whose first commit went through
                return self._already(claim, self._step(conn, claim, seq))

        return self._write(finish)

    def _start(self, conn: Connection, claim: Claim, seq: int, now: datetime) -> Step | None:
        """Count an attempt at step `seq` unless it is finished (then None)."""
        s = request_steps.c
        row = conn.execute(
            sa.update(request_steps)
            .where(
                s.request_id == claim.request_id,
                s.seq == seq,
                s.state.not_in(_FINISHED),
            )
            .values(attempts=s.attempts + 1, started_at=now, finished_at=None)
            .returning(*request_steps.c)
        ).first()
        return None if row is None else _step(row)

    def _already(self, claim: Claim, step: Step) -> Step:
        """A step found finished when completing it: done is fine (a retried completion
        whose first commit went through), skipped is not."""
        if step.state == SKIPPED:
            raise JobError(f"step {step.seq} of request {claim.request_id} was skipped")
        return step

    def _fence(
        self,
        conn: Connection,
        claim: Claim,
        now: datetime,
        *,
        lease_until: datetime | None = None,
        release: bool = False,
    ) -> None:
        """Check, and on PostgreSQL lock, that the job is still ours: LeaseLost otherwise.

        With `release`, the same statement marks the job done and lets the lease go: the
        transaction that carries out its last step completes it (if it fails, the
        rollback undoes the release too).
        """
        self._check_worker(claim)
        params = {
            "p_request_id": claim.request_id,
            "p_worker": self.worker,
            "p_now": now,
            "p_lease_until": lease_until,
        }
        updated = conn.execute(
            _fence_statement(renew=lease_until is not None, release=release), params
        )
        if updated.rowcount != 1:
            raise LeaseLost(
                f"worker {self.worker} no longer holds the job of request {claim.request_id}: "
                "its lease expired or another worker took it over"
            )

    def _release(
        self,
        conn: Connection,
        claim: Claim,
        *,
        state: str,
        now: datetime,
        last_error: str | None,
        delay: timedelta = timedelta(0),
    ) -> None:
        j = request_jobs.c
        conn.execute(
            sa.update(request_jobs)
            .where(j.request_id == claim.request_id)
            .values(
                state=state,
                lease_owner=None,
                lease_until=None,
                available_at=now + delay,
                last_error=last_error,
                updated_at=now,
            )
        )

    def _step(self, conn: Connection, claim: Claim, seq: int) -> Step:
        s = request_steps.c
        row = conn.execute(
            sa.select(request_steps).where(s.request_id == claim.request_id, s.seq == seq)
        ).first()
        if row is None:
            raise JobError(
                f"request {claim.request_id} has no step {seq}; record the steps with "
                "Jobs.steps first"
            )
        return _step(row)

    def _write(self, work: Callable[[Connection], T]) -> T:
        """One transaction through Store.write; on SQLite it takes the write lock first."""
        if not self._sqlite:
            return self.store.write(work)

        def immediate(conn: Connection) -> T:
            # pysqlite begins transactions lazily (a plain BEGIN before the first write);
            # beginning ourselves makes the reads that decide a write part of it.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return work(conn)

        return self.store.write(immediate)

    def _retrying(self, action: Callable[[], T]) -> T:
        """`action`, retried with back-off on a transient database error."""
        for attempt in range(self.retries + 1):
            try:
                return action()
            except Exception as exc:
                if not is_retryable(exc) or attempt == self.retries:
                    raise
                self._sleep(attempt)
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int) -> None:
        delay = min(self.backoff * 2**attempt, 5.0)
        time.sleep(random.uniform(delay / 2, delay))


class _Heartbeat:
    """Renews a claim's lease in a background thread while a run lasts."""

    def __init__(self, jobs: Jobs, claim: Claim, every: float) -> None:
        self._jobs = jobs
        self.claim = claim
        self._every = every
        self._stop = threading.Event()
        self._lost: LeaseLost | None = None
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{claim.request_id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> None:
        if self._lost is not None:
            raise self._lost

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.claim = self._jobs.renew(self.claim)
            except LeaseLost as exc:
                self._lost = exc
                return
            except Exception as exc:  # the next beat tries again; fencing guards the rest
                log.warning(
                    "renewing the lease on request %s failed (%s)",
                    self.claim.request_id,
                    type(exc).__name__,
                )


def _holds() -> Any:
    """True while worker :p_worker holds the lease on :p_request_id's job at :p_now; on
    PostgreSQL the job's row is locked (FOR UPDATE), so a takeover waits for the
    transaction, as with `Jobs._fence`."""
    j = request_jobs.c
    return sa.exists(
        sa.select(j.request_id)
        .where(
            j.request_id == sa.bindparam("p_request_id"),
            j.state == RUNNING,
            j.lease_owner == sa.bindparam("p_worker"),
            j.lease_until > sa.bindparam("p_now"),
        )
        .with_for_update()
    )


@functools.cache
def _claim_statement(of_controller: bool) -> Any:
    """The claim (see `Jobs.claim`), built once: the pick and the claim in one statement (one
    round trip per job). Params p_now, p_lease_until, p_worker and p_controller."""
    j = request_jobs.c
    now = sa.bindparam("p_now", type_=j.available_at.type)
    pick = (
        sa.select(j.request_id)
        .where(
            sa.or_(
                sa.and_(j.state == QUEUED, j.available_at <= now),
                sa.and_(j.state == RUNNING, j.lease_until <= now),
            )
        )
        .order_by(j.available_at, j.request_id)
        .limit(1)
        # PostgreSQL: other workers skip the row we lock; SQLite drops the clause and
        # relies on BEGIN IMMEDIATE (see Jobs._write).
        .with_for_update(skip_locked=True)
    )
    if of_controller:
        pick = pick.where(j.controller_id == sa.bindparam("p_controller"))
    return (
        sa.update(request_jobs)
        .where(j.request_id == pick.scalar_subquery())
        .values(
            state=RUNNING,
            lease_owner=sa.bindparam("p_worker"),
            lease_until=sa.bindparam("p_lease_until", type_=j.lease_until.type),
            attempts=j.attempts + 1,
            updated_at=now,
        )
        .returning(j.request_id, j.controller_id, j.attempts)
    )


@functools.cache
def _fence_statement(*, renew: bool, release: bool) -> Any:
    """The fence (see `Jobs._fence`), built once per shape: params p_request_id, p_worker,
    p_now and p_lease_until."""
    j = request_jobs.c
    values: dict[str, Any] = {"updated_at": sa.bindparam("p_now")}
    if renew:
        values["lease_until"] = sa.bindparam("p_lease_until")
    if release:
        values.update(
            state=DONE,
            lease_owner=None,
            lease_until=None,
            available_at=sa.bindparam("p_now"),
            last_error=None,
        )
    return (
        sa.update(request_jobs)
        .where(
            j.request_id == sa.bindparam("p_request_id"),
            j.state == RUNNING,
            j.lease_owner == sa.bindparam("p_worker"),
            j.lease_until > sa.bindparam("p_now"),
        )
        .values(values)
    )


@functools.cache
def _mark_done_statement(*, count: bool, start: bool, fence: bool) -> Any:
    """The UPDATE of `Jobs._mark_done`, built once per shape: params p_request_id, p_seq,
    p_next, p_now, p_result and p_worker."""
    s = request_steps.c
    now = sa.bindparam("p_now", type_=s.finished_at.type)
    this = s.seq == sa.bindparam("p_seq")
    done: dict[str, Any] = {
        "state": STEP_DONE,
        "finished_at": now,
        "result": sa.bindparam("p_result", type_=s.result.type),
    }
    if count:
        done.update(attempts=s.attempts + 1, started_at=now)
    if not start:
        values = done
        which = this
    else:
        # Both rows in one UPDATE: `seq` takes the values of a finished step, `next`
        # those of a step starting (as `Jobs._start` sets them).
        starting = {
            "attempts": s.attempts + 1,
            "started_at": now,
            "finished_at": sa.null(),
            "state": s.state,
            "result": s.result,
        }
        finishing = {"attempts": s.attempts, "started_at": s.started_at, **done}
        values = {
            name: sa.case((this, _bound(finishing[name], name)), else_=starting[name])
            for name in starting
        }
        which = s.seq.in_([sa.bindparam("p_seq"), sa.bindparam("p_next")])
    query = sa.update(request_steps).where(
        s.request_id == sa.bindparam("p_request_id"), which, s.state.not_in(_FINISHED)
    )
    if fence:
        query = query.where(_holds())
    return query.values(values).returning(*request_steps.c)


def _bound(value: Any, column: str) -> Any:
    """`value` as an SQL expression of `request_steps.<column>`'s type (a column stays)."""
    if isinstance(value, sa.ColumnElement):
        return value
    return sa.literal(value, request_steps.c[column].type) if value is not None else sa.null()


# PostgreSQL: the steps as arrays, one row each by unnest; a statement of one shape,
# whatever the number of steps. Plain SQL: SQLAlchemy compiles a multi-row VALUES anew
# on every call (milliseconds), and this runs for every job.
_PG_INSERT_STEPS = """
INSERT INTO request_steps (request_id, seq, name, state, attempts, started_at)
SELECT %(request_id)s, s.seq, s.name, %(state)s, s.attempts, s.started_at
FROM unnest(%(seqs)s::integer[], %(names)s::text[], %(attempts)s::integer[],
            %(started)s::timestamptz[]) AS s(seq, name, attempts, started_at)
ON CONFLICT DO NOTHING
RETURNING request_id, seq, name, state, attempts, started_at, finished_at, result
"""


def _insert_steps(conn: Connection, rows: list[dict[str, Any]]) -> list[Step]:
    """Insert a job's steps in one statement, leaving steps already recorded alone; the
    rows it inserted."""
    if conn.dialect.name == "postgresql":
        params = {
            "request_id": rows[0]["request_id"],
            "state": PENDING,
            "seqs": [row["seq"] for row in rows],
            "names": [row["name"] for row in rows],
            "attempts": [row["attempts"] for row in rows],
            "started": [row["started_at"] for row in rows],
        }
        # Plain SQL gives times in the server's time zone: in UTC, as the column type does.
        return [
            dataclasses.replace(
                step, started_at=step.started_at and step.started_at.astimezone(UTC)
            )
            for step in map(_step, conn.exec_driver_sql(_PG_INSERT_STEPS, params))
        ]
    statement = sqlite.insert(request_steps).values(rows).on_conflict_do_nothing()
    return [_step(row) for row in conn.execute(statement.returning(*request_steps.c))]


def _steps(conn: Connection, request_id: int) -> list[Step]:
    s = request_steps.c
    rows = conn.execute(sa.select(request_steps).where(s.request_id == request_id).order_by(s.seq))
    return [_step(row) for row in rows]


def _step(row: Row[Any]) -> Step:
    return Step(
        request_id=row.request_id,
        seq=row.seq,
        name=row.name,
        state=row.state,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        result=row.result,
    )


def _check_error(error: str) -> str:
    """An error recorded with a job: a class name or short reason, one line, no address."""
    if not isinstance(error, str) or not error.strip():
        raise ValueError("error must be a non-empty class name or short reason")
    if len(error) > _ERROR_MAX or "\n" in error or "@" in error:
        raise ValueError(
            f"error must be one line of at most {_ERROR_MAX} characters without '@': pass an "
            "exception's class name or a short reason, never its message (it may hold "
            "personal data)"
        )
    return error
