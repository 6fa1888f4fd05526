"""When the authority and the people affected must be told of a breach.

Per jurisdiction the incident concerns, two deadlines, each counted from discovery:

- to the supervisory authority: the law's (`Jurisdiction.breach_authority_within`: GDPR
  and UK GDPR 72 hours, LGPD 3 business days) and the policy's own promise
  (`breaches.notify_authority_within`); the earlier instant wins. PIPL Art. 57 says
  "immediately" with no period: without a promise of the policy the deadline has no
  fixed time and is shown as due at once.
- to the people affected: the law's (`breach_subjects_within`: CCPA 30 days, LGPD 3
  business days) and the policy's (`breaches.notify_subjects_within`); where neither
  sets a period, "without undue delay". Under the GDPR and the UK GDPR people are told
  only when the risk to them is high (Art. 34(1)), so the deadline waits for the risk
  assessment; a policy that writes `notify_subjects: true` promises to tell them anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lawful.policy import Policy
from lawful.policy.durations import Duration
from lawful.policy.jurisdictions import Jurisdiction, get_jurisdiction

AUTHORITY = "authority"
SUBJECTS = "subjects"

# Whether each law asks for a notice to the authority at all, and in what words.
_AUTHORITY_LAW = {
    "eu": (True, "GDPR Art. 33(1)"),
    "uk": (True, "UK GDPR Art. 33(1)"),
    "cn": (True, "PIPL Art. 57: immediately"),
    "br": (True, "Resolução CD/ANPD nº 15/2024 Art. 6"),
    # Cal. Civ. Code §1798.82(f): a sample copy to the Attorney General when more than
    # 500 residents are told, counted from the notice to them: not a discovery deadline.
    "us-ca": (
        False,
        "Cal. Civ. Code §1798.82(f): a copy to the Attorney General over 500 residents",
    ),
    "other": (False, "no law named"),
}
# Whether each law asks to tell the people: "high_risk" (only then), "always", "never".
_SUBJECTS_LAW = {
    "eu": ("high_risk", "GDPR Art. 34(1): without undue delay when the risk is high"),
    "uk": ("high_risk", "UK GDPR Art. 34(1): without undue delay when the risk is high"),
    "cn": ("always", "PIPL Art. 57"),
    "br": ("always", "Resolução CD/ANPD nº 15/2024 Art. 9"),
    "us-ca": ("always", "Cal. Civ. Code §1798.82(a)"),
    "other": ("never", "no law named"),
}


@dataclass(frozen=True)
class BreachDeadline:
    """One notice owed for an incident: to whom, under which law, by when."""

    jurisdiction: str
    audience: str  # authority or subjects
    required: bool | None  # None: depends on a risk assessment not made yet
    due_at: datetime | None  # None: no fixed period (without undue delay, immediately)
    basis: str  # what sets it: the law's article, the policy's promise
    done_at: datetime | None = None

    def overdue(self, now: datetime) -> bool:
        """Past due and not done. "Immediately" counts as due at discovery."""
        return (
            bool(self.required)
            and self.done_at is None
            and (self.due_at is not None and self.due_at < now)
        )

    def sort_key(self, now: datetime) -> tuple[int, datetime]:
        far = datetime.max.replace(tzinfo=UTC)
        return (0 if self.overdue(now) else 1, self.due_at or far)

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        return {
            "jurisdiction": self.jurisdiction,
            "audience": self.audience,
            "required": self.required,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "basis": self.basis,
            "done_at": self.done_at.isoformat() if self.done_at else None,
            "overdue": self.overdue(now),
        }


def breach_deadlines(
    policy: Policy,
    discovered_at: datetime,
    jurisdictions: Iterable[str],
    *,
    high_risk: bool | None,
    authority_notified_at: datetime | None = None,
    subjects_notified_at: datetime | None = None,
) -> list[BreachDeadline]:
    """The notices owed for an incident discovered at `discovered_at`, per jurisdiction."""
    if discovered_at.tzinfo is None:
        raise ValueError("give the discovery time with its time zone, e.g. 2026-03-01T09:00Z")
    breaches = policy.breaches
    promised_subjects = "notify_subjects" in breaches.model_fields_set and breaches.notify_subjects
    out: list[BreachDeadline] = []
    for key in dict.fromkeys(jurisdictions):
        law = get_jurisdiction(key)
        needed, words = _AUTHORITY_LAW.get(law.key, (False, law.name))
        due, basis = _earliest(
            discovered_at, law, law.breach_authority_within, breaches.notify_authority_within, words
        )
        required = needed or breaches.notify_authority_within is not None
        if due is None and law.key == "cn":
            due = discovered_at  # "immediately": due at once
        out.append(BreachDeadline(law.key, AUTHORITY, required, due, basis, authority_notified_at))
        rule, words = _SUBJECTS_LAW.get(law.key, ("never", law.name))
        due, basis = _earliest(
            discovered_at, law, law.breach_subjects_within, breaches.notify_subjects_within, words
        )
        subjects_required: bool | None
        if promised_subjects or rule == "always":
            subjects_required = True
        elif rule == "high_risk":
            subjects_required = high_risk  # None until assessed
        else:
            subjects_required = breaches.notify_subjects_within is not None
        if promised_subjects and rule != "always":
            basis += "; the policy promises to tell the people affected (breaches.notify_subjects)"
        out.append(
            BreachDeadline(law.key, SUBJECTS, subjects_required, due, basis, subjects_notified_at)
        )
    return out


def _earliest(
    start: datetime,
    law: Jurisdiction,
    by_law: Duration | None,
    promised: Duration | None,
    words: str,
) -> tuple[datetime | None, str]:
    """The earlier of the law's and the policy's deadline, and what sets it."""
    calendar = law.calendar() if law.holiday_country else None
    options: list[tuple[datetime, str]] = []
    if by_law is not None:
        options.append((_add(by_law, start, calendar), f"{words}: {by_law} from discovery"))
    if promised is not None:
        options.append(
            (_add(promised, start, calendar), f"the policy's promise: {promised} from discovery")
        )
    if not options:
        return None, words if "immediately" in words else f"{words} (no fixed period)"
    return min(options, key=lambda o: o[0])  # a tie names the law, listed first


def _add(duration: Duration, start: datetime, calendar: Any) -> datetime:
    result = duration.add_to(start, calendar)
    assert isinstance(result, datetime)
    return result.astimezone(UTC)
