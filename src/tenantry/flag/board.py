"""The switchboard: what the operators switched, as this process knows it.

Switches are rows of `switches` (tenantry.models.switch); a flag without a row
is on, degraded mode without a row is off. Every `flag_refresh_interval` (1 s)
each process reads the table (a handful of rows); a change this process
commits is in force here at once (published after commit), elsewhere within
the interval. Work already accepted is never dropped by a switch: a flag that
holds a queue (`provisioning`, `webhooks.delivery`) only stops its claims.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db import Database
from tenantry.models import Switch

log = structlog.get_logger(__name__)

FLAGS = ("signup", "login", "provisioning", "invitations", "jobs.enqueue", "webhooks.delivery")
DEGRADED = "degraded_mode"
# Flags that hold work in a queue rather than refuse requests: the queue they hold.
HELD_QUEUES = {"provisioning": "provisioning", "webhooks.delivery": "webhooks"}
TOPIC = "switches"


@dataclass(frozen=True)
class SwitchState:
    name: str
    enabled: bool
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None

    @classmethod
    def of(cls, row: Switch) -> SwitchState:
        return cls(row.name, row.enabled, row.reason, row.changed_by, row.changed_at)


def default(name: str) -> SwitchState:
    return SwitchState(name, enabled=name != DEGRADED)


async def read_all(session: AsyncSession) -> dict[str, SwitchState]:
    """Every switch, the ones never set at their defaults."""
    rows = (await session.execute(select(Switch))).scalars()
    stored = {row.name: SwitchState.of(row) for row in rows}
    return {name: stored.get(name, default(name)) for name in (*FLAGS, DEGRADED)}


async def held_queues(session: AsyncSession) -> list[str]:
    """Queues whose flag is off: workers claim nothing from them until it is on again."""
    switches = await read_all(session)
    return sorted(queue for flag, queue in HELD_QUEUES.items() if not switches[flag].enabled)


class Switchboard:
    def __init__(self, database: Database, interval_s: float) -> None:
        self.database = database
        self.interval_s = interval_s
        self.switches = {name: default(name) for name in (*FLAGS, DEGRADED)}
        # Changes this process committed, with when: applied again over a refresh that may
        # have read the table before they landed.
        self._here: list[tuple[float, SwitchState]] = []
        database.listen(TOPIC, self._commit_here)

    def _commit_here(self, state: SwitchState) -> None:
        self._here.append((time.monotonic(), state))
        self._apply(state)

    def _apply(self, state: SwitchState) -> None:
        self.switches = {**self.switches, state.name: state}

    def enabled(self, flag: str) -> bool:
        return self.switches[flag].enabled

    @property
    def degraded(self) -> SwitchState | None:
        """Degraded mode's state while it is on."""
        state = self.switches[DEGRADED]
        return state if state.enabled else None

    async def refresh(self) -> None:
        started = time.monotonic()
        async with self.database.reader(cross_tenant="switches") as session:
            self.switches = await read_all(session)
        self._here = [(at, state) for at, state in self._here if at >= started]
        for _, state in self._here:
            self._apply(state)

    async def run(self) -> None:
        """Refresh until cancelled; a failed read keeps the last known switches."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.refresh()
            except Exception:
                log.warning("switches_refresh_failed", exc_info=True)
