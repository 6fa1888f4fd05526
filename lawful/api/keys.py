"""API keys: created once, stored hashed, each with one scope.

A key is `lawful_` followed by 43 URL-safe characters (32 random bytes). lawful keeps only
its SHA-256: the token is as random as a key, so an unkeyed hash is as safe as a keyed
one here (nobody can guess their way back), and checking a key then needs no keyring,
so rotating the keyring never locks out the services that call the API.

Scopes are roles, not levels:

| scope | for | may |
| --- | --- | --- |
| `admin` | whoever runs lawful | everything, and list or revoke keys |
| `operator` | the privacy team | the request queue (approve, deny, extend), incidents, audit, a subject's choices |
| `service` | an application | decide, record consent and preferences, log disclosures, read choices |
| `read` | dashboards, monitoring | the request queue, incidents, audit status, metrics; no one person's choices |

Checked keys are cached in the process for `cache_ttl` seconds (default 5), so a revoked
key stops working everywhere within that time and a busy service does not read the
store on every call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lawful.api.tables import api_keys
from lawful.audit import NewEvent, append, lock_head
from lawful.store import Store

TOKEN_PREFIX = "lawful_"
PREFIX_SHOWN = 12  # characters of the token kept to tell keys apart: "lawful_" + 5


class Scope(StrEnum):
    admin = "admin"
    operator = "operator"
    service = "service"
    read = "read"


class ApiKeyError(ValueError):
    """A key that cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True)
class ApiKey:
    """A key as lawful keeps it: never the token itself."""

    ref: str
    name: str | None
    scope: Scope
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "scope": self.scope.value,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "active": self.active,
        }


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scope(value: str) -> Scope:
    try:
        return Scope(value)
    except ValueError:
        names = ", ".join(s.value for s in Scope)
        raise ApiKeyError(f"unknown scope {value!r}: use one of {names}") from None


class ApiKeys:
    """The API keys of one controller."""

    def __init__(
        self,
        store: Store,
        controller_key: str,
        controller_name: str,
        *,
        cache_ttl: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.key = controller_key
        self.controller_id = store.ensure_controller(controller_key, controller_name)
        self.cache_ttl = cache_ttl
        self.clock = clock or (lambda: datetime.now(UTC))
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def create(self, scope: Scope | str, *, name: str | None = None) -> tuple[ApiKey, str]:
        """Make a key; returns it and its token, which is shown this once and never again."""
        scope = parse_scope(scope) if not isinstance(scope, Scope) else scope
        if name is not None:
            name = name.strip() or None
            if name is not None and len(name) > 200:
                raise ApiKeyError("a key's name is at most 200 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        key = ApiKey(uuid.uuid4().hex, name, scope, token[:PREFIX_SHOWN], now, None)

        def work(conn: Connection) -> None:
            lock_head(conn, self.controller_id)
            conn.execute(
                sa.insert(api_keys).values(
                    controller_id=self.controller_id,
                    ref=key.ref,
                    name=name,
                    scope=scope.value,
                    prefix=key.prefix,
                    token_hash=token_hash(token),
                    created_at=now,
                )
            )
            # The event names the key by its ref and scope: the token never leaves here.
            event = NewEvent(
                "api_key.created", data={"ref": key.ref, "scope": scope.value, "name": name}
            )
            append(conn, self.controller_id, self.key, [event])

        self.store.write(work)
        return key, token

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """The controller's keys, oldest first."""
        query = sa.select(api_keys).where(api_keys.c.controller_id == self.controller_id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.store.engine.connect() as conn:
            rows = conn.execute(query.order_by(api_keys.c.created_at, api_keys.c.id)).all()
        return [_key(row) for row in rows]

    def revoke(self, ref: str) -> ApiKey:
        """Revoke a key by its ref (or its prefix, as `keys list` shows it); audited."""
        now = self.clock()

        def work(conn: Connection) -> ApiKey:
            lock_head(conn, self.controller_id)
            rows = conn.execute(
                sa.select(api_keys).where(
                    api_keys.c.controller_id == self.controller_id,
                    sa.or_(api_keys.c.ref == ref, api_keys.c.prefix == ref),
                )
            ).all()
            if not rows:
                raise ApiKeyError(f"no API key {ref!r} (see `lawful keys list`)")
            if len(rows) > 1:
                raise ApiKeyError(f"{ref!r} names {len(rows)} keys: give the key's ref instead")
            row = rows[0]
            if row.revoked_at is not None:
                raise ApiKeyError(
                    f"API key {row.ref} was already revoked on {row.revoked_at:%Y-%m-%d}"
                )
            conn.execute(sa.update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=now))
            append(
                conn,
                self.controller_id,
                self.key,
                [NewEvent("api_key.revoked", data={"ref": row.ref, "scope": row.scope})],
            )
            return dataclasses.replace(_key(row), revoked_at=now)

        revoked = self.store.write(work)
        with self._lock:
            self._cache = {h: v for h, v in self._cache.items() if v[1].ref != revoked.ref}
        return revoked

    def check(self, token: str) -> ApiKey | None:
        """The active key a token is, or None (unknown, revoked, or another controller's)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = token_hash(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys).where(
                    api_keys.c.token_hash == digest,
                    api_keys.c.controller_id == self.controller_id,
                    api_keys.c.revoked_at.is_(None),
                )
            ).first()
        if row is None:
            # Unknown tokens are not cached: a key created a moment ago in another process
            # must work at once.
            with self._lock:
                self._cache.pop(digest, None)
            return None
        key = _key(row)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.cache_ttl, key)
        return key


def _key(row: Any) -> ApiKey:
    return ApiKey(
        ref=row.ref,
        name=row.name,
        scope=Scope(row.scope),
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
