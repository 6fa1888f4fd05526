"""Deadlines against a table of dates counted by hand from the laws' texts and the
official holiday schedules (China's State Council notices for 2025, the US/California,
Estonian, German and Brazilian public holidays), never computed with the code under test.

A deadline ends at the end of its UTC day: 23:59:59.999999.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lawful.policy import Policy, load_policy, load_policy_text
from lawful.policy.durations import Duration
from lawful.policy.vocabulary import RequestKind
from lawful.requests.deadlines import (
    Deadline,
    DeadlineError,
    compute_deadline,
    due_within,
    end_of_day,
    extend,
    overdue,
    parse_window,
    pause,
    paused,
    paused_days,
    time_left,
)

POLICIES = Path(__file__).resolve().parents[2] / "examples" / "policies"
SERA_NO_DEADLINE = (
    "  # no deadline: the seed names none, so the GDPR's one month (Art. 12(3)) applies\n"
)


@cache
def policy(name: str) -> Policy:
    """An example policy, or a variant of Sera Leads (an Estonian controller)."""
    if name == "sera_ee":  # promises 5 business days on Estonia's calendar, extension 1 month
        return _sera(
            "  deadline: {default: 5 business days, extension: 1 month, calendars: {eu: EE}}\n"
        )
    if name == "sera_br":  # also serves Brazil, promising nothing more than the LGPD
        return _sera("", jurisdictions="[eu, br]")
    if name == "sera_br_fast":  # 10 business days in Brazil, and an extension the LGPD refuses
        return _sera(
            "  deadline: {by_jurisdiction: {br: 10 business days}, extension: 1 month}\n",
            jurisdictions="[eu, br]",
        )
    return load_policy(POLICIES / f"{name}.yaml").policy


def _sera(deadline: str, jurisdictions: str = "[eu]") -> Policy:
    text = (POLICIES / "sera_leads.yaml").read_text("utf-8")
    assert SERA_NO_DEADLINE in text and "jurisdictions: [eu]\n" in text
    text = text.replace(SERA_NO_DEADLINE, deadline)
    text = text.replace("jurisdictions: [eu]\n", f"jurisdictions: {jurisdictions}\n")
    return load_policy_text(text).policy


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def eod(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 23, 59, 59, 999999, tzinfo=UTC)


SHANGHAI = ZoneInfo("Asia/Shanghai")

GDPR = "GDPR Art. 12(3): 1 month"
CN15 = "policy: 15 business days (cn, CN calendar)"
CCPA = "CCPA §1798.130(a)(2)(A): 45 days; acknowledge within 10 business days (CCPA Regulations §7021(a))"

# id, policy, kind, jurisdiction, member_state, received_at, due_at, acknowledge_by, basis
CASES = [
    # --- China: Seestar's and SiNESEMI's 15 business days, over the 2025 holidays --------
    # National Day + Mid-Autumn: 1-8 Oct off, Sun 28 Sep and Sat 11 Oct worked.
    # After Fri 26 Sep: 28/9 (1), 29 (2), 30 (3), 9/10 (4), 10 (5), Sat 11 (6), 13-17 (7-11),
    # 20-23 (12-15).
    ("cn-golden-week", "seestar_store", "access", "cn", None, at(2025, 9, 26), eod(2025, 10, 23), None, CN15),
    # Spring Festival: 28 Jan - 4 Feb off, Sun 26 Jan and Sat 8 Feb worked.
    # After Fri 24 Jan: Sun 26 (1), 27 (2), 5-7 Feb (3-5), Sat 8 (6), 10-14 (7-11), 17-20 (12-15).
    ("cn-spring-festival", "seestar_store", "erasure", "cn", None, at(2025, 1, 24), eod(2025, 2, 20), None, CN15),
    # Received on the make-up Saturday itself: counting starts Mon 13 Oct; 13-17, 20-24,
    # 27-31 are 15 working days.
    ("cn-on-a-make-up-day", "sinesemi", "access", "cn", None, at(2025, 10, 11), eod(2025, 10, 31), None, CN15),
    # 07:30 in Shanghai on Sat 25 Jan is 23:30 UTC on Fri 24 Jan: the UTC day counts.
    ("cn-utc-day", "seestar_store", "access", "cn", None, datetime(2025, 1, 25, 7, 30, tzinfo=SHANGHAI), eod(2025, 2, 20), None, CN15),
    # No jurisdiction: the policy's own deadline, on the controller's (CN) calendar.
    ("no-jurisdiction", "seestar_store", "access", None, None, at(2025, 1, 24), eod(2025, 2, 20), None, "policy: 15 business days (no jurisdiction given, CN calendar)"),
    # --- EU: the GDPR's month --------------------------------------------------------------
    ("eu-31-jan", "sera_leads", "access", "eu", None, at(2025, 1, 31), eod(2025, 2, 28), None, GDPR),
    ("eu-31-jan-leap-year", "sera_leads", "access", "eu", None, at(2024, 1, 31), eod(2024, 2, 29), None, GDPR),
    ("eu-29-feb", "sera_leads", "erasure", "eu", None, at(2024, 2, 29), eod(2024, 3, 29), None, GDPR),
    ("eu-31-mar", "sera_leads", "portability", "eu", None, at(2025, 3, 31, 23, 59), eod(2025, 4, 30), None, GDPR),
    # 10 May 2025 is a Saturday: not moved to Monday 12 May (the earlier day is the safe one).
    ("eu-due-on-a-saturday", "sera_leads", "access", "eu", None, at(2025, 4, 10), eod(2025, 5, 10), None, GDPR),
    # --- EU: a policy promising business days, on a member state's calendar ---------------
    # Estonia: Victory Day 23 Jun and Midsummer 24 Jun. After Thu 19 Jun: 20 (1), 25-27 (2-4), 30 (5).
    ("eu-ee-midsummer", "sera_ee", "access", "eu", None, at(2025, 6, 19), eod(2025, 6, 30), None, "policy: 5 business days (eu, EE calendar)"),
    # Estonia keeps 24-26 Dec and 1 Jan. After Mon 22 Dec: 23 (1), 29-31 (2-4), Fri 2 Jan (5).
    ("eu-ee-christmas", "sera_ee", "access", "eu", None, at(2025, 12, 22), eod(2026, 1, 2), None, "policy: 5 business days (eu, EE calendar)"),
    # The request's member state (Germany: 24 Dec is a working day) over the policy's calendar.
    # After Mon 22 Dec: 23 (1), 24 (2), 29-31 (3-5).
    ("eu-member-state-de", "sera_ee", "access", "eu", "DE", at(2025, 12, 22), eod(2025, 12, 31), None, "policy: 5 business days (eu, DE calendar)"),
    # --- policies stricter than the law, and the earlier day winning ----------------------
    # Selro promises 30 days for restriction: 15 Jan + 30 days = 14 Feb, before 15 Feb.
    ("eu-policy-stricter", "selro", "restriction", "eu", None, at(2025, 1, 15), eod(2025, 2, 14), None, "policy: 30 days (eu)"),
    # From 1 Feb, 30 days is 3 Mar but one month is 1 Mar: the law's day is earlier.
    ("eu-law-earlier-in-february", "selro", "restriction", "eu", None, at(2025, 2, 1), eod(2025, 3, 1), None, GDPR),
    # Selro's one month for access equals the law's: the law is named.
    ("eu-tie-names-the-law", "selro", "access", "eu", None, at(2025, 3, 31), eod(2025, 4, 30), None, GDPR),
    # --- UK ---------------------------------------------------------------------------------
    ("uk-31-jan", "selro", "access", "uk", None, at(2025, 1, 31), eod(2025, 2, 28), None, "UK GDPR Art. 12(3): 1 month"),
    # 31 Dec + 30 days = 30 Jan, a day before 31 Jan.
    ("uk-restriction-over-new-year", "selro", "restrict_recipients", "uk", None, at(2025, 12, 31), eod(2026, 1, 30), None, "policy: 30 days (uk)"),
    # --- California ------------------------------------------------------------------------
    # 3 Mar + 45 days = 17 Apr; acknowledged within 10 business days: 4-7, 10-14, 17 Mar.
    ("us-ca-access", "serai", "access", "us-ca", None, at(2025, 3, 3, 15), eod(2025, 4, 17), eod(2025, 3, 17), CCPA),
    # Thanksgiving 27 Nov and the day after (a California holiday). 20 Nov + 45 days = 4 Jan.
    # Acknowledge: 21, 24-26 Nov (1-4), 1-5 Dec (5-9), 8 Dec (10).
    ("us-ca-thanksgiving", "serai", "erasure", "us-ca", None, at(2025, 11, 20, 15), eod(2026, 1, 4), eod(2025, 12, 8), CCPA),
    # Opt-out of sale: 15 business days, no acknowledgement. 21, 24-26 Nov (1-4), 1-5 Dec (5-9),
    # 8-12 Dec (10-14), 15 Dec (15).
    ("us-ca-opt-out", "serai", "opt_out_sale", "us-ca", None, at(2025, 11, 20, 15), eod(2025, 12, 15), None, "CCPA Regulations §7026(f): 15 business days"),
    # Over Christmas and New Year: 22-24 Dec (1-3), 26 (4), 29-31 (5-7), 2 Jan (8), 5-9 (9-13), 12-13 (14-15).
    ("us-ca-opt-out-christmas", "serai", "opt_out_sale", "us-ca", None, at(2025, 12, 19, 15), eod(2026, 1, 13), None, "CCPA Regulations §7026(f): 15 business days"),
    # --- everyone else: Serai's 40 days ------------------------------------------------------
    ("other-40-days", "serai", "access", "other", None, at(2025, 1, 10), eod(2025, 2, 19), None, "policy: 40 days (other)"),
    # --- Brazil ------------------------------------------------------------------------------
    ("br-15-days", "sera_br", "access", "br", None, at(2025, 2, 14), eod(2025, 3, 1), None, "LGPD Art. 19(II): 15 days"),
    # 10 business days from Mon 2 Jun: 3-6 (1-4), 9-13 (5-9), 16 (10); the law's 17 Jun is later.
    ("br-policy-business-days", "sera_br_fast", "access", "br", None, at(2025, 6, 2), eod(2025, 6, 16), None, "policy: 10 business days (br, BR calendar)"),
    # From Wed 16 Apr over Good Friday, Tiradentes (21 Apr) and 1 May: 17 (1), 22-25 (2-5),
    # 28-30 (6-8), 2 May (9), 5 May (10); 16 Apr + 15 days = 1 May is earlier.
    ("br-law-earlier-over-holidays", "sera_br_fast", "access", "br", None, at(2025, 4, 16), eod(2025, 5, 1), None, "LGPD Art. 19(II): 15 days"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kind", "jurisdiction", "member_state", "received", "due", "ack", "basis"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_deadline_table(
    name: str,
    kind: str,
    jurisdiction: str | None,
    member_state: str | None,
    received: datetime,
    due: datetime,
    ack: datetime | None,
    basis: str,
) -> None:
    deadline = compute_deadline(
        policy(name), kind, jurisdiction, received, member_state=member_state
    )
    assert deadline.due_at == due
    assert deadline.acknowledge_by == ack
    assert deadline.basis == basis
    assert deadline.received_at == received.astimezone(UTC)
    assert deadline.received_at.tzinfo is UTC and deadline.due_at.tzinfo is UTC


def test_at_least_24_cases() -> None:
    assert len(CASES) >= 24


def test_the_day_ends_at_midnight_utc() -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 1, 31))
    assert deadline.due_at == datetime(2025, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)
    assert not overdue(deadline.due_at, datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC))
    assert overdue(deadline.due_at, datetime(2025, 3, 1, 0, 0, tzinfo=UTC))
    assert end_of_day(date(2025, 2, 28)) == deadline.due_at


def test_kind_may_be_an_enum() -> None:
    deadline = compute_deadline(
        policy("serai"), RequestKind.opt_out_sale, "us-ca", at(2025, 11, 20)
    )
    assert deadline.due_at == eod(2025, 12, 15)


def test_pauses_only_under_uk_law() -> None:
    assert compute_deadline(policy("selro"), "access", "uk", at(2025, 3, 3)).pauses
    assert not compute_deadline(policy("selro"), "access", "eu", at(2025, 3, 3)).pauses
    assert not compute_deadline(policy("serai"), "access", "us-ca", at(2025, 3, 3)).pauses


# --- extensions -----------------------------------------------------------------------------

# id, policy, kind, jurisdiction, received, extension, notice_by, extended due
EXTENSIONS = [
    # ICO: three months from receipt, so 31 Jan extends to 30 Apr (not 28 Feb + 2 months = 28 Apr).
    ("eu-three-months-from-receipt", "sera_leads", "access", "eu", at(2025, 1, 31), "2 months", eod(2025, 2, 28), eod(2025, 4, 30)),
    # Selro's 30 days + 2 months = 14 Apr, before the law's 15 Apr; notice by its own due date.
    ("eu-policy-30-days-plus-2-months", "selro", "restriction", "eu", at(2025, 1, 15), "2 months", eod(2025, 2, 14), eod(2025, 4, 14)),
    ("uk-access", "selro", "access", "uk", at(2025, 3, 3), "2 months", eod(2025, 4, 3), eod(2025, 6, 3)),
    # 45 + 45 days: 3 Mar + 90 days = 1 Jun; notice within the first 45 days.
    ("us-ca-45-plus-45", "serai", "access", "us-ca", at(2025, 3, 3, 15), "45 days", eod(2025, 4, 17), eod(2025, 6, 1)),
    # 5 business days (30 Jun) then the policy's month: 30 Jul, well within the law's 19 Sep.
    ("eu-business-days-then-a-month", "sera_ee", "access", "eu", at(2025, 6, 19), "1 month", eod(2025, 6, 30), eod(2025, 7, 30)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kind", "jurisdiction", "received", "extension", "notice_by", "extended_due"),
    [pytest.param(*case[1:], id=case[0]) for case in EXTENSIONS],
)
def test_extension_table(
    name: str,
    kind: str,
    jurisdiction: str,
    received: datetime,
    extension: str,
    notice_by: datetime,
    extended_due: datetime,
) -> None:
    deadline = compute_deadline(policy(name), kind, jurisdiction, received)
    assert deadline.extension == Duration.parse(extension)
    assert deadline.extension_notice_by == notice_by
    extended = extend(deadline, "the request covers several years of records", notice_by)
    assert extended.due_at == extended_due
    assert extended.extended and extended.extended_at == notice_by
    assert extended.extension_reason == "the request covers several years of records"
    assert extended.extension is None
    assert extended.basis == f"{deadline.basis}; extended by {extension}"
    # received, acknowledgement and notice dates stay as they were
    assert extended.received_at == deadline.received_at
    assert extended.acknowledge_by == deadline.acknowledge_by


@pytest.mark.parametrize(
    ("name", "kind", "jurisdiction"),
    [
        pytest.param("seestar_store", "access", "cn", id="pipl-policy-names-none"),
        pytest.param("sera_br_fast", "access", "br", id="lgpd-allows-none"),
        pytest.param("serai", "opt_out_sale", "us-ca", id="ccpa-opt-out"),
        pytest.param("serai", "access", "other", id="other-policy-names-none"),
    ],
)
def test_no_extension_allowed(name: str, kind: str, jurisdiction: str) -> None:
    deadline = compute_deadline(policy(name), kind, jurisdiction, at(2025, 6, 2))
    assert deadline.extension is None and deadline.extended_due_at is None
    with pytest.raises(DeadlineError, match="no extension is allowed"):
        extend(deadline, "complex", at(2025, 6, 3))


def test_extended_only_once() -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 1, 31))
    once = extend(deadline, "many systems to search", at(2025, 2, 3))
    with pytest.raises(DeadlineError, match="already extended on 2025-02-03"):
        extend(once, "still more", at(2025, 2, 4))


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_extension_needs_a_reason(reason: str) -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 1, 31))
    with pytest.raises(DeadlineError, match="needs a reason"):
        extend(deadline, reason, at(2025, 2, 3))


def test_extension_reason_fits_the_column() -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 1, 31))
    with pytest.raises(DeadlineError, match="501 characters long; keep it to 500"):
        extend(deadline, "x" * 501, at(2025, 2, 3))
    assert extend(deadline, "  several   \n systems ", at(2025, 2, 3)).extension_reason == (
        "several systems"
    )


def test_extension_too_late() -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 1, 31))
    # the last instant of 28 Feb is still in time; midnight after is not
    assert extend(deadline, "complex", eod(2025, 2, 28)).due_at == eod(2025, 4, 30)
    with pytest.raises(DeadlineError, match=r"told by 2025-02-28 \(it is now 2025-03-01\)"):
        extend(deadline, "complex", at(2025, 3, 1, 0, 0))


def test_extension_too_late_when_the_policy_promised_less() -> None:
    # Selro's 30 days end on 14 Feb, before the law's notice window (15 Feb)
    deadline = compute_deadline(policy("selro"), "restriction", "eu", at(2025, 1, 15))
    with pytest.raises(DeadlineError, match="told by 2025-02-14"):
        extend(deadline, "complex", at(2025, 2, 15, 8))


def test_extend_needs_an_aware_now() -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 1, 31))
    with pytest.raises(DeadlineError, match="no time zone"):
        extend(deadline, "complex", datetime(2025, 2, 3, 10))


# --- pauses (UK: the clock stops while awaiting clarification) -------------------------------


@pytest.mark.parametrize(
    ("paused_at", "resumed_at", "days"),
    [
        pytest.param(at(2025, 3, 10, 14), at(2025, 3, 17, 9), 7, id="hours-dont-count"),
        pytest.param(at(2025, 2, 20, 9), at(2025, 2, 25, 18), 5, id="ico-20-to-25-feb"),
        pytest.param(at(2025, 3, 10, 9), at(2025, 3, 10, 17), 0, id="same-day"),
        pytest.param(at(2024, 2, 27), at(2024, 3, 2), 4, id="over-29-feb"),
        pytest.param(at(2025, 2, 27), at(2025, 3, 2), 3, id="over-28-feb"),
    ],
)
def test_paused_days(paused_at: datetime, resumed_at: datetime, days: int) -> None:
    assert paused_days(paused_at, resumed_at) == days


def test_paused_pushes_the_due_date() -> None:
    assert paused(eod(2025, 4, 3), at(2025, 3, 10, 14), at(2025, 3, 17, 9)) == eod(2025, 4, 10)


def test_pause_moves_due_extension_and_notice() -> None:
    deadline = compute_deadline(policy("selro"), "access", "uk", at(2025, 3, 3))
    assert deadline.due_at == eod(2025, 4, 3)
    later = pause(deadline, paused_days(at(2025, 3, 10, 14), at(2025, 3, 17, 9)))
    assert later.due_at == eod(2025, 4, 10)
    assert later.extension_notice_by == eod(2025, 4, 10)
    assert later.extended_due_at == eod(2025, 6, 10)
    # 8 Apr is past the first notice date (3 Apr) but within the paused one
    extended = extend(later, "complex", at(2025, 4, 8))
    assert extended.due_at == eod(2025, 6, 10)


def test_pause_refused_where_the_clock_runs_on() -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 3, 3))
    with pytest.raises(DeadlineError, match=r"does not stop .* due 2025-04-03"):
        pause(deadline, 3)


@pytest.mark.parametrize("days", [-1, 1.5, True, "3"])
def test_pause_needs_whole_days(days: object) -> None:
    deadline = compute_deadline(policy("selro"), "access", "uk", at(2025, 3, 3))
    with pytest.raises(DeadlineError, match="whole number of days"):
        pause(deadline, days)  # type: ignore[arg-type]


def test_resumed_before_paused() -> None:
    with pytest.raises(DeadlineError, match=r"resumed .* before it stopped"):
        paused_days(at(2025, 3, 17), at(2025, 3, 10))


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "jurisdiction", "received", "member_state", "message"),
    [
        ("sera_leads", "acess", "eu", at(2025, 1, 1), None, "'acess' is not a request kind; did you mean 'access'"),
        ("sera_leads", "access", "gdpr", at(2025, 1, 1), None, "'gdpr' is not a jurisdiction; did you mean 'eu'"),
        ("sera_leads", "access", "eu", datetime(2025, 1, 1, 10), None, "received_at 2025-01-01T10:00:00 has no time zone"),
        ("sera_leads", "access", "eu", at(2025, 1, 1), "US", "'US' is not covered by the GDPR"),
        ("seestar_store", "access", None, at(2025, 1, 1), "DE", "member_state 'DE' needs a jurisdiction"),
        ("serai", "access", None, at(2025, 1, 1), None, "no deadline for access requests: the policy promises none and no jurisdiction was given"),
        ("selro", "rectification", "cn", at(2025, 1, 1), None, "no deadline for rectification requests in cn: the PIPL \\(China\\) sets none"),
    ],
)  # fmt: skip
def test_clear_errors(
    name: str,
    kind: str,
    jurisdiction: str | None,
    received: datetime,
    member_state: str | None,
    message: str,
) -> None:
    with pytest.raises(DeadlineError, match=message):
        compute_deadline(policy(name), kind, jurisdiction, received, member_state=member_state)


# --- listing: --due-within and --overdue ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("3d", timedelta(days=3)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("0d", timedelta(0)),
        (" 3D ", timedelta(days=3)),
        ("3 days", timedelta(days=3)),
        ("1 week", timedelta(weeks=1)),
        ("36 hours", timedelta(hours=36)),
    ],
)
def test_parse_window(text: str, window: timedelta) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty time window"),
        ("3", "'3' needs a unit: write '3d' for days or '3h' for hours"),
        ("-3d", "'-3d' is negative"),
        ("1.5d", "not a whole number"),
        ("1m", "months and years vary in length"),
        ("2y", "months and years vary in length"),
        ("3x", "unknown unit 'x'"),
        ("soon", "'soon' is not a time window"),
        ("3d4h", "'3d4h' is not a time window"),
    ],
)
def test_parse_window_errors(text: str, message: str) -> None:
    with pytest.raises(DeadlineError, match=message):
        parse_window(text)


def test_due_within_and_overdue() -> None:
    due = eod(2025, 4, 17)
    now = at(2025, 4, 15, 12)
    assert time_left(due, now) == timedelta(
        days=2, hours=11, minutes=59, seconds=59, microseconds=999999
    )
    assert due_within(due, now, parse_window("3d"))
    assert not due_within(due, now, parse_window("2d"))
    assert not overdue(due, now)
    later = at(2025, 4, 18, 0)
    assert overdue(due, later) and time_left(due, later) < timedelta(0)
    assert due_within(due, later, parse_window("3d"))  # overdue ones are listed too


def test_deadline_is_frozen() -> None:
    deadline = compute_deadline(policy("sera_leads"), "access", "eu", at(2025, 1, 31))
    assert isinstance(deadline, Deadline)
    with pytest.raises(AttributeError):
        deadline.due_at = eod(2030, 1, 1)  # type: ignore[misc]


def test_acknowledgement_never_after_a_faster_promise() -> None:
    text = (POLICIES / "serai.yaml").read_text("utf-8")
    text = text.replace(
        "      other: 40 days\n", "      other: 40 days\n      us-ca: 5 business days\n"
    )
    serai_fast = load_policy_text(text).policy
    # Mon 3 Mar: 4-7 and 10 Mar are 5 business days; the 10-day acknowledgement (17 Mar) is
    # pulled in to the answer's own deadline, as is the notice of an extension
    deadline = compute_deadline(serai_fast, "access", "us-ca", at(2025, 3, 3))
    assert deadline.due_at == eod(2025, 3, 10)
    assert deadline.acknowledge_by == eod(2025, 3, 10)
    assert deadline.extension_notice_by == eod(2025, 3, 10)
    assert deadline.basis.startswith("policy: 5 business days (us-ca, US-CA calendar); ")
    # 5 business days + 45 days = 24 Apr, before the law's 90 days (1 Jun)
    assert deadline.extended_due_at == eod(2025, 4, 24)
