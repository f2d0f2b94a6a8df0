"""`tenantry schedules`: periodic tasks, their next and last runs."""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.cli.console import (
    JsonFlag,
    OptionalReason,
    audited,
    console,
    fail,
    in_session,
    show,
)
from tenantry.worker import scheduler
from tenantry.worker.registry import registry

app = typer.Typer(help="Periodic tasks.", no_args_is_help=True)


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """Name, cron, last run, next run and the outcome of the last job each fired."""
    views = in_session(lambda s: scheduler.list_schedules(s, registry))
    rows = [view.__dict__ for view in views]
    show(
        rows,
        ["name", "cron", "kind", "enabled", "last_run_at", "next_run_at", "last_outcome"],
        as_json=as_json,
    )


@app.command("run")
def run(name: str) -> None:
    """Fire a schedule now (its next tick is computed from now)."""
    try:
        job_id = audited(
            "schedule.run",
            name,
            lambda s: scheduler.run_now(s, registry, name),
            after=lambda job: {"job_id": job},
        )
    except scheduler.UnknownSchedule:
        fail(f"no schedule {name!r} yet: a worker writes the schedules when it starts")
    console.print(f"{name} enqueued as {job_id}")


def _set_enabled(name: str, enabled: bool, reason: str | None) -> None:

    async def act(session: AsyncSession) -> None:
        await scheduler.set_enabled(session, registry, name, enabled)

    try:
        audited(
            "schedule.enable" if enabled else "schedule.disable",
            name,
            act,
            reason=reason,
            before=lambda s: scheduler.enabled_state(s, name),
            after=lambda _: {"enabled": enabled},
        )
    except scheduler.UnknownSchedule:
        fail(f"no schedule {name!r}; `tenantry schedules list` names them")
    console.print(f"{name} {'enabled' if enabled else 'disabled'}")


@app.command("disable")
def disable(name: str, reason: OptionalReason = None) -> None:
    """Skip a periodic task's ticks (one stuck failing) until it is enabled again."""
    _set_enabled(name, False, reason)


@app.command("enable")
def enable(name: str, reason: OptionalReason = None) -> None:
    """Take a disabled periodic task's ticks up again, the next one from now."""
    _set_enabled(name, True, reason)
