"""Invitations benchmark: `POST /v1/tenants/{id}/invitations` and `POST /v1/invitations/accept`
(magic-link validation and activation) at 16 concurrent, 400 of each, latency per request.

Each accept needs its own link, so this is a Python client (one request in flight per
worker) rather than wrk; the links are read back from the mail outbox as the mail task
would open them.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.harness import BIN, server
from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.config import Settings
from tenantry.datadir import server_secret
from tenantry.db import Database
from tenantry.kit.sealed import unseal
from tenantry.mail.service import SEAL_PURPOSE
from tenantry.models import MailMessage
from tests.fixtures.factories import create_member, create_tenant

_TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")
COUNT = 400
CONCURRENCY = 16


@dataclass
class LatencyRow:
    name: str
    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_s: float


async def _load(name: str, count: int, one: Callable[[int], Awaitable[None]]) -> LatencyRow:
    numbers = itertools.count()
    latencies: list[float] = []

    async def worker() -> None:
        while (number := next(numbers)) < count:
            started = time.perf_counter()
            await one(number)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return LatencyRow(name, q[49], q[94], q[98], count / elapsed)


def _text_of(path: Path) -> str:
    message = message_from_bytes(path.read_bytes(), policy=default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def _links(settings: Settings) -> list[str]:
    """Each invitation's token: from the sealed outbox row, or the mail file once sent."""
    database = Database(settings.resolved_database_url)
    try:
        async with database.session(cross_tenant="bench") as session:
            rows = await session.execute(
                select(MailMessage.id, MailMessage.sealed_secrets).where(
                    MailMessage.template == "invitation"
                )
            )
            secret = server_secret(settings)
            links = [
                unseal(sealed, secret, SEAL_PURPOSE)["link"]
                if sealed
                else _text_of(settings.data_dir / "mail" / f"{message_id}.eml")
                for message_id, sealed in rows.all()
            ]
    finally:
        await database.dispose()
    return [found.group(1) for link in links if (found := _TOKEN.search(link))]


async def _seed_owner(settings: Settings) -> tuple[str, str]:
    """A tenant and its owner, as provisioning leaves them: (tenant id, owner id)."""
    database = Database(settings.resolved_database_url)
    try:
        tenant = await create_tenant(database)
        owner = await create_member(database, tenant.id, "owner")
    finally:
        await database.dispose()
    return tenant.id, owner.id


async def measure(setup: str, base: str, settings: Settings) -> list[LatencyRow]:
    tenant_id, owner_id = await _seed_owner(settings)
    owner, _ = build_token_issuer(settings).mint(
        subject=owner_id,
        audience=Audience.TENANT,
        ttl=timedelta(hours=1),
        roles=["owner"],
        tenant_id=tenant_id,
    )
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def invite(number: int) -> None:
            response = await client.post(
                f"/v1/tenants/{tenant_id}/invitations",
                json={"email": f"person{number}@bench.example.com", "role": "member"},
                headers={"Authorization": f"Bearer {owner}"},
            )
            response.raise_for_status()

        created = await _load(f"POST …/invitations ({setup})", COUNT, invite)
        links = await _links(settings)

        async def accept(number: int) -> None:
            response = await client.post(
                "/v1/invitations/accept", json={"token": links[number], "name": "Bench"}
            )
            response.raise_for_status()

        accepted = await _load(f"POST /v1/invitations/accept ({setup})", len(links), accept)
    return [created, accepted]


def rows(postgres_owner_url: str) -> list[LatencyRow]:
    results = []
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"TENANTRY_DATA_DIR": data_dir}
        with server([str(BIN / "tenantry"), "up"], "/health/ready", env) as (base, _, _):
            settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
            results += asyncio.run(measure("SQLite, `up`", base, settings))
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"TENANTRY_DATA_DIR": data_dir, "TENANTRY_DATABASE_URL": postgres_owner_url}
        command = [str(BIN / "tenantry"), "serve", "--migrate"]
        with server(command, "/health/ready", env) as (base, _, _):
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, data_dir=data_dir, database_url=postgres_owner_url
            )
            results += asyncio.run(measure("PostgreSQL, `serve`", base, settings))
    return results


def table(results: list[LatencyRow]) -> str:
    lines = [
        "### Invitations",
        "",
        f"{COUNT} of each at {CONCURRENCY} concurrent (httpx client); goal p95 ≤ 50 ms, "
        "runbook budget 300 ms.",
        "",
        "| row | per s | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.name} | {r.per_s:,.0f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.p99_ms:.1f} |"
        for r in results
    ]
    return "\n".join(lines)
