"""Data-subject requests, the durable jobs that carry them out, and what they send.

A request is found by its public `ref`; the person it is about by `subject_id` (when
lawful knows them) and always by `identity_hash`, the keyed hash of the identity given,
so a request for an unknown identity is stored and answered the same way (no account
enumeration). Raw values a request must keep (the address a code is sent to, the new
values of a rectification) are sealed with AES-GCM (`*_ciphertext` + `key_id`).

Execution is a job per request (`request_jobs`): claimed by a worker under a lease,
done step by step (`request_steps`), each step recorded when done, so a worker that
dies leaves a job another worker resumes without redoing finished steps.

No table here holds personal data in clear.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
)

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime
from lawful.subjects.tables import BigId

requests = Table(
    "requests",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("ref", String(32), nullable=False, unique=True),  # public id (uuid4 hex)
    Column("kind", String(30), nullable=False),  # a RequestKind value
    Column("state", String(30), nullable=False),  # a RequestState value
    Column("subject_id", BigId, ForeignKey("subjects.id"), nullable=True),  # None: unknown
    Column("identity_kind", String(20), nullable=False),  # email, phone, account...
    Column("identity_hash", String(64), nullable=False),  # keyed hash of the identity given
    Column("contact_ciphertext", LargeBinary, nullable=True),  # where to reach the person
    Column("params_ciphertext", LargeBinary, nullable=True),  # kind's parameters (JSON)
    Column("key_id", String(40), nullable=True),  # the key that sealed both
    Column("jurisdiction", String(20), nullable=True),
    Column("channel", String(20), nullable=False),  # api, cli, form, opendsr...
    Column("submitted_by", String(100), nullable=True),  # processor mode: the controller's agent
    Column("on_behalf", JSON(none_as_null=True), nullable=True),  # agent/parent: role, proof
    Column("policy_version", Integer, nullable=True),  # the policy in force when received
    Column("received_at", UTCDateTime(), nullable=False),
    Column("verified_at", UTCDateTime(), nullable=True),
    Column("verified_by", String(30), nullable=True),  # a Verification method
    Column("acknowledge_by", UTCDateTime(), nullable=True),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("extended_at", UTCDateTime(), nullable=True),
    Column("extension_reason", String(500), nullable=True),
    Column("paused_at", UTCDateTime(), nullable=True),  # clock stopped (awaiting clarification)
    Column("paused_days", Integer, nullable=False, server_default="0"),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("outcome", JSON(none_as_null=True), nullable=True),  # per step, counts and reasons
    Column("refusal", JSON(none_as_null=True), nullable=True),  # rule and text told the subject
    # An excessive request answered for a fee: fee, ground, amount, asked_at, paid_at, by.
    Column("fee", JSON(none_as_null=True), nullable=True),
    Column("receipt", JSON(none_as_null=True), nullable=True),  # signed, chained in the audit log
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_requests_controller_id_state_due_at", "controller_id", "state", "due_at"),
    # The repeat limit counts a person's requests of a kind within a period.
    Index("ix_requests_controller_id_identity_hash", "controller_id", "identity_hash"),
    Index("ix_requests_subject_id", "subject_id"),
)

# One job per request that has work to do. `state`: queued, running, done, failed.
# A worker claims a queued job, or a running one whose lease expired (its worker died).
request_jobs = Table(
    "request_jobs",
    metadata,
    Column("request_id", BigId, ForeignKey("requests.id"), primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("available_at", UTCDateTime(), nullable=False),  # not before (retry back-off)
    Column("lease_owner", String(64), nullable=True),  # the worker holding it
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("last_error", String(500), nullable=True),  # never personal data
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_request_jobs_state_available_at", "state", "available_at"),
)

# The steps of a job, in order. A step done is never run again.
request_steps = Table(
    "request_steps",
    metadata,
    Column("request_id", BigId, ForeignKey("requests.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("name", String(200), nullable=False),  # e.g. dataset:shop:erase, consent:withdraw
    Column("state", String(20), nullable=False),  # pending, done, failed, skipped
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("result", JSON(none_as_null=True), nullable=True),  # counts and reasons only
    PrimaryKeyConstraint("request_id", "seq"),
)

# One-time codes: only their keyed hash is kept; single use, expiring, attempts limited.
verification_codes = Table(
    "verification_codes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("request_id", BigId, ForeignKey("requests.id"), nullable=False),
    Column("channel", String(20), nullable=False),  # email, phone
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("used_at", UTCDateTime(), nullable=True),
    Index("ix_verification_codes_request_id", "request_id"),
)

# Messages to people (codes, acknowledgements, extensions, outcomes), queued here and
# handed to the configured sender; address and body sealed.
request_messages = Table(
    "request_messages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("request_id", BigId, ForeignKey("requests.id"), nullable=True),
    Column("template", String(50), nullable=False),  # code, acknowledged, extended, completed...
    Column("channel", String(20), nullable=False),  # email, sms, webhook
    Column("ciphertext", LargeBinary, nullable=False),  # address and body, sealed
    Column("key_id", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Index("ix_request_messages_sent_at", "sent_at"),
)

# Access and portability packages: a zip sealed with AES-GCM, downloaded through a
# signed link until `expires_at`, then its content is deleted (the row stays as proof).
request_packages = Table(
    "request_packages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("request_id", BigId, ForeignKey("requests.id"), nullable=False, unique=True),
    Column("content", LargeBinary, nullable=True),  # None once deleted
    Column("key_id", String(40), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the plaintext zip
    Column("size", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("downloaded_at", UTCDateTime(), nullable=True),
    Column("deleted_at", UTCDateTime(), nullable=True),
)
