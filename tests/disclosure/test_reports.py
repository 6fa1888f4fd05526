"""The disclosures in the access report (GDPR Art. 15(1)(c)) and the notices owed to the
recipients that received the data when it is rectified or erased (Art. 19)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from lawful.disclosure import DisclosureError, Disclosures, NoticeConfigError
from lawful.engine import Engine
from lawful.requests.art15 import art15_information
from tests.disclosure.conftest import facade

ALICE = "email:alice@example.com"
BOB = "email:bob@example.com"


def sql(engine: Engine, text: str, **params: Any) -> list[Any]:
    with engine.store.engine.connect() as conn:
        return list(conn.execute(sa.text(text), params))


def share_alice_and_bob(disclosures: Disclosures) -> None:
    disclosures.consent.set_subject(BOB, jurisdiction="us-ca")  # adnet then needs no consent
    assert disclosures.disclose(ALICE, "carrier", ["user.name", "user.contact.address"], "orders")
    assert disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "orders")
    assert disclosures.disclose(ALICE, "carrier", ["user.name"], "orders")
    assert disclosures.disclose(BOB, "adnet", ["user.device.cookie_id"], "ad_sharing")
    assert not disclosures.disclose(ALICE, "carrier", ["user.name"], "newsletter")  # refused


def test_the_access_report_lists_the_subjects_disclosures(
    engine: Engine, disclosures: Disclosures
) -> None:
    engine.consent.set_subject(ALICE, jurisdiction="us-ca")
    share_alice_and_bob(disclosures)
    found = disclosures.disclosures_of(ALICE)
    assert [(d.recipient, d.purpose, d.categories) for d in found] == [
        ("carrier", "orders", ("user.name", "user.contact.address")),
        ("mailer", "orders", ("user.contact.email",)),
        ("carrier", "orders", ("user.name",)),
    ]
    assert [d.country for d in found] == ["DE", "US", "DE"]
    # the same refs as the log holds for her, and only hers
    subject = engine.consent.subject(ALICE)
    assert subject is not None
    refs = sql(
        engine, "SELECT ref FROM disclosures WHERE subject_id = :s ORDER BY id", s=subject.id
    )
    assert [d.ref for d in found] == [r[0] for r in refs]
    # plain values, as the Art. 15 information takes them
    info = art15_information(engine.policy, ["user.name"], disclosures=[d.to_dict() for d in found])
    assert [d["recipient"] for d in info["disclosures"]] == ["carrier", "mailer", "carrier"]
    assert json.dumps(info)  # plain JSON


def test_a_disclosure_made_before_lawful_knew_the_person_is_listed_once_it_does(
    engine: Engine, disclosures: Disclosures
) -> None:
    assert disclosures.disclose(ALICE, "carrier", ["user.name"], "orders").subject is None
    subject = engine.consent.subject("account:42", create=True)
    assert subject is not None
    engine.consent.link(subject, ALICE)
    assert [d.recipient for d in disclosures.disclosures_of("account:42")] == ["carrier"]


def test_nobody_known_has_no_disclosures(disclosures: Disclosures) -> None:
    assert disclosures.disclosures_of("email:nobody@example.com") == []
    assert disclosures.recipients_to_notify("email:nobody@example.com") == []


def test_erasure_queues_a_notice_for_exactly_the_recipients_that_received_the_data(
    engine: Engine, disclosures: Disclosures
) -> None:
    subject = engine.consent.subject(ALICE, create=True)
    assert subject is not None
    share_alice_and_bob(disclosures)
    owed = disclosures.recipients_to_notify(ALICE)
    assert [(o.recipient, o.categories, len(o.disclosure_refs)) for o in owed] == [
        ("carrier", ("user.name", "user.contact.address"), 2),
        ("mailer", ("user.contact.email",), 1),
    ]
    notices = disclosures.notify_recipients(ALICE, "erasure", "req-123")
    assert [(n.recipient, n.channel, n.state) for n in notices] == [
        ("carrier", "queue", "queued"),
        ("mailer", "queue", "queued"),
    ]
    stored = sql(
        engine,
        "SELECT recipient, change, request_ref, state, subject_id, disclosure_refs"
        " FROM recipient_notices ORDER BY recipient",
    )
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in stored] == [
        ("carrier", "erasure", "req-123", "queued", subject.id),
        ("mailer", "erasure", "req-123", "queued", subject.id),
    ]
    refs = json.loads(stored[0][5]) if isinstance(stored[0][5], str) else stored[0][5]
    assert set(refs) == {
        d.ref for d in disclosures.disclosures_of(ALICE) if d.recipient == "carrier"
    }
    # adnet received Bob's data, not Alice's: it is told nothing
    events = sql(
        engine, "SELECT subject, data FROM audit_events WHERE kind = 'recipient_notice.queued'"
    )
    assert len(events) == 2
    assert {e[0] for e in events} == {engine.keyring.subject_hash(subject.ref)}
    assert "alice" not in json.dumps([str(e[1]) for e in events])

    # asking again for the same request adds nothing
    assert disclosures.notify_recipients(ALICE, "erasure", "req-123") == []
    assert sql(engine, "SELECT count(*) FROM recipient_notices")[0][0] == 2

    # an operator sends one and marks it; the mark is audited
    pending = disclosures.pending_notices()
    assert [n.recipient for n in pending] == ["carrier", "mailer"]
    sent = disclosures.mark_notice_sent(pending[0].ref)
    assert sent.state == "sent" and sent.sent_at is not None
    assert [n.recipient for n in disclosures.pending_notices()] == ["mailer"]
    assert (
        sql(engine, "SELECT count(*) FROM audit_events WHERE kind = 'recipient_notice.sent'")[0][0]
        == 1
    )


def test_a_rectification_of_some_categories_tells_only_who_received_them(
    engine: Engine, disclosures: Disclosures
) -> None:
    share_alice_and_bob(disclosures)
    owed = disclosures.recipients_to_notify(ALICE, ["user.contact.address"])
    assert [(o.recipient, o.categories) for o in owed] == [("carrier", ("user.contact.address",))]
    notices = disclosures.notify_recipients(
        ALICE, "rectification", "req-9", categories=["user.contact"]
    )
    assert [(n.recipient, n.categories) for n in notices] == [
        ("carrier", ("user.contact.address",)),
        ("mailer", ("user.contact.email",)),
    ]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes, dict[str, str]]]] = []
    status = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.path, body, dict(self.headers)))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    _Hook.status = 204
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_recipient_with_a_webhook_is_sent_a_signed_notice(engine: Engine, webhook: str) -> None:
    disclosures = facade(engine, webhooks={"mailer": f"{webhook}/privacy/notices"})
    share_alice_and_bob(disclosures)
    notices = disclosures.notify_recipients(ALICE, "erasure", "req-7")
    assert {n.recipient: (n.channel, n.state) for n in notices} == {
        "carrier": ("queue", "queued"),
        "mailer": ("webhook", "sent"),
    }
    [(path, body, headers)] = _Hook.received
    assert path == "/privacy/notices"
    sent = json.loads(body)
    assert sent["change"] == "erasure" and sent["request"] == "req-7"
    assert sent["categories"] == ["user.contact.email"]
    assert sent["disclosures"] == [
        d.ref for d in disclosures.disclosures_of(ALICE) if d.recipient == "mailer"
    ]
    assert "alice" not in body.decode()
    key = engine.keyring.derive("recipient-webhook")
    assert (
        headers["X-Lawful-Signature"] == "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    )
    assert sql(
        engine, "SELECT state, attempts FROM recipient_notices WHERE recipient = 'mailer'"
    ) == [("sent", 1)]


def test_a_failing_webhook_leaves_the_notice_queued_for_a_retry(
    engine: Engine, webhook: str
) -> None:
    disclosures = facade(engine, webhooks={"mailer": webhook})
    assert disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "orders")
    _Hook.status = 503
    [notice] = disclosures.notify_recipients(ALICE, "erasure", "req-8")
    assert (notice.state, notice.attempts, notice.last_error) == ("queued", 1, "HTTP 503")
    assert (
        sql(engine, "SELECT count(*) FROM audit_events WHERE kind = 'recipient_notice.failed'")[0][
            0
        ]
        == 1
    )
    _Hook.status = 200
    [retried] = disclosures.send_pending()
    assert (retried.state, retried.attempts, retried.last_error) == ("sent", 2, None)
    assert disclosures.pending_notices() == []


def test_a_webhook_that_cannot_be_reached_is_kept_queued(engine: Engine) -> None:
    disclosures = facade(engine, webhooks={"mailer": "http://127.0.0.1:9/nowhere"})
    assert disclosures.disclose(ALICE, "mailer", ["user.contact.email"], "orders")
    [notice] = disclosures.notify_recipients(ALICE, "rectification", "req-1")
    assert notice.state == "queued" and notice.last_error and "not reachable" in notice.last_error


def test_bad_notice_input_is_an_error(engine: Engine, disclosures: Disclosures) -> None:
    with pytest.raises(DisclosureError, match="rectification or erasure"):
        disclosures.notify_recipients(ALICE, "deletion", "req-1")  # type: ignore[arg-type]
    with pytest.raises(NoticeConfigError, match="did you mean 'mailer'"):
        facade(engine, webhooks={"mailr": "https://example.com/hook"})
    with pytest.raises(NoticeConfigError, match="must start with https://"):
        facade(engine, webhooks={"mailer": "ftp://example.com/hook"})
    with pytest.raises(DisclosureError, match="no recipient notice"):
        disclosures.mark_notice_sent("0" * 32)
