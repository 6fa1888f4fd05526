"""The CCPA table of categories: collected, sold, shared, disclosed (Serai's Appendix B).

Cal. Civ. Code §1798.110(c) and §1798.115(c) ask for the categories of personal
information collected, sold or shared, and disclosed for a business purpose. Each
category of the policy is classified by `Policy.legal_categories` (letters A–K, inherited
through the taxonomy); then, per letter:

* collected: a purpose uses a category with that letter;
* sold / shared: a purpose marked `sale` / `share` uses one, or a recipient marked so
  receives one;
* disclosed for a business purpose: a third party receives one, a third party being a
  recipient other than a service provider (`processor`), other users (`user`: what they
  see is publication) and public authorities (a disclosure the law compels is not one
  made for a business purpose, §1798.145(a));
* disclosed to service providers: a `processor` recipient receives one.

What a recipient receives is its `categories`, else the categories of its purposes.
"""

from __future__ import annotations

from dataclasses import dataclass

from lawful.notice.facts import recipient_categories
from lawful.policy.model import Policy

# The statute's names (§1798.140(v)(1)), as Serai's Appendix B lists them.
CCPA_NAMES = {
    "A": "Identifiers",
    "B": "Customer records",
    "C": "Protected classifications",
    "D": "Commercial information",
    "E": "Biometric information",
    "F": "Internet or network activity",
    "G": "Geolocation data",
    "H": "Audio, electronic, visual or similar information",
    "I": "Professional or employment-related information",
    "J": "Education information",
    "K": "Inferences and profiles",
}
SENSITIVE = "Sensitive personal information"

NOT_THIRD_PARTIES = frozenset({"processor", "user", "authority"})


@dataclass(frozen=True)
class CcpaRow:
    letter: str  # A-K, or "" for sensitive personal information
    name: str  # English msgid
    collected: bool
    sold: bool
    shared: bool
    disclosed: bool  # to third parties, for a business purpose
    service_providers: bool
    categories: tuple[str, ...]  # the policy's categories in this row

    def to_dict(self) -> dict[str, object]:
        return {
            "letter": self.letter,
            "name": self.name,
            "collected": self.collected,
            "sold": self.sold,
            "shared": self.shared,
            "disclosed_for_business_purpose": self.disclosed,
            "disclosed_to_service_providers": self.service_providers,
            "categories": list(self.categories),
        }


def _letters(policy: Policy, keys: set[str]) -> dict[str, set[str]]:
    """CCPA letter (or "" for sensitive) -> the categories of `keys` in it."""
    found: dict[str, set[str]] = {}
    for key in keys:
        try:
            legal = policy.legal_categories(key)
        except KeyError:
            continue
        for letter in legal.ccpa:
            found.setdefault(letter, set()).add(key)
        if legal.ccpa_sensitive:
            found.setdefault("", set()).add(key)
    return found


def ccpa_rows(policy: Policy) -> list[CcpaRow]:
    """One row per CCPA category A–K, and one for sensitive information when collected."""
    collected = _letters(policy, {c for p in policy.purposes.values() for c in p.categories})
    sold_keys = {c for p in policy.purposes.values() if p.sale for c in p.categories}
    shared_keys = {c for p in policy.purposes.values() if p.share for c in p.categories}
    third: set[str] = set()
    providers: set[str] = set()
    for name, spec in policy.recipients.items():
        received = set(recipient_categories(policy, name))
        if spec.sale:
            sold_keys |= received
        if spec.share:
            shared_keys |= received
        if spec.role.value == "processor":
            providers |= received
        elif spec.role.value not in NOT_THIRD_PARTIES:
            third |= received
    sold, shared = _letters(policy, sold_keys), _letters(policy, shared_keys)
    disclosed, served = _letters(policy, third), _letters(policy, providers)
    letters = [*CCPA_NAMES]
    if "" in collected:
        letters.append("")
    return [
        CcpaRow(
            letter=letter,
            name=CCPA_NAMES.get(letter, SENSITIVE),
            collected=letter in collected,
            sold=letter in sold,
            shared=letter in shared,
            disclosed=letter in disclosed,
            service_providers=letter in served,
            categories=tuple(sorted(collected.get(letter, ()))),
        )
        for letter in letters
    ]
