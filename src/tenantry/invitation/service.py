"""Invitations: create, resend, revoke, expire, and accept a magic link exactly once.

The token (32 random bytes, URL-safe) exists only in the mail; the row keeps
its HMAC. Accepting is one conditional update (`status = 'pending' AND
expires_at > now`), so of ten concurrent accepts one wins and nine get
`409 TOKEN_USED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import passwords, sessions
from tenantry.auth.jwt import TokenIssuer
from tenantry.config import Settings
from tenantry.datadir import secret_keys, server_secret
from tenantry.db import insert_for, unique_or
from tenantry.errors import TenantryError, TokenUsed
from tenantry.event import service as events
from tenantry.invitation import transitions
from tenantry.invitation.transitions import InvitationState
from tenantry.kit.clock import utcnow
from tenantry.kit.email import normalise_email
from tenantry.kit.ids import new_id
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.kit.tokens import digests, new_secret
from tenantry.mail.service import queue_mail
from tenantry.models import Invitation, InvitationStatus, Membership, Tenant, User

ROLES = ("owner", "admin", "member")
ORPHAN_AFTER = timedelta(days=7)  # ended invitations are deleted this long past their TTL
PENDING, ACCEPTED = InvitationStatus.PENDING.value, InvitationStatus.ACCEPTED.value
EXPIRED, REVOKED = InvitationStatus.EXPIRED.value, InvitationStatus.REVOKED.value


class InvitationPending(TenantryError):
    status, code, title = 409, "INVITATION_PENDING", "An invitation to this address is pending"


class AlreadyMember(TenantryError):
    status, code, title = 409, "ALREADY_MEMBER", "This address is a member already"


class TokenInvalid(TenantryError):
    status, code, title = 404, "TOKEN_INVALID", "The link is not valid"


class LinkExpired(TenantryError):
    status, code, title = 410, "TOKEN_EXPIRED", "The link has expired"


class LinkRevoked(TenantryError):
    status, code, title = 410, "TOKEN_REVOKED", "The invitation was withdrawn"


def effective_status(invitation: Invitation) -> str:
    """A pending invitation past its expiry is expired, whether or not the sweep ran yet."""
    if invitation.status == PENDING and invitation.expires_at <= utcnow():
        return EXPIRED
    return invitation.status


def _link(settings: Settings, raw: str) -> str:
    return f"{settings.public_url.rstrip('/')}/activate?token={raw}"


async def _mail(
    session: AsyncSession, settings: Settings, invitation: Invitation, raw: str
) -> None:
    tenant = await tenant_of(session, invitation)
    await queue_mail(
        session,
        settings,
        to=invitation.email,
        template="invitation",
        context={"org_name": tenant.name, "role": invitation.role, "hours": _hours(settings)},
        secrets={"link": _link(settings, raw)},
        tenant_id=invitation.tenant_id,
    )


def _hours(settings: Settings) -> int:
    return int(settings.invitation_ttl.total_seconds() // 3600)


async def _is_member(session: AsyncSession, tenant_id: str, email: str) -> bool:
    query = (
        select(Membership.user_id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant_id, User.email == email)
    )
    return (await session.execute(query)).first() is not None


async def create(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: str,
    email: str,
    role: str,
    invited_by: str,
) -> Invitation:
    """A pending invitation and its mail, in the caller's transaction."""
    email = normalise_email(email)
    if await _is_member(session, tenant_id, email):
        raise AlreadyMember(f"{email} is a member of this tenant already")
    await transitions.expire_lapsed(
        session, Invitation.tenant_id == tenant_id, Invitation.email == email
    )
    raw, digest = new_secret(server_secret(settings))
    now = utcnow()
    invitation = Invitation(
        id=new_id("inv"),
        tenant_id=tenant_id,
        email=email,
        role=role,
        status=PENDING,
        token_hash=digest,
        invited_by=invited_by,
        created_at=now,
        expires_at=now + settings.invitation_ttl,
    )
    async with unique_or(session, InvitationPending(f"an invitation to {email} is pending")):
        session.add(invitation)
    events.record(
        session,
        "activation.InvitationCreated",
        tenant_id=tenant_id,
        subject_id=invitation.id,
        data={"role": role, "invited_by": invited_by},
        synthetic=settings.is_canary_address(email),
    )
    await _mail(session, settings, invitation, raw)
    return invitation


async def get(
    session: AsyncSession, invitation_id: str, *, tenant_id: str | None = None
) -> Invitation:
    return await get_or_404(session, Invitation, invitation_id, tenant_id=tenant_id or ANY_TENANT)


