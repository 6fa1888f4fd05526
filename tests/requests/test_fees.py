"""Fees: a request over the repeat limit, or one the privacy team finds excessive, is
answered for the fee the policy allows (Seestar: "we will charge a cost fee"; Selro and
Serai: "a reasonable fee") instead of being refused; it waits for the payment with its
clock stopped, then runs, and its receipt says what was paid. Unpaid, it is closed with
the rule named. On SQLite and PostgreSQL, the store read back with plain SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from lawful.engine import Engine
from lawful.requests.messages import MemorySender
from lawful.requests.service import RequestError
from lawful.requests.verify import sign_assertion
from lawful.subjects import Identity
from tests.requests import test_requests as shop
from tests.requests.test_requests import (
    a_customer,
    code_for,
    events_of,
    shop_engine,
    shop_policy_text,
)

urls, shop_url, sender = shop.urls, shop.shop_url, shop.sender

COST_FEE = "fee: {default: free, when_excessive: cost_fee}"


@pytest.fixture
def clock() -> dict[str, datetime]:
    return {"now": datetime.now(UTC)}


def _engine(
    urls: tuple[str, str], sender: MemorySender, clock: dict[str, datetime], text: str
) -> Iterator[Engine]:
    with shop_engine(urls[0], sender, text, "shop-fees.yaml") as opened:
        opened.requests.clock = lambda: clock["now"]
        yield opened


@pytest.fixture
def engine(
    urls: tuple[str, str], shop_url: str, sender: MemorySender, clock: dict[str, datetime]
) -> Iterator[Engine]:
    """The shop under its test policy: two requests of a kind a year, then a cost fee."""
    assert COST_FEE in shop_policy_text()
    yield from _engine(urls, sender, clock, shop_policy_text())


def request_row(engine: Engine, ref: str) -> Any:
    with engine.store.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT state, fee, paused_at, due_at FROM requests WHERE ref = :r"), {"r": ref}
        ).one()


def fee_of(row: Any) -> dict[str, Any]:
    return row.fee if isinstance(row.fee, dict) else json.loads(row.fee)


def sent(sender: MemorySender, to: str, template: str) -> bool:
    return any(m.to == to and m.template == template for m in sender.sent)


def over_the_limit(engine: Engine, email: str) -> None:
    for _ in range(2):
        engine.requests.submit("access", f"email:{email}", jurisdiction="eu")


def test_over_the_repeat_limit_a_request_waits_for_its_fee_then_runs(
    engine: Engine, sender: MemorySender, shop_url: str, clock: dict[str, datetime]
) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    over_the_limit(engine, email)
    third = requests.submit("access", f"email:{email}", jurisdiction="eu")
    # The fee is asked of the person once it is known to be them, not of whoever typed
    # their address.
    assert third.state == "awaiting_verification"
    assert not sent(sender, email, "fee")
    waiting = requests.verify(third.ref, code_for(sender, email))
    assert waiting.state == "awaiting_fee" and waiting.paused
    assert "stands still" in waiting.status
    told = sender.last(to=email, template="fee").body
    assert "repeated beyond the limit in our privacy policy" in told
    assert "a fee covering the cost of answering" in told
    row = request_row(engine, third.ref)
    assert row.state == "awaiting_fee" and row.paused_at is not None
    assert fee_of(row)["ground"] == "repeat_limit" and fee_of(row)["amount"] is None

    # Its stopped clock is never overdue, however long the person takes.
    clock["now"] += timedelta(days=45)
    assert third.ref not in [v.ref for v in requests.list(overdue=True)]
    assert not requests.show(third.ref).overdue

    with pytest.raises(RequestError, match="no amount was asked"):
        requests.fee_paid(third.ref, by="Ana")
    asked = requests.charge_fee(third.ref, amount="eur 25")  # the code is upper case
    assert asked.fee["amount"] == "EUR 25" and asked.state == "awaiting_fee"
    assert (
        "EUR 25, a fee covering the cost of answering" in sender.last(to=email, template="fee").body
    )

    clock["now"] += timedelta(days=5)
    paid = requests.fee_paid(third.ref, by="Ana")
    assert paid.state == "in_progress" and not paid.paused
    # The clock stood still from the verification to the payment: 50 days later, due 50
    # days later.
    assert paid.due_at - waiting.due_at == timedelta(days=50)
    assert f"{paid.due_at.day}" in sender.last(to=email, template="acknowledged").body
    assert requests.run_pending() == 1
    done = requests.show(third.ref)
    assert done.state == "completed"
    assert done.receipt["fee"]["amount"] == "EUR 25" and done.receipt["fee"]["paid_by"] == "Ana"
    assert requests.check_receipt(third.ref)
    kinds = events_of(engine, third.ref)
    assert kinds.index("request.awaiting_fee") < kinds.index("request.fee_asked")
    assert kinds.index("request.fee_asked") < kinds.index("request.fee_paid")
    assert kinds.index("request.fee_paid") < kinds.index("request.in_progress")
    assert kinds[-2:] == ["request.completed", "request.receipt"]
    assert fee_of(request_row(engine, third.ref))["paid_at"] is not None


def test_a_signed_in_request_over_the_limit_is_asked_the_fee_at_once(
    engine: Engine, sender: MemorySender, shop_url: str, clock: dict[str, datetime]
) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    over_the_limit(engine, email)
    token = sign_assertion(
        engine.keyring,
        controller=engine.policy.key,
        identity=Identity.parse(f"email:{email}"),
        now=clock["now"],
    )
    intake = requests.submit("access", f"email:{email}", assertion=token)
    assert intake.state == "awaiting_fee"
    assert sent(sender, email, "fee")
    assert not sent(sender, email, "acknowledged")
    assert events_of(engine, intake.ref) == [
        "request.received",
        "request.verified",
        "request.awaiting_fee",
    ]


def test_unpaid_the_request_is_closed_with_the_rule_named(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    over_the_limit(engine, email)
    third = requests.submit("access", f"email:{email}", jurisdiction="eu")
    with pytest.raises(RequestError, match="only a request awaiting its fee"):
        requests.deny(third.ref, "fee_unpaid")
    requests.verify(third.ref, code_for(sender, email))
    requests.charge_fee(third.ref, amount="EUR 12.50")
    closed = requests.deny(third.ref, "fee_unpaid")
    assert closed.state == "denied" and closed.refusal["rule"] == "fee_unpaid"
    told = sender.last(to=email, template="denied").body
    assert "We asked for a fee (EUR 12.50)" in told and "not paid" in told
    assert request_row(engine, third.ref).state == "denied"
    with pytest.raises(RequestError, match="not awaiting a fee"):
        requests.fee_paid(third.ref, by="Ana")


def test_the_privacy_team_charges_an_excessive_request_awaiting_approval(
    urls: tuple[str, str], shop_url: str, sender: MemorySender, clock: dict[str, datetime]
) -> None:
    text = shop_policy_text().replace("  repeat_limit:", "  approval: [erasure]\n  repeat_limit:")
    for engine in _engine(urls, sender, clock, text):
        requests = engine.requests
        customer, email = a_customer(shop_url)
        intake = requests.submit("erasure", f"email:{email}", jurisdiction="eu")
        # Before verification the fee is only recorded: asked once the person is known.
        requests.charge_fee(intake.ref, amount="EUR 10", ground="manifestly_unfounded")
        assert not sent(sender, email, "fee")
        waiting = requests.verify(intake.ref, code_for(sender, email))
        assert waiting.state == "awaiting_fee"
        assert "manifestly unfounded" in sender.last(to=email, template="fee").body
        paid = requests.fee_paid(intake.ref, by="Ana")
        assert paid.state == "awaiting_approval"  # the fee does not replace the approval
        requests.approve(intake.ref, by="Ben")
        requests.run_pending()
        assert requests.show(intake.ref).state in ("completed", "partially_completed")
        left = shop.shop_rows(shop_url, "SELECT email FROM customers WHERE id = :c", c=customer)
        assert left == [] or left[0][0] != email

        # One already awaiting approval is charged at once.
        _, other = a_customer(shop_url, f"c.id <> {customer}")
        second = requests.submit("erasure", f"email:{other}", jurisdiction="eu")
        assert requests.verify(second.ref, code_for(sender, other)).state == "awaiting_approval"
        charged = requests.charge_fee(second.ref, amount="EUR 10")
        assert charged.state == "awaiting_fee" and charged.fee["ground"] == "excessive"
        assert "excessive" in sender.last(to=other, template="fee").body


def test_fee_mistakes_are_named(engine: Engine, sender: MemorySender, shop_url: str) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    intake = requests.submit("access", f"email:{email}", jurisdiction="eu")
    for amount in ("25", "twenty euros", "EUR -5", "EUR 1.999", ""):
        with pytest.raises(RequestError, match="currency code and a sum"):
            requests.charge_fee(intake.ref, amount=amount)
    with pytest.raises(RequestError, match="a ground for a fee"):
        requests.charge_fee(intake.ref, amount="EUR 5", ground="legal_claims")
    with pytest.raises(RequestError, match="say who saw the payment"):
        requests.fee_paid(intake.ref, by=" ")
    requests.verify(intake.ref, code_for(sender, email))
    with pytest.raises(RequestError, match="a fee can be asked only before it runs"):
        requests.charge_fee(intake.ref, amount="EUR 5")
    assert request_row(engine, intake.ref).fee is None


def test_a_policy_without_a_fee_refuses_over_the_limit(
    urls: tuple[str, str], shop_url: str, sender: MemorySender, clock: dict[str, datetime]
) -> None:
    text = shop_policy_text().replace(COST_FEE, "fee: {default: free}")
    for engine in _engine(urls, sender, clock, text):
        requests = engine.requests
        _, email = a_customer(shop_url)
        over_the_limit(engine, email)
        third = requests.submit("access", f"email:{email}", jurisdiction="eu")
        assert third.state == "denied"
        assert requests.show(third.ref).refusal["rule"] == "repeat_limit"
        assert "fee" not in sender.last(to=email, template="denied").body
        with pytest.raises(RequestError, match="charges no fee"):
            requests.charge_fee(third.ref, amount="EUR 5")
