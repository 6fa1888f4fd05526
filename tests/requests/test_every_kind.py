"""Every kind of request, end to end, on the sample shop (SQLite and PostgreSQL).

For each kind the policy offers: submitted and verified by the emailed code, run by the
worker to its end, then checked as the person, the company and an auditor would check
it: the status the person reads and the message they get; the shop's database and
lawful's consent ledger with plain SQL; the request's audit events in chain order, each
naming the request by its ref and none holding the person's email or phone; the receipt
on the request (its steps those of the job, its state, its signature) whose SHA-256 is
the one the `request.receipt` event chains; and the whole audit chain verifying.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from lawful.audit import AuditLog
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.policy.vocabulary import RequestKind
from lawful.requests.messages import MemorySender
from lawful.requests.service import RequestError
from lawful.subjects import Identity
from tests.requests import test_requests as shop
from tests.requests.test_requests import (
    SHOP_POLICY,
    TAXED,
    a_customer,
    shop_engine,
    shop_rows,
    submit_and_verify,
)

# The fixtures of the requests tests: the store and the shop on SQLite and on PostgreSQL
# (a fresh database each), and the sender that keeps the messages.
urls, shop_url, sender = shop.urls, shop.shop_url, shop.sender

# The shop's policy offering every kind there is, with a recipient to restrict and an
# automated decision to explain.
REQUESTS = """requests:
  kinds: [confirm, access, portability, rectification, erasure, account_closure, restriction, objection, withdraw_consent, opt_out_sale, restrict_recipients, explain_decision, information]
  verification: [email_code, signed_in]
  deadline:
    default: 1 month
    extension: 2 months

recipients:
  paypal:
    description: PayPal, which takes the customer's payments
    role: controller
    country: LU
"""
INTEREST = "    legitimate_interest: Keeping accounts safe from takeover\n"
AUTOMATED = """    automated_decision:
      significant: true
      logic: A sign-in from a new country and device is held for a second factor
      human_review: true
"""
PACKAGE_KINDS = ("access", "portability")
NEW_LAST_NAME = "Rectified-Qx7"  # a value that must reach the shop and nothing else

COMPLETE = "Your request is complete."
PARTIAL = (
    "Your request is complete, except for the parts the law requires or allows us to keep;"
    " the reasons are listed."
)


def every_kind_policy_text() -> str:
    text = SHOP_POLICY.read_text()
    start, end = text.index("requests:\n"), text.index("\nmarketing:")
    text = text[:start] + REQUESTS + text[end:]
    assert INTEREST in text
    return text.replace(INTEREST, INTEREST + AUTOMATED)


@pytest.fixture
def engine(urls: tuple[str, str], shop_url: str, sender: MemorySender) -> Iterator[Engine]:
    with shop_engine(urls[0], sender, every_kind_policy_text(), "shop-every-kind.yaml") as opened:
        yield opened


# --- what each kind is expected to do -------------------------------------------------------


@dataclass
class Run:
    """One request run for a customer, and what the checks read."""

    engine: Engine
    shop_url: str
    customer: int
    email: str
    ref: str
    shop_before: tuple[Any, ...]
    ledger_before: int


def customer_row(url: str, customer: int) -> tuple[Any, ...]:
    """The customer's row in the shop: email, phone, first and last name, birth date."""
    rows = shop_rows(
        url,
        "SELECT email, phone, first_name, last_name, birth_date FROM customers WHERE id = :c",
        c=customer,
    )
    return tuple(rows[0])


def ledger_count(engine: Engine) -> int:
    with engine.store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM consent_records")).scalar_one()


def ledger(engine: Engine, email: str) -> dict[tuple[str, str], str]:
    """The person's current choices in lawful's consent ledger, by (topic, key), in SQL."""
    identity_hash = engine.keyring.hash(Identity.parse(f"email:{email}"))
    with engine.store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.topic, s.key, s.state FROM consent_state s "
                "JOIN identities i ON i.subject_id = s.subject_id WHERE i.hash = :h"
            ),
            {"h": identity_hash},
        ).all()
    return {(topic, key): state for topic, key, state in rows}


def history(engine: Engine, email: str, topic: str, key: str) -> list[str]:
    """Every record of one choice in the append-only ledger, oldest first."""
    identity_hash = engine.keyring.hash(Identity.parse(f"email:{email}"))
    with engine.store.engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT r.state FROM consent_records r "
                    "JOIN identities i ON i.subject_id = r.subject_id "
                    "WHERE i.hash = :h AND r.topic = :t AND r.key = :k ORDER BY r.id"
                ),
                {"h": identity_hash, "t": topic, "k": key},
            ).scalars()
        )


