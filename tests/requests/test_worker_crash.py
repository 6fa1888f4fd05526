"""A worker process killed in the middle of an erasure request (SIGKILL, mid-transaction)
leaves the shop untouched; another worker takes the request over when the lease runs out
and completes it exactly once: the rows erased once, one completion, one receipt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.audit import AuditLog
from lawful.engine import Engine
from lawful.requests.messages import MemorySender
from lawful.requests.verify import sign_assertion
from lawful.subjects import Identity, Keyring
from tests.requests.test_requests import ROOT, SHOP_DATASET, shop_policy_text

HEAVY = 60_000
EMAIL = "customer-1@example.com"
LEASE = 2.0  # seconds: short, so the second worker need not wait long


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lawful.db'}", f"sqlite:///{tmp_path / 'shop.db'}"
    url = request.getfixturevalue("pg_url")
    return url, url


def _writing(shop_url: str) -> Callable[[], bool]:
    """Is the worker's erasure inside its write transaction on the shop?"""
    if shop_url.startswith("sqlite"):
        return Path(shop_url.removeprefix("sqlite:///") + "-journal").exists
    engine = sa.create_engine(shop_url, poolclass=sa.NullPool)
    sql = sa.text(
        "SELECT COUNT(*) FROM pg_stat_activity "
        "WHERE query LIKE 'DELETE FROM login_events%' AND pid <> pg_backend_pid()"
    )

    def probe() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(sql).scalar())

    return probe


def _logins(shop_url: str) -> int:
    engine = sa.create_engine(shop_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT COUNT(*) FROM login_events WHERE customer_id = 1")
        ).scalar()
    engine.dispose()
    return int(count)


def test_a_killed_worker_is_taken_over_and_the_erasure_happens_once(
    urls: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_url, shop_url = urls
    generate(shop_url, 30, seed=1, heavy_rows=HEAVY)
    monkeypatch.setenv("SHOP_DATABASE_URL", shop_url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(shop_policy_text())
    keys = Keyring.generate().save(tmp_path / "lawful.keys")
    before = _logins(shop_url)
    assert before > HEAVY

    with Engine.open(policy, store_url, keyring=keys, datasets=[SHOP_DATASET]) as engine:
        token = sign_assertion(
            engine.keyring,
            controller=engine.policy.key,
            identity=Identity.parse(f"email:{EMAIL}"),
            now=datetime.now(UTC),
        )
        ref = engine.requests.submit("erasure", f"email:{EMAIL}", assertion=token).ref

    # On a server, hold the customer's last login: the worker's delete stops there,
    # mid-transaction, however fast it is.
    blocker = None
    if not shop_url.startswith("sqlite"):
        blocker = sa.create_engine(shop_url, poolclass=sa.NullPool).connect()
        blocker.execute(
            sa.text(
                "SELECT id FROM login_events WHERE id = "
                "(SELECT MAX(id) FROM login_events WHERE customer_id = 1) FOR UPDATE"
            )
        )
    command = [
        sys.executable, "-m", "lawful.cli", "request", "run", "--lease", str(LEASE),
        "--policy", str(policy), "--store", store_url, "--keyring", str(keys),
        "--dataset", str(SHOP_DATASET),
    ]  # fmt: skip
    env = {**os.environ, "SHOP_DATABASE_URL": shop_url, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    probe = _writing(shop_url)
    deadline = time.monotonic() + 60
    while worker.poll() is None and time.monotonic() < deadline:
        if probe():
            worker.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    worker.wait(timeout=60)
    if blocker is not None:
        blocker.rollback()
        blocker.close()
    assert worker.returncode == -signal.SIGKILL, worker.stderr.read() if worker.stderr else ""

    deadline = time.monotonic() + 30
    while _logins(shop_url) != before and time.monotonic() < deadline:
        time.sleep(0.1)  # the server may still be rolling the killed transaction back
    assert _logins(shop_url) == before  # nothing half-done

    sender = MemorySender()
    with Engine.open(
        policy, store_url, keyring=keys, datasets=[SHOP_DATASET], sender=sender
    ) as engine:
        requests = engine.requests
        assert requests.show(ref).state == "in_progress"
        assert requests.run_pending() == 0  # the dead worker's lease still holds it
        time.sleep(LEASE + 0.5)
        assert requests.run_pending() == 1  # taken over
        assert requests.run_pending() == 0  # and done: nothing left to claim
        view = requests.show(ref)
        assert view.state == "partially_completed" or view.state == "completed"
        erase = next(s for s in view.steps if s["name"] == "dataset:shop:erase")
        logins = next(t for t in erase["result"]["tables"] if t["table"] == "login_events")
        assert logins["deleted"] == before  # all of them, by the second worker
        events = [
            e.kind for e in AuditLog(engine.store, engine.policy.key).events()
            if (e.data or {}).get("ref") == ref
        ]  # fmt: skip
        assert events.count("request.receipt") == 1
        assert events.count(f"request.{view.state}") == 1
        assert requests.check_receipt(ref)
        completion = [m for m in sender.sent if m.template in ("completed", "partially_completed")]
        assert len(completion) == 1
    assert _logins(shop_url) == 0
