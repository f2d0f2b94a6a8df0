"""`tenantry provisioning`: operators' verdicts on provisioning runs."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.cli.console import OPERATOR, console, in_session
from tenantry.signup import service

app = typer.Typer(help="Provisioning runs.", no_args_is_help=True)


@app.command("mark-complete")
def mark_complete(
    session_id: str,
    reason: Annotated[str, typer.Option(help="Why: recorded in the session's events.")],
) -> None:
    """A REVIEW_REQUIRED, FAILED or expired run whose tenant and owner exist becomes PROVISIONED."""
    signup = in_session(lambda s: service.mark_complete(s, session_id, reason=reason, by=OPERATOR))
    console.print(f"{signup.id} is {signup.status} (tenant {signup.tenant_id})")
