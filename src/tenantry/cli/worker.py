"""`tenantry worker`: the job runner and scheduler without the API."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer
from prometheus_client import start_http_server

from tenantry.cli.server import refuse_on_drift, settings_for_start
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.logging import configure_logging
from tenantry.worker.registry import load_task_modules
from tenantry.worker.runner import Worker


async def _run(settings: Settings, concurrency: int | None, queues: list[str] | None) -> None:
    database = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
    worker = Worker(database, settings, concurrency=concurrency, queues=queues)
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, worker.stop)
    try:
        await worker.run()
    finally:
        await database.dispose()


def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once.", min=1)] = None,
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues (default: all).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Interface for the metrics port.")
    ] = "127.0.0.1",
) -> None:
    """Run jobs and fire schedules; SIGTERM finishes or releases running jobs, then exits 0."""
    # Stopped while starting up, nothing was claimed yet: a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    settings = settings_for_start()
    refuse_on_drift(settings)
    configure_logging(json=settings.is_prod, level=settings.log_level)
    load_task_modules(settings)
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host)
    names = [name.strip() for name in queues.split(",") if name.strip()] if queues else None
    asyncio.run(_run(settings, concurrency, names))
