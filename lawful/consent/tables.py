"""The consent ledger and the current state it leads to.

`consent_records` is append-only: every choice a subject makes (consent given,
refused, withdrawn, renewed; a channel or list unsubscribed; a cookie category
accepted; an opt-out of sale; an objection; a restriction) is one row, never
updated or deleted. `consent_state` holds the newest record per subject and topic,
written in the same transaction, so a decision reads one small row set.

A topic is what the choice is about:

| topic | key | scope |
| --- | --- | --- |
| consent | purpose name | '' or a channel (`email`) or a list (`list:news`) |
| channel | channel name (`email`, `sms`, …) | '' |
| list | marketing list name, or `*` for every list | '' |
| cookie | cookie category | device identity hash, or '' for the subject |
| opt_out | `sale`, `share`, `targeted_advertising`, `ad_tracking` | '' |
| objection | purpose name, or `*marketing` for all direct marketing | '' |
| restriction | `*` | '' |
| parental | `*` (a parent's consent for a child to use the service) | '' |
| recipient | recipient name (restricted by the subject) | '' |
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime
from lawful.subjects.tables import BigId

consent_records = Table(
    "consent_records",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("subject_id", BigId, ForeignKey("subjects.id"), nullable=False),
    Column("ref", String(32), nullable=False, unique=True),  # public id for receipts
    Column("topic", String(20), nullable=False),
    Column("key", String(100), nullable=False),
    Column("scope", String(100), nullable=False),
    Column("state", String(20), nullable=False),  # a W3C DPV consent status
    Column("method", String(20), nullable=False),  # form, banner, import, api, parent, ...
    Column("at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("policy_version", Integer, nullable=True),  # the version shown to the subject
    Column("notice_hash", String(64), nullable=True),  # sha256 of the text shown
    Column("language", String(20), nullable=True),
    Column("jurisdiction", String(20), nullable=True),
    Column("actor", String(64), nullable=True),  # identity hash of a parent or agent
    Column("evidence", JSON(none_as_null=True), nullable=True),
    Index("ix_consent_records_subject_id", "subject_id"),
    Index("ix_consent_records_controller_id_at", "controller_id", "at"),
)

consent_state = Table(
    "consent_state",
    metadata,
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("subject_id", BigId, ForeignKey("subjects.id"), nullable=False),
    Column("topic", String(20), nullable=False),
    Column("key", String(100), nullable=False),
    Column("scope", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("method", String(20), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("policy_version", Integer, nullable=True),
    Column("record_ref", String(32), nullable=False),  # the ledger record it comes from
    # subject first: a decision reads all of one subject's rows; batch reads use IN.
    PrimaryKeyConstraint("subject_id", "topic", "key", "scope"),
    Index("ix_consent_state_controller_id_topic_key", "controller_id", "topic", "key"),
)
