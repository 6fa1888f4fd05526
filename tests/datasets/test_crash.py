"""A process killed in the middle of an erasure leaves nothing half-done, and running the
erasure again completes it without error: one transaction per database, idempotent
actions. The subject owns 60,000 rows so the kill lands while statements are running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.subjects import Keyring
from tests.datasets.conftest import ROOT, SHOP_DATASET

HEAVY = 60_000


def _writing(url: str, shop_file: Path | None) -> Callable[[], bool]:
    """A probe: is the erasing process inside its write transaction?"""
    if url.startswith("sqlite"):
        journal = Path(f"{shop_file}-journal")
        return journal.exists
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    if url.startswith("postgresql"):
        sql = (
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'login_events' AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()"
        )
    else:  # the erasure's delete, running (waiting on the held row: see _hold_last_login)
        sql = (
            "SELECT COUNT(*) FROM information_schema.processlist "
            "WHERE info LIKE 'DELETE FROM login_events%%' AND id <> CONNECTION_ID()"
        )

    def probe() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(sql)).scalar())

    return probe


def _hold_last_login(engine: sa.Engine) -> sa.Connection:
    """A connection holding a row lock on customer 1's last login, in an open transaction."""
    conn = engine.connect()
    conn.execute(
        sa.text(
            "SELECT id FROM login_events WHERE id = "
            "(SELECT MAX(id) FROM login_events WHERE customer_id = 1) FOR UPDATE"
        )
    )
    return conn


def _erase_command(keys: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lawful.cli",
        "data",
        "erase",
        "--email",
        "customer-1@example.com",
        "--dataset",
        str(SHOP_DATASET),
        "--keyring",
        str(keys),
    ]


def test_killed_mid_erasure_then_rerun(
    app_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(app_url, 50, seed=1, heavy_rows=HEAVY)
    monkeypatch.setenv("SHOP_DATABASE_URL", app_url)
    keys = Keyring.generate().save(tmp_path / "lawful.keys")
    env = {**os.environ, "SHOP_DATABASE_URL": app_url, "PYTHONPATH": str(ROOT)}
    engine = sa.create_engine(app_url, poolclass=sa.NullPool)

    def logins() -> int:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT COUNT(*) FROM login_events WHERE customer_id = 1")
            ).scalar()

    before = logins()
    assert before > HEAVY
    shop_file = Path(app_url.removeprefix("sqlite:///")) if app_url.startswith("sqlite") else None
    probe = _writing(app_url, shop_file)

    # On a server, hold the subject's last login row: the erasure's delete stops there,
    # its earlier writes done, so the kill lands mid-transaction however fast it runs.
    blocker = None if shop_file else _hold_last_login(engine)
    process = subprocess.Popen(
        _erase_command(keys), env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if probe():  # writing has begun: kill it mid-transaction
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=60)
    if blocker is not None:
        blocker.rollback()
        blocker.close()
    assert process.returncode == -signal.SIGKILL, "the erasure finished before it could be killed"

    # Nothing of the killed transaction is visible: the logins are all there, the row unmasked.
    deadline = time.monotonic() + 30
    while logins() != before and time.monotonic() < deadline:  # a server may still be rolling back
        time.sleep(0.1)
    assert logins() == before
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT first_name FROM customers WHERE id = 1")).scalar()
            != "erased"
        )

    rerun = subprocess.run(
        _erase_command(keys), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "login_events:" in rerun.stdout and "deleted" in rerun.stdout
    assert logins() == 0
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT first_name FROM customers WHERE id = 1")).scalar()
            == "erased"
        )
    engine.dispose()
