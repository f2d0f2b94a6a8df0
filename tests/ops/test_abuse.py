"""The abuse report groups refusals and failed verifications by address, network and email
domain; `ratelimit reset` forgives a client in Redis at once and in each process's own
counters once it follows the reset."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis.asyncio

from tenantry.config import Settings
from tests.conftest import AppFactory
from tests.fixtures.cli import run_tenantry
from tests.fixtures.workers import wait_for
from tests.test_errors import assert_problem


def signup(n: int) -> dict[str, str]:
    return {
        "org_name": "Acme",
        "slug": f"acme-{n}",
        "email": f"ada{n}@acme.example.com",
        "plan": "starter",
    }


@pytest.fixture
def limited(settings: Settings) -> Settings:
    """Two signups an hour per address; switches and resets followed every 50 ms."""
    return settings.model_copy(
        update={
            "signup_limit_per_ip": "2/hour",
            "flag_refresh_interval": timedelta(milliseconds=50),
        }
    )


async def test_the_report_groups_refusals_and_failures(
    client_for: AppFactory, limited: Settings
) -> None:
    async with client_for(limited) as api:
        answers = [await api.post("/v1/signup", json=signup(n)) for n in range(4)]
        assert [a.status_code for a in answers] == [201, 201, 429, 429]
        session_id = answers[0].json()["id"]
        for _ in range(2):
            wrong = await api.post(f"/v1/signup/{session_id}/verify", json={"code": "000000"})
            assert wrong.status_code == 400
        body = {"email": "eve@evil.example.org", "code": "123456"}
        assert (await api.post("/v1/auth/login/verify", json=body)).status_code >= 400
    # The app wrote its counts when it stopped.
    code, output = await run_tenantry(limited, "abuse", "report", "--since", "1h", "--json")
    assert code == 0, output
    found = json.loads(output)
    (address,) = found["by_address"]
    assert address["key"] == "127.0.0.1"
    assert (address["rate_limited"], address["verification_failed"]) == (2, 3)
    assert address["details"] == ["login_code", "signup-ip", "signup_code"]
    assert [n["key"] for n in found["by_network"]] == ["127.0.0.0/24"]
    domains = {d["key"]: d for d in found["by_email_domain"]}
    assert domains["acme.example.com"]["rate_limited"] == 2
    assert domains["evil.example.org"]["verification_failed"] == 1


@pytest.mark.parametrize("store", ["redis", "memory"])
async def test_a_reset_forgives_an_address(
    client_for: AppFactory,
    limited: Settings,
    store: str,
    request: pytest.FixtureRequest,
) -> None:
    if store == "redis":
        url = request.getfixturevalue("redis_url")
        client = redis.asyncio.from_url(url)
        await client.flushdb()
        await client.aclose()
        limited = limited.model_copy(update={"redis_url": url})
    async with client_for(limited) as api:
        for n in range(2):
            assert (await api.post("/v1/signup", json=signup(n))).status_code == 201
        assert_problem(await api.post("/v1/signup", json=signup(2)), 429, "RATE_LIMITED")
        code, output = await run_tenantry(
            limited, "ratelimit", "reset", "--ip", "127.0.0.1", "--reason", "office NAT"
        )
        assert code == 0, output

        async def admitted() -> bool:
            return (await api.post("/v1/signup", json=signup(3))).status_code != 429

        await wait_for(admitted, 5)  # at once in Redis; memory follows the reset's row
    code, output = await run_tenantry(limited, "audit", "list", "--json")
    (record,) = json.loads(output)
    assert (record["action"], record["target"], record["reason"]) == (
        "ratelimit.reset",
        "127.0.0.1",
        "office NAT",
    )


async def test_a_reset_names_exactly_one_scope(limited: Settings) -> None:
    assert (await run_tenantry(limited, "ratelimit", "reset"))[0] == 2
    both = ("ratelimit", "reset", "--ip", "127.0.0.1", "--all")
    assert (await run_tenantry(limited, *both))[0] == 2
