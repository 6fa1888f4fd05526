"""One disclosure: allowed and logged, or refused for each distinct reason.

Checked with plain SQL on the log (`disclosures`) and the audit chain (`audit_events`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from lawful.audit import AuditLog
from lawful.disclosure import DisclosureError, Disclosures
from lawful.engine import Engine
from lawful.subjects import Identity
from tests.disclosure.conftest import facade

ALICE = "email:alice@example.com"


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.store.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def logged(engine: Engine) -> list[Any]:
    return rows(
        engine,
        "SELECT ref, batch, subject_id, identity_hash, recipient, purpose, categories, country,"
        " jurisdictions, safeguard, deidentified, at FROM disclosures ORDER BY id",
    )


def events(engine: Engine, kind: str) -> list[Any]:
    found = rows(
        engine, "SELECT kind, subject, data FROM audit_events WHERE kind = :k ORDER BY seq", k=kind
    )
    return [(k, s, json.loads(d) if isinstance(d, str) else d) for k, s, d in found]


def refused_once(engine: Engine, rule: str) -> dict[str, Any]:
    """Nothing was logged, and exactly one refusal event names `rule`."""
    assert logged(engine) == []
    found = events(engine, "disclosure.refused")
    assert [e[2]["rule"] for e in found] == [rule]
    return found[0][2]


def test_an_allowed_disclosure_is_logged_with_its_audit_event(
    engine: Engine, disclosures: Disclosures
) -> None:
    subject = engine.consent.subject(ALICE, create=True)
    assert subject is not None
    decision = disclosures.disclose(
        ALICE, "carrier", ["user.name", "user.contact.address"], "orders"
    )
    assert decision.allowed, decision.reason
    assert decision.rule == "allowed"
    assert decision.ref and decision.subject == subject.ref
    assert decision.transfer is not None
    legs = {leg.jurisdiction: leg.basis for leg in decision.transfer.legs}
    assert legs == {"eu": "internal", "us-ca": "no_conditions"}

    [row] = logged(engine)
    assert row.ref == decision.ref and row.batch == decision.batch
    assert row.subject_id == subject.id
    assert row.identity_hash == engine.keyring.hash(Identity.parse(ALICE))
    assert (row.recipient, row.purpose, row.country) == ("carrier", "orders", "DE")
    categories = json.loads(row.categories) if isinstance(row.categories, str) else row.categories
    assert categories == ["user.name", "user.contact.address"]
    assert row.safeguard is None  # Germany is inside the EEA: nothing relied on
    assert row.jurisdictions == "eu,us-ca"  # the subject's law unknown: every law served
    assert not row.deidentified

    [(_, who, data)] = events(engine, "disclosure.made")
    assert who == engine.keyring.subject_hash(subject.ref)
    assert data["disclosure"] == decision.ref and data["recipient"] == "carrier"
    # No raw personal data anywhere in the log or the event.
    assert "alice" not in json.dumps([list(r) for r in logged(engine)], default=str)
    assert "alice" not in json.dumps(data)
    assert AuditLog(engine.store, engine.policy.key).verify().ok


def test_a_transfer_on_a_safeguard_is_logged_with_it(
    engine: Engine, disclosures: Disclosures
) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="eu")
    decision = disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "orders")
    assert decision.allowed, decision.reason
    [row] = logged(engine)
    assert (row.country, row.safeguard, row.jurisdictions) == ("US", "dpf", "eu")
    assert "Data Privacy Framework" in decision.reason or "dpf" in decision.reason


def test_a_disclosure_of_someone_lawful_does_not_know_is_logged_by_identity_hash(
    engine: Engine, disclosures: Disclosures
) -> None:
    decision = disclosures.disclose(ALICE, "carrier", ["user.name"], "orders")
    assert decision.allowed and decision.subject is None
    [row] = logged(engine)
    assert row.subject_id is None
    assert row.identity_hash == engine.keyring.hash(Identity.parse(ALICE))
    [(_, who, _data)] = events(engine, "disclosure.made")
    assert who == row.identity_hash


# -- one test per reason for refusing ----------------------------------------------------


def test_refused_recipient_not_declared(engine: Engine, disclosures: Disclosures) -> None:
    decision = disclosures.disclose(ALICE, "acme_data_brokers", ["user.name"], "orders")
    assert not decision and decision.rule == "recipient.not_declared"
    assert "acme_data_brokers" in decision.reason and "carrier" in decision.reason
    data = refused_once(engine, "recipient.not_declared")
    assert data["recipient"] is None  # a name the policy lacks is not written to the log


def test_refused_purpose_unknown(engine: Engine, disclosures: Disclosures) -> None:
    decision = disclosures.disclose(ALICE, "carrier", ["user.name"], "order")
    assert decision.rule == "purpose.unknown"
    assert "did you mean 'orders'" in decision.reason
    refused_once(engine, "purpose.unknown")


def test_refused_purpose_not_declared_for_that_recipient(
    engine: Engine, disclosures: Disclosures
) -> None:
    decision = disclosures.disclose(ALICE, "carrier", ["user.name"], "newsletter")
    assert decision.rule == "purpose.not_declared"
    assert "its purposes: orders" in decision.reason
    refused_once(engine, "purpose.not_declared")


def test_refused_category_not_allowed_for_that_recipient(
    engine: Engine, disclosures: Disclosures
) -> None:
    # orders uses the email address, but the carrier may receive only name and address
    decision = disclosures.disclose(ALICE, "carrier", ["user.name", "user.contact.email"], "orders")
    assert decision.rule == "category.not_allowed"
    assert "user.contact.email" in decision.reason and "user.contact.address" in decision.reason
    refused_once(engine, "category.not_allowed")


def test_a_broader_category_than_declared_is_refused(
    engine: Engine, disclosures: Disclosures
) -> None:
    decision = disclosures.disclose(ALICE, "carrier", ["user.contact"], "orders")
    assert decision.rule == "category.not_allowed"


@pytest.mark.parametrize("kind", ["sale", "share"])
def test_refused_subject_opted_out_of_sale_or_share(
    engine: Engine, disclosures: Disclosures, kind: str
) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    engine.consent.opt_out(ALICE, kind)
    decision = disclosures.disclose(
        ALICE, "adnet", ["user.device.cookie_id"], "ad_sharing", jurisdiction="us-ca"
    )
    assert decision.rule == f"opt_out.{kind}"
    assert "CCPA" in decision.reason
    refused_once(engine, f"opt_out.{kind}")


def test_without_an_opt_out_the_sale_goes_ahead(engine: Engine, disclosures: Disclosures) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    decision = disclosures.disclose(ALICE, "adnet", ["user.device.cookie_id"], "ad_sharing")
    assert decision.allowed, decision.reason


def test_refused_subject_restricted_that_recipient(
    engine: Engine, disclosures: Disclosures
) -> None:
    engine.consent.restrict_recipient(ALICE, "mailer")
    decision = disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "orders")
    assert decision.rule == "recipient.restricted"
    refused_once(engine, "recipient.restricted")
    # the other recipients of the same purpose still receive
    assert disclosures.disclose(ALICE, "carrier", ["user.name"], "orders").allowed


def test_refused_processing_restricted(engine: Engine, disclosures: Disclosures) -> None:
    engine.consent.restrict(ALICE)
    decision = disclosures.disclose(ALICE, "carrier", ["user.name"], "orders")
    assert decision.rule == "restriction"
    assert "Art. 18" in decision.reason
    refused_once(engine, "restriction")


def test_a_restriction_lets_a_legal_obligation_go_on(
    engine: Engine, disclosures: Disclosures
) -> None:
    engine.consent.restrict(ALICE)
    assert disclosures.disclose(ALICE, "lawyers", ["user.name"], "legal_claims").allowed


def test_refused_consent_missing_for_a_consent_purpose(
    engine: Engine, disclosures: Disclosures
) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="eu")
    decision = disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "newsletter")
    assert decision.rule == "consent.missing"
    assert decision.decision is not None and decision.decision.rule == "consent.missing"
    refused_once(engine, "consent.missing")
    engine.consent.give(ALICE, "newsletter", method="checkbox")
    assert disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "newsletter").allowed


def test_refused_transfer_without_a_safeguard(engine: Engine, disclosures: Disclosures) -> None:
    # A Brazilian customer: the LGPD recognises no adequate country, and the mailer
    # declares only the Data Privacy Framework, which is not an LGPD mechanism.
    engine.consent.set_subject(ALICE, jurisdiction="br")
    decision = disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "orders")
    assert decision.rule == "transfer.no_safeguard"
    assert decision.reason.startswith("the LGPD (Brazil) recognises no adequate countries")
    assert "add safeguards: [scc]" in decision.reason and "or stop the transfer" in decision.reason
    assert decision.transfer is not None and not decision.transfer.allowed
    refused_once(engine, "transfer.no_safeguard")


def test_refused_transfer_without_separate_consent_pipl(
    seed_engine: Callable[[str], Engine],
) -> None:
    engine = seed_engine("seestar_store")
    disclosures = facade(engine)
    decision = disclosures.disclose(ALICE, "paypal", ["user.payment"], "payment")
    assert decision.rule == "transfer.separate_consent_missing"
    assert "PIPL Art. 39" in decision.reason
    refused_once(engine, "transfer.separate_consent_missing")


def test_the_first_failing_check_gives_the_reason(engine: Engine, disclosures: Disclosures) -> None:
    engine.consent.restrict(ALICE)
    engine.consent.restrict_recipient(ALICE, "mailer")
    # both apply: restricting the recipient is checked before restricting processing
    decision = disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "orders")
    assert decision.rule == "recipient.restricted"


# -- bad input is an error, not a refusal --------------------------------------------------


def test_bad_input_is_an_error_and_nothing_is_written(
    engine: Engine, disclosures: Disclosures
) -> None:
    with pytest.raises(DisclosureError, match="name the data categories"):
        disclosures.disclose(ALICE, "carrier", [], "orders")
    with pytest.raises(DisclosureError, match=r"'user\.adress' is not a data category"):
        disclosures.disclose(ALICE, "carrier", ["user.adress"], "orders")
    with pytest.raises(DisclosureError, match="time zone"):
        disclosures.disclose(ALICE, "carrier", ["user.name"], "orders", at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="not a jurisdiction"):
        disclosures.disclose(ALICE, "carrier", ["user.name"], "orders", jurisdiction="mars")
    with pytest.raises(ValueError, match="kind"):
        disclosures.disclose("alice", "carrier", ["user.name"], "orders")
    assert logged(engine) == []
    assert (
        rows(engine, "SELECT count(*) FROM audit_events WHERE kind LIKE 'disclosure.%'")[0][0] == 0
    )


def test_the_time_given_is_the_time_logged(engine: Engine, disclosures: Disclosures) -> None:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    decision = disclosures.disclose(ALICE, "carrier", ["user.name"], "orders", at=at)
    assert decision.at == at
    [row] = logged(engine)
    when = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(row.at)
    assert when.replace(tzinfo=UTC) == at
