"""Tests that need PostgreSQL skip on a laptop without it, and fail under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_PG_TEST = "tests/store/test_store.py::test_upgrade_empty_database_to_head"


def _pytest_with_unreachable_postgres(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["LAWFUL_TEST_PG"] = "postgresql://postgres@127.0.0.1:1/test"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_PG_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_postgres_fails_under_ci() -> None:
    result = _pytest_with_unreachable_postgres("true")
    assert result.returncode != 0
    assert "PostgreSQL is required under CI=true but 127.0.0.1:1 is unreachable" in result.stdout


def test_missing_postgres_skips_with_a_reason_elsewhere() -> None:
    result = _pytest_with_unreachable_postgres(None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
