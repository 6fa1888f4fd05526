"""The `retention:` key of a dataset annotation: checked against the policy when loaded,
against the live schema when a sweep is planned; and the cutoff arithmetic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from lawful.datasets import DatasetError, Datasets, load_dataset_text
from lawful.policy.durations import Duration
from lawful.retention import Retention, cutoff
from lawful.store import Store
from lawful.subjects import Keyring

BASE = """
lawful: 1
dataset: app
connection: {url: URL}
tables:
  customers:
    identities: {email: email}
    erase: anonymize
    columns:
      email: {category: user.contact.email, erase: hash}
      last_login_at: system.operations
    retention: [{rule: customer_records, from: last_login_at}]
  logins:
    owners: [{table: customers, on: {customer_id: id}}]
    columns:
      ip: user.device.ip_address
    retention: RETENTION
  invoices:
    owners: [{table: customers, on: {customer_id: id}}]
    erase: keep
    reason: tax law
    rule: invoices
    columns:
      buyer: user.name
    retention: [{rule: invoices, from: issued_at}]
"""


def _load(shop_policy: object, retention: str, url: str = "sqlite://") -> object:
    text = BASE.replace("RETENTION", retention).replace("URL", url)
    return load_dataset_text(text, "app.yaml", policy=shop_policy)


@pytest.mark.parametrize(
    ("retention", "message", "line"),
    [
        (
            "[{rule: securty, from: at}]",
            "tables.logins.retention[0].rule: 'securty' is not a retention rule of the policy; "
            "did you mean 'security'?",
            17,
        ),
        (
            "[{rule: security, from: orders.at}]",
            "tables.logins.retention[0].from: 'orders' is not a table logins is linked to by "
            "an owner link; its owner links reach: customers",
            17,
        ),
        (
            "[{rule: security, from: 'at now'}]",
            "'at now' is not a column: write a column of this table (at), or table.column",
            17,
        ),
        (
            "[{rule: security, from: at}, {rule: security, from: at}]",
            "rule 'security' is already given for this table; give each rule once",
            17,
        ),
    ],
)
def test_bad_retention_entries_name_their_place_and_fix(
    shop_policy: object, retention: str, message: str, line: int
) -> None:
    with pytest.raises(DatasetError) as caught:
        _load(shop_policy, retention)
    errors = [p for p in caught.value.problems if p.severity == "error"]
    assert any(message in str(p) for p in errors), "\n".join(map(str, errors))
    assert next(p for p in errors if message in str(p)).line == line


def test_an_anonymizing_rule_needs_masks(shop_policy: object) -> None:
    text = BASE.replace("RETENTION", "[{rule: security, from: at}]").replace("URL", "sqlite://")
    text = text.replace(
        "{rule: invoices, from: issued_at}", "{rule: customer_records, from: issued_at}"
    )
    with pytest.raises(
        DatasetError, match="this rule anonymizes, but erasure keeps the table's rows"
    ):
        load_dataset_text(text, "app.yaml", policy=shop_policy)


def test_personal_data_without_a_rule_is_a_warning(shop_policy: object) -> None:
    loaded = _load(shop_policy, "[]")
    (warning,) = loaded.warnings
    assert warning.severity == "warning" and warning.path == ("tables", "logins")
    assert "no retention rule applies to it" in warning.message


def test_a_clock_that_is_not_a_date_is_refused_when_planned(
    tmp_path: Path, shop_policy: object, store: Store
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200), "
            "last_login_at TIMESTAMP)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE logins (id INTEGER PRIMARY KEY, customer_id INTEGER, ip VARCHAR(45))"
        )
        conn.exec_driver_sql(
            "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER, "
            "buyer VARCHAR(100), issued_at DATE)"
        )
    engine.dispose()
    loaded = _load(shop_policy, "[{rule: security, from: ip}]", url)
    keyring = Keyring.generate()
    with Datasets([loaded]) as datasets:
        retention = Retention(store, shop_policy, keyring, datasets)
        with pytest.raises(DatasetError) as caught:
            retention.plan()
    (problem,) = caught.value.problems
    assert str(problem).endswith(
        "tables.logins.retention[0].from: logins.ip (VARCHAR(45)) is not a date or time, so no "
        "period can be counted from it; name a DATE or TIMESTAMP column"
    )


def test_cutoff_is_the_inverse_of_adding_the_period() -> None:
    now = dt.datetime(2026, 3, 31, 12, tzinfo=dt.UTC)
    assert cutoff(Duration(months=1), now) == dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC)
    assert cutoff(Duration(years=3), now) == dt.datetime(2023, 3, 31, 12, tzinfo=dt.UTC)
    assert cutoff(Duration(days=30), now) == dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    assert cutoff(Duration(hours=72), now) == dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC)
    friday = dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC)
    assert cutoff(Duration(business_days=1), dt.datetime(2026, 3, 30, 12, tzinfo=dt.UTC)) == friday
    start = dt.datetime(2025, 5, 17, 8, tzinfo=dt.UTC)
    for keep in (Duration(years=10), Duration(months=12), Duration(days=30)):
        assert keep.add_to(cutoff(keep, start)) <= start
