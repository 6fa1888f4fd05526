"""`lawful disclose`, `disclosures`, `recipients`, `transfer-check`, over SQLite and the
real PostgreSQL; exit codes 0 (allowed), 1 (refused), 2 (bad usage)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import lawful.cli  # noqa: F401 - loads the shared CLI helpers the commands use
from lawful.disclosure.cli import disclosure_app
from lawful.subjects import Keyring
from tests.disclosure.conftest import POLICY, SEEDS

ALICE = "email:alice@example.com"
runner = CliRunner()


@pytest.fixture
def opts(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for name in ("LAWFUL_KEYRING", "LAWFUL_HASH_KEY", "LAWFUL_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    keys = tmp_path / "lawful.keys"
    Keyring.generate().save(keys)
    return ["--policy", str(POLICY), "--store", store_url, "--keyring", str(keys)]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(disclosure_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_disclose_allowed_then_listed(opts: list[str], store_url: str) -> None:
    code, out, _ = run(
        "disclose", ALICE, "--to", "carrier", "--purpose", "orders",
        "--category", "user.name", "--category", "user.contact.address", *opts,
    )  # fmt: skip
    assert code == 0, out
    assert out.startswith("allowed: ") and "(disclosure " in out
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT recipient, country FROM disclosures")).all() == [
            ("carrier", "DE")
        ]
    engine.dispose()
    code, out, _ = run("disclosures", "--subject", ALICE, *opts)
    assert code == 0 and "carrier (DE) for orders: user.name, user.contact.address" in out
    code, out, _ = run("disclosures", "--subject", ALICE, "--json", *opts)
    assert [d["recipient"] for d in json.loads(out)] == ["carrier"]


def test_disclose_refused_exits_1_with_the_reason(opts: list[str]) -> None:
    code, out, _ = run(
        "disclose", ALICE, "--to", "carrier", "--purpose", "orders",
        "--category", "user.contact.email", *opts,
    )  # fmt: skip
    assert code == 1
    assert out.startswith("refused: recipient 'carrier' may not receive user.contact.email")
    assert out.rstrip().endswith("[category.not_allowed]")
    code, out, _ = run(
        "disclose", ALICE, "--to", "mailer", "--purpose", "newsletter",
        "--category", "user.contact.email", "--jurisdiction", "eu", "--json", *opts,
    )  # fmt: skip
    assert code == 1 and json.loads(out)["rule"] == "consent.missing"


def test_bad_usage_exits_2(opts: list[str]) -> None:
    code, _, err = run(
        "disclose", ALICE, "--to", "carrier", "--purpose", "orders",
        "--category", "user.nme", *opts,
    )  # fmt: skip
    assert code == 2 and "error: 'user.nme' is not a data category" in err
    code, _, err = run("transfer-check", "carier", *opts)
    assert code == 2 and "did you mean 'carrier'" in err
    code, _, err = run("disclosures", "--subject", "alice", *opts)
    assert code == 2 and "error: cannot tell which kind of identity" in err


def test_recipients_lists_the_registry_with_transfer_status(opts: list[str]) -> None:
    code, out, _ = run("recipients", *opts)
    assert code == 0
    assert "adnet — partner in US [sale, share]" in out
    assert "carrier — processor in DE" in out and "  orders: user.name, user.contact.address" in out
    code, out, _ = run("recipients", "--json", *opts)
    by_key = {r["key"]: r for r in json.loads(out)}
    assert by_key["mailer"]["transfer"]["safeguards"] == ["dpf"]
    assert by_key["mailer"]["purposes"] == {
        "orders": ["user.name", "user.contact.email", "user.contact.address"],
        "newsletter": ["user.name", "user.contact.email"],
    }


def test_transfer_check_under_the_pipl(store_url: str, tmp_path: Path) -> None:
    keys = tmp_path / "lawful.keys"
    Keyring.generate().save(keys)
    opts = [
        "--policy",
        str(SEEDS / "seestar_store.yaml"),
        "--store",
        store_url,
        "--keyring",
        str(keys),
    ]
    code, out, _ = run("transfer-check", "china_post", *opts)
    assert code == 0 and out.startswith("allowed: CN is inside mainland China")
    code, out, _ = run("transfer-check", "paypal", *opts)
    assert code == 1 and out.startswith("per subject: a transfer out of cn to US needs")
    code, out, _ = run("transfer-check", "paypal", "--subject", ALICE, *opts)
    assert code == 1 and "[transfer.separate_consent_missing]" in out
    code, out, _ = run("recipients", *opts)
    assert "global_infrastructure — processor in *" in out
    # Selro's PayPal, were its customers under the PIPL
    selro = ["--policy", str(SEEDS / "selro.yaml"), "--store", store_url, "--keyring", str(keys)]
    code, out, _ = run("transfer-check", "paypal", "--jurisdiction", "cn", *selro)
    assert code == 1 and "needs separate_consent and recipient 'paypal' does not declare it" in out
    code, out, _ = run("transfer-check", "paypal", *selro)
    assert code == 0 and "LU has an adequacy decision under the UK GDPR" in out
