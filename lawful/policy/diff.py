"""What changed between two versions of a policy, and which changes are material.

Material changes follow the list in seed 002 (Seestar Store, section VIII) and GDPR
Art. 13(3): the purposes, the categories of data and the manner of use; the main
recipients; transfers; the rights and how to exercise them; the controller's identity
and contacts. A material change to a consent-based purpose means its consent must be
renewed before the purpose may rely on it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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
    renew_consent: tuple[str, ...] = field(default=())  # consent purposes needing renewal

    @property
    def material(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.material)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "material": bool(self.material),
            "renew_consent": list(self.renew_consent),
        }


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def diff_policies(old: Policy, new: Policy) -> PolicyDiff:
    a = old.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    b = new.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    changes = [_classify(c, old, new) for c in _walk(a, b, ())]
    return PolicyDiff(tuple(changes), tuple(_renewals(changes, old, new)))


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


def _classify(change: Change, old: Policy, new: Policy) -> Change:
    reason = _reason(change)
    if reason:
        return Change(change.path, change.kind, change.old, change.new, True, reason)
    return change


def _reason(change: Change) -> str | None:
    path = change.path
    section = path[0]
    sub = path[2] if len(path) > 2 else None
    if section == "purposes":
        return _PURPOSE_MATERIAL.get(sub) if len(path) > 1 else _PURPOSE_MATERIAL[None]
    if section == "recipients":
        return _RECIPIENT_MATERIAL.get(sub) if len(path) > 1 else _RECIPIENT_MATERIAL[None]
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
    if section == "retention" and sub == "keep" and _longer(change):
        return "how long personal information is kept (longer)"
    if section == "signals" and change.new == "ignore":
        return "the rights to opt out (a privacy signal no longer honoured)"
    if section == "sale" and change.new is True:
        return "the manner in which personal information is used (sale or sharing)"
    if section == "cookies" and change.kind == "added" and len(path) == 2:
        return "the types of personal information collected (a new cookie category)"
    return None


def _requests_reason(change: Change) -> str | None:
    field_ = change.path[1] if len(change.path) > 1 else None
    if field_ == "kinds" and (change.kind == "removed" or _fewer(change)):
        return "the rights people have (a right no longer offered)"
    if field_ in ("verification", "contact", "fee", "repeat_limit"):
        return "how rights are exercised"
    if field_ == "deadline" and _longer(change):
        return "how rights are exercised (a longer deadline)"
    return None


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


def _renewals(changes: list[Change], old: Policy, new: Policy) -> list[str]:
    """Consent purposes of the new policy touched by a material change."""
    consent = [n for n, p in new.purposes.items() if Basis.consent in p.bases()]
    hit: set[str] = set()
    for change in changes:
        if not change.material:
            continue
        section = change.path[0]
        if section == "purposes" and len(change.path) > 1:
            name = str(change.path[1])
            # a purpose that becomes consent-based needs consent collected, not renewed
            if (
                name in consent
                and name in old.purposes
                and Basis.consent in old.purposes[name].bases()
            ):
                hit.add(name)
        elif section == "recipients" and len(change.path) > 1:
            recipient = str(change.path[1])
            hit.update(p for p in consent if recipient in new.purposes[p].recipients)
        elif section in ("controller", "transfers"):
            hit.update(p for p in consent if p in old.purposes)
    return sorted(hit)
