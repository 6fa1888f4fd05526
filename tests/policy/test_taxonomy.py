"""The fideslang taxonomy snapshot, suggestions for misspelt keys, and the legal mappings."""

import json
from importlib.resources import files

import pytest

from lawful.policy.taxonomy import (
    LegalCategories,
    TaxonomyEntry,
    legal_categories,
    load_taxonomy,
)
from lawful.policy.vocabulary import did_you_mean


def _data(name: str) -> dict:
    return json.loads(files("lawful.policy").joinpath("data", name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


# --- the snapshot ----------------------------------------------------------------------------


def test_snapshot_counts(taxonomy):
    # fideslang 3.1.4; the 56 uses include personalize.profiling, deprecated since 2.1.1.
    assert len(taxonomy.categories) == 85
    assert len(taxonomy.uses) == 56
    assert len(taxonomy.subjects) == 15


def test_snapshot_credits_ethyca_under_cc_by():
    data = _data("fideslang_taxonomy.json")
    assert data["license"] == "CC BY 4.0"
    assert "Ethyca" in data["credit"]
    assert "CC BY 4.0" in data["credit"]
    assert data["source"].startswith("fideslang ")


def test_snapshot_is_sorted_and_has_no_timestamp():
    data = _data("fideslang_taxonomy.json")
    sections = ("data_categories", "data_uses", "data_subjects")
    assert set(data) == {"source", "license", "credit", *sections}
    for section in sections:
        keys = [e["key"] for e in data[section]]
        assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("key", "parent"),
    [
        ("user", None),
        ("user.contact.email", "user.contact"),
        ("user.device.ip_address", "user.device"),
        ("user.location.precise", "user.location"),
        ("user.contact.address.postal_code", "user.contact.address"),
        ("user.health_and_medical.genetic", "user.health_and_medical"),
    ],
)
def test_known_categories(taxonomy, key, parent):
    assert taxonomy.is_category(key)
    assert taxonomy.categories[key].parent == parent


def test_known_uses_and_subjects(taxonomy):
    assert taxonomy.is_use("marketing.advertising.third_party.targeted")
    assert taxonomy.is_use("essential.service")
    assert not taxonomy.is_use("user.contact.email")
    assert not taxonomy.is_category("marketing")
    assert {"customer", "employee", "job_applicant"} <= set(taxonomy.subjects)


@pytest.mark.parametrize("section", ["categories", "uses"])
def test_every_parent_exists_and_prefixes_its_children(taxonomy, section):
    for key, entry in getattr(taxonomy, section).items():
        assert entry.key == key
        assert entry.name
        if entry.parent is not None:
            assert entry.parent in getattr(taxonomy, section), key
            assert key.startswith(entry.parent + "."), key
        else:
            assert "." not in key


def test_ancestors_nearest_first(taxonomy):
    assert taxonomy.category_ancestors("user.contact.address.city") == [
        "user.contact.address",
        "user.contact",
        "user",
    ]
    assert taxonomy.category_ancestors("user") == []
    with pytest.raises(KeyError):
        taxonomy.category_ancestors("user.nope")


def test_covers(taxonomy):
    assert taxonomy.covers("user.contact", "user.contact.email")
    assert taxonomy.covers("user", "user.contact.address.city")
    assert taxonomy.covers("user.contact.email", "user.contact.email")
    assert not taxonomy.covers("user.contact.email", "user.contact")
    assert not taxonomy.covers("user.contact", "user.device.ip_address")
    assert not taxonomy.covers("user", "user.nope")


def test_load_is_cached():
    assert load_taxonomy() is load_taxonomy()


# --- custom categories -----------------------------------------------------------------------

LOYALTY = TaxonomyEntry(
    key="user.behavior.purchase_history.loyalty",
    name="Loyalty points",
    description="Points earned by purchases.",
    parent="user.behavior.purchase_history",
)
DIAGNOSIS = TaxonomyEntry(
    key="user.health_and_medical.diagnosis",
    name="Diagnosis",
    description="A clinician's diagnosis.",
    parent="user.health_and_medical",
)


def test_with_categories_adds_custom_ones(taxonomy):
    extended = taxonomy.with_categories([LOYALTY, DIAGNOSIS])
    assert extended.is_category(LOYALTY.key)
    assert not taxonomy.is_category(LOYALTY.key)  # the original is untouched
    assert len(extended.categories) == len(taxonomy.categories) + 2
    assert extended.uses == taxonomy.uses
    assert extended.covers("user.behavior", LOYALTY.key)
    assert extended.covers("user", DIAGNOSIS.key)
    assert not extended.covers("user.contact", LOYALTY.key)
    assert extended.category_ancestors(LOYALTY.key)[:2] == [
        "user.behavior.purchase_history",
        "user.behavior",
    ]


def test_with_categories_keeps_fideslang_meaning(taxonomy):
    clash = TaxonomyEntry("user.contact.email", "Mail", "Redefined.", "user.health_and_medical")
    extended = taxonomy.with_categories([clash])
    assert extended.categories["user.contact.email"] == taxonomy.categories["user.contact.email"]


def test_a_parent_cycle_among_custom_categories_ends(taxonomy):
    a = TaxonomyEntry("x.a", "A", "", "x.b")
    b = TaxonomyEntry("x.b", "B", "", "x.a")
    extended = taxonomy.with_categories([a, b])
    assert extended.category_ancestors("x.a") == ["x.b"]
    assert not extended.covers("user", "x.a")


# --- did you mean ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("user.contact.emial", "user.contact.email"),  # typo in the last segment
        ("user.email", "user.contact.email"),  # missing middle segment
        ("user.ip_address", "user.device.ip_address"),
        ("user.locaton.precise", "user.location.precise"),
        ("User.Contact.Email", "user.contact.email"),  # case
        ("email", "user.contact.email"),
        ("qwertyuiop", None),
        ("banana.split", None),
        ("", None),
    ],
)
def test_did_you_mean_categories(taxonomy, word, expected):
    assert did_you_mean(word, taxonomy.categories) == expected


