"""The worker: claims jobs in batches, runs their tasks, and writes outcomes back in batches;
beside them, the webhook dispatcher (tenantry.webhook.dispatcher) sends deliveries.

One asyncio loop holds up to `concurrency` jobs. Around it run a flusher (it
writes finished attempts in one transaction, however many finished meanwhile:
group commit), a heartbeat (it renews the leases of every job this worker
holds), a maintenance loop (paused queues, the reaper, the scheduler) and, on
PostgreSQL, a LISTEN connection that wakes the loop the moment a job commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import secrets
import socket
import time
from datetime import timedelta

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.flag.board import held_queues
from tenantry.kit.clock import utcnow
from tenantry.logging import bind_job_context, redact
from tenantry.metrics import JOB_DURATION, JOB_PICKUP_DELAY, JOBS_FINISHED, JOBS_LEASE_EXPIRED
from tenantry.models import JobStatus, QueueState
from tenantry.webhook.dispatcher import QUEUE as WEBHOOK_QUEUE
from tenantry.webhook.dispatcher import Dispatcher
from tenantry.worker import scheduler, transitions
from tenantry.worker.listener import listen_for_jobs
from tenantry.worker.queue import ClaimedJob, Outcome
from tenantry.worker.registry import (
    JobContext,
    NonRetryableError,
    TaskRegistry,
    UnknownJobKind,
    registry,
)

log = structlog.get_logger(__name__)

MAINTENANCE_INTERVAL_S = 1.0
ERROR_BACKOFF_S = 1.0


_OUTCOME_LABELS = {
    JobStatus.COMPLETED: "completed",
    JobStatus.PENDING: "retry",
    JobStatus.FAILED: "failed",
}


@functools.cache
def _kind_metrics(kind: str, outcome: str) -> tuple[Counter, Histogram]:
    """Labelled children, looked up once per kind: `labels()` costs more than the job."""
    return JOBS_FINISHED.labels(kind, outcome), JOB_DURATION.labels(kind)


def backoff(attempt: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2 ** (attempt - 1))
    return timedelta(seconds=random.uniform(0, ceiling))


def _describe(exc: BaseException) -> str:
    return str(redact(f"{type(exc).__name__}: {exc}"))


class Worker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        concurrency: int | None = None,
        queues: list[str] | None = None,
        tasks: TaskRegistry = registry,
    ) -> None:
        self.database = database
        self.settings = settings
        self.concurrency = concurrency or settings.worker_concurrency
        self.queues = queues
        self.tasks = tasks
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._unflushed: set[str] = set()
        self._outcomes: list[Outcome] = []
        self._paused: list[str] = []
        self._kick = asyncio.Event()
        self._outcomes_ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._drained = False  # no job runs any more: flush what is left and stop
        # Webhook deliveries go out from every worker that serves their queue.
        self.dispatcher = (
            Dispatcher(database, settings) if queues is None or WEBHOOK_QUEUE in queues else None
        )

    def stop(self) -> None:
        """Stop claiming; running jobs get the grace period to finish."""
        self._stopping.set()
        self._kick.set()
        if self.dispatcher is not None:
            self.dispatcher.stop()

    async def run(self) -> None:
        # The worker's own lines belong to no request, whoever started it (run as a task).
        structlog.contextvars.clear_contextvars()
        self.database.wakeup.bind(self._kick)
        await scheduler.sync_schedules(self.database, self.tasks)
        await self._refresh_paused()
        flusher = asyncio.create_task(self._flush_loop(), name="worker-flush")
        background = [
            asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="worker-maintenance"),
        ]
        dispatching = (
            asyncio.create_task(self.dispatcher.run(), name="webhook-dispatcher")
            if self.dispatcher is not None
            else None
        )
        if self.database.is_postgres:
            url = self.database.engine.url
            background.append(asyncio.create_task(listen_for_jobs(url, self._kick, self._stopping)))
        log.info(
            "worker_started",
            worker_id=self.id,
            concurrency=self.concurrency,
            queues=self.queues or "all",
        )
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            # The flusher is told to finish, never cancelled: a batch cut off
            # mid-write would leave finished jobs to be reaped and run again.
            self._drained = True
            self._outcomes_ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flusher, self.settings.worker_shutdown_grace.total_seconds())
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if dispatching is not None:
                self.dispatcher.stop()  # type: ignore[union-attr]
                await asyncio.gather(dispatching, return_exceptions=True)
            log.info("worker_stopped", worker_id=self.id)

    # -- claiming

    async def _claim_loop(self) -> None:
        poll = self.settings.job_poll_interval.total_seconds()
        # Below this many free slots, a busy worker waits for more to free up:
        # claims stay batches instead of one job each.
        threshold = max(1, self.concurrency // 4)
        while not self._stopping.is_set():
            self._kick.clear()
            free = self.concurrency - len(self._running)
            if free >= threshold or (free > 0 and not self._running):
                try:
                    claimed = await self._claim(free)
                except Exception as exc:
                    log.warning("claim_failed", worker_id=self.id, error=_describe(exc))
                    await asyncio.sleep(ERROR_BACKOFF_S)
                    continue
                for job in claimed:
                    self._start(job)
                if claimed and len(claimed) == free:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=poll)

    async def _claim(self, limit: int) -> list[ClaimedJob]:
        async with self.database.session(cross_tenant="worker") as session:
            claimed = await transitions.claim(
                session,
                worker_id=self.id,
                limit=limit,
                lease=self.settings.job_lease,
                queues=self.queues,
                paused=self._paused,
            )
        for job in claimed:
            JOB_PICKUP_DELAY.observe(max(0.0, (job.claimed_at - job.run_at).total_seconds()))
        return claimed

    def _start(self, job: ClaimedJob) -> None:
        self._unflushed.add(job.id)
        self._running[job.id] = asyncio.create_task(self._execute(job))

    # -- running

    async def _execute(self, job: ClaimedJob) -> None:
        # A task of its own: the context bound here is this attempt's alone.
        bind_job_context(
            job_id=job.id, kind=job.kind, tenant_id=job.tenant_id, trace_id=job.trace_id
        )
        started = time.perf_counter()
        try:
            outcome = await self._attempt(job)
            self._outcomes.append(outcome)
            self._outcomes_ready.set()
            label = _OUTCOME_LABELS[outcome.status]
            finished, duration = _kind_metrics(job.kind, label)
            finished.inc()
            duration.observe(time.perf_counter() - started)
            if outcome.status is not JobStatus.COMPLETED:
                log.warning(
                    "job_attempt_failed",
                    attempt=job.attempts,
                    outcome=label,
                    error=outcome.error,
                )
        finally:
            del self._running[job.id]
            self._kick.set()

    async def _attempt(self, job: ClaimedJob) -> Outcome:
        try:
            task = self.tasks.get(job.kind)
        except UnknownJobKind:
            return self._failed(
                job, NonRetryableError(f"no task is registered for kind {job.kind!r}")
            )
        context = JobContext(
            job.id,
            job.kind,
            job.tenant_id,
            job.payload,
            job.attempts,
            job.max_attempts,
            self.database,
            self.settings,
            submitted_by_tenant=task.tenant_submittable and job.tenant_id is not None,
        )
        try:
            result = await task.handler(context)
            if result is not None:
                json.dumps(result)  # refuse now what the database would refuse at flush
        except asyncio.CancelledError:
            raise
        except NonRetryableError as exc:
            return self._failed(job, exc)
        except Exception as exc:
            return (
                self._retry(job, exc) if job.attempts < job.max_attempts else self._failed(job, exc)
            )
        return Outcome(job.id, job.attempts, JobStatus.COMPLETED, result=result)

    def _failed(self, job: ClaimedJob, exc: BaseException) -> Outcome:
        return Outcome(job.id, job.attempts, JobStatus.FAILED, error=_describe(exc))

    def _retry(self, job: ClaimedJob, exc: BaseException) -> Outcome:
        delay = backoff(job.attempts, self.settings.job_backoff_base, self.settings.job_backoff_max)
        return Outcome(
            job.id, job.attempts, JobStatus.PENDING, error=_describe(exc), retry_at=utcnow() + delay
        )

    # -- writing back

    async def _flush_loop(self) -> None:
        while not (self._drained and not self._outcomes):
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        try:
            async with self.database.session(cross_tenant="worker") as session:
                await transitions.finish(session, worker_id=self.id, outcomes=batch)
        except Exception as exc:
            # Keep them: the leases are still renewed, and the next flush retries.
            log.warning("flush_failed", worker_id=self.id, jobs=len(batch), error=_describe(exc))
            self._outcomes = batch + self._outcomes
            await asyncio.sleep(ERROR_BACKOFF_S)
            self._outcomes_ready.set()
            return
        self._unflushed.difference_update(outcome.job_id for outcome in batch)

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.job_lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.database.session(cross_tenant="worker") as session:
                    await transitions.renew(
                        session,
                        worker_id=self.id,
                        job_ids=sorted(self._unflushed),
                        lease=self.settings.job_lease,
                    )
            except Exception as exc:
                log.warning("lease_renewal_failed", worker_id=self.id, error=_describe(exc))

    # -- maintenance: paused queues, the reaper, the scheduler

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL_S)
            try:
                await self._refresh_paused()
                await self._reap()
                await scheduler.fire_due(self.database, self.tasks)
            except Exception as exc:
                log.warning("maintenance_failed", worker_id=self.id, error=_describe(exc))

    async def _refresh_paused(self) -> None:
        """Queues paused by operators, and queues a switched-off flag holds."""
        async with self.database.session(cross_tenant="worker") as session:
            rows = await session.execute(select(QueueState.name).where(QueueState.paused.is_(True)))
            self._paused = sorted(set(rows.scalars()) | set(await held_queues(session)))

    async def _reap(self) -> None:
        async with self.database.session(cross_tenant="worker") as session:
            reaped = await transitions.reap(session)
        for job in reaped:
            JOBS_LEASE_EXPIRED.inc()
            log.warning("job_lease_expired", job_id=job.job_id, kind=job.kind, now=job.status.value)

    # -- shutdown

    async def _drain(self) -> None:
        if not self._running:
            return
        grace = self.settings.worker_shutdown_grace.total_seconds()
        log.info("worker_draining", worker_id=self.id, running=len(self._running), grace_s=grace)
        _, unfinished = await asyncio.wait(list(self._running.values()), timeout=grace)
        if not unfinished:
            return
        interrupted = [job_id for job_id, task in self._running.items() if task in unfinished]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        async with self.database.session(cross_tenant="worker") as session:
            await transitions.release(session, worker_id=self.id, job_ids=interrupted)
        self._unflushed.difference_update(interrupted)
        log.warning("worker_released_jobs", worker_id=self.id, jobs=interrupted)
