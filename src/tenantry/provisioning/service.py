"""Provisioning as others see it: start a run, read its checkpoints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.ids import new_id
from tenantry.models import ProvisioningStep, SignupSession
from tenantry.worker.queue import WAITED_ON, enqueue

START = "provisioning.start"


async def request_run(session: AsyncSession, signup: SignupSession) -> str:
    """Enqueue a run for `signup` in the caller's transaction; a fresh key each time."""
    run_id = new_id("run")
    payload = {"signup_id": signup.id, "run_id": run_id}
    return await enqueue(session, START, payload, idempotency_key=run_id, priority=WAITED_ON)


async def checkpoints(session: AsyncSession, signup_id: str) -> list[ProvisioningStep]:
    query = (
        select(ProvisioningStep)
        .where(ProvisioningStep.signup_id == signup_id)
        .order_by(ProvisioningStep.position)
    )
    return list((await session.execute(query)).scalars())


def step_view(checkpoint: ProvisioningStep) -> dict[str, Any]:
    """A checkpoint as the API and the CLI show it (CONTRACT §5)."""
    return {
        "name": checkpoint.name,
        "status": checkpoint.status,
        "attempts": checkpoint.attempts,
        "started_at": checkpoint.started_at,
        "finished_at": checkpoint.finished_at,
        "error": checkpoint.error,
    }
