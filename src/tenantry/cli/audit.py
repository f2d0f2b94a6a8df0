"""`tenantry audit`: the operators' actions, and whether the trail is whole."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenantry.audit import trail
from tenantry.cli.console import (
    EXIT_FINDING,
    JsonFlag,
    console,
    duration,
    errors,
    in_session,
    print_json,
    show,
)
from tenantry.kit.clock import utcnow
from tenantry.models import AuditRecord

app = typer.Typer(help="The audit trail of operator actions.", no_args_is_help=True)


def record_dict(entry: AuditRecord) -> dict[str, Any]:
    return {
        "id": entry.id,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "reason": entry.reason,
        "before": entry.before,
        "after": entry.after,
        "occurred_at": entry.occurred_at,
    }


@app.command("list")
def list_(
    since: Annotated[str | None, typer.Option(help="How far back, such as 24h or 30d.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. flag.set.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Newest first."""
    start = utcnow() - duration(since) if since else None
    found = in_session(lambda s: trail.list_records(s, since=start, action=action, limit=limit))
    show(
        [record_dict(entry) for entry in found],
        ["occurred_at", "id", "actor", "action", "target", "reason", "after"],
        as_json=as_json,
    )


@app.command("verify")
def verify(as_json: JsonFlag = False) -> None:
    """Recompute the hash chain; exit 1 if a record was changed or removed."""
    found = in_session(trail.verify)
    if as_json:
        print_json(
            {
                "intact": found.intact,
                "records": found.records,
                "head": {"seq": found.head_seq, "hash": found.head_hash},
                "problems": found.problems,
            }
        )
    elif found.intact:
        console.print(f"{found.records} records, chain intact; head {found.head_hash}")
    else:
        for problem in found.problems:
            errors.print(f"[bold red]broken:[/] {problem}", highlight=False)
    if not found.intact:
        raise typer.Exit(EXIT_FINDING)
