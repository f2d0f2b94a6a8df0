"""The provisioning run: `provisioning.start` lays out the plan's checkpoints, then a
`provisioning.run_step` job runs a step and, while the next one only touches the
database, that one too; a step with an effect outside gets a job of its own.

Each step still commits its own checkpoint. A run resumes from the first step
not done: a retry after review or failure starts again there, and a worker
killed at any line leaves either the step undone (it runs again) or done and
its successor enqueued or run by the same job (which the reaper hands back to
the queue, to find the step done and go on from there).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.logging import redact
from tenantry.metrics import PROVISIONING_DURATION, PROVISIONING_STEPS
from tenantry.models import ProvisioningStep, SignupSession, SignupStatus, StepStatus
from tenantry.provisioning import transitions as step_transitions
from tenantry.provisioning.service import START, checkpoints
from tenantry.provisioning.steps import (
    StepContext,
    StepFatal,
    StepNeedsReview,
    get_step,
    load_step_modules,
    runs_inside,
)
from tenantry.signup import transitions
from tenantry.worker.queue import WAITED_ON, enqueue
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)

RUN_STEP = "provisioning.run_step"
RESUMABLE = (SignupStatus.EMAIL_VERIFIED, SignupStatus.REVIEW_REQUIRED, SignupStatus.FAILED)


async def _locked_signup(session: AsyncSession, signup_id: str) -> SignupSession | None:
    query = select(SignupSession).where(SignupSession.id == signup_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def _enqueue_step(session: AsyncSession, signup_id: str, run_id: str, name: str) -> None:
    await enqueue(
        session,
        RUN_STEP,
        {"signup_id": signup_id, "run_id": run_id, "step": name},
        idempotency_key=f"{run_id}:{name}",
        queue="provisioning",
        priority=WAITED_ON,
    )


@registry.task(START, max_attempts=10)
async def start_run(context: JobContext) -> dict[str, str]:
    signup_id, run_id = context.payload["signup_id"], context.payload["run_id"]
    async with context.session() as session:
        signup = await _locked_signup(session, signup_id)
        if signup is None or signup.status not in (*RESUMABLE, SignupStatus.PROVISIONING):
            return {"skipped": signup.status if signup else "missing"}
        if signup.status != SignupStatus.PROVISIONING:
            await transitions.move(
                session,
                signup,
                SignupStatus.PROVISIONING,
                data={"run_id": run_id},
                review_reason=None,
                failure_reason=None,
                progressed_at=utcnow(),
            )
        plan = context.settings.plans.get(signup.plan)
        if plan is None:  # the plan was removed from the settings since the signup
            await transitions.move(
                session, signup, SignupStatus.FAILED, failure_reason=f"unknown plan {signup.plan!r}"
            )
            return {"failed": "unknown plan"}
        existing = {
            checkpoint.name: checkpoint for checkpoint in await checkpoints(session, signup_id)
        }
        for position, name in enumerate(plan):
            checkpoint = existing.get(name)
            if checkpoint is None:
                session.add(
                    ProvisioningStep(
                        id=new_id("stp"),
                        signup_id=signup_id,
                        tenant_id=signup.tenant_id,
                        position=position,
                        name=name,
                        status=StepStatus.PENDING,
                        attempts=0,
                    )
                )
            elif checkpoint.status in (StepStatus.REVIEW, StepStatus.FAILED, StepStatus.RUNNING):
                await step_transitions.reset(session, checkpoint)
        await session.flush()
        first = next(
            c for c in await checkpoints(session, signup_id) if c.status != StepStatus.DONE
        )
        await _enqueue_step(session, signup_id, run_id, first.name)
    return {"run_id": run_id, "first_step": first.name}


async def _finish(
    session: AsyncSession, signup: SignupSession, outcome: SignupStatus, **changes: Any
) -> None:
    await transitions.move(session, signup, outcome, **changes)
    if signup.verified_at is not None:
        elapsed = (utcnow() - signup.verified_at).total_seconds()
        PROVISIONING_DURATION.labels(signup.plan, outcome.value.lower()).observe(elapsed)


async def _settle(context: JobContext, name: str, status: StepStatus, error: str) -> None:
    """Record a step that stopped the run: review or failure, on the checkpoint and the session."""
    async with context.session() as session:
        signup = await _locked_signup(session, context.payload["signup_id"])
        checkpoint = next(
            c for c in await checkpoints(session, context.payload["signup_id"]) if c.name == name
        )
        await step_transitions.stop(session, checkpoint, status, error)
        if signup is not None and signup.status == SignupStatus.PROVISIONING:
            if status is StepStatus.REVIEW:
                await _finish(session, signup, SignupStatus.REVIEW_REQUIRED, review_reason=error)
            else:
                await _finish(
                    session, signup, SignupStatus.FAILED, failure_reason=f"step {name}: {error}"
                )
    PROVISIONING_STEPS.labels(name, status.value).inc()
    log.warning(
        "provisioning_stopped",
        signup_id=context.payload["signup_id"],
        step=name,
        status=status,
        error=error,
    )


@registry.task(RUN_STEP, max_attempts=8)
async def run_step(context: JobContext) -> dict[str, str]:
    signup_id, run_id, name = (
        context.payload["signup_id"],
        context.payload["run_id"],
        context.payload["step"],
    )
    async with context.session() as session:
        signup = await session.get(SignupSession, signup_id)
        laid_out = await checkpoints(session, signup_id)
        checkpoint = next((c for c in laid_out if c.name == name), None)
        if signup is None or checkpoint is None or signup.status != SignupStatus.PROVISIONING:
            return {"skipped": "not provisioning"}
        if checkpoint.status != StepStatus.DONE:
            await step_transitions.begin(session, checkpoint)
    if checkpoint.status == StepStatus.DONE:
        # A re-run after a crash between the step's commit and this job's end.
        async with context.session() as session:
            await _advance(session, signup_id, run_id)
        return {"step": name, "outcome": "already done"}
    try:
        following = await _run_and_complete(context, signup, name, run_id)
    except (StepNeedsReview, StepFatal) as exc:
        status = StepStatus.REVIEW if isinstance(exc, StepNeedsReview) else StepStatus.FAILED
        await _settle(context, name, status, str(redact(str(exc))))
        return {"stopped": status.value}
    except Exception as exc:
        error = str(redact(f"{type(exc).__name__}: {exc}"))
        PROVISIONING_STEPS.labels(name, "retry").inc()
        if context.is_last_attempt:
            await _settle(
                context,
                name,
                StepStatus.FAILED,
                f"gave up after {context.attempt} attempts: {error}",
            )
            return {"stopped": "failed"}
        async with context.session() as session:
            failing = next(c for c in await checkpoints(session, signup_id) if c.name == name)
            await step_transitions.note_retry(session, failing, error)
        raise
    ran = [name]
    while following is not None:
        ran.append(following)
        following = await _run_next(context, signup_id, run_id, following)
    return {"step": " ".join(ran), "outcome": "done"}


async def _run_next(context: JobContext, signup_id: str, run_id: str, name: str) -> str | None:
    """A database-only step run by the job that completed the one before: its attempt
    begins in one commit (counted even if the worker dies), and the step runs and completes
    in the next. Review or failure settles the run as it would in a job of its own; any
    other error hands the step to a job of its own, with the queue's retries."""
    async with context.session() as session:
        checkpoint = next(c for c in await checkpoints(session, signup_id) if c.name == name)
        if checkpoint.status != StepStatus.DONE:
            await step_transitions.begin(session, checkpoint)
    try:
        async with context.session() as session:
            signup = await _locked_signup(session, signup_id)
            if signup is None or signup.status != SignupStatus.PROVISIONING:
                return None
            checkpoint = next(c for c in await checkpoints(session, signup_id) if c.name == name)
            if checkpoint.status == StepStatus.DONE:
                return await _advance(session, signup_id, run_id, chain=True)
            step_context = StepContext(signup, context.settings, session, checkpoint.attempts)
            output = await get_step(name).run(step_context)
            following = await _complete(session, signup, checkpoint, output, run_id)
    except (StepNeedsReview, StepFatal) as exc:
        status = StepStatus.REVIEW if isinstance(exc, StepNeedsReview) else StepStatus.FAILED
        await _settle(context, name, status, str(redact(str(exc))))
        return None
    except Exception as exc:
        PROVISIONING_STEPS.labels(name, "retry").inc()
        async with context.session() as session:
            failing = next(c for c in await checkpoints(session, signup_id) if c.name == name)
            await step_transitions.note_retry(session, failing, f"{type(exc).__name__}: {exc}")
            await _enqueue_step(session, signup_id, run_id, name)
        return None
    PROVISIONING_STEPS.labels(name, "done").inc()
    return following


