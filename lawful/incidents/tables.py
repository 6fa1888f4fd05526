"""The breach register: incidents, their timelines, and the subjects they affect.

`incidents` holds one row per personal-data breach: when it was discovered, what it
touched (dataset tables, categories, systems), the risk assessment, the counts lawful
computed, and when the authority and the people were told. `incident_events` is its
timeline (opened, contained, authority_notified, subjects_notified, closed, ...), one
row per entry, never changed. `incident_subjects` lists the people affected by the keyed
hash of one identity each (and lawful's subject ref and jurisdiction when lawful knows
them): no table here holds personal data in clear. The free text (summary, notes,
report) is written by the privacy team, who must keep personal data out of it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime
from lawful.subjects.tables import BigId

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, 3… per controller: `incident show 3`
    Column("ref", String(32), nullable=False, unique=True),  # public id (uuid4 hex)
    Column("state", String(20), nullable=False),  # open, closed
    Column("summary", Text, nullable=False),
    Column("discovered_at", UTCDateTime(), nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("high_risk", Boolean, nullable=True),  # NULL: not assessed yet
    Column("people_estimate", Integer, nullable=True),  # the team's own estimate
    Column("tables", JSON, nullable=False),  # ["shop.customers", ...]
    Column("categories", JSON, nullable=False),
    Column("systems", JSON, nullable=False),
    Column("jurisdictions", JSON(none_as_null=True), nullable=True),  # as given, else NULL
    Column("consequences", Text, nullable=True),
    Column("subjects_count", Integer, nullable=False),  # rows of incident_subjects
    Column("records_count", Integer, nullable=True),  # rows of the affected tables
    Column("by_jurisdiction", JSON, nullable=False),  # {"eu": 120, "": 3} ("" unknown)
    Column("authority_notified_at", UTCDateTime(), nullable=True),
    Column("subjects_notified_at", UTCDateTime(), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("report", Text, nullable=True),
    Column("report_hash", String(64), nullable=True),  # sha256 of the report, also audited
    Column("policy_version", Integer, nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("controller_id", "number"),
    Index("ix_incidents_controller_id_state", "controller_id", "state"),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(40), nullable=False),  # opened, contained, authority_notified, ...
    Column("note", Text, nullable=True),
    Index("ix_incident_events_incident_id_at", "incident_id", "at"),
)

incident_subjects = Table(
    "incident_subjects",
    metadata,
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("identity_hash", String(64), nullable=False),  # keyed hash of one identity
    Column("identity_kind", String(20), nullable=True),  # email, phone, ...; NULL if given hashed
    Column("source", String(200), nullable=False),  # dataset.table it came from, or "extra"
    Column("subject_ref", String(32), nullable=True),  # lawful's subject, when it knows them
    Column("jurisdiction", String(20), nullable=True),  # the subject's, when known
    PrimaryKeyConstraint("incident_id", "identity_hash"),
)
