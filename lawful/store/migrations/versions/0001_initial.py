"""Controllers and the versions of their policies.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lawful.store.types import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "controllers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_controllers"),
        sa.UniqueConstraint("key", name="uq_controllers_key"),
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("controller_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(100), nullable=True),
        sa.Column("effective_date", sa.Date(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_versions"),
        sa.ForeignKeyConstraint(
            ["controller_id"],
            ["controllers.id"],
            name="fk_policy_versions_controller_id_controllers",
        ),
        sa.UniqueConstraint(
            "controller_id", "number", name="uq_policy_versions_controller_id_number"
        ),
        sa.UniqueConstraint(
            "controller_id", "content_hash", name="uq_policy_versions_controller_id_content_hash"
        ),
    )


def downgrade() -> None:
    op.drop_table("policy_versions")
    op.drop_table("controllers")
