"""The information GDPR Art. 15(1) and (2) give a person with the copy of their data.

Built from the policy for the data categories actually found for the person, so it tells
them about their data, not about everything the controller might hold: the purposes those
categories serve and their legal bases, the categories by name, the recipients (and, once
the disclosure log exists, the disclosures made), how long each category is kept, where
data not collected from them came from, automated decisions and their logic, the right
to complain to the supervisory authority, and transfers abroad with their safeguards.

A category found in a dataset matches a policy category that covers it or that it covers:
a column annotated `user.device` may hold what a purpose lists as `user.device.device_id`,
and telling a person about a purpose that may use their data is the safer error.

Everything returned is plain JSON (str, int, bool, None, lists and dicts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lawful.datasets.access import plain
from lawful.policy.jurisdictions import JURISDICTIONS
from lawful.policy.model import Policy, Purpose, Recipient, RetentionRule
from lawful.policy.taxonomy import Taxonomy, load_taxonomy
from lawful.policy.vocabulary import Source

__all__ = ["SOURCE_TEXT", "art15_information"]

# How each source reads to the person (Art. 15(1)(g): "any available information as to
# their source" when not collected from them).
SOURCE_TEXT: Mapping[str, str] = {
    Source.subject.value: "you gave it to us",
    Source.automatic.value: "collected automatically when you use the service",
    Source.third_party.value: "received from third parties",
    Source.employer.value: "received from your employer or the business you act for",
    Source.customer.value: "received from a customer of ours, on whose behalf we process it",
    Source.public.value: "from publicly available sources",
}

_COMPLAINT = (
    "You have the right to lodge a complaint with a supervisory authority, in particular "
    "in the country where you live, work or where the alleged infringement took place."
)


def art15_information(
    policy: Policy,
    categories: Iterable[str],
    *,
    jurisdiction: str | None = None,
    disclosures: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """What Art. 15 says the person must be told, for the `categories` found about them.

    `categories` are fideslang keys (as annotated in the datasets); `jurisdiction` (one
    the policy serves) picks the legal basis that applies there and what "abroad" means;
    `disclosures` are entries of the disclosure log, passed through as plain values.
    """
    found = _categories(categories)
    if jurisdiction is not None and jurisdiction not in policy.jurisdictions:
        raise ValueError(
            f"jurisdiction {jurisdiction!r} is not served by the policy of "
            f"{policy.controller.key}; use one of {', '.join(policy.jurisdictions)}"
        )
    if isinstance(disclosures, str | bytes) or not isinstance(disclosures, Sequence):
        raise TypeError("disclosures must be a list of dicts (entries of the disclosure log)")
    taxonomy = policy.taxonomy()
    uses = load_taxonomy().uses

    # For each purpose, the found categories it uses; purposes using none are left out.
    using: dict[str, list[str]] = {}
    for name, purpose in policy.purposes.items():
        matched = [c for c in found if _uses(taxonomy, purpose.categories, c)]
        if matched:
            using[name] = matched
    by_category = {c: [p for p, cats in using.items() if c in cats] for c in found}
    recipients = _recipients(policy, taxonomy, using)

    return {
        "controller": _controller(policy),
        "policy": {
            "version": policy.version,
            "effective": policy.effective.isoformat() if policy.effective else None,
        },
        "jurisdiction": jurisdiction,
        "purposes": [
            _purpose(name, policy.purposes[name], cats, jurisdiction, uses)
            for name, cats in using.items()
        ],
        "categories": [
            _category(policy, taxonomy, key, by_category[key], recipients) for key in found
        ],
        "recipients": [entry for _, entry in recipients],
        "disclosures": [{str(k): _plain(v) for k, v in d.items()} for d in disclosures],
        "retention": [
            {
                "category": key,
                "name": _category_name(taxonomy, key),
                "rules": _retention(policy, taxonomy, key, by_category[key]),
            }
            for key in found
        ],
        "sources": _sources(policy, using),
        "automated_decisions": [
            {
                "purpose": name,
                "purpose_name": policy.purposes[name].name or policy.purposes[name].description,
                "significant": automated.significant,
                "logic": automated.logic,
                "human_review": automated.human_review,
                "categories": cats,
            }
            for name, cats in using.items()
            if (automated := policy.purposes[name].automated) is not None
        ],
        "complaint": _complaint(policy, jurisdiction),
        "transfers": _transfers(policy, jurisdiction, recipients),
        "rights": [str(kind) for kind in policy.requests.kinds],
    }


class Art15Cache:
    """`art15_information` for one policy, worked out once per set of categories and
    jurisdiction: everything in it but the disclosures depends on nothing else, and a busy
    controller's access requests find the same few sets of categories again and again."""

    def __init__(self, policy: Policy, *, size: int = 256) -> None:
        self.policy = policy
        self.size = size
        self._known: dict[tuple[tuple[str, ...], str | None], dict[str, Any]] = {}

    def information(
        self,
        categories: Iterable[str],
        *,
        jurisdiction: str | None = None,
        disclosures: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """As `art15_information(policy, ...)`; the answer must not be changed in place."""
        key = (tuple(_categories(categories)), jurisdiction)
        known = self._known.get(key)
        if known is None:
            if len(self._known) >= self.size:
                self._known.clear()
            known = art15_information(self.policy, key[0], jurisdiction=jurisdiction)
            self._known[key] = known
        if isinstance(disclosures, str | bytes) or not isinstance(disclosures, Sequence):
            raise TypeError("disclosures must be a list of dicts (entries of the disclosure log)")
        if not disclosures:
            return known
        return {
            **known,
            "disclosures": [{str(k): _plain(v) for k, v in d.items()} for d in disclosures],
        }


# --- pieces -------------------------------------------------------------------------------


def _categories(categories: Iterable[str]) -> list[str]:
    if isinstance(categories, str | bytes):
        raise TypeError(
            "categories must be a list of category keys, e.g. ['user.contact.email'], "
            "not a single string"
        )
    keys = list(categories)
    for key in keys:
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"categories must be fideslang keys as text, e.g. 'user.contact.email'; "
                f"got {type(key).__name__}"
            )
    return sorted(set(keys))


