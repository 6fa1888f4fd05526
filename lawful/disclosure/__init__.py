"""Disclosures: the recipients registry, the disclosure log with its checks, cross-border
transfer decisions, and the notices owed to recipients (GDPR Art. 15(1)(c), 19, 44-49;
PIPL Art. 38-39; CCPA §1798.120)."""

from lawful.disclosure.notify import NoticeConfigError, RecipientNotice, load_webhooks
from lawful.disclosure.recipients import Recipients, RecipientView
from lawful.disclosure.service import (
    DisclosureDecision,
    DisclosureError,
    DisclosureRecord,
    Disclosures,
    RecipientToNotify,
)
from lawful.disclosure.transfers import (
    SubjectConsent,
    TransferDecision,
    TransferLeg,
    applicable_jurisdictions,
    decide_transfer,
)

__all__ = [
    "DisclosureDecision",
    "DisclosureError",
    "DisclosureRecord",
    "Disclosures",
    "NoticeConfigError",
    "RecipientNotice",
    "RecipientToNotify",
    "RecipientView",
    "Recipients",
    "SubjectConsent",
    "TransferDecision",
    "TransferLeg",
    "applicable_jurisdictions",
    "decide_transfer",
    "load_webhooks",
]
