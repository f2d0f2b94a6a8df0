"""Fixtures for access-control tests: an app that picks up revocations and key changes within
50 ms, and the operator CLI run beside it (in a thread: it opens its own event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.cli.main import app
from tenantry.config import Settings
from tests.conftest import AppFactory, make_settings
from tests.fixtures.workers import wait_for

Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
def auth_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url=database_url,
        auth_refresh_interval=timedelta(milliseconds=50),
    )


@pytest.fixture
async def client(
    client_for: AppFactory, auth_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(auth_settings) as client:
        yield client


@pytest.fixture
def cli(auth_settings: Settings) -> Cli:
    env = {
        "TENANTRY_DATABASE_URL": auth_settings.resolved_database_url,
        "TENANTRY_DATA_DIR": str(auth_settings.data_dir),
    }

    async def invoke(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)

    return invoke


def mint(
    settings: Settings, subject: str = "usr_1", tenant_id: str = "ten_1", **extra: object
) -> str:
    token, _ = build_token_issuer(settings).mint(
        subject=subject,
        audience=Audience.TENANT,
        ttl=timedelta(minutes=15),
        roles=["owner"],
        tenant_id=tenant_id,
        **extra,  # type: ignore[arg-type]
    )
    return token


async def status_of(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def until_status(client: httpx.AsyncClient, token: str, status: int) -> None:
    """Wait for every process's next look at the database (50 ms here)."""

    async def reached() -> bool:
        return await status_of(client, token) == status

    await wait_for(reached)
