"""Sera's retention rules run as written (examples/policies/sera_leads.yaml), against a
small database built to their shape, and against lawful's own records:

* website-visit data: 30 days from collection;
* request correspondence: 3 years from collection (and lawful's closed requests' sealed
  contacts, 3 years after closing);
* customer data: the contract and 3 years after it ends;
* accounting records: 10 years;
* data on persons (Customer Content): 12 months after the contract's termination.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lawful.datasets import Datasets, load_dataset_text
from lawful.datasets.masks import MASK_KEY_PURPOSE
from lawful.policy import load_policy
from lawful.requests.tables import request_messages, request_packages, requests, verification_codes
from lawful.retention import Retention
from lawful.store import Store
from lawful.subjects import Identity, Keyring
from tests.retention.conftest import ROOT

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SERA = ROOT / "examples" / "policies" / "sera_leads.yaml"

ANNOTATION = """
lawful: 1
dataset: sera
connection: {url_env: SERA_DATABASE_URL}
tables:
  website_visits:
    subject: website_visitor
    identities: {cookie_id: device}
    columns:
      cookie_id: user.device.cookie_id
      ip: user.device.ip_address
      page: user.behavior.browsing_history
      at: system.operations
    retention: [{rule: website_visits, from: at}]
  demo_requests:
    subject: website_visitor
    identities: {email: email}
    columns:
      email: user.contact.email
      first_name: user.name.first
      message: user.content.correspondence
      received_at: system.operations
    retention: [{rule: request_correspondence, from: received_at}]
  customers:
    description: Sera's customers (companies), their contracts
    identities: {id: account}
    columns:
      contract_end: system.operations
  customer_contacts:
    subject: customer_contact
    identities: {email: email}
    owners: [{table: customers, on: {customer_id: id}}]
    columns:
      email: user.contact.email
      first_name: user.name.first
      job_title: user.job_title
    retention: [{rule: customer_data, from: customers.contract_end}]
  invoices:
    owners: [{table: customer_contacts, on: {contact_id: id}}]
    columns:
      billed_to: user.name.first
      amount: user.financial.invoicing
      issued_at: system.operations
    retention: [{rule: accounting_records, from: issued_at}]
  persons:
    subject: person_in_content
    identities: {email: {kind: email, expands: false}}
    owners: [{table: customers, on: {customer_id: id}}]
    columns:
      email: user.contact.email
      first_name: user.name.first
      seniority: user.job_title.seniority
    retention: [{rule: data_on_persons, from: customers.contract_end}]
