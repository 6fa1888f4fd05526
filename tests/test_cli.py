"""The `lawful` command: init, check, policy load/versions, store; exit codes 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lawful import __version__
from lawful.cli import app
from lawful.policy import starter_policy
from lawful.store import open_store

STARTER = starter_policy()
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = run("--version")
    assert (code, out.strip()) == (0, f"lawful {__version__}")


def test_help_everywhere() -> None:
    for args in (
        [],
        ["--help"],
        ["check", "--help"],
        ["policy", "--help"],
        ["policy", "diff", "--help"],
    ):
        code, out, _ = run(*args)
        assert "Usage" in out, args
        assert code in (0, 2), args  # no args shows help and exits as bad usage (click)


def test_init_writes_a_starter_that_checks(tmp_path: Path) -> None:
    target = tmp_path / "policy.yaml"
    code, out, _ = run("init", str(target))
    assert code == 0 and target.read_text() == STARTER
    code, out, _ = run("check", str(target))
    assert code == 0, out
    assert "Example Ltd [example-ltd] — controller, IE; serves eu" in out
    assert "answer in eu: 1 month" in out
    # refuses to overwrite without --force
    code, _, err = run("init", str(target))
    assert code == 2 and "already exists; pass --force" in err


def test_check_uses_policy_option_then_environment(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(STARTER)
    code, out, _ = run("check", "--policy", str(tmp_path / "p.yaml"))
    assert code == 0 and "✓" in out
    code, out, _ = run("check", env={"LAWFUL_POLICY": str(tmp_path / "p.yaml")})
    assert code == 0 and str(tmp_path / "p.yaml") in out


def test_check_reports_every_error_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        STARTER.replace("basis: contract", "basis: consnet").replace("country: IE", "country: UK")
    )
    code, out, _ = run("check", str(bad))
    assert code == 1
    assert f"✗ {bad}: 2 errors" in out
    assert (
        f"{bad}:12:12 controller.country: 'UK' is not an ISO 3166-1 country code; did you mean 'GB'?"
        in out
    )
    assert "purposes.service.basis: 'consnet' is not a lawful basis; did you mean 'consent'?" in out


def test_check_json_for_machines(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(STARTER)
    bad.write_text(STARTER.replace("from: contract_end", "from: contract_ended"))
    code, out, _ = run("check", str(good), str(bad), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    first, second = report["policies"]
    assert first["ok"] and first["summary"]["controller"]["id"] == "example-ltd"
    assert first["summary"]["requests"]["deadlines"]["eu"]["access"] == "1 month"
    assert second["ok"] is False and second["summary"] is None
    [problem] = second["problems"]
    assert problem["path"] == "retention.customer_records.from"
    assert problem["line"] == 80 and problem["severity"] == "error"


def test_check_missing_file_is_bad_usage(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such file" in err


def test_unknown_option_is_bad_usage() -> None:
    code, _, _ = run("check", "--colour")
    assert code == 2


def test_strict_turns_warnings_into_failures(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    # a retention rule with criteria only is valid but warned about
    path.write_text(
        STARTER.replace("    keep: 3 years\n", "    criteria: until the last invoice is settled\n")
    )
    code, out, _ = run("check", str(path))
    assert code == 0 and "warning: no fixed period" in out
    code, _, _ = run("check", "--strict", str(path))
    assert code == 1


def test_policy_load_and_versions_against_the_store(tmp_path: Path, store_url: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(STARTER)
    code, out, _ = run("policy", "load", "--policy", str(path), "--store", store_url)
    assert (code, out.strip()) == (0, "example-ltd: recorded version 1")
    code, out, _ = run("policy", "load", "--policy", str(path), "--store", store_url)
    assert (code, out.strip()) == (0, "example-ltd: unchanged, still version 1")
    path.write_text(
        STARTER.replace("channels: [email]\n    lists", "channels: [email, sms]\n    lists")
    )
    code, out, _ = run("policy", "load", "--policy", str(path), "--store", store_url, "--json")
    loaded = json.loads(out)
    assert code == 0 and loaded["version"] == 2 and loaded["material"] is True
    assert loaded["diff"]["renew_consent"] == ["newsletter"]
    code, out, _ = run("policy", "versions", "--policy", str(path), "--store", store_url, "--json")
    assert [(v["number"], v["material"]) for v in json.loads(out)] == [(1, False), (2, True)]


def test_store_status_and_upgrade(tmp_path: Path, store_url: str) -> None:
    code, out, _ = run("store", "status", "--store", store_url, "--json")
    assert code == 1 and json.loads(out)["revision"] is None
    code, out, _ = run("store", "upgrade", "--store", store_url)
    with open_store(store_url, upgrade=False) as store:
        head = store.head_revision()
    assert code == 0 and f"at revision {head}" in out
    code, out, _ = run("store", "status", "--store", store_url)
    assert code == 0 and f"revision {head}, up to date" in out


def test_unreachable_store_is_a_clear_refusal(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(STARTER)
    code, _, err = run(
        "policy", "load", "--policy", str(path), "--store", "postgresql://u:secret@127.0.0.1:1/x"
    )
    assert code == 1
    assert "127.0.0.1:1" in err and "secret" not in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["--version"], ["check", "--help"]])
def test_installed_entry_point_runs(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lawful.cli", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_policy_versions_does_not_record_the_current_file(tmp_path: Path, store_url: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(STARTER)
    run("policy", "load", "--policy", str(path), "--store", store_url)
    path.write_text(
        STARTER.replace("channels: [email]\n    lists", "channels: [email, sms]\n    lists")
    )
    code, out, _ = run("policy", "versions", "--policy", str(path), "--store", store_url, "--json")
    assert code == 0 and [v["number"] for v in json.loads(out)] == [1]


def test_audit_verify_and_show(tmp_path: Path, store_url: str) -> None:
    import sqlalchemy as sa

    from lawful.store import open_store

    path = tmp_path / "p.yaml"
    path.write_text(STARTER)
    run("policy", "load", "--policy", str(path), "--store", store_url)
    path.write_text(
        STARTER.replace("channels: [email]\n    lists", "channels: [email, sms]\n    lists")
    )
    run("policy", "load", "--policy", str(path), "--store", store_url)
    args = ["--policy", str(path), "--store", store_url]
    code, out, _ = run("audit", "verify", *args)
    assert (code, out.strip()) == (0, "example-ltd: audit chain intact, 2 events verified")
    code, out, _ = run("audit", "show", *args, "--json", "--limit", "1")
    [event] = json.loads(out)
    assert (event["seq"], event["kind"]) == (2, "policy.version_recorded")
    assert event["data"]["version"] == 2 and event["data"]["renew_consent"] == ["newsletter"]
    with open_store(store_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET kind = 'x' WHERE seq = 1"))
    code, out, _ = run("audit", "verify", *args)
    assert code == 1
    assert out.strip() == (
        "example-ltd: audit chain BROKEN at event 1: event 1 was altered after it was written "
        "(0 events before it verified)"
    )
