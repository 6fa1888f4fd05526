"""Messages to people: templates, the sealed queue, delivery once, and the senders."""

from __future__ import annotations

import email
import email.policy
import socket
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from lawful.policy import load_policy
from lawful.requests.messages import (
    TEMPLATES,
    FileSender,
    Letterhead,
    MemorySender,
    Message,
    SenderConfigError,
    SendError,
    SenderUnavailable,
    SmtpSender,
    TemplateFieldsError,
    deliver_pending,
    queue_message,
    render_message,
    sender_from_env,
)
from lawful.requests.tables import request_messages
from lawful.store.store import Store, open_store
from lawful.subjects import Keyring
from tests.requests.request_rows import CONTROLLER, new_request, request_ref
from tests.requests.smtp_sink import SmtpSink

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"
SHOP = Letterhead(name="Shop", contact="privacy@shop.example")
ADA = "ada@example.com"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def controller_id(store: Store) -> int:
    return store.ensure_controller(CONTROLLER, "Shop")


def queue(
    store: Store,
    keyring: Keyring,
    controller_id: int,
    *,
    request_id: int | None = None,
    to: str = ADA,
    template: str = "completed",
    channel: str = "email",
    subject: str = "Your request is complete",
    body: str = "We have completed your request.\n",
    now: datetime = T0,
) -> int:
    return store.write(
        lambda conn: queue_message(
            conn,
            keyring,
            controller_id=controller_id,
            request_id=request_id,
            template=template,
            channel=channel,
            to=to,
            subject=subject,
            body=body,
            now=now,
        )
    )


def sent_at(store: Store) -> dict[int, datetime | None]:
    c = request_messages.c
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(c.id, c.sent_at).order_by(c.id)).all())


# --- templates --------------------------------------------------------------------------

FIELDS = {
    "code": {"ref": "r1", "kind": "access", "code": "042917", "minutes": 30},
    "acknowledged": {"ref": "r1", "kind": "erasure", "due": date(2026, 4, 2)},
    "extended": {
        "ref": "r1",
        "kind": "access",
        "reason": "Your request covers ten years of orders.",
        "due": datetime(2026, 6, 2, 23, 0, tzinfo=UTC),
    },
    "awaiting_clarification": {
        "ref": "r1",
        "kind": "rectification",
        "question": "Which address should we correct?",
        "paused": True,
    },
    "fee": {
        "ref": "r1",
        "kind": "access",
        "reason": "Your request is excessive; we can answer it for a fee: EUR 25.",
    },
    "completed": {"ref": "r1", "kind": "erasure"},
    "partially_completed": {
        "ref": "r1",
        "kind": "erasure",
        "kept": ["Invoices, kept 7 years for tax law (legal_obligation)."],
    },
    "denied": {
        "ref": "r1",
        "kind": "access",
        "rule": "excessive",
        "rule_text": "You made the same request three times this year.",
    },
    "package_ready": {
        "ref": "r1",
        "kind": "portability",
        "link": "https://shop.example/privacy/download/abc",
        "expires": datetime(2026, 3, 9, 9, 30, tzinfo=UTC),
    },
}


def test_every_template_renders_with_the_controller_and_its_fields() -> None:
    assert set(FIELDS) == set(TEMPLATES)
    for template, fields in FIELDS.items():
        subject, body = render_message(template, SHOP, **fields)
        assert subject and "\n" not in subject
        assert body.endswith("\n") and "{{" not in body and "{%" not in body
        assert "Shop" in body and "privacy@shop.example" in body, template
        assert "Your request's reference: r1" in body, template
        for key, value in fields.items():
            if isinstance(value, str) and key != "kind":
                assert value in body, (template, value)


def test_templates_say_things_in_plain_words() -> None:
    subject, body = render_message("code", SHOP, **FIELDS["code"])
    assert subject == "Your verification code for Shop"
    assert "    042917\n" in body and "expires in 30 minutes" in body
    assert "a copy of your data" in body
    _, body = render_message("acknowledged", SHOP, **FIELDS["acknowledged"])
    assert "by 2 April 2026 at the latest" in body
    _, body = render_message("extended", SHOP, **FIELDS["extended"])
    assert "by 2 June 2026" in body and "ten years of orders" in body
    _, body = render_message("denied", SHOP, **FIELDS["denied"])
    assert "The reason (excessive):\nYou made the same request three times" in body
    _, body = render_message("partially_completed", SHOP, **FIELDS["partially_completed"])
    assert "  - Invoices, kept 7 years" in body
    _, body = render_message("package_ready", SHOP, **FIELDS["package_ready"])
    assert "until 9 March 2026, 09:30 UTC" in body


