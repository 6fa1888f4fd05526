"""The recipients registry: the policy's third parties, each with what it may receive.

A read-only view of `policy.recipients`. A recipient receives data for its purposes
(those naming it in `recipients`, plus its own `purposes` list) and, per purpose, the
categories that purpose uses, narrowed to the recipient's own `categories` when it
lists them. A category requested for a disclosure is allowed when one of those covers
it (equal to it or an ancestor of it in the taxonomy): a purpose using `user.contact`
may send `user.contact.email`, never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from lawful.disclosure.transfers import recipient_purposes
from lawful.policy.model import Policy
from lawful.policy.taxonomy import Taxonomy


@dataclass(frozen=True)
class RecipientView:
    """One recipient as the policy declares it, with what it may receive and why."""

    key: str
    name: str
    description: str | None
    role: str
    countries: tuple[str, ...]
    safeguards: tuple[str, ...]
    sale: bool
    share: bool
    essential: bool
    privacy_policy: str | None
    # purpose -> the categories this recipient may receive for it
    purposes: Mapping[str, tuple[str, ...]]

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category it may receive, for any of its purposes."""
        return tuple(dict.fromkeys(c for cats in self.purposes.values() for c in cats))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "role": self.role,
            "countries": list(self.countries),
            "safeguards": list(self.safeguards),
            "sale": self.sale,
            "share": self.share,
            "essential": self.essential,
            "privacy_policy": self.privacy_policy,
            "purposes": {p: list(c) for p, c in self.purposes.items()},
        }


class Recipients(Mapping[str, RecipientView]):
    """The policy's recipients by key (a read-only mapping)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.taxonomy: Taxonomy = policy.taxonomy()
        self._views = MappingProxyType({key: self._view(key) for key in policy.recipients})

    def __getitem__(self, key: str) -> RecipientView:
        return self._views[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def allowed_categories(self, recipient: str, purpose: str) -> tuple[str, ...]:
        """What `recipient` may receive for `purpose` (empty when not declared for it)."""
        return self._views[recipient].purposes.get(purpose, ())

    def not_allowed(self, recipient: str, purpose: str, categories: list[str]) -> list[str]:
        """The categories among `categories` that the recipient may not receive for `purpose`."""
        allowed = self.allowed_categories(recipient, purpose)
        return [c for c in categories if not any(self.taxonomy.covers(a, c) for a in allowed)]

    def _view(self, key: str) -> RecipientView:
        spec = self.policy.recipients[key]
        purposes: dict[str, tuple[str, ...]] = {}
        for name in recipient_purposes(self.policy, key):
            used = list(self.policy.purposes[name].categories)
            if spec.categories:
                used = _narrow(self.taxonomy, used, list(spec.categories))
            purposes[name] = tuple(used)
        return RecipientView(
            key=key,
            name=spec.name or key,
            description=spec.description,
            role=str(spec.role),
            countries=tuple(str(c) for c in spec.country),
            safeguards=tuple(str(s) for s in spec.safeguards),
            sale=spec.sale,
            share=spec.share,
            essential=spec.essential,
            privacy_policy=spec.privacy_policy,
            purposes=MappingProxyType(purposes),
        )


def _narrow(taxonomy: Taxonomy, used: list[str], own: list[str]) -> list[str]:
    """The meet of a purpose's categories and a recipient's: the narrower of each pair.

    A purpose using `user.contact` and a recipient limited to `user.contact.email` give
    `user.contact.email`; a purpose using `user.payment` and a recipient allowed
    `user.payment` give `user.payment`.
    """
    found: dict[str, None] = {}
    for u in used:
        for o in own:
            if taxonomy.covers(u, o):
                found[o] = None
            elif taxonomy.covers(o, u):
                found[u] = None
    return list(found)
