"""Data-subject requests, their jobs and steps, verification codes, messages, packages.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lawful.store.types import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _controller() -> sa.Column:
    return sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False)


def _request(nullable: bool = False, **kw: object) -> sa.Column:
    return sa.Column("request_id", BigId, sa.ForeignKey("requests.id"), nullable=nullable, **kw)


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", BigId, primary_key=True),
        _controller(),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("subject_id", BigId, sa.ForeignKey("subjects.id"), nullable=True),
        sa.Column("identity_kind", sa.String(20), nullable=False),
        sa.Column("identity_hash", sa.String(64), nullable=False),
        sa.Column("contact_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("params_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(40), nullable=True),
        sa.Column("jurisdiction", sa.String(20), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("submitted_by", sa.String(100), nullable=True),
        sa.Column("on_behalf", sa.JSON(), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("verified_by", sa.String(30), nullable=True),
        sa.Column("acknowledge_by", UTCDateTime(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("extended_at", UTCDateTime(), nullable=True),
        sa.Column("extension_reason", sa.String(500), nullable=True),
        sa.Column("paused_at", UTCDateTime(), nullable=True),
        sa.Column("paused_days", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("refusal", sa.JSON(), nullable=True),
        sa.Column("receipt", sa.JSON(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_requests_controller_id_state_due_at", "requests", ["controller_id", "state", "due_at"]
    )
    op.create_index(
        "ix_requests_controller_id_identity_hash", "requests", ["controller_id", "identity_hash"]
    )
    op.create_index("ix_requests_subject_id", "requests", ["subject_id"])
    op.create_table(
        "request_jobs",
        _request(primary_key=True),
        _controller(),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_request_jobs_state_available_at", "request_jobs", ["state", "available_at"])
    op.create_table(
        "request_steps",
        _request(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("request_id", "seq"),
    )
    op.create_table(
        "verification_codes",
        sa.Column("id", BigId, primary_key=True),
        _request(),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_verification_codes_request_id", "verification_codes", ["request_id"])
    op.create_table(
        "request_messages",
        sa.Column("id", BigId, primary_key=True),
        _controller(),
        _request(nullable=True),
        sa.Column("template", sa.String(50), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_request_messages_sent_at", "request_messages", ["sent_at"])
    op.create_table(
        "request_packages",
        sa.Column("id", BigId, primary_key=True),
        _request(unique=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("downloaded_at", UTCDateTime(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("request_packages")
    op.drop_index("ix_request_messages_sent_at", table_name="request_messages")
    op.drop_table("request_messages")
    op.drop_index("ix_verification_codes_request_id", table_name="verification_codes")
    op.drop_table("verification_codes")
    op.drop_table("request_steps")
    op.drop_index("ix_request_jobs_state_available_at", table_name="request_jobs")
    op.drop_table("request_jobs")
    op.drop_index("ix_requests_subject_id", table_name="requests")
    op.drop_index("ix_requests_controller_id_identity_hash", table_name="requests")
    op.drop_index("ix_requests_controller_id_state_due_at", table_name="requests")
    op.drop_table("requests")