def nothing_changed(run: Run) -> None:
    """A kind that only reads: the shop's row and lawful's ledger are as they were."""
    assert customer_row(run.shop_url, run.customer) == run.shop_before
    assert ledger_count(run.engine) == run.ledger_before


def check_confirm(run: Run) -> None:
    nothing_changed(run)
    found = run.engine.requests.show(run.ref).outcome["datasets:find"]
    assert found["holds_data"] is True and found["rows"]["shop"] > 0


def check_package(run: Run) -> None:
    nothing_changed(run)
    with run.engine.store.engine.connect() as conn:
        size, sealed = conn.execute(
            sa.text(
                "SELECT p.size, p.content FROM request_packages p "
                "JOIN requests r ON r.id = p.request_id WHERE r.ref = :ref"
            ),
            {"ref": run.ref},
        ).one()
    assert size > 0 and sealed is not None
    assert run.email.encode() not in bytes(sealed)  # sealed, not stored in clear


def check_rectified(run: Run) -> None:
    email, phone, first, last, born = run.shop_before
    assert last != NEW_LAST_NAME
    # The last name changed, and nothing else.
    after = customer_row(run.shop_url, run.customer)
    assert after == (email, phone, first, NEW_LAST_NAME, born)


def check_erased(run: Run) -> None:
    rows = shop_rows(
        run.shop_url, "SELECT first_name, phone FROM customers WHERE id = :c", c=run.customer
    )
    assert rows == [("erased", None)]
    assert shop_rows(
        run.shop_url, "SELECT COUNT(*) FROM customers WHERE email = :e", e=run.email
    ) == [(0,)]
    logins = shop_rows(
        run.shop_url, "SELECT COUNT(*) FROM login_events WHERE customer_id = :c", c=run.customer
    )
    assert logins == [(0,)]


def check_closed_for_a_stranger_to_lawful(run: Run) -> None:
    """lawful held no records of the person: the erasure adds none (no subject made)."""
    check_erased(run)
    assert ledger(run.engine, run.email) == {}
    assert ledger_count(run.engine) == run.ledger_before


def check_erased_keeping_invoices(run: Run) -> None:
    check_erased(run)
    # lawful's own records: consent withdrawn, sale and share stopped; the ledger kept as
    # proof of what the person chose.
    choices = ledger(run.engine, run.email)
    assert choices[("opt_out", "sale")] == choices[("opt_out", "share")] == "withdrawn"
    assert history(run.engine, run.email, "consent", "newsletter") == ["given", "withdrawn"]
    taxes = shop_rows(
        run.shop_url,
        TAXED.replace("c.id", ":c").replace("SELECT 1", "SELECT COUNT(*)"),
        c=run.customer,
    )
    assert taxes[0][0] > 0
    receipt = run.engine.requests.show(run.ref).receipt
    assert "tax_records" in {k["table"] for k in receipt["kept"]}


def recorded(*choices: tuple[str, str]) -> Callable[[Run], None]:
    """The request recorded these choices (topic, key) as withdrawn in the ledger."""

    def check(run: Run) -> None:
        assert customer_row(run.shop_url, run.customer) == run.shop_before
        now = ledger(run.engine, run.email)
        for choice in choices:
            assert now.get(choice) == "withdrawn", (choice, now)
            assert history(run.engine, run.email, *choice)[-1] == "withdrawn"

    return check


def check_restricted(run: Run) -> None:
    recorded(("restriction", "*"))(run)
    who = f"email:{run.email}"
    assert not run.engine.consent.decide(who, "orders").allowed


def give_newsletter(engine: Engine, email: str) -> None:
    engine.consent.give(f"email:{email}", "newsletter", method="checkbox")


def check_withdrawn(run: Run) -> None:
    recorded(("consent", "newsletter"))(run)
    assert history(run.engine, run.email, "consent", "newsletter") == ["given", "withdrawn"]
    assert not run.engine.consent.decide(f"email:{run.email}", "newsletter").allowed


def check_objected(run: Run) -> None:
    """An objection to a legitimate-interest purpose and to direct marketing: both recorded,
    and both refused from then on, the newsletter the person had consented to included."""
    recorded(("objection", "security"), ("objection", "*marketing"))(run)
    who = f"email:{run.email}"
    assert not run.engine.consent.decide(who, "security").allowed
    assert not run.engine.consent.decide(who, "newsletter").allowed


def check_explained(run: Run) -> None:
    nothing_changed(run)
    answer = run.engine.requests.show(run.ref).outcome["answer"]["automated_decisions"]
    logic = run.engine.policy.purposes["security"].automated.logic
    assert answer["security"]["logic"] == logic


def check_informed(run: Run) -> None:
    nothing_changed(run)
    answer = run.engine.requests.show(run.ref).outcome["answer"]["information"]
    assert answer["controller"]["name"] == run.engine.policy.controller.name


