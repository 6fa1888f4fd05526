"""`lawful scan` on databases it has never seen: the sample shop, Northwind, Sakila, Chinook.

Each test loads a schema into a fresh database on a real server (or SQLite), scans it,
and checks the draft the way a user would: it loads, passes the live-schema checks
(`lawful dataset check`), finds the expected identity tables, and a find for a known
person reaches their rows in every table that holds them, counted with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from lawful.cli import app
from lawful.datasets import Datasets
from lawful.datasets.connect import ConnectError
from lawful.datasets.scan import scan_database
from lawful.subjects import Keyring

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas"
runner = CliRunner()


# --- helpers -------------------------------------------------------------------------------


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared sample schemas)")
    return path


def _client(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the {name} client is required under CI=true", pytrace=False)
        pytest.skip(f"the {name} client is not installed")
    return found


def load_sql(
    url: str, path: Path, *, drop: str = "", replace: dict[str, str] | None = None
) -> None:
    """Run a SQL file against `url` with the backend's own client (or sqlite3).

    `drop` is a regex of lines to leave out (CREATE DATABASE, USE, \\c: the fixtures
    already made the database); `replace` rewrites text (a schema name hard-coded in views).
    """
    text = path.read_text(encoding="utf-8-sig")
    if drop:
        text = "\n".join(line for line in text.splitlines() if not re.match(drop, line))
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        with sqlite3.connect(parsed.database) as db:
            db.executescript(text)
        return
    if backend == "postgresql":
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        cmd = [_client("psql"), "-v", "ON_ERROR_STOP=1", "-q", "-X", "-d", dsn]
    else:
        cmd = [
            _client("mariadb"),
            "-h", parsed.host or "127.0.0.1",
            "-P", str(parsed.port or 3306),
            "-u", parsed.username or "root",
            parsed.database or "",
        ]  # fmt: skip
        if parsed.password:
            cmd.insert(1, f"-p{parsed.password}")
    done = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def engine_for(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "mysql":
        parsed = parsed.set(drivername="mysql+pymysql")
    return sa.create_engine(parsed, poolclass=sa.NullPool)


_FILLERS: dict[type, Any] = {
    int: 0,
    float: 0.0,
    Decimal: Decimal(0),
    str: "x",
    bool: True,
    dt.datetime: dt.datetime(2020, 1, 1),
    dt.date: dt.date(2020, 1, 1),
}


def insert_rows(url: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Insert rows into reflected tables, foreign-key checks off (Sakila's store ⇄ staff).

    Columns a row leaves out that are NOT NULL without a default get a filler value.
    """
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET session_replication_role = replica")
            elif engine.dialect.name == "mysql":
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            meta = sa.MetaData()
            meta.reflect(conn, only=sorted({t for t, _ in rows}))
            for name, row in rows:
                table = meta.tables[name]
                values = {k: v for k, v in row.items() if k in table.c}
                for column in table.columns:
                    if column.name in values or column.nullable or column.server_default:
                        continue
                    try:
                        values[column.name] = _FILLERS.get(column.type.python_type, "x")
                    except NotImplementedError:
                        continue
                conn.execute(table.insert().values(**values))
    finally:
        engine.dispose()


def count(url: str, sql: str, **params: Any) -> int:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())
    finally:
        engine.dispose()


def row(url: str, sql: str) -> tuple[Any, ...]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(sql)).one())
    finally:
        engine.dispose()


def scan_to(url: str, tmp_path: Path, **options: Any) -> tuple[Path, str, str]:
    text, summary = scan_database(url, **options)
    path = tmp_path / "draft.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text, summary


