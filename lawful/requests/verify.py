"""Proving a request comes from the person it is about: codes, assertions, agents.

Three ways, as the policy's `requests.verification` offers them:

One-time codes (`email_code`, `phone_code`)
    `issue_code` makes a random numeric code for a request and keeps only its keyed
    hash (HMAC under a key derived for "request-codes", bound to the request id and the
    channel, so a code can't be replayed on another request or channel); earlier
    unused codes of the request stop working. `check_code` compares in constant time;
    a code works once, expires, and is locked after `max_attempts` wrong tries. With at
    most `MAX_CODES_PER_HOUR` codes a request and 5 tries a code, a guesser gets 25
    tries an hour against a million six-digit codes.

Signed-in assertions (`signed_in`)
    An integrating app that has already authenticated its user vouches for them with
    `sign_assertion`; lawful accepts the request as verified after `read_assertion`.
    The token is signed, not encrypted: its payload (the identity included) is readable
    base64, so it travels from the app's server to lawful, never through a URL or a
    browser, and is never logged.

Agents and parents
    A request made for someone else carries an `OnBehalf`: who acts (as a keyed hash)
    and what they showed; `on_behalf_record` is what `requests.on_behalf` holds.

No account enumeration
    Whether lawful knows an identity must not show in the answer to a request: not in
    its words, not in its shape, not in its timing. The intake therefore treats an
    unknown identity like a known one: it stores the request (with `subject_id` None),
    issues a code (stored hashed, like any other), and answers "if we hold data about
    this address, we have sent a code to it" — but queues no message. The intake runs
    inside `uniform_time()`, which makes every answer take at least the same time.

    Why not send a "we hold no account for you" message instead? Both choices hide the
    answer from the requester (only the mailbox owner would read that message), but
    sending it would let anyone make lawful mail arbitrary addresses it has never
    held — a spam relay that harms the controller's sending reputation — and would
    process a stranger's address only to tell them nothing is held. The request stays
    stored, unverified, and visible to the privacy team, who can answer it by hand.

Nothing here writes a code, an identity or a token into a log or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.requests.tables import requests, verification_codes
from lawful.subjects import tokens
from lawful.subjects.identity import Identity, IdentityError, IdentityKind
from lawful.subjects.keyring import Keyring

__all__ = [
    "ASSERTION_VERSION",
    "CODE_CHANNELS",
    "MAX_ASSERTION_TTL",
    "MAX_CODES_PER_HOUR",
    "AssertionRejected",
    "CodeCheck",
    "CodeLimitReached",
    "CodeResult",
    "OnBehalf",
    "OnBehalfError",
    "check_code",
    "issue_code",
    "on_behalf_record",
    "read_assertion",
    "sign_assertion",
    "uniform_delay",
    "uniform_time",
]

CODE_CHANNELS = ("email", "phone")
MAX_CODES_PER_HOUR = 5
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 10
_CODE_KEY_PURPOSE = "request-codes"
_ASSERTION_KEY_PURPOSE = "request-assertions"
_TYPED_CODE_LIMIT = 64  # characters looked at in a typed code; a code is at most 10 digits
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")  # spaces and dashes people type


# --- one-time codes ---------------------------------------------------------------------


class CodeResult(StrEnum):
    ok = "ok"
    wrong = "wrong"
    expired = "expired"
    used = "used"
    locked = "locked"  # too many wrong attempts: ask for a new code
    none = "none"  # no code was issued for this request (or this channel)


@dataclass(frozen=True)
class CodeCheck:
    result: CodeResult
    attempts_left: int

    @property
    def ok(self) -> bool:
        return self.result is CodeResult.ok


class CodeLimitReached(Exception):
    """A request asked for more codes than allowed; `retry_at` says when it may ask again."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


