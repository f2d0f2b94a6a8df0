"""Mixed traffic against one `tenantry up` for TENANTRY_SOAK_SECONDS: no 5xx, open file
descriptors bounded, and the RSS slope and each half's p99 reported (`make soak` runs it for
30 minutes, `make reliability` for two)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tests.cli.test_servers import running
from tests.conftest import make_settings
from tests.fixtures.signup import signup_body
from tests.reliability.world import served_env

pytestmark = pytest.mark.reliability

SECONDS = float(os.environ.get("TENANTRY_SOAK_SECONDS", "15"))
CLIENTS = 8
SAMPLE_EVERY_S = 1.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples) or 1.0
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[int(len(ordered) * 0.99)] * 1000 if ordered else 0.0


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_one_process_stays_flat_under_mixed_traffic(
    database_url: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """Mixed traffic on one `up`: no 5xx, fds bounded, RSS slope and p99 per half reported."""
    data_dir = tmp_path / "data"
    env = served_env(data_dir, database_url)
    serial = itertools.count()
    statuses: Counter[int] = Counter()
    latencies: list[tuple[float, float]] = []  # (at, seconds)
    rss: list[tuple[float, float]] = []
    fds: list[tuple[float, float]] = []
    log = tmp_path / "up.log"
    with running(["up"], env, tmp_path, log=log) as (base_url, process):
        token, _ = build_token_issuer(make_settings(data_dir, database_url=database_url)).mint(
            subject="usr_soak",
            audience=Audience.TENANT,
            ttl=timedelta(hours=2),
            roles=["admin"],
            tenant_id="ten_soak",
        )
        auth = {"Authorization": f"Bearer {token}"}
        began = time.monotonic()
        deadline = began + SECONDS

        async def one(client: httpx.AsyncClient, n: int) -> httpx.Response:
            kind = n % 5
            if kind == 0:
                body = signup_body(slug=f"soak-{n}", email=f"u{n}@soak{n}.example.com")
                return await client.post("/v1/signup", json=body)
            if kind == 1:
                job = {"kind": "canary.ping", "payload": {"n": n}}
                return await client.post("/v1/tenants/ten_soak/jobs", json=job, headers=auth)
            if kind == 2:
                return await client.get("/v1/tenants/ten_soak/jobs?limit=20", headers=auth)
            if kind == 3:
                return await client.get("/health/ready")
            return await client.get("/v1/signup/ses_unknown")

        async def caller(client: httpx.AsyncClient) -> None:
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = await one(client, next(serial))
                statuses[response.status_code] += 1
                latencies.append((started - began, time.monotonic() - started))

        async def sampler() -> None:
            while time.monotonic() < deadline:
                at = time.monotonic() - began
                rss.append((at, rss_mb(process.pid)))
                fds.append((at, open_fds(process.pid)))
                await asyncio.sleep(SAMPLE_EVERY_S)

        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            await asyncio.gather(sampler(), *(caller(client) for _ in range(CLIENTS)))
    requests_made = sum(statuses.values())
    half = SECONDS / 2
    first = p99([s for at, s in latencies if at < half])
    second = p99([s for at, s in latencies if at >= half])
    rss_slope = slope_per_minute(rss[len(rss) // 4 :])  # after the warm-up quarter
    record_property("load", f"{CLIENTS} clients for {SECONDS:.0f} s, {requests_made} requests")
    record_property("faults", "none: time and volume")
    record_property(
        "figure",
        f"RSS {rss[0][1]:.0f}→{rss[-1][1]:.0f} MB ({rss_slope:+.2f} MB/min after warm-up), "
        f"fds {fds[0][1]:.0f}→{fds[-1][1]:.0f}, p99 {first:.0f} ms then {second:.0f} ms",
    )
    assert not [code for code in statuses if code >= 500], statuses
    assert max(v for _, v in fds) <= fds[0][1] + 2 * CLIENTS + 10, fds
    assert "Traceback" not in log.read_text()
