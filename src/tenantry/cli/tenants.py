"""`tenantry tenants`: tenants by status, one tenant with its members and provisioning."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.cli.console import OPERATOR, JsonFlag, console, in_session, print_json, show
from tenantry.models import Tenant
from tenantry.provisioning.service import checkpoints, step_view
from tenantry.tenant import service

app = typer.Typer(help="Tenants.", no_args_is_help=True)


def tenant_dict(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "slug": tenant.slug,
        "name": tenant.name,
        "plan": tenant.plan,
        "status": tenant.status,
        "created_at": tenant.created_at,
    }


@app.command("list")
def list_tenants(
    status: Annotated[str | None, typer.Option(help="Only tenants in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Newest first."""
    found = in_session(lambda s: service.list_tenants(s, status=status, limit=limit))
    show(
        [tenant_dict(t) for t in found],
        ["id", "slug", "name", "plan", "status", "created_at"],
        as_json=as_json,
    )


@app.command("show")
def show_tenant(tenant_id: str, as_json: JsonFlag = False) -> None:
    """The tenant, its members and its provisioning steps."""

    async def read(session: AsyncSession) -> dict[str, Any]:
        tenant = await service.get_tenant(session, tenant_id)
        members = await service.list_members(session, tenant_id, after=None, limit=1000)
        signup = await service.signup_of(session, tenant_id)
        steps = [step_view(c) for c in await checkpoints(session, signup.id)] if signup else []
        return {
            **tenant_dict(tenant),
            "members": [{"user_id": u.id, "email": u.email, "role": m.role} for m, u in members],
            "provisioning": steps,
        }

    row = in_session(read)
    if as_json:
        print_json(row)
        return
    show(
        [{"field": k, "value": v} for k, v in row.items() if k not in ("members", "provisioning")],
        ["field", "value"],
        as_json=False,
    )
    show(row["members"], ["user_id", "email", "role"], as_json=False, title="members")
    show(
        row["provisioning"],
        ["name", "status", "attempts", "finished_at", "error"],
        as_json=False,
        title="provisioning",
    )


Reason = Annotated[str, typer.Option(help="Why: recorded in the tenant's events.")]


@app.command("suspend")
def suspend(tenant_id: str, reason: Reason) -> None:
    """Refuse the tenant's tokens and keys (403 tenant_suspended) and hold its jobs."""
    in_session(lambda s: service.set_suspended(s, tenant_id, True, reason=reason, by=OPERATOR))
    console.print(f"{tenant_id} suspended; every process refuses its tokens within a second")


@app.command("reactivate")
def reactivate(tenant_id: str, reason: Reason) -> None:
    """Lift a suspension: tokens, keys and jobs work again."""
    in_session(lambda s: service.set_suspended(s, tenant_id, False, reason=reason, by=OPERATOR))
    console.print(f"{tenant_id} active again")
