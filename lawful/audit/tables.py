"""The audit log's tables: the events, and each controller's chain head."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime

# One row per event; (controller_id, seq) orders a controller's chain. Events hold no
# raw personal data: a subject appears only as the keyed hash of an identity.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # 1, 2, 3… per controller, no gaps
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(100), nullable=False),  # e.g. policy.version_recorded
    Column("subject", String(64), nullable=True, index=True),  # keyed identity hash
    Column("data", JSON(none_as_null=True), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("controller_id", "seq"),
)

# The newest event of each chain. Appenders lock this row, so events of one controller
# are chained one after the other; verify compares it with the last event, so deleting
# the newest events is detected too.
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("controller_id", Integer, ForeignKey("controllers.id"), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
