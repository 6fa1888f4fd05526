"""What changed between two versions of a policy, and which changes are material.

Material changes follow the list in seed 002 (Seestar Store, section VIII) and GDPR
Art. 13(3): the purposes, the categories of data and the manner of use; the ownership
and organisational structure; the main recipients and transfers; the rights and how to
exercise them; the controller's contacts and complaint channels. (The seed's sixth item,
an impact assessment finding a high risk, is not something a policy file states.)
A change that only narrows what is done (fewer categories, channels or countries, a
right added, a shorter deadline or retention period, a list merely reordered) is listed
but not material.

A material change touching a consent-based purpose means its consent must be renewed
(`renew_consent`), unless the purpose says `renew_on_material_change: false`. A purpose
that is new, or newly consent-based, has no consent to renew: it needs consent collected
(`collect_consent`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from lawful.policy.durations import Duration
from lawful.policy.model import Policy
from lawful.policy.problems import Path, format_path
from lawful.policy.vocabulary import Basis


@dataclass(frozen=True)
class Change:
    path: Path
    kind: str  # added | removed | changed
    old: Any = None
    new: Any = None
    material: bool = False
    reason: str = ""  # why it is material, in the seed's words

    def describe(self) -> str:
        where = format_path(self.path)
        if self.kind == "added":
            return f"{where} added: {_show(self.new)}"
        if self.kind == "removed":
            return f"{where} removed (was {_show(self.old)})"
        if isinstance(self.old, list) and isinstance(self.new, list):
            added = [v for v in self.new if v not in self.old]
            removed = [v for v in self.old if v not in self.new]
            parts = [
                f"{verb} {', '.join(_show(v) for v in items)}"
                for verb, items in (("added", added), ("removed", removed))
                if items
            ]
            if parts:
                return f"{where}: {'; '.join(parts)}"
            return f"{where}: reordered {_show(self.old)} → {_show(self.new)}"
        return f"{where}: {_show(self.old)} → {_show(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": format_path(self.path),
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "material": self.material,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PolicyDiff:
    changes: tuple[Change, ...]
    renew_consent: tuple[str, ...] = ()  # consent purposes whose consent must be renewed
    collect_consent: tuple[str, ...] = ()  # consent purposes with no earlier consent to renew

    @property
    def material(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.material)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "material": bool(self.material),
            "renew_consent": list(self.renew_consent),
            "collect_consent": list(self.collect_consent),
        }


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def diff_policies(old: Policy, new: Policy) -> PolicyDiff:
    a, b = (p.model_dump(mode="json", by_alias=True) for p in (old, new))
    short = [p.model_dump(mode="json", by_alias=True, exclude_defaults=True) for p in (old, new)]
    changes = [_classify(_concise(c, *short)) for c in _walk(a, b, ())]
    renew, collect = _consent(changes, old, new)
    return PolicyDiff(tuple(changes), renew, collect)


def _walk(a: Any, b: Any, path: Path) -> Iterator[Change]:
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in b:
                if a[key] not in (None, [], {}):
                    yield Change((*path, key), "removed", old=a[key])
            elif key not in a:
                if b[key] not in (None, [], {}):
                    yield Change((*path, key), "added", new=b[key])
            else:
                yield from _walk(a[key], b[key], (*path, key))
        return
    if a in (None, [], {}):
        yield Change(path, "added", new=b)
    elif b in (None, [], {}):
        yield Change(path, "removed", old=a)
    else:
        yield Change(path, "changed", old=a, new=b)


def _concise(change: Change, old_short: dict[str, Any], new_short: dict[str, Any]) -> Change:
    """Show a mapping that comes or goes by what it says, without every default key."""

    def lookup(tree: Any, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for key in change.path:
            if not isinstance(tree, dict) or key not in tree:
                return value
            tree = tree[key]
        return tree or value

    return replace(change, old=lookup(old_short, change.old), new=lookup(new_short, change.new))


# Field-level rules: (section, field or None for the entry itself) -> reason.
_PURPOSE_MATERIAL = {
    None: "the purposes for which personal information is processed",
    "use": "the purposes for which personal information is processed",
    "basis": "the manner in which personal information is used (lawful basis)",
    "basis_by_jurisdiction": "the manner in which personal information is used (lawful basis)",
    "categories": "the types of personal information processed",
    "subjects": "the people whose information is processed",
    "sources": "the manner in which personal information is collected",
    "channels": "the manner in which personal information is used (channels)",
    "automated_decision": "the manner in which personal information is used (automated decisions)",
    "sale": "the manner in which personal information is used (sale)",
    "share": "the manner in which personal information is used (sharing)",
    "targeted_advertising": "the manner in which personal information is used (targeted ads)",
    "recipients": "the primary recipients of personal information",
    "role": "the manner in which personal information is used (controller or processor)",
}
_RECIPIENT_MATERIAL = {
    None: "the primary recipients of personal information",
    "role": "the primary recipients of personal information",
    "country": "where personal information is transferred",
    "safeguards": "the safeguards for transfers",
    "purposes": "the primary recipients of personal information",
    "categories": "the primary recipients of personal information",
    "sale": "the primary recipients of personal information (sale)",
    "share": "the primary recipients of personal information (sharing)",
}
_NARROWABLE = {("purposes", "categories"), ("purposes", "channels"), ("recipients", "country")}
_RIGHTS_EXERCISE = (
    "verification", "contact", "fee", "repeat_limit", "exceptions", "authorised_agents",
)  # fmt: skip


def _classify(change: Change) -> Change:
    reason = None if _reordered(change) else _reason(change)
    return replace(change, material=True, reason=reason) if reason else change


def _reason(change: Change) -> str | None:
    path = change.path
    section = path[0]
    sub = path[2] if len(path) > 2 else None
    if (section, sub) in _NARROWABLE and not _grows(change):
        return None
    if section == "purposes":
        if sub == "retention":
            return _retention_reason(change, path[3] if len(path) > 3 else None)
        return _PURPOSE_MATERIAL.get(sub)
    if section == "recipients":
        return _RECIPIENT_MATERIAL.get(sub)
    if section == "transfers":
        return "where personal information is stored and transferred"
    if section == "controller":
        if len(path) > 1 and path[1] in ("contacts", "supervisory_authority", "representative"):
            return "the department responsible, contact information and complaint channels"
        if len(path) > 1 and path[1] in ("name", "country", "roles", "registration"):
            return "the ownership or organisational structure"
        return None
    if section == "jurisdictions":
        return "the rights that apply (jurisdictions served)"
    if section == "requests":
        return _requests_reason(change)
    if section == "subjects" and sub in ("min_age", "min_age_by_jurisdiction", "below_min_age"):
        return "how children's personal information is handled"
    if section == "retention" and len(path) > 2:
        return _retention_reason(change, sub)
    if section == "signals" and change.new == "ignore":
        return "the rights to opt out (a privacy signal no longer honoured)"
    if section == "sale" and change.new is True:
        return "the manner in which personal information is used (sale or sharing)"
    if section == "cookies" and change.kind == "added" and len(path) == 2:
        return "the types of personal information collected (a new cookie category)"
    if path[:2] == ("marketing", "unsubscribe") and change.new is False:
        return "how rights are exercised (a way to unsubscribe withdrawn)"
    return None


def _requests_reason(change: Change) -> str | None:
    field_ = change.path[1] if len(change.path) > 1 else None
    if field_ == "kinds" and (change.kind == "removed" or _fewer(change)):
        return "the rights people have (a right no longer offered)"
    if field_ in _RIGHTS_EXERCISE:
        return "how rights are exercised"
    deadline_field = change.path[2] if len(change.path) > 2 else None
    if field_ == "deadline" and deadline_field != "calendars" and _longer(change):
        return "how rights are exercised (a longer deadline)"
    return None


def _retention_reason(change: Change, field_: Any) -> str | None:
    """A retention rule, named under `retention:` or written inline under a purpose."""
    if field_ is None and change.kind == "changed":  # a purpose now follows another rule
        return "how long personal information is kept (another retention rule)"
    if field_ == "keep" and change.kind == "removed":  # criteria replace a fixed period
        return "how long personal information is kept (no fixed period any more)"
    if field_ == "keep" and _longer(change):
        return "how long personal information is kept (longer)"
    return None


def _reordered(change: Change) -> bool:
    old, new = change.old, change.new
    return (
        isinstance(old, list)
        and isinstance(new, list)
        and sorted(map(str, old)) == sorted(map(str, new))
    )


def _grows(change: Change) -> bool:
    """Something is added, not only taken away."""
    if change.kind != "changed":
        return change.kind == "added"
    old, new = change.old, change.new
    if isinstance(old, list) and isinstance(new, list):
        return any(v not in old for v in new)
    return True


def _fewer(change: Change) -> bool:
    old, new = change.old or [], change.new or []
    return isinstance(old, list) and isinstance(new, list) and bool(set(old) - set(new))


def _longer(change: Change) -> bool:
    if change.kind == "removed":
        return False
    try:
        if change.kind == "added":
            return True
        return Duration.parse(str(change.new)) > Duration.parse(str(change.old))
    except ValueError:
        return True


# --- consent ----------------------------------------------------------------------------


def _consent(
    changes: list[Change], old: Policy, new: Policy
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(consent purposes to renew, consent purposes to collect consent for afresh)."""

    def consent_based(policy: Policy, name: str) -> bool:
        purpose = policy.purposes.get(name)
        return purpose is not None and Basis.consent in purpose.bases()

    collect = [n for n in new.purposes if consent_based(new, n) and not consent_based(old, n)]
    renewable = {
        n
        for n, p in new.purposes.items()
        if consent_based(new, n)
        and consent_based(old, n)
        and (p.consent is None or p.consent.renew_on_material_change)
    }
    touched: set[str] = set()
    for change in changes:
        if change.material:
            touched |= _touched(change, old, new)
    return tuple(sorted(touched & renewable)), tuple(sorted(collect))


def _touched(change: Change, old: Policy, new: Policy) -> set[str]:
    """The purposes a material change concerns."""
    section = change.path[0]
    entry = str(change.path[1]) if len(change.path) > 1 else None
    if section in ("controller", "transfers"):
        return set(new.purposes)  # every consent was given to this controller, on these terms
    if section == "purposes" and entry:
        return {entry}
    if section in ("recipients", "retention", "cookies") and entry:
        before, after = _linked(old, section, entry), _linked(new, section, entry)
        if change.path[2:3] == ("purposes",):
            return before ^ after  # only the purposes that start or stop using it
        return before | after
    return set()


def _linked(policy: Policy, section: str, entry: str) -> set[str]:
    """Purposes tied to a recipient, retention rule or cookie category, named on either side.

    The entry's own `purposes:` lists them, and so does each purpose's field of the same
    name as the section (`recipients:`, `retention:`, `cookies:`).
    """
    item = getattr(policy, section).get(entry)
    if item is None:
        return set()
    naming = set()
    for name, purpose in policy.purposes.items():
        names = getattr(purpose, section)
        if entry == names or (isinstance(names, list) and entry in names):
            naming.add(name)
    return set(item.purposes) | naming
