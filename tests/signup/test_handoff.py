"""The hosted signup's hand-off code: made once from the continuation token, good for 60 s,
exchanged once for the owner's tokens even when presented ten times at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import TenantryError
from tenantry.kit.clock import clock
from tenantry.signup import handoff
from tests.fixtures.secrets import seen
from tests.fixtures.workers import running_worker
from tests.tenant.conftest import provisioned, verified


async def _code(api: httpx.AsyncClient, database: Database, settings: Settings, slug: str) -> str:
    signup = await verified(api, database, settings, slug=slug, email=f"owner@{slug}.example.com")
    async with running_worker(database, settings):
        await provisioned(api, signup.signup_id)
    async with database.session() as session:
        code = await handoff.issue(session, settings, signup.signup_id, signup.continuation_token)
    async with database.session() as session:
        try:
            await handoff.issue(session, settings, signup.signup_id, signup.continuation_token)
        except TenantryError as exc:
            assert exc.code == "TOKEN_USED"  # a signup hands off once
        else:
            raise AssertionError("a second code was made from a spent continuation token")
    return seen(code)


async def test_a_code_exchanges_once_under_ten_concurrent_requests(
    api: httpx.AsyncClient, database: Database, signup_settings: Settings
) -> None:
    code = await _code(api, database, signup_settings, "acme")
    grant = {"grant_type": "authorization_code", "code": code}
    answers = await asyncio.gather(*(api.post("/v1/auth/token", data=grant) for _ in range(10)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [401] * 9
    (won,) = [answer.json() for answer in answers if answer.status_code == 200]
    seen(won["access_token"])
    seen(won["refresh_token"])


async def test_a_code_expires_after_sixty_seconds(
    api: httpx.AsyncClient, database: Database, signup_settings: Settings
) -> None:
    code = await _code(api, database, signup_settings, "late")
    clock.advance(timedelta(seconds=61))
    answer = await api.post(
        "/v1/auth/token", data={"grant_type": "authorization_code", "code": code}
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_grant"
