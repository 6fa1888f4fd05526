"""What the consent ledger holds: topics, W3C DPV consent statuses, and one record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The W3C Data Privacy Vocabulary's consent statuses (dpv:ConsentStatus)."""

    requested = "requested"  # dpv:ConsentRequested: asked, no answer yet
    given = "given"  # dpv:ConsentGiven
    refused = "refused"  # dpv:ConsentRefused: asked and declined
    withdrawn = "withdrawn"  # dpv:ConsentWithdrawn: given, then taken back
    expired = "expired"  # dpv:ConsentExpired: its validity ran out
    invalidated = "invalidated"  # dpv:ConsentInvalidated: e.g. the purpose changed materially
    renewed = "renewed"  # dpv:RenewedConsentGiven: given again after expiry or invalidation

    @property
    def dpv(self) -> str:
        return _DPV[self]

    @property
    def valid(self) -> bool:
        """Whether this status, while not expired or invalidated, permits processing."""
        return self in (Status.given, Status.renewed)


_DPV = {
    Status.requested: "dpv:ConsentRequested",
    Status.given: "dpv:ConsentGiven",
    Status.refused: "dpv:ConsentRefused",
    Status.withdrawn: "dpv:ConsentWithdrawn",
    Status.expired: "dpv:ConsentExpired",
    Status.invalidated: "dpv:ConsentInvalidated",
    Status.renewed: "dpv:RenewedConsentGiven",
}


class Topic(StrEnum):
    """What a choice is about (see lawful/consent/tables.py for keys and scopes)."""

    consent = "consent"  # consent to a purpose (optionally one channel or list of it)
    channel = "channel"  # marketing by one channel: email, sms, ...
    list = "list"  # one marketing list, or `*` for all of them
    cookie = "cookie"  # one cookie category
    opt_out = "opt_out"  # sale, share, targeted_advertising, ad_tracking
    objection = "objection"  # GDPR Art. 21 objection to a purpose, or `*marketing`
    restriction = "restriction"  # GDPR Art. 18 restriction of processing
    parental = "parental"  # a parent's consent for a child to use the service
    recipient = "recipient"  # a recipient the subject restricted


@dataclass(frozen=True)
class ConsentRecord:
    """One row of the consent ledger: a choice, when and how it was made, and its evidence."""

    ref: str  # public id (uuid4 hex): receipts and APIs name a record by it
    subject_ref: str
    topic: Topic
    key: str
    scope: str
    state: Status
    method: str  # a ConsentMethod: form, checkbox, banner, email_link, import, api, parent, written
    at: datetime
    expires_at: datetime | None
    policy_version: int | None  # the policy version shown when the choice was made
    notice_hash: str | None  # sha256 of the notice text shown
    language: str | None
    jurisdiction: str | None
    actor: str | None  # identity hash of whoever acted for the subject (a parent, an agent)
    evidence: dict[str, Any] | None
