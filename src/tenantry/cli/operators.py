"""`tenantry operators`: who may sign in to the console, and as what."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.cli.console import OPERATOR, JsonFlag, OptionalReason, console, in_session, show
from tenantry.console import service
from tenantry.models import OperatorRole

app = typer.Typer(help="Console operators.", no_args_is_help=True)


@app.command("add")
def add(
    email: str,
    role: Annotated[OperatorRole, typer.Option(help="admin acts; support sees.")],
) -> None:
    """Let EMAIL sign in to /console by email code (audited)."""
    in_session(lambda s: service.add_operator(s, email, role, by=OPERATOR))
    console.print(f"{email} may sign in to /console as {role.value}")


@app.command("list")
def list_operators(as_json: JsonFlag = False) -> None:
    """Who may sign in to the console, and as what."""
    operators = in_session(service.list_operators)
    rows = [{"email": o.email, "role": o.role, "created_at": o.created_at} for o in operators]
    show(rows, ["email", "role", "created_at"], as_json=as_json)


@app.command("remove")
def remove(email: str, reason: OptionalReason = None) -> None:
    """Take EMAIL's console access away, its open sessions with it (audited)."""
    in_session(lambda s: service.remove_operator(s, email, by=OPERATOR, reason=reason))
    console.print(f"{email} is no operator any more")
