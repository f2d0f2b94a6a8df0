"""`tenantry jobs` and `tenantry queues`: queue-stall triage."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from tenantry.cli.console import (
    JsonFlag,
    OptionalReason,
    audited,
    console,
    duration,
    in_session,
    print_json,
    record_action,
    show,
    with_database,
)
from tenantry.config import Settings
from tenantry.job import service
from tenantry.job.admission import Cap, all_caps
from tenantry.models import Job, JobStatus

app = typer.Typer(help="Inspect and act on jobs.", no_args_is_help=True)
queues_app = typer.Typer(help="Pause and resume named queues.", no_args_is_help=True)

LIST_COLUMNS = [
    "id",
    "kind",
    "tenant_id",
    "queue",
    "status",
    "attempts",
    "created_at",
    "last_error",
]


def job_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "tenant_id": job.tenant_id,
        "queue": job.queue,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "payload": job.payload,
        "result": job.result,
        "last_error": job.last_error,
        "worker_id": job.worker_id,
        "created_at": job.created_at,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "lease_expires_at": job.lease_expires_at,
    }


@app.command("list")
def list_(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only jobs of this tenant.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The newest jobs first."""
    found = in_session(
        lambda s: service.list_jobs(s, status=status, kind=kind, tenant_id=tenant, limit=limit)
    )
    rows = [job_dict(job) for job in found]
    for row in rows:
        if not as_json and row["last_error"]:
            row["last_error"] = row["last_error"][:60]
    show(rows, LIST_COLUMNS, as_json=as_json)


@app.command("show")
def show_(job_id: str, as_json: JsonFlag = False) -> None:
    """Every field of one job."""
    row = job_dict(in_session(lambda s: service.get_job(s, job_id)))
    if as_json:
        print_json(row)
        return
    show(
        [{"field": k, "value": v} for k, v in row.items()],
        ["field", "value"],
        as_json=False,
        title=job_id,
    )


@app.command("stats")
def stats(as_json: JsonFlag = False) -> None:
    """Counts per queue and status, oldest waiting job, paused queues, admission caps in use."""
    settings = Settings()

    async def read(session: Any) -> tuple[list[service.QueueStats], list[str], list[Cap]]:
        return (
            await service.queue_stats(session),
            await service.paused_queues(session),
            await all_caps(session, settings),
        )

    entries, paused, caps = in_session(read)
    rows = [
        {
            "queue": e.queue,
            "status": e.status,
            "count": e.count,
            "oldest_pending_age_s": None
            if e.oldest_pending_age_s is None
            else round(e.oldest_pending_age_s, 1),
            "paused": e.queue in paused,
        }
        for e in entries
    ]
    admission = [{"cap": c.scope, "limit": c.limit, "in_use": c.in_use} for c in caps]
    if as_json:
        print_json({"queues": rows, "paused": paused, "admission": admission})
        return
    show(rows, ["queue", "status", "count", "oldest_pending_age_s", "paused"], as_json=False)
    if paused:
        console.print(f"paused queues: {', '.join(paused)}")
    show(admission, ["cap", "limit", "in_use"], as_json=False, title="admission caps")


@app.command("retry")
def retry(job_id: str, reason: OptionalReason = None) -> None:
    """Put a FAILED job back to PENDING with its attempts reset."""
    audited("job.retry", job_id, lambda s: service.retry_job(s, job_id), reason=reason)
    console.print(f"{job_id} is PENDING again")


class Finished(StrEnum):
    FAILED = "failed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@app.command("clean")
def clean(
    status: Annotated[Finished, typer.Option(help="Which finished jobs.")],
    older_than: Annotated[str, typer.Option(help="Finished longer ago than this, e.g. 24h.")],
    reason: OptionalReason = None,
) -> None:
    """Delete finished jobs now, ahead of their retention (a batch per transaction)."""
    age = duration(older_than)

    deleted = with_database(
        lambda database: service.delete_older(database, [JobStatus(status.upper())], age)
    )
    target = f"{status} older than {older_than}"
    record_action("jobs.clean", target, reason=reason, after={"deleted": deleted})
    console.print(f"{deleted} {status} jobs deleted")


@app.command("cancel")
def cancel(job_id: str, reason: OptionalReason = None) -> None:
    """Cancel a PENDING job."""
    audited("job.cancel", job_id, lambda s: service.cancel_job(s, job_id), reason=reason)
    console.print(f"{job_id} is CANCELLED")


def _set_paused(name: str, paused: bool, reason: str | None) -> None:
    audited(
        "queue.pause" if paused else "queue.resume",
        name,
        lambda s: service.set_queue_paused(s, name, paused),
        reason=reason,
        after=lambda _: {"paused": paused},
    )
    interval = Settings().job_poll_interval.total_seconds()
    state = "paused" if paused else "resumed"
    console.print(f"queue {name} {state}; running workers see it within {max(1.0, interval):.0f}s")


@queues_app.command("pause")
def pause(name: str, reason: OptionalReason = None) -> None:
    """Stop workers from claiming jobs of this queue (enqueueing goes on)."""
    _set_paused(name, True, reason)


@queues_app.command("resume")
def resume(name: str, reason: OptionalReason = None) -> None:
    """Let workers claim jobs of this queue again."""
    _set_paused(name, False, reason)
