"""Counting in memory, writing in batches: a record of refusals that never writes on the
request path.

Each `add` bumps a count per key; a background task writes one row per key
once a second, with its count and the time of its last occurrence. A flood
from one caller is one row a second, not one per request. Past `MAX_KEYS`
distinct keys in a second, further keys are dropped (counted in the given
metric; the log lines remain). A crash loses at most the last second's counts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import Counter as Metric
from sqlalchemy import insert

from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id

log = structlog.get_logger(__name__)

FLUSH_EVERY_S = 1.0
MAX_KEYS = 10_000

Key = tuple[Any, ...]


class BatchedCounts:
    def __init__(
        self,
        database: Database,
        model: Any,
        fields: Sequence[str],
        *,
        id_prefix: str,
        dropped: Metric,
    ) -> None:
        self.database = database
        self.model = model
        self.fields = tuple(fields)
        self.id_prefix = id_prefix
        self.dropped = dropped
        self._counts: Counter[Key] = Counter()
        self._last: dict[Key, datetime] = {}

    def count(self, key: Key) -> None:
        """One occurrence of `key` (values in the order of `fields`)."""
        if key not in self._counts and len(self._counts) >= MAX_KEYS:
            self.dropped.inc()
            return
        self._counts[key] += 1
        self._last[key] = utcnow()

    async def flush(self) -> int:
        """Write what was counted since the last flush; returns the number of occurrences."""
        counts, last = self._counts, self._last
        self._counts, self._last = Counter(), {}
        rows = [
            dict(
                zip(self.fields, key, strict=True),
                id=new_id(self.id_prefix),
                occurred_at=last[key],
                count=count,
            )
            for key, count in counts.items()
        ]
        if rows:
            async with self.database.session(cross_tenant=self.model.__tablename__) as session:
                await session.execute(insert(self.model), rows)
        return sum(counts.values())

    async def run(self) -> None:
        """Flush every second until cancelled; a failed write is logged and its rows dropped."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                await self.flush()
            except Exception:
                log.warning("batched_flush_failed", table=self.model.__tablename__, exc_info=True)
