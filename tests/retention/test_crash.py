"""A sweep killed in the middle (SIGKILL, a real process) and run again completes the work
without doing anything twice: every batch is its own transaction, deleted rows are not
found again, and anonymized rows are not counted again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.audit.tables import audit_events
from lawful.policy.durations import Duration
from lawful.retention import cutoff
from lawful.store import open_store
from lawful.subjects import Keyring
from tests.retention.conftest import ROOT, SHOP_DATASET, SHOP_POLICY, sql_time

HEAVY = 40_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def crash_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return request.getfixturevalue("pg_url")


def test_killed_mid_sweep_then_rerun(crash_url: str, tmp_path: Path) -> None:
    generate(crash_url, 60, seed=1, heavy_rows=HEAVY)
    keys = Keyring.generate().save(tmp_path / "lawful.keys")
    store_url = f"sqlite:///{tmp_path / 'lawful.db'}"
    env = {**os.environ, "SHOP_DATABASE_URL": crash_url, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "tests.retention.cli_app",
        "sweep",
        "--rule",
        "security",
        "--batch",
        "50",
        "--dataset",
        str(SHOP_DATASET),
        "--policy",
        str(SHOP_POLICY),
        "--store",
        store_url,
        "--keyring",
        str(keys),
    ]
    engine = sa.create_engine(crash_url, poolclass=sa.NullPool)
    # The run's own clock: the sweep uses now, so the test does too (minutes apart at most).
    from datetime import UTC, datetime

    cut = sql_time(crash_url, cutoff(Duration(months=12), datetime.now(UTC)))

    def count(sql: str) -> int:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), {"c": cut}).scalar()

    expired = count("SELECT COUNT(*) FROM login_events WHERE at < :c")
    kept = count("SELECT COUNT(*) FROM login_events WHERE at >= :c")
    assert expired > HEAVY / 2

    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        # Some batches committed, many to go: kill it now.
        if count("SELECT COUNT(*) FROM login_events WHERE at < :c") < expired - 500:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]

    left = count("SELECT COUNT(*) FROM login_events WHERE at < :c")
    assert 0 < left < expired  # interrupted half-way: some batches in, the rest not
    assert count("SELECT COUNT(*) FROM login_events WHERE at >= :c") == kept
    store = open_store(store_url)
    with store.engine.connect() as conn:  # the killed run wrote no event
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(audit_events.c.kind == "retention.swept")
            ).scalar()
            == 0
        )

    rerun = subprocess.run(
        [*command, "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr
    assert count("SELECT COUNT(*) FROM login_events WHERE at < :c") == 0
    assert count("SELECT COUNT(*) FROM login_events WHERE at >= :c") == kept
    with store.engine.connect() as conn:
        events = [
            r.data
            for r in conn.execute(
                sa.select(audit_events.c.data).where(audit_events.c.kind == "retention.swept")
            )
        ]
    # One event for the run that finished, counting what it did: the rows the kill left.
    assert len(events) == 1
    assert events[0]["rule"] == "security" and events[0]["rows"] == left
    store.close()
    engine.dispose()
