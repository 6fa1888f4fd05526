"""`lawful consent give|withdraw|show|receipt`, `lawful decide` and `lawful audit show
--subject IDENTITY`, over SQLite and the real PostgreSQL; exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lawful.cli import app
from lawful.subjects import Identity, load_keyring

POLICY = Path(__file__).with_name("policy.yaml")
ALICE = "email:alice@example.com"
BOB = "email:bob@example.com"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "LAWFUL_KEYRING",
        "LAWFUL_HASH_KEY",
        "LAWFUL_ENCRYPTION_KEYS",
        "LAWFUL_POLICY",
        "LAWFUL_STORE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    path = tmp_path / "k.keys"
    code, out, err = run("keyring", "init", str(path))
    assert code == 0, err
    assert out.startswith(f"wrote {path}")
    return path


@pytest.fixture
def opts(store_url: str, keys: Path) -> list[str]:
    """--policy, --store and --keyring, for every command."""
    return ["--policy", str(POLICY), "--store", store_url, "--keyring", str(keys)]


def test_give_prints_the_record_id(opts: list[str]) -> None:
    code, out, err = run("consent", "give", ALICE, "newsletter", "--method", "checkbox", *opts)
    assert code == 0, err
    assert out.startswith("consent given to newsletter, valid until ")
    ref = out.strip().rsplit("(record ", 1)[1].rstrip(")")
    assert len(ref) == 32 and int(ref, 16) >= 0

    code, out, err = run(
        "consent", "give", ALICE, "newsletter", "--channel", "sms", "--json", *opts
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["state"] == "given"
    assert record["policy_version"] == 1
    assert record["expires_at"] is not None  # the policy: consent expires after 1 year
    assert record["scope"] == "sms" and record["method"] == "api"
    assert record["record"] != ref


def test_decide_allows_then_refuses_after_withdrawal(opts: list[str]) -> None:
    run("consent", "give", ALICE, "newsletter", "--method", "checkbox", *opts)
    code, out, err = run("decide", ALICE, "newsletter", *opts)
    assert code == 0, err
    assert out.startswith("allowed: ") and "[basis.consent]" in out
    assert "allowed: allowed" not in out

    code, out, err = run("consent", "withdraw", ALICE, "newsletter", *opts)
    assert code == 0, err
    assert out.startswith("consent withdrawn from newsletter (record ")

    code, out, _ = run("decide", ALICE, "newsletter", *opts)
    assert code == 1
    assert out.startswith("refused: ") and "[consent.withdrawn]" in out

    code, out, _ = run("decide", ALICE, "newsletter", "--json", *opts)
    assert code == 1
    decision = json.loads(out)
    assert decision["allowed"] is False
    assert decision["rule"] == "consent.withdrawn"
    assert "withdrew" in decision["reason"]


def test_decide_honours_global_privacy_control(opts: list[str]) -> None:
    code, out, _ = run("decide", ALICE, "ad_sharing", "--jurisdiction", "us-ca", "--gpc", *opts)
    assert code == 1
    assert "[signal.gpc]" in out
    code, out, _ = run(
        "decide", ALICE, "ad_sharing", "--jurisdiction", "us-ca", "--gpc", "--json", *opts
    )
    assert code == 1 and json.loads(out)["signal"] == "gpc"
    # A contract purpose needs no consent and is no sale: GPC does not stop it.
    code, out, err = run("decide", ALICE, "orders", "--gpc", *opts)
    assert code == 0, err
    assert out.startswith("allowed: ")


def test_show_lists_purposes_and_history(opts: list[str]) -> None:
    run("consent", "give", ALICE, "newsletter", "--method", "checkbox", *opts)
    run("consent", "withdraw", ALICE, "newsletter", *opts)
    run("consent", "give", ALICE, "site_analytics", "--method", "banner", *opts)

    code, out, err = run("consent", "show", ALICE, *opts)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "purposes:"
    marks = {
        line.split(":")[0].strip()[2:]: line.strip()[0]
        for line in lines
        if line.startswith("  ✓ ") or line.startswith("  ✗ ")
    }
    assert set(marks) == {
        "orders",
        "order_notices",
        "newsletter",
        "fraud",
        "archive",
        "ad_sharing",
        "site_analytics",
    }
    assert marks["orders"] == "✓" and marks["newsletter"] == "✗"
    assert "history:" in lines
    history = lines[lines.index("history:") + 1 :]
    assert len(history) == 3
    assert "consent newsletter: given via checkbox" in history[0]
    assert "consent newsletter: withdrawn via api" in history[1]
    assert "consent site_analytics: given via banner" in history[2]

    code, out, err = run("consent", "show", ALICE, "--json", *opts)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["known"] is True
    assert len(shown["decisions"]) == 7
    by_purpose = {d["purpose"]: d for d in shown["decisions"]}
    assert by_purpose["newsletter"]["rule"] == "consent.withdrawn"
    assert [(r["key"], r["state"]) for r in shown["history"]] == [
        ("newsletter", "given"),
        ("newsletter", "withdrawn"),
        ("site_analytics", "given"),
    ]


def test_show_an_unknown_subject_records_nothing(opts: list[str]) -> None:
    code, out, err = run("consent", "show", BOB, *opts)
    assert code == 0, err
    assert out.startswith("no choices recorded for this subject\n")
    assert "history:" not in out
    code, out, _ = run("consent", "show", BOB, "--json", *opts)
    shown = json.loads(out)
    assert shown["known"] is False and shown["history"] == []
    # Looking never creates the subject: the audit log has no event for it.
    code, out, _ = run("audit", "show", *opts[:4], "--json")
    assert code == 0 and not [e for e in json.loads(out) if e["kind"] == "subject.created"]


def test_receipt_is_an_iso_27560_record(opts: list[str]) -> None:
    code, out, _ = run("consent", "give", ALICE, "newsletter", "--json", *opts)
    ref = json.loads(out)["record"]
    code, out, err = run("consent", "receipt", ref, *opts)
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["schema"] == "ISO/IEC TS 27560:2023"
    assert receipt["recordId"] == ref
    assert receipt["state"] == "dpv:ConsentGiven"
    assert "alice@example.com" not in out

    code, out, err = run("consent", "receipt", "0" * 32, *opts)
    assert code == 2 and out == ""
    assert err.startswith("error: no consent record")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["consent", "give", ALICE, "newsleter"],
            "error: 'newsleter' is not a purpose of the policy; did you mean 'newsletter'?",
        ),
        (
            ["decide", ALICE, "newsleter"],
            "error: 'newsleter' is not a purpose of the policy; did you mean 'newsletter'?",
        ),
        (
            ["consent", "give", "alice", "newsletter"],
            "error: cannot tell which kind of identity this is: prefix it with its kind",
        ),
        (
            ["decide", "alice", "newsletter"],
            "error: cannot tell which kind of identity this is: prefix it with its kind",
        ),
        (
            ["consent", "give", ALICE, "orders"],
            "error: purpose 'orders' is based on contract, not consent, so there is no consent "
            "to give or withdraw",
        ),
        (
            ["consent", "withdraw", ALICE, "orders"],
            "error: purpose 'orders' is based on contract, not consent",
        ),
        (
            ["consent", "give", ALICE, "newsletter", "--channel", "fax"],
            "error: 'fax' is not a channel of purpose 'newsletter'; use one of: email, sms",
        ),
        (
            ["decide", ALICE, "newsletter", "--channel", "fax"],
            "error: 'fax' is not a marketing channel of the policy; use one of: email, sms",
        ),
        (
            ["decide", ALICE, "newsletter", "--list", "newz"],
            "error: 'newz' is not a marketing list of the policy; did you mean 'news'?",
        ),
        (
            ["decide", ALICE, "newsletter", "--jurisdiction", "eu-de"],
            "error: 'eu-de' is not a jurisdiction",
        ),
        (
            ["consent", "give", ALICE, "newsletter", "--method", "pigeon"],
            "error: 'pigeon' is not a way of collecting a choice",
        ),
        (
            ["consent", "give", ALICE, "newsletter", "--notice", "no-such-notice.txt"],
            "error: --notice no-such-notice.txt: cannot read it",
        ),
    ],
)
def test_bad_input_is_bad_usage(opts: list[str], args: list[str], message: str) -> None:
    code, out, err = run(*args, *opts)
    assert code == 2, (out, err)
    assert err.startswith(message), err
    assert "Traceback" not in err and out == ""


def test_missing_keyring_says_how_to_create_one(store_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "none.keys"
    args = ["--policy", str(POLICY), "--store", store_url, "--keyring", str(missing)]
    for command in (
        ["consent", "give", ALICE, "newsletter"],
        ["decide", ALICE, "newsletter"],
        ["audit", "show", "--subject", ALICE],
    ):
        code, _, err = run(*command, *args)
        assert code == 2, (command, err)
        assert err.startswith(f"error: no keyring at {missing}"), err
        assert f"`lawful keyring init {missing}`" in err


def test_the_wrong_keyring_is_refused(opts: list[str], tmp_path: Path) -> None:
    run("consent", "give", ALICE, "newsletter", *opts)
    other = tmp_path / "other.keys"
    run("keyring", "init", str(other))
    wrong = [*opts[:4], "--keyring", str(other)]
    for command in (["decide", ALICE, "newsletter"], ["audit", "show", "--subject", ALICE]):
        code, _, err = run(*command, *wrong)
        assert code == 1, (command, err)
        assert err.startswith("error: this keyring is not the one the store's identities")


def test_audit_show_takes_an_identity(opts: list[str], keys: Path) -> None:
    run("consent", "give", ALICE, "newsletter", "--method", "checkbox", *opts)
    run("consent", "give", BOB, "newsletter", *opts)
    run("consent", "withdraw", ALICE, "newsletter", *opts)
    run("consent", "give", "alice@example.com", "site_analytics", "--method", "banner", *opts)
    run("decide", ALICE, "newsletter", *opts)
    audit = ["audit", "show", *opts]

    code, out, err = run(*audit, "--subject", ALICE, "--json")
    assert code == 0, err
    events = json.loads(out)
    pseudonym = load_keyring(keys).subject_hash(_ref(opts, ALICE))
    assert {e["subject"] for e in events} == {pseudonym}
    assert [e["kind"] for e in events if e["kind"] != "decision.refused"] == [
        "subject.created",
        "consent.given",
        "consent.withdrawn",
        "consent.given",
    ]
    assert "alice@example.com" not in out and "bob@example.com" not in out
    # a bare address is the same identity; the pseudonym itself works without a keyring
    assert json.loads(run(*audit, "--subject", "Alice@Example.com", "--json")[1]) == events
    code, out, err = run("audit", "show", *opts[:4], "--subject", pseudonym, "--json")
    assert code == 0, err
    assert json.loads(out) == events
    code, out, _ = run(*audit, "--subject", ALICE, "--limit", "2", "--json")
    assert json.loads(out) == events[-2:]

    code, out, err = run(*audit, "--subject", ALICE)
    assert code == 0, err
    assert out.count(f"subject {pseudonym[:12]}…") == len(events)
    assert "alice@example.com" not in out

    # the whole log: no raw identity anywhere
    code, out, _ = run(*audit, "--json", "--limit", "1000")
    assert "alice@example.com" not in out and "bob@example.com" not in out
    assert len(json.loads(out)) > len(events)

    code, out, err = run("audit", "verify", *opts[:4])
    assert code == 0, err
    assert "audit chain intact" in out


def test_audit_show_an_unknown_identity_is_like_one_without_events(opts: list[str]) -> None:
    run("consent", "give", ALICE, "newsletter", *opts)
    audit = ["audit", "show", *opts]
    _, before, _ = run(*audit, "--json", "--limit", "1000")
    code, out, err = run(*audit, "--subject", BOB)
    assert (code, out, err) == (0, "no events for this subject\n", "")
    code, out, err = run(*audit, "--subject", BOB, "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, err = run(*audit, "--subject", "f" * 64)
    assert (code, out, err) == (0, "no events for this subject\n", "")
    # looking up an identity writes nothing
    assert run(*audit, "--json", "--limit", "1000")[1] == before
    code, _, err = run(*audit, "--subject", "bob")
    assert code == 2
    assert err.startswith("error: --subject: cannot tell which kind of identity this is")


def test_help_lists_the_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("consent", "decide", "keyring", "audit"):
        assert f" {command} " in out, command
    code, out, _ = run("consent", "--help")
    for command in ("give", "withdraw", "show", "receipt"):
        assert f" {command} " in out, command
    code, out, _ = run("audit", "show", "--help")
    assert "--keyring" in out and "identity" in out


def test_exit_codes_of_the_installed_command(opts: list[str]) -> None:
    """Through a real process: the codes a shell script sees, and no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAWFUL_")}

    def lawful(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "lawful.cli", *args, *opts]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    assert lawful("consent", "give", ALICE, "newsletter").returncode == 0
    assert lawful("decide", ALICE, "newsletter").returncode == 0
    assert lawful("consent", "withdraw", ALICE, "newsletter").returncode == 0
    refused = lawful("decide", ALICE, "newsletter")
    assert refused.returncode == 1 and "[consent.withdrawn]" in refused.stdout
    bad = lawful("decide", ALICE, "newsletter", "--jurisdiction", "mars")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: 'mars' is not a jurisdiction")
    assert "Traceback" not in bad.stderr


def _ref(opts: list[str], identity: str) -> str:
    code, out, err = run("consent", "show", identity, "--json", *opts)
    assert code == 0, err
    [ref] = {r["subject"] for r in json.loads(out)["history"]}
    assert ref != str(Identity.parse(identity))
    return ref


def test_each_decide_command_writes_its_decision_event(opts: list[str]) -> None:
    for _ in range(3):
        run("decide", ALICE, "newsletter", *opts)
    code, out, err = run("audit", "show", "--json", *opts)
    assert code == 0, err
    decisions = [e for e in json.loads(out) if e["kind"].startswith("decision.")]
    assert [e["kind"] for e in decisions] == ["decision.refused"] * 3
    assert decisions[0]["data"]["rule"] == "consent.missing"
    assert "alice" not in out
