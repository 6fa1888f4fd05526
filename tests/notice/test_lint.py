"""The consistency check: each kind of mismatch in a deliberately broken fixture, and a
clean pass on the sample shop (generated in SQLite, the store on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.datasets import load_dataset, load_dataset_text
from lawful.disclosure.tables import disclosures
from lawful.engine import Engine
from lawful.notice import Notices, audit_policy
from lawful.policy import load_policy
from lawful.policy.model import Policy, Recipient
from lawful.requests.tables import requests
from lawful.store.tables import controllers
from lawful.subjects import Keyring

from .conftest import SHOP_DATASET, SHOP_POLICY

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    generate(url, 40, seed=0)
    return url


@pytest.fixture
def shop_env(shop_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SHOP_DATABASE_URL", shop_db)
    return shop_db


@pytest.fixture
def shop_policy() -> Policy:
    return load_policy(SHOP_POLICY).policy


@pytest.fixture
def engine(store_url: str, shop_policy: Policy) -> Iterator[Engine]:
    with Engine.open(load_policy(SHOP_POLICY), store_url, keyring=Keyring.generate()) as opened:
        yield opened


def _dataset_text(old: str, new: str) -> str:
    text = SHOP_DATASET.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new)


def _controller_id(engine: Engine) -> int:
    with engine.store.engine.connect() as conn:
        return conn.execute(
            sa.select(controllers.c.id).where(controllers.c.key == engine.policy.key)
        ).scalar_one()


def _purpose(policy: Policy, name: str, **update: object) -> Policy:
    purposes = dict(policy.purposes)
    purposes[name] = purposes[name].model_copy(update=update)
    return policy.model_copy(update={"purposes": purposes})


# --- the shop passes ---------------------------------------------------------------------


def test_shop_passes(shop_env: str, engine: Engine) -> None:
    engine.consent.give("email:ann@example.com", "newsletter", method="checkbox")
    engine.consent.give("email:bob@example.com", "reviews", method="checkbox")
    report = Notices(
        engine.policy, store=engine.store, datasets=[load_dataset(SHOP_DATASET)]
    ).audit(now=NOW)
    assert report.errors == ()
    assert set(report.checked) == {
        "categories",
        "retention",
        "consent",
        "disclosures",
        "deadlines",
        "transfers",
    }
    # The one true gap of the shop: the newsletter purpose has no retention rule, and its
    # table is the subscribers' (the customers' rules are not theirs).
    assert [(f.check, f.place) for f in report.warnings] == [
        ("retention.uncovered_table", "shop.newsletter_subscriptions")
    ]
    assert not report.by_check("consent.none_recorded")


def test_shop_offline_without_store(shop_policy: Policy) -> None:
    report = audit_policy(shop_policy, [load_dataset(SHOP_DATASET)], live=False)
    assert report.ok
    assert "consent" not in report.checked and "deadlines" not in report.checked


# --- categories ----------------------------------------------------------------------------


def test_undeclared_and_stale_categories(shop_env: str, shop_policy: Policy) -> None:
    broken = load_dataset_text(
        _dataset_text(
            "birth_date: {category: user.demographic.date_of_birth",
            "birth_date: {category: user.health_and_medical",
        ),
        "broken.yaml",
    )
    report = audit_policy(shop_policy, [broken])
    [undeclared] = report.by_check("categories.undeclared")
    assert undeclared.severity == "error"
    assert undeclared.place == "shop.customers.birth_date"
    assert "user.health_and_medical" in undeclared.message and undeclared.fix
    [stale] = report.by_check("categories.stale")
    assert stale.severity == "warning"
    assert stale.place == "purposes.account.categories"
    assert "user.demographic.date_of_birth" in stale.message
    assert not report.ok


def test_empty_tables_are_noted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shop_policy: Policy
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    generate(url, 1, seed=0)
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("DELETE FROM product_reviews"))
    monkeypatch.setenv("SHOP_DATABASE_URL", url)
    report = audit_policy(shop_policy, [load_dataset(SHOP_DATASET)])
    assert any("product_reviews" in f.message for f in report.by_check("categories.empty"))
    assert report.ok


# --- consent ------------------------------------------------------------------------------


def test_consent_purpose_without_a_way_to_collect_it(shop_policy: Policy) -> None:
    broken = _purpose(shop_policy, "newsletter", consent=None)
    [finding] = audit_policy(broken).by_check("consent.no_way")
    assert (finding.severity, finding.place) == ("error", "purposes.newsletter")
    assert "consent: {via: [form]}" in finding.fix


def test_consent_records_without_a_way_and_stale_records(engine: Engine) -> None:
    engine.consent.give("email:ann@example.com", "newsletter", method="checkbox")
    engine.consent.give("email:cy@example.com", "newsletter", method="checkbox")
    no_way = _purpose(engine.policy, "newsletter", consent=None)
    [finding] = audit_policy(no_way, store=engine.store).by_check("consent.no_way")
    assert finding.severity == "warning" and "2 subject(s)" in finding.message
    # the purpose stops resting on consent: the records no longer back anything
    not_consent = _purpose(
        engine.policy, "newsletter", basis="legitimate_interests", legitimate_interest="x"
    )
    [stale] = audit_policy(not_consent, store=engine.store).by_check("consent.stale_records")
    assert stale.severity == "warning" and "2 subject(s)" in stale.message
    report = audit_policy(engine.policy, store=engine.store)
    assert [f.place for f in report.by_check("consent.none_recorded")] == ["purposes.reviews"]


# --- retention ----------------------------------------------------------------------------


def test_retention_mismatches(shop_env: str, shop_policy: Policy) -> None:
    broken = load_dataset_text(
        _dataset_text(
            "erase: keep\n    reason: commercial and tax law keep invoices for 10 years from issue\n    rule: invoices",
            "erase: keep\n    reason: commercial and tax law keep invoices for 10 years from issue\n    rule: invoicez",
        ),
        "broken.yaml",
    )
    rules = dict(shop_policy.retention)
    rules["old_surveys"] = rules["invoices"].model_copy(
        update={"purposes": [], "categories": ["user.demographic.gender"], "description": "Surveys"}
    )
    policy = shop_policy.model_copy(update={"retention": rules})
    report = audit_policy(policy, [broken])
    [unknown] = report.by_check("retention.unknown_rule")
    assert (unknown.severity, unknown.place) == ("error", "shop.tax_records")
    assert "'invoicez'" in unknown.message
    [unused] = report.by_check("retention.unused_rule")
    assert (unused.severity, unused.place) == ("warning", "retention.old_surveys")
    uncovered = {f.place for f in report.by_check("retention.uncovered_table")}
    assert uncovered == {"shop.newsletter_subscriptions"}
    # The annotation names each table's rule (`retention:`): nothing had to be inferred.
    assert not report.by_check("retention.inferred")


def test_table_without_any_rule(shop_env: str, shop_policy: Policy) -> None:
    # login_events is covered only by the security purpose's inline rule; without it,
    # nothing covers the IP addresses and devices.
    broken = _purpose(shop_policy, "security", retention=None)
    report = audit_policy(broken, [load_dataset(SHOP_DATASET)])
    assert "shop.login_events" in {f.place for f in report.by_check("retention.uncovered_table")}


# --- disclosures and transfers -----------------------------------------------------------------


def _with_recipients(policy: Policy, **recipients: dict) -> Policy:
    found = dict(policy.recipients)
    for name, spec in recipients.items():
        found[name] = Recipient.model_validate(spec)
    return _purpose(
        policy.model_copy(update={"recipients": found}), "orders", recipients=list(recipients)
    )


def _log(
    engine: Engine,
    recipient: str,
    purpose: str,
    categories: list[str],
    country: str,
    safeguard: str | None,
    n: int = 1,
) -> None:
    controller_id = _controller_id(engine)
    rows = [
        {
            "controller_id": controller_id,
            "ref": uuid.uuid4().hex,
            "batch": uuid.uuid4().hex,
            "identity_hash": f"{i:064x}",
            "recipient": recipient,
            "purpose": purpose,
            "categories": categories,
            "country": country,
            "jurisdictions": "eu",
            "safeguard": safeguard,
            "at": NOW,
        }
        for i in range(n)
    ]
    with engine.store.engine.begin() as conn:
        conn.execute(sa.insert(disclosures), rows)


def test_disclosure_log_against_the_policy(engine: Engine) -> None:
    policy = _with_recipients(
        engine.policy,
        carrier={
            "role": "processor",
            "country": "DE",
            "categories": ["user.name", "user.contact.address"],
        },
    )
    _log(engine, "ghost", "orders", ["user.name"], "DE", None, n=3)
    _log(engine, "carrier", "support", ["user.name"], "DE", None)
    _log(engine, "carrier", "orders", ["user.name", "user.contact.email"], "DE", None)
    _log(engine, "carrier", "orders", ["user.contact.address.city"], "DE", None)  # fine
    report = audit_policy(policy, store=engine.store)
    [ghost] = report.by_check("disclosures.undeclared_recipient")
    assert ghost.severity == "error" and "'ghost'" in ghost.message and "3 logged" in ghost.place
    [purpose] = report.by_check("disclosures.purpose")
    assert "'support'" in purpose.message and "purposes.support.recipients" in purpose.fix
    [extra] = report.by_check("disclosures.categories")
    assert "user.contact.email" in extra.message and "user.name" not in extra.message
    assert len(report.errors) == 3


def test_transfers_without_safeguards(engine: Engine) -> None:
    policy = _with_recipients(
        engine.policy,
        mailer={"role": "processor", "country": "US"},  # outside the EEA, no safeguard
        cloud={"role": "processor", "country": "JP", "safeguards": ["scc"]},
    )
    _log(engine, "cloud", "orders", ["user.name"], "JP", None)  # went abroad, nothing recorded
    _log(engine, "cloud", "orders", ["user.name"], "JP", "adequacy")
    report = audit_policy(policy, store=engine.store)
    [missing] = [
        f for f in report.by_check("transfers.no_safeguard") if f.place.startswith("recipients.")
    ]
    assert missing.place == "recipients.mailer.safeguards" and missing.severity == "error"
    [unrecorded] = report.by_check("transfers.unrecorded_safeguard")
    assert "JP" in unrecorded.message and "1 logged" in unrecorded.place
    assert audit_policy(engine.policy).by_check("transfers.no_safeguard") == []


# --- deadlines ----------------------------------------------------------------------------


def _request(
    engine: Engine,
    received: datetime,
    due: datetime,
    closed: datetime | None,
    paused: datetime | None = None,
) -> str:
    ref = uuid.uuid4().hex
    with engine.store.engine.begin() as conn:
        conn.execute(
            sa.insert(requests).values(
                controller_id=_controller_id(engine),
                ref=ref,
                kind="access",
                state="completed" if closed else "in_progress",
                identity_kind="email",
                identity_hash="0" * 64,
                channel="api",
                received_at=received,
                due_at=due,
                closed_at=closed,
                paused_at=paused,
                updated_at=received,
            )
        )
    return ref


def test_deadlines_of_the_last_requests(engine: Engine) -> None:
    day = timedelta(days=1)
    start = NOW - 90 * day
    on_time = _request(engine, start, start + 30 * day, start + 10 * day)
    late = _request(engine, start + day, start + 31 * day, start + 35 * day)
    overdue = _request(engine, start + 2 * day, start + 32 * day, None)
    _request(engine, start + 3 * day, start + 33 * day, None, paused=start + 20 * day)
    _request(engine, NOW - day, NOW + 29 * day, None)  # open, not yet due
    report = audit_policy(engine.policy, store=engine.store, now=NOW)
    [missed] = report.by_check("deadlines.missed")
    assert missed.place == f"requests.{late}" and "4 day(s) after" in missed.message
    [open_late] = report.by_check("deadlines.overdue")
    assert open_late.place == f"requests.{overdue}"
    [summary] = report.by_check("deadlines.summary")
    assert summary.message.startswith("3 of the last 5")
    # only the newest two: neither is late
    recent = audit_policy(engine.policy, store=engine.store, now=NOW, last_requests=2)
    assert recent.by_check("deadlines.missed") == [] and recent.by_check("deadlines.overdue") == []
    assert on_time not in str(report.to_dict())
    with pytest.raises(ValueError, match="at least 1"):
        audit_policy(engine.policy, store=engine.store, last_requests=0)


def test_unreachable_database_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, shop_policy: Policy
) -> None:
    monkeypatch.delenv("SHOP_DATABASE_URL", raising=False)
    report = audit_policy(shop_policy, [load_dataset(SHOP_DATASET)])
    [note] = report.by_check("datasets.unreachable")
    assert note.severity == "warning" and "SHOP_DATABASE_URL is not set" in note.message
    assert report.ok and not report.by_check("categories.empty")
