"""A client that trickles its body holds nothing but its own socket: no database session, no
SQLite writer lock, no pooled connection is taken before the whole body has arrived."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.cli.test_servers import _env, running, stop_group
from tests.fixtures.signup import signup_body

SLOW_SOCKETS = 50
SIGNUPS = 20
# Trickled at the two routes that once read their body inside the handler, after the session.
TRICKLED = ("/v1/auth/token", "/activate")


async def trickle(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Headers that promise 1,000 bytes, then ten of them, then silence."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        "grant_type".encode()
    )
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_signups_answer_while_fifty_bodies_trickle(database_url: str, tmp_path: Path) -> None:
    env = _env(
        tmp_path / "data",
        TENANTRY_DATABASE_URL=database_url,
        TENANTRY_BODY_READ_TIMEOUT="4",
        TENANTRY_SIGNUP_LIMIT_PER_IP="1000/hour",
        TENANTRY_SIGNUP_LIMIT_PER_DOMAIN="1000/hour",
    )
    with running(["serve"], env, tmp_path) as (base_url, _):
        port = int(base_url.rsplit(":", 1)[1])
        slow = [await trickle(port, TRICKLED[i % 2]) for i in range(SLOW_SOCKETS)]
        # Each signup must answer well within the SQLite busy timeout and the pool timeout
        # (30 s) that a held lock or connection would make it wait for.
        async with httpx.AsyncClient(base_url=base_url, timeout=3) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/v1/signup",
                        json=signup_body(slug=f"slow-{i}", email=f"founder{i}@example.com"),
                    )
                    for i in range(SIGNUPS)
                )
            )
        assert [r.status_code for r in responses] == [201] * SIGNUPS
        reader, _ = slow[0]
        # The answer closes the connection; read to its end (headers and body may be two segments).
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        assert answer.startswith(b"HTTP/1.1 408") and b"REQUEST_TIMEOUT" in answer
        for _, writer in slow:
            writer.close()


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("path", [*TRICKLED, "/v1/signup"])
async def test_a_client_gone_mid_body_is_not_an_error(
    path: str, database_url: str, tmp_path: Path
) -> None:
    """Half a body, then the socket closes: an ordinary event of the internet, not a defect."""
    env = _env(
        tmp_path / "data", TENANTRY_DATABASE_URL=database_url, TENANTRY_BODY_READ_TIMEOUT="2"
    )
    with running(["serve"], env, tmp_path) as (base_url, process):
        port = int(base_url.rsplit(":", 1)[1])
        for _ in range(3):
            _, writer = await trickle(port, path)
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(3)  # past the read deadline, had anything still been waiting
        async with httpx.AsyncClient(base_url=base_url) as client:
            assert (await client.get("/health/ready")).status_code == 200
        stop_group(process)
        assert process.stdout is not None
        output = process.stdout.read().decode()
    assert "http_request" in output  # the log was read
    assert "Traceback" not in output and "exception" not in output.lower(), output
    assert '"level": "error"' not in output, output
