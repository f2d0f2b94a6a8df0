"""Create, list, revoke and exchange integration keys (`tnt_sk_…`, shown once, kept as an HMAC)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import revocation
from tenantry.auth.jwt import Audience, TokenIssuer
from tenantry.auth.oauth import InvalidScope
from tenantry.config import Settings
from tenantry.datadir import server_secret
from tenantry.errors import (
    Forbidden,
    TenantryError,
    TokenExpired,
    TokenRevoked,
    Unauthenticated,
)
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.kit.tokens import hash_secret, new_secret
from tenantry.metrics import KEY_EXCHANGE_FAILURES
from tenantry.models import IntegrationKey, RevocationKind, Tenant, TenantStatus

log = structlog.get_logger(__name__)

PREFIX = "tnt_sk_"
SCOPES = frozenset({"jobs:read", "jobs:write", "events:read", "admin:keys"})
LAST_USED_EVERY = timedelta(minutes=1)  # at most one write per key and minute


class AlreadyRevoked(TenantryError):
    status, code, title = 409, "ALREADY_REVOKED", "The key is revoked already"


async def create_key(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: str,
    name: str,
    scopes: list[str],
    expires_at: datetime | None,
) -> tuple[IntegrationKey, str]:
    """The key and its secret: the only time the secret exists outside the caller's hands."""
    raw, digest = new_secret(server_secret(settings), prefix=PREFIX)
    key = IntegrationKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        name=name,
        prefix=raw[: len(PREFIX) + 4],
        last_four=raw[-4:],
        secret_hash=digest,
        scopes=sorted(set(scopes)),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(key)
    events.record(
        session,
        "key.Created",
        tenant_id=tenant_id,
        subject_id=key.id,
        data={"name": name, "scopes": key.scopes},
    )
    return key, raw


async def list_keys(session: AsyncSession, tenant_id: str) -> Sequence[IntegrationKey]:
    query = (
        select(IntegrationKey)
        .where(IntegrationKey.tenant_id == tenant_id)
        .order_by(IntegrationKey.created_at.desc())
    )
    return (await session.execute(query)).scalars().all()


async def revoke_key(
    session: AsyncSession, settings: Settings, key_id: str, *, tenant_id: str | None = None
) -> IntegrationKey:
    """Final: the next exchange is refused, and so are the tokens it was exchanged for.
    A second revoke is `409 ALREADY_REVOKED`."""
    key = await get_or_404(session, IntegrationKey, key_id, tenant_id=tenant_id or ANY_TENANT)
    revoked = await session.execute(
        update(IntegrationKey)
        .where(IntegrationKey.id == key_id, IntegrationKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(IntegrationKey.id)
        .execution_options(synchronize_session=False)
    )
    if revoked.scalar_one_or_none() is None:
        raise AlreadyRevoked(f"key {key_id} is revoked already")
    await session.refresh(key)
    await revocation.revoke(
        session, settings, RevocationKind.SUBJECT, key.id, reason="integration key revoked"
    )
    events.record(session, "key.Revoked", tenant_id=key.tenant_id, subject_id=key.id)
    return key


def _refuse(error: TenantryError, reason: str, raw: str) -> TenantryError:
    KEY_EXCHANGE_FAILURES.labels(reason).inc()
    log.warning("key_exchange_refused", reason=reason, key_prefix=raw[: len(PREFIX) + 4])
    return error


async def exchange(
    session: AsyncSession,
    settings: Settings,
    issuer: TokenIssuer,
    raw: str,
    *,
    client_id: str | None = None,
    scope: str | None = None,
) -> tuple[str, list[str]]:
    """A 15-minute integration token for a live key, and the scopes it grants: all the key's,
    or those of `scope` (each must be the key's). `client_id`, when sent, must be the key's
    id. Refusals are counted and logged by the key's display prefix."""
    digest = hash_secret(raw, server_secret(settings))
    found = (
        await session.execute(
            select(IntegrationKey, Tenant.status)
            .join(Tenant, Tenant.id == IntegrationKey.tenant_id)
            .where(IntegrationKey.secret_hash == digest)
        )
    ).one_or_none()
    now = utcnow()
    if found is None:
        raise _refuse(Unauthenticated("The key is not valid"), "unknown", raw)
    key, tenant_status = found
    if client_id is not None and not secrets.compare_digest(client_id, key.id):
        raise _refuse(Unauthenticated("The client id is not this key's"), "client_mismatch", raw)
    if key.revoked_at is not None:
        raise _refuse(TokenRevoked("The key has been revoked"), "revoked", raw)
    if key.expires_at is not None and key.expires_at <= now:
        raise _refuse(TokenExpired("The key has expired"), "expired", raw)
    if tenant_status == TenantStatus.SUSPENDED:
        suspended = Forbidden("The key's tenant is suspended", reason="tenant_suspended")
        raise _refuse(suspended, "tenant_suspended", raw)
    granted = _granted(key, scope)
    if key.last_used_at is None or key.last_used_at <= now - LAST_USED_EVERY:
        # Conditional too: of concurrent exchanges, one writes.
        await session.execute(
            update(IntegrationKey)
            .where(
                IntegrationKey.id == key.id,
                or_(
                    IntegrationKey.last_used_at.is_(None),
                    IntegrationKey.last_used_at <= now - LAST_USED_EVERY,
                ),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    token, _ = issuer.mint(
        subject=key.id,
        audience=Audience.INTEGRATION,
        ttl=settings.access_token_ttl,
        scopes=granted,
        tenant_id=key.tenant_id,
        client_id=key.id,
    )
    return token, granted


def _granted(key: IntegrationKey, scope: str | None) -> list[str]:
    if not scope or not scope.strip():
        return list(key.scopes)
    asked = sorted(set(scope.split()))
    if missing := [name for name in asked if name not in key.scopes]:
        raise InvalidScope(f"the key does not hold {' '.join(missing)}")
    return asked
