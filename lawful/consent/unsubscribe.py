"""Signed unsubscribe links for marketing messages, and RFC 8058 one-click header values.

Every marketing message carries a link (and, for email, two headers) that lets its
recipient leave a list, a channel or all marketing without logging in. The link holds a
token minted by `make_token` and checked by `read_token`: a compact JSON payload, signed
with HMAC-SHA256 under a 32-byte key derived elsewhere, all base64url so it fits in a URL
path. Everything here is a pure function: no database, no clock unless none is given.

Why an opaque subject ref, not an address
    The token travels in clear: in the message body, in the ``List-Unsubscribe`` header,
    in web server logs, proxies, link scanners and the mailbox provider's systems, and it
    is forwarded along with the message. Its payload is only base64, not encrypted, so
    anything in it is readable by all of them. It therefore names the person by their
    subject ref (the uuid4 hex public id of `lawful.subjects`), which means nothing
    outside this controller's store, never by an email address or phone number. The
    signature, not secrecy, is what stops someone from unsubscribing other people by
    editing the link: a changed character, or a token signed with another key, is
    refused ("was altered or signed with another key").

One click means no login (RFC 8058 §3.2)
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` tells the mailbox provider
    that it may unsubscribe the recipient with a single HTTPS POST to the URI, whose body
    is ``List-Unsubscribe=One-Click``. That POST carries no cookies, no HTTP
    authorization and no other context, so the endpoint must act on the token alone:
    it must not require a session, a login, a confirmation page, a CAPTCHA or a
    redirect. A plain GET of the same URL (which link scanners and previews fetch on
    their own) should show a confirmation page and change nothing. Expiring links with
    ``max_age`` is allowed, but CAN-SPAM (15 U.S.C. 7704(a)(3)) requires the mechanism to
    keep working for at least 30 days after sending, and an expired unsubscribe link is a
    poor answer to someone exercising a right (GDPR Art. 21(3)): keep ``max_age`` long,
    or let an expired token lead to the preference page rather than to an error.

DKIM must cover both headers (RFC 8058 §4)
    Mailbox providers perform the one-click POST only for messages with a valid DKIM
    signature whose signed header list includes both ``List-Unsubscribe`` and
    ``List-Unsubscribe-Post``. lawful only produces the header values; the sending
    system adds them to the message and must sign it so that both are covered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit, urlunsplit

from lawful.policy.vocabulary import Channel, describe, unknown
from lawful.subjects import tokens

__all__ = [
    "FUTURE_SKEW",
    "TOKEN_VERSION",
    "UnsubscribeRequest",
    "UnsubscribeScope",
    "UnsubscribeTokenError",
    "headers_for",
    "make_token",
    "one_click_headers",
    "read_token",
    "unsubscribe_url",
]

TOKEN_VERSION = 1
FUTURE_SKEW = timedelta(minutes=5)  # how far ahead of `now` a token's issue time may be
MIN_KEY_BYTES = 32
MAX_TOKEN_CHARS = 2048  # a real token is a few hundred characters; refuse anything absurd

_LIST_NAME = re.compile(r"[a-z][a-z0-9_-]{0,79}")  # the policy language's `Name`
_SUBJECT_REF = re.compile(r"[0-9a-f]{32}")  # uuid4().hex
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_FIELDS = {"c": "controller", "s": "subject ref", "u": "scope", "t": "issue time"}


# --- scope ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnsubscribeScope:
    """What an unsubscribe link leaves: one list, one channel, or all marketing.

    As text: ``list:<name>`` (a marketing list of the policy), ``channel:<channel>``
    (``channel:email``, ``channel:sms``, ...) or ``all``. Build one with `parse`,
    `of_list`, `of_channel` or `everything`; ``str(scope)`` gives the text back.
    """

    kind: str  # "list", "channel" or "all"
    name: str | None = None  # the list name or the channel; None for "all"

    def __post_init__(self) -> None:
        if self.kind == "all":
            if self.name is not None:
                raise ValueError("the unsubscribe scope 'all' takes no name")
        elif self.kind == "list":
            if not isinstance(self.name, str) or not _LIST_NAME.fullmatch(self.name):
                raise ValueError(
                    f"{describe(self.name)} is not a valid list name: use lowercase letters, "
                    "digits, '_' or '-', starting with a letter (e.g. newsletter)"
                )
        elif self.kind == "channel":
            values = [channel.value for channel in Channel]
            if not isinstance(self.name, str) or self.name not in values:
                raise ValueError(unknown(self.name, "a marketing channel", values))
            # Channel.email and "email" are equal; store the plain text either way.
            object.__setattr__(self, "name", str(Channel(self.name).value))
        else:
            raise ValueError(
                f"{describe(self.kind)} is not a kind of unsubscribe scope: "
                "use 'list', 'channel' or 'all'"
            )

    @classmethod
    def parse(cls, text: UnsubscribeScope | str) -> UnsubscribeScope:
        """``list:<name>``, ``channel:<channel>`` or ``all``; a scope is returned as is."""
        if isinstance(text, UnsubscribeScope):
            return text
        if not isinstance(text, str):
            raise ValueError(f"expected an unsubscribe scope as text, got {describe(text)}")
        if text == "all":
            return cls("all")
        kind, colon, name = text.partition(":")
        if colon and kind in ("list", "channel"):
            return cls(kind, name)
        raise ValueError(
            f"{describe(text)} is not an unsubscribe scope: use list:<name>, "
            "channel:<email|sms|...> or all"
        )

    @classmethod
    def of_list(cls, name: str) -> UnsubscribeScope:
        return cls("list", name)

    @classmethod
    def of_channel(cls, channel: Channel | str) -> UnsubscribeScope:
        return cls("channel", channel)

    @classmethod
    def everything(cls) -> UnsubscribeScope:
        return cls("all")

    @property
    def channel(self) -> Channel | None:
        return Channel(self.name) if self.kind == "channel" else None

    def __str__(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.name}"


# --- tokens -----------------------------------------------------------------------------


class UnsubscribeTokenError(ValueError):
    """A token that cannot be honoured. `reason` is one of: malformed, signature,
    controller, expired, future. The message never contains the token or subject ref."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class UnsubscribeRequest:
    """What a verified token asks for: this subject leaves this scope of this controller.

    (Not to be confused with `lawful.policy.model.Unsubscribe`, the policy's promise about
    unsubscribe links.)
    """

    controller: str
    subject_ref: str
    scope: UnsubscribeScope
    issued_at: datetime  # UTC, whole seconds


