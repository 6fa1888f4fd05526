"""API keys for the HTTP API (hashed, with a scope).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lawful.store.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_controller", "api_keys", ["controller_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_controller", table_name="api_keys")
    op.drop_table("api_keys")
