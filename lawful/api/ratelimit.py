"""Per-client token buckets for the endpoints anyone may call (no key).

Each client address has one bucket per class of endpoint: it holds up to `burst`
tokens, refilled at `per_minute` a minute; a call takes one, and when the bucket is
empty the call is refused with 429 and how many seconds to wait. The buckets live in
the process (several servers each count on their own); the table is bounded: past
`max_clients` addresses the least recently seen are forgotten.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """`burst` calls at once, then `per_minute` calls a minute."""

    burst: int
    per_minute: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_minute <= 0:
            raise ValueError("a rate limit needs a burst of 1 or more and a positive rate")


# Submitting and verifying: 10 at once, then one every 6 s (a person retyping a code
# has room; a script trying identities or codes does not).
WRITE_LIMIT = Limit(burst=10, per_minute=10)
# Following a request's status, downloading a package: 60 at once, then one a second.
READ_LIMIT = Limit(burst=60, per_minute=60)


class RateLimiter:
    """Token buckets keyed by (client, class)."""

    def __init__(
        self,
        limits: dict[str, Limit],
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str, kind: str) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is available."""
        limit = self.limits[kind]
        rate = limit.per_minute / 60.0
        now = self.clock()
        key = (client, kind)
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / rate
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait)))
