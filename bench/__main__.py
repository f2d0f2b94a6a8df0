"""`make bench`: reference rows first, then Tenantry's, all in one run on this machine.

BENCH_ONLY=http or BENCH_ONLY=jobs runs one part.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time

import asyncpg

from bench import jobs, peers
from bench.harness import BIN, Row, rss_mb, server, table, uvicorn_app, wrk
from tests.fixtures.servers import PostgresServer, start_postgres


def references() -> list[Row]:
    rows = []
    for name, target in (
        ("Starlette hello", "bench.references:starlette_app"),
        ("FastAPI hello", "bench.references:fastapi_app"),
    ):
        with server(uvicorn_app(target), "/") as (base, _, _):
            rows.append(wrk(name, base + "/"))
    return rows


def foundation() -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"TENANTRY_DATA_DIR": data_dir}
        with server([str(BIN / "tenantry"), "up"], "/health/ready", env) as (
            base,
            process,
            startup,
        ):
            time.sleep(1)  # let start-up allocations settle before reading idle memory
            idle_rss = rss_mb(process.pid)
            token = subprocess.run(
                [
                    str(BIN / "tenantry"),
                    "token",
                    "mint",
                    "--audience",
                    "platform",
                    "--role",
                    "admin",
                    "--ttl",
                    "1h",
                ],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            rows.append(wrk("tenantry GET /health/live", base + "/health/live"))
            rows.append(wrk("tenantry GET /health", base + "/health"))
            rows.append(
                wrk(
                    "tenantry GET /v1/whoami (EdDSA verify)",
                    base + "/v1/whoami",
                    [f"Authorization: Bearer {token}"],
                )
            )
            rows.append(wrk("tenantry GET /health?deep=true (SQLite)", base + "/health?deep=true"))
    facts = [
        f"- `tenantry up` start-up to a ready `/health/ready` on a fresh data dir: "
        f"**{startup:.2f} s** (goal ≤ 2 s)",
        f"- resident memory of an idle `tenantry up`: **{idle_rss:.0f} MB** (goal ≤ 150 MB)",
    ]
    return rows, facts


async def create_database(server: PostgresServer, name: str) -> None:
    connection = await asyncpg.connect(server.dsn())
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()


def job_queue() -> str:
    sqlite = asyncio.run(jobs.sqlite_run())
    # A durable cluster (fsync and synchronous commit on), unlike the tests' one.
    postgres_servers = start_postgres(durable=True)
    server = next(postgres_servers)
    try:
        asyncio.run(create_database(server, "tenantry_bench"))
        postgres, memory = asyncio.run(jobs.postgres_run(server.url("tenantry_bench")))
        asyncio.run(create_database(server, "peers"))
        peer_rows = peers.run_all(server.dsn("peers"), jobs.JOBS)
    finally:
        postgres_servers.close()
    return jobs.table([sqlite, postgres], peer_rows, memory)


def main() -> None:
    only = os.environ.get("BENCH_ONLY")
    if only in (None, "http"):
        reference_rows = references()
        rows, facts = foundation()
        print(table("HTTP foundation", reference_rows + rows, reference_rows[1]))
        print()
        print("\n".join(facts))
        print()
    if only in (None, "jobs"):
        print(job_queue())


if __name__ == "__main__":
    main()
