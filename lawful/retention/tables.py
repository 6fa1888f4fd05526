"""Legal holds: what retention sweeps must leave alone, and why.

A hold covers a subject (by the keyed hash of an identity; the identity itself sealed,
so a sweep can find the subject's rows), a table, or both; `reason` says why (dispute,
legal_claim, ...), `case_ref` groups the holds of one case. Released holds stay, as
the record of what was held and when. No column holds personal data in clear.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, String, Table

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime
from lawful.subjects.tables import BigId

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("ref", String(32), nullable=False, unique=True),  # public id (uuid4 hex)
    Column("reason", String(30), nullable=False),  # a HoldReason: dispute, legal_claim...
    Column("case_ref", String(100), nullable=True),  # the case's own reference, no names
    Column("identity_kind", String(20), nullable=True),  # None: not about one subject
    Column("identity_hash", String(64), nullable=True),  # keyed hash of the identity
    Column("identity_ciphertext", LargeBinary, nullable=True),  # the identity, sealed
    Column("key_id", String(40), nullable=True),  # the key that sealed it
    Column("dataset", String(80), nullable=True),  # with table_name: one table only
    Column("table_name", String(128), nullable=True),  # None: every table
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),  # who placed it (an operator's id)
    Column("released_at", UTCDateTime(), nullable=True),
    Column("released_by", String(100), nullable=True),
    Index("ix_legal_holds_controller_id_released_at", "controller_id", "released_at"),
)
