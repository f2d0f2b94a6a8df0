"""`tenantry webhooks`: a tenant's endpoints, their attempts, re-sending what failed, and
switching an endpoint off and on (audited)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.cli.console import (
    EXIT_USAGE,
    OPERATOR,
    JsonFlag,
    OptionalReason,
    audited,
    console,
    duration,
    fail,
    in_session,
    show,
)
from tenantry.config import Settings
from tenantry.kit.clock import utcnow
from tenantry.kit.repository import ANY_TENANT
from tenantry.webhook import service
from tenantry.webhook.addresses import SystemResolver
from tenantry.webhook.schemas import EndpointUpdate

app = typer.Typer(help="Outbound webhooks.", no_args_is_help=True)

Status = Annotated[str | None, typer.Option(help="succeeded or failed.")]


@app.command("list")
def list_endpoints(
    tenant: Annotated[str, typer.Option(help="The tenant id.")], as_json: JsonFlag = False
) -> None:
    """The tenant's endpoints: URL, event types, enabled, why disabled, health."""
    endpoints = in_session(lambda s: service.list_endpoints(s, tenant, limit=200))
    rows = [
        {
            "id": e.id,
            "url": e.url,
            "event_types": " ".join(e.event_types) or "*",
            "enabled": e.enabled,
            "disabled_reason": e.disabled_reason,
            "last_success_at": e.last_success_at,
            "failing_since": e.failing_since,
        }
        for e in endpoints
    ]
    columns = ["id", "url", "event_types", "enabled", "disabled_reason", "failing_since"]
    show(rows, columns, as_json=as_json)


@app.command("attempts")
def attempts(
    endpoint_id: str,
    status: Status = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The endpoint's latest attempts: answer, duration, error, and when the next one goes."""

    async def read(session: AsyncSession) -> list[dict[str, object]]:
        endpoint = await service.get_endpoint(session, endpoint_id, ANY_TENANT)
        found = await service.list_attempts(session, endpoint, status=status, limit=limit)
        return [
            {
                "id": a.id,
                "message_id": a.message_id,
                "event_type": a.event_type,
                "attempt": a.attempt,
                "status": a.status,
                "response_status": a.response_status,
                "duration_ms": a.duration_ms,
                "error": a.error,
                "trigger": a.trigger,
                "created_at": a.created_at,
                "next_attempt_at": a.next_attempt_at,
            }
            for a in found
        ]

    columns = ["created_at", "message_id", "attempt", "status", "response_status", "error"]
    show(in_session(read), [*columns, "next_attempt_at"], as_json=as_json)


@app.command("retry-failed")
def retry_failed(
    endpoint_id: str,
    since: Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d.")] = "24h",
    reason: OptionalReason = None,
) -> None:
    """Send the endpoint's failed messages of the period again (at most 10,000 a run)."""
    start = utcnow() - duration(since)

    async def resend(session: AsyncSession) -> int:
        endpoint = await service.get_endpoint(session, endpoint_id, ANY_TENANT)
        return await service.recover(session, endpoint, since=start)

    count = audited(
        "webhook_endpoint.retry_failed",
        endpoint_id,
        resend,
        reason=reason,
        after=lambda n: {"since": start.isoformat(), "messages": n},
    )
    console.print(f"{count} failed messages of {endpoint_id} queued again")


def _switch(endpoint_id: str, enabled: bool, reason: str | None) -> None:
    async def change(session: AsyncSession) -> bool:
        endpoint = await service.get_endpoint(session, endpoint_id, ANY_TENANT, for_update=True)
        return await service.set_enabled(session, endpoint, enabled, by=OPERATOR, reason=reason)

    action = "enable" if enabled else "disable"
    changed = audited(
        f"webhook_endpoint.{action}",
        endpoint_id,
        change,
        reason=reason,
        after=lambda _: {"enabled": enabled},
    )
    state = "enabled" if enabled else "disabled"
    console.print(f"{endpoint_id} {state}" if changed else f"{endpoint_id} was {state} already")


@app.command("update")
def update(
    endpoint_id: str,
    url: Annotated[str | None, typer.Option(help="A new destination (checked).")] = None,
    event_types: Annotated[
        str | None, typer.Option(help="Comma-separated types or prefix.* ('' for all).")
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option(help="Deliveries a second at most (0 removes the limit).")
    ] = None,
    reason: OptionalReason = None,
) -> None:
    """Correct a tenant's endpoint (audited with before and after), as the admin API's PATCH."""
    changes: dict[str, object] = {}
    if url is not None:
        changes["url"] = url
    if event_types is not None:
        changes["event_types"] = [t.strip() for t in event_types.split(",") if t.strip()]
    if rate_limit is not None:
        changes["rate_limit_per_s"] = rate_limit or None
    if not changes:
        fail("nothing to change: give --url, --event-types or --rate-limit", EXIT_USAGE)
    try:
        changes = EndpointUpdate.model_validate(changes).changes()
    except ValidationError as exc:
        fail(f"not a valid change: {exc.errors()[0]['msg']}", EXIT_USAGE)
    settings = Settings()
    endpoint = in_session(
        lambda s: service.operator_update(
            s, settings, SystemResolver(), endpoint_id, changes, by=OPERATOR, reason=reason
        )
    )
    console.print(f"{endpoint.id} now sends {endpoint.url}")


@app.command("reseal")
def reseal(reason: OptionalReason = None) -> None:
    """After rotating TENANTRY_SECRET_KEY: seal every endpoint's signing secret again under
    the new server secret (the secrets themselves do not change)."""
    settings = Settings()
    count = audited(
        "webhook_endpoint.reseal",
        "*",
        lambda s: service.reseal_secrets(s, settings),
        reason=reason,
        after=lambda n: {"endpoints": n},
    )
    console.print(f"{count} endpoints sealed again under the current server secret")


@app.command("disable")
def disable(endpoint_id: str, reason: OptionalReason = None) -> None:
    """Stop deliveries to the endpoint; its messages wait for it, none is dropped."""
    _switch(endpoint_id, False, reason)


@app.command("enable")
def enable(endpoint_id: str, reason: OptionalReason = None) -> None:
    """Deliver to the endpoint again, starting with what waited for it."""
    _switch(endpoint_id, True, reason)
