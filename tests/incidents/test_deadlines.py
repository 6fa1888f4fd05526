"""Breach deadlines for given discovery times: GDPR, PIPL, LGPD, CCPA and the policy's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lawful.incidents import breach_deadlines
from lawful.policy.durations import Duration
from lawful.policy.model import Breaches

FOUND = datetime(2026, 3, 6, 10, 30, tzinfo=UTC)  # a Friday


def by(deadlines, jurisdiction: str, audience: str):
    [found] = [d for d in deadlines if d.jurisdiction == jurisdiction and d.audience == audience]
    return found


def test_gdpr_72_hours_and_subjects_only_when_high_risk(shop_policy) -> None:
    unassessed = breach_deadlines(shop_policy, FOUND, ["eu"], high_risk=None)
    authority = by(unassessed, "eu", "authority")
    assert authority.required and authority.due_at == FOUND + timedelta(hours=72)
    # the shop's policy promises 72 hours too: a tie names the law
    assert authority.basis.startswith("GDPR Art. 33(1)")
    assert by(unassessed, "eu", "subjects").required is None  # waits for the assessment
    high = by(breach_deadlines(shop_policy, FOUND, ["eu"], high_risk=True), "eu", "subjects")
    assert high.required is True and high.due_at is None  # without undue delay
    low = by(breach_deadlines(shop_policy, FOUND, ["eu"], high_risk=False), "eu", "subjects")
    assert low.required is False
    assert authority.overdue(FOUND + timedelta(hours=73))
    assert not authority.overdue(FOUND + timedelta(hours=71))


def test_the_policy_promise_wins_when_earlier(shop_policy) -> None:
    policy = shop_policy.model_copy(
        update={
            "breaches": Breaches(
                notify_authority_within=Duration.parse("24 hours"),
                notify_subjects_within=Duration.parse("5 days"),
            )
        }
    )
    deadlines = breach_deadlines(policy, FOUND, ["eu", "cn"], high_risk=True)
    eu = by(deadlines, "eu", "authority")
    assert eu.due_at == FOUND + timedelta(hours=24)
    assert eu.basis.startswith("the policy's promise: 24 hours")
    assert by(deadlines, "eu", "subjects").due_at == FOUND + timedelta(days=5)
    # PIPL says "immediately": the policy's 24 hours give it a time
    assert by(deadlines, "cn", "authority").due_at == FOUND + timedelta(hours=24)


def test_pipl_immediately(shop_policy) -> None:
    deadlines = breach_deadlines(shop_policy, FOUND, ["cn"], high_risk=False)
    authority = by(deadlines, "cn", "authority")
    assert authority.required and authority.due_at is not None
    # the shop promises 72 hours, but PIPL's "immediately" is due at once only without one
    plain = shop_policy.model_copy(update={"breaches": Breaches()})
    immediate = by(breach_deadlines(plain, FOUND, ["cn"], high_risk=None), "cn", "authority")
    assert immediate.due_at == FOUND and "immediately" in immediate.basis
    subjects = by(breach_deadlines(plain, FOUND, ["cn"], high_risk=False), "cn", "subjects")
    assert subjects.required is True  # PIPL Art. 57 tells people whatever the risk


def test_lgpd_business_days_and_ccpa_30_days(shop_policy) -> None:
    plain = shop_policy.model_copy(update={"breaches": Breaches()})
    deadlines = breach_deadlines(plain, FOUND, ["br", "us-ca"], high_risk=None)
    # Friday + 3 business days = Wednesday, same time
    assert by(deadlines, "br", "authority").due_at == datetime(2026, 3, 11, 10, 30, tzinfo=UTC)
    assert by(deadlines, "br", "subjects").due_at == datetime(2026, 3, 11, 10, 30, tzinfo=UTC)
    assert by(deadlines, "us-ca", "authority").required is False
    ccpa = by(deadlines, "us-ca", "subjects")
    assert ccpa.required and ccpa.due_at == FOUND + timedelta(days=30)


def test_a_written_promise_to_tell_people_makes_it_required(shop_policy) -> None:
    promised = shop_policy.model_copy(update={"breaches": Breaches(notify_subjects=True)})
    subjects = by(breach_deadlines(promised, FOUND, ["eu"], high_risk=False), "eu", "subjects")
    assert subjects.required is True and "notify_subjects" in subjects.basis