def test_did_you_mean_uses(taxonomy):
    assert did_you_mean("marketing.advertisng", taxonomy.uses) == "marketing.advertising"
    assert did_you_mean("analytics.reportng", taxonomy.uses) == "analytics.reporting"


def test_did_you_mean_plain_words():
    assert did_you_mean("consnet", ["consent", "contract"]) == "consent"
    assert did_you_mean("xyz", ["consent", "contract"]) is None
    assert did_you_mean("anything", []) is None


# --- legal mappings --------------------------------------------------------------------------


def test_email_is_an_identifier_and_a_customer_record(taxonomy):
    legal = legal_categories("user.contact.email", taxonomy)
    assert legal == LegalCategories(ccpa=frozenset("AB"), ccpa_sensitive=False, gdpr_special=None)


def test_ip_address_is_an_identifier(taxonomy):
    assert "A" in legal_categories("user.device.ip_address", taxonomy).ccpa


def test_precise_geolocation_is_sensitive(taxonomy):
    precise = legal_categories("user.location.precise", taxonomy)
    assert "G" in precise.ccpa
    assert precise.ccpa_sensitive
    imprecise = legal_categories("user.location.imprecise", taxonomy)
    assert "G" in imprecise.ccpa
    assert not imprecise.ccpa_sensitive


def test_health_is_special(taxonomy):
    health = legal_categories("user.health_and_medical", taxonomy)
    assert health.gdpr_special == "data concerning health"
    assert health.ccpa_sensitive
    # The nearest mapping names it: genetic data also sits under health.
    genetic = legal_categories("user.health_and_medical.genetic", taxonomy)
    assert genetic.gdpr_special == "genetic data"


BIOMETRIC = "biometric data for the purpose of uniquely identifying a natural person"
SEX_LIFE = "data concerning a natural person's sex life or sexual orientation"


@pytest.mark.parametrize(
    ("key", "special"),
    [
        ("user.demographic.race_ethnicity", "racial or ethnic origin"),
        ("user.demographic.political_opinion", "political opinions"),
        ("user.demographic.religious_belief", "religious or philosophical beliefs"),
        ("user.biometric.fingerprint", BIOMETRIC),
        ("user.demographic.sexual_orientation", SEX_LIFE),
        ("user.criminal_history", "personal data relating to criminal convictions and offences"),
        ("user.contact.email", None),
        ("user.demographic", None),  # a general key is classified only as itself
    ],
)
def test_gdpr_special(taxonomy, key, special):
    assert legal_categories(key, taxonomy).gdpr_special == special


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("user.government_id.passport_number", True),
        ("user.government_id.vehicle_registration", False),
        ("user.authorization.password", True),
        ("user.demographic.race_ethnicity", True),
        ("user.government_id.immigration", True),
        ("user.financial.credit_card", False),  # only with its access code
        ("user.behavior.browsing_history", False),
    ],
)
def test_ccpa_sensitive(taxonomy, key, sensitive):
    assert legal_categories(key, taxonomy).ccpa_sensitive is sensitive


def test_custom_categories_inherit_legal_categories(taxonomy):
    extended = taxonomy.with_categories([LOYALTY, DIAGNOSIS])
    diagnosis = legal_categories(DIAGNOSIS.key, extended)
    assert diagnosis.gdpr_special == "data concerning health"
    assert diagnosis.ccpa_sensitive
    assert legal_categories(LOYALTY.key, extended).ccpa >= {"D", "F"}


def test_unknown_key_raises(taxonomy):
    with pytest.raises(KeyError):
        legal_categories("user.nope", taxonomy)


def test_legal_mapping_uses_only_snapshot_keys(taxonomy):
    data = _data("legal_categories.json")
    for scheme in ("ccpa", "ccpa_sensitive", "gdpr_special"):
        assert data[scheme], scheme
        for name, entry in data[scheme].items():
            assert entry["name"] and entry["cite"] and entry["description"], (scheme, name)
            for prefix in entry["categories"]:
                assert taxonomy.is_category(prefix), (scheme, name, prefix)
    assert sorted(data["ccpa"]) == list("ABCDEFGHIJK")


def test_every_user_category_is_classified_somewhere_or_deliberately_not(taxonomy):
    # Guards against a fideslang update adding categories the mapping silently ignores.
    unclassified = {
        key
        for key in taxonomy.categories
        if key.startswith("user")
        and legal_categories(key, taxonomy) == LegalCategories(frozenset(), False, None)
    }
    assert unclassified == {
        "user",
        "user.account",
        "user.account.settings",
        "user.childrens",
        "user.content",
        "user.content.public",
        "user.demographic",
        "user.privacy_preferences",
    }
