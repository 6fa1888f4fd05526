"""`lawful notice | ropa | audit-policy | policy publish` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from examples.shop.generate import generate

from .cli_app import app
from .conftest import POLICIES, SHOP_DATASET, SHOP_POLICY

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_notice_md_html_and_errors(tmp_path: Path) -> None:
    serai = str(POLICIES / "serai.yaml")
    result = run("notice", "--policy", serai, "--format", "md")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Privacy notice of Serai")
    out = tmp_path / "notice.html"
    result = run("notice", "-p", serai, "-f", "html", "--jurisdiction", "eu", "-o", str(out))
    assert result.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>")
    result = run("notice", "-p", str(POLICIES / "sinesemi.yaml"), "--lang", "zh", "--json")
    assert json.loads(result.stdout)["sections"][0]["title"] == "我们是谁"
    result = run("notice", "-p", serai, "--jurisdiction", "cn")
    assert (
        result.exit_code == 2
        and "error: the policy does not serve jurisdiction 'cn'" in result.stderr
    )
    result = run("notice", "-p", serai, "--lang", "fr")
    assert result.exit_code == 2 and "no message catalog for language 'fr'" in result.stderr
    result = run("notice", "-p", serai, "--format", "pdf")
    assert result.exit_code == 2
    result = run("notice", "-p", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_ropa_formats() -> None:
    sera = str(POLICIES / "sera_leads.yaml")
    result = run("ropa", "-p", sera, "--format", "csv")
    assert result.exit_code == 0 and result.stdout.startswith("activity,article,")
    result = run("ropa", "-p", str(SHOP_POLICY), "--dataset", str(SHOP_DATASET))
    records = json.loads(result.stdout)
    assert "shop.customers.email" in records[0]["storage"]
    result = run("ropa", "-p", sera, "--dataset", "nope.yaml")
    assert result.exit_code == 2 and "no such dataset file" in result.stderr


def test_audit_policy_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAWFUL_STORE", raising=False)
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    generate(shop, 5, seed=1)
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    result = run("audit-policy", "-p", str(SHOP_POLICY), "-d", str(SHOP_DATASET))
    assert result.exit_code == 0, result.output
    assert "0 error(s), 1 warning(s)" in result.stdout
    assert (
        "not checked (no dataset or store given): consent, disclosures, deadlines" in result.stdout
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        SHOP_DATASET.read_text().replace(
            "user.demographic.date_of_birth", "user.health_and_medical"
        )
    )
    result = run("audit-policy", "-p", str(SHOP_POLICY), "-d", str(broken), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {f["check"] for f in report["findings"] if f["severity"] == "error"} == {
        "categories.undeclared"
    }
    result = run(
        "audit-policy",
        "-p",
        str(SHOP_POLICY),
        "-d",
        str(SHOP_DATASET),
        "--store",
        f"sqlite:///{tmp_path / 'lawful.db'}",
        "--offline",
    )
    assert result.exit_code == 0 and "not checked" not in result.stdout


def test_policy_publish(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'lawful.db'}"
    result = run("policy", "publish", "-p", str(SHOP_POLICY), "--store", store)
    assert result.exit_code == 0, result.output
    assert "recorded version 1" in result.stderr
    changed = tmp_path / "policy.yaml"
    changed.write_text(
        SHOP_POLICY.read_text().replace(
            "    categories: [user.contact.email]\n    channels: [email]",
            "    categories: [user.contact.email]\n    channels: [email, sms]",
        )
    )
    result = run("policy", "publish", "-p", str(changed), "--store", store, "--json")
    data = json.loads(result.stdout)
    assert data["version"] == 2 and data["material"] is True
    assert data["renew_consent"] == [{"purpose": "newsletter", "name": "Newsletter", "subjects": 0}]
    assert "text message" in data["notice"]
    result = run("policy", "publish", "-p", str(changed), "--store", store)
    assert result.exit_code == 0 and "unchanged, still version 2" in result.stdout
    result = run("policy", "publish", "-p", str(changed), "--store", store, "--lang", "xx")
    assert result.exit_code == 2
