"""The sample shop database (examples/shop): generated on SQLite, PostgreSQL and MariaDB,
checked with plain SQL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from examples.shop import schema
from examples.shop.generate import Counts, generate, main
from tests.conftest import MYSQL_TEST_URL, PG_TEST_URL, _fresh_database, _with_driver

CUSTOMERS = 200

BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
URL_FIXTURE = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}


@dataclass
class Shop:
    url: str
    counts: Counts
    engine: sa.Engine

    def rows(self, sql: str) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql)]

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()


@contextmanager
def opened(url: str, counts: Counts) -> Iterator[Shop]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        yield Shop(url, counts, engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    """One shop of CUSTOMERS customers per backend, shared by the tests that only read it.

    Module-scoped (generating once per backend keeps the module fast), so it makes its
    database with the suite's own helper rather than the function-scoped URL fixtures.
    """
    if request.param == "sqlite":
        databases: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('shop')}/shop.db"])
    elif request.param == "postgresql":
        admin = _with_driver(
            os.environ.get("LAWFUL_TEST_PG") or PG_TEST_URL, "postgresql", "psycopg"
        )
        databases = _fresh_database("PostgreSQL", admin, "LAWFUL_TEST_PG", " WITH (FORCE)")
    else:
        admin = _with_driver(
            os.environ.get("LAWFUL_TEST_MYSQL") or MYSQL_TEST_URL, "mysql", "pymysql"
        )
        databases = _fresh_database("MariaDB/MySQL", admin, "LAWFUL_TEST_MYSQL", "")
    url = next(databases)
    try:
        with opened(url, generate(url, CUSTOMERS, seed=0)) as shop:
            yield shop
    finally:
        next(databases, None)  # drops the server database


@pytest.fixture(params=BACKENDS)
def own_shop(request: pytest.FixtureRequest) -> Iterator[Shop]:
    """A shop in a fresh database of its own, for the tests that generate again."""
    url = request.getfixturevalue(URL_FIXTURE[request.param])
    with opened(url, generate(url, CUSTOMERS, seed=0)) as shop:
        yield shop


CHECKSUMMED = {
    "customers": "id",
    "addresses": "id",
    "orders": "id",
    "order_items": "order_id, product_id",
    "tax_records": "id",
    "ticket_messages": "id",
    "newsletter_subscriptions": "id",
    "login_events": "id",
}


def checksums(shop: Shop) -> dict[str, str]:
    return {
        table: hashlib.sha256(
            repr(shop.rows(f"SELECT * FROM {table} ORDER BY {key}")).encode()
        ).hexdigest()
        for table, key in CHECKSUMMED.items()
    }


def test_counts_match_the_tables(shop: Shop) -> None:
    for table, n in shop.counts.as_dict().items():
        assert shop.scalar(f"SELECT COUNT(*) FROM {table}") == n, table
    assert shop.counts.customers == CUSTOMERS
    assert shop.counts.total == sum(shop.counts.as_dict().values())


def test_every_customer_has_the_expected_email(shop: Shop) -> None:
    rows = shop.rows("SELECT id, email FROM customers ORDER BY id")
    assert rows == [(i, f"customer-{i}@example.com") for i in range(1, CUSTOMERS + 1)]


def test_declared_foreign_keys_hold(shop: Shop) -> None:
    checked = 0
    for table in schema.metadata.sorted_tables:
        for fk in table.foreign_keys:
            column, target = fk.parent.name, fk.column
            orphans = shop.scalar(
                f"SELECT COUNT(*) FROM {table.name} c LEFT JOIN {target.table.name} p "
                f"ON c.{column} = p.{target.name} "
                f"WHERE c.{column} IS NOT NULL AND p.{target.name} IS NULL"
            )
            assert orphans == 0, f"{table.name}.{column} → {target.table.name}"
            checked += 1
    assert checked == 15


def test_the_database_declares_the_foreign_keys_but_not_login_events(shop: Shop) -> None:
    inspector = sa.inspect(shop.engine)
    declared = {
        (table, tuple(fk["constrained_columns"]), fk["referred_table"])
        for table in schema.TABLE_NAMES
        for fk in inspector.get_foreign_keys(table)
    }
    expected = {
        (table.name, (fk.parent.name,), fk.column.table.name)
        for table in schema.metadata.sorted_tables
        for fk in table.foreign_keys
    }
    assert declared == expected
    assert not any(table == "login_events" for table, _, _ in declared)
    assert ("referrals", ("referrer_id",), "customers") in declared  # the cycle
    assert ("referrals", ("referred_id",), "customers") in declared


def test_login_events_point_at_customers_though_undeclared(shop: Shop) -> None:
    orphans = shop.scalar(
        "SELECT COUNT(*) FROM login_events l LEFT JOIN customers c ON l.customer_id = c.id "
        "WHERE c.id IS NULL"
    )
    assert orphans == 0
    assert shop.scalar("SELECT COUNT(DISTINCT customer_id) FROM login_events") == CUSTOMERS
    # last_login_at is the latest login
    stale = shop.scalar(
        "SELECT COUNT(*) FROM customers c WHERE c.last_login_at <> "
        "(SELECT MAX(l.at) FROM login_events l WHERE l.customer_id = c.id)"
    )
    assert stale == 0


def test_households_share_an_address(shop: Shop) -> None:
    shared = shop.rows(
        "SELECT address_id, COUNT(*) FROM customers WHERE address_id IS NOT NULL "
        "GROUP BY address_id HAVING COUNT(*) >= 2"
    )
    assert shared
    members = sum(n for _, n in shared)
    assert 0.04 * CUSTOMERS <= members <= 0.25 * CUSTOMERS


def test_ticket_threads_hold_both_sides(shop: Shop) -> None:
    threads = shop.rows(
        "SELECT t.id, t.customer_id, COUNT(m.sender_customer_id), COUNT(m.sender_agent_id), "
        "MIN(m.sender_customer_id), MAX(m.sender_customer_id) "
        "FROM support_tickets t JOIN ticket_messages m ON m.ticket_id = t.id "
        "GROUP BY t.id, t.customer_id"
    )
    assert len(threads) == shop.counts.support_tickets > 0
    for _, customer, from_customer, from_agent, low, high in threads:
        assert from_customer >= 1 and from_agent >= 1
        assert low == high == customer  # only the ticket's customer writes in it
    both_or_neither = shop.scalar(
        "SELECT COUNT(*) FROM ticket_messages WHERE "
        "(sender_customer_id IS NULL AND sender_agent_id IS NULL) OR "
        "(sender_customer_id IS NOT NULL AND sender_agent_id IS NOT NULL)"
    )
    assert both_or_neither == 0
    # agents greet the customer by name: their messages hold the customer's data too
    greeting = shop.rows(
        "SELECT m.body, c.first_name FROM ticket_messages m "
        "JOIN support_tickets t ON t.id = m.ticket_id JOIN customers c ON c.id = t.customer_id "
        "WHERE m.sender_agent_id IS NOT NULL"
    )
    assert all(body.startswith(f"Hi {first},") for body, first in greeting)


def test_completed_orders_have_a_payment_and_a_tax_record(shop: Shop) -> None:
    rows = shop.rows(
        "SELECT o.id, o.status, COUNT(DISTINCT p.id), COUNT(t.id) FROM orders o "
        "LEFT JOIN payments p ON p.order_id = o.id "
        "LEFT JOIN tax_records t ON t.payment_id = p.id GROUP BY o.id, o.status"
    )
    completed = [r for r in rows if r[1] == "completed"]
    assert completed
    assert all(r[2] == 1 and r[3] == 1 for r in completed)
    assert all(r[3] == 0 for r in rows if r[1] != "completed")
    assert all(r[2] == 0 for r in rows if r[1] in ("pending", "cancelled"))
    assert shop.counts.tax_records == len(completed)
    # invoices copy the name given at the time and date from completion; some are old
    # enough (issued before 2016) to have passed ten years by 2026
    mismatched = shop.scalar(
        "SELECT COUNT(*) FROM tax_records t JOIN payments p ON p.id = t.payment_id "
        "JOIN orders o ON o.id = p.order_id WHERE t.issued_at <> o.completed_at"
    )
    assert mismatched == 0
    old = shop.scalar("SELECT COUNT(*) FROM tax_records WHERE issued_at < '2016-01-01'")
    assert old > 0


def test_newsletter_is_matched_by_email_only(shop: Shop) -> None:
    emails = [e for (e,) in shop.rows("SELECT email FROM newsletter_subscriptions")]
    customers = {e for (e,) in shop.rows("SELECT email FROM customers")}
    subscribed = {e.lower() for e in emails if e.lower() in customers}
    assert 0.3 * CUSTOMERS <= len(subscribed) <= 0.5 * CUSTOMERS
    assert any(e.startswith("subscriber-") for e in emails)  # never a customer
    assert any(e != e.lower() for e in emails)  # typed in another case


def test_realistic_proportions(shop: Shop) -> None:
    c = shop.counts
    assert 2.5 <= c.orders / c.customers <= 3.5
    assert 1.5 <= c.order_items / c.orders <= 3.5
    assert 3.5 <= c.login_events / c.customers <= 6.5
    assert 0.1 <= c.support_tickets / c.customers <= 0.35
    assert 2 <= c.ticket_messages / c.support_tickets <= 6
    assert 0.2 <= c.product_reviews / c.customers <= 0.5
    assert c.referrals >= 1
    bad = shop.scalar("SELECT COUNT(*) FROM referrals WHERE referrer_id >= referred_id")
    assert bad == 0
    ips = [ip for (ip,) in shop.rows("SELECT ip FROM login_events")]
    assert all(
        len(ip.split(".")) == 4 and all(0 <= int(p) <= 255 for p in ip.split(".")) for ip in ips
    )


def test_same_seed_gives_the_same_rows_whatever_the_batch(own_shop: Shop) -> None:
    shop = own_shop
    before = checksums(shop)
    # generating again drops the tables first; the batch size changes nothing
    assert generate(shop.url, CUSTOMERS, seed=0, batch=7) == shop.counts
    assert checksums(shop) == before
    generate(shop.url, CUSTOMERS, seed=1)
    after = checksums(shop)
    assert all(after[table] != before[table] for table in CHECKSUMMED)


HEAVY = 1_500


def test_heavy_rows_add_logins_for_customer_1_only(own_shop: Shop) -> None:
    shop = own_shop
    logins_of_1 = "SELECT COUNT(*) FROM login_events WHERE customer_id = 1"
    before, sums = shop.scalar(logins_of_1), checksums(shop)
    counts = generate(shop.url, CUSTOMERS, seed=0, heavy_rows=HEAVY)
    assert shop.scalar(logins_of_1) == before + HEAVY
    assert counts.login_events == shop.counts.login_events + HEAVY
    assert shop.scalar("SELECT COUNT(*) FROM login_events") == counts.login_events
    others = {k: v for k, v in counts.as_dict().items() if k != "login_events"}
    assert others == {k: v for k, v in shop.counts.as_dict().items() if k != "login_events"}
    after = checksums(shop)
    assert {k: v for k, v in after.items() if k != "login_events"} == {
        k: v for k, v in sums.items() if k != "login_events"
    }
    # the extra logins fall between sign-up and the last login, which stays the latest
    outside = shop.scalar(
        "SELECT COUNT(*) FROM login_events l JOIN customers c ON c.id = l.customer_id "
        "WHERE l.customer_id = 1 AND (l.at < c.created_at OR l.at > c.last_login_at)"
    )
    assert outside == 0
    # the application can go on adding rows: its keys continue after the generated ones
    with shop.engine.begin() as conn:
        conn.execute(
            sa.insert(schema.addresses).values(
                street="1 New Road", city="Leeds", postal_code="LS1 1AA", country="GB"
            )
        )
    assert shop.scalar("SELECT MAX(id) FROM addresses") == counts.addresses + 1


def test_command_line(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([sqlite_url, "--customers", "30", "--seed", "3", "--heavy-rows", "5"]) == 0
    out = capsys.readouterr().out
    assert "customers" in out and " 30\n" in out
    assert "rows/s" in out
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT COUNT(*) FROM login_events WHERE customer_id = 1")
        assert n.scalar() >= 6
    engine.dispose()


def test_bad_arguments_are_refused(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="customers"):
        generate(sqlite_url, 0)
    with pytest.raises(ValueError, match="heavy_rows"):
        generate(sqlite_url, 10, heavy_rows=-1)
