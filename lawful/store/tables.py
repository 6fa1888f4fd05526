"""The store's tables (SQLAlchemy Core).

Every row belongs to a controller (a lawful instance may serve several in processor
mode), so tables carry `controller_id` and can later be distributed on it; queries on
hot paths stay within one controller. The migrations in `migrations/versions` must
build exactly these tables: a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from lawful.store.types import UTCDateTime

# Named constraints give the same names on every backend, so migrations can drop or
# alter them by name (SQLite would otherwise leave them unnamed).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

controllers = Table(
    "controllers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False, unique=True),  # slug, e.g. seestar-store
    Column("name", String(300), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, 3… per controller
    Column("content_hash", String(64), nullable=False),  # sha256 hex of the policy
    Column("label", String(100), nullable=True),  # the policy's own version label
    Column("effective_date", Date, nullable=True),
    Column("text", Text, nullable=False),  # the YAML as loaded
    Column("loaded_at", UTCDateTime(), nullable=False),
    # none_as_null: "no diff" is SQL NULL, not the JSON value null.
    Column("changes", JSON(none_as_null=True), nullable=True),
    Column("material", Boolean, nullable=False, server_default=false()),
    # Consent purposes whose earlier consent this version invalidates (policy diff).
    Column("renew_consent", JSON(none_as_null=True), nullable=True),
    # Leads with controller_id, so it also serves lookups by controller.
    UniqueConstraint("controller_id", "number"),
    # Not unique: a policy may go back to an earlier text, which is then a new version.
    Index("ix_policy_versions_controller_id_content_hash", "controller_id", "content_hash"),
)
