"""`lawful request ...` end to end on SQLite: submit, read the code from the mail folder,
verify, run, show, list, extend, deny, receipt; and clear errors with exit codes 2/1."""

from __future__ import annotations

import email
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from examples.shop.generate import generate
from lawful.cli import app
from lawful.requests.verify import OnBehalf
from lawful.subjects import Identity, Keyring, load_keyring
from tests.requests.test_requests import SHOP_DATASET, shop_policy_text

runner = CliRunner()


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the policy, a keyring, the shop, a mail folder, the env set."""
    for name in ("LAWFUL_KEYRING", "LAWFUL_POLICY", "LAWFUL_STORE", "LAWFUL_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(shop_policy_text())
    Keyring.generate().save(tmp_path / "lawful.keys")
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    generate(shop, 20, seed=5)
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    (tmp_path / "mail").mkdir()
    monkeypatch.setenv("LAWFUL_MAIL_DIR", str(tmp_path / "mail"))
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "shop.yaml").write_text(SHOP_DATASET.read_text())
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def last_mail(place: Path, template: str) -> str:
    files = sorted((place / "mail").glob(f"*-{template}-*.eml"))
    assert files, f"no {template} message"
    message = email.message_from_bytes(files[-1].read_bytes())
    return message.get_payload(decode=True).decode()


def test_a_request_from_the_command_line(place: Path) -> None:
    code, out, err = run(
        "request",
        "submit",
        "erasure",
        "--email",
        "customer-1@example.com",
        "--jurisdiction",
        "eu",
        "--json",
    )
    assert code == 0, err
    intake = json.loads(out)
    ref = intake["ref"]
    assert intake["state"] == "awaiting_verification" and intake["code_sent_to"] == "email"
    sent = re.search(r"^\s+(\d{6})\s*$", last_mail(place, "code"), re.M)
    assert sent is not None

    code, out, err = run("request", "verify", ref, "999999" if sent[1] != "999999" else "111111")
    assert code == 2 and "not right" in err

    code, out, err = run("request", "verify", ref, sent[1])
    assert code == 0, err
    assert "in_progress" in out

    code, out, err = run("request", "list")
    assert code == 0 and ref in out
    code, out, err = run("request", "run")
    assert code == 0 and "ran 1 request" in out, err

    code, out, err = run("request", "show", ref, "--json")
    view = json.loads(out)
    assert view["state"] in ("completed", "partially_completed")
    assert [s["name"] for s in view["steps"]][-1] == "close"

    code, out, err = run("request", "receipt", ref)
    assert code == 0, err
    assert json.loads(out)["request"] == ref
    assert "chained in the audit log" in err
    assert "customer-1@example.com" not in out


def test_privacy_team_commands(place: Path) -> None:
    code, out, _ = run("request", "submit", "access", "--email", "customer-2@example.com", "--json")
    ref = json.loads(out)["ref"]
    code, out, err = run("request", "extend", ref, "--reason", "many years of orders")
    assert code == 0 and "(extended)" in out, err
    code, out, err = run("request", "list", "--due-within", "3d")
    assert code == 0 and out.strip() == "no requests"
    code, out, err = run("request", "list", "--due-within", "100d")
    assert ref in out
    code, out, err = run("request", "deny", ref, "--rule", "legal_claims")
    assert code == 0 and "denied" in out, err
    assert "legal_claims" in last_mail(place, "denied")


def test_clarification_from_the_command_line(place: Path) -> None:
    code, out, err = run(
        "request", "submit", "access", "--email", "customer-4@example.com",
        "--jurisdiction", "uk", "--json",
    )  # fmt: skip
    assert code == 0, err
    ref = json.loads(out)["ref"]
    code, out, err = run("request", "clarify", ref, "--question", "Which of your accounts?")
    assert code == 0 and "awaiting_clarification" in out, err
    told = last_mail(place, "awaiting_clarification")
    assert "Which of your accounts?" in told and "paused" in told  # UK: the clock stops
    code, out, err = run("request", "clarify", ref, "--question", " ")
    assert code == 2 and "the question is told to the person" in err
    code, out, err = run("request", "clarified", ref, "--json")
    assert code == 0 and json.loads(out)["state"] == "awaiting_verification", err
    code, out, err = run("request", "clarified", ref)
    assert code == 2 and "not awaiting clarification" in err


def test_a_fee_from_the_command_line(place: Path) -> None:
    refs = []
    for _ in range(3):  # the policy allows two access requests a year, then a cost fee
        code, out, err = run(
            "request", "submit", "access", "--email", "customer-3@example.com", "--json"
        )
        assert code == 0, err
        refs.append(json.loads(out)["ref"])
    sent = re.search(r"^\s+(\d{6})\s*$", last_mail(place, "code"), re.M)
    assert sent is not None
    code, out, err = run("request", "verify", refs[-1], sent[1])
    assert code == 0 and "awaiting_fee" in out, err
    assert "a fee covering the cost of answering" in last_mail(place, "fee")
    code, out, err = run("request", "fee-paid", refs[-1], "--by", "Ana")
    assert code == 2 and "no amount was asked" in err
    code, out, err = run("request", "charge", refs[-1], "--amount", "twenty")
    assert code == 2 and "currency code and a sum" in err
    code, out, err = run("request", "charge", refs[-1], "--amount", "EUR 25")
    assert code == 0 and "fee (repeat_limit): EUR 25" in out, err
    code, out, err = run("request", "fee-paid", refs[-1], "--by", "Ana", "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["state"] == "in_progress" and view["fee"]["paid_by"] == "Ana"
    code, out, err = run("request", "run")
    assert code == 0 and "ran 1 request" in out, err
    code, out, err = run("request", "receipt", refs[-1])
    assert code == 0 and json.loads(out)["fee"]["amount"] == "EUR 25", err


def test_an_authorised_agent_asks_from_the_command_line(place: Path) -> None:
    permission = place / "permission.pdf"
    permission.write_bytes(b"%PDF-1.7 I authorise the agent to ask for my data")
    code, out, err = run(
        "request",
        "submit",
        "access",
        "--email",
        "customer-4@example.com",
        "--on-behalf",
        "agent",
        "--actor",
        "email:agent@firm.example",
        "--proof",
        "signed   permission",
        "--document",
        str(permission),
        "--json",
    )
    assert code == 0, err
    intake = json.loads(out)
    assert intake["code_sent_to"] == "email"  # the customer confirms, not the agent
    sent_to = [email.message_from_bytes(f.read_bytes())["To"] for f in (place / "mail").iterdir()]
    assert sent_to and not [to for to in sent_to if "agent@firm" in to]
    sent = re.search(r"^\s+(\d{6})\s*$", last_mail(place, "code"), re.M)
    assert sent is not None
    code, out, err = run("request", "verify", intake["ref"], sent[1])
    assert code == 0, err
    code, out, err = run("request", "run")
    assert code == 0 and "ran 1 request" in out, err
    code, out, err = run("request", "receipt", intake["ref"])
    assert code == 0 and json.loads(out)["on_behalf"] == "agent", err

    engine = sa.create_engine(f"sqlite:///{place / 'lawful.db'}", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT * FROM requests WHERE ref = :ref"), {"ref": intake["ref"]}
            ).one()
    finally:
        engine.dispose()
    assert row.state == "completed"
    stored = json.loads(row.on_behalf)
    keyring = load_keyring(place / "lawful.keys")
    assert stored == {
        "role": "agent",
        "actor_kind": "email",
        "actor_hash": keyring.hash(Identity.parse("email:agent@firm.example")),
        "proof": "signed permission",
        "document_sha256": OnBehalf.document_hash(permission.read_bytes()),
    }
    # The agent's address is nowhere in the row, in clear.
    assert "agent@firm" not in " ".join(str(value) for value in row)


def test_a_policy_without_agents_refuses_one_on_the_command_line(place: Path) -> None:
    policy = place / "policy.yaml"
    text = policy.read_text()
    assert "\n  verification:" in text
    policy.write_text(
        text.replace("\n  verification:", "\n  authorised_agents: false\n  verification:", 1)
    )
    agent = ["--on-behalf", "agent", "--actor", "email:agent@firm.example", "--proof", "a note"]
    code, out, err = run("request", "submit", "access", "--email", "customer-5@example.com", *agent)
    assert code == 2, (out, err)
    assert "requests.authorised_agents is false" in err
    assert "agent@firm" not in err and "customer-5" not in err
    code, out, err = run("request", "list", "--closed")
    assert code == 0 and out.strip() == "no requests", err


AGENT = ["--actor", "email:agent@firm.example"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--on-behalf", "agent", *AGENT],
            "--on-behalf (agent or parent), --actor and --proof together: --proof missing",
        ),
        (["--proof", "a note"], "--on-behalf and --actor missing"),
        (
            ["--on-behalf", "friend", *AGENT, "--proof", "a note"],
            "unknown role 'friend' for someone acting for the subject: use 'agent' or 'parent'",
        ),
        (["--on-behalf", "agent", *AGENT, "--proof", "  "], "must say what proof was shown"),
        (
            ["--on-behalf", "agent", "--actor", "agent-at-firm", "--proof", "a note"],
            "--actor: cannot tell which kind of identity this is",
        ),
        (
            ["--on-behalf", "agent", "--actor", "email:agent@firm", "--proof", "a note"],
            "--actor: the email address's domain has no dot",
        ),
        (
            ["--on-behalf", "parent", *AGENT, "--proof", "a scan", "--document", "scan.pdf"],
            "--document scan.pdf: no such file",
        ),
        (["--document", "scan.pdf"], "give it with --on-behalf, --actor and --proof"),
    ],
)
def test_bad_on_behalf_options_exit_2_and_say_what_is_wrong(
    place: Path, args: list[str], message: str
) -> None:
    code, out, err = run("request", "submit", "access", "--email", "customer-6@example.com", *args)
    assert code == 2, (out, err)
    assert message in err
    assert "agent@firm" not in err  # the actor's identity is never echoed back
    code, out, err = run("request", "list", "--closed")
    assert out.strip() == "no requests", err  # nothing was taken


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "erase", "--email", "a@example.com"], "unknown request kind 'erase'"),
        (["submit", "access"], "exactly one of --email or --phone"),
        (["submit", "access", "--email", "not-an-email"], "email"),
        (["submit", "access", "--email", "a@example.com", "--jurisdiction", "mars"], "mars"),
        (
            ["submit", "rectification", "--email", "a@example.com", "--param", "changes"],
            "NAME=VALUE",
        ),
        (["list", "--due-within", "soon"], "--due-within"),
        (["list", "--state", "finished"], "--state 'finished'"),
        (["show", "f" * 32], "no request"),
        (["deny", "f" * 32, "--rule", "legal_claims"], "no request"),
    ],
)
def test_bad_input_exits_2_and_says_what_is_wrong(
    place: Path, args: list[str], message: str
) -> None:
    code, out, err = run("request", *args)
    assert code == 2, (out, err)
    assert message in err
