"""The disclosure log and the notices owed to recipients (GDPR Art. 19).

`disclosures` holds one row per subject and disclosure: who (the subject's id when
lawful knows them, always the keyed hash of the identity given), to which recipient,
for what purpose, which categories, to which country and under which safeguard, when,
and in which batch. No raw personal data: categories are taxonomy keys, the person is a
keyed hash. `ref` is the disclosure's public id: the application may send it with the
data, so a recipient told of a later erasure knows which records it concerns.

`recipient_notices` are the Art. 19 notices of a rectification or erasure to the
recipients that received the data: sent to a webhook, or queued for an operator or a
worker to send, each marked sent when it went.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, false

from lawful.store.tables import metadata
from lawful.store.types import UTCDateTime
from lawful.subjects.tables import BigId

disclosures = Table(
    "disclosures",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("ref", String(32), nullable=False, unique=True),  # public id (uuid4 hex)
    Column("batch", String(32), nullable=False),  # one id per disclose / disclose_many call
    Column("subject_id", BigId, ForeignKey("subjects.id"), nullable=True),  # None: unknown
    Column("identity_hash", String(64), nullable=True),  # keyed hash of the identity given
    Column("recipient", String(100), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("categories", JSON(none_as_null=True), nullable=False),  # taxonomy keys
    Column("country", String(200), nullable=False),  # the recipient's countries, ',' joined
    Column("jurisdictions", String(100), nullable=True),  # laws the transfer was checked under
    Column("safeguard", String(200), nullable=True),  # what the transfer relied on, ',' joined
    Column("deidentified", Boolean, nullable=False, server_default=false()),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_disclosures_controller_id_subject_id", "controller_id", "subject_id"),
    Index("ix_disclosures_controller_id_identity_hash", "controller_id", "identity_hash"),
    Index("ix_disclosures_controller_id_batch", "controller_id", "batch"),
)

recipient_notices = Table(
    "recipient_notices",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("controller_id", Integer, ForeignKey("controllers.id"), nullable=False),
    Column("ref", String(32), nullable=False, unique=True),
    Column("subject_id", BigId, ForeignKey("subjects.id"), nullable=True),
    Column("identity_hash", String(64), nullable=True),
    Column("recipient", String(100), nullable=False),
    Column("change", String(20), nullable=False),  # rectification or erasure
    Column("request_ref", String(64), nullable=False),  # the request that made the change
    Column("categories", JSON(none_as_null=True), nullable=False),
    Column("disclosure_refs", JSON(none_as_null=True), nullable=False),  # what it received
    Column("channel", String(20), nullable=False),  # webhook or queue
    Column("state", String(20), nullable=False),  # queued or sent
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", String(500), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Index("ix_recipient_notices_controller_id_state", "controller_id", "state"),
    Index("ix_recipient_notices_controller_id_subject_id", "controller_id", "subject_id"),
)
