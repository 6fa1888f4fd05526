"""Fides datasets imported as lawful annotations, then run on the databases they describe.

Fides' own PostgreSQL and MariaDB examples and the peer-comparison shop are loaded into
fresh databases on the real servers; each Fides dataset is converted, checked against
the live schema, and a subject is found and erased. The results are compared with plain
SQL against what the annotations imply: every row that changed, and how.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from lawful.cli import app
from lawful.datasets import DatasetError, Datasets, load_dataset, load_dataset_text
from lawful.datasets.fides import (
    LiveColumn,
    LiveSchema,
    LiveTable,
    convert_fides,
    convert_fides_file,
    read_fides_file,
)
from lawful.subjects import Keyring

HERE = Path(__file__).resolve().parent / "fides"
PG_DATASET = HERE / "postgres_example_test_dataset.yml"
MARIADB_DATASET = HERE / "mariadb_example_test_dataset.yml"
OVERRIDE_DATASET = HERE / "example_field_masking_override_test_dataset.yml"
SHOP_DATASET = HERE / "peer_shop_dataset.yml"
CUSTOMER = "email:customer-1@example.com"

Row = dict[str, Any]
Snapshot = dict[str, dict[tuple[Any, ...], Row]]


# --- loading the sample databases with their own clients ------------------------------------


def _client(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"the {name} client is needed to load the sample database"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def psql(url: str, script: Path, **variables: str) -> None:
    """Run `script` with psql (it may use psql variables) in the database at `url`."""
    target = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    args = [_client("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", str(script)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    _run(args)


def _run(args: list[str], script: str | None = None) -> None:
    done = subprocess.run(args, input=script, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{Path(args[0]).name} failed: {done.stderr.strip()}", pytrace=False)


# The MariaDB scripts first create their own user and database; the tests load the tables
# into the fresh database of the fixture instead.
_SERVER_STATEMENT = re.compile(r"^\s*(CREATE USER|GRANT|FLUSH|CREATE DATABASE|USE)\b", re.I)


def mariadb(url: str, *scripts: Path) -> None:
    parsed = make_url(url)
    statements = [
        statement
        for script in scripts
        for statement in script.read_text(encoding="utf-8").split(";\n")
        if statement.strip() and not _SERVER_STATEMENT.match(statement)
    ]
    args = [
        _client("mariadb"),
        "-h",
        parsed.host or "127.0.0.1",
        "-P",
        str(parsed.port or 3306),
        "-u",
        parsed.username or "root",
    ]
    if parsed.password:
        args.append(f"-p{parsed.password}")
    args.append(str(parsed.database))
    script = ";\n".join(statements) + ";\n"
    _run(args, script)


# --- reading the databases with plain SQL -----------------------------------------------------


def snapshot(url: str) -> Snapshot:
    """Every row of every table of the default schema, by primary key (or whole row)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            metadata = sa.MetaData()
            metadata.reflect(conn)
            out: Snapshot = {}
            for name, table in metadata.tables.items():
                key = inspector.get_pk_constraint(name)["constrained_columns"]
                rows = {}
                for row in conn.execute(sa.select(table)).mappings():
                    data = dict(row)
                    rows[tuple(data[c] for c in key) if key else tuple(data.values())] = data
                out[name] = rows
            return out
    finally:
        engine.dispose()


def changes(before: Snapshot, after: Snapshot) -> dict[str, dict[tuple[Any, ...], Any]]:
    """Per table: changed rows as {key: {column: new value}}, deleted rows as {key: None}."""
    out: dict[str, dict[tuple[Any, ...], Any]] = {}
    for table, rows in before.items():
        diff: dict[tuple[Any, ...], Any] = {}
        for key, row in rows.items():
            new = after[table].get(key)
            if new is None:
                diff[key] = None
            elif new != row:
                diff[key] = {c: v for c, v in new.items() if row[c] != v}
        assert set(after[table]) <= set(rows), f"rows appeared in {table}"
        if diff:
            out[table] = diff
    return out


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def keys(found: Any, table: str) -> set[tuple[Any, ...]]:
    return set(found.tables[table].rows)


