"""Durations as a policy writes them ("30 days", "1 month", "15 business days", "P3Y"),
and the working-day calendars that business days are counted on.

Design choices:

* A `Duration` keeps the units it was written in: "1 month" is not "30 days", because
  adding one month to 31 January lands on 28/29 February, and adding 30 days does not.
* Equality means "the same arithmetic": `1 year == 12 months == P1Y` and
  `2 weeks == 14 days`, since `add_to` gives the same day for every start. `24 hours`
  is not `1 day` (hours are elapsed time, days are calendar days).
* Ordering (`<`, `<=`, ...) compares `approx_days()`, so a promise of "30 days" can be
  checked against a law's "1 month". Two durations may therefore be neither equal nor
  ordered apart ("24 hours" vs "1 day": `<=` and `>=` both hold, `==` does not).
* Business days have no ISO 8601 form; `iso()` returns None for them.
* A zero duration ("0 days", "P0D") is allowed: it means "immediately".
"""

from __future__ import annotations

import difflib
import operator
import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import holidays
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from lawful.policy.vocabulary import did_you_mean

# Average lengths, for ordering only (a year is 12 months, so "1 year" and "12 months"
# have the same length here as they are equal).
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12  # ≈ 30.44
DAYS_PER_BUSINESS_DAY = 7 / 5

_EXAMPLES = "write e.g. '30 days', '3 years', '15 business days' or ISO 8601 'P30D'"

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip
_NUMBERS: dict[str, int] = {w: n for n, w in enumerate(_ONES)} | _TENS | {"a": 1, "an": 1}
_NUMBERS |= {f"{t}-{o}": tn + on for t, tn in _TENS.items() for on, o in enumerate(_ONES[1:10], 1)}

# unit words, singular and plural -> Duration field
_UNIT_WORDS = {
    "years": ("year", "calendar year"),
    "months": ("month", "calendar month"),
    "weeks": ("week", "calendar week"),
    "days": ("day", "calendar day"),
    "hours": ("hour",),
    "business_days": ("business day", "working day"),
}
_UNITS = {w + s: unit for unit, words in _UNIT_WORDS.items() for w in words for s in ("", "s")}
_QUALIFIERS = {"calendar", "business", "working"}

_ISO = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?P<hours>\d+)H)?"
)


def _invalid(value: str, hint: str = "") -> ValueError:
    return ValueError(f"'{value}' is not a duration: {hint or _EXAMPLES}")


