"""Webhook delivery benchmark: deliveries per second to a local receiver that answers 200 at
once, with 1 and with 100 endpoints, and event-to-delivery latency at idle; beside them, in
the same run, raw httpx POSTs of the same bodies to the same receiver (the reference).

The dispatcher runs in this process on the embedded SQLite, and on PostgreSQL, as a
worker does; the receiver runs in its own process (bench/receiver.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select, text

from bench.harness import server, uvicorn_app
from tenantry import schema
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.models import DeliveryStatus, Tenant, WebhookDelivery
from tenantry.webhook import service as webhooks
from tenantry.webhook.addresses import SystemResolver
from tenantry.webhook.dispatcher import Dispatcher

DELIVERIES = int(os.environ.get("BENCH_WEBHOOK_DELIVERIES", "5000"))
CONCURRENCY = 50
LATENCY_SAMPLES = 200
BODY = json.dumps({"type": "bench.Happened", "timestamp": "…", "data": {"n": 1}}).encode()


@dataclass
class Rate:
    name: str
    per_s: float


@dataclass
class Latency:
    name: str
    p50_ms: float
    p99_ms: float


async def raw_posts(url: str, count: int) -> Rate:
    """The reference: `count` POSTs, CONCURRENCY at a time over kept-alive connections."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    remaining = iter(range(count))
    async with httpx.AsyncClient(limits=limits) as client:

        async def post_some() -> None:
            for _ in remaining:
                response = await client.post(url, content=BODY, headers={"webhook-id": "raw"})
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(post_some() for _ in range(CONCURRENCY)))
    return Rate("raw httpx POSTs (reference)", count / (time.perf_counter() - started))


def settings_for(url: str, data_dir: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        data_dir=Path(data_dir),
        webhook_allowed_networks="127.0.0.0/8",
        webhook_concurrency=CONCURRENCY,
        webhook_max_in_flight_per_endpoint=CONCURRENCY,
    )


async def _tenant(database: Database) -> str:
    now = utcnow()
    tenant = Tenant(
        id="ten_bench", slug="bench", name="Bench", plan="starter", status="active",
        settings={}, created_at=now, updated_at=now,
    )  # fmt: skip
    async with database.session(cross_tenant="bench") as session:
        session.add(tenant)
    return tenant.id


async def _endpoints(
    database: Database, settings: Settings, tenant_id: str, url: str, n: int
) -> None:
    async with database.session(tenant_id=tenant_id) as session:
        for i in range(n):
            await webhooks.create_endpoint(
                session, settings, SystemResolver(), tenant_id=tenant_id, url=f"{url}/{i}",
                description="", event_types=[], enabled=True, rate_limit_per_s=None,
            )  # fmt: skip


async def _emit(database: Database, tenant_id: str, count: int) -> list[str]:
    ids = []
    async with database.session(tenant_id=tenant_id) as session:
        for _ in range(count):
            ids.append(events.record(session, "bench.Happened", tenant_id=tenant_id).id)
    return ids


async def _succeeded(database: Database) -> int:
    query = select(func.count()).where(WebhookDelivery.status == DeliveryStatus.SUCCEEDED.value)
    async with database.session(cross_tenant="bench") as session:
        return int((await session.execute(query)).scalar_one())


