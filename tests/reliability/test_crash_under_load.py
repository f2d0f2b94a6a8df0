"""The service SIGKILLed in the middle of a burst of verifications and job submissions, then
started again (`tenantry up` on SQLite; `serve` and `worker` processes on PostgreSQL): every
request answered 2xx is in the database, and every verified signup ends PROVISIONED exactly
once (one tenant, one owner, one welcome mail)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.db import Database
from tenantry.models import Job, MailMessage, Membership, SignupSession, SignupStatus, Tenant
from tests.cli.test_servers import running
from tests.conftest import make_settings
from tests.fixtures.servers import free_port
from tests.fixtures.signup import signup_body
from tests.fixtures.workers import WorkerProcess, wait_for
from tests.reliability.world import served_env

pytestmark = pytest.mark.reliability

SIGNUPS = int(os.environ.get("TENANTRY_CRASH_SIGNUPS", "24"))
JOBS = SIGNUPS * 2


def codes_in(mail_dir: Path) -> dict[str, str]:
    """The signup code delivered to each address, read from the files the mail backend wrote."""
    codes = {}
    for path in sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = message_from_bytes(path.read_bytes())
        subject = str(message["Subject"])
        if subject.split()[0].isdigit():
            codes[str(message["To"])] = subject.split()[0]
    return codes


async def count(database: Database, model: type, *where: object) -> int:
    async with database.session() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(query)).scalar_one())


@contextmanager
def deployment(
    backend: str,
    env: dict[str, str],
    tmp_path: Path,
    port: int,
    start_worker: Callable[..., WorkerProcess],
    name: str,
) -> Iterator[tuple[str, Callable[[], None]]]:
    """The service as each backend runs it, and a function that SIGKILLs all of it."""
    command = ["up"] if backend == "sqlite" else ["serve"]
    with running(command, env, tmp_path, port, log=tmp_path / f"{name}.log") as (base, api):
        worker = None
        if backend != "sqlite":
            worker = start_worker(
                TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"], TENANTRY_JOB_LEASE="3s"
            )

        def kill() -> None:
            os.killpg(api.pid, signal.SIGKILL)
            if worker is not None:
                worker.signal(signal.SIGKILL)

        yield base, kill


async def test_every_answered_request_survives_a_sigkill_mid_burst(
    backend: str,
    database_url: str,
    owner_database_url: str,
    tmp_path: Path,
    worker_process: Callable[..., WorkerProcess],
    record_property: Callable[[str, object], None],
) -> None:
    """SIGKILL mid-burst: answered requests kept, each verified signup provisioned once."""
    data_dir = tmp_path / "data"
    env = served_env(data_dir, database_url, TENANTRY_JOB_LEASE="3s")
    port = free_port()
    bodies = [
        signup_body(slug=f"load-{i}", email=f"founder{i}@load{i}.example.com")
        for i in range(SIGNUPS)
    ]
    issuer = build_token_issuer(make_settings(data_dir, database_url=database_url))
    token, _ = issuer.mint(
        subject="usr_load",
        audience=Audience.TENANT,
        ttl=timedelta(minutes=15),
        roles=["admin"],
        tenant_id="ten_load",
    )
    verified: list[str] = []
    submitted: list[str] = []

    with deployment(backend, env, tmp_path, port, worker_process, "first") as (base_url, kill):
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            started = [await client.post("/v1/signup", json=body) for body in bodies]
            assert [r.status_code for r in started] == [201] * SIGNUPS
            ids = {body["email"]: r.json()["id"] for body, r in zip(bodies, started, strict=True)}

            async def all_mailed() -> bool:
                return len(codes_in(data_dir / "mail")) == SIGNUPS

            await wait_for(all_mailed, 30)
            codes = codes_in(data_dir / "mail")

            async def verify(email: str) -> None:
                with contextlib.suppress(httpx.TransportError):
                    path = f"/v1/signup/{ids[email]}/verify"
                    response = await client.post(path, json={"code": codes[email]})
                    if response.status_code == 200:
                        verified.append(ids[email])

            async def submit(n: int) -> None:
                with contextlib.suppress(httpx.TransportError):
                    response = await client.post(
                        "/v1/tenants/ten_load/jobs",
                        json={"kind": "canary.ping", "payload": {"n": n}},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if response.status_code == 202:
                        submitted.append(response.json()["id"])

            async def kill_midway() -> None:
                while len(verified) < SIGNUPS // 3 and len(submitted) < JOBS // 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                kill()

            await asyncio.gather(
                kill_midway(),
                *(verify(b["email"]) for b in bodies),
                *(submit(n) for n in range(JOBS)),
            )
    assert 0 < len(verified) < SIGNUPS or 0 < len(submitted) < JOBS, "the kill landed mid-burst"

    database = Database(owner_database_url)
    in_flight = SignupSession.status.in_([SignupStatus.EMAIL_VERIFIED, SignupStatus.PROVISIONING])
    provisioned = SignupSession.status == SignupStatus.PROVISIONED
    try:
        with deployment(backend, env, tmp_path, port, worker_process, "second"):

            async def settled() -> bool:  # answered or not, no verified signup left behind
                return await count(database, SignupSession, in_flight) == 0

            await wait_for(settled, 60)
        assert await count(
            database, SignupSession, SignupSession.id.in_(verified), provisioned
        ) == len(verified)
        assert await count(database, Job, Job.id.in_(submitted)) == len(submitted)
        tenants_made = await count(database, SignupSession, provisioned)
        assert await count(database, Tenant) == tenants_made
        assert await count(database, Membership, Membership.role == "owner") == tenants_made
        welcome = MailMessage.template == "welcome"
        assert await count(database, MailMessage, welcome) == tenants_made
    finally:
        await database.dispose()
    record_property("load", f"{SIGNUPS} verifications and {JOBS} job submissions at once")
    killed = "`tenantry up`" if backend == "sqlite" else "`serve` and `worker`"
    record_property("faults", f"SIGKILL of {killed} a third of the way in, then a restart")
    record_property(
        "figure",
        f"{len(verified)} verified and {len(submitted)} jobs answered before the kill: "
        f"all kept, {tenants_made} tenants, one owner and one welcome mail each",
    )
