"""Access-control benchmark: the client-credentials exchange at 16 concurrent, an authenticated
job read at 32, and the per-request cost of the token cache and the revocation check."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import timeit
from datetime import timedelta

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from bench.harness import BIN, ROOT, Row, server, wrk
from tenantry.auth.jwt import Audience, TokenIssuer, private_pem
from tenantry.auth.revocation import RevocationList
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.integration_key.service import create_key
from tenantry.job.service import submit_job
from tenantry.tenancy import TENANT_TABLES
from tenantry.worker.registry import load_task_modules
from tests.fixtures.factories import create_tenant

EXCHANGE_CONNECTIONS = 16


async def seed(settings: Settings) -> tuple[str, str, str]:
    """A tenant, an integration key with the jobs scopes, and one job: (tenant, secret, job).
    Seeded as the tables' owner (the migration URL, when the server runs as the app role)."""
    load_task_modules(settings)
    database = Database(settings.resolved_migration_database_url)
    try:
        tenant_id = (await create_tenant(database)).id
        async with database.session(cross_tenant="bench") as session:
            _, secret = await create_key(
                session,
                settings,
                tenant_id=tenant_id,
                name="bench",
                scopes=["jobs:read", "jobs:write"],
                expires_at=None,
            )
            job = await submit_job(
                session,
                settings,
                tenant_id=tenant_id,
                kind="canary.ping",
                payload={"bench": True},
                submitted_by="bench",
            )
    finally:
        await database.dispose()
    return tenant_id, secret, job.id


def _exchange_token(base: str, secret: str) -> str:
    response = httpx.post(
        base + "/v1/auth/token",
        data={"grant_type": "client_credentials", "client_secret": secret},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def rows_for(name: str, command: list[str], env: dict[str, str]) -> list[Row]:
    """Start a server with `env`, seed it, and load the two routes."""
    with server(command, "/health/ready", env) as (base, process, _):
        options = {k.removeprefix("TENANTRY_").lower(): v for k, v in env.items()}
        settings = Settings(_env_file=None, **options)  # type: ignore[call-arg]
        tenant_id, secret, job_id = asyncio.run(seed(settings))
        exchange = wrk(
            f"POST /v1/auth/token client credentials, {EXCHANGE_CONNECTIONS} conn ({name})",
            base + "/v1/auth/token",
            connections=EXCHANGE_CONNECTIONS,
            script=ROOT / "bench" / "exchange.lua",
            env={"BENCH_SECRET": secret},
            pid=process.pid,
        )
        token = _exchange_token(base, secret)
        read = wrk(
            f"GET /v1/tenants/{{id}}/jobs/{{id}}, integration token ({name})",
            f"{base}/v1/tenants/{tenant_id}/jobs/{job_id}",
            [f"Authorization: Bearer {token}"],
            script=ROOT / "bench" / "percentiles.lua",
            pid=process.pid,
        )
    return [exchange, read]


def sqlite_rows() -> list[Row]:
    with tempfile.TemporaryDirectory() as data_dir:
        return rows_for(
            "SQLite, `up`", [str(BIN / "tenantry"), "up"], {"TENANTRY_DATA_DIR": data_dir}
        )


def postgres_rows(url: str) -> list[Row]:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"TENANTRY_DATA_DIR": data_dir, "TENANTRY_DATABASE_URL": url}
        return rows_for("PostgreSQL, `serve`", [str(BIN / "tenantry"), "serve", "--migrate"], env)


def workers_rows(url: str) -> tuple[list[Row], str]:
    """The authenticated read on PostgreSQL with one `serve` process, then two."""
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"TENANTRY_DATA_DIR": data_dir, "TENANTRY_DATABASE_URL": url}
        for workers in (1, 2):
            command = [str(BIN / "tenantry"), "serve", "--migrate", "--workers", str(workers)]
            _, read = rows_for(f"PostgreSQL, `serve --workers {workers}`", command, env)
            rows.append(read)
    one, two = rows
    fact = (
        f"- `serve --workers 2` serves **{two.requests_per_s / one.requests_per_s:.2f} times** "
        f"the authenticated reads of one process ({two.requests_per_s:,.0f} vs "
        f"{one.requests_per_s:,.0f} req/s; goal ≥ 1.7 times)"
    )
    return rows, fact


def rls_rows(owner_url: str, app_url: str) -> tuple[list[Row], str]:
    """The authenticated read as the least-privilege role, with the tenant tables' row-level
    security on, then switched off: what the second wall costs."""
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "TENANTRY_DATA_DIR": data_dir,
            "TENANTRY_DATABASE_URL": app_url,
            "TENANTRY_MIGRATION_DATABASE_URL": owner_url,
        }
        tenantry = str(BIN / "tenantry")
        subprocess.run([tenantry, "db", "create-roles"], env={**os.environ, **env}, check=True)
        subprocess.run([tenantry, "migrate"], env={**os.environ, **env}, check=True)
        command = [tenantry, "serve"]
        _, with_rls = rows_for("PostgreSQL, app role, RLS on", command, env)
        asyncio.run(_switch_rls(owner_url, enabled=False))
        _, without = rows_for("PostgreSQL, app role, RLS off", command, env)
    cost = 1 - with_rls.requests_per_s / without.requests_per_s
    fact = (
        f"- row-level security costs **{cost:.1%}** of the authenticated read's throughput "
        f"({with_rls.requests_per_s:,.0f} req/s with it, {without.requests_per_s:,.0f} without; "
        "goal < 10 %)"
    )
    return [with_rls, without], fact


async def _switch_rls(owner_url: str, *, enabled: bool) -> None:
    database = Database(owner_url)
    verb = "ENABLE" if enabled else "DISABLE"
    try:
        async with database.session() as session:
            for table in TENANT_TABLES:
                await session.execute(text(f"ALTER TABLE {table} {verb} ROW LEVEL SECURITY"))
    finally:
        await database.dispose()


def per_request_costs() -> list[str]:
    """What the per-request checks cost in this process, in microseconds."""
    issuer = TokenIssuer(private_pem(Ed25519PrivateKey.generate()), issuer="https://bench")
    token, claims = issuer.mint(
        subject="key_1", audience=Audience.INTEGRATION, ttl=timedelta(minutes=15), tenant_id="t"
    )
    runs = 20_000

    def per_call_us(statement: object) -> float:
        return timeit.timeit(statement, number=runs) / runs * 1e6  # type: ignore[arg-type]

    def verify_uncached() -> None:
        issuer._verified.clear()  # a cold cache: every call checks the signature
        issuer.verify(token)

    revocations = RevocationList(
        jtis=frozenset(f"jti_{n}" for n in range(10_000)),
        subjects={f"usr_{n}": 1 for n in range(10_000)},
        tenants={f"ten_{n}": 1 for n in range(1_000)},
    )
    verify_cold = per_call_us(verify_uncached)
    issuer.verify(token)
    verify_warm = per_call_us(lambda: issuer.verify(token))
    check = per_call_us(lambda: revocations.revoked(claims))
    return [
        f"- token verification: **{verify_cold:.0f} µs** for an Ed25519 check, "
        f"**{verify_warm:.1f} µs** for a token seen before (the verified-token cache)",
        f"- revocation check on every request, against 21,000 live revocations: "
        f"**{check:.2f} µs** (an in-memory lookup; the list reloads when the auth revision moves)",
    ]
