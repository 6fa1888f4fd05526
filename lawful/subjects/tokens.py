"""Signed tokens: a JSON payload and its HMAC-SHA256, both base64url, joined by '.'.

Unsubscribe links, sign-in assertions and download links are all such tokens, each
signed with its own key (`Keyring.derive(purpose)`). `sign` makes one; `open_signed`
checks its shape, authenticates it before anything in it is parsed, and returns the
payload for the caller to check field by field. Errors are the caller's own: it passes
a `malformed(why)` and a `forged()` that build them, so each kind of token keeps its
messages and its exception class.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

SIGNATURE_CHARS = 43  # base64url of 32 bytes, unpadded
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def utc(value: object, name: str) -> datetime:
    """`value`, a timezone-aware datetime, in UTC (a token's times are compared in UTC);
    TypeError or ValueError naming the argument `name` otherwise."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC)


def sign(key: bytes, payload: Mapping[str, Any]) -> str:
    """The token for `payload` (compact ASCII JSON) under `key`."""
    body = b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode())
    return f"{body}.{signature(key, body)}"


def open_signed(
    key: bytes,
    token: object,
    *,
    max_chars: int,
    malformed: Callable[[str], Exception],
    forged: Callable[[], Exception],
    hint: str = "",
) -> dict[str, Any]:
    """The payload of a genuine token, a JSON object; raises what the callbacks build.

    `hint` ends the messages about a token that looks cut short (e.g. "; check it was
    copied whole").
    """
    if not isinstance(token, str):
        raise malformed(f"expected text, got {type(token).__name__}")
    if len(token) > max_chars:
        raise malformed(f"it is longer than {max_chars} characters")
    parts = token.split(".")
    if len(parts) != 2 or not all(parts):
        raise malformed(f"it is not two parts joined by '.'{hint}")
    body, mac = parts
    if not is_b64(body):
        raise malformed("its payload is not base64url")
    if not _B64URL.fullmatch(mac) or len(mac) != SIGNATURE_CHARS:
        raise malformed(f"its signature is not a base64url HMAC-SHA256{hint}")
    # Authenticate before looking inside: nothing unsigned is ever parsed.
    if not hmac.compare_digest(mac.encode("ascii"), signature(key, body).encode("ascii")):
        raise forged()
    try:
        payload = json.loads(b64decode(body))
    except ValueError:
        raise malformed("its payload is not JSON") from None
    if not isinstance(payload, dict):
        raise malformed("its payload is not a JSON object")
    return payload


def signature(key: bytes, body: str) -> str:
    return b64encode(hmac.digest(key, body.encode("ascii"), "sha256"))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_b64(text: str) -> bool:
    return bool(_B64URL.fullmatch(text)) and len(text) % 4 != 1


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
