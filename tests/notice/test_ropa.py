"""Records of processing (GDPR Art. 30) for each example policy."""

from __future__ import annotations

import csv
import io
import json

import pytest

from lawful.datasets import load_dataset
from lawful.notice import Notices, build_ropa
from lawful.notice.ropa import CSV_FIELDS
from lawful.policy import load_policy

from .conftest import SEEDS, SHOP_DATASET, SHOP_POLICY

ART_30_1 = (
    "controller",  # (a)
    "dpo",  # (a)
    "representative",  # (a)
    "purposes",  # (b)
    "data_subjects",  # (c)
    "data_categories",  # (c)
    "recipients",  # (d)
    "third_country_transfers",  # (e)
    "retention",  # (f)
    "security_measures",  # (g)
)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_purpose_has_a_record_with_every_art_30_field(policies, seed: str) -> None:
    policy = policies[seed].policy
    records = build_ropa(policy)
    assert [r.activity for r in records] == list(policy.purposes)
    for record in records:
        data = record.to_dict()
        for key in ART_30_1:
            assert key in data
        assert record.controller and record.purposes and record.data_categories
        assert record.data_subjects
        assert record.retention
        assert record.lawful_basis.keys() == {str(j) for j in policy.jurisdictions}


def test_serai_records(policies) -> None:
    records = {r.activity: r for r in build_ropa(policies["serai"].policy)}
    services = records["services"]
    assert services.article == "30(1)"
    assert "privacy@seraitrade.com" in services.controller
    assert services.dpo == "privacy@seraitrade.com"
    assert any(r.startswith("Service providers (processor") for r in services.recipients)
    # recipients anywhere are third-country transfers, with the §4.3 safeguards
    assert any("anywhere" in t and "scc" in t for t in services.third_country_transfers)
    assert services.retention.startswith("while_needed:")
    assert "encryption" in services.security_measures
    assert records["direct_marketing"].lawful_basis == {
        "eu": "consent",
        "us-ca": "legitimate_interests",
        "other": "consent",
    }


def test_processor_activities_are_art_30_2(policies) -> None:
    sera = {r.activity: r for r in build_ropa(policies["sera_leads"].policy)}
    app = sera["sera_application"]
    assert app.article == "30(2)"
    assert "Sera Leads OÜ" in app.processor and "our customers" in app.controller
    assert sera["website_operation"].article == "30(1)"
    selro = {r.activity: r for r in build_ropa(policies["selro"].policy)}
    assert selro["customer_data_processing"].article == "30(2)"
    assert "gdpr@selro.com" in selro["customer_data_processing"].dpo


def test_retention_periods_from_sera(policies) -> None:
    records = {r.activity: r for r in build_ropa(policies["sera_leads"].policy)}
    assert "30 days from collected" in records["website_operation"].retention
    assert "10 years" in records["billing_and_accounting"].retention
    assert "12 months from contract_end" in records["sera_application"].retention


def test_datasets_say_where_the_data_is() -> None:
    policy = load_policy(SHOP_POLICY).policy
    dataset = load_dataset(SHOP_DATASET)
    records = {r.activity: r for r in Notices(policy, datasets=[dataset]).records()}
    assert "shop.customers.email" in records["account"].storage
    assert "shop.tax_records.customer_name" in records["accounting"].storage
    assert "shop.login_events.ip" in records["security"].storage


@pytest.mark.parametrize("seed", SEEDS)
def test_formats(policies, seed: str) -> None:
    notices = Notices(policies[seed].policy)
    data = json.loads(notices.ropa("json"))
    assert len(data) == len(policies[seed].policy.purposes)
    rows = list(csv.DictReader(io.StringIO(notices.ropa("csv"))))
    assert len(rows) == len(data)
    assert list(rows[0]) == CSV_FIELDS
    assert rows[0]["activity"] == data[0]["activity"]
    page = notices.ropa("html")
    assert page.count("<section ") == len(data)
    assert "Records of processing activities (GDPR Art. 30)" in page
    with pytest.raises(ValueError, match="unknown format"):
        notices.ropa("xml")
