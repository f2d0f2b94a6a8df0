"""Create, list, revoke and exchange integration keys (`tnt_sk_…`, shown once, kept as an HMAC)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import revocation
from tenantry.auth.jwt import Audience
from tenantry.auth.oauth import InvalidScope
from tenantry.config import Settings
from tenantry.datadir import key_fingerprint, server_secret
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
from tenantry.kit.tokens import digests, hash_secret, new_secret
from tenantry.metrics import KEY_EXCHANGE_FAILURES
from tenantry.models import IntegrationKey, RevocationKind, Tenant, TenantStatus

if TYPE_CHECKING:
    from tenantry.state import AppState

log = structlog.get_logger(__name__)

PREFIX = "tnt_sk_"
SCOPES = frozenset({"jobs:read", "jobs:write", "events:read", "admin:keys", "webhooks:manage"})
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
    current = server_secret(settings)
    raw, digest = new_secret(current, prefix=PREFIX)
    key = IntegrationKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        name=name,
        prefix=raw[: len(PREFIX) + 4],
        last_four=raw[-4:],
        secret_hash=digest,
        secret_key_fp=key_fingerprint(current),
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


def _suspended(raw: str) -> TenantryError:
    refusal = Forbidden("The key's tenant is suspended", reason="tenant_suspended")
    return _refuse(refusal, "tenant_suspended", raw)


def _refuse(error: TenantryError, reason: str, raw: str) -> TenantryError:
    KEY_EXCHANGE_FAILURES.labels(reason).inc()
    log.warning("key_exchange_refused", reason=reason, key_prefix=raw[: len(PREFIX) + 4])
    return error


@dataclass(frozen=True)
class LiveKey:
    """What an exchange needs of a key it found live; cached by `Trust.live_keys`."""

    id: str
    tenant_id: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    last_used_at: datetime | None


async def exchange(
    state: AppState, raw: str, *, client_id: str | None = None, scope: str | None = None
) -> tuple[str, list[str]]:
    """A 15-minute integration token for a live key, and the scopes it grants: all the key's,
    or those of `scope` (each must be the key's). `client_id`, when sent, must be the key's
    id. Refusals are counted and logged by the key's display prefix.

    A key found live is remembered until what the process trusts changes (tenantry.auth.
    trust): a revocation anywhere fails the next exchange within the refresh interval, at
    once in the process that revoked. Suspension is checked against the trusted set, expiry
    against the clock. Only a miss, or the once-a-minute `last_used_at`, reaches the
    database; the token is signed with the issuer's key in memory.
    """
    trust, settings = state.trust, state.settings
    digest = hash_secret(raw, state.secret)
    key = trust.live_keys.get(digest)
    if key is None:
        key = await _look_up(state, digest, raw)
    now = utcnow()
    if client_id is not None and not secrets.compare_digest(client_id, key.id):
        raise _refuse(Unauthenticated("The client id is not this key's"), "client_mismatch", raw)
    if key.expires_at is not None and key.expires_at <= now:
        raise _refuse(TokenExpired("The key has expired"), "expired", raw)
    if key.tenant_id in trust.suspended:
        raise _suspended(raw)
    granted = _granted(key, scope)
    if key.last_used_at is None or key.last_used_at <= now - LAST_USED_EVERY:
        # Remembered first: this process's next exchanges of the key skip the write.
        trust.remember_key(digest, replace(key, last_used_at=now), trust.generation)
        await _mark_used(state, key.id, now)
    token, _ = state.tokens.mint(
        subject=key.id,
        audience=Audience.INTEGRATION,
        ttl=settings.access_token_ttl,
        scopes=granted,
        tenant_id=key.tenant_id,
        client_id=key.id,
    )
    return token, granted


async def _look_up(state: AppState, digest: str, raw: str) -> LiveKey:
    """The key with this digest from the database, remembered if it is live."""
    generation = state.trust.generation  # a change during the read leaves it unremembered
    async with state.database.reader(cross_tenant="key exchange") as session:
        found = (
            await session.execute(
                select(IntegrationKey, Tenant.status)
                .join(Tenant, Tenant.id == IntegrationKey.tenant_id)
                .where(IntegrationKey.secret_hash.in_(digests(raw, state.secret_keys)))
            )
        ).one_or_none()
    if found is None:
        raise _refuse(Unauthenticated("The key is not valid"), "unknown", raw)
    row, tenant_status = found
    if row.secret_hash != digest:
        await _rehash(state, row.id, row.secret_hash, digest)
    if row.revoked_at is not None:
        raise _refuse(TokenRevoked("The key has been revoked"), "revoked", raw)
    key = LiveKey(row.id, row.tenant_id, tuple(row.scopes), row.expires_at, row.last_used_at)
    if tenant_status == TenantStatus.SUSPENDED:
        raise _suspended(raw)
    state.trust.remember_key(digest, key, generation)
    return key


async def _rehash(state: AppState, key_id: str, previous: str, current: str) -> None:
    """A key made under a previous server secret moves to the current one, so the previous
    secret can be dropped once no key needs it (`tenantry doctor` counts them)."""
    async with state.database.session(cross_tenant="key exchange") as session:
        await session.execute(
            update(IntegrationKey)
            .where(IntegrationKey.id == key_id, IntegrationKey.secret_hash == previous)
            .values(secret_hash=current, secret_key_fp=key_fingerprint(state.secret))
            .execution_options(synchronize_session=False)
        )


async def _mark_used(state: AppState, key_id: str, now: datetime) -> None:
    # Conditional: of concurrent exchanges, one writes.
    async with state.database.session(cross_tenant="key exchange") as session:
        await session.execute(
            update(IntegrationKey)
            .where(
                IntegrationKey.id == key_id,
                or_(
                    IntegrationKey.last_used_at.is_(None),
                    IntegrationKey.last_used_at <= now - LAST_USED_EVERY,
                ),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )


def _granted(key: LiveKey, scope: str | None) -> list[str]:
    if not scope or not scope.strip():
        return list(key.scopes)
    asked = sorted(set(scope.split()))
    if missing := [name for name in asked if name not in key.scopes]:
        raise InvalidScope(f"the key does not hold {' '.join(missing)}")
    return asked