@dataclass(frozen=True)
class Case:
    steps: tuple[str, ...]  # the job's steps, before `close`
    check: Callable[[Run], None]
    params: dict[str, Any] | None = None
    state: str = "completed"
    customer: str = "1 = 1"  # which customer asks (a condition on customers c)
    before: Callable[[Engine, str], None] | None = None


ERASE = ("dataset:shop:plan", "dataset:shop:erase", "records:close", "recipients:notify", "proof")
NO_ORDERS = "NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)"
CASES: dict[str, Case] = {
    "confirm": Case(("datasets:find",), check_confirm),
    "access": Case(("package",), check_package),
    "portability": Case(("package",), check_package),
    "rectification": Case(
        ("dataset:rectify", "recipients:notify"),
        check_rectified,
        params={"changes": {"customers.last_name": NEW_LAST_NAME}},
    ),
    # Invoices are kept ten years: the erasure is complete but for them.
    "erasure": Case(
        ERASE,
        check_erased_keeping_invoices,
        state="partially_completed",
        customer=f"EXISTS ({TAXED})",
        before=give_newsletter,
    ),
    # A customer who never ordered, and of whom lawful holds no records: nothing is kept.
    "account_closure": Case(ERASE, check_closed_for_a_stranger_to_lawful, customer=NO_ORDERS),
    "restriction": Case(("records:restrict",), check_restricted),
    "objection": Case(
        ("records:object",),
        check_objected,
        params={"purposes": ["security"], "marketing": True},
        before=give_newsletter,
    ),
    "withdraw_consent": Case(("records:withdraw",), check_withdrawn, before=give_newsletter),
    "opt_out_sale": Case(("records:opt_out",), recorded(("opt_out", "sale"), ("opt_out", "share"))),
    "restrict_recipients": Case(
        ("records:restrict_recipients",),
        recorded(("recipient", "paypal")),
        params={"recipients": ["paypal"]},
    ),
    "explain_decision": Case(("answer",), check_explained, params={"purpose": "security"}),
    "information": Case(("answer",), check_informed),
}


def test_the_cases_cover_every_kind_and_the_policy_offers_them() -> None:
    offered = load_policy_text(every_kind_policy_text(), "p.yaml").policy.requests.kinds
    assert set(CASES) == {k.value for k in RequestKind} == {k.value for k in offered}


# --- the test --------------------------------------------------------------------------------


def request_events(engine: Engine, ref: str) -> list[dict[str, Any]]:
    """The request's audit events, read with SQL, in chain order."""
    with engine.store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT seq, kind, subject, data FROM audit_events ORDER BY seq")
        ).all()
    events = []
    for seq, kind, subject, data in rows:
        data = json.loads(data) if isinstance(data, str) else data
        if (data or {}).get("ref") == ref:
            events.append({"seq": seq, "kind": kind, "subject": subject, "data": data})
    return events


def personal_values(email: str, phone: str | None) -> list[str]:
    values = [email, email.split("@")[0]]
    if phone:
        values += [phone, phone.lstrip("+")]
    return values


