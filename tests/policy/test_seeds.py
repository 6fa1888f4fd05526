"""The five seed privacy policies, encoded in examples/policies/, keep their promises.

Each test reads a promise of a seed (/work/shared/seeds/, mapped in docs/seeds.md) back
through the typed model, so a change to the language or to an example that loses a
promise fails here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from lawful.policy import Duration, Policy, load_policy
from lawful.policy.model import RetentionRule
from lawful.policy.summary import effective_deadline
from lawful.policy.vocabulary import (
    Basis,
    BelowMinAge,
    BreachChannel,
    Channel,
    Fee,
    RecipientRole,
    RequestException,
    RequestKind,
    Role,
    Safeguard,
    SecurityMeasure,
    SignalHandling,
    Verification,
)

D = Duration.parse
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
SEEDS = ("serai", "sera_leads", "seestar_store", "selro", "sinesemi")


@cache
def policy(name: str) -> Policy:
    return load_policy(EXAMPLES / f"{name}.yaml").policy


def rule(p: Policy, name: str) -> RetentionRule:
    return p.retention_rules()[name]


# --- every seed -------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEEDS)
def test_loads_without_errors(name: str) -> None:
    loaded = load_policy(EXAMPLES / f"{name}.yaml")
    # the only warnings allowed are criteria-only retention rules: seeds that name no period
    for warning in loaded.warnings:
        assert warning.path[0] == "retention", warning
        assert "no fixed period" in warning.message, warning


@pytest.mark.parametrize("name", SEEDS)
def test_names_its_seed(name: str) -> None:
    first = (EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# Example encoding of the seed privacy policy /work/shared/seeds/")


@pytest.mark.parametrize(
    ("name", "legal_name", "country", "roles", "contacts"),
    [
        (
            "serai",
            "Serai Limited",
            "HK",
            {Role.controller},
            {
                "privacy_email": "privacy@seraitrade.com",
                "dpo_email": "privacy@seraitrade.com",
                "unsubscribe_email": "unsubscribe@seraitrade.com",
                "address": "Level 23, One Island East, 18 Westlands Road, Quarry Bay, Hong Kong",
            },
        ),
        (
            "sera_leads",
            "Sera Leads OÜ",
            "EE",
            {Role.controller, Role.processor},
            {
                "privacy_email": "sergio@seraleads.com",
                "address": "Kentmanni tn 6-6, 10116 Tallinn, Estonia",
                "website": "https://www.seraleads.com",
            },
        ),
        (
            "seestar_store",
            "Seestar Store",
            "CN",
            {Role.controller},
            {"privacy_email": "support@seestar.com", "phone": "+86 0512659231022"},
        ),
        (
            "selro",
            "Selro Ltd",
            "GB",
            {Role.controller, Role.processor},
            {
                "privacy_email": "compliance@selro.com",
                "dpo_email": "gdpr@selro.com",
                "account_page": "https://app3.selro.com/login",
            },
        ),
        # the seed gives no contact: a placeholder on the reserved .example domain
        (
            "sinesemi",
            "SiNESEMI",
            "CN",
            {Role.controller},
            {"privacy_email": "privacy@sinesemi.example"},
        ),
    ],
)
def test_controller(
    name: str, legal_name: str, country: str, roles: set[Role], contacts: dict[str, str]
) -> None:
    controller = policy(name).controller
    assert controller.name == legal_name
    assert controller.country == country
    assert set(controller.roles) == roles
    for key, value in contacts.items():
        assert getattr(controller.contacts, key) == value, key


@pytest.mark.parametrize(
    ("name", "jurisdictions"),
    [
        ("serai", ["eu", "us-ca", "other"]),
        ("sera_leads", ["eu"]),
        ("seestar_store", ["cn"]),
        ("selro", ["eu", "uk"]),
        ("sinesemi", ["cn"]),
    ],
)
def test_jurisdictions(name: str, jurisdictions: list[str]) -> None:
    assert list(policy(name).jurisdictions) == jurisdictions


@pytest.mark.parametrize(
    ("name", "subject", "age", "below"),
    [
        ("serai", "user", 16, {BelowMinAge.refuse, BelowMinAge.delete_on_discovery}),
        ("selro", "account_holder", 18, {BelowMinAge.refuse, BelowMinAge.delete_on_discovery}),
        (
            "seestar_store",
            "customer",
            14,
            {BelowMinAge.parental_consent, BelowMinAge.delete_on_discovery},
        ),
    ],
)
def test_children(name: str, subject: str, age: int, below: set[BelowMinAge]) -> None:
    kind = policy(name).subjects[subject]
    assert kind.min_age == age
    assert set(kind.below_min_age) == below


# --- 000 Serai --------------------------------------------------------------------------


def test_serai_never_sells() -> None:
    p = policy("serai")
    assert p.sale.sells is False
    assert p.sale.shares is False
    assert not any(purpose.sale for purpose in p.purposes.values())
    assert not any(recipient.sale for recipient in p.recipients.values())
    # §8.1 still offers the opt-out, and California's GPC is honoured
    assert RequestKind.opt_out_sale in p.requests.kinds
    assert p.signals.gpc is SignalHandling.honor


def test_serai_appendix_a_bases() -> None:
    p = policy("serai")
    expected = {
        "services": Basis.contract,  # A 1
        "operations": Basis.legitimate_interests,  # A 2
        "crime_and_fraud_prevention": Basis.legal_obligation,  # A 3
        "risk_management": Basis.legitimate_interests,  # A 4
        "service_improvement": Basis.legitimate_interests,  # A 5
        "data_analytics": Basis.legitimate_interests,  # A 6
        "direct_marketing": Basis.legitimate_interests,  # A 7
        "legal_rights": Basis.legitimate_interests,  # A 8
    }
    for name, basis in expected.items():
        assert p.purposes[name].basis_in("eu") is (
            Basis.consent if name == "direct_marketing" else basis
        ), name
        assert p.purposes[name].basis is basis, name


def test_serai_consent_only_for_direct_marketing_in_the_eea() -> None:
    p = policy("serai")
    marketing = p.purposes["direct_marketing"]
    assert marketing.basis_in("eu") is Basis.consent  # §3.4
    assert marketing.basis_in("other") is Basis.consent  # §5.1: "in certain jurisdictions"
    assert marketing.basis_in("us-ca") is Basis.legitimate_interests  # Appendix A 7
    assert marketing.consent is not None
    assert p.purposes["group_marketing"].basis_in("eu") is Basis.consent  # §5.5
    # §3.4: no other purpose rests on consent in the EEA, except cookie-based tracking (§6.3)
    consent_in_eu = {n for n, pur in p.purposes.items() if pur.basis_in("eu") is Basis.consent}
    assert consent_in_eu == {
        "direct_marketing",
        "group_marketing",
        "usage_analytics",
        "advertising",
    }
    assert {p.purposes[n].cookies[0] for n in ("usage_analytics", "advertising")} == {
        "analytics",
        "advertising",
    }


def test_serai_marketing_channels_and_unsubscribe() -> None:
    p = policy("serai")
    assert set(p.purposes["direct_marketing"].channels) == {
        Channel.post,
        Channel.email,
        Channel.phone,
        Channel.sms,
        Channel.push,
        Channel.in_app,
        Channel.social,
        Channel.fax,
    }
    assert p.marketing.unsubscribe.email == "unsubscribe@seraitrade.com"
    assert p.marketing.unsubscribe.link is True
    assert set(p.marketing.lists) == {
        "financial_solutions",
        "business_networking",
        "counterparty_verification",
        "rewards",
        "relevant_solutions",
        "events",
    }


def test_serai_recipients() -> None:
    p = policy("serai")
    roles = {name: r.role for name, r in p.recipients.items()}
    assert roles == {
        "service_providers": RecipientRole.processor,
        "other_users": RecipientRole.user,
        "group_companies": RecipientRole.affiliate,
        "third_party_solutions": RecipientRole.partner,
        "advisors": RecipientRole.advisor,
        "acquirers": RecipientRole.acquirer,
        "authorities": RecipientRole.authority,
        "payment_processor": RecipientRole.controller,
    }
    # §4.3 "contractual protections ... standard contractual clauses": SCCs under the GDPR
    assert set(p.transfers.rules["eu"].accept) == {Safeguard.adequacy, Safeguard.scc}
    for name in (
        "service_providers",
        "group_companies",
        "third_party_solutions",
        "payment_processor",
    ):
        assert {Safeguard.scc, Safeguard.contract} <= set(p.recipients[name].safeguards), name
    assert SecurityMeasure.disclosure_log in p.security.measures  # §4.3: the data log
    # Appendix B: professional information goes to service providers only, not to third parties
    for name in ("group_companies", "third_party_solutions"):
        categories = p.recipients[name].categories
        assert categories, name
        assert not any(c.startswith(("user.job_title", "user.workplace")) for c in categories), name


def test_serai_requests() -> None:
    p = policy("serai")
    assert set(p.requests.kinds) == {
        RequestKind.confirm,
        RequestKind.access,
        RequestKind.information,
        RequestKind.rectification,
        RequestKind.withdraw_consent,
        RequestKind.account_closure,
        RequestKind.erasure,
        RequestKind.portability,
        RequestKind.objection,
        RequestKind.restriction,
        RequestKind.opt_out_sale,
    }
    assert p.requests.fee.default is Fee.free
    assert p.requests.fee.when_excessive is Fee.reasonable_fee
    assert RequestException.confidentiality in p.requests.exceptions  # §8.3
    assert p.requests.contact == "privacy@seraitrade.com"
    # no deadline in the seed: the law's, and the PDPO's 40 days where no law sets one
    assert effective_deadline(p, RequestKind.access, "eu") == D("1 month")
    assert effective_deadline(p, RequestKind.access, "us-ca") == D("45 days")
    assert effective_deadline(p, RequestKind.opt_out_sale, "us-ca") == D("15 business days")
    assert effective_deadline(p, RequestKind.access, "other") == D("40 days")


def test_serai_retention_has_criteria_not_periods() -> None:
    p = policy("serai")
    for name in ("while_needed", "legal_requirements", "dealings_record"):
        assert p.retention[name].keep is None, name
        assert p.retention[name].criteria, name
    assert "tax or accounting" in p.retention["legal_requirements"].criteria
    assert "legal action" in p.retention["dealings_record"].criteria


def test_serai_cookies_and_changes() -> None:
    p = policy("serai")
    assert {n: c.optional for n, c in p.cookies.items()} == {
        "strictly_necessary": False,
        "preferences": True,
        "analytics": True,
        "advertising": True,
    }
    assert {n.value for n in p.changes.notify} >= {"email", "website"}


# --- 001 Sera Leads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "keep", "start", "subjects"),
    [
        ("website_visits", "30 days", "collected", ["website_visitor"]),
        ("request_correspondence", "3 years", "collected", ["website_visitor"]),
        ("customer_data", "3 years", "contract_end", ["customer_contact"]),
        ("accounting_records", "10 years", "collected", []),
        ("data_on_persons", "12 months", "contract_end", ["customer_user", "person_in_content"]),
    ],
)
def test_sera_retention(name: str, keep: str, start: str, subjects: list[str]) -> None:
    spec = rule(policy("sera_leads"), name)
    assert spec.keep == D(keep)
    assert spec.from_ == start
    assert spec.then.value == "delete"
    assert list(spec.subjects) == subjects


def test_sera_retention_exceptions_and_scope() -> None:
    p = policy("sera_leads")
    for name in ("website_visits", "request_correspondence", "customer_data", "accounting_records"):
        assert {e.value for e in p.retention[name].exceptions} == {
            "dispute",
            "legal_claim",
            "legal_obligation",
        }, name
    assert list(p.retention["accounting_records"].categories) == ["user.financial.invoicing"]
    assert p.retention["data_on_persons"].keep == D("1 year")  # "within 12 months"
    assert p.purposes["sera_application"].retention == "data_on_persons"


def test_sera_controller_and_processor() -> None:
    p = policy("sera_leads")
    controller = p.controller
    assert controller.registration == "16976269"
    assert controller.supervisory_authority is not None
    assert controller.supervisory_authority.name.startswith("Estonian Data Protection Inspectorate")
    assert controller.supervisory_authority.url == "https://www.aki.ee"
    assert p.subjects["customer_user"].role is Role.processor
    assert p.subjects["person_in_content"].role is Role.processor
    assert p.subjects["customer_contact"].role is Role.controller
    assert p.purposes["sera_application"].role is Role.processor
    assert p.purposes["service_improvement"].role is Role.controller
    assert p.purposes["service_improvement"].basis is Basis.legitimate_interests


def test_sera_marketing_by_consent_with_unsubscribe_link() -> None:
    p = policy("sera_leads")
    marketing = p.purposes["marketing_communications"]
    assert marketing.basis is Basis.consent
    assert marketing.channels == [Channel.email]
    assert p.marketing.unsubscribe.link is True


def test_sera_cookies() -> None:
    p = policy("sera_leads")
    assert {n: c.optional for n, c in p.cookies.items()} == {
        "strictly_necessary": False,
        "analytical": True,
        "functionality": True,
        "third_party": True,
    }
    assert p.cookies["third_party"].third_party is True


def test_sera_recipients_and_transfers() -> None:
    p = policy("sera_leads")
    processors = {n for n, r in p.recipients.items() if r.role is RecipientRole.processor}
    assert processors == {
        "email_and_chat",
        "cloud_providers",
        "llm_providers",
        "machine_translation",
        "fraud_prevention",
        "analytics_providers",
    }
    assert p.recipients["authorities"].role is RecipientRole.authority
    assert p.recipients["advisors"].role is RecipientRole.advisor
    assert p.recipients["acquirers"].role is RecipientRole.acquirer
    accepted = set(p.transfers.rules["eu"].accept)
    assert {Safeguard.adequacy, Safeguard.scc} <= accepted


def test_sera_rights_and_deadline() -> None:
    p = policy("sera_leads")
    assert set(p.requests.kinds) == {
        RequestKind.information,
        RequestKind.access,
        RequestKind.portability,
        RequestKind.rectification,
        RequestKind.restriction,
        RequestKind.objection,
        RequestKind.erasure,
        RequestKind.withdraw_consent,
    }
    # the seed names no deadline: the GDPR's month applies
    assert p.requests.deadline.default is None
    for kind in p.requests.kinds:
        assert effective_deadline(p, kind, "eu") == D("1 month"), kind


# --- 002 Seestar Store --------------------------------------------------------------------


def test_seestar_answers_in_15_business_days() -> None:
    p = policy("seestar_store")
    for kind in p.requests.kinds:
        assert effective_deadline(p, kind, "cn") == D("15 business days"), kind
    assert p.requests.deadline.calendars == {"cn": "CN"}
    assert set(p.requests.kinds) == {
        RequestKind.access,
        RequestKind.rectification,
        RequestKind.erasure,
        RequestKind.account_closure,
        RequestKind.withdraw_consent,
        RequestKind.explain_decision,
    }


def test_seestar_fees_and_exceptions() -> None:
    p = policy("seestar_store")
    assert p.requests.fee.default is Fee.free
    assert p.requests.fee.when_excessive is Fee.cost_fee
    assert {
        RequestException.legal_obligation,  # V.6 (1)
        RequestException.national_security,  # (2)
        RequestException.public_interest,  # (3)
        RequestException.crime_investigation,  # (4)
        RequestException.abuse_of_rights,  # (5)
        RequestException.vital_interests,  # (6)
        RequestException.others_rights,  # (7)
        RequestException.trade_secret,  # (8)
    } <= set(p.requests.exceptions)
    assert Verification.written_request in p.requests.verification


def test_seestar_honours_do_not_track() -> None:
    assert policy("seestar_store").signals.dnt is SignalHandling.honor


def test_seestar_transfers_out_of_china_need_separate_consent() -> None:
    p = policy("seestar_store")
    assert list(p.transfers.storage) == ["CN"]
    assert Safeguard.separate_consent in p.transfers.rules["cn"].require
    assert Safeguard.contract in p.transfers.rules["cn"].require
    abroad = {n for n, r in p.recipients.items() if any(c != "CN" for c in r.country)}
    assert {
        "paypal",
        "aramex",
        "dhl_express",
        "fedex",
        "tnt",
        "ups",
        "global_infrastructure",
    } <= abroad
    for name in abroad:
        assert Safeguard.separate_consent in p.recipients[name].safeguards, name
    assert Safeguard.deidentification in p.recipients["global_infrastructure"].safeguards
    assert p.purposes["global_services"].consent is not None
    assert p.purposes["global_services"].consent.separate is True


def test_seestar_purposes_and_carriers() -> None:
    p = policy("seestar_store")
    assert set(p.purposes["delivery"].recipients) == {
        "china_post",
        "post_17",
        "aramex",
        "dhl_express",
        "fedex",
        "tnt",
        "ups",
    }
    assert p.purposes["payment"].recipients[0] == "paypal"
    assert p.recipients["paypal"].categories == ["user.payment", "user.behavior.purchase_history"]
    assert p.purposes["transaction_security"].automated is not None
    assert p.purposes["email_tracking"].lists == ["mailing_list"]
    assert p.purposes["commercial_messages"].basis is Basis.consent
    assert p.marketing.unsubscribe.email == "support@seestar.com"


def test_seestar_children_and_security() -> None:
    p = policy("seestar_store")
    assert p.subjects["visitor"].min_age == 14
    assert {
        SecurityMeasure.encryption,
        SecurityMeasure.encryption_in_transit,
        SecurityMeasure.access_control,
        SecurityMeasure.training,
        SecurityMeasure.certification,
    } <= set(p.security.measures)
    assert any("Level 3" in c for c in p.security.certifications)


def test_seestar_breaches_and_changes() -> None:
    p = policy("seestar_store")
    assert p.breaches.notify_subjects is True
    assert set(p.breaches.channels) == {
        BreachChannel.email,
        BreachChannel.letter,
        BreachChannel.phone,
        BreachChannel.push,
        BreachChannel.sms,
        BreachChannel.announcement,
    }
    assert p.changes.material_requires_consent is True


# --- 003 Selro ---------------------------------------------------------------------------


@pytest.mark.parametrize("jurisdiction", ["eu", "uk"])
@pytest.mark.parametrize(
    ("kind", "deadline"),
    [
        (RequestKind.access, "1 month"),
        (RequestKind.erasure, "1 month"),
        (RequestKind.portability, "1 month"),
        (RequestKind.restriction, "30 days"),
        (RequestKind.restrict_recipients, "30 days"),
        (RequestKind.rectification, "1 month"),  # no promise: the law's
    ],
)
def test_selro_deadlines(jurisdiction: str, kind: RequestKind, deadline: str) -> None:
    assert effective_deadline(policy("selro"), kind, jurisdiction) == D(deadline)


def test_selro_requests() -> None:
    p = policy("selro")
    assert {
        RequestKind.access,
        RequestKind.rectification,
        RequestKind.erasure,
        RequestKind.restriction,
        RequestKind.restrict_recipients,
        RequestKind.portability,
    } <= set(p.requests.kinds)
    assert p.requests.fee.default is Fee.free
    assert p.requests.fee.when_excessive is Fee.reasonable_fee
    assert p.requests.contact == "compliance@selro.com"


def test_selro_stripe_is_essential() -> None:
    p = policy("selro")
    assert p.recipients["stripe"].essential is True
    assert p.recipients["paypal"].essential is False
    assert set(p.purposes["payments"].recipients) == {"stripe", "paypal"}


def test_selro_marketing() -> None:
    p = policy("selro")
    assert set(p.marketing.transactional) == {"purchase_notices", "policy_change_notices"}
    assert all(name in p.purposes for name in p.marketing.transactional)
    assert p.marketing.unsubscribe.link is True
    assert p.marketing.unsubscribe.all_lists is True
    assert set(p.marketing.lists) == {"product_announcements", "software_updates", "events"}
    assert p.marketing.limit_ad_tracking is True
    assert p.purposes["targeted_ads"].targeted_advertising is True


def test_selro_processes_account_holders_customers() -> None:
    p = policy("selro")
    assert p.subjects["end_customer"].role is Role.processor
    assert p.purposes["customer_data_processing"].role is Role.processor


# --- 004 SiNESEMI --------------------------------------------------------------------------


def test_sinesemi_five_purposes() -> None:
    p = policy("sinesemi")
    assert {
        n: p.purposes[n].use
        for n in (
            "requested_services",
            "website_improvement",
            "security",
            "product_information",
            "legal_compliance",
        )
    } == {
        "requested_services": "essential.service",
        "website_improvement": "functional.service.improve",
        "security": "essential.service.security",
        "product_information": "marketing.communications",
        "legal_compliance": "third_party_sharing.legal_obligation",
    }
    assert p.purposes["product_information"].basis is Basis.consent  # "you may withdraw consent"


def test_sinesemi_id_number_only_for_prizes() -> None:
    p = policy("sinesemi")
    holders = {
        n
        for n, pur in p.purposes.items()
        if "user.government_id.national_identification_number" in pur.categories
    }
    assert holders == {"prize_claims"}
    assert p.purposes["prize_claims"].consent is not None
    assert p.purposes["prize_claims"].consent.separate is True


def test_sinesemi_storage_and_transfers() -> None:
    p = policy("sinesemi")
    assert list(p.transfers.storage) == ["CN"]
    assert Safeguard.separate_consent in p.transfers.rules["cn"].require
    for name in ("affiliates", "partners"):
        assert p.recipients[name].safeguards == [Safeguard.contract], name  # confidentiality


def test_sinesemi_requests() -> None:
    p = policy("sinesemi")
    assert p.requests.verification == [Verification.id_document]
    assert effective_deadline(p, RequestKind.access, "cn") == D("15 business days")
    assert {
        SecurityMeasure.encryption,
        SecurityMeasure.access_control,
        SecurityMeasure.security_audits,
    } == set(p.security.measures)
