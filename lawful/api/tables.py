"""API keys: who may call the HTTP API, and for what.

One row per key. The key itself is never stored: `token_hash` is the SHA-256 of the
token handed out once by `lawful keys create`. Tokens carry 256 random bits, so a plain
(unkeyed) hash cannot be reversed by guessing, and checking a key needs no keyring (a
keyring rotation leaves every key working). `prefix` is the token's first characters,
shown in listings so a person can tell keys apart without holding them.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime
from lawful.subjects.tables import BigId

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("ref", String(32), nullable=False, unique=True),  # public id (uuid4 hex): revoke by it
    Column("name", String(200), nullable=True),  # what it is for, e.g. "checkout service"
    Column("scope", String(20), nullable=False),  # admin, operator, service, read
    Column("prefix", String(16), nullable=False),  # the token's first characters, for listings
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the token
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index("ix_api_keys_controller", "controller_id", "created_at"),
)
