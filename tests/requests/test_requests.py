"""Requests end to end, on the sample shop: submitted, verified by the code the person
received, run, and checked with plain SQL on the shop's database, the person's status,
the messages, the audit log and the receipt. On SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from examples.shop.generate import generate
from lawful.audit import AuditLog
from lawful.engine import Engine
from lawful.policy import load_policy_text
from lawful.requests import package, service
from lawful.requests.messages import MemorySender
from lawful.requests.service import RequestError, Requests
from lawful.subjects import Keyring

ROOT = Path(__file__).resolve().parents[2]
SHOP_DATASET = ROOT / "examples" / "shop" / "dataset.yaml"
SHOP_POLICY = ROOT / "examples" / "shop" / "policy.yaml"
CUSTOMERS = 60
TAXED = (
    "SELECT 1 FROM tax_records t JOIN payments p ON p.id = t.payment_id "
    "JOIN orders o ON o.id = p.order_id WHERE o.customer_id = c.id"
)

# The shop's policy offering every kind it can, a repeat limit, two grounds for refusal.
REQUESTS = """requests:
  kinds: [confirm, access, portability, rectification, erasure, account_closure, restriction, objection, withdraw_consent]
  verification: [email_code, signed_in]
  deadline:
    default: 1 month
    extension: 2 months
  repeat_limit: {count: 2, per: 12 months}
  fee: {default: free, when_excessive: cost_fee}
  exceptions: [legal_claims, others_rights]
"""


def shop_policy_text() -> str:
    text = SHOP_POLICY.read_text()
    start = text.index("requests:\n")
    end = text.index("\nmarketing:")
    return text[:start] + REQUESTS + text[end:]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(store URL, shop URL): on SQLite two files; on PostgreSQL one fresh database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lawful.db'}", f"sqlite:///{tmp_path / 'shop.db'}"
    url = request.getfixturevalue("pg_url")
    return url, url


@pytest.fixture
def shop_url(urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    generate(urls[1], CUSTOMERS, seed=3)
    monkeypatch.setenv("SHOP_DATABASE_URL", urls[1])
    return urls[1]


@pytest.fixture
def sender() -> MemorySender:
    return MemorySender()


@contextmanager
def shop_engine(
    store_url: str, sender: MemorySender, text: str, name: str = "shop-policy.yaml"
) -> Iterator[Engine]:
    """lawful on the shop example under the policy `text`, messages kept in `sender`, no
    intake floor (tests of timing set it themselves)."""
    loaded = load_policy_text(text, name)
    with Engine.open(
        loaded, store_url, keyring=Keyring.generate(), datasets=[SHOP_DATASET], sender=sender
    ) as opened:
        opened.requests.intake_floor = 0.0
        yield opened


@pytest.fixture
def engine(urls: tuple[str, str], shop_url: str, sender: MemorySender) -> Iterator[Engine]:
    with shop_engine(urls[0], sender, shop_policy_text()) as opened:
        yield opened


def shop_rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def a_customer(url: str, condition: str = "1 = 1") -> tuple[int, str]:
    row = shop_rows(url, f"SELECT id, email FROM customers c WHERE {condition} ORDER BY id")[0]
    return row[0], row[1]


def code_for(sender: MemorySender, email: str) -> str:
    body = sender.last(to=email, template="code").body
    digits = [line.strip() for line in body.splitlines() if line.strip().isdigit()]
    assert len(digits) == 1, body
    return digits[0]


def submit_and_verify(
    requests: Requests, sender: MemorySender, kind: str, email: str, **kw: Any
) -> str:
    kw.setdefault("jurisdiction", "eu")
    intake = requests.submit(kind, f"email:{email}", **kw)
    assert intake.state == "awaiting_verification" and intake.code_sent_to == "email"
    requests.verify(intake.ref, code_for(sender, email))
    return intake.ref


def events_of(engine: Engine, ref: str) -> list[str]:
    log = AuditLog(engine.store, engine.policy.key)
    return [e.kind for e in log.events() if (e.data or {}).get("ref") == ref]


# --- access and portability ---------------------------------------------------------------


def test_access_request_from_intake_to_download(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests = engine.requests
    customer, email = a_customer(shop_url)
    ref = submit_and_verify(requests, sender, "access", email)
    assert requests.show(ref).state == "in_progress"
    assert requests.run_pending() == 1

    view = requests.show(ref)
    assert view.state == "completed"
    assert view.status == "Your request is complete."
    assert [s["name"] for s in view.steps] == ["package", "close"]
    assert all(s["state"] == "done" for s in view.steps)

    # The person got the link by mail; it opens the package, which holds their rows.
    message = sender.last(to=email, template="package_ready")
    token = message.body.split("token=")[1].split()[0]
    with zipfile.ZipFile(io.BytesIO(requests.download(token))) as zf:
        data = json.loads(zf.read("data.json"))
        names = zf.namelist()
    assert "summary.html" in names and "csv/shop/customers.csv" in names
    (shop,) = data["datasets"]
    customers = next(t for t in shop["tables"] if t["table"] == "customers")
    assert [r["data"]["email"] for r in customers["rows"]] == [email]
    orders = shop_rows(shop_url, "SELECT COUNT(*) FROM orders WHERE customer_id = :c", c=customer)[
        0
    ][0]
    got_orders = next((t for t in shop["tables"] if t["table"] == "orders"), {"rows": []})
    assert len(got_orders["rows"]) == orders
    assert data["information"]["complaint"]  # Art. 15(1)(f): the authority
    assert "account" in {p["key"] for p in data["information"]["purposes"]}

    assert events_of(engine, ref) == [
        "request.received",
        "request.awaiting_verification",
        "request.verified",
        "request.in_progress",
        "request.completed",
        "request.receipt",
        "request.package_downloaded",
    ]
    assert requests.check_receipt(ref)
    assert engine.store  # the chain holds
    assert AuditLog(engine.store, engine.policy.key).verify().ok


def test_an_unknown_identity_gets_the_same_answer(engine: Engine, sender: MemorySender) -> None:
    """No account enumeration: a stranger's request is taken, coded and answered alike."""
    requests = engine.requests
    intake = requests.submit("access", "email:nobody-here@example.org", jurisdiction="eu")
    assert intake.state == "awaiting_verification" and intake.code_sent_to == "email"
    requests.verify(intake.ref, code_for(sender, "nobody-here@example.org"))
    requests.run_pending()
    assert requests.show(intake.ref).state == "completed"
    token = sender.last(template="package_ready").body.split("token=")[1].split()[0]
    with zipfile.ZipFile(io.BytesIO(requests.download(token))) as zf:
        data = json.loads(zf.read("data.json"))
    assert all(not t["rows"] for d in data["datasets"] for t in d["tables"])


