"""ISO/IEC TS 27560 consent receipts from `engine.consent.receipt(ref)` (SQLite + PostgreSQL).

A receipt states every element the specification asks for, with the terms of the policy
version the subject was shown (not the current one), W3C DPV states, and no identity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lawful.consent import ChoiceInput, Consent, ConsentError, ConsentRecord, Status, Topic
from lawful.engine import Engine
from lawful.subjects import Identity, Keyring
from tests.consent.conftest import POLICY, open_engine

ALICE = "email:alice@example.com"
PHONE = "phone:+14155550100"
PARENT = "email:parent@example.com"
AT = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
NOTICE = "Get our newsletter: news and deals by email, about twice a month."

TEXT = POLICY.read_text()


def variant(*changes: tuple[str, str], text: str = TEXT) -> str:
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    return text


NEWSLETTER_CONSENT = "    consent: {via: [checkbox, form], expires: 1 year}\n"
NEWSLETTER_CATEGORIES = "    categories: [user.contact.email]\n    channels: [email, sms]"
ADNET = "  adnet: {role: partner, country: US, safeguards: [dpf], sale: true, share: true}"
# The test policy, plus what a receipt shows when a policy declares it.
FULL = (
    variant(
        (
            NEWSLETTER_CONSENT,
            NEWSLETTER_CONSENT
            + "    retention: {keep: 2 years, from: last_activity, then: delete}\n",
        ),
        (ADNET, ADNET.replace("{role: partner", "{name: AdNet Inc, role: partner")),
        ('version: "1"\n', 'version: "2026-01"\nlanguages: [de, en]\n'),
    )
    + "transfers: {storage: [IE, DE]}\n"
)


@pytest.fixture
def full(store_url: str, keyring: Keyring) -> Iterator[Engine]:
    with open_engine(store_url, keyring, FULL) as engine:
        yield engine


def subject_ref(engine: Engine, who: str) -> str:
    found = engine.consent.subject(who)
    assert found is not None
    return found.ref


# -- the mandatory elements ----------------------------------------------------------------


def test_receipt_carries_every_mandatory_element(full: Engine) -> None:
    full.consent.set_subject(ALICE, jurisdiction="eu")
    record = full.consent.give(
        ALICE,
        "newsletter",
        method="checkbox",
        at=AT,
        notice_text=NOTICE,
        language="fr",
        evidence={"form": "signup-v2"},
    )
    receipt = full.consent.receipt(record.ref)
    assert receipt["schema"] == "ISO/IEC TS 27560:2023"
    assert receipt["recordId"] == record.ref
    assert receipt["piiPrincipalId"] == subject_ref(full, ALICE) == record.subject_ref
    assert receipt["notice"] == {
        "policyVersion": 1,
        "policyLabel": "2026-01",
        "policyHash": full.policy_version.content_hash,
        "noticeHash": hashlib.sha256(NOTICE.encode("utf-8")).hexdigest(),
        "language": "fr",
    }
    [purpose] = receipt["purposes"]
    assert purpose["purposeId"] == "newsletter"
    assert purpose["dataUse"] == "marketing.communications.email"
    assert purpose["lawfulBasis"] == "dpv:Consent"
    assert purpose["personalData"] == ["user.contact.email"]
    assert purpose["retentionPeriod"] == "2 years from last_activity, then delete"
    assert purpose["scope"] is None
    assert receipt["controller"] == {
        "name": "Decide Test Ltd",
        "tradeName": None,
        "country": "IE",
        "contact": "privacy@decide.example",
        "address": "1 Test Street, Dublin",
    }
    assert receipt["storageLocation"] == ["IE", "DE"]
    assert receipt["jurisdiction"] == "eu"
    assert "an email to privacy@decide.example" in receipt["withdrawalMethod"]
    assert "unsubscribe link" in receipt["withdrawalMethod"]
    assert receipt["event"] == [
        {
            "eventTime": AT.isoformat(),
            "eventType": "checkbox",
            "eventBy": "data subject",
            "eventState": "dpv:ConsentGiven",
        }
    ]
    assert receipt["validity"] == {
        "from": AT.isoformat(),
        "until": datetime(2027, 1, 15, 10, 30, tzinfo=UTC).isoformat(),
    }
    assert receipt["consentType"] == "dpv:ExpressedConsent"
    assert receipt["state"] == "dpv:ConsentGiven"
    assert receipt["evidence"] == {"form": "signup-v2"}


def test_receipt_defaults_from_the_policy(engine: Engine) -> None:
    record = engine.consent.give(ALICE, "site_analytics")  # no expiry, no notice, no language
    receipt = engine.consent.receipt(record.ref)
    assert receipt["notice"]["language"] == "en"  # the policy's first language
    assert receipt["notice"]["noticeHash"] is None
    assert receipt["validity"]["until"] is None
    assert receipt["storageLocation"] == ["IE"]  # no storage declared: the controller's country
    assert receipt["jurisdiction"] == ["eu", "us-ca"]  # the subject's is unknown
    [purpose] = receipt["purposes"]
    assert purpose["retentionPeriod"] is None
    assert purpose["recipients"] == []
    assert purpose["personalData"] == ["user.device.cookie_id"]


def test_receipt_language_defaults_to_the_policys_first(full: Engine) -> None:
    record = full.consent.give(ALICE, "newsletter")
    assert full.consent.receipt(record.ref)["notice"]["language"] == "de"


def test_receipt_lists_recipients_with_names_and_countries(full: Engine) -> None:
    record = full.consent.give(ALICE, "ad_sharing", method="banner")
    [purpose] = full.consent.receipt(record.ref)["purposes"]
    assert purpose["recipients"] == [{"name": "AdNet Inc", "role": "partner", "country": ["US"]}]
    assert purpose["personalData"] == ["user.device.cookie_id"]


def test_receipt_lists_recipients_that_name_the_purpose(engine: Engine) -> None:
    record = engine.consent.give(ALICE, "newsletter")
    [purpose] = engine.consent.receipt(record.ref)["purposes"]
    assert {"name": "mailer", "role": "processor", "country": ["IE"]} in purpose["recipients"]


def test_separate_consent_is_explicit(store_url: str, keyring: Keyring) -> None:
    text = variant(
        (
            NEWSLETTER_CONSENT,
            "    consent: {via: [checkbox, form], expires: 1 year, separate: true}\n",
        )
    )
    with open_engine(store_url, keyring, text) as engine:
        separate = engine.consent.give(ALICE, "newsletter")
        assert (
            engine.consent.receipt(separate.ref)["consentType"] == "dpv:ExplicitlyExpressedConsent"
        )
        other = engine.consent.give(ALICE, "site_analytics")
        assert engine.consent.receipt(other.ref)["consentType"] == "dpv:ExpressedConsent"


# -- states --------------------------------------------------------------------------------

STATES: dict[str, tuple[Callable[[Consent], ConsentRecord], str]] = {
    "given": (lambda c: c.give(ALICE, "newsletter"), "dpv:ConsentGiven"),
    "withdrawn": (lambda c: c.withdraw(ALICE, "newsletter"), "dpv:ConsentWithdrawn"),
    "renewed": (lambda c: c.give(ALICE, "newsletter"), "dpv:RenewedConsentGiven"),
    "refused": (lambda c: c.refuse(ALICE, "newsletter"), "dpv:ConsentRefused"),
    "requested": (lambda c: c.request(ALICE, "newsletter"), "dpv:ConsentRequested"),
    "expired": (
        lambda c: c.record_many([ChoiceInput(ALICE, Topic.consent, "newsletter", Status.expired)])[
            0
        ],
        "dpv:ConsentExpired",
    ),
    "invalidated": (
        lambda c: c.record_many(
            [ChoiceInput(ALICE, Topic.consent, "newsletter", Status.invalidated)]
        )[0],
        "dpv:ConsentInvalidated",
    ),
}


@pytest.mark.parametrize("state", list(STATES))
def test_states_map_to_dpv(engine: Engine, state: str) -> None:
    action, dpv = STATES[state]
    if state == "renewed":
        engine.consent.give(ALICE, "newsletter", at=datetime.now(UTC) - timedelta(days=400))
    record = action(engine.consent)
    assert record.state is Status(state)
    receipt = engine.consent.receipt(record.ref)
    assert receipt["state"] == dpv
    assert [e["eventState"] for e in receipt["event"]] == [dpv]


# -- terms as they were --------------------------------------------------------------------


def test_receipt_shows_the_terms_of_the_version_shown(store_url: str, keyring: Keyring) -> None:
    with open_engine(store_url, keyring) as v1:
        old = v1.consent.give(ALICE, "newsletter")
        v1_hash = v1.policy_version.content_hash
    v2_text = variant(
        (
            NEWSLETTER_CATEGORIES,
            NEWSLETTER_CATEGORIES.replace(
                "[user.contact.email]", "[user.contact.email, user.name]"
            ),
        ),
        ('version: "1"', 'version: "2"'),
    )
    with open_engine(store_url, keyring, v2_text) as v2:
        assert v2.policy_version.number == 2
        before = v2.consent.receipt(old.ref)
        assert before["notice"]["policyVersion"] == 1
        assert before["notice"]["policyLabel"] == "1"
        assert before["notice"]["policyHash"] == v1_hash
        assert before["purposes"][0]["personalData"] == ["user.contact.email"]
        new = v2.consent.give(ALICE, "newsletter")
        after = v2.consent.receipt(new.ref)
        assert after["notice"]["policyVersion"] == 2
        assert after["notice"]["policyLabel"] == "2"
        assert after["notice"]["policyHash"] == v2.policy_version.content_hash != v1_hash
        assert after["purposes"][0]["personalData"] == ["user.contact.email", "user.name"]
        assert after["state"] == "dpv:RenewedConsentGiven"  # v2 changed it materially


# -- who acted -----------------------------------------------------------------------------


def test_a_parents_consent_is_given_by_a_parent(engine: Engine) -> None:
    given = engine.consent.give(ALICE, "newsletter", parent=PARENT)
    [event] = engine.consent.receipt(given.ref)["event"]
    assert (event["eventBy"], event["eventType"]) == ("parent or guardian", "parent")
    parental = engine.consent.parental_consent(ALICE, parent=PARENT)
    [event] = engine.consent.receipt(parental.ref)["event"]
    assert event["eventBy"] == "parent or guardian"
    own = engine.consent.give(ALICE, "newsletter", method="form")
    [event] = engine.consent.receipt(own.ref)["event"]
    assert (event["eventBy"], event["eventType"]) == ("data subject", "form")


def test_a_parents_written_consent_is_given_by_a_parent(engine: Engine) -> None:
    record = engine.consent.parental_consent(ALICE, parent=PARENT, method="written")
    assert record.actor is not None
    [event] = engine.consent.receipt(record.ref)["event"]
    assert event["eventBy"] == "parent or guardian"


def test_unknown_record_is_named(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter")
    missing = "0" * 32
    with pytest.raises(ConsentError, match=f"no consent record '{missing}'"):
        engine.consent.receipt(missing)


# -- safe to hand out ----------------------------------------------------------------------


def test_receipt_is_json_and_holds_no_identity(engine: Engine, keyring: Keyring) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    engine.consent.link(ALICE, PHONE)
    records = [
        engine.consent.give(ALICE, "newsletter", notice_text=NOTICE, evidence={"form": "x"}),
        engine.consent.give(ALICE, "newsletter", parent=PARENT),
        engine.consent.unsubscribe(PHONE, channel="email"),
        engine.consent.parental_consent(ALICE, parent=PARENT),
        *engine.consent.set_cookies(ALICE, {"analytics": True}),
    ]
    forbidden = [Identity.parse(i).value for i in (ALICE, PHONE, PARENT)] + [
        keyring.hash(Identity.parse(i)) for i in (ALICE, PHONE, PARENT)
    ]
    for record in records:
        text = json.dumps(engine.consent.receipt(record.ref))
        assert json.loads(text)["recordId"] == record.ref
        for value in forbidden:
            assert value not in text
        assert "alice" not in text and "parent@" not in text
    # A preference's receipt says what it is about.
    preference = engine.consent.receipt(records[2].ref)
    assert preference["purposes"] == [{"purpose": "channel:email", "scope": None}]
    assert preference["state"] == "dpv:ConsentWithdrawn"
    assert preference["jurisdiction"] == "us-ca"
