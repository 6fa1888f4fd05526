"""A bad dataset annotation is rejected whole, every error at once, each with
file:line:column, key path, what is wrong and how to fix it — never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lawful.datasets import DatasetError, load_dataset, load_dataset_text
from tests.datasets.conftest import SHOP_DATASET

SHOP = SHOP_DATASET.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Case:
    id: str
    old: str
    new: str
    message: str  # what the problem line says after "file:line:col "
    marker: str  # the error points at the line where this text first appears
    with_policy: bool = False


CASES = [
    Case(
        "misspelt table action",
        "    erase: anonymize\n    columns:\n      email: {category: user.contact.email, erase: hash}",
        "    erase: anonymise\n    columns:\n      email: {category: user.contact.email, erase: hash}",
        "tables.customers.erase: 'anonymise' is not a table's erasure action; did you mean 'anonymize'?",
        "erase: anonymise",
    ),
    Case(
        "unknown column action",
        "phone: {category: user.contact.phone_number, erase: null}",
        "phone: {category: user.contact.phone_number, erase: blank}",
        "tables.customers.columns.phone.erase: 'blank' is not a column's erasure action; use one of: "
        "null, hash, keep, delete, {fixed: ...}, {generalize: ...}, {truncate: ...}",
        "erase: blank",
    ),
    Case(
        "two masks at once",
        "first_name: {category: user.name, erase: {fixed: erased}}",
        "first_name: {category: user.name, erase: {fixed: erased, truncate: 2}}",
        "tables.customers.columns.first_name.erase: write exactly one of fixed (a value), "
        "generalize (year, month, ip) or truncate (a length); got fixed, truncate",
        "first_name:",
    ),
    Case(
        "unknown generalisation",
        "birth_date: {category: user.demographic.date_of_birth, erase: null}",
        "birth_date: {category: user.demographic.date_of_birth, erase: {generalize: yeer}}",
        "tables.customers.columns.birth_date.erase.generalize: 'yeer' is not a generalisation; "
        "did you mean 'year'?",
        "birth_date:",
    ),
    Case(
        "password in the URL",
        "  url_env: SHOP_DATABASE_URL ",
        "  url: postgresql://shop:s3cret@db.example/shop ",
        "connection.url: a password does not belong in a dataset file: put the whole URL in an "
        "environment variable and name it with url_env",
        "url: postgresql",
    ),
    Case(
        "both url and url_env",
        "  url_env: SHOP_DATABASE_URL ",
        "  url_env: SHOP_DATABASE_URL\n  url: sqlite:///shop.db ",
        "connection: give the database as url (without a password) or url_env (the name of an "
        "environment variable holding the URL), exactly one of them",
        "connection:",
    ),
    Case(
        "link to a table not annotated",
        "      - {table: payments, on: {payment_id: id}}",
        "      - {table: payment, on: {payment_id: id}}",
        "tables.tax_records.owners[0].table: 'payment' is not a table of this dataset; "
        "did you mean 'payments'?",
        "table: payment,",
    ),
    Case(
        "unknown role",
        "      - {table: support_tickets, on: {ticket_id: id}}",
        "      - {table: support_tickets, on: {ticket_id: id}, role: reader}",
        "tables.ticket_messages.owners[0].role: 'reader' is not a role; did you mean 'refers'?",
        "role: reader",
    ),
    Case(
        "kept rows without a reason",
        "    reason: the lines of the invoices\n",
        "",
        "tables.order_items: kept rows need a reason: why erasure must leave them (and a rule)",
        "  order_items:",
    ),
    Case(
        "a table nothing reaches",
        "    owners:\n      - {table: customers, on: {customer_id: id}}   # no foreign key in the database\n",
        "",
        "tables.login_events: say how rows reach a subject: identities (columns holding an email, "
        "phone, id...) or owners (links to other tables)",
        "  login_events:",
    ),
    Case(
        "not a data category",
        "      ip: user.device.ip_address",
        "      ip: user.device.ip_adress",
        "tables.login_events.columns.ip.category: 'user.device.ip_adress' is not a data category; "
        "did you mean 'user.device.ip_address'?",
        "ip: user.device.ip_adress",
    ),
    Case(
        "kept column in a table whose rows are deleted",
        "      ip: user.device.ip_address",
        "      ip: {category: user.device.ip_address, erase: keep, reason: fraud cases}",
        "tables.login_events.columns.ip.erase: this column is kept, but erasure deletes the "
        "table's rows; set the table's erase to anonymize (so the row stays) or keep",
        "ip: {category",
    ),
    Case(
        "unknown identity kind",
        "      id: account",
        "      id: acount",
        "tables.customers.identities.id.kind: 'acount' is not a kind of identity; did you mean 'account'?",
        "id: acount",
    ),
    Case(
        "wrong language version",
        "lawful: 1",
        "lawful: 2",
        "lawful: this lawful reads dataset files written for version 1; got the number 2 (write lawful: 1)",
        "lawful: 2",
    ),
    Case(
        "category no purpose declares",
        "      user_agent: user.device",
        "      user_agent: user.behavior.browsing_history",
        "tables.login_events.columns.user_agent.category: no purpose of the policy declares "
        "'user.behavior.browsing_history': add it (or a category above it) to the categories of "
        "the purposes that use it",
        "user_agent:",
        with_policy=True,
    ),
    Case(
        "keep without a rule, with a policy",
        "    rule: invoices\n    columns:\n      product_id",
        "    columns:\n      product_id",
        "tables.order_items.erase: data kept after erasure must be backed by a retention rule of "
        "the policy: add rule: <name> (one of: customer_records, invoices, security)",
        "erase: keep\n    reason: the lines",
        with_policy=True,
    ),
    Case(
        "keep under an undeclared rule",
        "    rule: invoices\n    columns:\n      product_id",
        "    rule: invoice  # misspelt\n    columns:\n      product_id",
        "tables.order_items.rule: 'invoice' is not a retention rule of the policy; did you mean 'invoices'?",
        "# misspelt",
        with_policy=True,
    ),
    Case(
        "unknown subject kind",
        "    subject: subscriber",
        "    subject: subscribers",
        "tables.newsletter_subscriptions.subject: 'subscribers' is not a subject kind of the policy; "
        "did you mean 'subscriber'?",
        "subject: subscribers",
        with_policy=True,
    ),
]


def _load_mutated(case: Case, shop_policy: object) -> tuple[str, DatasetError]:
    assert case.old in SHOP, f"{case.id}: the text to replace is not in the shop dataset"
    text = SHOP.replace(case.old, case.new, 1)
    with pytest.raises(DatasetError) as info:
        load_dataset_text(text, "shop.yaml", policy=shop_policy if case.with_policy else None)
    return text, info.value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_error_names_its_place_and_fix(case: Case, shop_policy: object) -> None:
    text, error = _load_mutated(case, shop_policy)
    lines = [str(p) for p in error.problems if p.severity == "error"]
    matching = [line for line in lines if line.endswith(case.message)]
    assert matching, "no error line ends with the expected message; got:\n" + "\n".join(lines)
    problem = next(p for p in error.problems if str(p).endswith(case.message))
    assert problem.file == "shop.yaml"
    expected_line = text.count("\n", 0, text.index(case.marker)) + 1
    assert problem.line == expected_line, f"{case.id}: points at line {problem.line}"
    assert problem.column is not None


def test_the_shop_annotation_loads_with_its_policy(shop_policy: object) -> None:
    loaded = load_dataset(SHOP_DATASET, shop_policy)
    assert loaded.key == "shop"
    # The shop's policy has no retention rule for agents and newsletter lists: warned.
    assert [w.path for w in loaded.warnings] == [
        ("tables", "agents"),
        ("tables", "newsletter_subscriptions"),
    ]
    assert set(loaded.dataset.tables) >= {"customers", "addresses", "login_events", "referrals"}


def test_every_error_is_reported_at_once() -> None:
    text, applied = SHOP, 0
    for case in CASES[:8]:
        if case.old in text:
            text = text.replace(case.old, case.new, 1)
            applied += 1
    with pytest.raises(DatasetError) as info:
        load_dataset_text(text, "shop.yaml")
    assert applied >= 6
    assert len(info.value.errors) >= applied
    assert str(info.value).startswith(f"{len(info.value.errors)} errors in dataset")


def test_a_problem_with_one_table_does_not_hide_the_others() -> None:
    # customers has an error of its own; the link from orders to it is not called undeclared.
    text = SHOP.replace(
        "    erase: anonymize\n    columns:\n      email:",
        "    erase: wipe\n    columns:\n      email:",
        1,
    )
    with pytest.raises(DatasetError) as info:
        load_dataset_text(text, "shop.yaml")
    messages = [str(p) for p in info.value.problems]
    assert any("'wipe' is not a table's erasure action" in m for m in messages)
    assert not any("is not a table of this dataset" in m for m in messages)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "the file is empty; write a dataset annotation (`lawful scan DB_URL -o FILE` drafts one)",
        ),
        (
            "- a\n- b\n",
            "a dataset file is a mapping (lawful:, dataset:, connection:, tables:), but the file holds a list",
        ),
        ("lawful: 1\ntables: [\n", "malformed YAML"),
    ],
)
def test_not_an_annotation(text: str, expected: str) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset_text(text, "x.yaml")
    assert expected in str(info.value)


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "nope.yaml")
    assert "draft one with `lawful scan`" in str(info.value)


def test_no_table_with_identities_is_an_error() -> None:
    text = """
lawful: 1
dataset: app
connection: {url: sqlite:///app.db}
tables:
  orders:
    owners: [{table: orders, on: {parent_id: id}}]
"""
    with pytest.raises(DatasetError) as info:
        load_dataset_text(text, "app.yaml")
    assert "no table has identities" in str(info.value)


def test_yaml_null_means_set_null() -> None:
    loaded = load_dataset(SHOP_DATASET)
    phone = loaded.dataset.tables["customers"].columns["phone"]
    assert phone.erase is not None and phone.erase.value == "null"
    assert loaded.dataset.tables["customers"].columns["created_at"].erase is None