def test_a_wrong_code_does_not_verify(engine: Engine, sender: MemorySender, shop_url: str) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    intake = requests.submit("access", f"email:{email}", jurisdiction="eu")
    right = code_for(sender, email)
    wrong = "000000" if right != "000000" else "111111"
    with pytest.raises(RequestError, match="not right; 4 attempts left"):
        requests.verify(intake.ref, wrong)
    assert requests.show(intake.ref).state == "awaiting_verification"
    assert requests.run_pending() == 0
    assert "request.verification_failed" in events_of(engine, intake.ref)
    requests.verify(intake.ref, right)
    assert requests.show(intake.ref).state == "in_progress"


# --- erasure --------------------------------------------------------------------------------


def test_erasure_runs_proves_and_keeps_what_the_law_requires(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests = engine.requests
    customer, email = a_customer(shop_url, f"EXISTS ({TAXED})")
    logins = shop_rows(
        shop_url, "SELECT COUNT(*) FROM login_events WHERE customer_id = :c", c=customer
    )
    assert logins[0][0] > 0
    ref = submit_and_verify(requests, sender, "erasure", email)
    requests.run_pending()

    view = requests.show(ref)
    # Invoices are kept ten years (tax law): the request is complete except for them.
    assert view.state == "partially_completed"
    assert [s["name"] for s in view.steps] == [
        "dataset:shop:plan",
        "dataset:shop:erase",
        "records:close",
        "recipients:notify",
        "proof",
        "close",
    ]
    assert (
        shop_rows(shop_url, "SELECT COUNT(*) FROM login_events WHERE customer_id = :c", c=customer)[
            0
        ][0]
        == 0
    )
    (first_name,) = shop_rows(
        shop_url, "SELECT first_name FROM customers WHERE id = :c", c=customer
    )[0]
    assert first_name == "erased"
    assert (
        shop_rows(shop_url, "SELECT COUNT(*) FROM customers WHERE email = :e", e=email)[0][0] == 0
    )
    taxes = shop_rows(
        shop_url, TAXED.replace("c.id", ":c").replace("SELECT 1", "SELECT COUNT(*)"), c=customer
    )
    assert taxes[0][0] > 0

    receipt = view.receipt
    assert receipt is not None and receipt["state"] == "partially_completed"
    kept_tables = {k["table"] for k in receipt["kept"]}
    assert "tax_records" in kept_tables
    assert any("invoices" in r for k in receipt["kept"] for r in k["reasons"])
    assert requests.check_receipt(ref)
    # The person is told what was kept and why.
    message = sender.last(to=email, template="partially_completed")
    assert "invoices" in message.body
    assert events_of(engine, ref)[-2:] == ["request.partially_completed", "request.receipt"]
    assert AuditLog(engine.store, engine.policy.key).verify().ok


def test_a_tampered_receipt_is_detected(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    ref = submit_and_verify(requests, sender, "erasure", email)
    requests.run_pending()
    assert requests.check_receipt(ref)
    from lawful.requests.tables import requests as table

    receipt = requests.show(ref).receipt
    assert receipt is not None
    forged = {**receipt, "verified_by": "someone else"}
    with engine.store.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.ref == ref).values(receipt=forged))
    assert not requests.check_receipt(ref)


