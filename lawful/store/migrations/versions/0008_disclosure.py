"""The disclosure log and the notices owed to recipients (GDPR Art. 19).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lawful.store.types import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _controller() -> sa.Column:
    return sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False)


def _subject() -> sa.Column:
    return sa.Column("subject_id", BigId, sa.ForeignKey("subjects.id"), nullable=True)


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column("id", BigId, primary_key=True),
        _controller(),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("batch", sa.String(32), nullable=False),
        _subject(),
        sa.Column("identity_hash", sa.String(64), nullable=True),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("country", sa.String(200), nullable=False),
        sa.Column("jurisdictions", sa.String(100), nullable=True),
        sa.Column("safeguard", sa.String(200), nullable=True),
        sa.Column("deidentified", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_disclosures_controller_id_subject_id", "disclosures", ["controller_id", "subject_id"]
    )
    op.create_index(
        "ix_disclosures_controller_id_identity_hash",
        "disclosures",
        ["controller_id", "identity_hash"],
    )
    op.create_index("ix_disclosures_controller_id_batch", "disclosures", ["controller_id", "batch"])
    op.create_table(
        "recipient_notices",
        sa.Column("id", BigId, primary_key=True),
        _controller(),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        _subject(),
        sa.Column("identity_hash", sa.String(64), nullable=True),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("change", sa.String(20), nullable=False),
        sa.Column("request_ref", sa.String(64), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("disclosure_refs", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index(
        "ix_recipient_notices_controller_id_state", "recipient_notices", ["controller_id", "state"]
    )
    op.create_index(
        "ix_recipient_notices_controller_id_subject_id",
        "recipient_notices",
        ["controller_id", "subject_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_recipient_notices_controller_id_subject_id", table_name="recipient_notices")
    op.drop_index("ix_recipient_notices_controller_id_state", table_name="recipient_notices")
    op.drop_table("recipient_notices")
    op.drop_index("ix_disclosures_controller_id_batch", table_name="disclosures")
    op.drop_index("ix_disclosures_controller_id_identity_hash", table_name="disclosures")
    op.drop_index("ix_disclosures_controller_id_subject_id", table_name="disclosures")
    op.drop_table("disclosures")
