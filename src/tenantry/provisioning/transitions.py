"""The checkpoint state machine of a provisioning run's steps.

Every change of a step's status is a conditional update through `MACHINE` and
marks the run as progressing (`signup_sessions.progressed_at`), in the same
transaction: the in-flight deadline counts from the last of these.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import ProvisioningStep, SignupSession, StepStatus

P = StepStatus
ALLOWED: dict[StepStatus, frozenset[StepStatus]] = {
    P.PENDING: frozenset({P.RUNNING}),
    # RUNNING → RUNNING: a new attempt after a crash or a retryable error.
    P.RUNNING: frozenset({P.RUNNING, P.DONE, P.REVIEW, P.FAILED, P.PENDING}),
    P.REVIEW: frozenset({P.PENDING}),
    P.FAILED: frozenset({P.PENDING}),
    P.DONE: frozenset(),
}


class StepState(TenantryError):
    status, code, title = 409, "STEP_STATE", "The provisioning step is not in a state for this"


MACHINE = Machine(ProvisioningStep, ALLOWED, StepState)


async def progressed(session: AsyncSession, signup_id: str) -> None:
    """The run showed a sign of life now."""
    await session.execute(
        update(SignupSession)
        .where(SignupSession.id == signup_id)
        .values(progressed_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def _move(
    session: AsyncSession, checkpoint: ProvisioningStep, to: StepStatus, **changes: Any
) -> None:
    read_in = checkpoint.status
    if not await MACHINE.move(session, checkpoint, to, **changes):
        raise StepState(f"step {checkpoint.name} moved from {read_in} to {checkpoint.status}")
    await progressed(session, checkpoint.signup_id)


async def reset(session: AsyncSession, checkpoint: ProvisioningStep) -> None:
    """A stopped or interrupted step waits to run again (a retried run)."""
    await _move(session, checkpoint, P.PENDING, error=None)


async def begin(session: AsyncSession, checkpoint: ProvisioningStep) -> None:
    """An attempt of the step starts."""
    await _move(
        session,
        checkpoint,
        P.RUNNING,
        attempts=checkpoint.attempts + 1,
        started_at=checkpoint.started_at or utcnow(),
    )


async def complete(
    session: AsyncSession, checkpoint: ProvisioningStep, output: Any, tenant_id: str | None
) -> None:
    await _move(
        session,
        checkpoint,
        P.DONE,
        finished_at=utcnow(),
        error=None,
        output=output,
        tenant_id=tenant_id,
    )


async def stop(
    session: AsyncSession, checkpoint: ProvisioningStep, to: StepStatus, error: str
) -> None:
    """The step asks for review or failed for good."""
    await _move(session, checkpoint, to, error=error, finished_at=utcnow())


async def note_retry(session: AsyncSession, checkpoint: ProvisioningStep, error: str) -> None:
    """A retryable error: the attempt's error is kept, and the run is still alive."""
    checkpoint.error = error
    await progressed(session, checkpoint.signup_id)
