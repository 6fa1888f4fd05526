"""What a policy says, looked up the way the notice, the records of processing and the
consistency check all need it: which purposes a recipient serves, what it receives,
which categories a rule covers, the deadline promised for a request."""

from __future__ import annotations

from dataclasses import dataclass

from lawful.policy.countries import ANYWHERE
from lawful.policy.durations import Duration
from lawful.policy.jurisdictions import get_jurisdiction
from lawful.policy.model import Policy, Purpose, RetentionRule
from lawful.policy.vocabulary import RequestKind

# fideslang categories whose data is observed rather than given (the seeds' "collected
# automatically"): used when a purpose names no `sources`.
AUTOMATIC_PREFIXES = ("user.device", "user.behavior", "user.telemetry", "user.location")


def title(key: str, name: str | None = None) -> str:
    """A purpose's, recipient's or rule's display name: its `name`, else its key in words."""
    if name:
        return name
    words = key.replace("_", " ").replace("-", " ")
    return words[:1].upper() + words[1:]


def category_label(policy: Policy, key: str) -> str:
    """A category in words: a custom category's name or description, fideslang's name."""
    custom = policy.categories.get(key)
    if custom is not None:
        return custom.name or custom.description or title(key.rsplit(".", 1)[-1])
    entry = policy.taxonomy().categories.get(key)
    if entry is None:
        return key
    words = entry.name.removeprefix("User ").split()
    # "IP Address" -> "IP address": acronyms stay, other words are lower-cased
    words = [
        w if (w.isupper() and len(w) > 1) or i == 0 else w.lower() for i, w in enumerate(words)
    ]
    words = ["ID" if w.lower() == "id" else "IP" if w.lower() == "ip" else w for w in words]
    return " ".join(words) or key


def recipient_purposes(policy: Policy, name: str) -> list[str]:
    """The purposes a recipient receives data for: its own list, else those naming it."""
    spec = policy.recipients[name]
    if spec.purposes:
        return [p for p in spec.purposes if p in policy.purposes]
    return [p for p, purpose in policy.purposes.items() if name in purpose.recipients]


def recipient_categories(policy: Policy, name: str) -> list[str]:
    """What a recipient may receive: its `categories`, else its purposes' categories."""
    spec = policy.recipients[name]
    if spec.categories:
        return list(spec.categories)
    seen: dict[str, None] = {}
    for purpose in recipient_purposes(policy, name):
        seen.update(dict.fromkeys(policy.purposes[purpose].categories))
    return list(seen)


def is_abroad(policy: Policy, name: str) -> bool:
    """Whether a recipient may be outside the controller's country."""
    countries = [str(c) for c in policy.recipients[name].country]
    return any(c == ANYWHERE or c != policy.controller.country for c in countries)


def purpose_rule(policy: Policy, purpose_name: str) -> tuple[str, RetentionRule] | None:
    """The retention rule that applies to a purpose: its own, else a rule listing it."""
    purpose = policy.purposes[purpose_name]
    if isinstance(purpose.retention, RetentionRule):
        return f"purpose:{purpose_name}", purpose.retention
    if isinstance(purpose.retention, str) and purpose.retention in policy.retention:
        return purpose.retention, policy.retention[purpose.retention]
    for name, rule in policy.retention.items():
        if purpose_name in rule.purposes:
            return name, rule
    return None


def rule_categories(policy: Policy, name: str, rule: RetentionRule) -> set[str]:
    """The categories a retention rule covers: its own, and those of its purposes."""
    found = set(rule.categories)
    purposes = set(rule.purposes)
    if name.startswith("purpose:"):
        purposes.add(name.removeprefix("purpose:"))
    purposes |= {p for p, spec in policy.purposes.items() if spec.retention == name}
    for purpose in purposes:
        if purpose in policy.purposes:
            found |= set(policy.purposes[purpose].categories)
    return found


def rule_subjects(policy: Policy, name: str, rule: RetentionRule) -> set[str] | None:
    """The subject kinds a rule is for (None: every kind)."""
    if rule.subjects:
        return set(rule.subjects)
    kinds: set[str] = set()
    names = set(rule.purposes)
    if name.startswith("purpose:"):
        names.add(name.removeprefix("purpose:"))
    names |= {p for p, spec in policy.purposes.items() if spec.retention == name}
    for purpose in names:
        spec = policy.purposes.get(purpose)
        if spec is None or not spec.subjects:
            return None
        kinds |= set(spec.subjects)
    return kinds or None


def sources_of(purpose: Purpose, category: str) -> list[str]:
    """Where a purpose's category comes from: its `sources`, else guessed from the key.

    When a purpose names both `automatic` and other sources, observed categories (device,
    behaviour, telemetry, location) are the automatic ones and the rest come from the
    others.
    """
    observed = category.startswith(AUTOMATIC_PREFIXES)
    declared = [s.value for s in purpose.sources] or (["automatic"] if observed else ["subject"])
    if len(declared) > 1 and "automatic" in declared:
        return ["automatic"] if observed else [s for s in declared if s != "automatic"]
    return declared


@dataclass(frozen=True)
class DeadlineTerms:
    """The deadline for one kind of request in one jurisdiction, and where it comes from."""

    within: Duration | None  # None: neither the law nor the policy sets one
    source: str  # policy | law | none
    extension: Duration | None


def deadline_terms(policy: Policy, kind: str, jurisdiction: str) -> DeadlineTerms:
    """The policy's promise and the law's limit for a request, the shorter one.

    The same choice `lawful.requests.deadlines.compute_deadline` makes per request (the
    earlier day wins, the law on a tie), made on average lengths since there is no
    request date here; and the same extension rule (none where the law sets a deadline
    and allows none, nor for CCPA opt-outs).
    """
    law = get_jurisdiction(jurisdiction)
    kind = RequestKind(kind).value
    spec = policy.requests.deadline
    promise = (
        spec.by_kind.get(RequestKind(kind)) or spec.by_jurisdiction.get(law.key) or spec.default
    )
    limit = law.request_deadline_for(kind)
    opt_out = kind == "opt_out_sale" and law.opt_out_within is not None
    if limit is not None and (promise is None or limit.approx_days() <= promise.approx_days()):
        within, source = limit, "law"
    elif promise is not None:
        within, source = promise, "policy"
    else:
        within, source = None, "none"
    extension: Duration | None
    if opt_out or (law.request_deadline is not None and law.request_extension is None):
        extension = None
    else:
        extension = spec.extension or law.request_extension
        if spec.extension and law.request_extension and law.request_extension < spec.extension:
            extension = law.request_extension
    return DeadlineTerms(within, source, extension)
