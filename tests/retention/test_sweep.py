"""Sweeps of the sample shop, on SQLite, PostgreSQL and MariaDB, checked with plain SQL."""

from __future__ import annotations

import sqlalchemy as sa

from lawful.audit.tables import audit_events
from lawful.datasets import Datasets
from lawful.policy.durations import Duration
from lawful.retention import Retention, cutoff
from lawful.store import Store
from tests.retention.conftest import NOW, sql_time

YEAR_AGO = cutoff(Duration(months=12), NOW)
THREE_YEARS_AGO = cutoff(Duration(years=3), NOW)
TEN_YEARS_AGO = cutoff(Duration(years=10), NOW)


def _scalar(url: str, sql: str, **params: object) -> object:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def _rows(url: str, sql: str, **params: object) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _swept_events(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [
            row.data
            for row in conn.execute(
                sa.select(audit_events.c.data)
                .where(audit_events.c.kind == "retention.swept")
                .order_by(audit_events.c.seq)
            )
        ]


def test_dry_run_counts_and_oldest_match_sql(retention: Retention, shop_url: str) -> None:
    before = _scalar(shop_url, "SELECT COUNT(*) FROM login_events")
    report = retention.plan()
    logins = report.rule("security").tables[0]
    cut = sql_time(shop_url, YEAR_AGO)
    assert logins.table == "login_events" and logins.action == "delete"
    assert logins.rows == _scalar(
        shop_url, "SELECT COUNT(*) FROM login_events WHERE at < :c", c=cut
    )
    assert logins.rows > 0
    oldest = _scalar(shop_url, "SELECT MIN(at) FROM login_events")
    assert str(logins.oldest)[:19] == str(oldest)[:19]
    customers = next(t for t in report.rule("customer_records").tables if t.table == "customers")
    cut3 = sql_time(shop_url, THREE_YEARS_AGO)
    assert customers.action == "anonymize"
    assert customers.rows == _scalar(
        shop_url, "SELECT COUNT(*) FROM customers WHERE last_login_at < :c", c=cut3
    )
    # A dry run changes nothing and writes no audit event.
    assert _scalar(shop_url, "SELECT COUNT(*) FROM login_events") == before
    assert _swept_events(retention.store) == []


def test_sweep_deletes_and_anonymizes_exactly_the_expired_rows(
    retention: Retention, shop_url: str
) -> None:
    cut, cut3 = sql_time(shop_url, YEAR_AGO), sql_time(shop_url, THREE_YEARS_AGO)
    kept_logins = _rows(
        shop_url, "SELECT id, ip FROM login_events WHERE at >= :c ORDER BY id", c=cut
    )
    expired_customers = {
        r[0] for r in _rows(shop_url, "SELECT id FROM customers WHERE last_login_at < :c", c=cut3)
    }
    active = _rows(
        shop_url,
        "SELECT id, email, first_name, phone FROM customers WHERE last_login_at >= :c ORDER BY id",
        c=cut3,
    )
    agents = _rows(shop_url, "SELECT * FROM agents ORDER BY id")
    newsletter = _rows(shop_url, "SELECT * FROM newsletter_subscriptions ORDER BY id")
    assert expired_customers and active

    report = retention.sweep()
    assert not report.failed

    # login_events: exactly the rows older than 12 months are gone, the rest untouched.
    assert _rows(shop_url, "SELECT id, ip FROM login_events ORDER BY id") == kept_logins
    # customers: the expired ones anonymized as erasure would, the active ones untouched.
    masked = _rows(
        shop_url,
        "SELECT id, email, first_name, last_name, phone, birth_date, address_id FROM customers "
        "WHERE last_login_at < :c",
        c=cut3,
    )
    assert {r[0] for r in masked} == expired_customers
    for _, email, first, last, phone, birth, address in masked:
        assert email.startswith("~") and first == last == "erased"
        assert phone is None and birth is None and address is None
    assert (
        _rows(
            shop_url,
            "SELECT id, email, first_name, phone FROM customers WHERE last_login_at >= :c "
            "ORDER BY id",
            c=cut3,
        )
        == active
    )
    # Their reviews are anonymized too; reviews of active customers keep their names.
    assert (
        _scalar(
            shop_url,
            "SELECT COUNT(*) FROM product_reviews r JOIN customers c ON c.id = r.customer_id "
            "WHERE c.last_login_at < :c AND r.display_name <> 'A former customer'",
            c=cut3,
        )
        == 0
    )
    assert (
        _scalar(
            shop_url,
            "SELECT COUNT(*) FROM product_reviews r JOIN customers c ON c.id = r.customer_id "
            "WHERE c.last_login_at >= :c AND r.display_name = 'A former customer'",
            c=cut3,
        )
        == 0
    )
    # Tickets of expired customers are gone with their threads; no other ticket is.
    assert (
        _scalar(
            shop_url,
            "SELECT COUNT(*) FROM support_tickets t JOIN customers c ON c.id = t.customer_id "
            "WHERE c.last_login_at < :c",
            c=cut3,
        )
        == 0
    )
    # Invoices 10 years from issue: none older left, none younger touched.
    cut10 = sql_time(shop_url, TEN_YEARS_AGO)
    assert _scalar(shop_url, "SELECT COUNT(*) FROM tax_records WHERE issued_at < :c", c=cut10) == 0
    assert _scalar(shop_url, "SELECT COUNT(*) FROM tax_records") > 0
    # Tables no rule covers are untouched.
    assert _rows(shop_url, "SELECT * FROM agents ORDER BY id") == agents
    assert _rows(shop_url, "SELECT * FROM newsletter_subscriptions ORDER BY id") == newsletter

    # One audit event per rule, with counts and no personal data.
    events = _swept_events(retention.store)
    assert sorted(e["rule"] for e in events) == sorted(r.rule for r in report.rules)
    logins = next(e for e in events if e["rule"] == "security")
    assert logins["rows"] == report.rule("security").rows > 0
    assert "@" not in repr(events)

    # A second sweep finds nothing left to do, and says so in its own events.
    again = retention.sweep()
    assert again.rows == 0
    assert len(_swept_events(retention.store)) == 2 * len(events)


def test_one_rule_touches_only_its_tables(retention: Retention, shop_url: str) -> None:
    customers = _rows(shop_url, "SELECT * FROM customers ORDER BY id")
    tax = _scalar(shop_url, "SELECT COUNT(*) FROM tax_records")
    report = retention.sweep(rules=["security"])
    assert [r.rule for r in report.rules] == ["security"]
    assert report.rows > 0
    assert _rows(shop_url, "SELECT * FROM customers ORDER BY id") == customers
    assert _scalar(shop_url, "SELECT COUNT(*) FROM tax_records") == tax
    assert [e["rule"] for e in _swept_events(retention.store)] == ["security"]


def test_a_legal_hold_protects_one_subjects_rows(
    retention: Retention, shop_url: str, shop: Datasets
) -> None:
    cut, cut3 = sql_time(shop_url, YEAR_AGO), sql_time(shop_url, THREE_YEARS_AGO)
    held_id, other_id = [
        r[0]
        for r in _rows(
            shop_url,
            "SELECT id FROM customers WHERE last_login_at < :c ORDER BY id",
            c=cut3,
        )[:2]
    ]
    held_logins = _rows(
        shop_url, "SELECT id FROM login_events WHERE customer_id = :i ORDER BY id", i=held_id
    )
    held_row = _rows(shop_url, "SELECT * FROM customers WHERE id = :i", i=held_id)
    assert held_logins
    hold = retention.hold(
        reason="dispute", by="dpo", identity=f"email:customer-{held_id}@example.com"
    )
    plan = retention.plan()
    assert plan.rule("security").tables[0].held == len(held_logins)

    retention.sweep()
    # The held subject's rows are all there, unchanged; the other's expired ones went.
    assert (
        _rows(shop_url, "SELECT id FROM login_events WHERE customer_id = :i ORDER BY id", i=held_id)
        == held_logins
    )
    assert _rows(shop_url, "SELECT * FROM customers WHERE id = :i", i=held_id) == held_row
    assert (
        _scalar(
            shop_url,
            "SELECT COUNT(*) FROM login_events WHERE customer_id = :i AND at < :c",
            i=other_id,
            c=cut,
        )
        == 0
    )
    assert (
        _scalar(shop_url, "SELECT first_name FROM customers WHERE id = :i", i=other_id) == "erased"
    )

    # Released, the next sweep applies the rules to what it held.
    retention.release(hold.ref, by="dpo")
    retention.sweep()
    assert (
        _scalar(
            shop_url,
            "SELECT COUNT(*) FROM login_events WHERE customer_id = :i AND at < :c",
            i=held_id,
            c=cut,
        )
        == 0
    )
    assert (
        _scalar(shop_url, "SELECT first_name FROM customers WHERE id = :i", i=held_id) == "erased"
    )


def test_a_hold_on_a_table_suspends_its_sweeps(retention: Retention, shop_url: str) -> None:
    before = _scalar(shop_url, "SELECT COUNT(*) FROM login_events")
    retention.hold(reason="investigation", by="dpo", table="login_events", case="2026-17")
    report = retention.sweep(rules=["security"])
    logins = report.rule("security").tables[0]
    assert logins.rows == 0 and logins.held > 0
    assert _scalar(shop_url, "SELECT COUNT(*) FROM login_events") == before
