"""Legal holds, which retention sweeps leave alone.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lawful.store.types import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "legal_holds",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("case_ref", sa.String(100), nullable=True),
        sa.Column("identity_kind", sa.String(20), nullable=True),
        sa.Column("identity_hash", sa.String(64), nullable=True),
        sa.Column("identity_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(40), nullable=True),
        sa.Column("dataset", sa.String(80), nullable=True),
        sa.Column("table_name", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("released_by", sa.String(100), nullable=True),
    )
    op.create_index(
        "ix_legal_holds_controller_id_released_at",
        "legal_holds",
        ["controller_id", "released_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_legal_holds_controller_id_released_at", table_name="legal_holds")
    op.drop_table("legal_holds")
