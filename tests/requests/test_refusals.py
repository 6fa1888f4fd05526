"""Refusals: the repeat limit, fees instead of refusal, and the exceptions a policy lists."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from lawful.policy import Policy, load_policy, load_policy_text
from lawful.policy.vocabulary import RequestException, RequestKind
from lawful.requests.refusals import (
    EXCEPTION_TEXT,
    EXCEPTION_TITLE,
    KIND_WORDS,
    Refusal,
    RefusalError,
    check_repeat,
    exception_refusal,
)

POLICIES = Path(__file__).resolve().parents[2] / "examples" / "policies"
CONTACT = {
    "sera_leads": "  contact: sergio@seraleads.com\n",
    "seestar_store": "  contact: support@seestar.com\n",
    "selro": "  contact: compliance@selro.com\n",
}
AKI = (
    "If you disagree, you can complain to Estonian Data Protection Inspectorate "
    "(Andmekaitse Inspektsioon) (https://www.aki.ee) or go to court."
)
ANY_AUTHORITY = (
    "If you disagree, you can complain to the data protection authority where you live or "
    "work or go to court."
)


@cache
def policy(name: str, repeat_limit: str | None = None) -> Policy:
    """An example policy, with a repeat limit added when given (none of them sets one)."""
    if repeat_limit is None:
        return load_policy(POLICIES / f"{name}.yaml").policy
    text = (POLICIES / f"{name}.yaml").read_text("utf-8")
    assert CONTACT[name] in text
    text = text.replace(CONTACT[name], f"{CONTACT[name]}  repeat_limit: {repeat_limit}\n")
    return load_policy_text(text).policy


def at(y: int, m: int, d: int, hh: int = 10) -> datetime:
    return datetime(y, m, d, hh, tzinfo=UTC)


# --- repeat limit ------------------------------------------------------------------------------

SERA_TWICE = ("sera_leads", "{count: 2, per: 12 months}")  # fees: free (the default)


def test_no_repeat_limit_no_refusal() -> None:
    earlier = [at(2025, 1, d) for d in range(1, 20)]
    assert check_repeat(policy("seestar_store"), "access", earlier, at(2025, 1, 20)) is None


def test_within_the_limit() -> None:
    assert check_repeat(policy(*SERA_TWICE), "access", [at(2025, 1, 10)], at(2025, 9, 1)) is None
    assert check_repeat(policy(*SERA_TWICE), "access", [], at(2025, 9, 1)) is None


def test_over_the_limit_refused_when_no_fee_may_be_charged() -> None:
    refusal = check_repeat(
        policy(*SERA_TWICE), "access", [at(2025, 1, 10), at(2025, 6, 1)], at(2025, 9, 1)
    )
    assert refusal == Refusal(
        rule="repeat_limit",
        text=(
            "You have already made this access request twice within 12 months, the limit in "
            "our privacy policy; the law lets us treat more requests as excessive. You can "
            f"make it again free of charge from 10 January 2026. {AKI}"
        ),
        fee=None,
    )


def test_requests_older_than_the_period_dont_count() -> None:
    # 1 Aug 2024 fell out of the 12 months on 1 Aug 2025
    earlier = [at(2024, 8, 1), at(2025, 6, 1)]
    assert check_repeat(policy(*SERA_TWICE), "access", earlier, at(2025, 9, 1)) is None
    # the period ends at the same time of day a year on: at that instant it no longer counts
    earlier = [at(2024, 9, 1, 12), at(2025, 6, 1)]
    assert check_repeat(policy(*SERA_TWICE), "access", earlier, at(2025, 9, 1, 12)) is None
    refusal = check_repeat(policy(*SERA_TWICE), "access", earlier, at(2025, 9, 1, 11))
    assert refusal is not None and "free of charge from 1 September 2025" in refusal.text


def test_free_again_when_enough_requests_fall_out() -> None:
    # three in the period, two allowed: free again once the two oldest have left it
    earlier = [at(2025, 6, 1), at(2025, 1, 10), at(2025, 3, 1)]
    refusal = check_repeat(policy(*SERA_TWICE), "erasure", earlier, at(2025, 9, 1))
    assert refusal is not None
    assert "this erasure request twice" in refusal.text
    assert "free of charge from 1 March 2026" in refusal.text


def test_over_the_limit_with_a_cost_fee() -> None:
    # Seestar: "we may charge a fee to cover the cost" when repeated beyond reasonable limits
    seestar = policy("seestar_store", "{count: 1, per: 1 month}")
    refusal = check_repeat(seestar, "access", [at(2025, 3, 31)], at(2025, 4, 15))
    assert refusal == Refusal(
        rule="repeat_limit",
        text=(
            "You have already made this access request once within 1 month, the limit in our "
            "privacy policy; the law lets us treat more requests as excessive. We can still "
            "answer it if you agree to pay a fee covering the cost of answering. You can make "
            f"it again free of charge from 30 April 2025. {ANY_AUTHORITY}"
        ),
        fee="cost_fee",
    )


def test_over_the_limit_with_a_reasonable_fee() -> None:
    selro = policy("selro", "{count: 3, per: 12 months}")
    earlier = [at(2025, 2, 1), at(2025, 4, 1), at(2025, 6, 1)]
    refusal = check_repeat(selro, "portability", earlier, at(2025, 7, 1))
    assert refusal is not None and refusal.fee == "reasonable_fee"
    assert "this portability request 3 times within 12 months" in refusal.text
    assert "a reasonable fee based on the administrative cost of answering" in refusal.text
    assert "free of charge from 1 February 2026" in refusal.text


def test_repeat_errors() -> None:
    with pytest.raises(RefusalError, match="'acces' is not a request kind; did you mean 'access'"):
        check_repeat(policy(*SERA_TWICE), "acces", [], at(2025, 1, 1))
    with pytest.raises(RefusalError, match="now must be a timezone-aware datetime"):
        check_repeat(policy(*SERA_TWICE), "access", [], datetime(2025, 1, 1))
    with pytest.raises(RefusalError, match="an earlier request's time must be a timezone-aware"):
        check_repeat(policy(*SERA_TWICE), "access", [datetime(2025, 1, 1)], at(2025, 2, 1))


# --- exceptions --------------------------------------------------------------------------------


def test_every_kind_has_words() -> None:
    assert set(KIND_WORDS) == set(RequestKind)
    refusal = check_repeat(
        policy(*SERA_TWICE), RequestKind.opt_out_sale, [at(2025, 1, 10)] * 2, at(2025, 2, 1)
    )
    assert refusal is not None and "this opt-out of sale request twice" in refusal.text


def test_every_exception_has_a_title_and_a_text() -> None:
    assert set(EXCEPTION_TEXT) == set(RequestException) == set(EXCEPTION_TITLE)
    for ground, text in EXCEPTION_TEXT.items():
        assert text.endswith(".") and text[0].isupper(), ground
        assert "{" not in text and "_" not in text, ground


def test_legal_claims_named_with_detail_and_the_authority() -> None:
    refusal = exception_refusal(
        policy("sera_leads"),
        "legal_claims",
        "We keep the contract and invoices while the payment dispute is open",
    )
    assert refusal == Refusal(
        rule="legal_claims",
        text=(
            "We could not do all you asked, because of legal claims. We need this information "
            "to establish, bring or defend a legal claim, and the law lets us keep it for "
            "that. We keep the contract and invoices while the payment dispute is open. "
            f"{AKI}"
        ),
        fee=None,
    )


@pytest.mark.parametrize(
    ("name", "ground", "title", "fee"),
    [
        ("seestar_store", RequestException.national_security, "national security", None),
        ("seestar_store", "public_interest", "the public interest", None),
        ("seestar_store", "crime_investigation", "the investigation of crime", None),
        ("seestar_store", "abuse_of_rights", "abuse of rights", None),
        ("seestar_store", "others_rights", "the rights of other people", None),
        ("seestar_store", "trade_secret", "trade secrets", None),
        ("seestar_store", "excessive", "an excessive request", "cost_fee"),
        ("selro", "manifestly_unfounded", "a manifestly unfounded request", "reasonable_fee"),
        ("selro", "impractical", "disproportionate effort", None),
        ("serai", "confidentiality", "confidentiality", None),
        ("sera_leads", "legal_obligation", "a legal obligation", None),
    ],
)
def test_listed_exceptions(
    name: str, ground: RequestException | str, title: str, fee: str | None
) -> None:
    refusal = exception_refusal(policy(name), ground, None)
    assert refusal.rule == str(ground)
    assert refusal.text.startswith(f"We could not do all you asked, because of {title}. ")
    assert EXCEPTION_TEXT[RequestException(ground)] in refusal.text
    assert refusal.text.endswith("or go to court.")
    # A refusal is final: the fee the policy may allow (`fee`) is asked by charge_fee.
    assert refusal.fee is None and "fee" not in refusal.text, fee


def test_an_exception_the_policy_does_not_list() -> None:
    with pytest.raises(
        RefusalError,
        match=(
            "the policy does not list 'legal_claims' as a ground for refusal, so it cannot be "
            "used; it lists: legal_obligation, national_security, public_interest, "
            "crime_investigation, abuse_of_rights, vital_interests, others_rights, "
            "trade_secret, excessive, impractical"
        ),
    ):
        exception_refusal(policy("seestar_store"), "legal_claims", None)


def test_an_unknown_ground() -> None:
    with pytest.raises(
        RefusalError, match="'legal_claim' is not a ground for refusal; did you mean 'legal_claims'"
    ):
        exception_refusal(policy("sera_leads"), "legal_claim", None)


def test_detail_is_tidied_and_bounded() -> None:
    refusal = exception_refusal(
        policy("sera_leads"), "legal_obligation", "  tax law\n keeps invoices 7 years "
    )
    assert "Tax" not in refusal.text and "tax law keeps invoices 7 years." in refusal.text
    with pytest.raises(RefusalError, match="1001 characters long; keep it to 1000"):
        exception_refusal(policy("sera_leads"), "legal_obligation", "x" * 1001)
    blank = exception_refusal(policy("sera_leads"), "legal_obligation", "   ")
    assert blank == exception_refusal(policy("sera_leads"), "legal_obligation", None)
