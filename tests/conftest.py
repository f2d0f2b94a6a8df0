"""Fixtures shared by every test: servers, databases per backend, settings, the app and a client."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from fastapi import FastAPI

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.logging import build_formatter
from tenantry.worker.registry import load_task_modules
from tests.fixtures import databases, hygiene, secrets
from tests.fixtures.axe import axe_script  # noqa: F401 (a fixture for the page checks)
from tests.fixtures.browser import chromium  # noqa: F401 (a fixture for the browser tests)
from tests.fixtures.servers import PostgresServer, start_postgres, start_redis
from tests.fixtures.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
TENANTRY = str(Path(sys.executable).parent / "tenantry")

BACKENDS = ["sqlite", "postgres"]

RUN_TEMP = hygiene.mark_this_run()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """The run fails if any process it started outlives it, if this process still listens on
    a port it opened, or if its temporary directory holds anything (set up first,
    so checked last, after the session's PostgreSQL and Redis have stopped)."""
    ports = hygiene.listening_ports()
    yield
    deadline = time.monotonic() + 10
    while (left := hygiene.processes_of_this_run()) and time.monotonic() < deadline:
        time.sleep(0.2)  # a server stopping on SIGTERM may take a moment
    assert not left, f"processes left running: {left}"
    assert not hygiene.listening_ports() - ports, "ports left open by this process"
    left_in_temp = hygiene.temp_entries(RUN_TEMP)
    shutil.rmtree(RUN_TEMP, ignore_errors=True)
    assert not left_in_temp, f"left in the temporary directory: {sorted(left_in_temp)}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from start_redis()


@pytest.fixture
async def fresh_redis_url(redis_url: str) -> str:
    """The test Redis, emptied: counters of earlier tests do not leak in."""
    client = redis.asyncio.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    return redis_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.migrate_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    return databases.migrate_postgres_template(postgres_server)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend; a test class may pin one with @pytest.mark.parametrize."""
    return str(request.param)


@pytest.fixture
def template(backend: str, request: pytest.FixtureRequest) -> Any:
    # A sync fixture: the session templates are built here, outside any event loop.
    return request.getfixturevalue(f"{backend}_template")


@dataclass(frozen=True)
class DatabaseUrls:
    app: str  # the application's role (least privilege on PostgreSQL)
    owner: str  # the tables' owner: migrations, and tests that seed or inspect


@pytest.fixture
async def database_urls(
    backend: str, template: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DatabaseUrls]:
    """A freshly migrated database of the test's backend, private to the test."""
    if backend == "sqlite":
        url = databases.sqlite_copy(template, tmp_path)
        yield DatabaseUrls(url, url)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = await databases.create_postgres_database(server, template)
    yield DatabaseUrls(databases.app_url(server, name), server.url(name))
    await databases.drop_postgres_database(server, name)


@pytest.fixture
def database_url(database_urls: DatabaseUrls) -> str:
    """What the application connects with."""
    return database_urls.app


@pytest.fixture
def owner_database_url(database_urls: DatabaseUrls) -> str:
    return database_urls.owner


@pytest.fixture
async def empty_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """A database of the test's backend with no migration applied."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = await databases.create_postgres_database(server, None)
    yield server.url(name)
    await databases.drop_postgres_database(server, name)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def job_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url=database_url,
        job_backoff_base=timedelta(milliseconds=10),
        job_backoff_max=timedelta(milliseconds=50),
        job_poll_interval=timedelta(milliseconds=200),
    )


@pytest.fixture
async def database(job_settings: Settings, owner_database_url: str) -> AsyncIterator[Database]:
    """The test's own handle on the database, as its owner: row-level security does not
    hide what a test seeds or checks (the application runs as `database_url`)."""
    load_task_modules(job_settings)
    database = Database(owner_database_url)
    yield database
    await database.dispose()


@pytest.fixture
def signup_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url=database_url,
        signup_limit_per_ip="1000/hour",
        signup_limit_per_email="1000/hour",
        signup_limit_per_domain="1000/hour",
    )


@pytest.fixture
async def api(
    client_for: AppFactory, signup_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(signup_settings) as client:
        yield client


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", database_url=database_url)


AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_for() -> AppFactory:
    """Start an app with the given settings (its lifespan included) and hand out a client."""

    @asynccontextmanager
    async def start(
        settings: Settings | None = None, *, app: FastAPI | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        if app is None:
            assert settings is not None, "give settings or an app"
            app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                yield client

    return start


@pytest.fixture
async def client(client_for: AppFactory, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(settings) as client:
        yield client


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture(scope="session", autouse=True)
def logs_hold_no_secrets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Everything logged during the run, rendered as in production, holds no code or token."""
    path = tmp_path_factory.mktemp("logs") / "run.jsonl"
    handler = logging.FileHandler(path)
    handler.setFormatter(build_formatter(json=True))
    root = logging.getLogger()
    root.addHandler(handler)
    yield
    root.removeHandler(handler)
    handler.close()
    text = path.read_text()
    # Whole values only: a six-digit code also occurs inside timestamps' microseconds.
    leaked = sorted(s for s in secrets.SEEN if re.search(rf"(?<![\w.]){re.escape(s)}(?!\w)", text))
    assert not leaked, f"secrets in the logs: {leaked}"
    # Whole secrets only: a key's display prefix (tnt_sk_ and four characters) may be logged.
    assert not re.search(r"tnt_(sk|ct|rt|ac|cs)_[A-Za-z0-9_\-]{12,}", text), (
        "a secret-shaped value reached the logs"
    )
    assert not re.search(r"whsec_[A-Za-z0-9+/]{20,}", text), "a webhook secret reached the logs"


@pytest.fixture
def worker_process(
    job_settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `tenantry worker` processes on the test's database."""
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")},
            "PYTHONPATH": str(ROOT),
            "TENANTRY_DATA_DIR": str(job_settings.data_dir),
            "TENANTRY_DATABASE_URL": job_settings.resolved_database_url,
            "TENANTRY_JOB_MODULES": "tests.worker.kinds",
            "TENANTRY_JOB_POLL_INTERVAL": "1",
            **env,
        }
        handle = log.open("wb")
        process = subprocess.Popen(
            [TENANTRY, "worker", *args], env=environment, stdout=handle, stderr=handle
        )
        started.append(WorkerProcess(process, log))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)


class LogCapture:
    """Every log line as Tenantry renders it in production (JSON, redacted)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.text.splitlines() if line.strip()]
        return [line for line in lines if name is None or line.get("event") == name]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(build_formatter(json=True))
    root = logging.getLogger()
    root.addHandler(handler)
    yield capture
    root.removeHandler(handler)
