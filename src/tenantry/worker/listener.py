"""PostgreSQL LISTEN: wake idle workers the moment a job commits.

Polling stays as the fallback; after any disconnect the listener reconnects,
listens again, and wakes the worker once to catch what it missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog
from sqlalchemy.engine import URL

from tenantry.worker.queue import NOTIFY_CHANNEL

log = structlog.get_logger(__name__)

RECONNECT_DELAY_S = 1.0


async def listen_for_jobs(url: URL, kick: asyncio.Event, stopping: asyncio.Event) -> None:
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stopping.is_set():
        lost = asyncio.Event()
        connection = None
        try:
            connection = await asyncpg.connect(dsn)
            connection.add_termination_listener(lambda _, lost=lost: lost.set())
            await connection.add_listener(NOTIFY_CHANNEL, lambda *_: kick.set())
            kick.set()
            waiters = [asyncio.create_task(lost.wait()), asyncio.create_task(stopping.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        except Exception as exc:  # keep listening whatever went wrong; polling covers the gap
            log.warning("listen_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
        if not stopping.is_set():
            await asyncio.sleep(RECONNECT_DELAY_S)