async def list_invitations(
    session: AsyncSession,
    tenant_id: str | None,
    *,
    status: InvitationStatus | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Sequence[Invitation]:
    """Newest first; `status` as the caller sees it (a pending one past its expiry is expired)."""
    now = utcnow()
    query = select(Invitation).order_by(Invitation.created_at.desc(), Invitation.id.desc())
    if tenant_id is not None:
        query = query.where(Invitation.tenant_id == tenant_id)
    if status is InvitationStatus.PENDING:
        query = query.where(Invitation.status == PENDING, Invitation.expires_at > now)
    elif status is InvitationStatus.EXPIRED:
        query = query.where(
            or_(
                Invitation.status == EXPIRED,
                and_(Invitation.status == PENDING, Invitation.expires_at <= now),
            )
        )
    elif status is not None:
        query = query.where(Invitation.status == status.value)
    if after is not None:
        query = query.where(tuple_(Invitation.created_at, Invitation.id) < after)
    return (await session.execute(query.limit(limit))).scalars().all()


async def resend(session: AsyncSession, settings: Settings, invitation: Invitation) -> Invitation:
    """A new link (the old one dies) and a new expiry, for a pending or expired invitation."""
    raw, digest = new_secret(server_secret(settings))
    pending_elsewhere = InvitationPending(f"another invitation to {invitation.email} is pending")
    async with unique_or(session, pending_elsewhere):
        renewed = await transitions.try_move(
            session,
            invitation,
            InvitationStatus.PENDING,
            token_hash=digest,
            expires_at=utcnow() + settings.invitation_ttl,
            ended_at=None,
        )
    if not renewed:
        raise InvitationState(f"invitation {invitation.id} is {invitation.status}")
    events.record(
        session,
        "activation.InvitationResent",
        tenant_id=invitation.tenant_id,
        subject_id=invitation.id,
    )
    await _mail(session, settings, invitation, raw)
    return invitation


async def revoke(session: AsyncSession, invitation: Invitation) -> Invitation:
    if not await transitions.try_move(
        session, invitation, InvitationStatus.REVOKED, ended_at=utcnow()
    ):
        raise InvitationState(f"invitation {invitation.id} is {effective_status(invitation)}")
    events.record(
        session,
        "activation.InvitationRevoked",
        tenant_id=invitation.tenant_id,
        subject_id=invitation.id,
    )
    return invitation


async def tenant_of(session: AsyncSession, invitation: Invitation) -> Tenant:
    tenant = await session.get(Tenant, invitation.tenant_id)
    assert tenant is not None  # a foreign key
    return tenant


def _refusal(invitation: Invitation) -> TenantryError:
    status = effective_status(invitation)
    if status == ACCEPTED:
        return TokenUsed("This link was used already: sign in instead")
    if status == REVOKED:
        return LinkRevoked("This invitation was withdrawn")
    return LinkExpired("This link has expired: ask the person who invited you for a new one")


async def find(session: AsyncSession, settings: Settings, raw: str) -> Invitation:
    """The invitation of a link that can still be accepted, or the reason it cannot."""
    candidates = digests(raw, secret_keys(settings))
    invitation = (
        await session.execute(select(Invitation).where(Invitation.token_hash.in_(candidates)))
    ).scalar_one_or_none()
    if invitation is None:
        raise TokenInvalid("This link is not valid")
    if effective_status(invitation) != PENDING:
        raise _refusal(invitation)
    return invitation


@dataclass(frozen=True)
class Accepted:
    invitation: Invitation
    tenant: Tenant
    tokens: sessions.TokenPair


async def accept(
    session: AsyncSession,
    settings: Settings,
    issuer: TokenIssuer,
    raw: str,
    *,
    name: str,
    password: str | None,
) -> Accepted:
    """Spend the link once: the user (created if new), the membership, tokens for the tenant.

    An existing user keeps their name and password: a link must not change an account.
    """
    invitation = await find(session, settings, raw)
    now = utcnow()
    if not await transitions.try_move(
        session, invitation, InvitationStatus.ACCEPTED, Invitation.expires_at > now, ended_at=now
    ):
        raise _refusal(invitation)
    user = (
        await session.execute(select(User).where(User.email == invitation.email))
    ).scalar_one_or_none()
    if user is None:
        user = User(
            id=new_id("usr"),
            email=invitation.email,
            name=name,
            password_hash=await passwords.hash_password(password) if password else None,
            created_at=now,
        )
        session.add(user)
        await session.flush()
    await session.execute(
        insert_for(session)(Membership)
        .values(
            tenant_id=invitation.tenant_id, user_id=user.id, role=invitation.role, created_at=now
        )
        .on_conflict_do_nothing()
    )
    await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id)
        .values(accepted_by=user.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(invitation)
    events.record(
        session,
        "activation.InvitationAccepted",
        tenant_id=invitation.tenant_id,
        subject_id=invitation.id,
        data={"user_id": user.id, "role": invitation.role},
        synthetic=settings.is_canary_address(invitation.email),
    )
    events.record(
        session,
        "activation.ActivationCompleted",
        tenant_id=invitation.tenant_id,
        subject_id=user.id,
        data={"invitation_id": invitation.id},
        synthetic=settings.is_canary_address(invitation.email),
    )
    tenant = await tenant_of(session, invitation)
    tokens = await sessions.issue(
        session, settings, issuer, user_id=user.id, tenant_id=invitation.tenant_id
    )
    return Accepted(invitation, tenant, tokens)


@dataclass(frozen=True)
class SweepReport:
    expired: int
    deleted: int


def past_retention() -> ColumnElement[bool]:
    """Invitations that ended more than 7 days past their TTL: the orphan-invite purge's."""
    return (Invitation.status != PENDING) & (Invitation.expires_at < utcnow() - ORPHAN_AFTER)


async def sweep(session: AsyncSession, settings: Settings) -> SweepReport:
    """Mark pending invitations past their TTL expired; delete those past retention."""
    expired = await transitions.expire_lapsed(session)
    deleted = await session.execute(delete(Invitation).where(past_retention()))
    return SweepReport(expired, int(deleted.rowcount))  # type: ignore[attr-defined]
