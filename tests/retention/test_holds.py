"""Legal holds: placed, listed and released, each with its audit event, never in clear;
and the commands, with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lawful.audit.tables import audit_events
from lawful.retention import HoldError, Retention
from lawful.retention.tables import legal_holds
from lawful.subjects import Identity, Keyring
from tests.retention.cli_app import app
from tests.retention.conftest import SHOP_DATASET, SHOP_POLICY


@pytest.fixture
def app_url(tmp_path: Path) -> str:  # holds need no server: SQLite only
    return f"sqlite:///{tmp_path / 'app.db'}"


def _events(retention: Retention) -> list[tuple[str, str | None, dict]]:
    with retention.store.engine.connect() as conn:
        return [
            (r.kind, r.subject, r.data)
            for r in conn.execute(
                sa.select(audit_events.c.kind, audit_events.c.subject, audit_events.c.data)
                .where(audit_events.c.kind.like("retention.hold%"))
                .order_by(audit_events.c.seq)
            )
        ]


def test_hold_place_list_release(retention: Retention, keyring: Keyring) -> None:
    hold = retention.hold(
        reason="legal claim", by="dpo-1", identity="email:Customer-7@Example.com", case="C-12"
    )
    assert hold.reason == "legal_claim" and hold.active and hold.case == "C-12"
    assert hold.subject_hash == keyring.hash(Identity.parse("email:customer-7@example.com"))
    table_hold = retention.hold(reason="dispute", by="dpo-1", table="shop.tax_records")
    assert (table_hold.dataset, table_hold.table) == ("shop", "tax_records")
    assert [h.ref for h in retention.holds()] == [hold.ref, table_hold.ref]

    # The store never holds the identity in clear.
    with retention.store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.select(legal_holds))]
    assert "customer-7" not in repr(rows).lower()

    released = retention.release(hold.ref, by="dpo-2")
    assert not released.active and released.released_by == "dpo-2"
    assert [h.ref for h in retention.holds()] == [table_hold.ref]
    assert [h.ref for h in retention.holds(released=True)] == [hold.ref, table_hold.ref]

    events = _events(retention)
    assert [e[0] for e in events] == [
        "retention.hold_placed",
        "retention.hold_placed",
        "retention.hold_released",
    ]
    assert events[0][1] == hold.subject_hash and events[0][2]["hold"] == hold.ref
    assert "@" not in repr(events)


def test_bad_holds_are_refused_with_the_fix(retention: Retention) -> None:
    with pytest.raises(HoldError, match=r"is not a hold reason.*dispute"):
        retention.hold(reason="because", by="dpo", identity="email:a@example.com")
    with pytest.raises(HoldError, match=r"a subject .* a table, or both"):
        retention.hold(reason="dispute", by="dpo")
    with pytest.raises(HoldError, match="did you mean 'login_events'"):
        retention.hold(reason="dispute", by="dpo", table="login_event")
    hold = retention.hold(reason="dispute", by="dpo", table="login_events")
    retention.release(hold.ref, by="dpo")
    with pytest.raises(HoldError, match="already released"):
        retention.release(hold.ref, by="dpo")
    with pytest.raises(HoldError, match="no hold 'nope'"):
        retention.release("nope", by="dpo")
    assert retention.holds() == []


def test_commands(shop_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Keyring.generate().save(tmp_path / "lawful.keys")
    common = [
        "--dataset",
        str(SHOP_DATASET),
        "--policy",
        str(SHOP_POLICY),
        "--store",
        f"sqlite:///{tmp_path / 'lawful.db'}",
    ]
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, [*args, *common])
        return result.exit_code, result.stdout, result.stderr

    code, out, _ = run(
        "hold", "add", "--email", "customer-2@example.com", "--reason", "dispute", "--json"
    )
    assert code == 0, out
    ref = json.loads(out)["hold"]
    code, out, _ = run("hold", "list")
    assert code == 0 and ref in out and "dispute" in out and "customer-2" not in out
    code, out, _ = run("sweep", "--dry-run", "--rule", "security")
    assert code == 0 and "rule security (keep 12 months, then delete)" in out
    assert "shop.login_events (from at" in out and "held" in out and "oldest" in out
    code, out, _ = run("sweep", "--rule", "security", "--json")
    assert code == 0 and json.loads(out)["rules"][0]["rows"] > 0
    code, out, _ = run("hold", "release", ref)
    assert code == 0 and "released" in out

    code, _, err = run("hold", "add", "--email", "x@example.com", "--reason", "whim")
    assert code == 2 and "error: 'whim' is not a hold reason" in err
    code, _, err = run("sweep", "--rule", "securty")
    assert code == 2 and "did you mean 'security'?" in err
    code, _, err = run("hold", "release", "nope")
    assert code == 2 and "no hold 'nope'" in err