# --- the other kinds ---------------------------------------------------------------------------


def test_rectification_changes_the_named_field(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests = engine.requests
    customer, email = a_customer(shop_url)
    ref = submit_and_verify(
        requests,
        sender,
        "rectification",
        email,
        params={"changes": {"customers.last_name": "Fixed"}},
    )
    requests.run_pending()
    assert requests.show(ref).state == "completed"
    assert (
        shop_rows(shop_url, "SELECT last_name FROM customers WHERE id = :c", c=customer)[0][0]
        == "Fixed"
    )


def test_rectification_needs_its_changes(engine: Engine) -> None:
    with pytest.raises(RequestError, match="names what to correct"):
        engine.requests.submit("rectification", "email:a@example.com", params={})
    with pytest.raises(RequestError, match=r"customers\.shoe_size"):
        engine.requests.submit(
            "rectification", "email:a@example.com", params={"changes": {"customers.shoe_size": 4}}
        )
    assert engine.requests.list() == []  # nothing half-taken


def test_restriction_objection_and_withdrawal_reach_decisions(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests, consent = engine.requests, engine.consent
    _, email = a_customer(shop_url)
    consent.give(f"email:{email}", "newsletter", method="checkbox")
    assert consent.decide(f"email:{email}", "newsletter").allowed

    ref = submit_and_verify(requests, sender, "withdraw_consent", email)
    requests.run_pending()
    assert requests.show(ref).outcome["records:withdraw"] == {
        "purposes": {"newsletter": "withdrawn", "reviews": "not given"}
    }
    assert not consent.decide(f"email:{email}", "newsletter").allowed

    ref = submit_and_verify(requests, sender, "objection", email, params={"purposes": ["security"]})
    requests.run_pending()
    assert requests.show(ref).state == "completed"
    assert not consent.decide(f"email:{email}", "security").allowed

    ref = submit_and_verify(requests, sender, "restriction", email)
    requests.run_pending()
    decision = consent.decide(f"email:{email}", "orders")
    assert not decision.allowed


def test_an_objection_to_a_consent_purpose_is_refused(engine: Engine) -> None:
    with pytest.raises(RequestError, match="does not rest on legitimate interests"):
        engine.requests.submit("objection", "email:a@example.com", params={"purposes": ["reviews"]})


def test_confirm_says_whether_data_is_held(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    held = submit_and_verify(requests, sender, "confirm", email)
    none = submit_and_verify(requests, sender, "confirm", "stranger@example.org")
    requests.run_pending()
    assert requests.show(held).outcome["datasets:find"]["holds_data"] is True
    assert requests.show(none).outcome["datasets:find"]["holds_data"] is False


# --- the privacy team ----------------------------------------------------------------------------


def test_deny_extend_and_withdraw(engine: Engine, sender: MemorySender, shop_url: str) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    first = requests.submit("access", f"email:{email}", jurisdiction="eu")
    view = requests.extend(first.ref, "the request covers several years of records")
    assert view.extended and view.due_at > first.due_at + timedelta(days=55)
    assert "several years" in sender.last(to=email, template="extended").body
    with pytest.raises(RequestError, match="only once"):
        requests.extend(first.ref, "again")

    denied = requests.deny(first.ref, "legal_claims", detail="a court case about this order")
    assert denied.state == "denied" and denied.refusal["rule"] == "legal_claims"
    assert sender.last(to=email, template="denied")
    with pytest.raises(RequestError, match="it lists: legal_claims, others_rights"):
        requests.deny(requests.submit("access", f"email:{email}").ref, "trade_secret")

    second = requests.submit("erasure", f"email:{email}", jurisdiction="eu")
    assert requests.withdraw(second.ref).state == "withdrawn"
    with pytest.raises(RequestError, match="is withdrawn, not awaiting verification"):
        requests.verify(second.ref, "123456")


def test_list_by_deadline(engine: Engine, shop_url: str) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    made = requests.submit("access", f"email:{email}", jurisdiction="eu")
    assert [v.ref for v in requests.list(due_within=timedelta(days=40))] == [made.ref]
    assert requests.list(due_within=timedelta(days=3)) == []
    assert requests.list(overdue=True) == []
    later = Requests(
        engine.store,
        engine.policy,
        engine.policy_version,
        engine.keyring,
        engine.consent,
        clock=lambda: datetime.now(UTC) + timedelta(days=40),
    )
    assert [v.ref for v in later.list(overdue=True)] == [made.ref]


def test_a_signed_in_assertion_verifies_at_once(engine: Engine, shop_url: str) -> None:
    from lawful.requests.verify import sign_assertion
    from lawful.subjects import Identity

    requests = engine.requests
    _, email = a_customer(shop_url)
    token = sign_assertion(
        engine.keyring,
        controller=engine.policy.key,
        identity=Identity.parse(f"email:{email}"),
        now=datetime.now(UTC),
    )
    intake = requests.submit("access", f"email:{email}", assertion=token)
    assert intake.state == "in_progress" and intake.code_sent_to is None
    assert requests.show(intake.ref).verified_by == "signed_in"
    with pytest.raises(RequestError, match="another identity"):
        requests.submit("access", "email:someone-else@example.org", assertion=token)


def test_bad_input_is_named(engine: Engine) -> None:
    requests = engine.requests
    with pytest.raises(RequestError, match="unknown request kind 'acces'"):
        requests.submit("acces", "email:a@example.com")
    with pytest.raises(RequestError, match="does not offer explain_decision"):
        requests.submit("explain_decision", "email:a@example.com")
    with pytest.raises(RequestError, match="jurisdiction"):
        requests.submit("access", "email:a@example.com", jurisdiction="atlantis")
    with pytest.raises(RequestError):
        requests.submit("access", "not an identity")
    with pytest.raises(RequestError, match="no request"):
        requests.show("0" * 32)


def test_nothing_personal_in_the_store_or_the_log(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    ref = submit_and_verify(requests, sender, "erasure", email)
    requests.run_pending()
    with engine.store.engine.connect() as conn:
        dump = " ".join(
            str(tuple(row))
            for name in ("requests", "request_steps", "request_messages", "audit_events")
            for row in conn.execute(sa.text(f"SELECT * FROM {name}"))
        )
    assert email not in dump and email.split("@")[0] not in dump
    assert ref in dump


def test_package_links_expire(engine: Engine, sender: MemorySender, shop_url: str) -> None:
    requests = engine.requests
    _, email = a_customer(shop_url)
    submit_and_verify(requests, sender, "portability", email)
    requests.run_pending()
    token = sender.last(to=email, template="package_ready").body.split("token=")[1].split()[0]
    late = Requests(
        engine.store,
        engine.policy,
        engine.policy_version,
        engine.keyring,
        engine.consent,
        clock=lambda: datetime.now(UTC) + timedelta(days=8),
    )
    with pytest.raises(package.PackageError, match="expired"):
        late.download(token)


# --- the five example policies ------------------------------------------------------------------

POLICIES = sorted((ROOT / "examples" / "policies").glob("*.yaml"))


@pytest.mark.parametrize("policy_file", POLICIES, ids=[p.stem for p in POLICIES])
def test_each_example_policy_runs_access_and_erasure(
    policy_file: Path, urls: tuple[str, str], shop_url: str
) -> None:
    """Each seed's policy, in force for the shop: an access and an erasure request run to
    the end, verified the way that policy says (a code, or a document a person checks).

    The shop's annotation declares categories some seeds do not (birth dates, reviews),
    so it is opened without the policy's category check.
    """
    from lawful.datasets import Datasets
    from lawful.policy import load_policy

    loaded = load_policy(policy_file)
    policy = loaded.policy
    keyring = Keyring.generate()
    sender = MemorySender()
    datasets = Datasets.load([SHOP_DATASET], keyring=keyring)
    jurisdiction = next(iter(policy.jurisdictions))
    with Engine.open(loaded, urls[0], keyring=keyring, datasets=datasets, sender=sender) as engine:
        requests = engine.requests
        requests.intake_floor = 0.0
        customer, email = a_customer(shop_url)
        refs = []
        for kind in ("access", "erasure"):
            intake = requests.submit(kind, f"email:{email}", jurisdiction=jurisdiction)
            if intake.code_sent_to:
                requests.verify(intake.ref, code_for(sender, email))
            else:  # SiNESEMI: an identity document, checked by a person
                method = sorted(m.value for m in policy.requests.verification)[0]
                requests.confirm_identity(intake.ref, method=method, by="privacy team")
            refs.append(intake.ref)
            requests.run_pending()
        access, erasure = (requests.show(r) for r in refs)
        assert access.state == "completed"
        assert erasure.state in ("completed", "partially_completed")
        assert requests.check_receipt(erasure.ref)
        # The deadline is the policy's or the law's, whichever is earlier.
        deadline = requests.show(erasure.ref).due_at - erasure.received_at
        assert timedelta(days=14) <= deadline <= timedelta(days=46), deadline
    names = shop_rows(shop_url, "SELECT first_name FROM customers WHERE id = :c", c=customer)
    assert names == [("erased",)]
    assert shop_rows(shop_url, "SELECT COUNT(*) FROM customers WHERE email = :e", e=email) == [(0,)]


def test_processor_mode_a_controller_submits_for_its_customer(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    """The controller has verified its own customer: no code; the request runs at once
    in this controller's datasets, and the receipt says who vouched."""
    requests = engine.requests
    customer, email = a_customer(shop_url)
    intake = requests.submit("erasure", f"email:{email}", submitted_by="shop-backoffice")
    assert intake.state == "in_progress" and intake.code_sent_to is None
    assert not [m for m in sender.sent if m.template == "code"]
    requests.run_pending()
    view = requests.show(intake.ref)
    assert view.verified_by == "controller"
    assert view.receipt is not None and view.receipt["verified_by"] == "controller"
    received = next(
        e for e in AuditLog(engine.store, engine.policy.key).events()
        if e.kind == "request.received" and e.data["ref"] == intake.ref
    )  # fmt: skip
    assert received.data["submitted_by"] == "shop-backoffice"
    assert shop_rows(shop_url, "SELECT first_name FROM customers WHERE id = :c", c=customer) == [
        ("erased",)
    ]


# --- the kinds the shop's own policy does not offer, under the seeds that do -----------------


def seed_engine(name: str, store_url: str, sender: MemorySender) -> tuple[Engine, Any]:
    from lawful.datasets import Datasets
    from lawful.policy import load_policy

    loaded = load_policy(ROOT / "examples" / "policies" / f"{name}.yaml")
    keyring = Keyring.generate()
    datasets = Datasets.load([SHOP_DATASET], keyring=keyring)
    engine = Engine.open(loaded, store_url, keyring=keyring, datasets=datasets, sender=sender)
    engine.requests.intake_floor = 0.0
    return engine, loaded.policy


def test_opt_out_of_sale_under_ccpa(urls: tuple[str, str], shop_url: str) -> None:
    sender = MemorySender()
    engine, _ = seed_engine("serai", urls[0], sender)
    with engine:
        _, email = a_customer(shop_url)
        ref = submit_and_verify(
            engine.requests, sender, "opt_out_sale", email, jurisdiction="us-ca"
        )
        engine.requests.run_pending()
        view = engine.requests.show(ref)
        assert view.state == "completed"
        assert view.outcome["records:opt_out"] == {"sale": "recorded", "share": "recorded"}
        # Opt-outs are answered within 15 business days in California.
        assert view.due_at - view.received_at < timedelta(days=23)
        state = engine.consent.state(f"email:{email}")
        assert state.get("opt_out", "sale").state == "withdrawn"
        assert not engine.consent.decide(
            f"email:{email}", "advertising", jurisdiction="us-ca"
        ).allowed


def test_restricting_named_third_parties(urls: tuple[str, str], shop_url: str) -> None:
    sender = MemorySender()
    engine, _ = seed_engine("selro", urls[0], sender)
    with engine:
        _, email = a_customer(shop_url)
        with pytest.raises(RequestError, match="no recipient 'payapl'"):
            engine.requests.submit(
                "restrict_recipients", f"email:{email}", params={"recipients": ["payapl"]}
            )
        ref = submit_and_verify(
            engine.requests, sender, "restrict_recipients", email, params={"recipients": ["paypal"]}
        )
        engine.requests.run_pending()
        assert engine.requests.show(ref).outcome["records:restrict_recipients"] == {
            "paypal": "recorded"
        }
        assert (
            engine.consent.state(f"email:{email}").get("recipient", "paypal").state == "withdrawn"
        )


def test_explaining_an_automated_decision(urls: tuple[str, str], shop_url: str) -> None:
    sender = MemorySender()
    engine, policy = seed_engine("seestar_store", urls[0], sender)
    with engine:
        _, email = a_customer(shop_url)
        ref = submit_and_verify(
            engine.requests, sender, "explain_decision", email,
            params={"purpose": "transaction_security"},
        )  # fmt: skip
        engine.requests.run_pending()
        answer = engine.requests.show(ref).outcome["answer"]["automated_decisions"]
        logic = policy.purposes["transaction_security"].automated.logic
        assert answer["transaction_security"]["logic"] == logic and logic


def test_information_and_account_closure(urls: tuple[str, str], shop_url: str) -> None:
    sender = MemorySender()
    engine, policy = seed_engine("sera_leads", urls[0], sender)
    with engine:
        _, email = a_customer(shop_url)
        ref = submit_and_verify(engine.requests, sender, "information", email)
        engine.requests.run_pending()
        info = engine.requests.show(ref).outcome["answer"]["information"]
        assert info["controller"]["name"] == policy.controller.name
    engine, _ = seed_engine("seestar_store", urls[0], sender)
    with engine:
        customer, email = a_customer(shop_url, "c.id > 1")
        ref = submit_and_verify(
            engine.requests, sender, "account_closure", email, jurisdiction="cn"
        )
        engine.requests.run_pending()
        assert engine.requests.show(ref).state in ("completed", "partially_completed")
    assert shop_rows(shop_url, "SELECT first_name FROM customers WHERE id = :c", c=customer) == [
        ("erased",)
    ]


def test_portability_sent_to_another_controller(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    """The data goes straight to the new controller's endpoint, as JSON, once per request."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[str, bytes]] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Idempotency-Key"], body))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = HTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, email = a_customer(shop_url)
        url = f"http://127.0.0.1:{server.server_port}/import"
        with pytest.raises(RequestError, match="https://"):
            engine.requests.submit("portability", f"email:{email}", params={"send_to": "ftp://x"})
        ref = submit_and_verify(
            engine.requests, sender, "portability", email, params={"send_to": url}
        )
        engine.requests.run_pending()
    finally:
        server.shutdown()
    view = engine.requests.show(ref)
    assert view.state == "completed"
    assert view.outcome["package:send"]["status"] == 202
    ((key, body),) = received
    assert key == ref
    data = json.loads(body)
    emails = [
        r["data"]["email"]
        for d in data["datasets"]
        for t in d["tables"]
        if t["table"] == "customers"
        for r in t["rows"]
    ]
    assert emails == [email]


def test_disclosures_are_listed_and_their_recipients_told_of_an_erasure(
    urls: tuple[str, str], shop_url: str
) -> None:
    """Art. 15(1)(c): the copy lists who received the data; Art. 19: those recipients,
    and only they, are told of the erasure."""
    sender = MemorySender()
    engine, _ = seed_engine("selro", urls[0], sender)
    with engine:
        _, email = a_customer(shop_url)
        made = engine.disclosures.disclose(
            f"email:{email}", "paypal", ["user.financial.credit_card"], "payments"
        )
        assert made.allowed, made.reason
        ref = submit_and_verify(engine.requests, sender, "access", email)
        engine.requests.run_pending()
        token = sender.last(to=email, template="package_ready").body.split("token=")[1].split()[0]
        with zipfile.ZipFile(io.BytesIO(engine.requests.download(token))) as zf:
            data = json.loads(zf.read("data.json"))
        assert [d["recipient"] for d in data["information"]["disclosures"]] == ["paypal"]

        ref = submit_and_verify(engine.requests, sender, "erasure", email)
        engine.requests.run_pending()
        view = engine.requests.show(ref)
        assert view.outcome["recipients:notify"] == {"recipients": ["paypal"]}
        notices = engine.disclosures.notices_of(ref)
        assert [(n.recipient, n.change) for n in notices] == [("paypal", "erasure")]


def test_intake_takes_the_same_time_known_or_not(engine: Engine, shop_url: str) -> None:
    """An anonymous intake waits out the floor whether the identity is known or not; a
    signed-in app's request, which reveals nothing to anyone, does not wait."""
    import time

    from lawful.requests.verify import sign_assertion
    from lawful.subjects import Identity

    requests = engine.requests
    requests.intake_floor = 1.0
    _, email = a_customer(shop_url)
    for who in (f"email:{email}", "email:never-seen@example.org"):
        started = time.monotonic()
        requests.submit("access", who)
        assert time.monotonic() - started >= 1.0
    token = sign_assertion(
        engine.keyring,
        controller=engine.policy.key,
        identity=Identity.parse(f"email:{email}"),
        now=datetime.now(UTC),
    )
    started = time.monotonic()
    requests.submit("access", f"email:{email}", assertion=token)
    assert time.monotonic() - started < 1.0


def test_uk_clock_stops_while_awaiting_clarification(urls: tuple[str, str], shop_url: str) -> None:
    """Under UK law the deadline moves by the days lawful waited for the person's answer;
    under the GDPR in the EU it does not."""
    sender = MemorySender()
    engine, _ = seed_engine("selro", urls[0], sender)
    with engine:
        _, email = a_customer(shop_url)
        clock = {"now": datetime.now(UTC)}

        def later() -> datetime:
            return clock["now"]

        requests = Requests(
            engine.store, engine.policy, engine.policy_version, engine.keyring, engine.consent,
            engine.datasets, sender=sender, clock=later, intake_floor=0.0,
        )  # fmt: skip
        uk = requests.submit("access", f"email:{email}", jurisdiction="uk")
        eu = requests.submit("access", f"email:{email}", jurisdiction="eu")
        for ref in (uk.ref, eu.ref):
            view = requests.ask_clarification(ref, "Which of your two accounts do you mean?")
            assert view.state == "awaiting_clarification"
        assert "two accounts" in sender.last(to=email, template="awaiting_clarification").body
        clock["now"] += timedelta(days=5)
        moved = requests.clarified(uk.ref)
        kept = requests.clarified(eu.ref)
        assert moved.state == kept.state == "awaiting_verification"
        assert moved.due_at - uk.due_at == timedelta(days=5)
        assert kept.due_at == eu.due_at
        events = [
            e.kind for e in AuditLog(engine.store, engine.policy.key).events()
            if (e.data or {}).get("ref") == uk.ref
        ]  # fmt: skip
        assert events[-2:] == ["request.awaiting_clarification", "request.awaiting_verification"]


def test_clarification_of_an_extended_request_and_what_the_person_is_told(
    engine: Engine, sender: MemorySender, shop_url: str
) -> None:
    """An extended request can still be clarified; only where the law stops the clock
    (UK) is the person told the deadline is paused."""
    requests = engine.requests
    _, email = a_customer(shop_url)
    eu = requests.submit("access", f"email:{email}", jurisdiction="eu")
    requests.extend(eu.ref, "several systems to search")
    asked = requests.ask_clarification(eu.ref, "  Which   of your two accounts?  ")
    assert asked.state == "awaiting_clarification" and not asked.paused
    body = sender.last(to=email, template="awaiting_clarification").body
    assert "Which of your two accounts?" in body and "paused" not in body
    for question in ("", "   ", "x" * 1001):
        with pytest.raises(RequestError, match="the question is told to the person"):
            requests.ask_clarification(eu.ref, question)
    back = requests.clarified(eu.ref)
    assert back.state == "awaiting_verification" and back.due_at == asked.due_at
    with pytest.raises(RequestError, match="not awaiting clarification"):
        requests.clarified(eu.ref)


def test_a_parent_asks_for_a_child(engine: Engine, sender: MemorySender, shop_url: str) -> None:
    """A request made by a parent carries who acted and what they showed (hashed, never
    the parent's raw identity), in the request and its audit event."""
    from lawful.requests.tables import requests as table
    from lawful.requests.verify import OnBehalf
    from lawful.subjects import Identity

    _, email = a_customer(shop_url)
    parent = Identity.parse("email:parent-of-child@example.org")
    proof = OnBehalf("parent", parent, "birth certificate", OnBehalf.document_hash(b"scan"))
    ref = submit_and_verify(engine.requests, sender, "access", email, on_behalf=proof)
    engine.requests.run_pending()
    assert engine.requests.show(ref).state == "completed"
    with engine.store.engine.connect() as conn:
        stored = conn.execute(sa.select(table.c.on_behalf).where(table.c.ref == ref)).scalar_one()
    assert stored["role"] == "parent" and stored["proof"] == "birth certificate"
    assert stored["actor_hash"] == engine.keyring.hash(parent)
    assert "parent-of-child" not in json.dumps(stored)
    received = next(
        e for e in AuditLog(engine.store, engine.policy.key).events()
        if e.kind == "request.received" and e.data["ref"] == ref
    )  # fmt: skip
    assert received.data["on_behalf"] == "parent"


@pytest.mark.parametrize("every", [0.0, 3600.0])
def test_a_busy_worker_sends_the_messages_in_rounds(
    engine: Engine,
    sender: MemorySender,
    shop_url: str,
    monkeypatch: pytest.MonkeyPatch,
    every: float,
) -> None:
    """run_pending sends what its jobs queued at least every DELIVER_EVERY seconds, and
    everything when it returns."""
    monkeypatch.setattr(service, "DELIVER_EVERY", every)
    emails = [row[0] for row in shop_rows(shop_url, "SELECT email FROM customers ORDER BY id")[:2]]
    refs = [submit_and_verify(engine.requests, sender, "access", e) for e in emails]
    ready_at_claim: list[int] = []
    claim = engine.requests.jobs.claim

    def counting_claim(**kw: Any) -> Any:
        ready_at_claim.append(len([m for m in sender.sent if m.template == "package_ready"]))
        return claim(**kw)

    monkeypatch.setattr(engine.requests.jobs, "claim", counting_claim)
    assert engine.requests.run_pending() == 2
    # Claims: the first job's, the second's, the one finding the queue empty.
    assert ready_at_claim == ([0, 1, 2] if every == 0.0 else [0, 0, 0])
    assert {m.request_ref for m in sender.sent if m.template == "package_ready"} == set(refs)


@pytest.mark.mysql
def test_requests_against_a_mariadb_shop(
    tmp_path: Path, mysql_url: str, sender: MemorySender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The company's database on MariaDB (lawful's store on SQLite): an access, an
    erasure and a rectification run to their receipts, checked in the shop with SQL."""
    generate(mysql_url, CUSTOMERS, seed=3)
    monkeypatch.setenv("SHOP_DATABASE_URL", mysql_url)
    with shop_engine(f"sqlite:///{tmp_path / 'lawful.db'}", sender, shop_policy_text()) as engine:
        requests = engine.requests
        rows = shop_rows(mysql_url, "SELECT id, email FROM customers ORDER BY id")
        (_, reader_email), (_, leaver_email), (fixer, fixer_email) = rows[:3]
        access = submit_and_verify(requests, sender, "access", reader_email)
        erasure = submit_and_verify(requests, sender, "erasure", leaver_email)
        fix = submit_and_verify(
            requests,
            sender,
            "rectification",
            fixer_email,
            params={"changes": {"customers.last_name": "Fixed"}},
        )
        assert requests.run_pending() == 3
        for ref in (access, erasure, fix):
            view = requests.show(ref)
            assert view.state in ("completed", "partially_completed") and view.receipt
            assert requests.check_receipt(ref)

        # The copy holds the reader's own customer row.
        token = sender.last(to=reader_email, template="package_ready").body
        token = token.split("token=")[1].split()[0]
        with zipfile.ZipFile(io.BytesIO(requests.download(token))) as zf:
            data = json.loads(zf.read("data.json"))
        customers = next(
            t for d in data["datasets"] for t in d["tables"] if t["table"] == "customers"
        )
        assert [r["data"]["email"] for r in customers["rows"]] == [reader_email]

        assert (
            shop_rows(mysql_url, "SELECT id FROM customers WHERE email = :e", e=leaver_email) == []
        )
        assert shop_rows(mysql_url, "SELECT last_name FROM customers WHERE id = :c", c=fixer) == [
            ("Fixed",)
        ]
        assert AuditLog(engine.store, engine.policy.key).verify().ok