def test_letterhead_comes_from_the_policy() -> None:
    selro = load_policy(EXAMPLES / "selro.yaml").policy
    assert Letterhead.from_policy(selro) == Letterhead("Selro", "compliance@selro.com")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        letterhead = Letterhead.from_policy(load_policy(path).policy)
        assert letterhead.name and letterhead.contact, path.name


def test_wrong_template_fields_are_named() -> None:
    with pytest.raises(TemplateFieldsError, match=r"it needs due \(its fields: ref, kind, due\)"):
        render_message("acknowledged", SHOP, ref="r1", kind="access")
    with pytest.raises(TemplateFieldsError, match="it takes no colour"):
        render_message("completed", SHOP, ref="r1", kind="access", colour="red")
    with pytest.raises(TemplateFieldsError, match="no message template 'welcome'"):
        render_message("welcome", SHOP, ref="r1")


# --- the queue --------------------------------------------------------------------------


def test_a_queued_message_is_sealed(store: Store, keyring: Keyring, controller_id: int) -> None:
    request_id = new_request(store, keyring, now=T0)
    subject, body = render_message("code", SHOP, **FIELDS["code"])
    queue(
        store,
        keyring,
        controller_id,
        request_id=request_id,
        template="code",
        subject=subject,
        body=body,
    )
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(request_messages)).one()
    raw = b"".join(
        bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        for value in row
    )
    for secret in (ADA, "042917", "verification code", "Shop"):
        assert secret.encode() not in raw
    assert row.template == "code" and row.channel == "email" and row.sent_at is None
    assert row.key_id == keyring.current_key_id


def test_queue_message_refuses_what_would_break_a_message(
    store: Store, keyring: Keyring, controller_id: int
) -> None:
    with pytest.raises(ValueError, match="line break") as caught:
        queue(store, keyring, controller_id, subject="Hi\r\nBcc: eve@evil.example")
    assert "eve" not in str(caught.value)
    with pytest.raises(ValueError, match="line break"):
        queue(store, keyring, controller_id, to=f"{ADA}\nBcc: eve@evil.example")
    with pytest.raises(ValueError, match="use one of email, sms, webhook"):
        queue(store, keyring, controller_id, channel="pigeon")
    with pytest.raises(ValueError, match="no '@'") as caught:
        queue(store, keyring, controller_id, to="ada.example.com")
    assert "ada" not in str(caught.value)
    with pytest.raises(ValueError, match="body must be non-empty"):
        queue(store, keyring, controller_id, body="  ")
    assert sent_at(store) == {}


def test_messages_are_delivered_oldest_first_and_once(
    store: Store, keyring: Keyring, controller_id: int
) -> None:
    request_id = new_request(store, keyring, now=T0)
    ref = request_ref(store, request_id)
    later = queue(
        store,
        keyring,
        controller_id,
        request_id=request_id,
        to="b@example.com",
        now=T0 + timedelta(minutes=1),
    )
    first = queue(
        store,
        keyring,
        controller_id,
        request_id=request_id,
        to=ADA,
        subject="Ünïcode ✓",
        body="Grüße\n",
    )
    loose = queue(store, keyring, controller_id, to="c@example.com", now=T0 + timedelta(minutes=2))
    sender = MemorySender()
    assert deliver_pending(store, keyring, sender, now=T0 + timedelta(minutes=5)) == 3
    assert [m.to for m in sender.sent] == [ADA, "b@example.com", "c@example.com"]
    assert sender.sent[0] == Message(ref, "completed", "email", ADA, "Ünïcode ✓", "Grüße\n")
    assert sender.sent[2].request_ref is None
    marked = T0 + timedelta(minutes=5)
    assert sent_at(store) == {later: marked, first: marked, loose: marked}
    assert deliver_pending(store, keyring, sender) == 0
    assert len(sender.sent) == 3
    # The repr of a message, in a log or a traceback, holds no address or body.
    assert ADA not in repr(sender.sent[0]) and "Grüße" not in repr(sender)


