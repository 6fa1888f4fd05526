"""Consent receipts: one ledger record as an ISO/IEC TS 27560:2023 consent record.

ISO/IEC TS 27560 lists what a consent record must say: the notice shown and its
language, the purposes, the personal data, the controller, where the data is stored,
how long it is kept, the jurisdiction, the recipients, how to withdraw, the event and
its time, the validity, the type of consent and its state. lawful keeps a record small
(what happened, when, under which policy version) and rebuilds the rest from the
policy version the subject was shown, so a receipt states the terms as they were then,
not as they are now. States use the W3C Data Privacy Vocabulary (`dpv:ConsentGiven`...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lawful.consent.records import ConsentRecord, Topic
from lawful.policy import Policy, load_policy_text
from lawful.policy.model import RetentionRule
from lawful.policy.problems import PolicyError
from lawful.store import PolicyVersion

SCHEMA = "ISO/IEC TS 27560:2023"


def receipt(
    record: ConsentRecord,
    current: Policy,
    shown: PolicyVersion | None,
    versions: Mapping[int, PolicyVersion] | None = None,
) -> dict[str, Any]:
    """The receipt of `record`, with the terms of the policy version it was given under."""
    policy = _policy_of(shown) or current
    controller = policy.controller
    contacts = controller.contacts
    purpose = policy.purposes.get(record.key) if record.topic is Topic.consent else None
    return {
        "schema": SCHEMA,
        "recordId": record.ref,
        "piiPrincipalId": record.subject_ref,  # lawful's opaque subject reference
        "controller": {
            "name": controller.name,
            "tradeName": controller.trade_name,
            "country": controller.country,
            "contact": contacts.privacy_email or contacts.dpo_email or contacts.email,
            "address": contacts.address,
        },
        "notice": {
            "policyVersion": record.policy_version,
            "policyLabel": shown.label if shown else None,
            "policyHash": shown.content_hash if shown else None,
            "noticeHash": record.notice_hash,
            "language": record.language or (policy.languages[0] if policy.languages else None),
        },
        "purposes": [_purpose(policy, record, purpose)],
        "storageLocation": list(policy.transfers.storage) or [controller.country],
        "jurisdiction": record.jurisdiction or [str(j) for j in policy.jurisdictions],
        "withdrawalMethod": _withdrawal(policy),
        "consentType": "dpv:ExplicitlyExpressedConsent"
        if record.topic is Topic.consent
        and purpose is not None
        and purpose.consent
        and purpose.consent.separate
        else "dpv:ExpressedConsent",
        "event": [
            {
                "eventTime": record.at.isoformat(),
                "eventType": record.method,
                "eventBy": "parent or guardian"
                if record.method == "parent"
                or record.actor is not None
                or record.topic is Topic.parental
                else "data subject",
                "eventState": record.state.dpv,
            }
        ],
        "validity": {
            "from": record.at.isoformat(),
            "until": record.expires_at.isoformat() if record.expires_at else None,
        },
        "state": record.state.dpv,
        "evidence": record.evidence,
    }


def _purpose(policy: Policy, record: ConsentRecord, purpose: Any) -> dict[str, Any]:
    if purpose is None:
        # A preference (channel, list, cookie, opt-out...): what it is about, in words.
        return {
            "purpose": f"{record.topic}:{record.key}",
            "scope": record.scope or None,
        }
    retention = purpose.retention
    rule = policy.retention.get(retention) if isinstance(retention, str) else retention
    # Named by the purpose, or naming the purpose (as decisions count them).
    named = [r for r in purpose.recipients if r in policy.recipients]
    named += [
        r for r, rec in policy.recipients.items() if record.key in rec.purposes and r not in named
    ]
    recipients = [
        {
            "name": policy.recipients[r].name or r,
            "role": str(policy.recipients[r].role),
            "country": list(policy.recipients[r].country),
        }
        for r in named
    ]
    return {
        "purposeId": record.key,
        "purpose": purpose.name or purpose.description or record.key,
        "dataUse": str(purpose.use),
        "lawfulBasis": "dpv:Consent",
        "scope": record.scope or None,
        "personalData": list(purpose.categories),
        "retentionPeriod": _retention(rule),
        "recipients": recipients,
    }


def _retention(rule: RetentionRule | None) -> str | None:
    if rule is None:
        return None
    if rule.keep is not None:
        return f"{rule.keep} from {rule.from_}, then {rule.then}"
    return rule.criteria


def _withdrawal(policy: Policy) -> str:
    contacts = policy.controller.contacts
    ways = []
    if contacts.account_page:
        ways.append(f"account settings at {contacts.account_page}")
    if contacts.request_form:
        ways.append(f"the form at {contacts.request_form}")
    email = policy.requests.contact or contacts.privacy_email or contacts.email
    if email:
        ways.append(f"an email to {email}")
    if policy.marketing.unsubscribe.link:
        ways.append("the unsubscribe link in any marketing message")
    return "; ".join(ways) or "contact the controller"


def _policy_of(version: PolicyVersion | None) -> Policy | None:
    if version is None:
        return None
    try:
        return load_policy_text(version.text, f"<stored version {version.number}>").policy
    except PolicyError:
        return None  # written in an older policy language: the current terms are shown
