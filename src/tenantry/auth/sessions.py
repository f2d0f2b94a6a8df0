"""Signed-in sessions of tenant users: an access JWT and a rotating refresh token.

Refresh tokens are single use. Each use returns the next token of the same
family; presenting a token that was already used means two parties hold it,
so the whole family is revoked and the event is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.jwt import Audience, TokenIssuer
from tenantry.config import Settings
from tenantry.datadir import secret_keys, server_secret
from tenantry.errors import TenantryError, TokenExpired, TokenRevoked, Unauthenticated
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.tokens import digests, new_secret
from tenantry.models import Membership, RefreshToken

log = structlog.get_logger(__name__)

REFRESH_PREFIX = "tnt_rt_"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    tenant_id: str
    user_id: str

    def to_response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
        }


async def _role(session: AsyncSession, user_id: str, tenant_id: str) -> str:
    membership = await session.get(Membership, (tenant_id, user_id))
    if membership is None:
        raise Unauthenticated("You are not a member of this tenant")
    return membership.role


async def issue(
    session: AsyncSession,
    settings: Settings,
    issuer: TokenIssuer,
    *,
    user_id: str,
    tenant_id: str,
    family_id: str | None = None,
) -> TokenPair:
    """Tokens for a member of `tenant_id`, with the role the membership has now."""
    role = await _role(session, user_id, tenant_id)
    raw, digest = new_secret(server_secret(settings), prefix=REFRESH_PREFIX)
    now = utcnow()
    session.add(
        RefreshToken(
            id=new_id("rt"),
            family_id=family_id or new_id("rtf"),
            user_id=user_id,
            tenant_id=tenant_id,
            token_hash=digest,
            created_at=now,
            expires_at=now + settings.refresh_token_ttl,
        )
    )
    access, _ = issuer.mint(
        subject=user_id,
        audience=Audience.TENANT,
        ttl=settings.access_token_ttl,
        roles=[role],
        tenant_id=tenant_id,
    )
    return TokenPair(
        access, raw, int(settings.access_token_ttl.total_seconds()), tenant_id, user_id
    )


async def _revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def _by_raw(session: AsyncSession, settings: Settings, raw: str) -> RefreshToken | None:
    candidates = digests(raw, secret_keys(settings))
    query = select(RefreshToken).where(RefreshToken.token_hash.in_(candidates))
    return (await session.execute(query)).scalar_one_or_none()


async def rotate(
    session: AsyncSession, settings: Settings, issuer: TokenIssuer, raw: str
) -> TokenPair | TenantryError:
    """Exchange a refresh token for the next pair.

    A refusal that changed state (a reused token revokes its family) is returned,
    not raised, so that the revocation commits with the request.
    """
    token = await _by_raw(session, settings, raw)
    now = utcnow()
    if token is None:
        return Unauthenticated("The refresh token is not valid")
    if token.revoked_at is not None:
        return TokenRevoked("The refresh token has been revoked")
    if token.expires_at <= now:
        return TokenExpired("The refresh token has expired")
    used = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=now)
        .returning(RefreshToken.id)
    )
    if used.scalar_one_or_none() is None:
        await _revoke_family(session, token.family_id)
        log.warning(
            "refresh_token_reuse",
            family_id=token.family_id,
            user_id=token.user_id,
            tenant_id=token.tenant_id,
        )
        return TokenRevoked(
            "This refresh token was already used: every session of its family is revoked"
        )
    return await issue(
        session,
        settings,
        issuer,
        user_id=token.user_id,
        tenant_id=token.tenant_id,
        family_id=token.family_id,
    )


async def revoke(session: AsyncSession, settings: Settings, raw: str) -> None:
    """Log out: the token's whole family stops working (unknown tokens are ignored)."""
    token = await _by_raw(session, settings, raw)
    if token is not None:
        await _revoke_family(session, token.family_id)