def test_deliver_pending_sends_at_most_limit(
    store: Store, keyring: Keyring, controller_id: int
) -> None:
    for n in range(5):
        queue(store, keyring, controller_id, to=f"p{n}@example.com", now=T0 + timedelta(seconds=n))
    sender = MemorySender()
    assert deliver_pending(store, keyring, sender, limit=2) == 2
    assert [m.to for m in sender.sent] == ["p0@example.com", "p1@example.com"]
    assert deliver_pending(store, keyring, sender) == 3
    with pytest.raises(ValueError, match="limit must be a positive"):
        deliver_pending(store, keyring, sender, limit=0)


class Flaky:
    """Fails for chosen addresses; `down` makes it fail for all as unavailable."""

    def __init__(self, fail_for: set[str], down: bool = False) -> None:
        self.fail_for = fail_for
        self.down = down
        self.sent: list[Message] = []
        self.tries = 0

    def send(self, message: Message) -> None:
        self.tries += 1
        if self.down:
            raise SenderUnavailable("the test server is down")
        if message.to in self.fail_for:
            raise SendError("refused")
        self.sent.append(message)


def test_a_failed_send_stays_queued(
    store: Store, keyring: Keyring, controller_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [
        queue(store, keyring, controller_id, to=to, now=T0 + timedelta(seconds=n))
        for n, to in enumerate(["a@example.com", "bad@example.com", "c@example.com"])
    ]
    flaky = Flaky({"bad@example.com"})
    assert deliver_pending(store, keyring, flaky) == 2
    assert [m.to for m in flaky.sent] == ["a@example.com", "c@example.com"]
    marks = sent_at(store)
    assert marks[ids[1]] is None and marks[ids[0]] and marks[ids[2]]
    assert f"message {ids[1]} not sent (SendError)" in caplog.text
    assert "bad@example.com" not in caplog.text
    # Next round: only the one left is sent.
    sender = MemorySender()
    assert deliver_pending(store, keyring, sender) == 1
    assert [m.to for m in sender.sent] == ["bad@example.com"]


def test_an_unavailable_sender_ends_the_round(
    store: Store, keyring: Keyring, controller_id: int
) -> None:
    for n in range(3):
        queue(store, keyring, controller_id, to=f"p{n}@example.com", now=T0 + timedelta(seconds=n))
    down = Flaky(set(), down=True)
    assert deliver_pending(store, keyring, down) == 0
    assert down.tries == 1
    assert set(sent_at(store).values()) == {None}


def test_a_sealed_message_moved_to_another_row_kind_is_not_sent(
    store: Store, keyring: Keyring, controller_id: int
) -> None:
    message_id = queue(store, keyring, controller_id, template="completed")
    with store.engine.begin() as conn:  # someone edits the row: the seal no longer fits
        conn.execute(
            sa.update(request_messages)
            .where(request_messages.c.id == message_id)
            .values(template="package_ready")
        )
    sender = MemorySender()
    assert deliver_pending(store, keyring, sender) == 0
    assert sender.sent == [] and sent_at(store) == {message_id: None}


def test_two_workers_send_each_message_once(
    store: Store, keyring: Keyring, controller_id: int
) -> None:
    count = 12
    for n in range(count):
        queue(store, keyring, controller_id, to=f"p{n}@example.com", now=T0 + timedelta(seconds=n))

    class Slow(MemorySender):
        def send(self, message: Message) -> None:
            time.sleep(0.01)  # hold the claim while the other worker tries the same row
            super().send(message)

    senders = [Slow(), Slow()]
    totals: list[int] = []
    threads = [
        threading.Thread(target=lambda s=s: totals.append(deliver_pending(store, keyring, s)))
        for s in senders
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    delivered = [m.to for s in senders for m in s.sent]
    assert sorted(delivered) == sorted(f"p{n}@example.com" for n in range(count))
    assert sum(totals) == count


# --- senders ----------------------------------------------------------------------------

MESSAGE = Message("0" * 32, "code", "email", ADA, "Your code", "Your code is 042917.\n")


def test_file_sender_writes_readable_private_files(tmp_path: Path) -> None:
    sink = FileSender(tmp_path / "mail", from_addr="privacy@shop.example")
    sink.send(MESSAGE)
    sink.send(Message(None, "completed", "sms", "+37251234567", "Done", "Päev läbi.\n"))
    files = sorted((tmp_path / "mail").iterdir(), key=lambda f: "-code-" not in f.name)
    assert len(files) == 2
    assert all("ada" not in f.name and f.suffix == ".eml" for f in files)
    assert files[0].name.endswith(".eml") and "-code-" in files[0].name
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["To"] == ADA and parsed["From"] == "privacy@shop.example"
    assert parsed["Subject"] == "Your code" and parsed["X-Lawful-Request"] == "0" * 32
    assert parsed.get_content() == "Your code is 042917.\n"
    second = email.message_from_bytes(files[1].read_bytes(), policy=email.policy.default)
    assert second.get_content() == "Päev läbi.\n" and second["X-Lawful-Request"] is None


def test_file_sender_needs_a_usable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SenderConfigError, match=r"cannot use .* as the mail folder"):
        FileSender(blocker / "mail")


def test_smtp_sender_delivers_to_a_server(
    store: Store, keyring: Keyring, controller_id: int
) -> None:
    with SmtpSink(refuse={"nobody@example.com"}) as sink:
        sender = SmtpSender("127.0.0.1", sink.port, "privacy@shop.example")
        queue(store, keyring, controller_id, to=ADA, subject="Grüße", body="Ünïcode body ✓\n")
        refused = queue(
            store, keyring, controller_id, to="nobody@example.com", now=T0 + timedelta(seconds=1)
        )
        assert deliver_pending(store, keyring, sender) == 1
    assert len(sink.received) == 1
    got = sink.received[0]
    assert got.mail_from == "privacy@shop.example" and got.rcpt_to == [ADA]
    parsed = email.message_from_bytes(got.data, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße" and parsed.get_content() == "Ünïcode body ✓\n"
    assert sent_at(store)[refused] is None


def test_smtp_sender_errors_name_no_address() -> None:
    with SmtpSink(refuse={ADA}) as sink:
        with pytest.raises(SendError, match="refused the message") as caught:
            SmtpSender("127.0.0.1", sink.port, "privacy@shop.example").send(MESSAGE)
        assert not isinstance(caught.value, SenderUnavailable)
        assert "ada" not in str(caught.value)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(SenderUnavailable, match="cannot connect"):
        SmtpSender("127.0.0.1", closed, "privacy@shop.example", timeout=2).send(MESSAGE)
    with pytest.raises(SendError, match="email only"):
        SmtpSender("127.0.0.1", 25, "privacy@shop.example").send(
            Message(None, "code", "sms", "+37251234567", "Code", "042917\n")
        )


def test_sender_from_env(tmp_path: Path) -> None:
    smtp = sender_from_env(
        environ={"LAWFUL_SMTP_URL": "smtp://mail.example:2525?starttls=true&from=p@shop.example"}
    )
    assert isinstance(smtp, SmtpSender)
    assert (smtp.host, smtp.port, smtp.starttls, smtp.from_addr) == (
        "mail.example",
        2525,
        True,
        "p@shop.example",
    )
    tls = sender_from_env(
        environ={
            "LAWFUL_SMTP_URL": "smtps://me:s%40cret@mail.example",
            "LAWFUL_MAIL_FROM": "p@s.example",
        }
    )
    assert isinstance(tls, SmtpSender)
    assert (tls.port, tls.use_ssl, tls.username) == (465, True, "me")
    assert "cret" not in repr(tls)
    files = sender_from_env(environ={"LAWFUL_MAIL_DIR": str(tmp_path / "sink")})
    assert isinstance(files, FileSender) and files.folder == tmp_path / "sink"
    assert isinstance(sender_from_env(environ={}), MemorySender)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://mail.example", "must start with smtp:// or smtps://"),
        ("smtp://", "names no host"),
        ("smtp://mail.example:99999", "invalid port"),
        ("smtp://mail.example:port", "invalid port"),
        ("smtp://mail.example?tls=1&from=p@s.example", "unknown options tls"),
        ("smtp://mail.example?starttls=maybe&from=p@s.example", "neither true nor false"),
        ("smtps://mail.example?starttls=true&from=p@s.example", "with starttls"),
        ("smtp://mail.example/inbox?from=p@s.example", "path or fragment"),
        ("smtp://mail.example", "sent from is not set"),
        ("smtp://me:hunter2@mail.example?from=p@s.example", "without TLS"),
    ],
)
def test_a_malformed_smtp_url_is_explained(url: str, why: str) -> None:
    with pytest.raises(SenderConfigError, match=why) as caught:
        sender_from_env(environ={"LAWFUL_SMTP_URL": url})
    assert "hunter2" not in str(caught.value)
