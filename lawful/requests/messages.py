"""Messages to people about their requests: written from templates, queued sealed, sent.

A message (a code, an acknowledgement, an extension, an outcome, a download link) is
rendered from a plain-text Jinja2 template in `templates/messages/` (`render_message`),
queued in `request_messages` with its address, subject and body sealed together by
AES-GCM (`queue_message`), and sent later by `deliver_pending` through a `Sender`:
`MemorySender` (tests, the demo), `FileSender` (a folder of .eml files: the test mail
sink) or `SmtpSender`; `sender_from_env` picks one from the environment.

Queueing in the request's own transaction means a message exists exactly when the
change it reports was committed. Delivery marks a message sent in the transaction that
sent it: a failed send rolls back and the message stays queued; a message marked sent
is never sent again. A crash between the send and the commit sends it once more (at
least once: mail has no two-phase commit).

No address, subject, body or code is ever logged: failures are logged by message id and
the type of error only (an SMTP error can quote the address).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import secrets
import smtplib
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.policy.model import Policy
from lawful.requests.tables import request_messages, requests
from lawful.store.store import Store
from lawful.subjects.keyring import Keyring

__all__ = [
    "KIND_WORDS",
    "MAIL_DIR_ENV",
    "MAIL_FROM_ENV",
    "MESSAGE_CHANNELS",
    "SMTP_URL_ENV",
    "TEMPLATES",
    "FileSender",
    "Letterhead",
    "MemorySender",
    "Message",
    "SendError",
    "Sender",
    "SenderConfigError",
    "SenderUnavailable",
    "SmtpSender",
    "TemplateFieldsError",
    "deliver_pending",
    "queue_message",
    "render_message",
    "sender_from_env",
]

logger = logging.getLogger(__name__)

MESSAGE_CHANNELS = ("email", "sms", "webhook")
SMTP_URL_ENV = "LAWFUL_SMTP_URL"
MAIL_DIR_ENV = "LAWFUL_MAIL_DIR"
MAIL_FROM_ENV = "LAWFUL_MAIL_FROM"
DEFAULT_FROM = "lawful@localhost"
MAX_SUBJECT_CHARS = 200
MAX_ADDRESS_CHARS = 320
TEMPLATE_DIR = Path(__file__).with_name("templates") / "messages"
_TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]{0,49}")

# The fields each template needs, all of them required: `ref` is the request's public
# ref, `kind` its RequestKind, dates are dates or aware datetimes.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "code": ("ref", "kind", "code", "minutes"),
    "acknowledged": ("ref", "kind", "due"),
    "extended": ("ref", "kind", "reason", "due"),
    "awaiting_clarification": ("ref", "kind", "question", "paused"),  # paused: clock stops
    "fee": ("ref", "kind", "reason"),  # reason: refusals.fee_text, the fee and its ground
    "completed": ("ref", "kind"),
    "partially_completed": ("ref", "kind", "kept"),  # kept: reasons, each naming its rule
    "denied": ("ref", "kind", "rule", "rule_text"),
    "package_ready": ("ref", "kind", "link", "expires"),
}

# A request's kind as the person reads it: "your request for ...".
KIND_WORDS: dict[str, str] = {
    "confirm": "confirmation of whether we hold data about you",
    "access": "a copy of your data",
    "portability": "your data in a portable format",
    "rectification": "the correction of your data",
    "erasure": "the erasure of your data",
    "account_closure": "the closure of your account",
    "restriction": "the restriction of how we use your data",
    "objection": "us to stop using your data (objection)",
    "withdraw_consent": "the withdrawal of your consent",
    "opt_out_sale": "us not to sell or share your data",
    "restrict_recipients": "us not to pass your data to the third parties you named",
    "explain_decision": "an explanation of an automated decision about you",
    "information": "information about how we use your data",
}


# --- messages and templates -------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message as a sender gets it: decrypted, addressed, ready to go."""

    request_ref: str | None
    template: str
    channel: str
    to: str
    subject: str
    body: str

    def __repr__(self) -> str:
        # Keeps addresses, codes and bodies out of logs and tracebacks.
        return f"Message(template={self.template!r}, channel={self.channel!r}, request_ref={self.request_ref!r})"


