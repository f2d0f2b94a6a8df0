"""`tenantry token mint` and `token revoke` (also spelt `tokens`): access tokens for operators
and scripts, and cutting them off before they expire."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.app import build_token_issuer
from tenantry.auth import revocation
from tenantry.auth.jwt import ROLES_BY_AUDIENCE, Audience
from tenantry.auth.trust import Trust
from tenantry.cli.console import EXIT_USAGE, audited, console, duration, fail, with_database
from tenantry.config import Settings
from tenantry.datadir import ensure_data_dir
from tenantry.db import Database
from tenantry.models import RevocationKind

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
    settings = Settings()
    lifetime = duration(ttl)
    if lifetime > settings.max_token_ttl:
        fail(f"--ttl is longer than TENANTRY_MAX_TOKEN_TTL ({settings.max_token_ttl})", EXIT_USAGE)
    ensure_data_dir(settings)

    async def sign(database: Database) -> str:
        issuer = build_token_issuer(settings)
        await Trust(database, settings, issuer).refresh()  # the rotation's active key signs
        token, _ = issuer.mint(
            subject=subject,
            audience=audience,
            ttl=lifetime,
            roles=roles,
            scopes=scope or [],
            tenant_id=tenant,
        )
        return token

    typer.echo(with_database(sign))


@app.command()
def revoke(
    user: Annotated[
        str | None, typer.Option(help="Every token of this user (or integration key) until now.")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Every token of this tenant until now.")
    ] = None,
    jti: Annotated[str | None, typer.Option(help="One token, by its `jti` claim.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Refuse access tokens before they expire, on every process within a second."""
    targets = [
        (kind, value)
        for kind, value in (
            (RevocationKind.SUBJECT, user),
            (RevocationKind.TENANT, tenant),
            (RevocationKind.JTI, jti),
        )
        if value is not None
    ]
    if len(targets) != 1:
        fail("give exactly one of --user, --tenant, --jti", EXIT_USAGE)
    ((kind, target),) = targets
    settings = Settings()
    made = audited(
        f"tokens.revoke_{kind.value}",
        target,
        lambda s: revocation.revoke(s, settings, kind, target, reason=reason),
        reason=reason,
        after=lambda r: {"issued_before": r.issued_before, "expires_at": r.expires_at},
    )
    what = "token" if kind is RevocationKind.JTI else f"tokens of {kind.value} {target} issued"
    console.print(
        f"{what} until {made.issued_before:%Y-%m-%d %H:%M:%S} UTC revoked "
        f"(kept until {made.expires_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
