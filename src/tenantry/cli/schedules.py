"""`tenantry schedules`: periodic tasks, their next and last runs."""

from __future__ import annotations

import typer

from tenantry.cli.console import JsonFlag, audited, console, fail, in_session, show
from tenantry.config import Settings
from tenantry.worker import scheduler
from tenantry.worker.registry import load_task_modules, registry

app = typer.Typer(help="Periodic tasks.", no_args_is_help=True)


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """Name, cron, last run, next run and the outcome of the last job each fired."""
    load_task_modules(Settings())
    views = in_session(lambda s: scheduler.list_schedules(s, registry))
    rows = [view.__dict__ for view in views]
    show(
        rows,
        ["name", "cron", "kind", "last_run_at", "next_run_at", "last_outcome"],
        as_json=as_json,
    )


@app.command("run")
def run(name: str) -> None:
    """Fire a schedule now (its next tick is computed from now)."""
    load_task_modules(Settings())
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
