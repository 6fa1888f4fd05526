"""Every decision rule, each with a case that allows and one that refuses (SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from lawful.consent import ConsentError, Signals, Status, UnknownName
from lawful.engine import Engine
from lawful.subjects import Keyring
from tests.consent.conftest import POLICY, open_engine

ALICE = "email:alice@example.com"
BOB = "email:bob@example.com"
NOW = datetime.now(UTC)


def years_ago(years: int, days: int = 0) -> date:
    today = date.today()
    return today.replace(year=today.year - years) - timedelta(days=days)


def test_contract_allowed_without_consent_and_consent_purpose_refused(engine: Engine) -> None:
    orders = engine.decide(ALICE, "orders")
    assert orders.allowed and orders.rule == "basis.contract"
    assert "contract" in orders.reason
    newsletter = engine.decide(ALICE, "newsletter")
    assert not newsletter.allowed
    assert newsletter.rule == "consent.missing"
    assert "needs consent" in newsletter.reason


def test_consent_withdrawn_then_given_again(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter", method="checkbox")
    assert engine.decide(ALICE, "newsletter").allowed
    engine.consent.withdraw(ALICE, "newsletter")
    refused = engine.decide(ALICE, "newsletter")
    assert (refused.allowed, refused.rule) == (False, "consent.withdrawn")
    assert "withdrew" in refused.reason
    engine.consent.give(ALICE, "newsletter")
    assert engine.decide(ALICE, "newsletter").allowed
    # Withdrawal never deletes the history.
    states = [r.state for r in engine.consent.history(ALICE)]
    assert states == [Status.given, Status.withdrawn, Status.given]


def test_refused_and_requested_consent_refuse(engine: Engine) -> None:
    engine.consent.request(ALICE, "newsletter")
    assert engine.decide(ALICE, "newsletter").rule == "consent.requested"
    engine.consent.refuse(ALICE, "newsletter")
    assert engine.decide(ALICE, "newsletter").rule == "consent.refused"


def test_consent_expires_and_is_renewed(engine: Engine) -> None:
    record = engine.consent.give(ALICE, "newsletter", at=NOW - timedelta(days=400))
    assert record.expires_at is not None and record.expires_at < NOW  # the policy's 1 year
    expired = engine.decide(ALICE, "newsletter")
    assert (expired.allowed, expired.rule) == (False, "consent.expired")
    again = engine.consent.give(ALICE, "newsletter")
    assert again.state is Status.renewed
    assert engine.decide(ALICE, "newsletter").allowed


def test_material_change_needs_renewed_consent(store_url: str, keyring: Keyring) -> None:
    v1 = POLICY.read_text()
    with open_engine(store_url, keyring, v1) as engine:
        engine.consent.give(ALICE, "newsletter")
        engine.consent.give(ALICE, "site_analytics")
        engine.consent.set_cookies(ALICE, {"analytics": True})
        assert engine.decide(ALICE, "newsletter").allowed
    # v2 makes the newsletter use more data: a material change of a consent purpose.
    v2 = v1.replace(
        "    categories: [user.contact.email]\n    channels: [email, sms]",
        "    categories: [user.contact.email, user.name]\n    channels: [email, sms]",
    )
    assert v2 != v1
    with open_engine(store_url, keyring, v2) as engine:
        assert engine.recorded.version.number == 2
        assert engine.recorded.version.renew_consent == ("newsletter",)
        refused = engine.decide(ALICE, "newsletter")
        assert (refused.allowed, refused.rule) == (False, "consent.renewal_needed")
        assert "version 2" in refused.reason
        # Purposes the change did not touch keep their consent.
        assert engine.decide(ALICE, "site_analytics").allowed
        renewed = engine.consent.give(ALICE, "newsletter")
        assert renewed.state is Status.renewed and renewed.policy_version == 2
        assert engine.decide(ALICE, "newsletter").allowed


def test_gpc_refuses_sale_for_california_but_not_orders(engine: Engine) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    gpc = Signals(gpc=True)
    sale = engine.decide(ALICE, "ad_sharing", signals=gpc)
    assert (sale.allowed, sale.rule, sale.signal) == (False, "signal.gpc", "gpc")
    assert "Global Privacy Control" in sale.reason
    assert engine.decide(ALICE, "orders", signals=gpc).allowed
    # Without the signal the sale goes on (an opt-out model in California).
    assert engine.decide(ALICE, "ad_sharing").allowed
    # Signals straight from request headers.
    assert engine.decide(ALICE, "ad_sharing", signals={"Sec-GPC": "1"}).rule == "signal.gpc"


def test_gpc_ignored_where_policy_and_law_ignore_it(store_url: str, keyring: Keyring) -> None:
    text = (
        POLICY.read_text()
        .replace("jurisdictions: [eu, us-ca]", "jurisdictions: [eu]")
        .replace("    basis_by_jurisdiction: {us-ca: legitimate_interests}\n", "")
        .replace("signals: {gpc: honor, dnt: honor}", "signals: {gpc: ignore, dnt: ignore}")
    )
    with open_engine(store_url, keyring, text) as engine:
        engine.consent.give(ALICE, "ad_sharing")
        decision = engine.decide(ALICE, "ad_sharing", signals=Signals(gpc=True, dnt=True))
        assert decision.allowed and decision.signal is None


def test_apply_signals_records_a_lasting_opt_out(engine: Engine) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    records = engine.consent.apply_signals(ALICE, Signals(gpc=True))
    assert {r.key for r in records} == {"sale", "share", "targeted_advertising"}
    assert all(r.method == "signal" for r in records)
    # Later visits without the signal stay opted out.
    assert engine.decide(ALICE, "ad_sharing").rule == "opt_out.sale"


def test_child_under_minimum_age_needs_parental_consent(engine: Engine) -> None:
    engine.consent.set_subject(ALICE, kind="customer", jurisdiction="eu", birth_date=years_ago(15))
    refused = engine.decide(ALICE, "orders")
    assert (refused.allowed, refused.rule) == (False, "age.parental_consent_missing")
    assert "15" in refused.reason and "16" in refused.reason
    engine.consent.parental_consent(ALICE, parent="email:parent@example.com")
    assert engine.decide(ALICE, "orders").allowed
    # Consent purposes: under the EU age of digital consent, the parent must give it.
    engine.consent.give(ALICE, "newsletter")
    assert engine.decide(ALICE, "newsletter").rule == "age.parental_consent_missing"
    record = engine.consent.give(ALICE, "newsletter", parent="email:parent@example.com")
    assert record.method == "parent" and record.actor is not None
    assert "parent@example.com" not in record.actor
    assert engine.decide(ALICE, "newsletter").allowed


def test_subject_at_minimum_age_needs_no_parent(engine: Engine) -> None:
    engine.consent.set_subject(BOB, kind="customer", birth_date=years_ago(16))
    assert engine.decide(BOB, "orders").allowed
    engine.consent.give(BOB, "newsletter")
    assert engine.decide(BOB, "newsletter", jurisdiction="eu").allowed


def test_national_consent_age_applies(engine: Engine) -> None:
    # France sets the age of digital consent at 15 (GDPR Art. 8(1), loi 78-17 art. 45).
    engine.consent.set_subject(
        BOB, kind="visitor", jurisdiction="eu", country="FR", birth_date=years_ago(15)
    )
    engine.consent.give(BOB, "newsletter")
    assert engine.decide(BOB, "newsletter").allowed
    engine.consent.set_subject(BOB, country="DE")
    assert engine.decide(BOB, "newsletter").rule == "age.parental_consent_missing"


def test_restriction_refuses_marketing_but_allows_storage(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter")
    engine.consent.restrict(ALICE)
    refused = engine.decide(ALICE, "newsletter")
    assert (refused.allowed, refused.rule) == (False, "restriction")
    assert "Art. 18" in refused.reason
    assert not engine.decide(ALICE, "orders").allowed
    assert engine.decide(ALICE, "archive").allowed
    engine.consent.lift_restriction(ALICE)
    assert engine.decide(ALICE, "newsletter").allowed


def test_objection_stops_legitimate_interests_not_contract(engine: Engine) -> None:
    assert engine.decide(ALICE, "fraud").allowed
    engine.consent.object(ALICE, "fraud")
    refused = engine.decide(ALICE, "fraud")
    assert (refused.allowed, refused.rule) == (False, "objection")
    engine.consent.object(ALICE, "orders")
    assert engine.decide(ALICE, "orders").allowed  # Art. 21 does not reach a contract
    engine.consent.withdraw_objection(ALICE, "fraud")
    assert engine.decide(ALICE, "fraud").allowed


def test_objection_to_direct_marketing_always_prevails(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter")
    engine.consent.object(ALICE)  # all direct marketing
    refused = engine.decide(ALICE, "newsletter")
    assert (refused.allowed, refused.rule) == (False, "objection")
    assert "prevails" in refused.reason
    assert engine.decide(ALICE, "order_notices", channel="email").allowed  # transactional


def test_opt_out_of_sale_and_limit_ad_tracking(engine: Engine) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    assert engine.decide(ALICE, "ad_sharing").allowed
    engine.consent.opt_out(ALICE, "sale")
    assert engine.decide(ALICE, "ad_sharing").rule == "opt_out.sale"
    engine.consent.opt_in(ALICE, "sale")
    assert engine.decide(ALICE, "ad_sharing").allowed
    engine.consent.opt_out(ALICE, "ad_tracking")
    refused = engine.decide(ALICE, "ad_sharing")
    assert refused.rule == "opt_out.ad_tracking" and "limit ad tracking" in refused.reason
    assert engine.decide(ALICE, "orders").allowed


def test_do_not_track_refuses_tracking_only(engine: Engine) -> None:
    engine.consent.give(ALICE, "site_analytics")
    engine.consent.set_cookies(ALICE, {"analytics": True})
    assert engine.decide(ALICE, "site_analytics").allowed
    dnt = engine.decide(ALICE, "site_analytics", signals={"DNT": "1"})
    assert (dnt.allowed, dnt.rule, dnt.signal) == (False, "signal.dnt", "dnt")
    assert engine.decide(ALICE, "orders", signals={"DNT": "1"}).allowed


def test_channel_preferences(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter")
    assert engine.decide(ALICE, "newsletter", channel="email").allowed
    engine.consent.unsubscribe(ALICE, channel="email")
    refused = engine.decide(ALICE, "newsletter", channel="email")
    assert (refused.allowed, refused.rule) == (False, "channel.unsubscribed")
    assert engine.decide(ALICE, "newsletter", channel="sms").allowed
    assert engine.decide(ALICE, "ad_sharing", channel="email").rule == "channel.not_declared"
    with pytest.raises(UnknownName, match="channel"):
        engine.decide(ALICE, "newsletter", channel="post")
    # Transactional messages go on.
    assert engine.decide(ALICE, "order_notices", channel="email").allowed
    engine.consent.resubscribe(ALICE, channel="email")
    assert engine.decide(ALICE, "newsletter", channel="email").allowed


def test_consent_for_one_channel_only(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter", channel="sms")
    assert engine.decide(ALICE, "newsletter", channel="sms").allowed
    assert engine.decide(ALICE, "newsletter", channel="email").rule == "consent.missing"


def test_list_preferences_one_and_all(engine: Engine) -> None:
    engine.consent.give(ALICE, "newsletter")
    engine.consent.unsubscribe(ALICE, list_name="news")
    assert engine.decide(ALICE, "newsletter", list_name="news").rule == "list.unsubscribed"
    assert engine.decide(ALICE, "newsletter", list_name="deals").allowed
    engine.consent.unsubscribe(ALICE, list_name="*")
    refused = engine.decide(ALICE, "newsletter", list_name="deals")
    assert refused.rule == "list.unsubscribed" and "every list" in refused.reason


def test_cookie_category_needed_by_purpose(engine: Engine) -> None:
    engine.consent.give(ALICE, "site_analytics")
    assert engine.decide(ALICE, "site_analytics").rule == "cookie.not_accepted"
    engine.consent.set_cookies(ALICE, {"analytics": True, "strictly_necessary": True})
    assert engine.decide(ALICE, "site_analytics").allowed
    engine.consent.set_cookies(ALICE, {"analytics": False})
    assert engine.decide(ALICE, "site_analytics").rule == "cookie.not_accepted"
    with pytest.raises(ConsentError, match="strictly necessary"):
        engine.consent.set_cookies(ALICE, {"strictly_necessary": False})


def test_recipients(engine: Engine) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    assert engine.decide(ALICE, "ad_sharing", recipient="adnet").allowed
    assert engine.decide(ALICE, "ad_sharing", recipient="mailer").rule == "recipient.not_declared"
    engine.consent.restrict_recipient(ALICE, "adnet")
    assert engine.decide(ALICE, "ad_sharing", recipient="adnet").rule == "recipient.restricted"


def test_jurisdiction_changes_the_basis(engine: Engine) -> None:
    eu = engine.decide(ALICE, "ad_sharing", jurisdiction="eu")
    assert (eu.allowed, eu.rule) == (False, "consent.missing")
    ca = engine.decide(ALICE, "ad_sharing", jurisdiction="us-ca")
    assert ca.allowed and ca.basis == "legitimate_interests"


def test_decide_many_matches_decide(engine: Engine) -> None:
    people = [f"email:person{i}@example.com" for i in range(60)]
    for i, person in enumerate(people):
        if i % 3 == 0:
            engine.consent.give(person, "newsletter")
        if i % 5 == 0:
            engine.consent.unsubscribe(person, channel="email")
        if i % 7 == 0:
            engine.consent.object(person)
    batch = [*people, "email:nobody@example.com"]
    many = engine.decide_many(batch, "newsletter", channel="email")
    one = [engine.decide(p, "newsletter", channel="email") for p in batch]
    assert [(d.allowed, d.rule) for d in many] == [(d.allowed, d.rule) for d in one]
    assert sum(d.allowed for d in many) > 0 and sum(not d.allowed for d in many) > 0


def test_bad_input_is_named(engine: Engine) -> None:
    with pytest.raises(UnknownName, match="did you mean 'newsletter'"):
        engine.decide(ALICE, "newsleter")
    with pytest.raises(ConsentError, match="based on contract"):
        engine.consent.give(ALICE, "orders")
    with pytest.raises(ConsentError, match="channel of purpose 'newsletter'"):
        engine.consent.give(ALICE, "newsletter", channel="fax")
    with pytest.raises(ConsentError, match="email address"):
        engine.consent.give(ALICE, "newsletter", evidence={"who": "alice@example.com"})
    with pytest.raises(ConsentError, match="keep_ip"):
        engine.consent.give(ALICE, "newsletter", evidence={"from": "203.0.113.9"})
    with pytest.raises(ConsentError, match="opt-out"):
        engine.consent.opt_out(ALICE, "everything")
    with pytest.raises(ValueError, match="jurisdiction"):
        engine.decide(ALICE, "orders", jurisdiction="mars")
    # Nothing was half-recorded.
    assert engine.consent.history(ALICE) == []


def test_unsubscribe_links_and_one_click(engine: Engine) -> None:
    from lawful.consent.unsubscribe import UnsubscribeTokenError

    engine.consent.give(ALICE, "newsletter")
    headers = engine.consent.unsubscribe_headers(
        ALICE, base_url="https://shop.example/unsubscribe", list_name="news"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = headers["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://shop.example/unsubscribe/")
    assert "alice" not in link  # the token names an opaque ref, never the address
    token = link.rsplit("/", 1)[1]
    record = engine.consent.unsubscribe_by_token(token)
    assert (record.topic, record.key, record.method) == ("list", "news", "email_link")
    assert engine.decide(ALICE, "newsletter", list_name="news").rule == "list.unsubscribed"
    assert engine.decide(ALICE, "newsletter", list_name="deals").allowed
    # A link for everything stops all direct marketing, not transactional messages.
    everything = engine.consent.unsubscribe_headers(ALICE, base_url="https://shop.example/u")
    engine.consent.unsubscribe_by_token(
        everything["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    )
    assert engine.decide(ALICE, "newsletter", list_name="deals").rule == "objection"
    assert engine.decide(ALICE, "order_notices").allowed
    with pytest.raises(UnsubscribeTokenError):
        engine.consent.unsubscribe_by_token(
            token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        )


def test_decide_many_reads_everyone_at_once_for_a_large_batch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lawful.consent import ledger

    people = [f"email:p{i}@example.com" for i in range(40)]
    for i, person in enumerate(people):
        if i % 2:
            engine.consent.give(person, "newsletter")
    engine.consent.give("email:elsewhere@example.com", "newsletter")
    batch = [*people[:30], "email:unknown@example.com"]
    by_hash = engine.decide_many(batch, "newsletter")
    # A batch naming most of the controller's identities is read in one scan; the
    # answers are the same, and identities outside the batch are not in them.
    monkeypatch.setattr(ledger, "_SCAN_FROM", 10)
    scanned = engine.decide_many(batch, "newsletter")
    assert [(d.allowed, d.rule) for d in scanned] == [(d.allowed, d.rule) for d in by_hash]
    assert sum(d.allowed for d in scanned) == 15
    assert scanned[-1].rule == "consent.missing"
