"""`lawful incident ...` on a SQLite shop."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from examples.shop.generate import generate
from lawful.incidents.cli import incident_app
from lawful.subjects import Keyring
from tests.shop_store import SHOP_DATASET, SHOP_POLICY

runner = CliRunner()


@pytest.fixture
def args(tmp_path, monkeypatch) -> list[str]:
    shop = f"sqlite:///{tmp_path / 'shop.db'}"
    generate(shop, 50, seed=0)
    monkeypatch.setenv("SHOP_DATABASE_URL", shop)
    keys = tmp_path / "lawful.keys"
    Keyring.generate().save(keys)
    return [
        "--policy", str(SHOP_POLICY),
        "--store", f"sqlite:///{tmp_path / 'lawful.db'}",
        "--keyring", str(keys),
    ]  # fmt: skip


def run(*argv: str) -> tuple[int, str]:
    result = runner.invoke(incident_app, list(argv))
    return result.exit_code, result.output


def test_open_list_show_notify_close(args, tmp_path) -> None:
    code, out = run(
        "open", "--summary", "Payments readable", "--table", "shop.payments",
        "--category", "user.payment", "--high-risk", "--discovered-at", "2026-01-05T10:00Z",
        "--dataset", str(SHOP_DATASET), *args, "--json",
    )  # fmt: skip
    assert code == 0, out
    opened = json.loads(out)
    assert opened["number"] == 1 and opened["subjects_count"] > 0
    code, out = run("list", *args)
    assert code == 0 and "OVERDUE" in out  # 72 hours after 5 January are long past
    code, out = run("notify", "1", "--authority", *args)
    assert code == 0 and "Sample Shop GmbH" in out
    code, out = run("show", "1", *args, "--json")
    assert json.loads(out)["authority_notified_at"] is not None
    report = tmp_path / "report.md"
    report.write_text("Closed: bucket private, tokens rotated.")
    code, out = run("close", "1", "--report", str(report), *args)
    assert code == 0 and "closed" in out


def test_bad_usage_exits_2(args) -> None:
    code, out = run("open", "--summary", "x", "--table", "shop.payment",
                    "--dataset", str(SHOP_DATASET), *args)  # fmt: skip
    assert code == 2 and "did you mean 'shop.payments'" in out
    code, out = run("open", "--summary", "x", "--discovered-at", "yesterday", *args)
    assert code == 2 and "ISO 8601" in out
    code, out = run("notify", "1", *args)
    assert code == 2 and "--authority or --subjects" in out
    code, out = run("show", "7", *args)
    assert code == 2 and "no incident 7" in out
