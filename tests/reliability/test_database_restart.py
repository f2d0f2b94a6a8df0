"""PostgreSQL stopped under load and started again: while it is away every request is answered
`503 DATABASE_UNAVAILABLE` with `Retry-After` (never a 500), readiness says down, and when it
is back the same processes serve again without a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_servers import _env, running
from tests.fixtures import databases
from tests.fixtures.servers import PostgresServer, start_postgres
from tests.fixtures.signup import signup_body
from tests.fixtures.workers import wait_for


@pytest.fixture
def own_postgres() -> Iterator[tuple[PostgresServer, str]]:
    """A migrated cluster of the test's own: stopping it must not touch the suite's one."""
    for server in start_postgres():
        yield server, databases.migrate_postgres_template(server)


async def test_requests_fail_cleanly_while_postgres_is_away_and_recover(
    own_postgres: tuple[PostgresServer, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """PostgreSQL stopped mid-load: 503 with Retry-After meanwhile, served again after."""
    server, template = own_postgres
    name = await databases.create_postgres_database(server, template)
    env = _env(
        tmp_path / "data",
        TENANTRY_DATABASE_URL=databases.app_url(server, name),
        TENANTRY_SIGNUP_LIMIT_PER_IP="100000/hour",
        TENANTRY_SIGNUP_LIMIT_PER_DOMAIN="100000/hour",
    )
    seen: Counter[int] = Counter()
    serial = iter(range(1_000_000))
    log = tmp_path / "serve.log"
    with running(["serve"], env, tmp_path, log=log) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

            async def sign_up() -> httpx.Response:
                n = next(serial)
                body = signup_body(slug=f"away-{n}", email=f"u{n}@away{n}.example.com")
                response = await client.post("/v1/signup", json=body)
                seen[response.status_code] += 1
                return response

            assert (await sign_up()).status_code == 201
            server.stop()
            away = await asyncio.gather(*(sign_up() for _ in range(20)))
            for response in away:
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "DATABASE_UNAVAILABLE"
                assert int(response.headers["Retry-After"]) >= 1
            ready = await client.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["status"] == "down"
            server.start()

            async def serving() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await sign_up()).status_code == 201
                return False

            await wait_for(serving, 30)
            assert (await client.get("/health/ready")).status_code == 200
    assert seen[500] == 0, seen
    assert "Traceback" not in log.read_text()
    record_property("load", f"{sum(seen.values())} signups, 20 of them while PostgreSQL is away")
    record_property("faults", "PostgreSQL stopped (immediate) mid-load, then started")
    statuses = ", ".join(f"{n} x {code}" for code, n in sorted(seen.items()))
    record_property("figure", statuses)
