"""`tenantry sessions`, `tenantry promos` and `tenantry purge`: signup triage and housekeeping."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.cli.console import (
    OPERATOR,
    JsonFlag,
    audited,
    console,
    duration,
    in_session,
    print_json,
    show,
)
from tenantry.config import Settings
from tenantry.kit.clock import utcnow
from tenantry.models import PromoCode, SignupSession, SignupStatus
from tenantry.provisioning.service import checkpoints, step_view
from tenantry.signup import promos, service

sessions_app = typer.Typer(help="Signup sessions.", no_args_is_help=True)
promos_app = typer.Typer(help="Promo codes accepted at signup.", no_args_is_help=True)

SESSION_COLUMNS = [
    "id",
    "status",
    "slug",
    "email_domain",
    "failure_reason",
    "review_reason",
    "updated_at",
]


def session_dict(
    signup: SignupSession, steps: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What triage needs; the admin's email domain, never the address."""
    return {
        "id": signup.id,
        "status": signup.status,
        "org_name": signup.org_name,
        "slug": signup.slug,
        "plan": signup.plan,
        "email_domain": service.email_domain(signup.email),
        "tenant_id": signup.tenant_id,
        "failure_reason": signup.failure_reason,
        "review_reason": signup.review_reason,
        "created_at": signup.created_at,
        "updated_at": signup.updated_at,
        "expires_at": signup.expires_at,
        "verified_at": signup.verified_at,
        "checkpoints": steps or [],
    }


@sessions_app.command("list")
def list_sessions(
    status: Annotated[
        SignupStatus | None, typer.Option(help="Only sessions in this status.")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Not updated for this long, e.g. 2h.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Newest first."""
    age = duration(older_than) if older_than else None
    found = in_session(
        lambda s: service.list_signups(s, status=status, older_than=age, limit=limit)
    )
    show([session_dict(s) for s in found], SESSION_COLUMNS, as_json=as_json)


@sessions_app.command("show")
def show_session(signup_id: str, as_json: JsonFlag = False) -> None:
    """Every triage field of one session."""

    async def read(session: AsyncSession) -> dict[str, Any]:
        signup = await service.get_signup(session, signup_id)
        steps = [step_view(c) for c in await checkpoints(session, signup_id)]
        return session_dict(signup, steps)

    row = in_session(read)
    if as_json:
        print_json(row)
        return
    show([{"field": k, "value": v} for k, v in row.items()], ["field", "value"], as_json=False)


def promo_dict(promo: PromoCode) -> dict[str, Any]:
    return {
        "code": promo.code,
        "description": promo.description,
        "expires_at": promo.expires_at,
        "redemptions": promo.redemptions,
        "max_redemptions": promo.max_redemptions,
        "disabled": promo.disabled,
        "created_at": promo.created_at,
    }


@promos_app.command("create")
def create_promo(
    code: str,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="Valid for this long, e.g. 30d.")] = None,
    max_redemptions: Annotated[int | None, typer.Option(min=1, help="Redemptions allowed.")] = None,
) -> None:
    """Create a promo code (stored upper-cased)."""
    expires_at: datetime | None = utcnow() + duration(expires_in) if expires_in else None
    promo = in_session(
        lambda s: promos.create_promo(
            s, code, description=description, expires_at=expires_at, max_redemptions=max_redemptions
        )
    )
    console.print(f"created {promo.code}")


@promos_app.command("list")
def list_promos(as_json: JsonFlag = False) -> None:
    """Every promo code with its use."""
    rows = [promo_dict(p) for p in in_session(promos.list_promos)]
    show(
        rows, ["code", "redemptions", "max_redemptions", "expires_at", "disabled"], as_json=as_json
    )


@promos_app.command("disable")
def disable_promo(code: str) -> None:
    """Stop accepting a promo code."""
    promo = audited("promo.disable", code, lambda s: promos.disable_promo(s, code))
    console.print(f"disabled {promo.code}")


def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing.")] = False,
) -> None:
    """Expire sessions past their deadline and delete stale ones; prints both counts."""
    settings = Settings()
    if dry_run:
        report = in_session(lambda s: service.expire_and_purge(s, settings, dry_run=True))
    else:
        report = audited(
            "signup.purge",
            "signup-sessions",
            lambda s: service.expire_and_purge(s, settings, dry_run=False),
            after=lambda r: {"expired": r.expired, "deleted": r.deleted},
        )
    verb = "would be" if dry_run else "were"
    console.print(f"{report.expired} sessions {verb} expired, {report.deleted} {verb} deleted")


@sessions_app.command("retry")
def retry_session(signup_id: str) -> None:
    """Resume a REVIEW_REQUIRED or FAILED provisioning run from its last checkpoint."""
    signup = in_session(lambda s: service.retry_provisioning(s, signup_id, by=OPERATOR))
    console.print(f"{signup.id} is {signup.status}: provisioning resumes from its last checkpoint")