def ids(rows: Iterable[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    return {tuple(r) for r in rows}


def converted(tmp_path: Path, fides: Path, url: str, name: str = "dataset.yaml") -> Path:
    text, summary = convert_fides_file(fides, url=url)
    assert "fitted to the live schema" in summary, summary
    out = tmp_path / name
    out.write_text(text, encoding="utf-8")
    return out


def outcomes(report: Any) -> dict[str, Any]:
    return {t.table: t for t in report.tables}


# --- 1. Fides' PostgreSQL example ------------------------------------------------------------


@pytest.mark.postgresql
def test_postgres_example_access_and_erasure(pg_url: str, tmp_path: Path) -> None:
    psql(pg_url, HERE / "postgres_sample.sql")
    annotation = converted(tmp_path, PG_DATASET, pg_url)
    text = annotation.read_text()
    # visit's key (email, last_visit) holds the email: its rows are deleted, not masked.
    assert "visit:\n" in text and "erase: delete  # the key holds personal data" in text
    assert 'name: {category: user.name, erase: {fixed: "testing-test"}}' in text

    with Datasets.load([annotation], keyring=Keyring.generate()) as datasets:
        datasets.check()  # raises on any error against the live schema
        key = "postgres_example_test_dataset"
        found = datasets.find([CUSTOMER])[key]
        # What the annotations imply, in plain SQL: the customer by email; their address
        # (customer.address_id, direction to); orders, login, payment cards (from customer);
        # order items (from orders); the addresses orders ship to and cards bill to; the
        # products of the items (order_item.product_id, direction to); visit and
        # service_request rows by email identity.
        sql = {
            "customer": "SELECT id FROM customer WHERE email = 'customer-1@example.com'",
            "orders": "SELECT id FROM orders WHERE customer_id = 1",
            "order_item": "SELECT order_id, item_no FROM order_item WHERE order_id IN "
            "(SELECT id FROM orders WHERE customer_id = 1)",
            "payment_card": "SELECT id FROM payment_card WHERE customer_id = 1",
            "login": "SELECT id FROM login WHERE customer_id = 1",
            "address": "SELECT id FROM address WHERE id IN (SELECT address_id FROM customer "
            "WHERE id = 1 UNION SELECT shipping_address_id FROM orders WHERE customer_id = 1 "
            "UNION SELECT billing_address_id FROM payment_card WHERE customer_id = 1)",
            "product": "SELECT id FROM product WHERE id IN (SELECT product_id FROM order_item "
            "WHERE order_id IN (SELECT id FROM orders WHERE customer_id = 1))",
            "visit": "SELECT email, last_visit FROM visit WHERE email = 'customer-1@example.com'",
            "service_request": "SELECT id FROM service_request WHERE email = "
            "'customer-1@example.com' OR alt_email = 'customer-1@example.com'",
        }
        for table, statement in sql.items():
            assert keys(found, table) == ids(query(pg_url, statement)), table
        counts = {name: len(t.rows) for name, t in found.tables.items()}
        assert counts == {
            "address": 2,
            "customer": 1,
            "employee": 0,
            "login": 6,
            "orders": 3,
            "order_item": 4,
            "payment_card": 1,
            "product": 2,
            "report": 0,
            "service_request": 1,
            "visit": 1,
        }
        access = {t.table: t for t in datasets.access([CUSTOMER])[0].tables}
        assert access["customer"].rows[0]["data"] == {
            "email": "customer-1@example.com",
            "id": 1,
            "name": "John Customer",
        }
        assert access["payment_card"].columns["ccn"] == "user.financial.bank_account"

        before = snapshot(pg_url)
        (report,) = datasets.erase([CUSTOMER])
        after = snapshot(pg_url)
        assert changes(before, after) == {
            # Personal columns set NULL; the key and address_id (a link) kept.
            "customer": {(1,): {"email": None, "name": None}},
            "payment_card": {
                ("pay_aaa-aaa",): {"name": None, "ccn": None, "code": None, "preferred": None}
            },
            "login": {(i,): {"time": None} for i in range(1, 7)},
            # visit's key holds the email: the row is deleted.
            "visit": {(email, at): None for email, at in keys(found, "visit")},
            # ser_aaa is employee 1's too (employee_id): kept for them, but it loses the
            # customer's identities, the email it was found by and the other on it.
            "service_request": {("ser_aaa-aaa",): {"email": None, "alt_email": None}},
        }
        by_table = outcomes(report)
        # Addresses 1 and 2 are customer 2's too (their home, their card's and order's
        # address): kept for them. ser_aaa is employee 1's too: released, not deleted.
        assert (by_table["address"].found, by_table["address"].kept) == (2, 2)
        assert any("shared with other subjects" in r for r in by_table["address"].reasons)
        service = by_table["service_request"]
        assert (service.found, service.unlinked, service.deleted) == (1, 1, 0)
        assert (by_table["customer"].anonymized, by_table["visit"].deleted) == (1, 1)
        assert by_table["login"].anonymized == 6

        (again,) = datasets.erase([CUSTOMER])
        assert again.changed == 0
        assert snapshot(pg_url) == after


@pytest.mark.postgresql
def test_postgres_example_employee_string_rewrite(pg_url: str, tmp_path: Path) -> None:
    psql(pg_url, HERE / "postgres_sample.sql")
    annotation = converted(tmp_path, PG_DATASET, pg_url)
    with Datasets.load([annotation], keyring=Keyring.generate()) as datasets:
        before = snapshot(pg_url)
        (report,) = datasets.erase(["email:employee-1@example.com"])
        after = snapshot(pg_url)
    # The employee's name is rewritten as the override says ('testing' + suffix '-test').
    # The service requests they handled are theirs (service_request.employee_id, from), but
    # each holds a customer's email too: the customers' as well, so they stay, released
    # from the employee (employee_id set NULL) where Fides would null their alt_email.
    assert changes(before, after) == {
        "employee": {(1,): {"email": None, "name": "testing-test"}},
        "service_request": {
            (key,): {"employee_id": None} for key in ("ser_aaa-aaa", "ser_bbb-bbb", "ser_ccc-ccc")
        },
    }
    by_table = outcomes(report)
    assert (by_table["service_request"].found, by_table["service_request"].unlinked) == (3, 3)
    assert (by_table["address"].found, by_table["address"].kept) == (1, 1)


# --- 2. Fides' MariaDB example -------------------------------------------------------------


@pytest.mark.mysql
def test_mariadb_example_access_and_erasure(mysql_url: str, tmp_path: Path) -> None:
    mariadb(mysql_url, HERE / "mariadb_example_schema.sql", HERE / "mariadb_example_data.sql")
    annotation = converted(tmp_path, MARIADB_DATASET, mysql_url)
    text = annotation.read_text()
    # Neither Fides nor the database names a key for visit and order_item: all their
    # columns are the key; visit's holds the email, so its rows are deleted.
    assert "primary_key: [email, last_visit]\n" in text
    assert "primary_key: [order_id, item_no, product_id, quantity]\n" in text
    assert "# no primary key or unique index in the database: all the columns together" in text

    with Datasets.load([annotation], keyring=Keyring.generate()) as datasets:
        datasets.check()
        found = datasets.find([CUSTOMER])["mariadb_example_test_dataset"]
        sql = {
            "customer": "SELECT id FROM customer WHERE email = 'customer-1@example.com'",
            "orders": "SELECT id FROM orders WHERE customer_id = 1",
            "order_item": "SELECT order_id, item_no, product_id, quantity FROM order_item "
            "WHERE order_id IN (SELECT id FROM orders WHERE customer_id = 1)",
            "payment_card": "SELECT id FROM payment_card WHERE customer_id = 1",
            "login": "SELECT id FROM login WHERE customer_id = 1",
            "address": "SELECT id FROM address WHERE id IN (1, 2)",
            "visit": "SELECT email, last_visit FROM visit WHERE email = 'customer-1@example.com'",
            "service_request": "SELECT id FROM service_request WHERE id = 'ser_aaa-aaa'",
        }
        for table, statement in sql.items():
            assert keys(found, table) == ids(query(mysql_url, statement)), table
        assert len(found.tables["order_item"].rows) == 4
        assert len(found.tables["login"].rows) == 6

        before = snapshot(mysql_url)
        (report,) = datasets.erase([CUSTOMER])
        after = snapshot(mysql_url)
        visit_key = next(iter(keys(found, "visit")))
        whole_row = tuple(before["visit"][visit_key].values())
        assert changes(before, after) == {
            "customer": {(1,): {"email": None, "name": None}},
            "payment_card": {
                ("pay_aaa-aaa",): {"name": None, "ccn": None, "code": None, "preferred": None}
            },
            "login": {(i,): {"time": None} for i in range(1, 7)},
            "visit": {whole_row: None},
            "service_request": {("ser_aaa-aaa",): {"email": None, "alt_email": None}},
        }
        by_table = outcomes(report)
        assert (by_table["address"].found, by_table["address"].kept) == (2, 2)
        (again,) = datasets.erase([CUSTOMER])
        assert again.changed == 0


# --- 3. The peer-comparison shop ------------------------------------------------------------


@pytest.mark.postgresql
def test_peer_shop(pg_url: str, tmp_path: Path) -> None:
    psql(pg_url, HERE / "peer_shop_appdb.sql", customers="200")
    annotation = converted(tmp_path, SHOP_DATASET, pg_url)
    text = annotation.read_text()
    # orders.total is NOT NULL: Fides' null_rewrite can't be written there.
    assert "total: {category: user.behavior.purchase_history, erase: {fixed: 0}}" in text
    assert (
        'created_at: {category: user.behavior.purchase_history, erase: {fixed: "1970-01-01T00:00:00+00:00"}}'
        in text
    )

    with Datasets.load([annotation], keyring=Keyring.generate()) as datasets:
        assert datasets.check() is not None  # the erasure actions fit the live schema
        found = datasets.find([CUSTOMER])["shop_appdb"]
        counts = {name: len(t.rows) for name, t in found.tables.items()}
        assert counts == {
            "customers": 1,
            "addresses": 1,
            "orders": 5,
            "order_items": 15,
            "login_events": 20,
            "newsletter_subscriptions": 1,
        }
        before = snapshot(pg_url)
        (report,) = datasets.erase([CUSTOMER])
        after = snapshot(pg_url)
        (again,) = datasets.erase([CUSTOMER])
    assert again.changed == 0
    diff = changes(before, after)
    assert set(diff) == set(counts)  # products, and every other customer's rows, untouched
    assert diff["customers"] == {
        (1,): {"email": None, "name": None, "phone": None, "birth_date": None}
    }
    assert diff["addresses"] == {
        (1,): {"street": None, "city": None, "state": None, "postal_code": None, "country": None}
    }
    epoch = query(pg_url, "SELECT timestamptz '1970-01-01 00:00:00+00'")[0][0]
    assert diff["orders"] == {(i,): {"total": 0, "created_at": epoch} for i in range(1, 6)}
    assert set(diff["order_items"]) == {(i,) for i in range(1, 16)}
    assert diff["order_items"][(10,)] == {"quantity": 0, "unit_price": 0, "gift_message": None}
    assert set(diff["login_events"]) == {(i,) for i in range(1, 21)}
    assert diff["login_events"][(1,)] == {"ip_address": None, "user_agent": None}
    assert diff["newsletter_subscriptions"] == {(1,): {"email": None}}
    assert report.changed == 1 + 1 + 5 + 15 + 20 + 1


# --- 4. Bad Fides files ----------------------------------------------------------------------

GOOD = """\
dataset:
  - fides_key: app
    collections:
      - name: users
        fields:
          - name: id
            data_categories: [user.unique_id]
            fides_meta: {primary_key: true}
          - name: email
            data_categories: [user.contact.email]
            fides_meta: {identity: email}
      - name: posts
        fields:
          - name: id
            fides_meta: {primary_key: true}
          - name: author_id
            fides_meta:
              references:
                - {dataset: app, field: users.id, direction: from}
          - name: body
            data_categories: [user.content]
"""

BAD = [
    pytest.param(
        "dataset:\n  - fides_key: app\n    collections: [{name: users\n",
        "malformed YAML",
        4,
        id="not YAML",
    ),
    pytest.param(
        "collections:\n  - name: users\n",
        "no `dataset:` key; put the dataset in a list under `dataset:`",
        1,
        id="no dataset key",
    ),
    pytest.param(
        GOOD.replace(
            "      - name: posts\n        fields:",
            "      - name: posts\n        fields: []\n        ignored:",
        ),
        "collection 'posts' has no fields: list its columns under fields",
        13,
        id="collection without fields",
    ),
    pytest.param(
        GOOD.replace("field: users.id", "field: user.id"),
        "'posts.author_id' references collection 'user', which the dataset does not have; "
        "did you mean 'users'?",
        19,
        id="reference to an unknown collection",
    ),
    pytest.param(
        GOOD.replace(
            "          - name: body\n            data_categories: [user.content]",
            "          - name: body\n            fields:\n              - name: text\n"
            "                data_categories: [user.content]",
        ),
        "'posts.body' has nested fields (posts.body.text): lawful annotates whole columns",
        20,
        id="nested fields",
    ),
    pytest.param(
        GOOD.replace("direction: from", "direction: form"),
        "'form' is not a reference direction; did you mean 'from'?",
        19,
        id="unknown direction",
    ),
    pytest.param(
        GOOD.replace(", direction: from", ""),
        "the reference of 'posts.author_id' to users.id has no direction",
        19,
        id="no direction",
    ),
    pytest.param(
        GOOD + "  - fides_key: other\n    collections: []\n",
        "the file holds 2 datasets (app, other)",
        2,
        id="several datasets",
    ),
    pytest.param(
        GOOD.replace("field: users.id", "field: users.uid"),
        "collection 'users' has no field 'uid'; did you mean 'id'?",
        19,
        id="reference to an unknown field",
    ),
    pytest.param(
        GOOD.replace("fides_meta: {identity: email}", "fides_meta: {}").replace(
            "- {dataset: app, field: users.id, direction: from}",
            "- {dataset: app, field: users.id, direction: to}",
        ),
        "no path leads to collection 'posts'",
        12,
        id="unreachable collection",
    ),
]


@pytest.mark.parametrize(("text", "message", "line"), BAD)
def test_bad_fides_files(tmp_path: Path, text: str, message: str, line: int) -> None:
    path = tmp_path / "fides.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        convert_fides_file(path)
    errors = caught.value.errors
    assert any(message in p.message for p in errors), [str(p) for p in errors]
    problem = next(p for p in errors if message in p.message)
    assert (problem.file, problem.line) == (str(path), line), str(problem)
    assert problem.column is not None
    assert str(problem).startswith(f"{path}:{line}:")


def test_good_file_converts_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "fides.yml"
    path.write_text(GOOD, encoding="utf-8")
    text, summary = convert_fides_file(path, url_env="APP_DB")
    loaded = load_dataset_text(text)
    posts = loaded.dataset.tables["posts"]
    assert [(o.table, o.on) for o in posts.owners] == [("users", {"author_id": "id"})]
    assert posts.erase.value == "anonymize"
    assert posts.columns["body"].erase.value == "null"
    assert "author_id" not in posts.columns  # no category: nothing personal to annotate
    assert loaded.dataset.connection.url_env == "APP_DB"
    assert summary.startswith("dataset app: 2 tables, 1 links, 1 identity columns")


def test_nested_fields_of_fides_override_example_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        convert_fides_file(OVERRIDE_DATASET)
    (problem,) = caught.value.errors
    assert (
        "'customer.address' has nested fields (customer.address.city, customer.address.house"
        in (problem.message)
    )
    assert problem.line == 54


def test_other_dataset_reference_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "fides.yml"
    path.write_text(
        GOOD.replace(
            "          - name: body\n",
            "          - name: account_id\n            data_categories: [user.unique_id]\n"
            "            fides_meta:\n              references:\n"
            "                - {dataset: billing, field: accounts.id, direction: from}\n"
            "          - name: body\n",
        ),
        encoding="utf-8",
    )
    conversion = read_fides_file(path)
    (warning,) = conversion.warnings
    assert "references accounts.id in another dataset (billing)" in warning.message
    assert warning.line == 24
    assert "another dataset (billing)" in conversion.text  # listed in the header too
    posts = load_dataset_text(conversion.text).dataset.tables["posts"]
    assert len(posts.owners) == 1


def test_several_datasets_choose_one(tmp_path: Path) -> None:
    path = tmp_path / "fides.yml"
    other = GOOD.replace("dataset:\n  - fides_key: app", "  - fides_key: other").replace(
        "dataset: app,", "dataset: other,"
    )
    path.write_text(GOOD + other, encoding="utf-8")
    text, _ = convert_fides_file(path, dataset="other")
    assert load_dataset_text(text).dataset.dataset == "other"
    with pytest.raises(DatasetError, match="no dataset with fides_key 'appp'; did you mean 'app'"):
        convert_fides_file(path, dataset="appp")


# --- the pure conversion and the live schema's NOT NULL columns ----------------------------


def _column(name: str, type_name: str, family: str | None, **kw: Any) -> LiveColumn:
    return LiveColumn(
        name,
        type_name,
        kw.pop("nullable", False),
        family,
        kw.pop("length", None),
        kw.pop("time_kind", None),
        **kw,
    )


def test_not_null_columns_get_a_fitting_mask() -> None:
    data = {
        "dataset": [
            {
                "fides_key": "Billing-DB",
                "collections": [
                    {
                        "name": "accounts",
                        "fields": [
                            {"name": "id", "data_categories": ["user.unique_id"]},
                            {
                                "name": "email",
                                "data_categories": ["user.contact.email"],
                                "fides_meta": {"identity": "email"},
                            },
                            {"name": "nick", "data_categories": ["user.name"]},
                            {
                                "name": "code",
                                "data_categories": ["user.name"],
                                "fides_meta": {"masking_strategy_override": {"strategy": "hash"}},
                            },
                            {"name": "amount", "data_categories": ["user.financial"]},
                            {"name": "born", "data_categories": ["user.demographic.date_of_birth"]},
                            {
                                "name": "seen",
                                "data_categories": ["system.operations", "user.behavior"],
                            },
                            {"name": "vip", "data_categories": ["user"]},
                            {"name": "note", "data_categories": ["user.content.private"]},
                        ],
                    }
                ],
            }
        ]
    }
    live = LiveSchema(
        tables={
            "accounts": LiveTable(
                "accounts",
                {
                    "id": _column("id", "INTEGER", "number"),
                    "email": _column("email", "VARCHAR(100)", "text", length=100, unique=True),
                    "nick": _column("nick", "VARCHAR(20)", "text", length=20),
                    "code": _column("code", "VARCHAR(8)", "text", length=8, nullable=True),
                    "amount": _column("amount", "NUMERIC(10, 2)", "number"),
                    "born": _column("born", "DATE", "time", time_kind="date"),
                    "seen": _column("seen", "TIMESTAMP", "time", time_kind="mysql_timestamp"),
                    "vip": _column("vip", "BOOLEAN", "bool"),
                    "note": _column("note", "TEXT", "text", nullable=True),
                },
                primary_key=("id",),
            )
        },
        where="mysql://db",
    )
    conversion = convert_fides(data, url="mysql+pymysql://app@db/billing", live=live)
    table = load_dataset_text(conversion.text).dataset.tables["accounts"]
    erase = {name: column.erase for name, column in table.columns.items()}
    assert erase["id"] is None  # the key
    assert erase["email"].value == "hash"  # unique text: distinct values stay distinct
    assert erase["nick"].fixed == "erased"
    assert erase["code"].value == "null"  # a hash does not fit 8 characters; nullable
    assert erase["amount"].fixed == 0
    assert erase["born"].fixed == "1970-01-01"
    assert erase["seen"].fixed == "1970-01-02T00:00:00"  # a MySQL TIMESTAMP starts after the epoch
    assert table.columns["seen"].category == "user.behavior"  # the personal one of the two
    assert "# also system.operations" in conversion.text
    assert erase["vip"].value == "null"  # no neutral boolean: left for the check to refuse
    assert erase["note"].value == "null"
    assert [w.message for w in conversion.warnings if "accounts.vip" in w.message]
    assert load_dataset_text(conversion.text).dataset.dataset == "billing-db"
    assert "Fides fides_key: Billing-DB" in conversion.text


def test_unknown_category_becomes_its_known_ancestor() -> None:
    data = {
        "dataset": [
            {
                "fides_key": "app",
                "collections": [
                    {
                        "name": "t",
                        "fields": [
                            {
                                "name": "email",
                                "data_categories": ["user.contact.email.work"],
                                "fides_meta": {"identity": "email"},
                            },
                        ],
                    }
                ],
            }
        ]
    }
    conversion = convert_fides(data)
    column = load_dataset_text(conversion.text).dataset.tables["t"].columns["email"]
    assert column.category == "user.contact.email"
    (warning,) = conversion.warnings
    assert "'user.contact.email.work' is not a fideslang category lawful knows" in warning.message


def test_connection_options() -> None:
    data = {
        "dataset": [
            {
                "fides_key": "app",
                "collections": [
                    {
                        "name": "t",
                        "fields": [
                            {
                                "name": "email",
                                "data_categories": ["user.contact.email"],
                                "fides_meta": {"identity": "email"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    text = convert_fides(data).text
    assert "url_env: APP_DATABASE_URL" in text
    with pytest.raises(DatasetError, match="password, which does not belong"):
        convert_fides(data, url="postgresql://u:secret@h/db")
    with pytest.raises(DatasetError, match="not both"):
        convert_fides(data, url="postgresql://u@h/db", url_env="X")


def test_skipped_collection_and_links_to_it(tmp_path: Path) -> None:
    path = tmp_path / "fides.yml"
    path.write_text(
        GOOD.replace(
            "      - name: posts\n        fields:",
            "      - name: drafts\n        fides_meta: {skip_processing: true}\n"
            "        fields:\n          - name: id\n"
            "      - name: posts\n        fields:",
        ).replace(
            "          - name: body\n",
            "          - name: draft_id\n            fides_meta:\n              references:\n"
            "                - {dataset: app, field: drafts.id, direction: to}\n"
            "          - name: body\n",
        ),
        encoding="utf-8",
    )
    conversion = read_fides_file(path)
    messages = [w.message for w in conversion.warnings]
    assert any("collection 'drafts' has skip_processing" in m for m in messages), messages
    assert any("a collection left out (skip_processing)" in m for m in messages), messages
    assert set(load_dataset_text(conversion.text).dataset.tables) == {"users", "posts"}


def test_unreadable_database_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "fides.yml"
    path.write_text(GOOD, encoding="utf-8")
    missing = tmp_path / "missing.db"
    conversion = read_fides_file(path, url=f"sqlite:///{missing}")
    assert not missing.exists()
    (warning,) = conversion.warnings
    assert f"no SQLite database at {missing}" in warning.message
    assert "# The database could not be read" in conversion.text
    assert "fitted to the live schema" not in conversion.summary


def test_sqlite_not_null_columns_and_an_email_link(sqlite_url: str, tmp_path: Path) -> None:
    """NOT NULL columns get a mask that fits; a link that holds an email is erased too."""
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        for statement in (
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, "
            "name VARCHAR(40) NOT NULL, born DATE NOT NULL, score NUMERIC NOT NULL)",
            "CREATE TABLE subscriptions (id INTEGER PRIMARY KEY, email TEXT, list TEXT)",
            "INSERT INTO users VALUES (1, 'ann@example.com', 'Ann', '1990-05-01', 12.5), "
            "(2, 'bob@example.com', 'Bob', '1980-01-02', 3)",
            "INSERT INTO subscriptions VALUES (1, 'ann@example.com', 'news'), "
            "(2, 'bob@example.com', 'news'), (3, 'ann@example.com', 'offers')",
        ):
            conn.exec_driver_sql(statement)
    engine.dispose()
    fides = tmp_path / "fides.yml"
    fides.write_text(
        """\
dataset:
  - fides_key: newsletter
    collections:
      - name: users
        fields:
          - {name: id, data_categories: [user.unique_id], fides_meta: {primary_key: true}}
          - {name: email, data_categories: [user.contact.email], fides_meta: {identity: email}}
          - {name: name, data_categories: [user.name]}
          - {name: born, data_categories: [user.demographic.date_of_birth]}
          - {name: score, data_categories: [user.behavior]}
      - name: subscriptions
        fields:
          - name: email
            data_categories: [user.contact.email]
            fides_meta:
              references: [{dataset: newsletter, field: users.email, direction: from}]
          - {name: list, data_categories: [system.operations]}
""",
        encoding="utf-8",
    )
    annotation = converted(tmp_path, fides, sqlite_url)
    text = annotation.read_text()
    assert "email: {category: user.contact.email, erase: hash}" in text
    assert 'name: {category: user.name, erase: {fixed: "erased"}}' in text
    with Datasets.load([annotation], keyring=Keyring.generate()) as datasets:
        datasets.check()
        before = snapshot(sqlite_url)
        (report,) = datasets.erase(["email:ann@example.com"])
        after = snapshot(sqlite_url)
        (again,) = datasets.erase(["email:ann@example.com"])
    diff = changes(before, after)
    (user,) = diff["users"].values()
    assert user["email"].startswith("~") and len(user["email"]) == 33
    assert {k: v for k, v in user.items() if k != "email"} == {
        "name": "erased",
        "born": dt.date(1970, 1, 1),
        "score": 0,
    }
    assert diff["subscriptions"] == {(1,): {"email": None}, (3,): {"email": None}}
    assert report.changed == 3 and again.changed == 0


# --- 5. The command ----------------------------------------------------------------------------


def test_cli_import_then_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./policy.yaml: the check is of the file alone
    runner = CliRunner()
    out = tmp_path / "pg.yaml"
    result = runner.invoke(app, ["dataset", "import-fides", str(PG_DATASET), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr
    assert "warning" in result.stderr and "service_request.email" in result.stderr
    assert load_dataset(out).key == "postgres_example_test_dataset"
    result = runner.invoke(app, ["dataset", "check", str(out), "--offline"])
    assert result.exit_code == 0, result.output
    assert "dataset postgres_example_test_dataset, 11 tables (file only)" in result.stdout

    result = runner.invoke(app, ["dataset", "import-fides", str(PG_DATASET), "-o", str(out)])
    assert result.exit_code == 2 and "already exists" in result.stderr

    bad = tmp_path / "bad.yml"
    bad.write_text(GOOD.replace("direction: from", "direction: up"), encoding="utf-8")
    result = runner.invoke(
        app, ["dataset", "import-fides", str(bad), "-o", str(tmp_path / "x.yaml")]
    )
    assert result.exit_code == 1
    assert f"{bad}:19:" in result.stderr and "'up' is not a reference direction" in result.stderr
    assert not (tmp_path / "x.yaml").exists()

    both = ["dataset", "import-fides", str(PG_DATASET), "--url", "sqlite:///x.db", "--url-env", "X"]
    result = runner.invoke(app, both)
    assert result.exit_code == 2 and "not both" in result.stderr
