"""Operators, and their console sign-ins by email code.

Every address gets the same answer and a flow: one that is no operator's simply never
receives a code, so the sign-in page tells nobody who the operators are. The code is a
digest on the flow; the right one (within five tries, ten minutes) makes the flow active
and hands out a cookie token whose digest identifies it for eight hours.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.config import Settings
from tenantry.console import transitions
from tenantry.datadir import secret_keys
from tenantry.errors import NotFound, TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.otp import code_digest, code_matches, new_code
from tenantry.kit.tokens import digests, new_secret
from tenantry.mail.service import queue_mail
from tenantry.models import ConsoleSession, ConsoleSessionStatus, Operator, OperatorRole

CODE_TTL = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=8)
MAX_ATTEMPTS = 5
TOKEN_PREFIX = "tnt_cs_"  # noqa: S105 (a prefix, not a secret)


class OperatorExists(TenantryError):
    status, code, title = 409, "OPERATOR_EXISTS", "That address is an operator already"


@dataclass(frozen=True)
class SignedIn:
    flow: ConsoleSession
    operator: Operator

    @property
    def actor(self) -> str:
        """Who acts, as the audit trail records it."""
        return f"console:{self.operator.email}"

    @property
    def is_admin(self) -> bool:
        return self.operator.role == OperatorRole.ADMIN


async def add_operator(
    session: AsyncSession, email: str, role: OperatorRole, *, by: str
) -> Operator:
    email = email.strip().lower()
    if await session.scalar(select(Operator.id).where(Operator.email == email)):
        raise OperatorExists(f"{email} is an operator already")
    operator = Operator(id=new_id("opr"), email=email, role=role.value, created_at=utcnow())
    session.add(operator)
    await trail.record(
        session, actor=by, action="operator.add", target=email, after={"role": role.value}
    )
    return operator


async def remove_operator(
    session: AsyncSession, email: str, *, by: str, reason: str | None
) -> None:
    email = email.strip().lower()
    removed = await session.execute(
        delete(Operator).where(Operator.email == email).returning(Operator.id)
    )
    if removed.scalar_one_or_none() is None:
        raise NotFound(f"no operator {email}")
    await trail.record(session, actor=by, action="operator.remove", target=email, reason=reason)


async def list_operators(session: AsyncSession) -> list[Operator]:
    return list((await session.execute(select(Operator).order_by(Operator.email))).scalars())


async def start_sign_in(session: AsyncSession, settings: Settings, email: str) -> str:
    """A new sign-in flow for the address; its code is mailed when it is an operator's."""
    email = email.strip().lower()
    operator = await session.scalar(select(Operator).where(Operator.email == email))
    now = utcnow()
    flow_id = new_id("csn")
    code = new_code()
    session.add(
        ConsoleSession(
            id=flow_id,
            operator_id=operator.id if operator else None,
            status=ConsoleSessionStatus.PENDING.value,
            code_hash=code_digest(secret_keys(settings)[0], flow_id, code) if operator else None,
            failed_attempts=0,
            created_at=now,
            expires_at=now + CODE_TTL,
        )
    )
    if operator is not None:
        await session.flush()
        context = {"expires_minutes": int(CODE_TTL.total_seconds() // 60)}
        await queue_mail(
            session,
            settings,
            to=email,
            template="login_code",
            context=context,
            secrets={"code": code},
            waited_on=True,
        )
    return flow_id


async def verify_code(
    session: AsyncSession, settings: Settings, flow_id: str, code: str
) -> str | None:
    """The console token when `code` is right for the live flow; None otherwise (the wrong
    try is counted first, and the fifth ends the flow)."""
    flow = await session.get(ConsoleSession, flow_id)
    now = utcnow()
    if flow is None or flow.status != ConsoleSessionStatus.PENDING or flow.expires_at <= now:
        return None
    if not code_matches(secret_keys(settings), flow_id, code, flow.code_hash):
        await session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.id == flow_id)
            .values(failed_attempts=ConsoleSession.failed_attempts + 1)
        )
        await session.refresh(flow)
        if flow.failed_attempts >= MAX_ATTEMPTS:
            await transitions.end(session, flow)
        return None
    token, digest = new_secret(secret_keys(settings)[0], prefix=TOKEN_PREFIX)
    won = await transitions.activate(
        session, flow, code_hash=None, token_hash=digest, expires_at=now + SESSION_TTL
    )
    return token if won else None


async def signed_in(session: AsyncSession, settings: Settings, token: str) -> SignedIn | None:
    """The active console session a cookie token names, with its operator."""
    found = await session.execute(
        select(ConsoleSession, Operator)
        .join(Operator, Operator.id == ConsoleSession.operator_id)
        .where(
            ConsoleSession.token_hash.in_(digests(token, secret_keys(settings))),
            ConsoleSession.status == ConsoleSessionStatus.ACTIVE.value,
            ConsoleSession.expires_at > utcnow(),
        )
    )
    row = found.one_or_none()
    return SignedIn(row[0], row[1]) if row else None


async def sign_out(session: AsyncSession, flow: ConsoleSession) -> None:
    await transitions.end(session, flow)


def csrf_token(settings: Settings, token: str) -> str:
    """The forms' anti-forgery value: bound to the console session's own token, so it is
    valid for that session only and needs no storage."""
    key = secret_keys(settings)[0]
    return hmac.new(key, b"console-csrf\x00" + token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(settings: Settings, token: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(settings, token), presented)
