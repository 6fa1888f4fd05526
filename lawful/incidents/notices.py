"""The notices of a breach, drafted from Jinja2 templates in plain words.

To the supervisory authority, what GDPR Art. 33(3) asks: the nature of the breach with
the categories and approximate numbers of people and records concerned, a contact point,
the likely consequences, and the measures taken or proposed. To the people affected,
what Art. 34(2) asks, and what Seestar's policy promises (section IV.6): what happened,
the possible impact, the measures taken or to be taken, what the person can do to
protect themselves, the remedies offered, and how to reach the controller. One draft
serves every person affected: it needs nothing about any one of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from lawful.policy import Policy

if TYPE_CHECKING:
    from lawful.incidents.service import Incident

TEMPLATE_DIR = Path(__file__).with_name("templates")

# Per category (the first key that starts the category wins): the likely consequences,
# and what a person can do about them, in plain words.
_RISKS: tuple[tuple[str, str, str], ...] = (
    (
        "user.authorization.credentials",
        "someone could sign in to your account",
        "change your password here and wherever you used the same one",
    ),
    (
        "user.financial",
        "fraudulent payments or charges",
        "watch your bank and card statements and tell your bank of any payment you did not make",
    ),
    (
        "user.payment",
        "fraudulent payments or charges",
        "watch your bank and card statements and tell your bank of any payment you did not make",
    ),
    (
        "user.government_id",
        "identity theft",
        "be wary of accounts or credit opened in your name; your local authority can advise",
    ),
    (
        "user.contact.email",
        "unwanted email and messages pretending to come from us (phishing)",
        "be wary of messages asking for passwords or payment; we never ask for your password",
    ),
    (
        "user.contact.phone_number",
        "unwanted calls or text messages, some pretending to be us",
        "do not give codes or payment details to anyone who calls you unexpectedly",
    ),
    (
        "user.contact.address",
        "unwanted post, or someone learning where you live",
        "be wary of letters or parcels you did not expect",
    ),
    (
        "user.demographic.date_of_birth",
        "your details being used to impersonate you",
        "be wary of anyone who uses your date of birth to prove they are us",
    ),
    (
        "user.health_and_medical",
        "others learning about your health",
        "contact us if you are worried about who may have seen this",
    ),
    (
        "user.behavior.purchase_history",
        "others learning what you bought",
        "be wary of messages that mention your orders to gain your trust",
    ),
    (
        "user.device.ip_address",
        "your approximate location being known",
        "no action is needed in most cases",
    ),
    (
        "user.content",
        "others reading what you wrote to us",
        "contact us if what you wrote contained anything sensitive",
    ),
    (
        "user.name",
        "messages that use your name to seem genuine",
        "be wary of unexpected messages that greet you by name",
    ),
)
_DEFAULT_RISK = (
    "your personal data being used by people who should not have it",
    "be wary of unexpected messages about your account and contact us with any concern",
)


@dataclass(frozen=True)
class Notice:
    """A drafted notice: to whom, its subject line and text, and the text's sha256."""

    audience: str  # authority or subjects
    subject: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def risks(categories: list[str]) -> tuple[list[str], list[str]]:
    """The likely consequences and the advice for these categories, each once, in order."""
    consequences: dict[str, None] = {}
    advice: dict[str, None] = {}
    for category in categories:
        found = next(
            (r for r in _RISKS if category == r[0] or category.startswith(r[0] + ".")), None
        )
        if found is None:
            # a broader category (user.contact) covers the risks of what it holds
            found_all = [r for r in _RISKS if r[0].startswith(category + ".")]
            pairs = [(c, a) for _, c, a in found_all] or [_DEFAULT_RISK]
        else:
            pairs = [(found[1], found[2])]
        for c, a in pairs:
            consequences[c] = None
            advice[a] = None
    return list(consequences), list(advice)


def draft(policy: Policy, incident: Incident, audience: str) -> Notice:
    """The notice to `audience` ("authority" or "subjects") for this incident."""
    if audience not in ("authority", "subjects"):
        raise ValueError(f"a notice goes to the authority or the subjects, not {audience!r}")
    text = _templates().get_template(f"{audience}.txt").render(**_fields(policy, incident))
    subject, _, body = text.partition("\n")
    return Notice(audience, subject.removeprefix("Subject: ").strip(), body.strip("\n") + "\n")


def _fields(policy: Policy, incident: Incident) -> dict[str, Any]:
    controller = policy.controller
    contacts = controller.contacts
    consequences, advice = risks(list(incident.categories))
    if incident.consequences:
        consequences = [incident.consequences, *consequences]
    return {
        "incident": incident,
        "category_names": [_category_name(policy, c) for c in incident.categories],
        "controller": {
            "name": controller.name,
            "trade_name": controller.trade_name,
            "country": controller.country,
            "registration": controller.registration,
            "dpo_name": contacts.dpo_name,
            "dpo_email": contacts.dpo_email,
            "privacy_email": contacts.privacy_email or contacts.email,
            "phone": contacts.phone,
            "address": contacts.address,
            "website": contacts.website,
        },
        "authority": controller.supervisory_authority,
        "channels": [str(c) for c in policy.breaches.channels],
        "consequences": consequences,
        "advice": advice,
        "measures": [
            e.note for e in incident.events if e.kind in ("contained", "measure") and e.note
        ],
        "people": incident.subjects_count or incident.people_estimate,
        "estimate": incident.people_estimate,
        "requests_contact": policy.requests.contact or contacts.privacy_email or contacts.email,
    }


def _category_name(policy: Policy, key: str) -> str:
    """A category in words ("Email", from fideslang's name), with its key for the record."""
    entry = policy.taxonomy().categories.get(key)
    name = getattr(entry, "name", None) if entry is not None else None
    return f"{name} ({key})" if name and name != key else key


def _moment(value: datetime) -> str:
    return value.strftime("%d %B %Y, %H:%M UTC").lstrip("0")


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["moment"] = _moment
    env.filters["number"] = lambda n: f"{n:,}"
    return env
