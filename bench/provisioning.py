"""Provisioning benchmark: verify → PROVISIONED latency over 200 signups at 16 concurrent.

Latency is read from the database: the session's `verified_at` to the
`activation.TenantProvisioned` event, both written by the servers themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import httpx
from sqlalchemy import func, select

from tenantry.db import Database
from tenantry.models import Event, MailMessage, SignupSession, SignupStatus

SIGNUPS = 200
CONCURRENCY = 16


@dataclass
class LatencyRow:
    name: str
    p50_ms: float
    p95_ms: float
    provisioned: int


async def _code(database: Database, mail_dir: Path, email: str) -> str:
    """The code from the mail file the worker wrote (file backend): its subject starts with it."""
    while True:
        # A reader: polling through write transactions would queue for the server's lock.
        async with database.reader(cross_tenant="bench") as session:
            mail_id = await session.scalar(
                select(MailMessage.id).where(MailMessage.to_address == email).limit(1)
            )
        path = mail_dir / f"{mail_id}.eml"
        if mail_id and path.exists():
            subject = message_from_bytes(path.read_bytes())["Subject"]
            return str(subject).split()[0]
        await asyncio.sleep(0.005)


async def _one(client: httpx.AsyncClient, database: Database, mail_dir: Path, number: int) -> None:
    email = f"owner{number}@org{number}.example.com"
    body = {"org_name": f"Org {number}", "slug": f"org-{number}", "email": email, "plan": "starter"}
    address = {"X-Forwarded-For": f"10.1.{number % 250}.{number % 200 + 1}"}
    started = await client.post("/v1/signup", json=body, headers=address)
    started.raise_for_status()
    code = await _code(database, mail_dir, email)
    verified = await client.post(
        f"/v1/signup/{started.json()['id']}/verify", json={"code": code}, headers=address
    )
    verified.raise_for_status()


async def measure(name: str, base_url: str, database_url: str, data_dir: Path) -> LatencyRow:
    database = Database(database_url)
    mail_dir = data_dir / "mail"
    numbers = itertools.count()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def runner() -> None:
            while (number := next(numbers)) < SIGNUPS:
                await _one(client, database, mail_dir, number)

        await asyncio.gather(*(runner() for _ in range(CONCURRENCY)))
    total = SIGNUPS
    async with asyncio.timeout(120):
        while True:
            async with database.reader(cross_tenant="bench") as session:
                done = await session.scalar(
                    select(func.count())
                    .select_from(SignupSession)
                    .where(SignupSession.status == SignupStatus.PROVISIONED)
                )
            if done == total:
                break
            await asyncio.sleep(0.1)
    async with database.session(cross_tenant="bench") as session:
        rows = await session.execute(
            select(SignupSession.verified_at, Event.occurred_at)
            .join(Event, Event.subject_id == SignupSession.id)
            .where(Event.type == "activation.TenantProvisioned")
        )
        latencies = [
            (provisioned - verified).total_seconds() * 1000 for verified, provisioned in rows
        ]
    await database.dispose()
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return LatencyRow(name, quantiles[49], quantiles[94], len(latencies))


def table(rows: list[LatencyRow]) -> str:
    lines = [
        "### Provisioning",
        "",
        f"{SIGNUPS} signups at {CONCURRENCY} concurrent; "
        "verify → PROVISIONED (starter plan, four steps).",
        "",
        "| setup | p50 ms | p95 ms | provisioned |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {r.name} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.provisioned} |" for r in rows]
    return "\n".join(lines)
