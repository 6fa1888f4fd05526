"""Cross-border transfers under each seed policy with recipients abroad, and PIPL's
separate consent present and absent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from lawful.disclosure import (
    DisclosureError,
    SubjectConsent,
    TransferDecision,
    applicable_jurisdictions,
    decide_transfer,
)
from lawful.engine import Engine
from lawful.policy import Policy, load_policy, load_policy_text
from lawful.policy.model import Recipient
from lawful.subjects import Keyring
from tests.disclosure.conftest import SEEDS, facade, open_engine

ALICE = "email:alice@example.com"
GIVEN = SubjectConsent(separate_consent=True, consent=True)
NONE = SubjectConsent()


def seed(name: str) -> Policy:
    return load_policy(SEEDS / f"{name}.yaml").policy


def check(
    policy: Policy,
    recipient: str,
    consent: SubjectConsent | None = None,
    jurisdiction: str | None = None,
) -> TransferDecision:
    return decide_transfer(
        policy,
        recipient,
        jurisdictions=applicable_jurisdictions(policy, jurisdiction),
        consent=consent,
    )


def with_recipient(policy: Policy, name: str, **spec: object) -> Policy:
    """The policy with one recipient replaced (checks skipped: a what-if)."""
    recipients = dict(policy.recipients)
    recipients[name] = Recipient.model_validate(spec)
    return policy.model_copy(update={"recipients": recipients})


# -- Seestar Store (PIPL): every carrier abroad and PayPal need separate consent ------------


@pytest.mark.parametrize(
    ("recipient", "country"),
    [
        ("paypal", "US"),
        ("aramex", "AE"),
        ("dhl_express", "DE"),
        ("fedex", "US"),
        ("tnt", "NL"),
        ("ups", "US"),
    ],
)
def test_seestar_recipients_abroad_need_the_subjects_separate_consent(
    recipient: str, country: str
) -> None:
    policy = seed("seestar_store")
    refused = check(policy, recipient, NONE)
    assert (refused.allowed, refused.rule) == (False, "transfer.separate_consent_missing")
    assert f"out of cn to {country}" in refused.reason and "PIPL Art. 39" in refused.reason
    allowed = check(policy, recipient, GIVEN)
    assert allowed.allowed and allowed.rule == "transfer.safeguard"
    assert allowed.safeguards == ("standard_contract", "separate_consent", "contract")
    assert not allowed.deidentify  # a carrier needs the address: not de-identified
    unknown = check(policy, recipient, None)  # no subject: decided per person only
    assert unknown.rule == "transfer.needs_subject_consent" and not unknown


@pytest.mark.parametrize(
    "recipient",
    [
        "china_post",
        "post_17",
        "affiliates",
        "authorized_partners",
        "advertising_partners",
        "authorities",
        "acquirers",
    ],
)
def test_seestar_recipients_in_china_are_not_transfers(recipient: str) -> None:
    decision = check(seed("seestar_store"), recipient, NONE)
    assert decision.allowed and decision.rule == "transfer.internal"
    assert "CN is inside mainland China" in decision.reason
    assert not decision.abroad and decision.safeguard is None


def test_seestar_worldwide_servers_get_de_identified_data() -> None:
    decision = check(seed("seestar_store"), "global_infrastructure", GIVEN)
    assert decision.allowed and decision.deidentify
    assert decision.deidentify_categories == (
        "user.account.username",
        "user.contact.email",
        "user.device",
        "user.behavior.purchase_history",
    )
    assert "de-identified" in decision.reason


# -- Selro (EU and UK GDPR, established in GB) -----------------------------------------------


@pytest.mark.parametrize("recipient", ["stripe", "paypal"])
def test_selro_payment_providers_in_the_eea_are_allowed(recipient: str) -> None:
    decision = check(seed("selro"), recipient)
    assert decision.allowed
    legs = {leg.jurisdiction: leg.basis for leg in decision.legs}
    assert legs == {"uk": "adequacy", "eu": "internal"}  # the EEA is adequate for the UK
    assert decision.safeguards == ("adequacy",)


def test_selro_forum_readers_anywhere_are_not_a_transfer() -> None:
    decision = check(seed("selro"), "other_users")
    assert decision.allowed and decision.rule == "transfer.not_a_transfer"


def test_selro_paypal_under_the_pipl_would_be_refused() -> None:
    decision = check(seed("selro"), "paypal", GIVEN, jurisdiction="cn")
    assert decision.rule == "transfer.requirement_missing"
    assert decision.reason == (
        "a transfer out of cn to LU needs separate_consent and recipient 'paypal' does not "
        "declare it: add safeguards: [separate_consent] to the recipient or stop the transfer"
    )


# -- Sera (GDPR, Estonia): processors anywhere on SCCs ---------------------------------------


@pytest.mark.parametrize(
    "recipient",
    [
        "email_and_chat",
        "cloud_providers",
        "llm_providers",
        "machine_translation",
        "fraud_prevention",
        "analytics_providers",
        "cookie_partners",
        "advisors",
        "acquirers",
    ],
)
def test_sera_recipients_anywhere_rest_on_sccs(recipient: str) -> None:
    decision = check(seed("sera_leads"), recipient)
    assert decision.allowed and decision.safeguards == ("scc",)
    assert "GDPR Art. 46(2)(c)" in decision.reason


@pytest.mark.parametrize("recipient", ["authorities", "law_enforcement"])
def test_sera_authorities_anywhere_are_not_a_transfer(recipient: str) -> None:
    assert check(seed("sera_leads"), recipient).rule == "transfer.not_a_transfer"


def test_sera_without_sccs_a_country_without_adequacy_is_refused_and_explained() -> None:
    policy = with_recipient(
        seed("sera_leads"),
        "email_and_chat",
        role="processor",
        country="IN",
        safeguards=["contract"],
    )
    decision = check(policy, "email_and_chat")
    assert decision.rule == "transfer.no_safeguard"
    assert decision.reason == (
        "no adequacy decision for IN under the GDPR (EU/EEA) and no BCR/SCC declared for "
        "recipient 'email_and_chat': add safeguards: [scc] to the recipient (any of bcr, scc) "
        "or stop the transfer out of eu"
    )


def test_sera_adequate_and_dpf_countries() -> None:
    policy = with_recipient(seed("sera_leads"), "x", role="processor", country="JP")
    decision = check(policy, "x")
    assert decision.allowed and decision.rule == "transfer.adequacy"
    assert "Decision (EU) 2019/419" in decision.reason
    us = with_recipient(seed("sera_leads"), "x", role="processor", country="US", safeguards=["dpf"])
    assert check(us, "x").safeguards == ("dpf",)
    uncertified = with_recipient(seed("sera_leads"), "x", role="processor", country="US")
    refused = check(uncertified, "x")
    assert refused.rule == "transfer.no_safeguard"
    assert "only for recipients certified under dpf" in refused.reason


# -- Serai (Hong Kong; EU, California, elsewhere) --------------------------------------------


def test_serai_service_providers_anywhere_rest_on_sccs_for_europeans_only() -> None:
    policy = seed("serai")
    unknown = check(policy, "service_providers")
    assert unknown.allowed and unknown.jurisdictions == ("eu", "us-ca", "other")
    assert {leg.jurisdiction: leg.basis for leg in unknown.legs} == {
        "eu": "scc",
        "us-ca": "no_conditions",
        "other": "no_conditions",
    }
    californian = check(policy, "service_providers", jurisdiction="us-ca")
    assert californian.jurisdictions == ("us-ca",)  # HK: no served law covers the controller
    assert californian.rule == "transfer.no_conditions" and californian.safeguards == ()


def test_serai_authorities_and_other_users_are_not_transfers() -> None:
    policy = seed("serai")
    assert check(policy, "authorities").rule == "transfer.not_a_transfer"
    assert check(policy, "other_users").rule == "transfer.not_a_transfer"


# -- PIPL separate consent, read from the consent ledger --------------------------------------


def test_seestar_separate_consent_present_and_absent(
    seed_engine: Callable[[str], Engine],
) -> None:
    engine = seed_engine("seestar_store")
    disclosures = facade(engine)
    absent = disclosures.disclose(ALICE, "dhl_express", ["user.contact.address"], "delivery")
    assert absent.rule == "transfer.separate_consent_missing"
    assert disclosures.check_transfer("dhl_express", subject=ALICE).rule == (
        "transfer.separate_consent_missing"
    )
    # the customer ticks the separate box for sending their parcel data abroad
    engine.consent.allow_recipient(ALICE, "dhl_express", method="checkbox")
    present = disclosures.disclose(ALICE, "dhl_express", ["user.contact.address"], "delivery")
    assert present.allowed, present.reason
    assert present.transfer is not None
    assert present.transfer.safeguard == "standard_contract,separate_consent,contract"
    # consent to one recipient is not consent to another
    assert (
        disclosures.disclose(ALICE, "fedex", ["user.contact.address"], "delivery").rule
        == "transfer.separate_consent_missing"
    )
    with engine.store.engine.connect() as conn:
        logged = conn.execute(
            sa.text("SELECT recipient, country, safeguard, jurisdictions FROM disclosures")
        ).all()
    assert logged == [("dhl_express", "DE", "standard_contract,separate_consent,contract", "cn")]
    # withdrawing it stops the next transfer
    engine.consent.restrict_recipient(ALICE, "dhl_express")
    assert (
        disclosures.disclose(ALICE, "dhl_express", ["user.contact.address"], "delivery").rule
        == "recipient.restricted"
    )


def test_seestar_global_services_consent_is_the_separate_consent_and_data_is_de_identified(
    seed_engine: Callable[[str], Engine],
) -> None:
    engine = seed_engine("seestar_store")
    disclosures = facade(engine)
    cats = ["user.contact.email", "user.device"]
    refused = disclosures.disclose(ALICE, "global_infrastructure", cats, "global_services")
    assert refused.rule == "consent.missing"  # the purpose's own consent comes first
    engine.consent.give(ALICE, "global_services", method="checkbox")
    allowed = disclosures.disclose(ALICE, "global_infrastructure", cats, "global_services")
    assert allowed.allowed and allowed.deidentify
    assert allowed.transfer is not None
    assert allowed.transfer.deidentify_categories == tuple(cats)
    with engine.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT country, deidentified FROM disclosures")).all() == [
            ("*", True)
        ]


def test_sinesemi_a_recipient_abroad_needs_separate_consent(
    store_url: str, keyring: Keyring, tmp_path: Path
) -> None:
    text = (SEEDS / "sinesemi.yaml").read_text()
    text = text.replace(
        "    recipients: [affiliates, partners]",
        "    recipients: [affiliates, partners, overseas_partner]",
        1,
    ).replace(
        "recipients:\n  affiliates:",
        "recipients:\n  overseas_partner:\n    role: partner\n    country: SG\n"
        "    safeguards: [separate_consent, standard_contract]\n  affiliates:",
        1,
    )
    path = tmp_path / "sinesemi.yaml"
    path.write_text(text)
    load_policy_text(text, str(path))  # passes the policy checks
    engine = open_engine(store_url, keyring, path)
    try:
        disclosures = facade(engine)
        cats = ["user.name", "user.contact.email"]
        absent = disclosures.disclose(ALICE, "overseas_partner", cats, "requested_services")
        assert absent.rule == "transfer.separate_consent_missing"
        engine.consent.allow_recipient(ALICE, "overseas_partner", method="form")
        present = disclosures.disclose(ALICE, "overseas_partner", cats, "requested_services")
        assert present.allowed and present.transfer is not None
        assert present.transfer.safeguard == "standard_contract,separate_consent"
        assert disclosures.disclose(ALICE, "partners", cats, "requested_services").allowed
    finally:
        engine.close()


def test_check_transfer_for_other_capabilities(
    seed_engine: Callable[[str], Engine],
) -> None:
    disclosures = facade(seed_engine("selro"))
    assert disclosures.check_transfer("stripe").allowed
    assert disclosures.check_transfer("other_users", country="BR").rule == "transfer.not_a_transfer"
    with pytest.raises(DisclosureError, match="did you mean 'stripe'"):
        disclosures.check_transfer("strpe")
    with pytest.raises(DisclosureError, match="declared in IE, not US"):
        disclosures.check_transfer("stripe", country="US")
