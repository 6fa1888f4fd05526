from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from lawful.policy.durations import Duration, WorkCalendar

D = Duration.parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", Duration(days=30)),
        ("p30d", Duration(days=30)),
        ("P3Y", Duration(years=3)),
        ("P1M", Duration(months=1)),
        ("P2W", Duration(weeks=2)),
        ("PT72H", Duration(hours=72)),
        ("P1Y6M", Duration(years=1, months=6)),
        ("P1DT12H", Duration(days=1, hours=12)),
        ("P0D", Duration()),
        ("30 days", Duration(days=30)),
        ("1 day", Duration(days=1)),
        ("3 years", Duration(years=3)),
        ("one month", Duration(months=1)),
        ("1 calendar month", Duration(months=1)),
        ("2 months", Duration(months=2)),
        ("12 months", Duration(months=12)),
        ("72 hours", Duration(hours=72)),
        ("15 business days", Duration(business_days=15)),
        ("15 working days", Duration(business_days=15)),
        ("10 business days", Duration(business_days=10)),
        ("30 calendar days", Duration(days=30)),
        ("2 weeks", Duration(weeks=2)),
        ("forty-five days", Duration(days=45)),
        ("forty five days", Duration(days=45)),
        ("sixty days", Duration(days=60)),
        ("ninety days", Duration(days=90)),
        ("twenty months", Duration(months=20)),
        ("thirty days", Duration(days=30)),
        ("1 year and 6 months", Duration(years=1, months=6)),
        ("1 year, 6 months", Duration(years=1, months=6)),
        ("2 weeks, 3 days and 4 hours", Duration(weeks=2, days=3, hours=4)),
        ("  30   Days ", Duration(days=30)),
        ("0 days", Duration()),
    ],
)
def test_parse(text: str, expected: Duration) -> None:
    parsed = D(text)
    assert parsed == expected
    assert parsed._key() == expected._key()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3 yaers", "'3 yaers' is not a duration: did you mean '3 years'?"),
        ("15 buisness days", "did you mean '15 business days'?"),
        ("fourty days", "did you mean 'forty days'?"),
        ("30", "'30' needs a unit: write e.g. '30 days', '30 months' or '30 years'"),
        ("-5 days", "'-5 days' is negative"),
        ("-P5D", "is negative"),
        ("1 month and 5 business days", "mixes business days with other units"),
        ("", "an empty text is not a duration"),
        ("   ", "an empty text is not a duration"),
        (
            "garbage",
            "'garbage' is not a duration: write e.g. '30 days', '3 years', "
            "'15 business days' or ISO 8601 'P30D'",
        ),
        ("PT30M", "minutes, seconds and fractions are not supported"),
        ("P1.5D", "'P1.5D' is not a duration"),
        ("P", "'P' is not a duration"),
        ("1.5 days", "use whole numbers"),
        ("30 minutes", "the smallest unit is hours"),
        ("1 day and 2 days", "names days twice"),
        ("1 year and", "'1 year and' is not a duration"),
        ("thirty", "a number needs a unit"),
        ("days", "'days' is not a duration"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        D(text)
    assert message in str(error.value)


@pytest.mark.parametrize("value", [30, 30.0])
def test_bare_number_asks_for_a_unit(value: object) -> None:
    with pytest.raises(ValueError, match="'30' needs a unit"):
        D(value)  # type: ignore[arg-type]


def test_constructor_rejects_negative_and_mixed() -> None:
    with pytest.raises(ValueError, match="negative"):
        Duration(days=-1)
    with pytest.raises(ValueError, match="business days"):
        Duration(days=1, business_days=2)


@pytest.mark.parametrize(
    ("text", "words", "iso"),
    [
        ("P30D", "30 days", "P30D"),
        ("one month", "1 month", "P1M"),
        ("1 year and 6 months", "1 year 6 months", "P1Y6M"),
        ("PT72H", "72 hours", "PT72H"),
        ("2 weeks", "2 weeks", "P2W"),
        ("1 day", "1 day", "P1D"),
        ("P0D", "0 days", "P0D"),
        ("15 working days", "15 business days", None),
    ],
)
def test_str_and_iso_round_trip(text: str, words: str, iso: str | None) -> None:
    duration = D(text)
    assert str(duration) == words
    assert duration.iso() == iso
    assert D(str(duration)) == duration
    if iso is not None:
        assert D(iso) == duration


def test_equality_is_the_same_arithmetic() -> None:
    assert D("1 month") == D("P1M")
    assert D("1 year") == D("12 months")
    assert D("2 weeks") == D("14 days")
    assert hash(D("2 weeks")) == hash(D("P14D"))
    assert D("P30D") != D("1 month")
    assert D("24 hours") != D("1 day")
    assert D("1 day") != "1 day"


def test_ordering_by_approximate_length() -> None:
    assert D("15 business days") < D("1 month") < D("45 days")
    assert D("P30D") < D("1 month")
    assert D("72 hours") < D("3 business days")
    assert D("1 month") <= D("1 month")
    assert D("2 months") > D("45 days") >= D("45 days")
    assert max(D("1 year"), D("400 days"), D("11 months")) == D("400 days")
    assert D("12 months").approx_days() == pytest.approx(365.25)
    assert D("1 month").approx_days() == pytest.approx(30.44, abs=0.01)
    assert D("5 business days").approx_days() == pytest.approx(7)


# --- add_to ---------------------------------------------------------------------------


def test_months_clamp_to_the_end_of_the_month() -> None:
    assert D("1 month").add_to(date(2025, 1, 31)) == date(2025, 2, 28)
    assert D("1 month").add_to(date(2028, 1, 31)) == date(2028, 2, 29)
    assert D("1 month").add_to(date(2025, 3, 15)) == date(2025, 4, 15)
    assert D("2 months").add_to(date(2025, 12, 31)) == date(2026, 2, 28)
    assert D("1 year").add_to(date(2028, 2, 29)) == date(2029, 2, 28)
    assert D("1 year 6 months").add_to(date(2025, 8, 31)) == date(2027, 2, 28)


def test_days_weeks_and_hours() -> None:
    assert D("30 days").add_to(date(2025, 1, 31)) == date(2025, 3, 2)
    assert D("2 weeks").add_to(date(2025, 12, 25)) == date(2026, 1, 8)
    assert D("72 hours").add_to(datetime(2025, 3, 28, 10, 30)) == datetime(2025, 3, 31, 10, 30)
    assert D("0 days").add_to(date(2025, 5, 5)) == date(2025, 5, 5)


def test_hours_are_elapsed_time_across_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2025, 3, 29, 12, 0, tzinfo=berlin)  # clocks go forward on 30 March
    due = D("72 hours").add_to(start)
    assert due == datetime(2025, 4, 1, 13, 0, tzinfo=berlin)
    # same-zone subtraction is wall-clock in Python; compare in UTC
    assert (due.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 72 * 3600


def test_hours_need_a_datetime() -> None:
    with pytest.raises(ValueError, match="needs a start time"):
        D("72 hours").add_to(date(2025, 1, 1))


def test_business_days_over_a_weekend() -> None:
    friday = date(2025, 6, 6)
    assert D("1 business day").add_to(friday) == date(2025, 6, 9)
    assert D("10 business days").add_to(friday) == date(2025, 6, 20)
    start = datetime(2025, 6, 6, 17, 45)
    assert D("3 business days").add_to(start) == datetime(2025, 6, 11, 17, 45)


def test_business_days_over_a_public_holiday() -> None:
    estonia = WorkCalendar("EE")
    assert not estonia.is_working_day(date(2025, 2, 24))  # Independence Day, a Monday
    assert D("1 business day").add_to(date(2025, 2, 21), estonia) == date(2025, 2, 25)
    assert D("1 business day").add_to(date(2025, 2, 21)) == date(2025, 2, 24)  # Mon-Fri only


def test_china_national_day_week_and_make_up_working_days() -> None:
    china = WorkCalendar("CN")
    assert china.is_working_day(date(2025, 9, 28))  # a Sunday, worked in exchange
    assert china.is_working_day(date(2025, 10, 11))  # a Saturday, worked in exchange
    assert not any(china.is_working_day(date(2025, 10, d)) for d in range(1, 9))
    # Fri 26 Sep: Sun 28, Mon 29, Tue 30, Thu 9, Fri 10, Sat 11, Mon 13 ... Thu 16 Oct
    assert D("10 business days").add_to(date(2025, 9, 26), china) == date(2025, 10, 16)
    assert D("4 business days").add_to(date(2025, 9, 26), china) == date(2025, 10, 9)


# --- WorkCalendar ------------------------------------------------------------------------


def test_working_days_between_counts_after_start_up_to_end() -> None:
    week = WorkCalendar(None)
    assert week.working_days_between(date(2025, 6, 6), date(2025, 6, 13)) == 5
    assert week.working_days_between(date(2025, 6, 13), date(2025, 6, 6)) == -5
    assert week.working_days_between(date(2025, 6, 6), date(2025, 6, 6)) == 0
    china = WorkCalendar("CN")
    start = date(2025, 9, 26)
    assert china.working_days_between(start, china.add_working_days(start, 10)) == 10


def test_add_working_days_zero_and_negative() -> None:
    assert WorkCalendar(None).add_working_days(date(2025, 6, 7), 0) == date(2025, 6, 7)
    with pytest.raises(ValueError):
        WorkCalendar(None).add_working_days(date(2025, 6, 7), -1)


def test_subdivision_holidays() -> None:
    california = WorkCalendar("US", "CA")
    assert not california.is_working_day(date(2025, 3, 31))  # Cesar Chavez Day
    assert WorkCalendar("US").is_working_day(date(2025, 3, 31))


def test_unknown_country_and_subdivision() -> None:
    with pytest.raises(ValueError, match="'XX' is not a country") as error:
        WorkCalendar("XX")
    assert "did you mean" in str(error.value)
    with pytest.raises(ValueError, match="did you mean 'GB'"):
        WorkCalendar("gb")
    with pytest.raises(ValueError, match="'ZZ' is not a subdivision of US"):
        WorkCalendar("US", "ZZ")


# --- pydantic ---------------------------------------------------------------------------


class Rule(BaseModel):
    keep: Duration
    notice: Duration | None = None


def _message(value: object) -> str:
    with pytest.raises(ValidationError) as error:
        Rule(keep=value)
    (err,) = error.value.errors()
    return err["msg"]


def test_pydantic_field_validates_and_serializes() -> None:
    rule = Rule(keep="3 years", notice=Duration(days=30))
    assert rule.keep == Duration(years=3)
    assert rule.notice == D("P30D")
    assert rule.model_dump() == {"keep": "3 years", "notice": "30 days"}
    assert rule.model_dump_json() == '{"keep":"3 years","notice":"30 days"}'
    assert Rule.model_validate_json(rule.model_dump_json()) == rule


def test_pydantic_error_message_is_exactly_ours() -> None:
    assert _message("3 yaers") == "'3 yaers' is not a duration: did you mean '3 years'?"
    assert _message(30) == "'30' needs a unit: write e.g. '30 days', '30 months' or '30 years'"
    assert _message("{x} days").startswith("'{x} days' is not a duration")
    assert _message(True).startswith("the boolean true is not a duration")
    assert _message(2.5).startswith("the number 2.5 needs a unit")


def test_pydantic_json_schema_is_a_string() -> None:
    schema = Rule.model_json_schema()["properties"]["keep"]
    assert schema["type"] == "string"
