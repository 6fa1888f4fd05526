"""The examples in examples/ run and say what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_consent_walkthrough_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "consent_walkthrough.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[consent.missing]" in out and "[basis.consent]" in out
    assert "[signal.dnt]" in out
    assert "[age.parental_consent_missing]" in out
    assert "[consent.withdrawn]" in out
    assert "audit chain: intact" in out
    assert "li.wei@example.com" not in out  # nothing prints the identities


def test_datasets_walkthrough_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.datasets_walkthrough"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "annotation checked against the policy and the schema: 0 warnings" in out
    assert "login_events" in out and "deleted" in out
    assert "tax_records: " in out and "kept" in out
    assert "erased again: 0 rows changed" in out


def test_requests_walkthrough_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.requests_walkthrough"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "run: completed" in out and "run: partially_completed" in out
    assert "downloaded by the signed link" in out
    assert "kept tax_records" in out and "retention rule invoices" in out
    assert out.count("receipt signed and in the audit chain: True") == 2
    assert "rows with the customer's email left in the shop: 0" in out
    assert "audit chain: intact" in out
    assert "customer-2@example.com" not in out  # nothing prints the identity
