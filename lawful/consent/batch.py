"""Batch decisions: decide once per distinct state, and share the answer.

A marketing send asks one question about many subjects, and most of them are in one of
a few states (consent given and still valid, withdrawn, none at all). `decide_rows`
reads each subject's state straight from the driver's rows (see
`lawful.consent.ledger.state_rows_by_hash`), reduces it to its *shape*, and asks the
`Decider` only for a shape it has not seen in this batch; only then is a SubjectState
built.

The reuse is exact. A decision depends on the question (the same for the whole batch)
and on the subject's state only through what the shape holds: the subject's kind,
jurisdiction, country and birth date, and per choice its topic, key, scope, state,
method and policy version, and whether it expired (and on which day: refusals name
it). It never depends on who the subject is (id, ref), so subjects of one shape get
equal decisions: the same Decision object, which is immutable.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from lawful.consent.decide import UNKNOWN_SUBJECT, Decider, Decision, Signals, SubjectState
from lawful.consent.ledger import EXPIRES, KIND, TOPIC, VERSION, RowValues, StateRow

_NOT_EXPIRED = True  # the expiry part of a shape for a choice still valid: never a date


class BatchDecider:
    """One question (a purpose, with its channel, list, recipient, signals and time)
    asked about many subjects."""

    def __init__(
        self,
        decider: Decider,
        purpose: str,
        *,
        channel: str | None = None,
        list_name: str | None = None,
        jurisdiction: str | None = None,
        recipient: str | None = None,
        signals: Signals,
        now: datetime,
    ) -> None:
        self.decider = decider
        self.purpose = purpose
        self.channel = channel
        self.list_name = list_name
        self.jurisdiction = jurisdiction
        self.recipient = recipient
        self.signals = signals
        self.now = now

    def decide(self, state: SubjectState) -> Decision:
        """The decision for one subject state (what `Decider.decide` answers)."""
        return self.decider.decide(
            state,
            self.purpose,
            channel=self.channel,
            list_name=self.list_name,
            jurisdiction=self.jurisdiction,
            recipient=self.recipient,
            signals=self.signals,
            now=self.now,
        )

    def unknown(self) -> Decision:
        """The decision for a subject nobody knows."""
        return self.decide(UNKNOWN_SUBJECT)

    def decide_rows(
        self, keys: Sequence[Hashable], rows: Sequence[StateRow], values: RowValues
    ) -> list[Decision]:
        """The decision for the subject of each key, in order, from the state rows.

        A row's first column is its subject's key; a key without rows names nobody
        known, and rows of keys not asked for are left alone.
        """
        # The last row of each subject, in the order rows were read: rows read together
        # lie together in memory, so going through them in that order rather than the
        # batch's costs a fraction (measured: a third) of the time. One dict lookup per
        # subject remains, to put its decision in place.
        last = {row[0]: row for row in rows}
        several = _several(rows, last) if len(last) < len(rows) else {}
        placed: dict[Hashable, Decision | None] = dict.fromkeys(keys)
        expiry = _expiry(values, self.now)
        known: dict[Hashable, Decision] = {}
        found = 0
        for key, row in last.items():
            if key not in placed:  # another identity of the controller (a whole read)
                continue
            # The shape, inline for a subject with one row (one choice, or none): this
            # loop runs once per subject. A single row's shape has 11 items, a longer
            # group's 5, so the two kinds never collide.
            group = several.get(key) if several else None
            if group is not None:
                shape: Hashable = _group_shape(group, expiry)
            elif row[EXPIRES] is None:
                shape = row[KIND : VERSION + 1]
            else:
                shape = (*row[KIND:EXPIRES], expiry(row[EXPIRES]), row[VERSION])
            decision = known.get(shape)
            if decision is None:
                decision = known[shape] = self.decide(values.state(group or (row,)))
            placed[key] = decision
            found += 1
        decisions = [placed[key] for key in keys]
        if found < len(placed):  # some keys name nobody known
            unknown = self.unknown()
            return [unknown if d is None else d for d in decisions]
        return cast(list[Decision], decisions)


def _several(rows: Sequence[StateRow], last: dict[Any, StateRow]) -> dict[Any, list[StateRow]]:
    """All the rows of each subject with more than one (`last` holds one per subject)."""
    several: dict[Any, list[StateRow]] = {}
    for row in rows:
        kept = last[row[0]]
        if kept is not row:
            several.setdefault(row[0], [kept]).append(row)
    return several


def _expiry(values: RowValues, now: datetime) -> Callable[[Any], object]:
    """What a decision at `now` can tell of a choice's expiry as the driver returns it
    (not None): that it has not passed, or the day it passed."""
    read = values.read_time
    # Naive times are UTC: compared with `now` in UTC without a zone, they order and
    # fall on days as the aware times the decider sees do.
    cutoff = now.astimezone(UTC).replace(tzinfo=None) if values.naive else now

    def expiry(value: Any) -> object:
        expires: datetime = value if read is None else read(value)
        return _NOT_EXPIRED if expires > cutoff else expires.date()

    return expiry


def _group_shape(rows: list[StateRow], expiry: Callable[[Any], object]) -> Hashable:
    """The shape of a subject with several choices: attributes, then the sorted choices."""
    choices = sorted(
        (
            *row[TOPIC:EXPIRES],
            None if row[EXPIRES] is None else expiry(row[EXPIRES]),
            row[VERSION],
        )
        for row in rows
    )
    return (*rows[0][KIND:TOPIC], tuple(choices))
