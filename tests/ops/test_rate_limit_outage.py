"""Redis failing under the rate limits: requests keep their answers, limits move to memory,
health says so, and Redis takes over again when it answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tenantry.config import Settings
from tenantry.kit import ratelimit
from tenantry.metrics import RATE_LIMIT_STORE_FALLBACKS
from tests.conftest import AppFactory, LogCapture, make_settings
from tests.fixtures.servers import free_port, start_redis
from tests.fixtures.signup import signup_body
from tests.test_errors import assert_problem

ADDRESS = {"X-Forwarded-For": "198.51.100.40"}


async def sign_up(client: httpx.AsyncClient, n: int) -> httpx.Response:
    body = signup_body(slug=f"outage-{n}", email=f"u{n}@outage{n}.example.com")
    return await client.post("/v1/signup", json=body, headers=ADDRESS)


async def rate_limit_check(client: httpx.AsyncClient) -> tuple[str, dict[str, object]]:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    return response.json()["status"], response.json()["checks"]["rate_limit"]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings_on(database_url: str, tmp_path: Path, port: int) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url=database_url,
        redis_url=f"redis://127.0.0.1:{port}/0",
        signup_limit_per_ip="3/hour",
    )


async def test_with_redis_down_signup_and_login_answer_and_limits_hold(
    client_for: AppFactory,
    settings_on: Settings,
    port: int,
    logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    """Redis unreachable: signup and login answer, limits hold in memory, Redis resumes."""
    record_property("faults", "Redis down from the start, then started")
    fallbacks_before = RATE_LIMIT_STORE_FALLBACKS._value.get()
    async with client_for(settings_on) as client:
        assert [(await sign_up(client, n)).status_code for n in range(3)] == [201] * 3
        assert_problem(await sign_up(client, 3), 429, "RATE_LIMITED")  # counted in memory
        login = await client.post("/v1/auth/login", json={"email": "u0@outage0.example.com"})
        assert login.status_code < 500, login.text
        password = {"grant_type": "password", "username": "x@y.example.com", "password": "p"}
        assert_problem(await client.post("/v1/auth/token", data=password), 401, "UNAUTHENTICATED")
        status, check = await rate_limit_check(client)
        assert status == "degraded"
        assert check["status"] == "degraded" and check["store"] == "memory"
        assert RATE_LIMIT_STORE_FALLBACKS._value.get() == fallbacks_before + 1
        assert len(logs.events("rate_limit_store_unavailable")) == 1

        monkeypatch.setattr(ratelimit, "REDIS_RETRY_S", 0.0)
        redis = start_redis(port)
        next(redis)
        try:
            assert (await sign_up(client, 4)).status_code == 201  # a new count, in Redis
            status, check = await rate_limit_check(client)
            assert (status, check) == ("ok", {"status": "ok", "store": "redis"})
            assert logs.events("rate_limit_store_recovered")
        finally:
            redis.close()
    assert "Traceback" not in logs.text


async def test_redis_stopping_mid_run_is_a_fallback_not_an_error(
    client_for: AppFactory, settings_on: Settings, port: int, logs: LogCapture
) -> None:
    """Redis stopped between two signups: the second answers 201 and health says degraded."""
    redis = start_redis(port)
    next(redis)
    async with client_for(settings_on) as client:
        try:
            assert (await sign_up(client, 0)).status_code == 201
            assert (await rate_limit_check(client))[0] == "ok"
        finally:
            redis.close()
        assert (await sign_up(client, 1)).status_code == 201
        status, check = await rate_limit_check(client)
        assert status == "degraded" and check["store"] == "memory"
        deep = (await client.get("/health", params={"deep": "true"})).json()
        assert deep["status"] == "degraded" and deep["checks"]["rate_limit"]["status"] == "down"
    assert "Traceback" not in logs.text