def issue_code(
    conn: Connection,
    keyring: Keyring,
    request_id: int,
    channel: str,
    now: datetime,
    *,
    ttl: timedelta = timedelta(minutes=30),
    length: int = 6,
    max_per_hour: int = MAX_CODES_PER_HOUR,
) -> str:
    """A new one-time code for `request_id`, to send on `channel` ("email" or "phone").

    Only the code's keyed hash is stored; every earlier unused code of the request stops
    working. Returns the code in clear, for the message that sends it (and nowhere
    else). Raises CodeLimitReached when the request already got `max_per_hour` codes in
    the last hour.
    """
    now = tokens.utc(now, "now")
    channel = _code_channel(channel)
    if not isinstance(length, int) or not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        raise ValueError(
            f"a code's length must be {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} digits, got {length!r}"
        )
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise ValueError(f"a code's ttl must be a positive timedelta, got {ttl!r}")
    if not isinstance(max_per_hour, int) or max_per_hour < 1:
        raise ValueError(f"max_per_hour must be a positive whole number, got {max_per_hour!r}")
    # Lock the request (PostgreSQL): two codes asked for at once are counted in turn.
    found = conn.execute(
        sa.select(requests.c.id).where(requests.c.id == request_id).with_for_update()
    ).first()
    if found is None:
        raise ValueError(f"there is no request with id {request_id!r} to send a code for")
    c = verification_codes.c
    hour_ago = now - timedelta(hours=1)
    recent = conn.execute(
        sa.select(c.created_at)
        .where(c.request_id == request_id, c.created_at > hour_ago)
        .order_by(c.created_at)
    ).all()
    if len(recent) >= max_per_hour:
        # The oldest of the last `max_per_hour` codes leaves the window first.
        retry_at = recent[-max_per_hour].created_at + timedelta(hours=1)
        raise CodeLimitReached(
            f"request {request_id} already got {len(recent)} codes in the last hour (at most "
            f"{max_per_hour}); a new one can be sent after {_when(retry_at)}",
            retry_at,
        )
    code = f"{secrets.randbelow(10**length):0{length}d}"
    conn.execute(
        sa.update(verification_codes)
        .where(c.request_id == request_id, c.used_at.is_(None), c.expires_at > now)
        .values(expires_at=now)
    )
    conn.execute(
        sa.insert(verification_codes).values(
            request_id=request_id,
            channel=channel,
            code_hash=_code_hash(keyring, request_id, channel, code),
            created_at=now,
            expires_at=now + ttl,
            attempts=0,
        )
    )
    return code


def check_code(
    conn: Connection,
    keyring: Keyring,
    request_id: int,
    code: str,
    now: datetime,
    *,
    max_attempts: int = 5,
    channel: str | None = None,
) -> CodeCheck:
    """Check a code typed for `request_id` against the latest one issued.

    Spaces and dashes in the typed code are ignored; anything else that is not the code
    (letters, wrong length, not text) is simply wrong and counts as an attempt. With
    `channel`, only a code sent on that channel can match. A right code is spent (its
    `used_at` set); the caller commits the transaction either way, so a wrong attempt
    stays counted.
    """
    now = tokens.utc(now, "now")
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be a positive whole number, got {max_attempts!r}")
    c = verification_codes.c
    query = sa.select(verification_codes).where(c.request_id == request_id)
    if channel is not None:
        query = query.where(c.channel == _code_channel(channel))
    # FOR UPDATE (PostgreSQL): concurrent checks of one code take turns, so two right
    # answers can't both spend it and two wrong ones are both counted.
    row = conn.execute(query.order_by(c.id.desc()).limit(1).with_for_update()).first()
    if row is None:
        return CodeCheck(CodeResult.none, 0)
    left = max(max_attempts - row.attempts, 0)
    if row.used_at is not None:
        return CodeCheck(CodeResult.used, left)
    if left == 0:
        return CodeCheck(CodeResult.locked, 0)
    if row.expires_at <= now:
        return CodeCheck(CodeResult.expired, left)
    typed = _normalised_code(code)
    expected = row.code_hash.encode("ascii")
    # A malformed code is hashed as well, so it takes as long as any wrong code.
    given = _code_hash(keyring, request_id, row.channel, typed).encode("ascii")
    if hmac.compare_digest(given, expected):
        spent = conn.execute(
            sa.update(verification_codes)
            .where(c.id == row.id, c.used_at.is_(None))
            .values(used_at=now)
        )
        if spent.rowcount == 1:
            return CodeCheck(CodeResult.ok, left)
        return CodeCheck(CodeResult.used, left)
    conn.execute(
        sa.update(verification_codes)
        .where(c.id == row.id)
        .values(attempts=verification_codes.c.attempts + 1)
    )
    attempts = conn.scalar(sa.select(c.attempts).where(c.id == row.id))
    left = max(max_attempts - int(attempts), 0)
    return CodeCheck(CodeResult.wrong if left else CodeResult.locked, left)


def _code_hash(keyring: Keyring, request_id: int, channel: str, code: str) -> str:
    key = keyring.derive(_CODE_KEY_PURPOSE)
    return hmac.digest(key, f"{request_id}:{channel}:{code}".encode(), "sha256").hex()


def _normalised_code(code: object) -> str:
    """The digits typed, without spaces or dashes; "" (never matches) if it is not text."""
    if not isinstance(code, str):
        return ""
    return _SEPARATORS.sub("", code[:_TYPED_CODE_LIMIT])


def _code_channel(channel: object) -> str:
    if channel not in CODE_CHANNELS:
        raise ValueError(
            f"codes are sent by {' or '.join(CODE_CHANNELS)}, not {channel!r}: "
            "pass channel='email' or channel='phone'"
        )
    return str(channel)


