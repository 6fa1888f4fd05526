"""Subjects, identities, the consent ledger and its current state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lawful.store.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        batch.add_column(sa.Column("renew_consent", sa.JSON(), nullable=True))
    op.create_table(
        "subjects",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(100), nullable=True),
        sa.Column("jurisdiction", sa.String(20), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("merged_into", BigId, sa.ForeignKey("subjects.id"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_subjects_controller_id", "subjects", ["controller_id"])
    op.create_table(
        "identities",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False),
        sa.Column("subject_id", BigId, sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("controller_id", "hash"),
    )
    op.create_index("ix_identities_subject_id", "identities", ["subject_id"])
    op.create_table(
        "keyring_checks",
        sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), primary_key=True),
        sa.Column("hash_key_fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "consent_records",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False),
        sa.Column("subject_id", BigId, sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("topic", sa.String(20), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("notice_hash", sa.String(64), nullable=True),
        sa.Column("language", sa.String(20), nullable=True),
        sa.Column("jurisdiction", sa.String(20), nullable=True),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
    )
    op.create_index("ix_consent_records_subject_id", "consent_records", ["subject_id"])
    op.create_index(
        "ix_consent_records_controller_id_at", "consent_records", ["controller_id", "at"]
    )
    op.create_table(
        "consent_state",
        sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False),
        sa.Column("subject_id", BigId, sa.ForeignKey("subjects.id"), nullable=False),
        sa.Column("topic", sa.String(20), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("record_ref", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "topic", "key", "scope"),
    )
    op.create_index(
        "ix_consent_state_controller_id_topic_key",
        "consent_state",
        ["controller_id", "topic", "key"],
    )


def downgrade() -> None:
    op.drop_index("ix_consent_state_controller_id_topic_key", table_name="consent_state")
    op.drop_table("consent_state")
    op.drop_index("ix_consent_records_controller_id_at", table_name="consent_records")
    op.drop_index("ix_consent_records_subject_id", table_name="consent_records")
    op.drop_table("consent_records")
    op.drop_table("keyring_checks")
    op.drop_index("ix_identities_subject_id", table_name="identities")
    op.drop_table("identities")
    op.drop_index("ix_subjects_controller_id", table_name="subjects")
    op.drop_table("subjects")
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("renew_consent")
