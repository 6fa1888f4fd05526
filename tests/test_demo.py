"""`lawful demo` runs the whole day on the sample shop, under the Seestar Store's policy by
default and under any other, and says what it did without naming anyone."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from lawful.cli import app
from lawful.demo import DEFAULT_POLICY, run_demo

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_under_seestar(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(DEFAULT_POLICY, customers=120, folder=tmp_path, say=lines.append)
    assert result.policy == "Seestar Store"
    assert result.decisions == {"before": False, "after": True, "withdrawn": False}
    assert result.requests == {"access": "completed", "erasure": "partially_completed"}
    assert result.package_rows > 0
    assert any(k.startswith("tax_records") for k in result.kept)
    assert result.audit_ok and result.audit_events > 10
    assert result.mismatches > 0  # the shop declares categories Seestar does not
    text = "\n".join(lines)
    assert "@example.com" not in text  # nobody is named
    # The erased customer is gone from the shop, by plain SQL.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.connect() as conn:
        left = conn.execute(
            sa.text("SELECT COUNT(*) FROM customers WHERE email = 'customer-3@example.com'")
        ).scalar()
    engine.dispose()
    assert left == 0


def test_the_demo_under_the_shops_policy_sweeps(tmp_path: Path) -> None:
    result = run_demo(
        ROOT / "examples" / "shop" / "policy.yaml",
        customers=120,
        folder=tmp_path,
        say=lambda _: None,
    )
    assert result.mismatches == 0
    assert result.swept["security"] > 0 and result.swept["invoices"] > 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.connect() as conn:
        old_logins = conn.execute(
            sa.text("SELECT COUNT(*) FROM login_events WHERE at < datetime('now', '-13 months')")
        ).scalar()
    engine.dispose()
    assert old_logins == 0


def test_the_command(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["demo", "--customers", "60", "--json"])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["audit_ok"] is True
    bad = runner.invoke(app, ["demo", "--customers", "2"])
    assert bad.exit_code == 2 and "at least 10" in bad.stderr
    missing = runner.invoke(app, ["demo", "--policy", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "no such policy file" in missing.stderr


def test_the_demo_then_serves_the_privacy_center(tmp_path: Path) -> None:
    """`lawful demo --serve`: the demo, then the privacy center, the admin console and the
    API on 127.0.0.1, with the addresses printed."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "lawful.cli", "demo", "--serve", "--customers", "30",
         "--folder", str(folder), "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        center = httpx.get(f"{base}/privacy/", timeout=5)
        assert center.status_code == 200 and "Seestar Store" in center.text
        admin = httpx.get(f"{base}/admin/", timeout=5, follow_redirects=False)
        assert admin.status_code in (302, 303, 307) and "/admin/login" in admin.headers["location"]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert f"{base}/privacy/" in out and "operator key:" in out
    assert (folder / "lawful.db").exists() and (folder / "mail").is_dir()