@pytest.mark.parametrize("kind", list(CASES))
def test_every_kind_end_to_end(
    kind: str, engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    case = CASES[kind]
    requests = engine.requests
    customer, email = a_customer(shop_url, case.customer)
    if case.before is not None:
        case.before(engine, email)
    shop_before = customer_row(shop_url, customer)
    phone = shop_before[1]

    ref = submit_and_verify(requests, sender, kind, email, params=case.params)
    run = Run(engine, shop_url, customer, email, ref, shop_before, ledger_count(engine))
    assert requests.show(ref).state == "in_progress"
    assert requests.run_pending() == 1

    # The person: the status they read, and the message telling them the outcome (for a
    # copy of their data, the message with its link).
    view = requests.show(ref)
    assert view.state == case.state
    assert view.status == (PARTIAL if case.state == "partially_completed" else COMPLETE)
    told = "package_ready" if kind in PACKAGE_KINDS else case.state
    assert sender.last(to=email, template=told).body

    # The company's data, and lawful's ledger, as the kind leaves them.
    case.check(run)

    # The job: its steps, in order, all done, then `close`.
    names = [s["name"] for s in view.steps]
    assert names == [*case.steps, "close"]
    assert all(s["state"] == "done" for s in view.steps)

    # The audit log: the request's moves in order, each naming it, by the identity's
    # keyed hash; nothing personal in the log, nor in clear in the request's own rows.
    events = request_events(engine, ref)
    assert [e["kind"] for e in events] == [
        "request.received",
        "request.awaiting_verification",
        "request.verified",
        "request.in_progress",
        f"request.{case.state}",
        "request.receipt",
    ]
    identity_hash = engine.keyring.hash(Identity.parse(f"email:{email}"))
    assert {e["subject"] for e in events} == {identity_hash}
    assert events[0]["data"]["kind"] == kind
    with engine.store.engine.connect() as conn:
        for table in ("audit_events", "requests", "request_steps", "request_messages"):
            rows = " ".join(str(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}")))
            for value in [*personal_values(email, phone), NEW_LAST_NAME]:
                assert value not in rows, f"{value!r} is in {table}"

    # The receipt: what was done, signed, and chained by its hash in the audit log.
    receipt = view.receipt
    assert receipt is not None
    assert receipt["request"] == ref and receipt["kind"] == kind
    assert receipt["state"] == case.state and receipt["verified_by"] == "email_code"
    assert receipt["on_behalf"] is None  # the person asked for themselves
    assert [s["name"] for s in receipt["steps"]] == list(case.steps)
    assert all(s["finished_at"] for s in receipt["steps"])
    assert requests.check_receipt(ref)
    unsigned = {k: v for k, v in receipt.items() if k != "signature"}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), default=str)
    assert events[-1]["data"]["receipt_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    dumped = json.dumps(receipt)
    for value in [*personal_values(email, phone), NEW_LAST_NAME]:
        assert value not in dumped, f"{value!r} is in the receipt"

    assert AuditLog(engine.store, engine.policy.key).verify().ok

    if kind in PACKAGE_KINDS:
        # The link in the person's message opens their copy (and that is logged too).
        token = sender.last(to=email, template="package_ready").body.split("token=")[1].split()[0]
        with zipfile.ZipFile(io.BytesIO(requests.download(token))) as zf:
            data = json.loads(zf.read("data.json"))
        (shop_data,) = data["datasets"]
        customers = next(t for t in shop_data["tables"] if t["table"] == "customers")
        assert [r["data"]["email"] for r in customers["rows"]] == [email]
        assert request_events(engine, ref)[-1]["kind"] == "request.package_downloaded"
        assert AuditLog(engine.store, engine.policy.key).verify().ok


def test_withdrawing_consent_given_per_channel_or_list(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    """The newsletter consented to by email and for the weekly list: a withdraw_consent
    request withdraws both, and the newsletter is refused on either."""
    _, email = a_customer(shop_url)
    who = f"email:{email}"
    engine.consent.give(who, "newsletter", channel="email", method="checkbox")
    engine.consent.give(who, "newsletter", list_name="weekly", method="checkbox")
    assert engine.consent.decide(who, "newsletter", channel="email").allowed
    ref = submit_and_verify(engine.requests, sender, "withdraw_consent", email)
    engine.requests.run_pending()
    assert engine.requests.show(ref).state == "completed"
    with engine.store.engine.connect() as conn:
        states = conn.execute(
            sa.text(
                "SELECT s.scope, s.state FROM consent_state s "
                "JOIN identities i ON i.subject_id = s.subject_id "
                "WHERE i.hash = :h AND s.topic = 'consent' AND s.key = 'newsletter'"
            ),
            {"h": engine.keyring.hash(Identity.parse(who))},
        ).all()
    assert dict(states) == {"email": "withdrawn", "list:weekly": "withdrawn"}
    assert not engine.consent.decide(who, "newsletter", channel="email").allowed


def test_a_code_sent_by_sms_is_what_the_receipt_says(
    urls: tuple[str, str], shop_url: str, sender: MemorySender
) -> None:
    text = every_kind_policy_text().replace(
        "verification: [email_code, signed_in]", "verification: [email_code, phone_code]"
    )
    with shop_engine(urls[0], sender, text, "shop-phone.yaml") as engine:
        (phone,) = shop_rows(shop_url, "SELECT phone FROM customers WHERE phone IS NOT NULL")[0]
        intake = engine.requests.submit("access", f"phone:{phone}", jurisdiction="eu")
        assert intake.code_sent_to == "phone"
        body = sender.last(template="code").body
        code = next(line.strip() for line in body.splitlines() if line.strip().isdigit())
        engine.requests.verify(intake.ref, code)
        engine.requests.run_pending()
        view = engine.requests.show(intake.ref)
        assert view.verified_by == "phone_code"
        assert view.receipt is not None and view.receipt["verified_by"] == "phone_code"


def test_an_opt_out_is_of_sale_and_sharing_both(engine: Engine) -> None:
    """A parameter that would narrow an opt-out is refused, not silently ignored."""
    with pytest.raises(RequestError, match=r"takes no parameter share \(it takes: none\)"):
        engine.requests.submit("opt_out_sale", "email:a@example.com", params={"share": False})
