"""`tenantry up` and `tenantry serve`: run the HTTP API under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from typing import Annotated, Any

import typer
import uvicorn

from tenantry import schema
from tenantry.app import create_app
from tenantry.cli.console import console, fail
from tenantry.config import Settings, SettingsError, check_environment
from tenantry.datadir import ensure_data_dir

Host = Annotated[str, typer.Option(help="Interface to bind.")]
Port = Annotated[int, typer.Option(help="TCP port to bind.", min=1, max=65535)]

# Logging is ours (structlog, redaction): uvicorn must not install its own.
SERVER_OPTIONS: dict[str, Any] = {"log_config": None, "access_log": False, "server_header": False}


def settings_for_start() -> Settings:
    settings = Settings()
    try:
        check_environment(settings)
    except SettingsError as exc:
        fail(str(exc))
    ensure_data_dir(settings)
    return settings


def refuse_on_drift(settings: Settings) -> None:
    if drift := asyncio.run(schema.full_drift(settings.resolved_migration_database_url)):
        fail("schema drift, run `tenantry migrate` or pass --migrate: " + "; ".join(drift))


def _run_in_process(
    settings: Settings, host: str, port: int, *, embedded_worker: bool = False
) -> None:
    # uvicorn re-raises the stop signal once it has shut down gracefully; a stop
    # that was asked for and completed is a success, so it exits 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: sys.exit(0))
    app = create_app(settings, embedded_worker=embedded_worker)
    config = uvicorn.Config(app, host=host, port=port, **SERVER_OPTIONS)
    uvicorn.Server(config).run()


def up(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run API, worker and scheduler in one process (creates and migrates the data dir)."""
    settings = settings_for_start()
    asyncio.run(schema.migrate(settings))
    _run_in_process(settings, host, port, embedded_worker=True)


def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.", min=1)] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = False,
) -> None:
    """Run the API alone; refuses to start when the schema is not at the code's revision."""
    settings = settings_for_start()
    if migrate:
        asyncio.run(schema.migrate(settings))
    else:
        refuse_on_drift(settings)
    if workers == 1:
        _run_in_process(settings, host, port)
        return
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Each worker writes its metrics here; /metrics in any of them adds all up.
            shared = stack.enter_context(tempfile.TemporaryDirectory(prefix="tenantry-metrics-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared
            console.print(f"metrics shared through {shared}")
        uvicorn.run(
            "tenantry.app:create_app_from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            **SERVER_OPTIONS,
        )
