"""When a request must be answered: the policy's promise and the law's limit, the earlier.

Conventions, the same in every function here:

* Datetimes are timezone-aware; they are read and returned in UTC. A naive datetime is
  refused, since its meaning depends on the machine's clock.
* Days are UTC calendar days. The day a request is received is day 0 and counting starts
  the day after, whatever the day of the week (ICO: "from the day you receive the
  request, whether it is a working day or not").
* A deadline ends at the end of the day it falls on: `due_at` is 23:59:59.999999 UTC of
  that day, so a request is overdue from midnight UTC after it.
* A period in months ends on the same date of the last month, or that month's last day
  (31 January + 1 month = 28/29 February; Reg. 1182/71 Art. 3(2)(c), ICO guidance).
* A deadline falling on a weekend or holiday is not moved to the next working day
  (Reg. 1182/71 Art. 3(4) and the ICO would allow it): the earlier day is the safe one.
* Business days step over the jurisdiction's weekends and public holidays, and count
  China's make-up working days (调休), from the `holidays` package.
* An extension counts from receipt, as one period: one month + two months is three
  months from the day of receipt (ICO: "calculate the extension as three months from the
  original start date"), so 31 January extends to 30 April, not 28 April.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta

from lawful.policy.durations import Duration, WorkCalendar
from lawful.policy.jurisdictions import (
    JURISDICTION_KEYS,
    Jurisdiction,
    UnknownJurisdictionError,
    get_jurisdiction,
)
from lawful.policy.model import Policy
from lawful.policy.vocabulary import RequestKind, unknown

__all__ = [
    "Deadline",
    "DeadlineError",
    "compute_deadline",
    "due_within",
    "end_of_day",
    "extend",
    "overdue",
    "parse_window",
    "pause",
    "paused",
    "paused_days",
    "request_kind",
    "time_left",
]

MAX_REASON = 500  # requests.extension_reason is String(500)

# Where each law's limits come from, for `Deadline.basis` (the subject and the operator
# read it). Keys: jurisdiction, then "opt_out" / "acknowledge" for those windows.
_CITES = {
    "eu": "GDPR Art. 12(3)",
    "uk": "UK GDPR Art. 12(3)",
    "us-ca": "CCPA §1798.130(a)(2)(A)",
    "us-ca/opt_out": "CCPA Regulations §7026(f)",
    "us-ca/acknowledge": "CCPA Regulations §7021(a)",
    "br": "LGPD Art. 19(II)",
}


class DeadlineError(ValueError):
    """A deadline that cannot be computed or changed; the message says what to do."""


@dataclass(frozen=True)
class Deadline:
    """A request's deadline: when it is due, and what may still change it.

    `extension` is how much more may be added (None: no extension allowed, or already
    used); `extended_due_at` is where `extend` moves `due_at`, computed at receipt so the
    law's overall limit holds even when the policy promised less. `pauses` says whether
    the clock stops while awaiting clarification (UK).
    """

    received_at: datetime
    due_at: datetime
    acknowledge_by: datetime | None
    extension: Duration | None
    extension_notice_by: datetime | None
    basis: str
    pauses: bool
    extended_due_at: datetime | None = None
    extended_at: datetime | None = None
    extension_reason: str | None = None

    @property
    def extended(self) -> bool:
        return self.extended_at is not None


# --- inputs ---------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise DeadlineError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise DeadlineError(
            f"{name} {value.isoformat()} has no time zone: pass a timezone-aware datetime, "
            "e.g. datetime.now(UTC)"
        )
    return value.astimezone(UTC)


def request_kind(kind: RequestKind | str) -> RequestKind:
    """The `RequestKind` for a kind or its name; a wrong name raises with a did-you-mean."""
    if isinstance(kind, RequestKind):
        return kind
    try:
        return RequestKind(kind)
    except ValueError:
        raise DeadlineError(
            unknown(kind, "a request kind", [k.value for k in RequestKind])
        ) from None


def end_of_day(day: date) -> datetime:
    """The last instant of a UTC day: when a deadline falling on `day` ends."""
    return datetime.combine(day, time.max, UTC)


# --- computing ------------------------------------------------------------------------


def _due_day(duration: Duration, received: datetime, calendar: WorkCalendar) -> date:
    return duration.add_to(received, calendar).date()


def _plus(a: Duration, b: Duration) -> Duration | None:
    """One period a + b, when both are calendar units (business days don't add up so)."""
    if a.business_days or b.business_days:
        return None
    return Duration(**{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(a)})


def _extended_day(
    deadline: Duration, extension: Duration, received: datetime, calendar: WorkCalendar
) -> date:
    whole = _plus(deadline, extension)
    if whole is not None:  # counted from receipt as one period (ICO)
        return _due_day(whole, received, calendar)
    start = deadline.add_to(received, calendar)
    return extension.add_to(start, calendar).date()


def _calendar(
    policy: Policy, law: Jurisdiction | None, member_state: str | None
) -> tuple[WorkCalendar, str]:
    """The working-day calendar and its name: the member state named for this request,
    else the policy's calendar for the jurisdiction, else the law's own, else (no
    jurisdiction) the controller's country."""
    try:
        if law is None:
            country = policy.controller.country
            try:
                return WorkCalendar(country), country
            except ValueError:  # no holiday data for that country: Monday to Friday
                return WorkCalendar(None), "Monday to Friday"
        if member_state is not None:
            return law.calendar(member_state), member_state
        named = policy.requests.deadline.calendars.get(law.key)
        if named is not None and named != law.holiday_country:
            return WorkCalendar(named), named
        calendar = law.calendar()
    except ValueError as error:
        raise DeadlineError(str(error)) from None
    if calendar.country is None:
        return calendar, "Monday to Friday"
    return calendar, "-".join(filter(None, (calendar.country, calendar.subdiv)))


def _allowed_extension(
    promised: Duration | None,
    law: Jurisdiction | None,
    law_extension: Duration | None,
    opt_out: bool,
) -> Duration | None:
    """The extension that may be added: the policy's, no longer than the law's, or the
    law's when the policy names none; none where the law sets a deadline and allows no
    extension (LGPD, CCPA opt-outs), whatever the policy says."""
    if law is not None and (
        opt_out or (law.request_deadline is not None and law_extension is None)
    ):
        return None
    if promised is None or (law_extension is not None and law_extension < promised):
        return law_extension
    return promised


def _promise(policy: Policy, kind: RequestKind, jurisdiction: str | None) -> Duration | None:
    """The policy's deadline: per kind, else per jurisdiction, else the default."""
    deadline = policy.requests.deadline
    if kind in deadline.by_kind:
        return deadline.by_kind[kind]
    if jurisdiction is not None and jurisdiction in deadline.by_jurisdiction:
        return deadline.by_jurisdiction[jurisdiction]
    return deadline.default


def compute_deadline(
    policy: Policy,
    kind: RequestKind | str,
    jurisdiction: str | None,
    received_at: datetime,
    *,
    member_state: str | None = None,
) -> Deadline:
    """The deadline of a `kind` request received at `received_at` from `jurisdiction`.

    The policy's deadline (by kind, else by jurisdiction, else its default) and the law's
    (its opt-out window for opt_out_sale where it has one) are both counted and the earlier
    day wins: a policy may promise faster, never slower. Ties name the law. Business days
    are counted on the calendar of `member_state` when given, else the one the policy
    names for the jurisdiction (requests.deadline.calendars), else the law's; with no
    jurisdiction, the policy's own deadline on the controller's country's calendar.

    The law's extension applies unless the policy sets a shorter one; it is never applied
    where the law sets a deadline and allows none (LGPD), nor to CCPA opt-outs. Notice of
    an extension is due within the law's window, and never after the deadline itself.
    See the module's docstring for how days are counted.
    """
    kind = request_kind(kind)
    received = _utc(received_at, "received_at")
    law = None
    if jurisdiction is not None:
        try:
            law = get_jurisdiction(jurisdiction)
        except UnknownJurisdictionError as error:
            raise DeadlineError(str(error)) from None
    elif member_state is not None:
        raise DeadlineError(
            f"member_state '{member_state}' needs a jurisdiction: pass jurisdiction='eu' with it"
        )
    calendar, calendar_name = _calendar(policy, law, member_state)

    promise = _promise(policy, kind, law.key if law else None)
    limit = law.request_deadline_for(kind.value) if law else None
    if promise is None and limit is None:
        if law is None:
            raise DeadlineError(
                f"no deadline for {kind.value} requests: the policy promises none and no "
                "jurisdiction was given; pass the subject's jurisdiction (one of: "
                f"{', '.join(JURISDICTION_KEYS)}) or set requests.deadline.default in the policy"
            )
        raise DeadlineError(
            f"no deadline for {kind.value} requests in {law.key}: {law.name} sets none and "
            "the policy promises none; set requests.deadline.default or "
            f"requests.deadline.by_jurisdiction.{law.key} in the policy"
        )

    opt_out = (
        law is not None and kind is RequestKind.opt_out_sale and law.opt_out_within is not None
    )
    where = law.key if law else "no jurisdiction given"
    if promise is not None and promise.business_days:
        where += f", {calendar_name} calendar"
    candidates: list[tuple[date, str, Duration]] = []
    if limit is not None:
        cite = _CITES.get(f"{law.key}/opt_out" if opt_out else law.key, law.name)
        candidates.append((_due_day(limit, received, calendar), f"{cite}: {limit}", limit))
    if promise is not None:
        candidates.append(
            (_due_day(promise, received, calendar), f"policy: {promise} ({where})", promise)
        )
    # min() keeps the first of equal days: the law, which the policy cannot change
    due_day, basis, chosen = min(candidates, key=lambda c: c[0])
    due_at = end_of_day(due_day)

    law_extension = None if law is None or opt_out else law.request_extension
    extension = _allowed_extension(policy.requests.deadline.extension, law, law_extension, opt_out)
    extended_due_at = notice_by = None
    if extension is not None:
        day = _extended_day(chosen, extension, received, calendar)
        if limit is not None and law_extension is not None:
            day = min(day, _extended_day(limit, law_extension, received, calendar))
        extended_due_at = end_of_day(day)
        notice_by = due_at
        if law is not None and law.extension_notice_within is not None:
            notice_by = min(
                due_at, end_of_day(_due_day(law.extension_notice_within, received, calendar))
            )

    acknowledge_by = None
    if law is not None and law.acknowledge_within is not None and not opt_out:
        acknowledge_by = min(
            due_at, end_of_day(_due_day(law.acknowledge_within, received, calendar))
        )
        cite = _CITES.get(f"{law.key}/acknowledge", law.name)
        basis += f"; acknowledge within {law.acknowledge_within} ({cite})"

    return Deadline(
        received_at=received,
        due_at=due_at,
        acknowledge_by=acknowledge_by,
        extension=extension,
        extension_notice_by=notice_by,
        basis=basis,
        pauses=bool(law and law.clock_pauses_for_clarification),
        extended_due_at=extended_due_at,
    )


# --- changing -------------------------------------------------------------------------


def extend(deadline: Deadline, reason: str, now: datetime) -> Deadline:
    """The deadline moved by the allowed extension, once, for a reason told to the subject.

    Refused when no extension is allowed, when it was already used, when the reason is
    empty or too long, or when the notice period (`extension_notice_by`) has passed.
    """
    now = _utc(now, "now")
    if deadline.extended:
        raise DeadlineError(
            f"this deadline was already extended on {deadline.extended_at:%Y-%m-%d}; "
            "it may be extended only once"
        )
    if deadline.extension is None or deadline.extended_due_at is None:
        raise DeadlineError(
            f"no extension is allowed for this request ({deadline.basis}); answer by "
            f"{deadline.due_at:%Y-%m-%d}"
        )
    if not isinstance(reason, str) or not reason.strip():
        raise DeadlineError(
            "an extension needs a reason the subject is told, e.g. 'the request covers "
            "several years of records'"
        )
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise DeadlineError(
            f"the reason is {len(reason)} characters long; keep it to {MAX_REASON} at most"
        )
    if deadline.extension_notice_by is not None and now > deadline.extension_notice_by:
        raise DeadlineError(
            f"too late to extend: the subject had to be told by {deadline.extension_notice_by:%Y-%m-%d} "
            f"(it is now {now:%Y-%m-%d}); answer as soon as possible"
        )
    return replace(
        deadline,
        due_at=deadline.extended_due_at,
        extension=None,
        extended_due_at=None,
        extended_at=now,
        extension_reason=reason,
        basis=f"{deadline.basis}; extended by {deadline.extension}",
    )


def paused_days(paused_at: datetime, resumed_at: datetime) -> int:
    """Whole UTC days the clock stood still: from the day it stopped to the day it resumed.

    Asked on 20 February and answered on 25 February is 5 days, whatever the hours
    (the ICO counts the days it took the subject to reply).
    """
    paused_at = _utc(paused_at, "paused_at")
    resumed_at = _utc(resumed_at, "resumed_at")
    if resumed_at < paused_at:
        raise DeadlineError(
            f"the clock resumed ({resumed_at:%Y-%m-%d %H:%M}) before it stopped "
            f"({paused_at:%Y-%m-%d %H:%M}); check the two times"
        )
    return (resumed_at.date() - paused_at.date()).days


def paused(due_at: datetime, paused_at: datetime, resumed_at: datetime) -> datetime:
    """`due_at` pushed back by the whole days the clock stood still (see `paused_days`)."""
    return _utc(due_at, "due_at") + timedelta(days=paused_days(paused_at, resumed_at))


def pause(deadline: Deadline, days: int, *, anywhere: bool = False) -> Deadline:
    """The deadline after the clock stood still for `days` whole days awaiting clarification.

    Moves the due date, the extended due date and the extension notice date alike (the
    period they count in was paused). Only where the law stops the clock (UK), unless
    `anywhere`: a request awaiting its fee is owed nothing until it is paid, under every law.
    """
    if not deadline.pauses and not anywhere:
        raise DeadlineError(
            f"the clock does not stop while awaiting clarification under this deadline "
            f"({deadline.basis}); the request stays due {deadline.due_at:%Y-%m-%d}"
        )
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise DeadlineError(f"paused days must be a whole number of days, 0 or more; got {days!r}")
    shift = timedelta(days=days)

    def moved(value: datetime | None) -> datetime | None:
        return None if value is None else value + shift

    return replace(
        deadline,
        due_at=deadline.due_at + shift,
        extended_due_at=moved(deadline.extended_due_at),
        extension_notice_by=moved(deadline.extension_notice_by),
    )


# --- listing --------------------------------------------------------------------------


def time_left(due_at: datetime, now: datetime) -> timedelta:
    """Time until the deadline ends; negative once overdue."""
    return _utc(due_at, "due_at") - _utc(now, "now")


def overdue(due_at: datetime, now: datetime) -> bool:
    """Whether the deadline has passed (`lawful request list --overdue`)."""
    return time_left(due_at, now) < timedelta(0)


def due_within(due_at: datetime, now: datetime, window: timedelta) -> bool:
    """Whether the deadline ends within `window` from now (`--due-within 3d`).

    Overdue requests are included: they are the most urgent. In SQL: due_at <= now + window.
    """
    return time_left(due_at, now) <= window


_WINDOW = re.compile(r"(?P<n>\d+)\s*(?P<unit>[a-z]+)")
_WINDOW_UNITS = {
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
}  # fmt: skip


def parse_window(text: str) -> timedelta:
    """A time window as the CLI takes it: '12h', '3d', '2w' (or '3 days')."""
    _hint = "write a whole number and h, d or w, e.g. '12h', '3d' or '2w'"
    if not isinstance(text, str) or not text.strip():
        raise DeadlineError(f"an empty time window: {_hint}")
    clean = text.strip().lower()
    if clean.startswith("-"):
        raise DeadlineError(f"'{text}' is negative: {_hint}")
    if re.fullmatch(r"\d+[.,]\d+\s*[a-z]*", clean):
        raise DeadlineError(f"'{text}' is not a whole number: {_hint} (36h, not 1.5d)")
    if clean.isdigit():
        raise DeadlineError(
            f"'{text}' needs a unit: write '{clean}d' for days or '{clean}h' for hours"
        )
    match = _WINDOW.fullmatch(clean)
    if not match:
        raise DeadlineError(f"'{text}' is not a time window: {_hint}")
    unit = match["unit"]
    if unit in ("m", "mo", "month", "months", "y", "year", "years"):
        raise DeadlineError(f"'{text}': months and years vary in length; write days, e.g. '30d'")
    if unit not in _WINDOW_UNITS:
        raise DeadlineError(f"'{text}' has an unknown unit '{unit}': {_hint}")
    return timedelta(**{_WINDOW_UNITS[unit]: int(match["n"])})
