"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Counts of requests by state, overdue requests and open incidents are read from the
store when scraped (one grouped query each, so every server reports the same figures);
the decision latency histogram is this process's own.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from lawful.incidents.tables import incidents
from lawful.requests.states import CLOSED, RequestState
from lawful.requests.tables import requests
from lawful.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a decision from the cache takes tens of microseconds, one reading the store
# a millisecond or two, a large batch up to seconds.
DECISION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Histogram:
    """A cumulative histogram with fixed buckets, one series per label value."""

    def __init__(self, name: str, help_text: str, label: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.help = help_text
        self.label = label
        self.buckets = tuple(buckets)
        self._series: dict[str, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, label_value: str, seconds: float) -> None:
        with self._lock:
            counts, total = self._series.setdefault(
                label_value, ([0] * (len(self.buckets) + 1), [0.0])
            )
            counts[bisect.bisect_left(self.buckets, seconds)] += 1
            total[0] += seconds

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            series = {k: (list(c), t[0]) for k, (c, t) in self._series.items()}
        for value, (counts, total) in sorted(series.items()):
            label = f'{self.label}="{_escape(value)}"'
            running = 0
            for bound, count in zip(self.buckets, counts, strict=False):
                running += count
                yield f'{self.name}_bucket{{{label},le="{_number(bound)}"}} {running}'
            running += counts[-1]
            yield f'{self.name}_bucket{{{label},le="+Inf"}} {running}'
            yield f"{self.name}_sum{{{label}}} {_number(total)}"
            yield f"{self.name}_count{{{label}}} {running}"


class Metrics:
    """What `/metrics` reports for one controller."""

    def __init__(self, store: Store, controller_id: int) -> None:
        self.store = store
        self.controller_id = controller_id
        self.decisions = Histogram(
            "lawful_decision_duration_seconds",
            "Time to answer a decision request, by endpoint (single or batch).",
            "endpoint",
            DECISION_BUCKETS,
        )

    def render(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        by_state = {s.value: 0 for s in RequestState}
        with self.store.engine.connect() as conn:
            for state, count in conn.execute(
                sa.select(requests.c.state, sa.func.count())
                .where(requests.c.controller_id == self.controller_id)
                .group_by(requests.c.state)
            ):
                by_state[state] = int(count)
            overdue = conn.scalar(
                sa.select(sa.func.count()).where(
                    requests.c.controller_id == self.controller_id,
                    requests.c.state.notin_([s.value for s in CLOSED]),
                    requests.c.due_at < now,
                    requests.c.paused_at.is_(None),  # a stopped clock runs late for no one
                )
            )
            open_incidents = conn.scalar(
                sa.select(sa.func.count()).where(
                    incidents.c.controller_id == self.controller_id, incidents.c.state == "open"
                )
            )
        lines = [
            "# HELP lawful_requests Data-subject requests by state.",
            "# TYPE lawful_requests gauge",
            *(f'lawful_requests{{state="{s}"}} {n}' for s, n in sorted(by_state.items())),
            "# HELP lawful_requests_overdue Open data-subject requests past their due date.",
            "# TYPE lawful_requests_overdue gauge",
            f"lawful_requests_overdue {int(overdue or 0)}",
            "# HELP lawful_incidents_open Breaches not closed yet.",
            "# TYPE lawful_incidents_open gauge",
            f"lawful_incidents_open {int(open_incidents or 0)}",
            *self.decisions.lines(),
        ]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value))