@dataclass(frozen=True)
class Letterhead:
    """Who a message is from: the controller's name and where to write back."""

    name: str
    contact: str

    @classmethod
    def from_policy(cls, policy: Policy) -> Letterhead:
        """The name people know (trade name, else legal name) and the request contact."""
        controller = policy.controller
        contacts = controller.contacts
        contact = (
            policy.requests.contact
            or contacts.privacy_email
            or contacts.email
            or contacts.request_form
            or contacts.address
        )
        if not contact:  # the policy's validation requires one; guard all the same
            raise ValueError(
                "the policy gives no contact for requests: set requests.contact or "
                "controller.contacts.privacy_email"
            )
        return cls(name=controller.trade_name or controller.name, contact=str(contact))


class TemplateFieldsError(ValueError):
    """A message template was given the wrong fields; the message names them."""


def render_message(template: str, letterhead: Letterhead, **fields: Any) -> tuple[str, str]:
    """The (subject, body) of message `template`, filled with `fields`.

    Each template's fields are listed in `TEMPLATES`; missing or unknown ones raise
    TemplateFieldsError naming them (never their values).
    """
    if template not in TEMPLATES:
        raise TemplateFieldsError(
            f"no message template {template!r}; the templates are {', '.join(TEMPLATES)}"
        )
    wanted = TEMPLATES[template]
    missing = [name for name in wanted if fields.get(name) in (None, "", [], ())]
    unknown = sorted(set(fields) - set(wanted))
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"it needs {', '.join(missing)}")
        if unknown:
            problems.append(f"it takes no {', '.join(unknown)}")
        raise TemplateFieldsError(
            f"message template {template!r}: {'; '.join(problems)} "
            f"(its fields: {', '.join(wanted)})"
        )
    text = _templates().get_template(f"{template}.txt").render(controller=letterhead, **fields)
    head, _, body = text.partition("\n")
    if not head.startswith("Subject: "):
        raise TemplateFieldsError(
            f"message template {template}.txt must start with a 'Subject: ' line"
        )
    subject = " ".join(head.removeprefix("Subject: ").split())
    return subject, body.strip("\n") + "\n"


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,  # a field a template names but was not given
        autoescape=False,  # plain text: nothing here is HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["kind_words"] = lambda kind: KIND_WORDS.get(str(kind), str(kind))
    env.filters["day"] = _day
    env.filters["moment"] = _moment
    return env


