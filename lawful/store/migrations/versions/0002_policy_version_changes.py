"""Keep with each policy version what changed since the previous one.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        # The diff from the previous version, a list of objects; NULL for a first version.
        batch.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        # Existing versions were recorded before changes were classified: not material.
        batch.add_column(
            sa.Column("material", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("material")
        batch.drop_column("changes")