# --- signed-in assertions ---------------------------------------------------------------

ASSERTION_VERSION = 1
MAX_ASSERTION_TTL = timedelta(hours=1)
FUTURE_SKEW = timedelta(minutes=5)  # how far ahead of `now` an issue time may be
MAX_ASSERTION_CHARS = 4096
_TYPE = "lawful-request-assertion"
_FIELDS = {
    "c": "controller",
    "k": "identity kind",
    "i": "identity",
    "t": "issue time",
    "e": "expiry time",
}


class AssertionRejected(ValueError):
    """An assertion lawful can't accept. `reason`: malformed, signature, controller,
    expired or future. The message never contains the token or the identity."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def sign_assertion(
    keyring: Keyring,
    *,
    controller: str,
    identity: Identity,
    now: datetime,
    ttl: timedelta = timedelta(minutes=10),
) -> str:
    """A token saying: the app signed in as `controller` has authenticated `identity`.

    Valid for `ttl` (at most `MAX_ASSERTION_TTL`): long enough to submit a request, too
    short to be worth stealing. Pass it server to server; it is readable, not secret.
    """
    now = tokens.utc(now, "now")
    if not isinstance(controller, str) or not controller or len(controller) > 200:
        raise ValueError("controller must be the controller's id (1 to 200 characters)")
    if not isinstance(identity, Identity):
        raise TypeError(
            f"identity must be an Identity (e.g. Identity.parse(...)), got {type(identity).__name__}"
        )
    if not isinstance(ttl, timedelta) or not timedelta(0) < ttl <= MAX_ASSERTION_TTL:
        raise ValueError(
            f"an assertion's ttl must be positive and at most {_span(MAX_ASSERTION_TTL)}: "
            "it vouches for a sign-in that just happened"
        )
    issued = int(now.timestamp())
    payload = {
        "v": ASSERTION_VERSION,
        "typ": _TYPE,
        "c": controller,
        "k": str(identity.kind),
        "i": identity.value,
        "t": issued,
        "e": issued + int(ttl.total_seconds()),
    }
    return tokens.sign(keyring.derive(_ASSERTION_KEY_PURPOSE), payload)


def read_assertion(keyring: Keyring, token: str, *, controller: str, now: datetime) -> Identity:
    """The identity `token` vouches for, if it is genuine, for `controller`, and current.

    Raises AssertionRejected naming what is wrong (never what the token holds).
    """
    now = tokens.utc(now, "now")

    def malformed(why: str) -> AssertionRejected:
        return AssertionRejected("malformed", f"the sign-in assertion is malformed: {why}")

    payload = tokens.open_signed(
        keyring.derive(_ASSERTION_KEY_PURPOSE),
        token,
        max_chars=MAX_ASSERTION_CHARS,
        malformed=malformed,
        forged=lambda: AssertionRejected(
            "signature", "the sign-in assertion was altered or signed with another key"
        ),
    )
    if payload.get("v") != ASSERTION_VERSION or type(payload.get("v")) is not int:
        raise malformed(f"unknown version (this lawful reads version {ASSERTION_VERSION})")
    if payload.get("typ") != _TYPE:
        raise malformed("it is not a lawful sign-in assertion")
    missing = [f"{name} ('{field}')" for field, name in _FIELDS.items() if field not in payload]
    if missing:
        raise malformed(f"its payload lacks the {', '.join(missing)}")
    issuer, kind, value, issued, expires = (payload[field] for field in _FIELDS)
    if not isinstance(issuer, str) or not issuer:
        raise malformed("its controller ('c') is not text")
    if type(issued) is not int or type(expires) is not int or expires <= issued:
        raise malformed("its issue and expiry times ('t', 'e') are not unix seconds in order")
    if not isinstance(kind, str) or not isinstance(value, str):
        raise malformed("its identity ('k', 'i') is not text")
    try:
        identity = Identity.of(IdentityKind(kind), value)
    except ValueError as error:  # IdentityError, or an unknown kind
        why = str(error) if isinstance(error, IdentityError) else "an unknown kind of identity"
        raise malformed(f"its identity is not valid: {why}") from None
    if issuer != controller:
        # Controller ids are lawful's vocabulary, not personal data: safe to name.
        raise AssertionRejected(
            "controller",
            f"the sign-in assertion was issued for controller '{issuer}', not '{controller}'",
        )
    stamp = now.timestamp()
    if issued - stamp > FUTURE_SKEW.total_seconds():
        raise AssertionRejected(
            "future",
            f"the sign-in assertion was issued in the future ({_when(_at(issued))}; now is "
            f"{_when(now)}): check the clocks",
        )
    if stamp >= expires:
        raise AssertionRejected(
            "expired",
            f"the sign-in assertion expired at {_when(_at(expires))}: ask the app for a new one",
        )
    if expires - issued > MAX_ASSERTION_TTL.total_seconds():
        raise malformed(f"it is valid for longer than {_span(MAX_ASSERTION_TTL)}")
    return identity


def _at(stamp: int) -> datetime:
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise AssertionRejected(
            "malformed", "the sign-in assertion is malformed: its times are out of range"
        ) from None


# --- agents and parents -----------------------------------------------------------------

ON_BEHALF_ROLES = ("agent", "parent")
MAX_PROOF_CHARS = 200
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class OnBehalfError(ValueError):
    """An agent's or parent's request lacks what it must carry; the message says what."""


@dataclass(frozen=True)
class OnBehalf:
    """Someone acting for the subject: an authorised agent (CCPA) or a child's parent.

    `proof` says what they showed ("signed permission", "power of attorney", "birth
    certificate"...); `document_sha256` is the SHA-256 of the document, if one was kept.
    """

    role: Literal["agent", "parent"]
    actor: Identity
    proof: str
    document_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ON_BEHALF_ROLES:
            raise OnBehalfError(
                f"unknown role {self.role!r} for someone acting for the subject: "
                f"use {' or '.join(repr(r) for r in ON_BEHALF_ROLES)}"
            )
        if not isinstance(self.actor, Identity):
            raise OnBehalfError(
                "the actor must be an Identity (e.g. Identity.parse('email:...')), "
                f"got {type(self.actor).__name__}"
            )
        if not isinstance(self.proof, str) or not self.proof.strip():
            raise OnBehalfError(
                f"an {self.role}'s request must say what proof was shown (e.g. "
                "'signed permission', 'power of attorney', 'birth certificate')"
            )
        proof = " ".join(self.proof.split())
        if len(proof) > MAX_PROOF_CHARS:
            raise OnBehalfError(
                f"the proof is longer than {MAX_PROOF_CHARS} characters: name the kind of "
                "document, and keep the document itself elsewhere (give its document_sha256)"
            )
        object.__setattr__(self, "proof", proof)
        digest = self.document_sha256
        if digest is not None:
            if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest.lower()):
                raise OnBehalfError(
                    "document_sha256 must be 64 hexadecimal digits (hashlib.sha256(...).hexdigest())"
                )
            object.__setattr__(self, "document_sha256", digest.lower())

    @staticmethod
    def document_hash(content: bytes) -> str:
        """The `document_sha256` of a document's bytes."""
        return hashlib.sha256(content).hexdigest()


def on_behalf_record(
    keyring: Keyring, on_behalf: OnBehalf, *, agents_allowed: bool = True
) -> dict[str, Any]:
    """What `requests.on_behalf` holds: role, the actor's keyed hash, proof, document hash.

    No raw identity: the actor is found again by hashing their identity. Pass
    `agents_allowed=policy.requests.authorised_agents` to refuse agents the policy
    does not accept.
    """
    if not isinstance(on_behalf, OnBehalf):
        raise OnBehalfError(f"expected an OnBehalf, got {type(on_behalf).__name__}")
    if on_behalf.role == "agent" and not agents_allowed:
        raise OnBehalfError(
            "this controller's policy does not accept requests from authorised agents "
            "(requests.authorised_agents is false): the subject must make the request"
        )
    return {
        "role": on_behalf.role,
        "actor_kind": str(on_behalf.actor.kind),
        "actor_hash": keyring.hash(on_behalf.actor),
        "proof": on_behalf.proof,
        "document_sha256": on_behalf.document_sha256,
    }


# --- no account enumeration -------------------------------------------------------------


def uniform_delay(
    started: float,
    floor: float = 0.25,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Sleep until `floor` seconds have passed since `started` (a `time.monotonic()`).

    Choose `floor` above the slowest intake's usual time: work that takes longer than
    the floor shows through.
    """
    if floor < 0:
        raise ValueError(f"floor must be zero or more seconds, got {floor!r}")
    remaining = started + floor - clock()
    if remaining > 0:
        sleep(remaining)


@contextmanager
def uniform_time(
    floor: float = 0.25,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Make the block take at least `floor` seconds, also when it raises.

    The intake answers inside it, so a request for an unknown identity (stored, no code
    sent) answers as late as one for a known identity (stored, code sent)::

        with uniform_time():
            request = intake(...)
        return {"ref": request.ref, "status": "code_sent"}
    """
    started = clock()
    try:
        yield
    finally:
        uniform_delay(started, floor, clock=clock, sleep=sleep)


# --- helpers ----------------------------------------------------------------------------


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts) or "0 seconds"