async def drain(name: str, url: str, data_dir: str, receiver: str, endpoints: int) -> Rate:
    """Deliveries written first (events fanned out), then sent by one dispatcher."""
    settings = settings_for(url, data_dir)
    database = Database(url)
    tenant_id = await _tenant(database)
    await _endpoints(database, settings, tenant_id, receiver, endpoints)
    for _ in range(0, DELIVERIES // endpoints, 500):
        await _emit(database, tenant_id, min(500, DELIVERIES // endpoints))
    total = (DELIVERIES // endpoints) * endpoints
    dispatcher = Dispatcher(database, settings)
    started = time.perf_counter()
    running = asyncio.create_task(dispatcher.run())
    while await _succeeded(database) < total:  # noqa: ASYNC110 (another task delivers)
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    dispatcher.stop()
    await running
    await database.dispose()
    return Rate(f"{name}, {endpoints} endpoint{'s' if endpoints > 1 else ''}", total / elapsed)


async def latency(name: str, url: str, data_dir: str, receiver: str) -> Latency:
    """One event at a time into an idle dispatcher: from the start of the transaction that
    writes the event to the delivery's arrival."""
    settings = settings_for(url, data_dir)
    database = Database(url)
    tenant_id = await _tenant(database)
    await _endpoints(database, settings, tenant_id, receiver, 1)
    dispatcher = Dispatcher(database, settings)
    running = asyncio.create_task(dispatcher.run())
    committed: dict[str, float] = {}
    for n in range(1, LATENCY_SAMPLES + 1):
        writing = time.time()
        (event_id,) = await _emit(database, tenant_id, 1)
        committed[event_id] = writing
        while await _succeeded(database) < n:  # noqa: ASYNC110 (another task delivers)
            await asyncio.sleep(0.005)
    dispatcher.stop()
    await running
    await database.dispose()
    async with httpx.AsyncClient() as client:
        arrivals = (await client.get(receiver.rsplit("/", 1)[0] + "/arrivals")).json()
    gaps = sorted(max(0.0, arrivals[e] - at) * 1000 for e, at in committed.items())
    return Latency(name, statistics.median(gaps), gaps[int(0.99 * (len(gaps) - 1))])


async def _run_all(
    receiver_base: str, postgres_url: str | None
) -> tuple[list[Rate], list[Latency]]:
    hook = receiver_base + "/hook"
    rates = [await raw_posts(hook, DELIVERIES)]
    latencies = []
    backends = [("SQLite", None)] + ([("PostgreSQL", postgres_url)] if postgres_url else [])
    for name, url in backends:
        for endpoints in (1, 100):
            with tempfile.TemporaryDirectory() as data_dir:
                db_url = url or f"sqlite:///{data_dir}/bench.db"
                await schema.upgrade(db_url)
                rates.append(await drain(name, db_url, data_dir, hook, endpoints))
                if url:
                    await _reset(url)
        with tempfile.TemporaryDirectory() as data_dir:
            db_url = url or f"sqlite:///{data_dir}/bench.db"
            await schema.upgrade(db_url)
            latencies.append(await latency(name, db_url, data_dir, hook))
            if url:
                await _reset(url)
    return rates, latencies


async def _reset(url: str) -> None:
    """Empty the PostgreSQL bench database between rows."""
    database = Database(url)
    async with database.session(cross_tenant="bench") as session:
        for table in ("webhook_attempts", "webhook_deliveries", "webhook_messages",
                      "webhook_endpoints", "events", "tenants"):  # fmt: skip
            await session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (names above)
    await database.dispose()


def run(postgres_url: str | None) -> str:
    with server(uvicorn_app("bench.receiver:app"), "/arrivals") as (base, _, _):
        rates, latencies = asyncio.run(_run_all(base, postgres_url))
    return table(rates, latencies)


def table(rates: list[Rate], latencies: list[Latency]) -> str:
    reference = rates[0].per_s
    lines = [
        "### Webhook delivery",
        "",
        f"{DELIVERIES:,} deliveries to a local receiver answering 200 at once (its own "
        f"process), dispatcher concurrency {CONCURRENCY}; the reference is raw httpx POSTs of "
        "a delivery-sized body to the same receiver, as many at once. Target: ≥ 50 % of it.",
        "",
        "| run | deliveries/s | of raw POSTs |",
        "| --- | ---: | ---: |",
    ]
    for rate in rates:
        lines.append(f"| {rate.name} | {rate.per_s:,.0f} | {rate.per_s / reference:.0%} |")
    lines += [
        "",
        f"Event-to-delivery at idle, {LATENCY_SAMPLES} events one at a time, from the start "
        "of the transaction writing the event to its arrival at the receiver. "
        "Target: p99 ≤ 100 ms.",
        "",
        "| backend | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
    ]
    for measured in latencies:
        lines.append(f"| {measured.name} | {measured.p50_ms:.1f} | {measured.p99_ms:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(None))
