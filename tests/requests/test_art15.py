"""The Art. 15 information, checked against what the example policies say."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lawful.policy import Policy, load_policy
from lawful.requests.art15 import art15_information

POLICIES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def policy(name: str) -> Policy:
    return load_policy(POLICIES / f"{name}.yaml").policy


def by_key(items: list[dict], field: str = "key") -> dict[str, dict]:
    return {item[field]: item for item in items}


def test_sera_leads_for_an_eu_customer_contact() -> None:
    info = art15_information(
        policy("sera_leads"), ["user.financial.invoicing", "user.contact.email"], jurisdiction="eu"
    )
    assert info["controller"]["name"] == "Sera Leads OÜ"
    assert info["controller"]["email"] == "sergio@seraleads.com"
    assert info["policy"] == {"version": "2025-02-19", "effective": "2025-02-19"}

    # Every purpose using an email address or invoicing data, with its basis; none other
    # (the website purposes use neither).
    purposes = by_key(info["purposes"])
    assert {k: p["basis"] for k, p in purposes.items()} == {
        "requests_and_demos": "legitimate_interests",
        "marketing_communications": "consent",
        "customer_contracts": "contract",
        "rights_protection": "legitimate_interests",
        "billing_and_accounting": "legal_obligation",
        "service_improvement": "legitimate_interests",
        "sera_application": "contract",
        "legal_compliance": "legal_obligation",  # lists user.contact, which covers the email
        "business_transfer": "legitimate_interests",
    }
    assert purposes["rights_protection"]["legitimate_interest"] == (
        "Protecting our rights, e.g. in disputes and in collecting debt"
    )
    assert purposes["sera_application"]["role"] == "processor"
    assert purposes["billing_and_accounting"]["categories"] == [
        "user.contact.email",
        "user.financial.invoicing",
    ]
    assert purposes["marketing_communications"]["categories"] == ["user.contact.email"]

    categories = by_key(info["categories"])
    assert list(categories) == ["user.contact.email", "user.financial.invoicing"]
    assert categories["user.contact.email"]["name"] == "User Contact Email"
    # A custom category without a name is told by its description.
    assert categories["user.financial.invoicing"]["name"] == (
        "Customer-specific invoicing, billing, accounting and tax data"
    )
    assert categories["user.financial.invoicing"]["purposes"] == [
        "rights_protection",
        "billing_and_accounting",
        "legal_compliance",
        "business_transfer",
    ]

    recipients = by_key(info["recipients"])
    assert set(recipients) == {
        "email_and_chat",
        "cloud_providers",
        "llm_providers",
        "machine_translation",
        "fraud_prevention",
        "analytics_providers",
        "advisors",
        "law_enforcement",
        "authorities",
        "acquirers",
    }  # not cookie_partners: its purpose uses neither category
    assert recipients["advisors"]["role"] == "advisor"
    assert recipients["advisors"]["purposes"] == [
        "rights_protection",
        "billing_and_accounting",
    ]
    assert recipients["email_and_chat"]["categories"] == ["user.contact.email"]

    retention = {r["category"]: by_key(r["rules"], "rule") for r in info["retention"]}
    assert set(retention["user.financial.invoicing"]) == {"customer_data", "accounting_records"}
    assert set(retention["user.contact.email"]) == {
        "request_correspondence",
        "customer_data",
        "accounting_records",
        "data_on_persons",
    }
    accounting = retention["user.financial.invoicing"]["accounting_records"]
    assert accounting["period"] == "10 years from collection, then delete"
    assert accounting["keep_iso"] == "P10Y"
    assert "Estonian Accounting Act" in accounting["law"]
    assert accounting["exceptions"] == ["dispute", "legal_claim", "legal_obligation"]
    assert retention["user.contact.email"]["data_on_persons"]["period"] == (
        "12 months from the end of the contract, then delete"
    )

    # Not collected from the person: from the customer whose contact they are.
    assert [(s["source"], s["categories"]) for s in info["sources"]] == [
        ("customer", ["user.contact.email"])
    ]
    assert info["automated_decisions"] == []
    assert info["complaint"]["authority"] == {
        "name": "Estonian Data Protection Inspectorate (Andmekaitse Inspektsioon)",
        "url": "https://www.aki.ee",
        "country": "EE",
    }
    assert "lodge a complaint" in info["complaint"]["text"]

    transfers = info["transfers"]
    assert "EE" in transfers["home"] and "DE" in transfers["home"]  # the EEA is home
    assert transfers["storage_abroad"] == []
    abroad = by_key(transfers["recipients_abroad"], "recipient")
    assert abroad["cloud_providers"] == {
        "recipient": "cloud_providers",
        "name": "Reputable cloud service providers on whose secure servers all data is stored",
        "countries": ["*"],
        "safeguards": ["adequacy", "scc"],
    }
    assert abroad["authorities"]["safeguards"] == []
    assert transfers["rules"] == {
        "eu": {"require": [], "accept": ["adequacy", "scc", "bcr", "dpf"], "deidentify": False}
    }
    assert "erasure" in info["rights"] and "portability" in info["rights"]


def test_seestar_store_tells_of_its_automated_risk_scoring_and_transfers() -> None:
    info = art15_information(
        policy("seestar_store"),
        ["user.device", "user.behavior.purchase_history"],
        jurisdiction="cn",
    )
    purposes = by_key(info["purposes"])
    assert purposes["transaction_security"]["basis"] == "legal_obligation"
    assert purposes["orders"]["basis"] == "contract"
    assert purposes["advertising_sharing"]["basis"] == "consent"
    assert "commercial_messages" not in purposes  # email and name only

    (decision,) = info["automated_decisions"]
    assert decision["purpose"] == "transaction_security"
    assert decision["significant"] is True and decision["human_review"] is True
    assert decision["logic"] == (
        "Account and transaction risk scored from account, browsing, order, software and "
        "device information"
    )
    assert decision["categories"] == ["user.behavior.purchase_history", "user.device"]

    # PayPal receives order data, not device data (its categories say so).
    recipients = by_key(info["recipients"])
    assert recipients["paypal"]["categories"] == ["user.behavior.purchase_history"]
    categories = by_key(info["categories"])
    assert "paypal" in categories["user.behavior.purchase_history"]["recipients"]
    assert "paypal" not in categories["user.device"]["recipients"]

    (rule,) = next(r for r in info["retention"] if r["category"] == "user.device")["rules"]
    assert rule["rule"] == "while_necessary"
    assert rule["keep"] is None and rule["period"].startswith("The period necessary")

    assert info["complaint"]["authority"] is None  # the policy names none
    assert info["complaint"]["law"] is not None and "PIPL" in info["complaint"]["law"]

    transfers = info["transfers"]
    assert transfers["home"] == ["CN"] and transfers["storage"] == ["CN"]
    abroad = by_key(transfers["recipients_abroad"], "recipient")
    assert abroad["paypal"]["countries"] == ["US"]
    assert abroad["paypal"]["safeguards"] == ["separate_consent", "standard_contract", "contract"]
    assert abroad["global_infrastructure"]["countries"] == ["*"]
    assert "china_post" not in abroad and "affiliates" not in abroad  # both in China
    assert transfers["rules"] == {
        "cn": {"require": ["separate_consent", "contract"], "accept": [], "deidentify": False}
    }
    assert [s["source"] for s in info["sources"]] == ["automatic"]


def test_the_basis_follows_the_jurisdiction() -> None:
    serai = policy("serai")
    found = ["user.contact.email"]
    marketing = {
        jurisdiction: by_key(art15_information(serai, found, jurisdiction=jurisdiction)["purposes"])
        for jurisdiction in ("eu", "us-ca", "other")
    }
    assert marketing["eu"]["direct_marketing"]["basis"] == "consent"
    assert marketing["other"]["direct_marketing"]["basis"] == "consent"
    assert marketing["us-ca"]["direct_marketing"]["basis"] == "legitimate_interests"
    unknown = by_key(art15_information(serai, found)["purposes"])["direct_marketing"]
    assert unknown["basis"] == "legitimate_interests"
    assert unknown["basis_by_jurisdiction"] == {"eu": "consent", "other": "consent"}


@pytest.mark.parametrize("name", sorted(p.stem for p in POLICIES.glob("*.yaml")))
def test_the_information_is_plain_json_for_every_example(name: str) -> None:
    loaded = policy(name)
    every = sorted({c for p in loaded.purposes.values() for c in p.categories})
    info = art15_information(loaded, every, jurisdiction=loaded.jurisdictions[0])
    assert json.loads(json.dumps(info)) == info
    assert {p["key"] for p in info["purposes"]} == set(loaded.purposes)
    assert [c["key"] for c in info["categories"]] == every


def test_disclosures_are_passed_through_as_plain_values() -> None:
    disclosure = {"recipient": "dhl_express", "at": datetime(2025, 2, 1, 8, 0, tzinfo=UTC)}
    info = art15_information(
        policy("seestar_store"), ["user.name"], jurisdiction="cn", disclosures=[disclosure]
    )
    assert info["disclosures"] == [{"recipient": "dhl_express", "at": "2025-02-01T08:00:00+00:00"}]


def test_nothing_found_gives_no_purposes_but_still_the_rights() -> None:
    info = art15_information(policy("sera_leads"), [], jurisdiction="eu")
    assert info["purposes"] == info["categories"] == info["recipients"] == []
    assert info["complaint"]["authority"]["name"].startswith("Estonian")
    assert info["rights"]


def test_bad_arguments_are_explained() -> None:
    sera = policy("sera_leads")
    with pytest.raises(
        ValueError, match="'cn' is not served by the policy of sera-leads; use one of eu"
    ):
        art15_information(sera, [], jurisdiction="cn")
    with pytest.raises(TypeError, match="not a single string"):
        art15_information(sera, "user.contact.email")
    with pytest.raises(TypeError, match=r"fideslang keys as text, .*; got int$"):
        art15_information(sera, ["user.name", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="disclosures must be a list of dicts"):
        art15_information(sera, [], disclosures={"recipient": "x"})  # type: ignore[arg-type]
