"""`tenantry token mint`: access tokens for operators and scripts."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import ROLES_BY_AUDIENCE, Audience
from tenantry.cli.console import EXIT_USAGE, fail
from tenantry.config import Settings
from tenantry.datadir import ensure_data_dir
from tenantry.kit.durations import parse_duration

app = typer.Typer(help="Access tokens.", no_args_is_help=True)


@app.command()
def mint(
    audience: Annotated[Audience, typer.Option(help="Who the token is for.")],
    role: Annotated[list[str] | None, typer.Option(help="A role (repeatable).")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="A scope (repeatable).")] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant id (tenant and integration audiences).")
    ] = None,
    subject: Annotated[str, typer.Option(help="The `sub` claim.")] = "operator",
    ttl: Annotated[str, typer.Option(help="Lifetime such as 15m or 2h.")] = "15m",
) -> None:
    """Print a signed access token."""
    roles = role or []
    if unknown := set(roles) - ROLES_BY_AUDIENCE[audience]:
        allowed = ", ".join(sorted(ROLES_BY_AUDIENCE[audience])) or "none"
        fail(
            f"role {', '.join(sorted(unknown))} is not valid for audience {audience}: {allowed}",
            EXIT_USAGE,
        )
    needs_tenant = audience in (Audience.TENANT, Audience.INTEGRATION)
    if needs_tenant != (tenant is not None):
        fail(
            f"--tenant is {'required' if needs_tenant else 'not allowed'} for audience {audience}",
            EXIT_USAGE,
        )
    try:
        lifetime = parse_duration(ttl)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    settings = Settings()
    ensure_data_dir(settings)
    token, _ = build_token_issuer(settings).mint(
        subject=subject,
        audience=audience,
        ttl=lifetime,
        roles=roles,
        scopes=scope or [],
        tenant_id=tenant,
    )
    typer.echo(token)
