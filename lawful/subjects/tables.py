"""Subjects and the identities they are known by.

A subject is a person as this controller knows them. Identities (an email, a phone,
an account id, a device id, a customer-supplied id) point to a subject through a keyed
hash of their normalised value, so the store can find a subject without holding raw
identities; a raw value is kept only where it must be used (an address to send a
verification code to), encrypted with AES-GCM.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only

subjects = Table(
    "subjects",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    # An opaque public reference (uuid4 hex) for APIs, tokens and receipts: not personal data.
    Column("ref", String(32), nullable=False, unique=True),
    Column("kind", String(100), nullable=True),  # a subject kind of the policy, e.g. customer
    Column("jurisdiction", String(20), nullable=True),  # eu, us-ca, cn...
    Column("country", String(2), nullable=True),  # member state, for national consent ages
    Column("birth_date", Date, nullable=True),  # only when known: age rules need it
    Column("merged_into", BigId, ForeignKey("subjects.id"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_subjects_controller_id", "controller_id"),
)

identities = Table(
    "identities",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("subject_id", BigId, ForeignKey("subjects.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # email, phone, account, device, customer
    Column("hash", String(64), nullable=False),  # HMAC-SHA256 hex of "kind:normalised value"
    Column("ciphertext", LargeBinary, nullable=True),  # AES-GCM nonce + ciphertext, when kept
    Column("key_id", String(40), nullable=True),  # which encryption key sealed it
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("controller_id", "hash"),
    Index("ix_identities_subject_id", "subject_id"),
)

# One row per controller: a fingerprint of the hash key its identities were hashed
# with, so opening the store with another key fails loudly instead of finding nobody.
keyring_checks = Table(
    "keyring_checks",
    metadata,
    Column("controller_id", Integer, ForeignKey("controllers.id"), primary_key=True),
    Column("hash_key_fingerprint", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
