"""`tenantry abuse report` and `tenantry ratelimit reset`: who is hammering the deployment, and
forgiving a client the limits caught by mistake."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from limits.errors import StorageError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.cli.console import (
    EXIT_USAGE,
    JsonFlag,
    OptionalReason,
    audited,
    console,
    duration,
    fail,
    in_session,
    print_json,
    show,
)
from tenantry.config import Settings
from tenantry.kit.ratelimit import RateLimiter
from tenantry.models import RateLimitReset
from tenantry.ops import abuse

abuse_app = typer.Typer(help="Abuse: refusals and failed verifications.", no_args_is_help=True)
ratelimit_app = typer.Typer(help="Rate-limit counters.", no_args_is_help=True)
COLUMNS = ["key", "rate_limited", "verification_failed", "last_at", "details"]


@abuse_app.command("report")
def report(
    since: Annotated[str, typer.Option(help="How far back, such as 1h or 24h.")] = "24h",
    as_json: JsonFlag = False,
) -> None:
    """Rate-limit refusals and failed verifications by client address, network (/24, /64)
    and email domain, the most active first."""
    window = duration(since)
    found: dict[str, Any] = in_session(lambda s: abuse.report(s, window))
    if as_json:
        print_json(found)
        return
    for by in ("by_address", "by_network", "by_email_domain"):
        rows = [{**row, "details": ", ".join(row["details"])} for row in found[by]]
        show(rows, COLUMNS, as_json=False, title=f"{by.removeprefix('by_')}, last {since}")


@ratelimit_app.command("reset")
def reset(
    ip: Annotated[str | None, typer.Option(help="Every counter of this address.")] = None,
    email: Annotated[str | None, typer.Option(help="Every counter of this email.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every counter of everyone.")] = False,
    reason: OptionalReason = None,
) -> None:
    """Clear rate-limit counters: in Redis at once, in each process's own store within a
    second (they follow the reset's row)."""
    if [ip is not None, email is not None, every].count(True) != 1:
        fail("give exactly one of --ip, --email, --all", EXIT_USAGE)
    settings = Settings()
    change = abuse.Reset.of(ip=ip, email=email)

    async def act(session: AsyncSession) -> RateLimitReset:
        try:
            await change.apply(RateLimiter(settings.redis_url), settings, local=False)
        except StorageError as exc:
            fail(f"Redis did not answer ({exc}); nothing was reset")
        return await abuse.request_reset(session, change)

    audited(
        "ratelimit.reset",
        change.value or "all",
        act,
        reason=reason,
        after=lambda _: {"scope": change.scope},
    )
    console.print(f"rate-limit counters of {change.value or 'everyone'} cleared")
