"""The children report on the shop (SQLite, PostgreSQL), checked with plain SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from lawful.children import Children, children_report, cutoff
from lawful.engine import Engine
from lawful.policy import load_policy
from tests.shop_store import SHOP_POLICY

TODAY = date(2026, 6, 1)
CHILDREN = {  # email -> birth date; 16 is the shop's minimum age (and Germany's)
    "child-11@example.com": date(2015, 5, 5),
    "child-15@example.com": date(2010, 6, 2),  # 16 tomorrow
    "child-13@example.com": date(2013, 1, 1),
}
ADULT_TODAY = ("turns-16-today@example.com", date(2010, 6, 1))


def add_customers(url: str) -> None:
    engine = sa.create_engine(url)
    rows = [*CHILDREN.items(), ADULT_TODAY]
    with engine.begin() as conn:
        top = conn.exec_driver_sql("SELECT max(id) FROM customers").scalar_one()
        for i, (email, born) in enumerate(rows, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO customers (id, email, first_name, last_name, birth_date, "
                    "created_at) VALUES (:id, :email, 'A', 'B', :born, :at)"
                ),
                {
                    "id": top + i,
                    "email": email,
                    "born": born,
                    "at": datetime(2026, 1, 2, tzinfo=UTC),
                },
            )
    engine.dispose()


def plain_children(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT email FROM customers WHERE birth_date > :cut"),
            {"cut": cutoff(TODAY, 16)},
        ).scalars()
        out = sorted(found)
    engine.dispose()
    return out


def test_cutoff() -> None:
    assert cutoff(date(2026, 6, 1), 16) == date(2010, 6, 1)
    assert cutoff(date(2028, 2, 29), 16) == date(2012, 2, 29)
    assert cutoff(date(2028, 2, 29), 13) == date(2015, 2, 28)


def test_report_matches_plain_sql(shop_url, shop, shop_policy, keyring, store) -> None:
    add_customers(shop_url)
    expected = plain_children(shop_url)
    assert expected == sorted(CHILDREN)  # the generated customers are all adults
    report = children_report(shop, shop_policy, keyring=keyring, store=store, today=TODAY)
    [table] = report.tables
    assert (table.dataset, table.table, table.column) == ("shop", "customers", "birth_date")
    assert table.cutoffs == {"eu:16": "2010-06-01"}
    hashes = {c.identity_hash for c in table.children}
    assert hashes == set(keyring.hash_many([f"email:{e}" for e in expected]))
    for child in table.children:
        assert child.age_limit == 16 and child.source == "policy"
        assert child.rules == ("delete_on_discovery", "refuse")
        assert child.to_delete and not child.parental_consent
        assert child.jurisdiction == "eu"
    # nothing raw in what is printed or returned as JSON
    text = str(report.to_dict())
    assert "@" not in text and "2015-05-05" not in text


def test_raise_erasure_creates_the_requests_once(shop_url, shop, keyring, store) -> None:
    add_customers(shop_url)
    loaded = load_policy(SHOP_POLICY)
    with Engine.open(loaded, store, keyring=keyring, datasets=shop) as engine:
        engine.requests.intake_floor = 0
        children = Children(engine.store, engine.policy, keyring, shop, engine.requests)
        report = children.report(today=TODAY)
        raised = children.raise_erasures(report)
        assert len(raised) == 3 and all(r.raised for r in raised)
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT identity_hash, kind, submitted_by, verified_by FROM requests ORDER BY identity_hash"
                )
            ).all()
        assert [tuple(r) for r in rows] == sorted(
            (h, "erasure", "children-report", "controller")
            for h in keyring.hash_many([f"email:{e}" for e in CHILDREN])
        )
        again = children.raise_erasures(children.report(today=TODAY))
        assert [r.raised for r in again] == [False, False, False]
        assert {r.request_ref for r in again} == {r.request_ref for r in raised}
        with store.engine.connect() as conn:
            kinds = conn.execute(sa.text("SELECT kind FROM audit_events")).scalars().all()
        assert kinds.count("children.erasure_raised") == 3
        assert kinds.count("children.report") == 2
        # the requests run like any other: the children's rows are erased as annotated
        engine.requests.run_pending()
    left = plain_children(shop_url)
    assert left == [], "customers are anonymized: email hashed, birth date cleared"


def test_parental_consent_is_read_from_the_ledger(shop_url, shop, keyring, store, tmp_path) -> None:
    add_customers(shop_url)
    text = SHOP_POLICY.read_text().replace(
        "below_min_age: [refuse, delete_on_discovery]",
        "below_min_age: [parental_consent, delete_on_discovery]",
    )
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    loaded = load_policy(path)
    with Engine.open(loaded, store, keyring=keyring) as engine:
        engine.consent.parental_consent(
            "email:child-11@example.com", parent="email:mum@example.org"
        )
    report = children_report(shop, loaded.policy, keyring=keyring, store=store, today=TODAY)
    by_hash = {c.identity_hash: c for c in report.children}
    child = by_hash[keyring.hash_many(["email:child-11@example.com"])[0]]
    assert child.parental_consent and child.subject_ref is not None
    assert child.parent_hash == keyring.hash_many(["email:mum@example.org"])[0]
    assert not child.to_delete  # a parent consented, as the policy accepts
    assert sum(c.to_delete for c in report.children) == 2


@pytest.mark.parametrize("missing", ["datasets"])
def test_without_datasets_the_report_says_what_to_give(
    store, shop_policy, keyring, missing
) -> None:
    from lawful.children import ChildrenError

    with pytest.raises(ChildrenError, match="--dataset"):
        Children(store, shop_policy, keyring, None).report()


def test_the_command_reports_and_raises_erasures(
    shop_url, keyring, store, tmp_path, monkeypatch
) -> None:
    """`lawful children report`: the children, by table, without their identities in the
    output; with --raise-erasure, one request each; bad input exits 2."""
    import json

    from typer.testing import CliRunner

    from lawful.cli import app
    from tests.shop_store import SHOP_DATASET

    add_customers(shop_url)
    keys = keyring.save(tmp_path / "lawful.keys")
    common = ["--policy", str(SHOP_POLICY), "--store", shop_url, "--keyring", str(keys)]
    common += ["--dataset", str(SHOP_DATASET), "--today", TODAY.isoformat()]
    runner = CliRunner()
    result = runner.invoke(app, ["children", "report", "--json", *common])
    assert result.exit_code == 0, result.stderr
    assert "child-11@example.com" not in result.stdout
    report = json.loads(result.stdout)
    found = [c["identity_hash"] for t in report["tables"] for c in t["children"]]
    assert sorted(found) == sorted(keyring.hash_many([f"email:{e}" for e in CHILDREN]))
    result = runner.invoke(app, ["children", "report", "--raise-erasure", *common])
    assert result.exit_code == 0, result.stderr
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM requests")).scalar() == 3
    bad = runner.invoke(app, ["children", "report", *common[:-2], "--today", "June 1st"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
