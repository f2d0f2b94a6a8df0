"""`make bench`: reference rows first, then Tenantry's, all in one run on this machine.

BENCH_ONLY=http, access, invitations, signup, provisioning, jobs, funnel or webhooks runs one
part.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

from bench import access, funnel, invitations, jobs, peers, provisioning, webhooks
from bench.harness import BIN, ROOT, Row, rss_mb, server, table, uvicorn_app, wrk
from bench.trickle import SOCKETS, trickling
from tests.fixtures.servers import PostgresServer, start_postgres


def references() -> list[Row]:
    rows = []
    for name, target in (
        ("Starlette hello", "bench.references:starlette_app"),
        ("FastAPI hello", "bench.references:fastapi_app"),
    ):
        with server(uvicorn_app(target), "/") as (base, process, _):
            rows.append(wrk(name, base + "/", pid=process.pid))
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
            pid = process.pid
            rows.append(wrk("tenantry GET /health/live", base + "/health/live", pid=pid))
            rows.append(wrk("tenantry GET /health", base + "/health", pid=pid))
            rows.append(
                wrk(
                    "tenantry GET /v1/whoami (EdDSA verify)",
                    base + "/v1/whoami",
                    [f"Authorization: Bearer {token}"],
                    pid=pid,
                )
            )
            deep = "tenantry GET /health?deep=true (SQLite)"
            rows.append(wrk(deep, base + "/health?deep=true", pid=pid))
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


def job_queue(postgres: PostgresServer) -> str:
    sqlite = asyncio.run(jobs.sqlite_run())
    asyncio.run(create_database(postgres, "tenantry_bench"))
    on_postgres, memory = asyncio.run(jobs.postgres_run(postgres.url("tenantry_bench")))
    asyncio.run(create_database(postgres, "peers"))
    peer_rows = peers.run_all(postgres.dsn("peers"), jobs.JOBS)
    return jobs.table([sqlite, on_postgres], peer_rows, memory)


SIGNUP_ENV = {
    # Every request comes from a new address and email: no limit is the bottleneck.
    "TENANTRY_BODY_READ_TIMEOUT": "60s",  # the trickled bodies stay open for the whole row
    "TENANTRY_SIGNUP_LIMIT_PER_IP": "1000000/hour",
    "TENANTRY_SIGNUP_LIMIT_PER_EMAIL": "1000000/hour",
    "TENANTRY_SIGNUP_LIMIT_PER_DOMAIN": "1000000/hour",
}


def signup_rows(postgres: PostgresServer) -> list[Row]:
    script = ROOT / "bench" / "signup.lua"
    rows = []
    asyncio.run(create_database(postgres, "signup_bench"))
    for name, url in (("SQLite", None), ("PostgreSQL", postgres.url("signup_bench"))):
        with tempfile.TemporaryDirectory() as data_dir:
            env = {**SIGNUP_ENV, "TENANTRY_DATA_DIR": data_dir}
            if url:
                env["TENANTRY_DATABASE_URL"] = url
            command = [str(BIN / "tenantry"), "serve", "--migrate"]
            with server(command, "/health/ready", env) as (base, process, _):
                url = base + "/v1/signup"
                pid = process.pid
                rows.append(wrk(f"POST /v1/signup ({name})", url, script=script, pid=pid))
                # The same load beside 50 clients trickling their bodies: they must not
                # hold the database (the body is read before any session is taken).
                with trickling(int(base.rsplit(":", 1)[1])):
                    label = f"POST /v1/signup ({name}) beside {SOCKETS} trickled bodies"
                    rows.append(wrk(label, url, script=script, pid=pid))
                # Alone again: the database has grown meanwhile, which slows signups too.
                label = f"POST /v1/signup ({name}) alone again"
                rows.append(wrk(label, url, script=script, pid=pid))
    return rows


def provisioning_rows(postgres: PostgresServer) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**SIGNUP_ENV, "TENANTRY_DATA_DIR": data_dir}
        with server([str(BIN / "tenantry"), "up"], "/health/ready", env) as (base, _, _):
            url = f"sqlite:///{data_dir}/tenantry.db"
            rows.append(
                asyncio.run(
                    provisioning.measure("SQLite, `tenantry up`", base, url, Path(data_dir))
                )
            )
    asyncio.run(create_database(postgres, "provisioning_bench"))
    with tempfile.TemporaryDirectory() as data_dir:
        url = postgres.url("provisioning_bench")
        env = {**SIGNUP_ENV, "TENANTRY_DATA_DIR": data_dir, "TENANTRY_DATABASE_URL": url}
        with server([str(BIN / "tenantry"), "serve", "--migrate"], "/health/ready", env) as (
            base,
            _,
            _,
        ):
            worker = subprocess.Popen(
                [str(BIN / "tenantry"), "worker"],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                name = "PostgreSQL, `serve` + a `worker` process"
                rows.append(asyncio.run(provisioning.measure(name, base, url, Path(data_dir))))
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    return provisioning.table(rows)


def funnel_rows(postgres: PostgresServer) -> str:
    asyncio.run(create_database(postgres, "funnel_bench"))
    with tempfile.TemporaryDirectory() as directory:
        rows = [
            funnel.run("sqlite", f"sqlite:///{directory}/funnel.db"),
            funnel.run("postgres", postgres.url("funnel_bench")),
        ]
    return funnel.table(rows)


def main() -> None:
    only = os.environ.get("BENCH_ONLY")
    reference_rows = references()
    fastapi_hello = reference_rows[1]
    if only in (None, "http"):
        rows, facts = foundation()
        print(table("HTTP foundation", reference_rows + rows, fastapi_hello))
        print()
        print("\n".join(facts))
        print()
    # A durable cluster (fsync and synchronous commit on), unlike the tests' one.
    postgres_servers = start_postgres(durable=True)
    postgres = next(postgres_servers)
    try:
        if only in (None, "access"):
            asyncio.run(create_database(postgres, "access_bench"))
            rows = [
                fastapi_hello,
                *access.sqlite_rows(),
                *access.postgres_rows(postgres.url("access_bench")),
            ]
            asyncio.run(create_database(postgres, "rls_bench"))
            isolation, rls_cost = access.rls_rows(
                postgres.url("rls_bench"),
                postgres.url("rls_bench", user="tenantry_app", password="bench-only"),  # noqa: S106
            )
            asyncio.run(create_database(postgres, "workers_bench"))
            scaling, workers_fact = access.workers_rows(postgres.url("workers_bench"))
            print(table("Access control", rows + isolation + scaling, fastapi_hello))
            print()
            print("\n".join([*access.per_request_costs(), rls_cost, workers_fact]))
            print()
        if only in (None, "invitations"):
            asyncio.run(create_database(postgres, "invitations_bench"))
            print(invitations.table(invitations.rows(postgres.url("invitations_bench"))))
            print()
        if only in (None, "signup"):
            print(table("Signup", [fastapi_hello, *signup_rows(postgres)], fastapi_hello))
            print()
        if only in (None, "provisioning"):
            print(provisioning_rows(postgres))
            print()
        if only in (None, "jobs"):
            print(job_queue(postgres))
            print()
        if only in (None, "funnel"):
            print(funnel_rows(postgres))
            print()
        if only in (None, "webhooks"):
            asyncio.run(create_database(postgres, "webhooks_bench"))
            print(webhooks.run(postgres.url("webhooks_bench")))
    finally:
        postgres_servers.close()


if __name__ == "__main__":
    main()
