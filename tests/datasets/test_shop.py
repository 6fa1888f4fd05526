"""Every action on the sample shop (examples/shop), annotated by examples/shop/dataset.yaml,
on SQLite, PostgreSQL and MariaDB; each result read back with plain SQL: the subject's rows
are gone or masked exactly as annotated, rows kept for the tax authority are still there,
other subjects' rows are untouched, and every foreign key still holds."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from examples.shop import schema
from lawful.datasets import Datasets

Rows = dict[str, set[tuple[Any, ...]]]


class Shop:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def everything(self) -> dict[str, set[tuple[Any, ...]]]:
        with self.engine.connect() as conn:
            return {t.name: {tuple(r) for r in conn.execute(sa.select(t))} for t in schema.TABLES}


@pytest.fixture
def db(shop_url: str) -> Iterator[Shop]:
    shop = Shop(shop_url)
    yield shop
    shop.engine.dispose()


# The subject's rows per table, in plain SQL (:c is the customer's id, :e their email).
MINE = {
    "customers": "SELECT id FROM customers WHERE id = :c",
    "orders": "SELECT id FROM orders WHERE customer_id = :c",
    "order_items": "SELECT i.order_id, i.product_id FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.customer_id = :c",
    "payments": "SELECT p.id FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.customer_id = :c",
    "tax_records": "SELECT t.id FROM tax_records t JOIN payments p ON p.id = t.payment_id JOIN orders o ON o.id = p.order_id WHERE o.customer_id = :c",
    "addresses": "SELECT a.id FROM addresses a WHERE a.id IN (SELECT address_id FROM customers WHERE id = :c) OR a.id IN (SELECT shipping_address_id FROM orders WHERE customer_id = :c)",
    "support_tickets": "SELECT id FROM support_tickets WHERE customer_id = :c",
    "ticket_messages": "SELECT m.id FROM ticket_messages m WHERE m.sender_customer_id = :c OR m.ticket_id IN (SELECT id FROM support_tickets WHERE customer_id = :c)",
    "newsletter_subscriptions": "SELECT id FROM newsletter_subscriptions WHERE LOWER(email) = :e",
    "login_events": "SELECT id FROM login_events WHERE customer_id = :c",
    "product_reviews": "SELECT id FROM product_reviews WHERE customer_id = :c",
    "referrals": "SELECT referrer_id, referred_id FROM referrals WHERE referrer_id = :c OR referred_id = :c",
}


def mine(db: Shop, customer: int) -> Rows:
    email = f"customer-{customer}@example.com"
    return {t: set(db.rows(sql, c=customer, e=email)) for t, sql in MINE.items()}


# Customers with each design case of the shop (examples/shop/README.md), by plain SQL.
KINDS = {
    "household": "EXISTS (SELECT 1 FROM customers o WHERE o.address_id = c.address_id AND o.id <> c.id)",
    "tickets": "EXISTS (SELECT 1 FROM support_tickets t WHERE t.customer_id = c.id)",
    "reviews": "EXISTS (SELECT 1 FROM product_reviews r WHERE r.customer_id = c.id)",
    "referral": "EXISTS (SELECT 1 FROM referrals f WHERE f.referrer_id = c.id OR f.referred_id = c.id)",
    "odd_case_newsletter": "EXISTS (SELECT 1 FROM newsletter_subscriptions n WHERE LOWER(n.email) = c.email AND n.email <> c.email)",
}


def a_customer(db: Shop, kind: str) -> int:
    condition = KINDS[kind]
    if db.engine.dialect.name == "mysql":  # its default collation compares case-insensitively
        condition = condition.replace("n.email <> c.email", "BINARY n.email <> BINARY c.email")
    found = db.scalar(f"SELECT MIN(c.id) FROM customers c WHERE {condition}")
    return found or pytest.fail(f"the generated shop has no customer of kind {kind}")


def test_find_reaches_every_row_plain_sql_finds(shop: Datasets, db: Shop) -> None:
    for customer in (1, 2, *(a_customer(db, kind) for kind in KINDS)):
        found = shop.find([f"email:customer-{customer}@example.com"])["shop"]
        expected = mine(db, customer)
        for table, keys in expected.items():
            assert set(found.tables[table].rows) == keys, (customer, table)
        assert all(t.role(k).value == "owner" for t in found.tables.values() for k in t.rows)


def test_find_by_phone_as_typed_and_by_account_id(shop: Shop, db: Shop) -> None:
    customer, phone = db.rows("SELECT id, phone FROM customers WHERE phone LIKE '% %' ORDER BY id")[
        0
    ]
    compact = phone.replace(" ", "")
    by_phone = shop.find([f"phone:{compact}"])["shop"]
    by_id = shop.find([f"account:{customer}"])["shop"]
    expected = mine(db, customer)
    for found in (by_phone, by_id):
        # customers.email expands: the newsletter (kept by email) is found from either.
        assert {t: set(found.tables[t].rows) for t in expected} == expected


def test_access_is_the_annotated_personal_data(shop: Datasets, db: Shop) -> None:
    customer = a_customer(db, "tickets")
    (report,) = shop.access([f"email:customer-{customer}@example.com"])
    tables = {t.table: t for t in report.tables}
    assert tables["customers"].rows[0]["data"]["email"] == f"customer-{customer}@example.com"
    assert "id" not in tables["customers"].columns  # keys are not personal data
    assert tables["tax_records"].columns["customer_name"] == "user.name"
    assert tables["login_events"].columns == {
        "ip": "user.device.ip_address",
        "user_agent": "user.device",
    }
    assert report.rows == sum(len(v) for v in mine(db, customer).values())


@pytest.mark.parametrize("kind", list(KINDS))
def test_erasure_as_annotated(shop: Datasets, db: Shop, kind: str) -> None:
    customer = a_customer(db, kind)
    email = f"customer-{customer}@example.com"
    rows = mine(db, customer)
    before = db.everything()
    shared_addresses = {
        a
        for (a,) in rows["addresses"]
        if db.scalar(
            "SELECT COUNT(*) FROM customers WHERE address_id = :a AND id <> :c", a=a, c=customer
        )
        + db.scalar(
            "SELECT COUNT(*) FROM orders WHERE shipping_address_id = :a AND customer_id <> :c",
            a=a,
            c=customer,
        )
    }
    if kind == "household":
        assert shared_addresses

    (report,) = shop.erase([f"email:{email}"])
    assert report.changed > 0

    # customers: anonymized in place (orders and reviews keep pointing at it).
    (row,) = db.rows(
        "SELECT email, phone, first_name, last_name, birth_date, address_id FROM customers WHERE id = :c",
        c=customer,
    )
    assert row[0].startswith("~") and len(row[0]) == 33
    assert row[1:] == (None, "erased", "erased", None, None)
    # orders: unlinked from the address, amounts kept for the invoices.
    for order_id, total in db.rows(
        "SELECT id, total FROM orders WHERE customer_id = :c", c=customer
    ):
        kept = next(r for r in before["orders"] if r[0] == order_id)[4]
        assert Decimal(str(total)) == Decimal(str(kept))
    assert (
        db.scalar(
            "SELECT COUNT(*) FROM orders WHERE customer_id = :c AND shipping_address_id IS NOT NULL",
            c=customer,
        )
        == 0
    )
    # payments: card digits gone, amounts kept; order items and invoices kept whole.
    assert (
        db.scalar(
            "SELECT COUNT(*) FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.customer_id = :c AND p.card_last4 IS NOT NULL",
            c=customer,
        )
        == 0
    )
    assert set(db.rows(MINE["order_items"], c=customer)) == rows["order_items"]
    kept_invoices = {r for r in before["tax_records"] if (r[0],) in rows["tax_records"]}
    assert {
        r for r in db.everything()["tax_records"] if (r[0],) in rows["tax_records"]
    } == kept_invoices
    # Deleted: tickets and their threads, logins, newsletter (typed in another case).
    for table in ("support_tickets", "ticket_messages", "login_events", "newsletter_subscriptions"):
        assert set(db.rows(MINE[table], c=customer, e=email)) == set(), table
    # Reviews: the rating stays, who wrote it and what goes.
    for name, body, rating in db.rows(
        "SELECT display_name, body, rating FROM product_reviews WHERE customer_id = :c", c=customer
    ):
        assert (name, body) == ("A former customer", None) and 1 <= rating <= 5
    # Addresses: the household's stays, the others go.
    remaining = {a for (a,) in db.rows("SELECT id FROM addresses")}
    assert {a for (a,) in rows["addresses"]} & remaining == shared_addresses
    # Referrals with a living customer on the other side stay (their key can't be unlinked).
    assert set(db.rows(MINE["referrals"], c=customer)) == rows["referrals"]

    # Nobody else's rows changed.
    after = db.everything()
    for table in before:
        key = {
            "order_items": lambda r: (r[0], r[1]),
            "referrals": lambda r: (r[0], r[1]),
        }.get(table, lambda r: (r[0],))
        theirs_before = {r for r in before[table] if key(r) not in rows.get(table, set())}
        theirs_after = {r for r in after[table] if key(r) not in rows.get(table, set())}
        assert theirs_after == theirs_before, table
    assert_foreign_keys_hold(db)


def test_a_second_erasure_changes_nothing(shop: Datasets, db: Shop) -> None:
    customer = a_customer(db, "reviews")
    (first,) = shop.erase([f"account:{customer}"])
    after = db.everything()
    (second,) = shop.erase([f"account:{customer}"])
    assert first.changed > 0 and second.changed == 0
    assert db.everything() == after
    assert {t.table for t in second.tables if t.unchanged} >= {
        "customers",
        "orders",
        "product_reviews",
    }


def test_a_batch_of_customers(shop: Datasets, db: Shop) -> None:
    batch = list(range(10, 30))
    expected = {c: mine(db, c) for c in batch}
    (report,) = shop.erase([f"email:customer-{c}@example.com" for c in batch])
    union = {table: set().union(*(rows[table] for rows in expected.values())) for table in MINE}
    assert report.found == sum(len(keys) for keys in union.values())
    for customer in batch:
        assert db.scalar("SELECT first_name FROM customers WHERE id = :c", c=customer) == "erased"
        assert (
            db.scalar("SELECT COUNT(*) FROM login_events WHERE customer_id = :c", c=customer) == 0
        )
    assert db.scalar("SELECT COUNT(*) FROM customers WHERE first_name = 'erased'") == len(batch)
    assert_foreign_keys_hold(db)


def test_dry_run_writes_nothing(shop: Datasets, db: Shop) -> None:
    before = db.everything()
    (dry,) = shop.erase(["email:customer-3@example.com"], dry_run=True)
    assert dry.changed > 0
    assert db.everything() == before


def test_rectify_a_phone(shop: Datasets, db: Shop) -> None:
    (report,) = shop.rectify(
        ["email:customer-5@example.com"], {"customers.phone": "+49 151 23456789"}
    )
    assert report.tables[0].updated == 1
    assert db.scalar("SELECT phone FROM customers WHERE id = 5") == "+4915123456789"


def assert_foreign_keys_hold(db: Shop) -> None:
    for table in schema.metadata.sorted_tables:
        for fk in table.foreign_keys:
            column, target = fk.parent.name, fk.column
            orphans = db.scalar(
                f"SELECT COUNT(*) FROM {table.name} c LEFT JOIN {target.table.name} p "
                f"ON c.{column} = p.{target.name} "
                f"WHERE c.{column} IS NOT NULL AND p.{target.name} IS NULL"
            )
            assert orphans == 0, f"{table.name}.{column} → {target.table.name}"
    assert (
        db.scalar(
            "SELECT COUNT(*) FROM login_events l LEFT JOIN customers c ON c.id = l.customer_id WHERE c.id IS NULL"
        )
        == 0
    )


def test_a_connection_the_server_dropped_is_replaced(shop: Datasets, shop_url: str) -> None:
    """The pool does not ping at checkout; a pooled connection the server has closed (a
    restart, an idle timeout) fails once, and the request runs again on a fresh one."""
    if shop_url.startswith("sqlite"):
        pytest.skip("SQLite has no server to drop a connection")
    pg = shop_url.startswith("postgresql")
    before = len(shop.find(["email:customer-1@example.com"])["shop"].tables["customers"].rows)
    engine = shop.engine("shop")
    with engine.connect() as conn:  # the pooled connection the next request would take
        me = "SELECT pg_backend_pid()" if pg else "SELECT CONNECTION_ID()"
        pid = int(conn.execute(sa.text(me)).scalar())
    killer = sa.create_engine(shop_url, poolclass=sa.NullPool)
    with killer.connect() as conn:
        kill = f"SELECT pg_terminate_backend({pid})" if pg else f"KILL {pid}"
        conn.execute(sa.text(kill))
    killer.dispose()
    found = shop.find(["email:customer-1@example.com"])["shop"]
    assert len(found.tables["customers"].rows) == before == 1
    (report,) = shop.erase(["email:customer-2@example.com"], dry_run=True)
    assert report.dry_run
