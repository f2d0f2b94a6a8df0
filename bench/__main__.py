"""`make bench`: reference rows first, then Tenantry's, all in one run on this machine."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

from bench.harness import BIN, Row, rss_mb, server, table, uvicorn_app, wrk


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


def main() -> None:
    reference_rows = references()
    fastapi_hello = reference_rows[1]
    rows, facts = foundation()
    print(table("HTTP foundation", reference_rows + rows, fastapi_hello))
    print()
    print("\n".join(facts))


if __name__ == "__main__":
    main()