def _uses(taxonomy: Taxonomy, declared: Iterable[str], found: str) -> bool:
    return any(taxonomy.covers(d, found) or taxonomy.covers(found, d) for d in declared)


def _category_name(taxonomy: Taxonomy, key: str) -> str:
    entry = taxonomy.categories.get(key)
    if entry is None:
        return key
    # A policy's custom category without a name reads better by its description.
    if entry.name == key and entry.description:
        return entry.description
    return entry.name


def _controller(policy: Policy) -> dict[str, Any]:
    controller = policy.controller
    contacts = controller.contacts
    return {
        "id": controller.key,
        "name": controller.name,
        "trade_name": controller.trade_name,
        "country": controller.country,
        "email": policy.requests.contact or contacts.privacy_email or contacts.email,
        "dpo_email": contacts.dpo_email,
        "dpo_name": contacts.dpo_name,
        "address": contacts.address,
        "phone": contacts.phone,
        "request_form": contacts.request_form,
        "representative": controller.representative,
    }


def _purpose(
    name: str,
    purpose: Purpose,
    categories: list[str],
    jurisdiction: str | None,
    uses: Mapping[str, Any],
) -> dict[str, Any]:
    use = uses.get(purpose.use)
    retention = purpose.retention
    return {
        "key": name,
        "name": purpose.name,
        "description": purpose.description,
        "use": purpose.use,
        "use_name": use.name if use is not None else purpose.use,
        # The basis where the person is; without a jurisdiction, the default and the others.
        "basis": str(purpose.basis_in(jurisdiction) if jurisdiction else purpose.basis),
        "basis_by_jurisdiction": {j: str(b) for j, b in purpose.basis_by_jurisdiction.items()},
        "legitimate_interest": purpose.legitimate_interest,
        # processor: the controller is our customer, who answers for this purpose.
        "role": str(purpose.role),
        "categories": categories,
        "required": purpose.required,
        "sources": [str(s) for s in purpose.sources],
        "recipients": list(purpose.recipients),
        "retention": retention if isinstance(retention, str) else None,
        "automated_decision": purpose.automated is not None,
        "sale": purpose.sale,
        "share": purpose.share,
    }


def _category(
    policy: Policy,
    taxonomy: Taxonomy,
    key: str,
    purposes: list[str],
    recipients: list[tuple[Recipient, dict[str, Any]]],
) -> dict[str, Any]:
    entry = taxonomy.categories.get(key)
    legal = policy.legal_categories(key) if entry is not None else None
    return {
        "key": key,
        "name": _category_name(taxonomy, key),
        "description": entry.description if entry is not None else None,
        "purposes": purposes,
        "recipients": [r["key"] for _, r in recipients if key in r["categories"]],
        "gdpr_special": legal.gdpr_special if legal else None,
        "ccpa": sorted(legal.ccpa) if legal else [],
        "ccpa_sensitive": legal.ccpa_sensitive if legal else False,
    }


