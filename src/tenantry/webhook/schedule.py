"""When a failed delivery is tried again (Svix's schedule, Standard Webhooks' advice).

Attempt 1 goes at once; after the n-th failure the next waits `DELAYS[n - 1]`, ±20 %
jitter so that a receiver back from an outage is not hit by every retry in the same
second. A receiver that says when to come back (`Retry-After` on 429, 502, 503, 504)
is heard between once and twice the scheduled delay: never sooner than the schedule, never
later than twice it.
"""

from __future__ import annotations

import random
from datetime import timedelta

DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(DELAYS) + 1
JITTER = 0.2
RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})


def next_delay(
    attempts: int, *, retry_after_s: float | None = None, status: int | None = None
) -> timedelta | None:
    """The wait after `attempts` failed attempts, or None when the schedule is spent."""
    if attempts >= MAX_ATTEMPTS:
        return None
    scheduled = DELAYS[attempts - 1]
    if retry_after_s is not None and status in RETRY_AFTER_STATUSES:
        asked = timedelta(seconds=retry_after_s)
        return min(max(asked, scheduled), 2 * scheduled)
    return scheduled * random.uniform(1 - JITTER, 1 + JITTER)
