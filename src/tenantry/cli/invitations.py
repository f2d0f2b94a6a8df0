"""`tenantry invitations`: list a tenant's invitations, send a new link, withdraw one."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tenantry.cli.console import JsonFlag, OptionalReason, audited, console, in_session, show
from tenantry.config import Settings
from tenantry.invitation import service
from tenantry.models import Invitation, InvitationStatus

app = typer.Typer(help="Invitations to join tenants.", no_args_is_help=True)
COLUMNS = ["id", "email", "role", "status", "created_at", "expires_at", "invited_by"]


def _row(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "tenant_id": invitation.tenant_id,
        "email": invitation.email,
        "role": invitation.role,
        "status": service.effective_status(invitation),
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
        "invited_by": invitation.invited_by,
    }


@app.command("list")
def list_(
    tenant: Annotated[str, typer.Option(help="The tenant's id.")],
    status: Annotated[InvitationStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """A tenant's invitations, newest first (never their links)."""
    found = in_session(lambda s: service.list_invitations(s, tenant, status=status, limit=limit))
    show([_row(i) for i in found], COLUMNS, as_json=as_json)


@app.command()
def resend(invitation_id: str, reason: OptionalReason = None) -> None:
    """Mail a new link (the old one stops working) with a fresh expiry."""
    settings = Settings()

    async def act(session: Any) -> Invitation:
        return await service.resend(session, settings, await service.get(session, invitation_id))

    invitation = audited("invitation.resend", invitation_id, act, reason=reason)
    console.print(f"{invitation.id}: a new link is on its way to {invitation.email}")


@app.command()
def revoke(invitation_id: str, reason: OptionalReason = None) -> None:
    """Withdraw a pending invitation: its link stops working."""

    async def act(session: Any) -> Invitation:
        return await service.revoke(session, await service.get(session, invitation_id))

    invitation = audited("invitation.revoke", invitation_id, act, reason=reason)
    console.print(f"{invitation.id} ({invitation.email}) revoked")