"""


def _schema(metadata: sa.MetaData) -> None:
    ts = sa.DateTime(timezone=True)
    sa.Table(
        "website_visits",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("cookie_id", sa.String(40), nullable=False, index=True),
        sa.Column("ip", sa.String(45)),
        sa.Column("page", sa.String(200)),
        sa.Column("at", ts, nullable=False),
    )
    sa.Table(
        "demo_requests",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(200), nullable=False, index=True),
        sa.Column("first_name", sa.String(100)),
        sa.Column("message", sa.Text),
        sa.Column("received_at", ts, nullable=False),
    )
    sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contract_end", sa.Date),  # NULL: the contract runs
    )
    sa.Table(
        "customer_contacts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), index=True),
        sa.Column("email", sa.String(200), nullable=False, index=True),
        sa.Column("first_name", sa.String(100)),
        sa.Column("job_title", sa.String(100)),
    )
    sa.Table(
        "invoices",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("customer_contacts.id"), index=True),
        sa.Column("billed_to", sa.String(100)),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("issued_at", ts, nullable=False),
    )
    sa.Table(
        "persons",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), index=True),
        sa.Column("email", sa.String(200), nullable=False, index=True),
        sa.Column("first_name", sa.String(100)),
        sa.Column("seniority", sa.String(40)),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def sera_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sera.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    metadata = sa.MetaData()
    _schema(metadata)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    metadata.create_all(engine)
    t = metadata.tables
    with engine.begin() as conn:
        conn.execute(
            sa.insert(t["website_visits"]),
            [
                {
                    "id": 1,
                    "cookie_id": "c-old",
                    "ip": "10.0.0.1",
                    "page": "/",
                    "at": NOW - 31 * DAY,
                },
                {
                    "id": 2,
                    "cookie_id": "c-old",
                    "ip": "10.0.0.1",
                    "page": "/a",
                    "at": NOW - 29 * DAY,
                },
                {"id": 3, "cookie_id": "c-new", "ip": "10.0.0.2", "page": "/", "at": NOW - DAY},
            ],
        )
        conn.execute(
            sa.insert(t["demo_requests"]),
            [
                {"id": 1, "email": "old@lead.example", "received_at": NOW - 3 * 366 * DAY},
                {"id": 2, "email": "new@lead.example", "received_at": NOW - 2 * 365 * DAY},
            ],
        )
        conn.execute(
            sa.insert(t["customers"]),
            [
                {"id": 1, "contract_end": None},  # running
                {"id": 2, "contract_end": (NOW - 4 * 365 * DAY).date()},  # ended 4 years ago
                {"id": 3, "contract_end": (NOW - 400 * DAY).date()},  # ended 13 months ago
                {"id": 4, "contract_end": (NOW - 300 * DAY).date()},  # ended 10 months ago
                {"id": 5, "contract_end": (NOW - 4 * 365 * DAY).date()},  # ended 4 years ago
            ],
        )
        conn.execute(
            sa.insert(t["customer_contacts"]),
            [
                {"id": i, "customer_id": i, "email": f"contact{i}@cust.example"}
                for i in (1, 2, 3, 4, 5)
            ],
        )
        conn.execute(
            sa.insert(t["invoices"]),
            [
                {"id": 1, "contact_id": 2, "amount": 10, "issued_at": NOW - 11 * 365 * DAY},
                {"id": 2, "contact_id": 2, "amount": 20, "issued_at": NOW - 5 * 365 * DAY},
                {"id": 3, "contact_id": 1, "amount": 30, "issued_at": NOW - 30 * DAY},
            ],
        )
        conn.execute(
            sa.insert(t["persons"]),
            [
                {"id": i, "customer_id": c, "email": f"p{i}@content.example"}
                for i, c in ((1, 1), (2, 2), (3, 3), (4, 4))
            ],
        )
    engine.dispose()
    monkeypatch.setenv("SERA_DATABASE_URL", url)
    return url


@pytest.fixture
def sera(sera_url: str, store: Store, keyring: Keyring) -> Iterator[Retention]:
    policy = load_policy(SERA).policy
    loaded = load_dataset_text(ANNOTATION, "sera.yaml", policy=policy)
    assert [w for w in loaded.warnings if w.severity == "error"] == []
    with Datasets([loaded], mask_key=keyring.derive(MASK_KEY_PURPOSE)) as datasets:
        yield Retention(store, policy, keyring, datasets, batch=2, clock=lambda: NOW)


def _ids(url: str, table: str) -> list[int]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text(f"SELECT id FROM {table} ORDER BY id"))]
    engine.dispose()
    return ids


def _lawful_records(store: Store, keyring: Keyring, controller_id: int) -> dict[str, int]:
    """Closed requests (old and recent), a package, codes and messages, in the store."""
    ids = {}
    with store.engine.begin() as conn:
        for name, closed in (("old", NOW - 3 * 366 * DAY), ("recent", NOW - 365 * DAY)):
            ref = uuid.uuid4().hex
            ids[name] = conn.execute(
                sa.insert(requests).values(
                    controller_id=controller_id,
                    ref=ref,
                    kind="access",
                    state="completed",
                    identity_kind="email",
                    identity_hash=keyring.hash(Identity.parse(f"email:{name}@lead.example")),
                    contact_ciphertext=b"sealed",
                    params_ciphertext=b"sealed",
                    key_id="k",
                    channel="api",
                    received_at=closed - 10 * DAY,
                    due_at=closed + 20 * DAY,
                    closed_at=closed,
                    updated_at=closed,
                )
            ).inserted_primary_key[0]
        conn.execute(
            sa.insert(request_packages).values(
                request_id=ids["recent"],
                content=b"zip",
                key_id="k",
                sha256="0" * 64,
                size=3,
                created_at=NOW - 10 * DAY,
                expires_at=NOW - 3 * DAY,
            )
        )
        conn.execute(
            sa.insert(verification_codes),
            [
                {"request_id": ids["recent"], "channel": "email", "code_hash": "h",
                 "created_at": NOW - DAY, "expires_at": NOW - DAY + dt.timedelta(minutes=30)},
                {"request_id": ids["recent"], "channel": "email", "code_hash": "h",
                 "created_at": NOW, "expires_at": NOW + dt.timedelta(minutes=30)},
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(request_messages),
            [
                {"controller_id": controller_id, "request_id": ids["recent"], "template": "code",
                 "channel": "email", "ciphertext": b"m", "key_id": "k",
                 "created_at": NOW - 40 * DAY, "sent_at": NOW - 40 * DAY},
                {"controller_id": controller_id, "request_id": ids["recent"], "template": "code",
                 "channel": "email", "ciphertext": b"m", "key_id": "k",
                 "created_at": NOW - 2 * DAY, "sent_at": NOW - 2 * DAY},
            ],
        )  # fmt: skip
    return ids


def test_seras_rules_run_as_written(sera: Retention, sera_url: str, keyring: Keyring) -> None:
    ids = _lawful_records(sera.store, keyring, sera.controller_id)
    plan = sera.plan()
    expected = {
        "website_visits": 1,
        "request_correspondence": 1,
        "customer_data": 1,
        "accounting_records": 1,
        "data_on_persons": 2,
        "lawful:packages": 1,
        "lawful:request_contacts": 1,
        "lawful:verification_codes": 1,
        "lawful:messages": 1,
    }
    assert {r.rule: r.rows for r in plan.rules} == expected
    # The contact of customer 2 is still referenced by its newer invoice (kept 10 years).
    contacts = plan.rule("customer_data").tables[0]
    assert contacts.skipped == 1 and contacts.rows == 1

    report = sera.sweep()
    assert not report.failed
    assert _ids(sera_url, "website_visits") == [2, 3]  # 31 days old: gone; 29: kept
    assert _ids(sera_url, "demo_requests") == [2]  # over 3 years: gone
    assert _ids(sera_url, "invoices") == [2, 3]  # over 10 years: gone
    # Contract ended 4 years ago: customer data gone (5), but for the contact an invoice
    # still needs (2: it goes in the sweep after its invoice); 13 months: within 3 years.
    assert _ids(sera_url, "customer_contacts") == [1, 2, 3, 4]
    # Data on persons: 12 months after termination (customers 2 and 3), not before.
    assert _ids(sera_url, "persons") == [1, 4]
    assert {r.rule: (r.rows, r.tables[0].skipped) for r in report.rules}["customer_data"] == (1, 1)

    with sera.store.engine.connect() as conn:
        contacts_left = dict(
            conn.execute(sa.select(requests.c.id, requests.c.contact_ciphertext)).all()
        )
        assert contacts_left[ids["old"]] is None and contacts_left[ids["recent"]] is not None
        assert conn.scalar(sa.select(request_packages.c.content)) is None
        assert conn.scalar(sa.select(sa.func.count()).select_from(verification_codes)) == 1
        assert conn.scalar(sa.select(sa.func.count()).select_from(request_messages)) == 1
    assert sera.sweep().rows == 0


def test_a_hold_on_a_sera_lead_keeps_their_correspondence(sera: Retention, sera_url: str) -> None:
    sera.hold(reason="legal_claim", by="sergio", identity="email:old@lead.example")
    report = sera.sweep(rules=["request_correspondence"])
    assert report.rule("request_correspondence").tables[0].held == 1
    assert _ids(sera_url, "demo_requests") == [1, 2]