def make_token(
    key: bytes,
    *,
    controller: str,
    subject_ref: str,
    scope: UnsubscribeScope | str,
    issued_at: datetime | None = None,
) -> str:
    """A signed, URL-safe token saying `subject_ref` may leave `scope` of `controller`."""
    _check_key(key)
    if not isinstance(controller, str) or not controller or len(controller) > 200:
        raise ValueError(f"expected a controller id, got {describe(controller)}")
    if not isinstance(subject_ref, str) or not _SUBJECT_REF.fullmatch(subject_ref):
        # Do not echo it: a caller passing an email address here must not log it.
        raise ValueError(
            "subject_ref must be a subject's opaque public ref (32 lowercase hex "
            "characters), never an email address or phone number"
        )
    scope = UnsubscribeScope.parse(scope)
    when = tokens.utc(issued_at, "issued_at") if issued_at is not None else datetime.now(UTC)
    payload = {
        "c": controller,
        "s": subject_ref,
        "u": str(scope),
        "t": int(when.timestamp()),
        "v": TOKEN_VERSION,
    }
    return tokens.sign(key, payload)


def read_token(
    key: bytes,
    token: str,
    *,
    controller: str,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> UnsubscribeRequest:
    """Verify `token` for `controller` and say what it asks; raise UnsubscribeTokenError."""
    _check_key(key)
    if max_age is not None and (not isinstance(max_age, timedelta) or max_age <= timedelta(0)):
        raise ValueError(f"max_age must be a positive timedelta, got {describe(max_age)}")
    now = tokens.utc(now, "now") if now is not None else datetime.now(UTC)

    def malformed(why: str) -> UnsubscribeTokenError:
        return UnsubscribeTokenError("malformed", f"the unsubscribe token is malformed: {why}")

    payload = tokens.open_signed(
        key,
        token,
        max_chars=MAX_TOKEN_CHARS,
        malformed=malformed,
        forged=lambda: UnsubscribeTokenError(
            "signature", "the unsubscribe token was altered or signed with another key"
        ),
    )
    if "v" not in payload:
        raise malformed("its payload has no version ('v')")
    version = payload["v"]
    if type(version) is not int or version != TOKEN_VERSION:
        raise malformed(f"unknown version {describe(version)} (this lawful reads version 1)")
    missing = [f"{_FIELDS[field]} ('{field}')" for field in _FIELDS if field not in payload]
    if missing:
        raise malformed(f"its payload lacks the {', '.join(missing)}")

    issuer, subject_ref, scope_text, stamp = (payload[field] for field in _FIELDS)
    if not isinstance(issuer, str) or not issuer:
        raise malformed("its controller ('c') is not text")
    if not isinstance(subject_ref, str) or not _SUBJECT_REF.fullmatch(subject_ref):
        raise malformed("its subject ref ('s') is not 32 lowercase hex characters")
    try:
        scope = UnsubscribeScope.parse(scope_text)
    except ValueError as error:
        raise malformed(f"its scope ('u') is not valid: {error}") from None
    if type(stamp) is not int:
        raise malformed("its issue time ('t') is not whole unix seconds")
    try:
        issued_at = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise malformed("its issue time ('t') is out of range") from None

    if issuer != controller:
        raise UnsubscribeTokenError(
            "controller",
            f"the unsubscribe token was issued by controller '{issuer}', not '{controller}'",
        )
    if issued_at - now > FUTURE_SKEW:
        raise UnsubscribeTokenError(
            "future",
            f"the unsubscribe token was issued in the future ({_when(issued_at)}; now is "
            f"{_when(now)}, allowed clock skew {_span(FUTURE_SKEW)}): check the clocks",
        )
    if max_age is not None and now - issued_at > max_age:
        raise UnsubscribeTokenError(
            "expired",
            f"the unsubscribe token has expired: it was issued {_when(issued_at)} and links "
            f"are honoured for {_span(max_age)}",
        )
    return UnsubscribeRequest(
        controller=issuer, subject_ref=subject_ref, scope=scope, issued_at=issued_at
    )


# --- links and headers ------------------------------------------------------------------


def unsubscribe_url(base_url: str, token: str) -> str:
    """`token` as the last path segment of `base_url` (its query, if any, is kept).

    ``unsubscribe_url("https://shop.example/privacy/unsubscribe", t)`` is
    ``"https://shop.example/privacy/unsubscribe/<t>"``.
    """
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ValueError("expected an unsubscribe token made by make_token")
    parts = urlsplit(_check_url(base_url, "the unsubscribe base URL"))
    path = parts.path.rstrip("/") + "/" + token
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def one_click_headers(*, url: str, mailto: str | None = None) -> dict[str, str]:
    """The RFC 8058 header values: ``List-Unsubscribe`` and ``List-Unsubscribe-Post``.

    `url` is the HTTPS unsubscribe URL (from `unsubscribe_url`); `mailto` an optional
    address that also unsubscribes whoever writes to it (RFC 2369). The values are
    ``<https://...>, <mailto:addr?subject=unsubscribe>`` and ``List-Unsubscribe=One-Click``.
    """
    uris = [_check_url(url, "the unsubscribe URL")]
    if mailto is not None:
        uris.append(_mailto(mailto))
    return {
        "List-Unsubscribe": ", ".join(f"<{uri}>" for uri in uris),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def headers_for(
    key: bytes,
    *,
    controller: str,
    subject_ref: str,
    scope: UnsubscribeScope | str,
    base_url: str,
    mailto: str | None = None,
    issued_at: datetime | None = None,
) -> dict[str, str]:
    """Mint a token for one message and return its two one-click unsubscribe headers."""
    token = make_token(
        key, controller=controller, subject_ref=subject_ref, scope=scope, issued_at=issued_at
    )
    return one_click_headers(url=unsubscribe_url(base_url, token), mailto=mailto)


# --- helpers ----------------------------------------------------------------------------

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# RFC 3986 pchar plus '/' and '?' (and '%' for escapes already present), minus ','.
_URL_SAFE = "-._~!$&'()*+;=:@/?%"
# RFC 6068 qchar in an addr-spec: unreserved and some-delims, minus ','.
_MAILTO_SAFE = "-._~!$'()*+;:"
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[A-Za-z0-9.:]+\]")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _check_key(key: object) -> None:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"the unsubscribe key must be bytes, got {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the unsubscribe key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}"
        )


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(span: timedelta) -> str:
    """``30 days``, ``1 day 2 hours``, ``5 minutes``: a limit as people say it."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts) or "0 seconds"


def _refuse_breaking(text: str, what: str) -> None:
    """Refuse what would end the <...> or split the header: '<', '>', ',', spaces, controls."""
    for char in text:
        if char in "<>,":
            raise ValueError(
                f"{what} contains '{char}', which would break the List-Unsubscribe header; "
                "percent-encode it"
            )
        if char.isspace() or ord(char) < 32 or ord(char) == 127:
            raise ValueError(
                f"{what} contains whitespace or a control character, which would break the "
                "List-Unsubscribe header; percent-encode it"
            )


def _pct(text: str, safe: str) -> str:
    """Percent-encode what a URI may not hold (non-ASCII as UTF-8), keeping valid escapes."""
    return quote(_STRAY_PERCENT.sub("%25", text), safe=safe)


def _ascii_host(host: str, what: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{what} has a host name that is not a valid domain") from None


def _check_url(url: object, what: str) -> str:
    """An https:// URL (http:// only for localhost), percent-encoded, safe in a header.

    Messages never quote the URL: it may hold a token.
    """
    if not isinstance(url, str):
        raise ValueError(f"{what} must be an https:// URL as text, got {type(url).__name__}")
    if not url:
        raise ValueError(f"{what} is empty; expected an https:// URL")
    _refuse_breaking(url, what)
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{what} has an invalid host or port") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{what} must be an absolute https:// URL (RFC 8058 requires HTTPS)")
    if parts.scheme == "http" and host not in _LOCAL_HOSTS:
        raise ValueError(
            f"{what} must use https:// (RFC 8058 requires an HTTPS URI); http:// is only "
            "allowed for localhost or 127.0.0.1 during development"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not carry a user name or password")
    netloc = parts.netloc
    if not netloc.isascii():
        netloc = _ascii_host(host, what)
        if port is not None:
            netloc += f":{port}"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            _pct(parts.path, _URL_SAFE),
            _pct(parts.query, _URL_SAFE),
            _pct(parts.fragment, _URL_SAFE),
        )
    )


def _mailto(address: object) -> str:
    """RFC 2369 ``mailto:addr?subject=unsubscribe`` for an address (a mailto: prefix is ok)."""
    if not isinstance(address, str) or not address:
        raise ValueError(
            f"the unsubscribe mailto must be an email address, got {describe(address)}"
        )
    if address[:7].lower() == "mailto:":
        address = address[7:]
    _refuse_breaking(address, "the unsubscribe mailto address")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{describe(address)} is not an email address (expected name@domain)")
    if not domain.isascii():
        domain = _ascii_host(domain, "the unsubscribe mailto address")
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(f"{describe(address)} does not have a valid email domain")
    return f"mailto:{quote(local, safe=_MAILTO_SAFE)}@{domain}?subject=unsubscribe"