async def _run_and_complete(
    context: JobContext, signup: SignupSession, name: str, run_id: str
) -> str | None:
    """Run the step and, in one commit, mark it done and enqueue what comes next; returns
    the next step when this job runs it (a database-only one)."""
    step = get_step(name)
    output = None
    if step.outside:
        output = await step.run(StepContext(signup, context.settings, None, context.attempt))
    async with context.session() as session:
        current = await _locked_signup(session, signup.id)
        if current is None or current.status != SignupStatus.PROVISIONING:
            return None
        if not step.outside:
            output = await step.run(
                StepContext(current, context.settings, session, context.attempt)
            )
        checkpoint = next(c for c in await checkpoints(session, signup.id) if c.name == name)
        following = await _complete(session, current, checkpoint, output, run_id)
    PROVISIONING_STEPS.labels(name, "done").inc()
    return following


async def _complete(
    session: AsyncSession,
    signup: SignupSession,
    checkpoint: ProvisioningStep,
    output: Any,
    run_id: str,
) -> str | None:
    await step_transitions.complete(session, checkpoint, output, signup.tenant_id)
    events.record(
        session,
        "provisioning.StepCompleted",
        tenant_id=signup.tenant_id,
        subject_id=signup.id,
        data={"step": checkpoint.name, "attempts": checkpoint.attempts},
    )
    return await _advance(session, signup.id, run_id, chain=True)


async def _advance(
    session: AsyncSession, signup_id: str, run_id: str, *, chain: bool = False
) -> str | None:
    """Enqueue the first step not done, or finish the run (idempotent: keys name run and
    step). With `chain`, a database-only next step is returned for this job to run instead."""
    signup = await _locked_signup(session, signup_id)
    if signup is None or signup.status != SignupStatus.PROVISIONING:
        return None
    remaining = [c for c in await checkpoints(session, signup_id) if c.status != StepStatus.DONE]
    if remaining:
        following = remaining[0].name
        if chain and runs_inside(following):
            return following
        await _enqueue_step(session, signup_id, run_id, following)
        return None
    await _finish(session, signup, SignupStatus.PROVISIONED)
    log.info("tenant_provisioned", signup_id=signup_id, tenant_id=signup.tenant_id)
    return None


load_step_modules()
