"""`tenantry incident`: open one, post its status as it moves (optionally mailing the affected
tenants' owners), list them, and print the timeline for the post-incident review."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenantry.cli.console import OPERATOR, JsonFlag, console, in_session, show
from tenantry.config import Settings
from tenantry.incident import service
from tenantry.models import Incident, IncidentStatus

app = typer.Typer(help="Incidents and the public status notice.", no_args_is_help=True)
Notify = Annotated[bool, typer.Option("--notify", help="Mail the affected tenants' owners.")]


def incident_dict(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "status": incident.status,
        "tenants": ", ".join(incident.tenants) if incident.tenants else "all",
        "opened_at": incident.opened_at,
        "resolved_at": incident.resolved_at,
    }


@app.command("open")
def open_(
    title: Annotated[str, typer.Option(help="What is wrong, in the customers' words.")],
    impact: Annotated[str, typer.Option(help="Who is affected and how: the first post.")],
    tenants: Annotated[str, typer.Option(help="all, or tenant ids comma-separated.")] = "all",
    notify: Notify = False,
) -> None:
    """Open an incident (investigating); its notice shows at /status and GET /v1/status."""
    affected = None if tenants == "all" else [t.strip() for t in tenants.split(",") if t.strip()]
    settings = Settings()
    incident = in_session(
        lambda s: service.open_incident(
            s, settings, title=title, impact=impact, tenants=affected, by=OPERATOR, notify=notify
        )
    )
    typer.echo(incident.id)


@app.command("post")
def post(
    incident_id: str,
    state: Annotated[IncidentStatus, typer.Option(help="Where the incident stands now.")],
    message: Annotated[str, typer.Option(help="The update, in the customers' words.")],
    notify: Notify = False,
) -> None:
    """Post the incident's status; `resolved` closes it and clears the public notice."""
    settings = Settings()
    entry = in_session(
        lambda s: service.post(
            s, settings, incident_id, state=state, message=message, by=OPERATOR, notify=notify
        )
    )
    mailed = f"; {entry.notified} owners mailed" if notify else ""
    console.print(f"{incident_id} is {entry.status}{mailed}")


@app.command("list")
def list_(as_json: JsonFlag = False) -> None:
    """Newest first."""
    found = in_session(service.list_incidents)
    columns = ["id", "title", "status", "tenants", "opened_at", "resolved_at"]
    show([incident_dict(i) for i in found], columns, as_json=as_json)


@app.command("timeline")
def timeline(incident_id: str) -> None:
    """Markdown for the post-incident review: posts, operators' actions, canary failures and
    SLO breaches inside the incident's window."""
    typer.echo(in_session(lambda s: service.timeline(s, incident_id)), nl=False)
