"""A short human summary of a policy, and the same facts as JSON, for `lawful check`."""

from __future__ import annotations

from typing import Any

from lawful.policy.durations import Duration
from lawful.policy.jurisdictions import JURISDICTIONS
from lawful.policy.model import Policy, RetentionRule
from lawful.policy.vocabulary import RequestKind


def effective_deadline(policy: Policy, kind: RequestKind, jurisdiction: str) -> Duration | None:
    """The deadline that binds: the policy's promise, or the law's when it is shorter or alone."""
    deadline = policy.requests.deadline
    promise = (
        deadline.by_kind.get(kind) or deadline.by_jurisdiction.get(jurisdiction) or deadline.default
    )
    law = JURISDICTIONS[jurisdiction].request_deadline_for(kind.value)
    if promise is None:
        return law
    if law is None:
        return promise
    return promise if promise <= law else law


def _basis(policy: Policy, name: str) -> str:
    purpose = policy.purposes[name]
    text = purpose.basis.value
    extra = [f"{j}: {b.value}" for j, b in purpose.basis_by_jurisdiction.items()]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _rule_text(rule: RetentionRule) -> str:
    if rule.keep is None:
        return f"no fixed period ({rule.criteria}), then {rule.then.value}"
    return f"{rule.keep} from {rule.from_}, then {rule.then.value}"


def summary(policy: Policy) -> dict[str, Any]:
    """The facts `lawful check` prints, as plain data (also the `--json` form)."""
    controller = policy.controller
    kinds = policy.requests.kinds
    return {
        "controller": {
            "id": controller.key,
            "name": controller.name,
            "roles": [r.value for r in controller.roles],
            "country": controller.country,
        },
        "version": policy.version,
        "effective": policy.effective.isoformat() if policy.effective else None,
        "jurisdictions": list(policy.jurisdictions),
        "purposes": {
            name: {
                "use": p.use,
                "basis": _basis(policy, name),
                "categories": len(p.categories),
                "recipients": list(p.recipients),
            }
            for name, p in policy.purposes.items()
        },
        "recipients": {
            name: {
                "role": r.role.value,
                "country": list(r.country),
                "safeguards": [s.value for s in r.safeguards],
            }
            for name, r in policy.recipients.items()
        },
        "retention": {name: _rule_text(rule) for name, rule in policy.retention_rules().items()},
        "requests": {
            "kinds": [k.value for k in kinds],
            "verification": [v.value for v in policy.requests.verification],
            "deadlines": {
                jur: {k.value: str(effective_deadline(policy, k, jur)) for k in kinds}
                for jur in policy.jurisdictions
            },
        },
        "children": {
            name: {
                "min_age": s.min_age,
                "by_jurisdiction": dict(s.min_age_by_jurisdiction),
                "below": [b.value for b in s.below_min_age],
            }
            for name, s in policy.subjects.items()
            if s.min_age is not None or s.min_age_by_jurisdiction
        },
    }


def render_summary(policy: Policy) -> list[str]:
    facts = summary(policy)
    c = facts["controller"]
    lines = [
        f"{c['name']} [{c['id']}] — {' and '.join(c['roles'])}, {c['country']}; "
        f"serves {', '.join(facts['jurisdictions'])}"
        + (f"; version {facts['version']}" if facts["version"] else "")
        + (f", effective {facts['effective']}" if facts["effective"] else ""),
        f"  purposes ({len(facts['purposes'])}):",
    ]
    width = max((len(n) for n in facts["purposes"]), default=0)
    for name, p in facts["purposes"].items():
        to = f"; to {', '.join(p['recipients'])}" if p["recipients"] else ""
        lines.append(
            f"    {name.ljust(width)}  {p['basis']}; {p['use']}; {p['categories']} categories{to}"
        )
    if facts["recipients"]:
        lines.append(f"  recipients ({len(facts['recipients'])}):")
        for name, r in facts["recipients"].items():
            safeguards = f"; {', '.join(r['safeguards'])}" if r["safeguards"] else ""
            lines.append(f"    {name}: {r['role']}, {'/'.join(r['country'])}{safeguards}")
    if facts["retention"]:
        lines.append(f"  retention ({len(facts['retention'])}):")
        for name, text in facts["retention"].items():
            lines.append(f"    {name}: {text}")
    req = facts["requests"]
    lines.append(
        f"  requests: {', '.join(req['kinds'])}; verified by {', '.join(req['verification'])}"
    )
    for jur, per_kind in req["deadlines"].items():
        groups: dict[str, list[str]] = {}
        for kind, text in per_kind.items():
            groups.setdefault(text, []).append(kind)
        parts = [
            f"{text}" if len(groups) == 1 else f"{text} ({', '.join(ks)})"
            for text, ks in groups.items()
        ]
        lines.append(f"    answer in {jur}: {'; '.join(parts)}")
    for name, child in facts["children"].items():
        ages = [str(child["min_age"])] if child["min_age"] is not None else []
        ages += [f"{j}: {a}" for j, a in child["by_jurisdiction"].items()]
        lines.append(
            f"  children: {name} at least {', '.join(ages)}; below: {', '.join(child['below'])}"
        )
    return lines