@dataclass(frozen=True, eq=False)
class Duration:
    """A length of time in calendar units, or in business days (never both)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    business_days: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Duration.{f.name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"a duration cannot be negative ({f.name}={value})")
        if self.business_days and (
            self.years or self.months or self.weeks or self.days or self.hours
        ):
            raise ValueError("business days cannot be mixed with other units")

    # --- parsing --------------------------------------------------------------------

    @classmethod
    def parse(cls, value: str) -> Duration:
        """Parse ISO 8601 (`P30D`, `P1Y6M`, `PT72H`) or words (`30 days`, `1 year and 6 months`)."""
        if isinstance(value, bool) or not isinstance(value, str):
            raise ValueError(_needs_unit(value))
        text = " ".join(value.strip().lower().split())
        if not text:
            raise ValueError(f"an empty text is not a duration: {_EXAMPLES}")
        if text.lstrip("+").isdigit():
            raise ValueError(_needs_unit(value))
        if text.startswith("-"):
            raise ValueError(f"'{value}' is negative: a duration counts forward, e.g. '30 days'")
        if text.startswith("p") and " " not in text:
            return cls._parse_iso(value, text.upper())
        return cls._parse_words(value, text)

    @classmethod
    def _parse_iso(cls, value: str, text: str) -> Duration:
        match = _ISO.fullmatch(text)
        if not match or text in ("P", "PT") or text.endswith("T"):
            raise _invalid(
                value,
                "write ISO 8601 durations in whole years, months, weeks, days or hours, "
                "e.g. 'P30D', 'P1Y6M', 'PT72H' (minutes, seconds and fractions are not supported)",
            )
        return cls(**{k: int(v) for k, v in match.groupdict().items() if v})

    @classmethod
    def _parse_words(cls, value: str, text: str) -> Duration:
        tokens = text.replace(",", " , ").split()
        parts: dict[str, int] = {}
        i = 0
        while i < len(tokens):
            if parts:  # between parts: ",", "and", ", and" or nothing
                if tokens[i : i + 2] == [",", "and"]:
                    i += 2
                elif tokens[i] in (",", "and"):
                    i += 1
                if i == len(tokens):
                    raise _invalid(value)
            number, i = _read_number(value, tokens, i)
            unit, i = _read_unit(value, tokens, i)
            if unit in parts:
                raise _invalid(value, f"it names {unit.replace('_', ' ')} twice; write them once")
            parts[unit] = number
        if "business_days" in parts and len(parts) > 1:
            raise ValueError(
                f"'{value}' mixes business days with other units: write business days alone, "
                "e.g. '15 business days', or calendar units, e.g. '3 weeks'"
            )
        return cls(**parts)

    # --- presentation ---------------------------------------------------------------

    def __str__(self) -> str:
        words = []
        for f in fields(self):
            n = getattr(self, f.name)
            if n:
                unit = f.name.replace("_", " ")
                words.append(f"{n} {unit[:-1] if n == 1 else unit}")
        return " ".join(words) or "0 days"

    def __repr__(self) -> str:
        return f"Duration.parse({str(self)!r})"

    def iso(self) -> str | None:
        """ISO 8601 form (`P1Y6M`, `PT72H`); None for business days, which ISO cannot express."""
        if self.business_days:
            return None
        date_part = "".join(
            f"{n}{letter}"
            for n, letter in (
                (self.years, "Y"),
                (self.months, "M"),
                (self.weeks, "W"),
                (self.days, "D"),
            )
            if n
        )
        time_part = f"T{self.hours}H" if self.hours else ""
        return f"P{date_part}{time_part}" if date_part or time_part else "P0D"

    # --- comparison -----------------------------------------------------------------

    def _key(self) -> tuple[int, int, int, int]:
        return (
            self.years * 12 + self.months,
            self.weeks * 7 + self.days,
            self.hours,
            self.business_days,
        )

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Duration) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def approx_days(self) -> float:
        """Average length in days, for ordering durations written in different units."""
        return (
            self.years * DAYS_PER_YEAR
            + self.months * DAYS_PER_MONTH
            + self.weeks * 7
            + self.days
            + self.hours / 24
            + self.business_days * DAYS_PER_BUSINESS_DAY
        )

    def _compare(self, other: object, op: Callable[[float, float], bool]) -> bool:
        if not isinstance(other, Duration):
            return NotImplemented
        return op(self.approx_days(), other.approx_days())

    def __lt__(self, other: object) -> bool:
        return self._compare(other, operator.lt)

    def __le__(self, other: object) -> bool:
        return self._compare(other, operator.le)

    def __gt__(self, other: object) -> bool:
        return self._compare(other, operator.gt)

    def __ge__(self, other: object) -> bool:
        return self._compare(other, operator.ge)

    # --- arithmetic -----------------------------------------------------------------

    def add_to(
        self, start: datetime | date, calendar: WorkCalendar | None = None
    ) -> datetime | date:
        """The day (or instant) this long after `start`; returns the type of `start`.

        Months and years first, clamped to the month's end (31 January + 1 month = 28/29
        February), then weeks and days, then hours as elapsed time. Regulation (EEC,
        Euratom) No 1182/71 Art. 3(2)(c) ends a period in months on the same date of the
        last month, or that month's last day when the date does not exist; GDPR Art. 12(3)
        "one month" is read this way in practice (also by the ICO). A deadline falling on
        a non-working day is not rolled forward here, though Reg. 1182/71 Art. 3(4) moves
        it to the next working day: the earlier day is the cautious one, the caller decides.

        Business days step over the calendar's non-working days (Mon–Fri when no
        calendar is given); a datetime keeps its time of day. Hours need a datetime.
        """
        if self.business_days:
            calendar = calendar or WorkCalendar(None)
            if isinstance(start, datetime):
                day = calendar.add_working_days(start.date(), self.business_days)
                return datetime.combine(day, start.time(), start.tzinfo)
            return calendar.add_working_days(start, self.business_days)
        if self.hours and not isinstance(start, datetime):
            raise ValueError(f"'{self}' needs a start time (datetime), not a date")
        result = _add_months(start, self.years * 12 + self.months)
        result += timedelta(weeks=self.weeks, days=self.days)
        if self.hours and isinstance(result, datetime):
            if result.tzinfo is None:
                result += timedelta(hours=self.hours)
            else:  # elapsed hours, also across a daylight-saving change
                result = (result.astimezone(UTC) + timedelta(hours=self.hours)).astimezone(
                    result.tzinfo
                )
        return result

    # --- pydantic -------------------------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "description": "a duration: a number and a unit, or ISO 8601",
            "examples": ["30 days", "1 month", "15 business days", "P3Y"],
        }

    @classmethod
    def _validate(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        try:
            return cls.parse(value)
        except ValueError as error:
            # "{message}" so the text reaches the user verbatim, without "Value error, "
            raise PydanticCustomError("duration", "{message}", {"message": str(error)}) from None


def _needs_unit(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()} is not a duration: {_EXAMPLES}"
    if isinstance(value, float) and not value.is_integer():
        return f"the number {value} needs a unit and a whole number: write e.g. '36 hours'"
    if isinstance(value, int | float | str):
        n = int(value) if isinstance(value, float) else value
        return f"'{n}' needs a unit: write e.g. '{n} days', '{n} months' or '{n} years'"
    return f"expected a duration, got {type(value).__name__}: {_EXAMPLES}"


def _read_number(value: str, tokens: list[str], i: int) -> tuple[int, int]:
    word = tokens[i]
    if word.isdigit():
        return int(word), i + 1
    if word in _TENS and i + 1 < len(tokens) and tokens[i + 1] in _ONES[1:10]:  # "forty five"
        return _TENS[word] + _ONES.index(tokens[i + 1]), i + 2
    if word in _NUMBERS:
        return _NUMBERS[word], i + 1
    if re.fullmatch(r"\d+[.,]\d+", word):
        raise _invalid(value, "use whole numbers, e.g. '36 hours' rather than '1.5 days'")
    guess = did_you_mean(word, [w for w in _NUMBERS if len(w) > 2])
    if guess and i + 1 < len(tokens):
        raise ValueError(
            f"'{value}' is not a duration: did you mean '{_fix(tokens, i, 1, guess)}'?"
        )
    raise _invalid(value)


def _fix(tokens: list[str], i: int, width: int, guess: str) -> str:
    """The text with tokens[i:i+width] replaced by the guess, for a did-you-mean."""
    return " ".join([*tokens[:i], guess, *tokens[i + width :]]).replace(" ,", ",")


def _read_unit(value: str, tokens: list[str], i: int) -> tuple[str, int]:
    if i >= len(tokens):
        raise _invalid(value, f"a number needs a unit; {_EXAMPLES}")
    two = " ".join(tokens[i : i + 2])
    if tokens[i] in _QUALIFIERS and two in _UNITS:
        return _UNITS[two], i + 2
    if tokens[i] in _UNITS:
        return _UNITS[tokens[i]], i + 1
    if tokens[i] in ("minute", "minutes", "second", "seconds"):
        raise _invalid(value, "the smallest unit is hours, e.g. '72 hours'")
    for width in (2, 1) if i + 1 < len(tokens) else (1,):
        guess = did_you_mean(" ".join(tokens[i : i + width]), list(_UNITS))
        if guess:
            raise ValueError(
                f"'{value}' is not a duration: did you mean '{_fix(tokens, i, width, guess)}'?"
            )
    raise _invalid(value)


def _add_months(start: date, months: int) -> date:
    if not months:
        return start
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    month += 1
    return start.replace(year=year, month=month, day=min(start.day, monthrange(year, month)[1]))


# --- working-day calendars -----------------------------------------------------------


@lru_cache(maxsize=1)
def _supported() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


def _close(code: str, codes: list[str]) -> list[str]:
    return difflib.get_close_matches(code, codes, n=3, cutoff=0.5)


@lru_cache(maxsize=512)
def _holidays(country: str, subdiv: str | None, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdiv, years=year)


@dataclass(frozen=True)
class WorkCalendar:
    """Working days of a country (and subdivision), from the `holidays` package.

    Weekends and public holidays are not working days; make-up working days (China's
    调休 weekends) are. With `country=None`, Monday to Friday are working days.
    """

    country: str | None
    subdiv: str | None = None

    def __post_init__(self) -> None:
        if self.country is None:
            if self.subdiv is not None:
                raise ValueError("a subdivision needs a country")
            return
        supported = _supported()
        if self.country not in supported:
            upper = self.country.upper()
            same_length = [c for c in supported if len(c) == len(upper)]
            close = [upper] if upper in supported else _close(upper, same_length)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"'{self.country}' is not a country with a holiday calendar{hint}")
        if self.subdiv is not None and self.subdiv not in supported[self.country]:
            close = _close(self.subdiv.upper(), supported[self.country])
            hint = (
                f"did you mean {' or '.join(repr(c) for c in close)}?"
                if close
                else (f"use one of: {', '.join(supported[self.country])}")
            )
            raise ValueError(f"'{self.subdiv}' is not a subdivision of {self.country}; {hint}")

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            d = d.date()
        if self.country is None:
            return d.weekday() < 5
        return _holidays(self.country, self.subdiv, d.year).is_working_day(d)

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (counting starts the day after); n=0 is `start`."""
        if n < 0:
            raise ValueError("count working days forward (n >= 0)")
        day = start
        while n:
            day += timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def working_days_between(self, a: date, b: date) -> int:
        """Working days after `a` up to and including `b`; negative when `b` is before `a`."""
        if b < a:
            return -self.working_days_between(b, a)
        return sum(self.is_working_day(a + timedelta(days=i)) for i in range(1, (b - a).days + 1))
