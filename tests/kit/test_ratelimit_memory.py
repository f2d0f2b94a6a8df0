"""The in-process rate-limit storage: counts as `limits` does, sweeps at most every interval."""

from __future__ import annotations

import asyncio

from tenantry.kit import ratelimit
from tenantry.kit.ratelimit import Limit, RateLimiter, SweptMemoryStorage


async def test_hits_on_many_keys_sweep_once_per_interval() -> None:
    limiter = RateLimiter(None)
    storage = limiter._memory.storage
    assert isinstance(storage, SweptMemoryStorage)
    limit = Limit.of("probe", "2/hour")
    sweeps: set[int] = set()
    for n in range(300):
        await limiter.hit(limit, f"address-{n}")
        if storage.timer is not None:
            sweeps.add(id(storage.timer))
        await asyncio.sleep(0)  # other requests run between hits: a started sweep finishes
    # The library alone starts a sweep of every key at each hit that finds none running.
    assert len(sweeps) == 1


async def test_counts_and_refuses_as_before() -> None:
    limiter = RateLimiter(None)
    limit = Limit.of("probe", "2/hour")
    decisions = [await limiter.hit(limit, "one address") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert (await limiter.hit(limit, "another")).allowed
    assert ratelimit.SWEEP_EVERY_S >= 1
