"""Let a policy go back to an earlier text: the same content may recur as a new version.

Loading policy A, then B, then A again makes A current again, so it must be recorded
as version 3; the unique (controller_id, content_hash) constraint forbade that. An index
on the pair keeps lookups by hash fast.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_constraint("uq_policy_versions_controller_id_content_hash", type_="unique")
        batch.create_index(
            "ix_policy_versions_controller_id_content_hash", ["controller_id", "content_hash"]
        )


def downgrade() -> None:
    # Fails, as it should, when a text recurs: the old schema cannot hold that history.
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_index("ix_policy_versions_controller_id_content_hash")
        batch.create_unique_constraint(
            "uq_policy_versions_controller_id_content_hash", ["controller_id", "content_hash"]
        )
