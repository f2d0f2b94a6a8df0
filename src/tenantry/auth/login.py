"""Sign-in by emailed code, with the same rules as signup codes, and no account enumeration:
asking for a code answers the same whether or not the address has an account."""

from __future__ import annotations

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import sessions
from tenantry.auth.jwt import TokenIssuer
from tenantry.config import Settings
from tenantry.datadir import secret_keys, server_secret
from tenantry.errors import TenantryError, Unauthenticated, ValidationFailed
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.otp import OtpExpired, OtpInvalid, OtpLocked, code_digest, code_matches, new_code
from tenantry.mail.service import queue_mail
from tenantry.models import LoginChallenge, Membership, User

log = structlog.get_logger(__name__)


async def _member(session: AsyncSession, email: str) -> User | None:
    query = (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(User.email == email)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _newest(session: AsyncSession, email: str) -> LoginChallenge | None:
    query = (
        select(LoginChallenge)
        .where(LoginChallenge.email == email)
        .order_by(LoginChallenge.created_at.desc(), LoginChallenge.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def request_code(session: AsyncSession, settings: Settings, email: str) -> None:
    """Mail a code to a member's address; do nothing, visibly the same, for any other address."""
    user = await _member(session, email)
    if user is None:
        return
    now = utcnow()
    newest = await _newest(session, email)
    if newest is not None and newest.created_at > now - settings.signup_resend_cooldown:
        return  # a code is on its way already
    code = new_code()
    challenge_id = new_id("lgn")
    session.add(
        LoginChallenge(
            id=challenge_id,
            email=email,
            user_id=user.id,
            code_hash=code_digest(server_secret(settings), challenge_id, code),
            failed_attempts=0,
            created_at=now,
            expires_at=now + settings.signup_code_ttl,
        )
    )
    await queue_mail(
        session,
        settings,
        to=email,
        template="login_code",
        context={"expires_minutes": int(settings.signup_code_ttl.total_seconds() // 60)},
        secrets={"code": code},
        waited_on=True,
    )


async def tenant_for(session: AsyncSession, user_id: str, tenant_id: str | None) -> str:
    memberships = (
        (await session.execute(select(Membership.tenant_id).where(Membership.user_id == user_id)))
        .scalars()
        .all()
    )
    if tenant_id is not None:
        if tenant_id not in memberships:
            raise ValidationFailed(
                "One or more fields are not valid",
                errors=[{"field": "tenant_id", "message": "you are not a member of this tenant"}],
            )
        return tenant_id
    if len(memberships) == 1:
        return memberships[0]
    if not memberships:
        raise Unauthenticated("This account belongs to no tenant")
    raise ValidationFailed(
        "You belong to several tenants: choose one",
        errors=[{"field": "tenant_id", "message": f"one of: {', '.join(sorted(memberships))}"}],
    )


async def verify_code(
    session: AsyncSession,
    settings: Settings,
    issuer: TokenIssuer,
    *,
    email: str,
    code: str,
    tenant_id: str | None,
) -> sessions.TokenPair | TenantryError:
    """Tokens for the right code; a wrong one is counted and returned (so the count commits)."""
    challenge = await _newest(session, email)
    now = utcnow()
    if challenge is None or challenge.consumed_at is not None:
        return OtpInvalid("The code is not right", attempts_remaining=0)
    if challenge.failed_attempts >= settings.signup_max_attempts:
        raise OtpLocked("Too many wrong codes: ask for a new one")
    if challenge.expires_at <= now:
        raise OtpExpired("The code has expired: ask for a new one")
    under_limit = LoginChallenge.failed_attempts < settings.signup_max_attempts
    if code_matches(secret_keys(settings), challenge.id, code, challenge.code_hash):
        chosen = await tenant_for(session, challenge.user_id, tenant_id)
        consumed = await session.execute(
            update(LoginChallenge)
            .where(
                LoginChallenge.id == challenge.id, LoginChallenge.consumed_at.is_(None), under_limit
            )
            .values(consumed_at=now)
            .returning(LoginChallenge.id)
        )
        if consumed.scalar_one_or_none() is None:
            return OtpInvalid("The code is not right", attempts_remaining=0)
        log.info("login", user_id=challenge.user_id, tenant_id=chosen)
        return await sessions.issue(
            session, settings, issuer, user_id=challenge.user_id, tenant_id=chosen
        )
    counted = await session.execute(
        update(LoginChallenge)
        .where(LoginChallenge.id == challenge.id, LoginChallenge.consumed_at.is_(None), under_limit)
        .values(failed_attempts=LoginChallenge.failed_attempts + 1)
        .returning(LoginChallenge.failed_attempts)
    )
    failures = counted.scalar_one_or_none()
    if failures is None:
        raise OtpLocked("Too many wrong codes: ask for a new one")
    return OtpInvalid(
        "The code is not right", attempts_remaining=settings.signup_max_attempts - failures
    )
