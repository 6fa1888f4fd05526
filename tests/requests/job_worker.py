"""A worker process for the job tests: `python -m tests.requests.job_worker MODE ...`.

drain: claim jobs until none is left, carry each out (one step) and print the request
ids it took, as JSON. slow: claim the one queued job and run STEPS on it, the second of
which writes one row per tick into the effects database, slowly enough to be killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lawful.requests.jobs import InStore, Jobs, StepFn
from lawful.store.store import open_store

effects_metadata = sa.MetaData()
# What the steps did in the "company" database: no key, so a step that was not
# idempotent would show as a duplicate row.
effects = sa.Table(
    "effects",
    effects_metadata,
    sa.Column("step", sa.String(20), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
)
# Every start of a step function, so the test can tell which steps ran twice.
runs = sa.Table(
    "runs",
    effects_metadata,
    sa.Column("step", sa.String(20), nullable=False),
)

SLOW_ROWS = 8
TICK = 0.5  # seconds between the slow step's rows
# In lawful's own store: a counter only an InStore step touches, not idempotent on purpose.
LOCAL_TABLE = "job_test_local"


def _put(conn: Connection, step: str, n: int) -> None:
    """Insert (step, n) unless it is there: an idempotent effect."""
    there = conn.scalar(sa.select(sa.func.count()).where(effects.c.step == step, effects.c.n == n))
    if not there:
        conn.execute(sa.insert(effects).values(step=step, n=n))


def steps(engine: Engine, *, tick: float = TICK) -> list[tuple[str, StepFn]]:
    """first (one row), slow (SLOW_ROWS rows, one per tick), local (in lawful's store)."""

    def first(_: Connection | None) -> dict[str, Any]:
        with engine.begin() as conn:
            conn.execute(sa.insert(runs).values(step="first"))
            _put(conn, "first", 1)
        return {"rows": 1}

    def slow(_: Connection | None) -> dict[str, Any]:
        with engine.begin() as conn:
            conn.execute(sa.insert(runs).values(step="slow"))
        for n in range(1, SLOW_ROWS + 1):
            with engine.begin() as conn:
                _put(conn, "slow", n)
            time.sleep(tick)
        return {"rows": SLOW_ROWS}

    def local(conn: Connection) -> dict[str, Any]:
        conn.execute(sa.text(f"UPDATE {LOCAL_TABLE} SET n = n + 1"))
        return {"counted": 1}

    return [("first", first), ("slow", slow), ("local", InStore(local))]


def _drain(jobs: Jobs) -> list[int]:
    taken: list[int] = []
    while (claim := jobs.claim()) is not None:
        step = jobs.steps(claim, ["only"])[0]
        jobs.start_step(claim, step.seq)
        time.sleep(0.02)  # the step's work, outside any transaction: others claim meanwhile
        jobs.finish_step(claim, step.seq, {"worker": jobs.worker})
        jobs.complete(claim)
        taken.append(claim.request_id)
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.requests.job_worker")
    parser.add_argument("mode", choices=["drain", "slow"])
    parser.add_argument("--store", required=True)
    parser.add_argument("--effects")
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--start-at", type=float, default=0.0, help="time.time() to start at")
    args = parser.parse_args(argv)
    store = open_store(args.store, upgrade=False)
    jobs = Jobs(store, lease=timedelta(seconds=args.lease))
    time.sleep(max(0.0, args.start_at - time.time()))
    if args.mode == "drain":
        print(json.dumps(_drain(jobs)))
        return 0
    engine = sa.create_engine(args.effects, poolclass=sa.NullPool)
    claim = jobs.claim()
    if claim is None:
        print("no job to claim", file=sys.stderr)
        return 1
    result = jobs.run(claim, steps(engine))
    print(json.dumps({"state": result.state, "ran": result.ran}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
