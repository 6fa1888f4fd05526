"""Typed answers a policy gives beyond its fields: strict booleans, legal classification
of custom categories, retention rules written inline."""

from __future__ import annotations

import pytest

from lawful.policy import PolicyError, load_policy_text, starter_policy

STARTER = starter_policy()


@pytest.mark.parametrize("word", ["yes", "no", "on", "1", "'true'"])
def test_flags_take_only_true_or_false(word: str) -> None:
    text = STARTER.replace("    required: true\n", f"    required: {word}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    [error] = caught.value.errors
    assert error.path == ("purposes", "service", "required")
    assert error.message.startswith("expected true or false, got")


def _with_categories(block: str) -> str:
    return STARTER.replace("jurisdictions: [eu]\n", "jurisdictions: [eu]\ncategories:\n" + block)


def test_custom_categories_inherit_and_override_legal_classification() -> None:
    policy = load_policy_text(
        _with_categories(
            "  user.health_and_medical.allergies: {parent: user.health_and_medical}\n"
            "  user.job_title.seniority: {parent: user.job_title, ccpa: [I, K]}\n"
            "  user.contact.email.work: {parent: user.contact.email, special: trade_union_membership,"
            " sensitive: true}\n"
            "  user.contact.email.work.union: {parent: user.contact.email.work, ccpa: [A]}\n"
        ),
        "policy.yaml",
    ).policy
    allergies = policy.legal_categories("user.health_and_medical.allergies")
    assert allergies.gdpr_special == "data concerning health"  # inherited
    assert policy.legal_categories("user.job_title.seniority").ccpa == frozenset({"I", "K"})
    work = policy.legal_categories("user.contact.email.work")
    assert work.gdpr_special == "trade union membership" and work.ccpa_sensitive
    assert work.ccpa == policy.legal_categories("user.contact.email").ccpa  # not overridden
    union = policy.legal_categories("user.contact.email.work.union")
    assert union.ccpa == frozenset({"A"})  # the nearest declaration wins
    assert union.gdpr_special == "trade union membership"  # inherited from its custom parent


def test_special_must_be_a_gdpr_special_category() -> None:
    text = _with_categories(
        "  user.job_title.seniority: {parent: user.job_title, special: healht}\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "policy.yaml")
    [error] = caught.value.errors
    assert error.message == "'healht' is not a GDPR special category; did you mean 'health'?"


def test_inline_retention_becomes_a_named_rule_for_its_purpose() -> None:
    policy = load_policy_text(STARTER, "policy.yaml").policy
    rules = policy.retention_rules()
    assert set(rules) == {"customer_records", "purpose:site_analytics"}
    inline = rules["purpose:site_analytics"]
    assert (str(inline.keep), inline.from_, inline.purposes) == (
        "13 months",
        "collected",
        ["site_analytics"],
    )