def _day(value: date) -> str:
    """`2 March 2026`: a deadline as people write it."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return f"{value.day} {value:%B %Y}"


def _moment(value: datetime) -> str:
    """`2 March 2026, 09:30 UTC`."""
    if not isinstance(value, datetime):
        return _day(value)
    value = value.astimezone(UTC)
    return f"{_day(value)}, {value:%H:%M} UTC"


# --- the queue --------------------------------------------------------------------------


def queue_message(
    conn: Connection,
    keyring: Keyring,
    *,
    controller_id: int,
    request_id: int | None,
    template: str,
    channel: str,
    to: str,
    subject: str,
    body: str,
    now: datetime,
) -> int:
    """Queue a message in the caller's transaction; returns its id.

    The address, subject and body are sealed together, bound to the message's
    controller, template and channel: no column holds them in clear.
    """
    if not isinstance(template, str) or not _TEMPLATE_NAME.fullmatch(template):
        raise ValueError(
            "a message's template must be a name of lowercase letters, digits and '_' "
            "(at most 50), e.g. 'code' or 'completed'"
        )
    if channel not in MESSAGE_CHANNELS:
        raise ValueError(
            f"unknown message channel {channel!r}: use one of {', '.join(MESSAGE_CHANNELS)}"
        )
    _check_header("address", to, MAX_ADDRESS_CHARS)
    if channel == "email" and ("@" not in to or any(ch.isspace() for ch in to)):
        raise ValueError("the email address to send to has no '@' or contains whitespace")
    _check_header("subject", subject, MAX_SUBJECT_CHARS)
    if not isinstance(body, str) or not body.strip():
        raise ValueError("a message's body must be non-empty text")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    sealed = json.dumps({"to": to, "subject": subject, "body": body}, ensure_ascii=False)
    key_id, ciphertext = keyring.encrypt(sealed, context=_context(controller_id, template, channel))
    inserted = conn.execute(
        sa.insert(request_messages),
        {
            "controller_id": controller_id,
            "request_id": request_id,
            "template": template,
            "channel": channel,
            "ciphertext": ciphertext,
            "key_id": key_id,
            "created_at": now,
        },
    )
    return int(inserted.inserted_primary_key[0])


def deliver_pending(
    store: Store,
    keyring: Keyring,
    sender: Sender,
    *,
    limit: int = 100,
    now: datetime | None = None,
) -> int:
    """Send up to `limit` queued messages, oldest first; returns how many were sent.

    One transaction per round: the queued messages are claimed and marked sent in one
    statement (locked: `FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock taken first
    on SQLite, so another worker skips or waits for them), then sent one by one; those
    not sent are unmarked before the commit. A message whose send fails stays queued for the next round; a sender raising
    SenderUnavailable (server down) ends the round. A crash after a send and before the
    commit sends that message again next round: delivery is at least once.
    """
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive whole number, got {limit!r}")
    c = request_messages.c
    sqlite = store.engine.dialect.name == "sqlite"

    def round_(conn: Connection) -> int:
        if sqlite:
            # pysqlite begins lazily: take the write lock before reading what to claim.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        # Claimed and marked sent in one statement; those whose send fails are put back
        # before the commit, and a crash before it puts them all back.
        claimed = conn.execute(
            _claim_messages(locking=not sqlite),
            {"p_limit": limit, "p_now": now or datetime.now(UTC)},
        ).all()
        claimed.sort(key=lambda row: (row.created_at, row.id))
        unsent: list[int] = []
        for n, row in enumerate(claimed):
            try:
                sender.send(_message(keyring, row))
            except SenderUnavailable as exc:
                logger.warning(
                    "message %s not sent, the sender is unavailable (%s); it and the rest "
                    "stay queued for the next round",
                    row.id,
                    exc,
                )
                unsent += [r.id for r in claimed[n:]]
                break
            except Exception as exc:  # any sender's failure: this message stays queued
                logger.warning(
                    "message %s not sent (%s); it stays queued", row.id, type(exc).__name__
                )
                unsent.append(row.id)
        if unsent:
            conn.execute(sa.update(request_messages).where(c.id.in_(unsent)).values(sent_at=None))
        return len(claimed) - len(unsent)

    return store.write(round_)


@functools.cache
def _claim_messages(*, locking: bool) -> Any:
    """The UPDATE claiming a round of queued messages, built once: params p_limit, p_now.
    With `locking` (PostgreSQL), rows another worker holds are skipped."""
    c = request_messages.c
    pick = (
        sa.select(c.id)
        .where(c.sent_at.is_(None))
        .order_by(c.created_at, c.id)
        .limit(sa.bindparam("p_limit", type_=sa.Integer))
    )
    if locking:
        pick = pick.with_for_update(skip_locked=True)
    ref = sa.select(requests.c.ref).where(requests.c.id == c.request_id).scalar_subquery()
    return (
        sa.update(request_messages)
        .where(c.id.in_(pick))
        .values(sent_at=sa.bindparam("p_now", type_=c.sent_at.type))
        .returning(
            c.id, c.controller_id, c.template, c.channel, c.ciphertext, c.key_id,
            c.created_at, ref.label("ref"),
        )
    )  # fmt: skip


def _message(keyring: Keyring, row: Any) -> Message:
    sealed = json.loads(
        keyring.decrypt(
            row.key_id,
            row.ciphertext,
            context=_context(row.controller_id, row.template, row.channel),
        )
    )
    return Message(
        request_ref=row.ref,
        template=row.template,
        channel=row.channel,
        to=sealed["to"],
        subject=sealed["subject"],
        body=sealed["body"],
    )


def _context(controller_id: int, template: str, channel: str) -> bytes:
    return f"request_messages:{controller_id}:{template}:{channel}".encode()


def _check_header(what: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a message's {what} must be non-empty text")
    if len(value) > limit:
        raise ValueError(f"a message's {what} is longer than {limit} characters")
    if any(ch in "\r\n" or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        # A line break in a header would let the text add headers (header injection).
        raise ValueError(f"a message's {what} contains a line break or control character")


# --- senders ----------------------------------------------------------------------------


class SendError(Exception):
    """A message could not be sent; it stays queued. The text never holds the address."""


class SenderUnavailable(SendError):
    """The sender cannot send anything now (server down, folder gone)."""


class SenderConfigError(ValueError):
    """The sender's configuration (URL, folder, address) is wrong; the message says how."""


class Sender(Protocol):
    def send(self, message: Message) -> None:
        """Send `message` or raise; returning means it was handed over."""
        ...


@dataclass
class MemorySender:
    """Keeps what it sends, for tests and the demo (which read the codes from it)."""

    sent: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> None:
        self.sent.append(message)

    def last(self, *, to: str | None = None, template: str | None = None) -> Message:
        """The last message sent (to `to`, of `template`); LookupError if none."""
        for message in reversed(self.sent):
            if (to is None or message.to == to) and (
                template is None or message.template == template
            ):
                return message
        raise LookupError("no message sent matches")


class FileSender:
    """Writes each message as an .eml file in `folder`: the test mail sink.

    The files hold addresses and bodies, so they are readable by their owner only.
    """

    def __init__(self, folder: str | Path, from_addr: str = DEFAULT_FROM) -> None:
        self.folder = Path(folder)
        self.from_addr = from_addr
        _check_header("sender address", from_addr, MAX_ADDRESS_CHARS)
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SenderConfigError(
                f"cannot use {self.folder} as the mail folder: {exc.strerror or exc}; "
                "create it or choose another"
            ) from None
        if not self.folder.is_dir():
            raise SenderConfigError(f"the mail folder {self.folder} is not a directory")
        self._lock = threading.Lock()
        self._count = 0

    def send(self, message: Message) -> None:
        email = _email(message, self.from_addr)
        with self._lock:
            self._count += 1
            count = self._count
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        # The name tells order and kind, never who it is for.
        name = f"{stamp}-{count:06d}-{message.template}-{secrets.token_hex(3)}.eml"
        path = self.folder / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(email.as_bytes())
        except OSError as exc:
            raise SenderUnavailable(
                f"cannot write to the mail folder {self.folder}: {exc.strerror or type(exc).__name__}"
            ) from None

    def __repr__(self) -> str:
        return f"FileSender({str(self.folder)!r})"


class SmtpSender:
    """Sends email through an SMTP server, one connection per message.

    `starttls` upgrades a plain connection (port 587); `use_ssl` connects with TLS
    from the start (port 465). Credentials are used only with TLS of either kind.
    """

    def __init__(
        self,
        host: str,
        port: int,
        from_addr: str,
        *,
        starttls: bool = False,
        use_ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not host:
            raise SenderConfigError("the SMTP host is empty")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise SenderConfigError(f"the SMTP port must be 1 to 65535, got {port!r}")
        if starttls and use_ssl:
            raise SenderConfigError("choose starttls (port 587) or use_ssl (port 465), not both")
        if username is not None and not (starttls or use_ssl):
            raise SenderConfigError(
                "refusing to send SMTP credentials without TLS: use starttls or use_ssl"
            )
        _check_header("sender address", from_addr, MAX_ADDRESS_CHARS)
        self.host = host
        self.port = port
        self.from_addr = from_addr
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.username = username
        self._password = password
        self.timeout = timeout

    def send(self, message: Message) -> None:
        if message.channel != "email":
            raise SendError(
                f"SmtpSender sends email only; a {message.channel} message needs another sender"
            )
        email = _email(message, self.from_addr)
        where = f"the SMTP server {self.host}:{self.port}"
        try:
            client = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise SenderUnavailable(f"cannot connect to {where} ({type(exc).__name__})") from None
        try:
            with client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username is not None:
                    client.login(self.username, self._password or "")
                client.send_message(email)
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPSenderRefused,
            smtplib.SMTPDataError,
        ) as exc:
            code = getattr(exc, "smtp_code", None)
            # The exception's text quotes the address: only its type and code go out.
            raise SendError(
                f"{where} refused the message ({type(exc).__name__}"
                f"{f', code {code}' if code else ''})"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SenderUnavailable(f"{where} failed ({type(exc).__name__})") from None

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"SmtpSender({self.host!r}, {self.port})"


def sender_from_env(
    *, from_addr: str | None = None, environ: Mapping[str, str] | None = None
) -> Sender:
    """The sender the environment names.

    `$LAWFUL_SMTP_URL` (``smtp://[user:password@]host[:port][?starttls=true]`` or
    ``smtps://...``) sends by SMTP; else `$LAWFUL_MAIL_DIR` writes .eml files there;
    else messages are kept in memory (nothing leaves the process). The sender address
    is `from_addr`, else `?from=` in the URL, else `$LAWFUL_MAIL_FROM`.
    """
    env = os.environ if environ is None else environ
    sender_address = from_addr or env.get(MAIL_FROM_ENV) or None
    url = env.get(SMTP_URL_ENV)
    if url:
        return _smtp_from_url(url, sender_address)
    folder = env.get(MAIL_DIR_ENV)
    if folder:
        return FileSender(folder, sender_address or DEFAULT_FROM)
    return MemorySender()


def _smtp_from_url(url: str, from_addr: str | None) -> SmtpSender:
    example = "smtp://host:587?starttls=true or smtps://user:password@host:465"

    def bad(why: str) -> SenderConfigError:
        return SenderConfigError(f"${SMTP_URL_ENV} {why}: write it as {example}")

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise bad("has an invalid port (a number from 1 to 65535)") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise bad(f"must start with smtp:// or smtps://, not {parts.scheme or 'nothing'}")
    if not parts.hostname:
        raise bad("names no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise bad("has a path or fragment, which SMTP has no use for")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - {"starttls", "from", "timeout"})
    if unknown:
        raise bad(f"has unknown options {', '.join(unknown)} (known: starttls, from, timeout)")
    starttls = False
    if "starttls" in options:
        value = options["starttls"][-1].lower()
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise bad("has starttls set to neither true nor false")
        starttls = value in ("true", "1", "yes")
    if starttls and parts.scheme == "smtps":
        raise bad("uses smtps:// (TLS already) with starttls")
    timeout = 10.0
    if "timeout" in options:
        try:
            timeout = float(options["timeout"][-1])
        except ValueError:
            raise bad("has a timeout that is not a number of seconds") from None
        if timeout <= 0:
            raise bad("has a timeout that is not positive")
    sender = from_addr or (options["from"][-1] if "from" in options else None)
    if not sender:
        raise SenderConfigError(
            f"the address messages are sent from is not set: add ?from=privacy@yourdomain to "
            f"${SMTP_URL_ENV} or set ${MAIL_FROM_ENV}"
        )
    use_ssl = parts.scheme == "smtps"
    default_port = 465 if use_ssl else 587 if starttls else 25
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    try:
        return SmtpSender(
            parts.hostname,
            port or default_port,
            sender,
            starttls=starttls,
            use_ssl=use_ssl,
            username=username,
            password=password,
            timeout=timeout,
        )
    except (SenderConfigError, ValueError) as exc:
        raise SenderConfigError(f"${SMTP_URL_ENV}: {exc}") from None


def _email(message: Message, from_addr: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = from_addr
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain=from_addr.rpartition("@")[2] or None)
    email["X-Lawful-Template"] = message.template
    if message.request_ref:
        email["X-Lawful-Request"] = message.request_ref
    email.set_content(message.body)
    return email