def _recipients(
    policy: Policy, taxonomy: Taxonomy, using: dict[str, list[str]]
) -> list[tuple[Recipient, dict[str, Any]]]:
    """The recipients that receive some found category, with which and for what."""
    out = []
    for key, recipient in policy.recipients.items():
        # Named by a purpose, or naming the purpose (as decisions and receipts count them).
        purposes = [
            p for p in using if key in policy.purposes[p].recipients or p in recipient.purposes
        ]
        if not purposes:
            continue
        received = sorted({c for p in purposes for c in using[p]})
        if recipient.categories:
            received = [c for c in received if _uses(taxonomy, recipient.categories, c)]
        if not received:
            continue
        out.append(
            (
                recipient,
                {
                    "key": key,
                    "name": recipient.name or recipient.description or key,
                    "description": recipient.description,
                    "role": str(recipient.role),
                    "countries": list(recipient.country),
                    "safeguards": [str(s) for s in recipient.safeguards],
                    "purposes": purposes,
                    "categories": received,
                    "sale": recipient.sale,
                    "share": recipient.share,
                    "privacy_policy": recipient.privacy_policy,
                },
            )
        )
    return out


def _retention(
    policy: Policy, taxonomy: Taxonomy, key: str, purposes: list[str]
) -> list[dict[str, Any]]:
    """The retention rules that cover category `key` through its purposes or by category."""
    named = {p.retention for n in purposes if isinstance((p := policy.purposes[n]).retention, str)}
    rules = []
    for name, rule in policy.retention_rules().items():
        by_category = not rule.categories or _uses(taxonomy, rule.categories, key)
        by_purpose = not rule.purposes or bool(set(rule.purposes) & set(purposes))
        # A rule naming neither categories nor purposes covers its subjects' data.
        if not (name in named or (by_category and by_purpose)):
            continue
        rules.append(_rule(policy, name, rule))
    return rules


def _rule(policy: Policy, name: str, rule: RetentionRule) -> dict[str, Any]:
    if rule.keep is not None:
        period = f"{rule.keep} from {_anchor(policy, rule.from_)}, then {rule.then}"
    else:
        period = rule.criteria or ""
    return {
        "rule": name,
        "description": rule.description,
        "period": period,
        "keep": str(rule.keep) if rule.keep is not None else None,
        "keep_iso": rule.keep.iso() if rule.keep is not None else None,
        "from": rule.from_,
        "then": str(rule.then),
        "criteria": rule.criteria,
        "law": rule.law,
        "exceptions": [str(e) for e in rule.exceptions],
        "subjects": list(rule.subjects),
    }


_ANCHORS = {
    "collected": "collection",
    "last_activity": "your last activity",
    "contract_end": "the end of the contract",
    "account_closed": "the closing of the account",
}


def _anchor(policy: Policy, anchor: str) -> str:
    # A declared event reads better by its meaning ("the order was completed").
    return policy.events.get(anchor) or _ANCHORS.get(anchor) or anchor.replace("_", " ")


def _sources(policy: Policy, using: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Where data not collected from the person came from, per source."""
    found: dict[str, dict[str, Any]] = {}
    for name, cats in using.items():
        for source in policy.purposes[name].sources:
            if source is Source.subject:
                continue
            entry = found.setdefault(
                str(source),
                {
                    "source": str(source),
                    "description": SOURCE_TEXT.get(str(source), str(source)),
                    "purposes": [],
                    "categories": [],
                },
            )
            entry["purposes"].append(name)
            entry["categories"] = sorted({*entry["categories"], *cats})
    return [found[s.value] for s in Source if s.value in found]


def _complaint(policy: Policy, jurisdiction: str | None) -> dict[str, Any]:
    authority = policy.controller.supervisory_authority
    return {
        "authority": None
        if authority is None
        else {"name": authority.name, "url": authority.url, "country": authority.country},
        "law": JURISDICTIONS[jurisdiction].law if jurisdiction else None,
        "text": _COMPLAINT,
    }


def _transfers(
    policy: Policy, jurisdiction: str | None, recipients: list[tuple[Recipient, dict[str, Any]]]
) -> dict[str, Any]:
    """Where the data goes outside the person's jurisdiction (or the controller's country)."""
    law = JURISDICTIONS[jurisdiction] if jurisdiction else None
    home = set(law.countries) if law is not None and law.countries else {policy.controller.country}
    storage = list(policy.transfers.storage) or [policy.controller.country]
    rules = policy.transfers.rules
    if jurisdiction is not None:
        rules = {jurisdiction: rules[jurisdiction]} if jurisdiction in rules else {}
    return {
        "home": sorted(home),
        "storage": storage,
        "storage_abroad": [c for c in storage if c not in home],
        "recipients_abroad": [
            {
                "recipient": entry["key"],
                "name": entry["name"],
                "countries": [c for c in recipient.country if c == "*" or c not in home],
                "safeguards": entry["safeguards"],
            }
            for recipient, entry in recipients
            if any(c == "*" or c not in home for c in recipient.country)
        ],
        "rules": {
            j: {
                "require": [str(s) for s in rule.require],
                "accept": [str(s) for s in rule.accept],
                "deidentify": rule.deidentify,
            }
            for j, rule in rules.items()
        },
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return plain(value)
