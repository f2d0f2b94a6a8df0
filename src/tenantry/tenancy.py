"""Which tables belong to a tenant, and how a session says whose rows it may see.

On PostgreSQL, every table in `TENANT_TABLES` has row-level security enabled
and forced, with the policy `tenant_isolation`: a row is visible (and may be
written) when its tenant column equals the transaction's `app.tenant_id`, or
when the transaction declared cross-tenant work in `app.cross_tenant`. That
second setting is the one bypass; it always carries a purpose
(`Database.session(cross_tenant="worker")`, `cross_tenant(session, "admission")`),
so `grep cross_tenant` lists every place that reads across tenants. Request
sessions of `/v1/tenants/{tenant_id}/…` routes are scoped to that tenant and
never cross. SQLite has no row-level security: there, the application's own
filters are the only wall.

A session with neither setting sees no tenant rows at all: forgetting to
declare a scope fails closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

TENANT_SETTING = "app.tenant_id"
CROSS_TENANT_SETTING = "app.cross_tenant"
POLICY = "tenant_isolation"

# table -> the column naming its tenant. A NULL there is a platform row: only
# cross-tenant work sees it.
TENANT_TABLES: dict[str, str] = {
    "tenants": "id",
    "memberships": "tenant_id",
    "integration_keys": "tenant_id",
    "refresh_tokens": "tenant_id",
    "jobs": "tenant_id",
    "events": "tenant_id",
    "signup_sessions": "tenant_id",
    "provisioning_steps": "tenant_id",
    "mail_messages": "tenant_id",
    "authz_denials": "tenant_id",
    "invitations": "tenant_id",
    "webhook_endpoints": "tenant_id",
    "webhook_messages": "tenant_id",
    "webhook_deliveries": "tenant_id",
    "webhook_attempts": "tenant_id",
}

# Every other table, and why it holds nothing of one tenant's.
PLATFORM_TABLES: dict[str, str] = {
    "alembic_version": "the schema's revision",
    "users": "a person may belong to several tenants; memberships carry the tenant",
    "login_challenges": "a sign-in code for an email address, before a tenant is chosen",
    "promo_codes": "the operators' signup promotions",
    "idempotency_records": "keyed by a scope that includes the tenant; looked up by that key",
    "job_tenant_clocks": "fair-queuing counters: a number per tenant id, no tenant data",
    "queue_states": "which queues the operators paused",
    "schedules": "the platform's periodic tasks",
    "signing_keys": "the deployment's token signing keys",
    "token_revocations": "revoked tokens, checked before the tenant of a request is trusted",
    "auth_revision": "one counter of auth changes",
    "canary_runs": "the synthetic canary's results: a platform probe, no tenant's data",
    "event_counts": "hourly counts of funnel events over all tenants: numbers, no tenant's data",
    "audit_records": "operators' actions on the deployment, chained by hash",
    "audit_head": "the end of the audit chain",
    "switches": "the deployment's feature flags and degraded mode",
    "abuse_signals": "client addresses and email domains refused or failing verification",
    "ratelimit_resets": "operators' resets of rate-limit counters",
    "incidents": "the deployment's incidents (the tenants affected are a list of ids)",
    "incident_posts": "an incident's public status posts",
    "operators": "the deployment's operators, who sign in to the console",
    "console_sessions": "operators' console sign-ins",
}


def policy_predicate(column: str) -> str:
    """The SQL condition of the isolation policy on a tenant column."""
    return (
        f"{column} = current_setting('{TENANT_SETTING}', true) "
        f"OR coalesce(current_setting('{CROSS_TENANT_SETTING}', true), '') <> ''"
    )


def scope_statement(
    *, tenant_id: str | None = None, cross_tenant: str | None = None
) -> Select[Any]:
    """The statement that sets (or clears, with neither) the transaction's tenant and
    cross-tenant purpose: PostgreSQL only; `set_config(..., true)` lasts until the
    transaction ends."""
    return select(
        func.set_config(TENANT_SETTING, tenant_id or "", True),
        func.set_config(CROSS_TENANT_SETTING, cross_tenant or "", True),
    )


async def scope(
    session: AsyncSession, *, tenant_id: str | None = None, cross_tenant: str | None = None
) -> None:
    await session.execute(scope_statement(tenant_id=tenant_id, cross_tenant=cross_tenant))


@asynccontextmanager
async def cross_tenant(session: AsyncSession, purpose: str) -> AsyncIterator[None]:
    """Within a tenant's transaction, read across tenants for `purpose` (e.g. counting every
    tenant's jobs against the total admission cap), then return to the transaction's scope."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    setting = func.current_setting(CROSS_TENANT_SETTING, True)
    if await session.scalar(select(func.coalesce(setting, ""))):
        yield  # the transaction crosses tenants already
        return
    await session.execute(select(func.set_config(CROSS_TENANT_SETTING, purpose, True)))
    try:
        yield
    finally:
        await session.execute(select(func.set_config(CROSS_TENANT_SETTING, "", True)))
