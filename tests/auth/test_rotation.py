"""Signing-key rotation: published before it signs, old tokens verify until they expire."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import jwt as pyjwt

from tenantry.kit.clock import clock
from tests.auth.conftest import Cli, status_of
from tests.fixtures.workers import wait_for


async def kids(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    return {key["kid"] for key in response.json()["keys"]}


async def minted(cli: Cli, *extra: str) -> str:
    result = await cli("token", "mint", "--audience", "platform", "--role", "admin", *extra)
    assert result.exit_code == 0, result.output
    return result.output.strip()


def kid_of(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


async def keys(cli: Cli) -> list[dict[str, object]]:
    result = await cli("signing-keys", "list", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


class TestRotation:
    async def test_rotate_while_tokens_are_in_use(
        self, client: httpx.AsyncClient, cli: Cli
    ) -> None:
        first = await minted(cli, "--ttl", "24h")
        (old_kid,) = await kids(client)
        before = await cli("signing-keys", "list")
        assert "no rotation yet" in before.output and old_kid in before.output.replace("\n", "")
        assert kid_of(first) == old_kid

        tokens = [first]
        refused: list[int] = []
        stop = asyncio.Event()

        async def use_tokens() -> None:
            while not stop.is_set():
                statuses = await asyncio.gather(*(status_of(client, t) for t in list(tokens)))
                refused.extend(s for s in statuses if s != 200)
                await asyncio.sleep(0.01)

        in_use = asyncio.create_task(use_tokens())

        added = await cli("signing-keys", "add")
        assert added.exit_code == 0, added.output
        new_kid = next(str(k["kid"]) for k in await keys(cli) if k["status"] == "published")

        async def published() -> bool:
            return await kids(client) == {old_kid, new_kid}

        await wait_for(published)  # in the JWKS, while the old key still signs
        assert kid_of(await minted(cli)) == old_kid

        too_soon = await cli("signing-keys", "promote", new_kid)
        assert too_soon.exit_code == 1 and "promote it after" in too_soon.output
        clock.advance(timedelta(minutes=6))
        assert (await cli("signing-keys", "promote", new_kid)).exit_code == 0
        second = await minted(cli)
        assert kid_of(second) == new_kid
        tokens.append(second)

        assert (await cli("signing-keys", "retire", new_kid)).exit_code == 1  # it signs
        retired = await cli("signing-keys", "retire", old_kid)
        assert retired.exit_code == 0, retired.output
        await asyncio.sleep(0.2)  # a few refreshes of the app with both tokens in use
        stop.set()
        await in_use
        assert refused == []

        # The old key verifies until the longest token it signed (24 h) has expired.
        clock.advance(timedelta(hours=23))
        assert await status_of(client, first) == 200
        clock.advance(timedelta(hours=1, seconds=1))

        async def dropped() -> bool:
            return await kids(client) == {new_kid}

        await wait_for(dropped)
        rows = {row["kid"]: row for row in await keys(cli)}
        assert rows[old_kid]["status"] == "retired" and rows[old_kid]["in_jwks"] is False
        assert rows[new_kid]["signs"] is True

    async def test_a_key_that_never_signed_retires_at_once(
        self, client: httpx.AsyncClient, cli: Cli
    ) -> None:
        assert (await cli("signing-keys", "add")).exit_code == 0
        (spare,) = [row["kid"] for row in await keys(cli) if row["status"] == "published"]
        assert (await cli("signing-keys", "retire", str(spare))).exit_code == 0

        async def only_the_active_key() -> bool:
            return len(await kids(client)) == 1

        await wait_for(only_the_active_key)
        assert (await cli("signing-keys", "promote", str(spare))).exit_code == 1
        assert (await cli("signing-keys", "promote", "kid_missing")).exit_code == 1
        dashed = await cli("signing-keys", "retire", "-4Kx")  # kids may start with a dash
        assert dashed.exit_code == 1 and "no signing key -4Kx" in dashed.output

    async def test_mint_refuses_a_lifetime_past_the_maximum(self, cli: Cli) -> None:
        result = await cli("token", "mint", "--audience", "platform", "--ttl", "25h")
        assert result.exit_code == 2 and "TENANTRY_MAX_TOKEN_TTL" in result.output