def cli(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `lawful ARGS` in `cwd` (no policy.yaml there: the checks are the dataset's own)."""
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("LAWFUL_POLICY", raising=False)
    return runner.invoke(app, args)


def check_cli(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    result = cli(["dataset", "check", str(path)], path.parent, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "✓" in result.output
    return result.output


def identity_tables(datasets: Datasets) -> set[str]:
    (loaded,) = datasets.loaded.values()
    return {name for name, table in loaded.dataset.tables.items() if table.identities}


def found_rows(datasets: Datasets, identity: str) -> dict[str, dict[str, int]]:
    (found,) = datasets.find([identity]).values()
    return {name: t.counts() for name, t in found.tables.items() if t.rows}


def owned(datasets: Datasets, identity: str) -> dict[str, int]:
    return {k: v["owner"] for k, v in found_rows(datasets, identity).items() if v["owner"]}


# --- the sample shop, on every backend -------------------------------------------------------

# What each table holds of customer :c, in plain SQL (the README's "how it reaches the customer").
SHOP_ROWS = {
    "customers": "SELECT COUNT(*) FROM customers WHERE id = :c",
    "addresses": (
        "SELECT COUNT(*) FROM addresses WHERE id IN (SELECT address_id FROM customers WHERE id = :c)"
        " OR id IN (SELECT shipping_address_id FROM orders WHERE customer_id = :c)"
    ),
    "orders": "SELECT COUNT(*) FROM orders WHERE customer_id = :c",
    "order_items": (
        "SELECT COUNT(*) FROM order_items WHERE order_id IN "
        "(SELECT id FROM orders WHERE customer_id = :c)"
    ),
    "payments": (
        "SELECT COUNT(*) FROM payments WHERE order_id IN "
        "(SELECT id FROM orders WHERE customer_id = :c)"
    ),
    "tax_records": (
        "SELECT COUNT(*) FROM tax_records WHERE payment_id IN (SELECT p.id FROM payments p "
        "JOIN orders o ON o.id = p.order_id WHERE o.customer_id = :c)"
    ),
    "support_tickets": "SELECT COUNT(*) FROM support_tickets WHERE customer_id = :c",
    "ticket_messages": (
        "SELECT COUNT(*) FROM ticket_messages WHERE sender_customer_id = :c OR ticket_id IN "
        "(SELECT id FROM support_tickets WHERE customer_id = :c)"
    ),
    "login_events": "SELECT COUNT(*) FROM login_events WHERE customer_id = :c",
    "product_reviews": "SELECT COUNT(*) FROM product_reviews WHERE customer_id = :c",
    "newsletter_subscriptions": (
        "SELECT COUNT(*) FROM newsletter_subscriptions WHERE LOWER(email) = "
        "(SELECT LOWER(email) FROM customers WHERE id = :c)"
    ),
    "referrals": "SELECT COUNT(*) FROM referrals WHERE referrer_id = :c OR referred_id = :c",
}


def test_shop_draft_checks_and_finds_every_row(shop_url: str, tmp_path: Path) -> None:
    # The shop fixture sets SHOP_DATABASE_URL; the scan knows nothing of the shop.
    path, text, summary = scan_to(shop_url, tmp_path)
    assert re.match(r"^\d+ tables, \d+ with identities, \d+ links? to review", summary)
    assert "customer-7@example.com" not in text.lower()
    with Datasets.load([path]) as datasets:
        datasets.check()  # raises DatasetError on any error
        (loaded,) = datasets.loaded.values()
        tables = loaded.dataset.tables
        assert set(tables) == set(SHOP_ROWS) | {"agents"}  # products: no personal data
        assert {"customers", "newsletter_subscriptions", "agents"} == identity_tables(datasets)
        # login_events has no foreign key: only the name of its column links it.
        (link,) = tables["login_events"].owners
        assert (link.table, link.on) == ("customers", {"customer_id": "id"})
        assert "products" in text.split("tables:")[0]  # listed as holding no personal data

        # Customer 7, and the first customers with tickets, reviews, referrals, a newsletter.
        people = {7}
        people.add(count(shop_url, "SELECT MIN(customer_id) FROM support_tickets"))
        people.add(count(shop_url, "SELECT MIN(customer_id) FROM product_reviews"))
        people.add(count(shop_url, "SELECT MIN(referred_id) FROM referrals"))
        people.add(
            count(
                shop_url,
                "SELECT MIN(c.id) FROM customers c JOIN newsletter_subscriptions n "
                "ON LOWER(n.email) = LOWER(c.email)",
            )
        )
        for person in sorted(people):
            got = owned(datasets, f"email:customer-{person}@example.com")
            want = {t: count(shop_url, sql, c=person) for t, sql in SHOP_ROWS.items()}
            assert got == {t: n for t, n in want.items() if n}, f"customer {person}"
        for table in ("support_tickets", "ticket_messages", "product_reviews", "referrals"):
            assert any(  # every design case was exercised by one of the people above
                count(shop_url, SHOP_ROWS[table], c=p) for p in people
            ), table


def test_shop_draft_erases_without_breaking_a_constraint(shop_url: str, tmp_path: Path) -> None:
    path, _, _ = scan_to(shop_url, tmp_path)
    household, neighbour, address = row(
        shop_url,
        "SELECT MIN(a.id), MIN(b.id), MIN(a.address_id) FROM customers a JOIN customers b "
        "ON a.address_id = b.address_id AND a.id < b.id",
    )
    with Datasets.load([path], keyring=Keyring.generate()) as datasets:
        for person in (7, 12, household):
            (report,) = datasets.erase([f"email:customer-{person}@example.com"])
            assert report.changed > 0
            assert not owned(datasets, f"email:customer-{person}@example.com")
            assert count(shop_url, SHOP_ROWS["orders"], c=person) == 0
        # The household's address stays for the neighbour who lives there too.
        assert count(shop_url, "SELECT COUNT(*) FROM addresses WHERE id = :a", a=address) == 1
        assert row(shop_url, f"SELECT address_id FROM customers WHERE id = {neighbour}") == (
            address,
        )
        assert owned(datasets, f"email:customer-{neighbour}@example.com")["addresses"] >= 1


def test_scan_command_writes_a_draft_the_check_accepts(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples.shop.generate import generate

    generate(sqlite_url, 50, seed=1)
    out = tmp_path / "datasets" / "shop.yaml"
    result = cli(["scan", sqlite_url, "-o", str(out), "--name", "shop"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "links to review" in result.output or "link to review" in result.output
    assert out.exists()
    assert "dataset: shop" in out.read_text()
    assert "✓" in check_cli(out, monkeypatch)
    again = cli(["scan", sqlite_url, "-o", str(out)], tmp_path, monkeypatch)
    assert again.exit_code == 2 and "--force" in again.output
    forced = cli(
        ["scan", sqlite_url, "-o", str(out), "--force", "--url-env", "APP_DB"],
        tmp_path,
        monkeypatch,
    )
    assert forced.exit_code == 0, forced.output
    assert "url_env: APP_DB" in out.read_text()
    printed = cli(["scan", sqlite_url, "--sample", "0"], tmp_path, monkeypatch)
    assert printed.exit_code == 0 and "tables:" in printed.output


@pytest.mark.postgresql
def test_password_stays_out_of_the_draft(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples.shop.generate import generate

    generate(pg_url, 20, seed=0)
    # The test server trusts local connections: the password is sent and ignored.
    with_password = make_url(pg_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    for url in (with_password, f"{pg_url}?password=s3cret-pw"):
        path, text, _ = scan_to(url, tmp_path)
        assert "s3cret-pw" not in text
        assert "url_env: DATABASE_URL" in text
        monkeypatch.setenv("DATABASE_URL", pg_url)
        with Datasets.load([path]) as datasets:
            datasets.check()


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://scanner:s3cret-pw@127.0.0.1:1/app",  # nothing listens on port 1
        "mysql://scanner:s3cret-pw@127.0.0.1:1/app",
        "postgresql://scanner:s3cret-pw@127.0.0.1:notaport/app",  # malformed
        "not a url at all :s3cret-pw@",
        "nosuchdb://scanner:s3cret-pw@host/app",
    ],
)
def test_unreachable_or_malformed_url_is_a_clear_error(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConnectError) as caught:
        scan_database(url)
    assert "s3cret-pw" not in str(caught.value)
    result = cli(["scan", url, "-o", str(tmp_path / "d.yaml")], tmp_path, monkeypatch)
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert "s3cret-pw" not in result.output
    assert not (tmp_path / "d.yaml").exists()


def test_missing_sqlite_file_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(ConnectError, match="no SQLite database"):
        scan_database(f"sqlite:///{missing}")
    assert not missing.exists()


def test_a_database_without_tables_says_so(sqlite_url: str) -> None:
    sqlite3.connect(make_url(sqlite_url).database).close()
    with pytest.raises(ConnectError, match="no tables"):
        scan_database(sqlite_url)


# --- Northwind (PostgreSQL) --------------------------------------------------------------------


@pytest.mark.postgresql
def test_northwind(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_sql(pg_url, _need(SCHEMAS / "northwind" / "northwind.postgres.sql"))
    path, text, _ = scan_to(pg_url, tmp_path)
    check_cli(path, monkeypatch)
    assert "Maria Anders" not in text and "030-0074321" not in text
    with Datasets.load([path]) as datasets:
        datasets.check()
        # B2B contacts: customers (the main subject, by their key), employees, suppliers.
        assert identity_tables(datasets) == {"customers", "employees", "suppliers"}
        (loaded,) = datasets.loaded.values()
        tables = loaded.dataset.tables
        assert "products" not in tables and "categories" not in tables
        got = owned(datasets, "account:ALFKI")
        assert got == {
            "customers": 1,
            "orders": count(pg_url, "SELECT COUNT(*) FROM orders WHERE customer_id = 'ALFKI'"),
            "order_details": count(
                pg_url,
                "SELECT COUNT(*) FROM order_details d JOIN orders o ON o.order_id = d.order_id "
                "WHERE o.customer_id = 'ALFKI'",
            ),
        }
        # An employee's orders are the customers'; erasing the employee only unlinks them.
        orders = {link.table: link.role.value for link in tables["orders"].owners}
        assert orders == {"customers": "owner", "employees": "refers"}


# --- Sakila (MariaDB, PostgreSQL, SQLite; schema only: a few rows inserted) ----------------------

SAKILA_FILES = {
    "mysql": ("mysql-sakila-schema.sql", r"^(DROP SCHEMA|CREATE SCHEMA|USE )", {"sakila.": ""}),
    "postgresql": ("postgres-sakila-schema.sql", "", {}),
    "sqlite": ("sqlite-sakila-schema.sql", "", {}),
}
SAKILA_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("language", {"language_id": 1, "name": "English"}),
    ("country", {"country_id": 1, "country": "Testland"}),
    ("city", {"city_id": 1, "city": "Testville", "country_id": 1}),
    *[
        (
            "address",
            {
                "address_id": i,
                "address": f"{i} Test Street",
                "district": "North",
                "city_id": 1,
                "postal_code": f"1000{i}",
                "phone": f"+4930123456{i}",
            },
        )
        for i in range(1, 5)
    ],
    ("store", {"store_id": 1, "manager_staff_id": 1, "address_id": 1}),
    (
        "staff",
        {
            "staff_id": 1,
            "first_name": "Mike",
            "last_name": "Tester",
            "address_id": 2,
            "email": "mike.staff@example.org",
            "store_id": 1,
            "username": "mike",
        },
    ),
    *[
        (
            "customer",
            {
                "customer_id": i,
                "store_id": 1,
                "first_name": f"Ann{i}",
                "last_name": "Renter",
                "email": f"renter-{i}@example.org",
                "address_id": 2 + i,
                "create_date": dt.datetime(2020, 1, 1),
            },
        )
        for i in (1, 2)
    ],
    *[("inventory", {"inventory_id": i, "film_id": 1, "store_id": 1}) for i in (1, 2)],
    *[
        (
            "rental",
            {
                "rental_id": i,
                "rental_date": dt.datetime(2020, 1, i),
                "inventory_id": 1 + i % 2,
                "customer_id": 1 if i <= 3 else 2,
                "staff_id": 1,
            },
        )
        for i in range(1, 5)
    ],
    *[
        (
            "payment",
            {
                "payment_id": i,
                "customer_id": 1 if i <= 3 else 2,
                "staff_id": 1,
                "rental_id": i,
                "amount": Decimal("2.99"),
                "payment_date": dt.datetime(2020, 1, i),  # outside PostgreSQL's 2007 partitions
            },
        )
        for i in range(1, 5)
    ],
]


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_sakila(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = request.getfixturevalue(
        {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[backend]
    )
    file, drop, replace = SAKILA_FILES[backend]
    load_sql(url, _need(SCHEMAS / "sakila" / file), drop=drop, replace=replace)
    insert_rows(url, SAKILA_ROWS)
    path, text, _ = scan_to(url, tmp_path)
    check_cli(path, monkeypatch)
    assert "renter-1@example.org" not in text and "Test Street" not in text
    with Datasets.load([path]) as datasets:
        datasets.check()
        assert identity_tables(datasets) == {"customer", "staff"}
        (loaded,) = datasets.loaded.values()
        tables = loaded.dataset.tables
        for thing in ("film", "inventory", "store", "city", "country", "language", "category"):
            assert thing not in tables  # no personal data: erasure never touches them
        got = owned(datasets, "email:renter-1@example.org")
        assert got == {"customer": 1, "address": 1, "rental": 3, "payment": 3}
        # The staff member's rentals are the customers'; theirs only to be unlinked from.
        staff = found_rows(datasets, "email:mike.staff@example.org")
        assert staff["staff"]["owner"] == 1 and staff["address"]["owner"] == 1
        assert staff["rental"] == {"owner": 0, "accessor": 0, "refers": 4}
        # A store (not annotated) points at addresses and its manager: they are anonymized.
        assert tables["address"].erase.value == "anonymize"
        assert tables["staff"].erase.value == "anonymize"
        assert tables["customer"].erase.value == "delete"


# --- Chinook (SQLite with its data; MariaDB and PostgreSQL schema only) ---------------------------


def chinook(name: str, snake: bool) -> str:
    """Chinook's MySQL and SQLite names are CamelCase, its PostgreSQL names snake_case."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower() if snake else name


def _chinook_rows(snake: bool) -> list[tuple[str, dict[str, Any]]]:
    def name(camel: str) -> str:
        return chinook(camel, snake)

    rows: list[tuple[str, dict[str, Any]]] = [
        ("Genre", {"GenreId": 1, "Name": "Rock"}),
        ("MediaType", {"MediaTypeId": 1, "Name": "MPEG audio file"}),
        ("Artist", {"ArtistId": 1, "Name": "A Band"}),
        ("Album", {"AlbumId": 1, "Title": "First", "ArtistId": 1}),
        *[
            (
                "Track",
                {
                    "TrackId": i,
                    "Name": f"Song {i}",
                    "AlbumId": 1,
                    "MediaTypeId": 1,
                    "GenreId": 1,
                    "Milliseconds": 1000,
                    "UnitPrice": Decimal("0.99"),
                },
            )
            for i in (1, 2)
        ],
        *[
            (
                "Employee",
                {
                    "EmployeeId": i,
                    "LastName": f"Boss{i}",
                    "FirstName": "Eve",
                    "Title": "Manager",
                    "ReportsTo": None if i == 1 else 1,
                    "BirthDate": dt.datetime(1970 + i, 1, 1),
                    "Address": f"{i} Office Road",
                    "City": "Calgary",
                    "Country": "Canada",
                    "Phone": f"+1 (403) 262-344{i}",
                    "Email": f"eve{i}@staff.example.org",
                },
            )
            for i in (1, 2)
        ],
        *[
            (
                "Customer",
                {
                    "CustomerId": i,
                    "FirstName": f"Cam{i}",
                    "LastName": "Listener",
                    "Address": f"{i} Music Lane",
                    "City": "Lisbon",
                    "Country": "Portugal",
                    "Phone": f"+351 (21) 555-01{i}0",
                    "Email": f"listener-{i}@example.org",
                    "SupportRepId": 2 if i < 3 else 1,
                },
            )
            for i in (1, 2, 3)
        ],
        *[
            (
                "Invoice",
                {
                    "InvoiceId": i,
                    "CustomerId": 1 if i < 3 else 2,
                    "InvoiceDate": dt.datetime(2021, 1, i),
                    "BillingCity": "Lisbon",
                    "Total": Decimal("1.98"),
                },
            )
            for i in (1, 2, 3)
        ],
        *[
            (
                "InvoiceLine",
                {
                    "InvoiceLineId": i,
                    "InvoiceId": (1, 1, 2, 3)[i - 1],
                    "TrackId": 1 + i % 2,
                    "UnitPrice": Decimal("0.99"),
                    "Quantity": 1,
                },
            )
            for i in (1, 2, 3, 4)
        ],
    ]
    return [(name(t), {name(k): v for k, v in row.items()}) for t, row in rows]


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_chinook(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = request.getfixturevalue(
        {"sqlite": "sqlite_url", "postgresql": "pg_url", "mysql": "mysql_url"}[backend]
    )
    folder = SCHEMAS / "chinook"
    snake = backend == "postgresql"
    if backend == "sqlite":
        load_sql(url, _need(folder / "Chinook_Sqlite.sql"))
        email = "luisg@embraer.com.br"  # customer 1 of Chinook's own data
    else:
        file = "Chinook_PostgreSql.schema-only.sql" if snake else "Chinook_MySql.schema-only.sql"
        load_sql(url, _need(folder / file), drop=r"^(DROP DATABASE|CREATE DATABASE|USE |\\c)")
        insert_rows(url, _chinook_rows(snake))
        email = "listener-1@example.org"
    names = "Customer Employee Invoice InvoiceLine CustomerId InvoiceId SupportRepId Email"
    t = {name: chinook(name, snake) for name in [*names.split(), "EmployeeId"]}
    path, text, _ = scan_to(url, tmp_path)
    check_cli(path, monkeypatch)
    assert email not in text
    with Datasets.load([path]) as datasets:
        datasets.check()
        assert identity_tables(datasets) == {t["Customer"], t["Employee"]}
        customer = count(
            url, f"SELECT {t['CustomerId']} FROM {t['Customer']} WHERE {t['Email']} = :e", e=email
        )
        invoices = (
            f"SELECT {t['InvoiceId']} FROM {t['Invoice']} WHERE {t['CustomerId']} = {customer}"
        )
        got = owned(datasets, f"email:{email}")
        assert got == {
            t["Customer"]: 1,
            t["Invoice"]: count(url, f"SELECT COUNT(*) FROM ({invoices}) i"),
            t["InvoiceLine"]: count(
                url,
                f"SELECT COUNT(*) FROM {t['InvoiceLine']} WHERE {t['InvoiceId']} IN ({invoices})",
            ),
        }
        assert got[t["InvoiceLine"]] > 0
        # The support rep: their own row, and the customers they look after as `refers`.
        rep = count(
            url, f"SELECT {t['SupportRepId']} FROM {t['Customer']} WHERE {t['Email']} = :e", e=email
        )
        (rep_email,) = row(
            url, f"SELECT {t['Email']} FROM {t['Employee']} WHERE {t['EmployeeId']} = {rep}"
        )
        rows = found_rows(datasets, f"email:{rep_email}")
        assert rows[t["Employee"]]["owner"] == 1
        assert rows[t["Customer"]]["refers"] == count(
            url, f"SELECT COUNT(*) FROM {t['Customer']} WHERE {t['SupportRepId']} = {rep}"
        )
        assert t["Invoice"] not in rows  # what hangs off others' rows is not the rep's


def test_draft_is_plain_yaml_with_comments(sqlite_url: str, tmp_path: Path) -> None:
    from examples.shop.generate import generate

    generate(sqlite_url, 30, seed=2)
    _, text, _ = scan_to(sqlite_url, tmp_path, name="shop_copy")
    data = yaml.safe_load(text)
    assert data["dataset"] == "shop_copy"
    assert data["connection"] == {"url": sqlite_url}
    assert text.count("# review") >= 3


# --- a schema without a single foreign key -------------------------------------------------------

NO_FOREIGN_KEYS = """
CREATE TABLE Person (PersonId INTEGER PRIMARY KEY, Email VARCHAR(100) NOT NULL,
                     FullName VARCHAR(100) NOT NULL, Mobile VARCHAR(30));
CREATE TABLE person_notes (id INTEGER PRIMARY KEY, personid INTEGER NOT NULL, body TEXT);
CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, PersonId INTEGER, Total NUMERIC(10, 2),
                     PlacedAt TIMESTAMP);
CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
                          category_id INTEGER, quantity INTEGER);
CREATE TABLE categories (id INTEGER PRIMARY KEY, name VARCHAR(40));
CREATE TABLE user (id INTEGER PRIMARY KEY, login_email VARCHAR(100), handle VARCHAR(30));
CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER, ip VARCHAR(45),
                       created_by_user_id INTEGER);
"""


def test_links_come_from_names_when_no_foreign_key_is_declared(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite3.connect(make_url(sqlite_url).database) as db:
        db.executescript(NO_FOREIGN_KEYS)
        for i in range(1, 6):
            db.execute(
                "INSERT INTO Person VALUES (?, ?, ?, ?)",
                (i, f"person-{i}@example.net", f"Pat Doe{i}", f"+44 20 7946 09{i:02}"),
            )
            db.execute("INSERT INTO person_notes VALUES (?, ?, 'a note')", (i, i))
            db.execute("INSERT INTO Orders VALUES (?, ?, 10, '2024-01-01')", (i, 1 + i % 2))
            db.execute("INSERT INTO order_lines VALUES (?, ?, 1, 2)", (i, i))
            db.execute("INSERT INTO user VALUES (?, ?, ?)", (i, f"u{i}@example.net", f"u{i}"))
            db.execute("INSERT INTO sessions VALUES (?, ?, '192.0.2.1', 1)", (i, i))
        db.execute("INSERT INTO categories VALUES (1, 'Books')")
    path, text, summary = scan_to(sqlite_url, tmp_path)
    check_cli(path, monkeypatch)
    assert "person-2@example.net" not in text and "192.0.2.1" not in text
    with Datasets.load([path]) as datasets:
        (loaded,) = datasets.loaded.values()
        tables = loaded.dataset.tables
        links = {
            name: {(link.table, tuple(link.on.items()), link.role.value) for link in t.owners}
            for name, t in tables.items()
        }
        assert links["person_notes"] == {("Person", (("personid", "PersonId"),), "owner")}
        assert links["Orders"] == {("Person", (("PersonId", "PersonId"),), "owner")}
        assert links["order_lines"] == {("Orders", (("order_id", "OrderId"),), "owner")}
        # created_by names who acted on the row: erasing them unlinks it, never deletes it.
        assert links["sessions"] == {
            ("user", (("user_id", "id"),), "owner"),
            ("user", (("created_by_user_id", "id"),), "refers"),
        }
        assert "categories" not in tables
        assert identity_tables(datasets) == {"Person", "user"}
        assert int(summary.split(" links")[0].split(", ")[-1]) >= 5  # every link is a guess
        assert owned(datasets, "email:person-2@example.net") == {
            "Person": 1,
            "person_notes": 1,
            "Orders": 3,  # orders 1, 3 and 5
            "order_lines": 3,
        }
        assert owned(datasets, "email:u3@example.net") == {"user": 1, "sessions": 1}


@pytest.mark.postgresql
def test_a_named_schema(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = engine_for(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA crm")
        conn.exec_driver_sql(
            "CREATE TABLE crm.members (id serial PRIMARY KEY, email text NOT NULL UNIQUE, "
            "first_name text NOT NULL)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE crm.visits (id serial PRIMARY KEY, "
            "member_id int NOT NULL REFERENCES crm.members (id), at timestamptz)"
        )
        conn.exec_driver_sql("CREATE TABLE public.other (id int PRIMARY KEY)")
        conn.exec_driver_sql(
            "INSERT INTO crm.members (email, first_name) VALUES ('m1@example.net', 'Mo'), "
            "('m2@example.net', 'Al')"
        )
        conn.exec_driver_sql("INSERT INTO crm.visits (member_id) VALUES (1), (1), (2)")
    engine.dispose()
    path, text, _ = scan_to(pg_url, tmp_path, schema="crm", url_env="CRM_URL")
    assert "schema: crm" in text and "url_env: CRM_URL" in text
    assert "other" not in text.split("tables:")[1]
    monkeypatch.setenv("CRM_URL", pg_url)
    check_cli(path, monkeypatch)
    with Datasets.load([path], keyring=Keyring.generate()) as datasets:
        assert owned(datasets, "email:m1@example.net") == {"members": 1, "visits": 2}
        (report,) = datasets.erase(["email:m1@example.net"])
        assert report.changed == 3
    assert count(pg_url, "SELECT COUNT(*) FROM crm.visits") == 1
