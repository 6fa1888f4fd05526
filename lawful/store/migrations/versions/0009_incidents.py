"""The breach register: incidents, their timelines and the subjects they affect.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lawful.store.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _controller() -> sa.Column:
    return sa.Column("controller_id", sa.Integer(), sa.ForeignKey("controllers.id"), nullable=False)


def _incident() -> sa.Column:
    return sa.Column("incident_id", BigId, sa.ForeignKey("incidents.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", BigId, primary_key=True),
        _controller(),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("discovered_at", UTCDateTime(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("high_risk", sa.Boolean(), nullable=True),
        sa.Column("people_estimate", sa.Integer(), nullable=True),
        sa.Column("tables", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("systems", sa.JSON(), nullable=False),
        sa.Column("jurisdictions", sa.JSON(), nullable=True),
        sa.Column("consequences", sa.Text(), nullable=True),
        sa.Column("subjects_count", sa.Integer(), nullable=False),
        sa.Column("records_count", sa.Integer(), nullable=True),
        sa.Column("by_jurisdiction", sa.JSON(), nullable=False),
        sa.Column("authority_notified_at", UTCDateTime(), nullable=True),
        sa.Column("subjects_notified_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("report_hash", sa.String(64), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("controller_id", "number"),
    )
    op.create_index("ix_incidents_controller_id_state", "incidents", ["controller_id", "state"])
    op.create_table(
        "incident_events",
        sa.Column("id", BigId, primary_key=True),
        _controller(),
        _incident(),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_incident_events_incident_id_at", "incident_events", ["incident_id", "at"])
    op.create_table(
        "incident_subjects",
        _controller(),
        _incident(),
        sa.Column("identity_hash", sa.String(64), nullable=False),
        sa.Column("identity_kind", sa.String(20), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("subject_ref", sa.String(32), nullable=True),
        sa.Column("jurisdiction", sa.String(20), nullable=True),
        sa.PrimaryKeyConstraint("incident_id", "identity_hash"),
    )


def downgrade() -> None:
    op.drop_table("incident_subjects")
    op.drop_index("ix_incident_events_incident_id_at", table_name="incident_events")
    op.drop_table("incident_events")
    op.drop_index("ix_incidents_controller_id_state", table_name="incidents")
    op.drop_table("incidents")
