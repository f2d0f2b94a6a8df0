"""A worker killed with SIGKILL in the middle of each provisioning step: the run still ends
PROVISIONED with one tenant, one owner and one welcome mail."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import MailMessage, Membership, Tenant, User
from tests.fixtures.signup import code_for, from_address, signup_body
from tests.fixtures.workers import WorkerProcess, running_worker, wait_for

STEPS = ["create_tenant", "create_owner", "default_settings", "welcome_mail"]


async def count(database: Database, model: type, *where: object) -> int:
    async with database.session() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()
        )


@pytest.mark.parametrize("step", STEPS)
async def test_kill_mid_step_then_resume(
    step: str,
    api: httpx.AsyncClient,
    database: Database,
    signup_settings: Settings,
    worker_process: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    start = await api.post("/v1/signup", json=signup_body(), headers=from_address())
    signup_id = start.json()["id"]
    code = await code_for(database, signup_settings, signup_body()["email"])
    await api.post(f"/v1/signup/{signup_id}/verify", json={"code": code}, headers=from_address())

    marker = tmp_path / "crashed"
    victim = worker_process(
        TENANTRY_JOB_MODULES="tests.worker.kinds,tests.provisioning.crash_hooks",
        TENANTRY_TEST_CRASH_STEP=step,
        TENANTRY_TEST_CRASH_MARKER=str(marker),
        TENANTRY_DATA_DIR=str(signup_settings.data_dir),
    )
    await wait_for(lambda: asyncio.sleep(0, result=marker.exists()))
    victim.signal(signal.SIGKILL)
    await asyncio.to_thread(victim.process.wait, 10)

    clock.advance(signup_settings.job_lease * 2)  # the dead worker's leases run out
    async with running_worker(database, signup_settings):

        async def provisioned() -> bool:
            return (await api.get(f"/v1/signup/{signup_id}")).json()["status"] == "PROVISIONED"

        await wait_for(provisioned)
    assert await count(database, Tenant) == 1
    assert await count(database, User) == 1
    assert await count(database, Membership, Membership.role == "owner") == 1
    assert await count(database, MailMessage, MailMessage.template == "welcome") == 1
    steps = (await api.get(f"/v1/signup/{signup_id}")).json()["provisioning"]["steps"]
    assert {s["name"]: s["status"] for s in steps} == dict.fromkeys(STEPS, "done")
    assert next(s for s in steps if s["name"] == step)["attempts"] == 2
