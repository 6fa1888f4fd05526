"""Signed cookies for the pages: the CSRF double-submit token and the admin session.

CSRF: a *signed double-submit* token. The first page a browser gets sets a random value
in the `lawful_csrf` cookie (HttpOnly, SameSite=Lax); every form carries
HMAC-SHA256(key, "csrf:" + that value) in a hidden field. A POST is taken only when the
field is the signature of the cookie it comes with. Another site can make a browser send
the cookie but can neither read it nor compute its signature without lawful's key, so it
cannot fill in the field; and a cookie planted by a sibling subdomain is useless without
the matching signature.

Admin session: `lawful_admin` holds "<key ref>.<expiry>.<signature>" (HttpOnly,
SameSite=Strict, Path=/admin). The API key itself is never stored in the cookie; every
page checks that the key it names is still active, so revoking it ends its sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

CSRF_COOKIE = "lawful_csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIE = "lawful_admin"
SESSION_TTL = 8 * 3600  # seconds: a working day, then log in again

_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 random bytes, base64url
_SESSION = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Signer:
    """HMAC-SHA256 under a 32-byte key derived for the pages alone."""

    key: bytes

    def sign(self, text: str) -> str:
        return _b64(hmac.new(self.key, text.encode(), hashlib.sha256).digest())

    def valid(self, text: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(text), signature)


def new_csrf_cookie() -> str:
    return _b64(secrets.token_bytes(32))


def csrf_cookie_ok(value: str | None) -> bool:
    return value is not None and _VALUE.fullmatch(value) is not None


def csrf_token(signer: Signer, cookie: str) -> str:
    """The form field's value for the browser holding `cookie`."""
    return signer.sign(f"csrf:{cookie}")


def csrf_ok(signer: Signer, cookie: str | None, field: str | None) -> bool:
    """Whether a POST's field is the signature of the cookie it came with."""
    if not csrf_cookie_ok(cookie) or not field:
        return False
    assert cookie is not None
    return signer.valid(f"csrf:{cookie}", field)


def session_value(signer: Signer, key_ref: str, now: float | None = None) -> str:
    """A session cookie for API key `key_ref`, valid for SESSION_TTL seconds."""
    expiry = int((now if now is not None else time.time()) + SESSION_TTL)
    return f"{key_ref}.{expiry}.{signer.sign(f'session:{key_ref}:{expiry}')}"


def session_key_ref(signer: Signer, value: str | None, now: float | None = None) -> str | None:
    """The key ref a session cookie names, or None when it is absent, altered or expired."""
    found = _SESSION.fullmatch(value or "")
    if found is None:
        return None
    ref, expiry, signature = found.groups()
    if not signer.valid(f"session:{ref}:{expiry}", signature):
        return None
    if int(expiry) <= (now if now is not None else time.time()):
        return None
    return ref
