"""`tenantry up` and `tenantry serve`: run the HTTP API under uvicorn."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Annotated

import typer
import uvicorn

from tenantry import schema
from tenantry.app import create_app
from tenantry.cli.console import console, fail
from tenantry.config import Settings, SettingsError, check_environment
from tenantry.datadir import ensure_data_dir

Host = Annotated[str, typer.Option(help="Interface to bind.")]
Port = Annotated[int, typer.Option(help="TCP port to bind.", min=1, max=65535)]


def _settings() -> Settings:
    settings = Settings()
    try:
        check_environment(settings)
    except SettingsError as exc:
        fail(str(exc))
    return settings


def _uvicorn_config(app: object, host: str, port: int, **extra: object) -> uvicorn.Config:
    # Logging is ours (structlog, redaction); uvicorn must not install its own.
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, server_header=False, **extra
    )


def up(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Run API, worker and scheduler in one process (creates and migrates the data dir)."""
    settings = _settings()
    ensure_data_dir(settings)
    asyncio.run(schema.upgrade(settings.resolved_migration_database_url))
    uvicorn.Server(_uvicorn_config(create_app(settings), host, port)).run()


def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.", min=1)] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = False,
) -> None:
    """Run the API alone; refuses to start when the schema is not at the code's revision."""
    settings = _settings()
    if migrate:
        asyncio.run(schema.upgrade(settings.resolved_migration_database_url))
    elif drift := asyncio.run(schema.full_drift(settings.resolved_migration_database_url)):
        fail("schema drift, run `tenantry migrate` or pass --migrate: " + "; ".join(drift))
    if workers == 1:
        uvicorn.Server(_uvicorn_config(create_app(settings), host, port)).run()
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics in any of them adds all up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tenantry-metrics-")
        console.print(f"metrics shared through {os.environ['PROMETHEUS_MULTIPROC_DIR']}")
    uvicorn.run(
        "tenantry.app:create_app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
    )
