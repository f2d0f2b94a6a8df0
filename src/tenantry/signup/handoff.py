"""The hosted signup's hand-off: the browser leaves for the host application with a one-time
code, which the host exchanges (server to server) for the new owner's tokens.

OAuth 2's authorization-code shape (RFC 6749 §4.1.3) without a client registry: the
code is `tnt_ac_…`, good for 60 s and once, stored only as its digest. It is made
from the signup's continuation token, which it spends: a signup hands off once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import sessions
from tenantry.auth.jwt import TokenIssuer
from tenantry.config import Settings
from tenantry.datadir import secret_keys
from tenantry.errors import Unauthenticated
from tenantry.kit.clock import utcnow
from tenantry.kit.tokens import digests, new_secret
from tenantry.models import SignupSession
from tenantry.signup.service import owner_of, redeem_continuation

CODE_PREFIX = "tnt_ac_"
CODE_TTL = timedelta(seconds=60)


class CodeRefused(Unauthenticated):
    title = "The code is not valid"


async def issue(
    session: AsyncSession, settings: Settings, signup_id: str, continuation_token: str
) -> str:
    """A one-time code for the provisioned signup; spends its continuation token."""
    signup = await redeem_continuation(session, settings, signup_id, continuation_token)
    code, digest = new_secret(secret_keys(settings)[0], prefix=CODE_PREFIX)
    signup.handoff_code_hash = digest
    signup.handoff_expires_at = utcnow() + CODE_TTL
    await session.flush()
    return code


async def redeem(session: AsyncSession, settings: Settings, code: str) -> SignupSession:
    """The signup a live code was made for; the code is spent by one conditional update, so
    it works once even when presented twice at the same moment."""
    spent = await session.execute(
        update(SignupSession)
        .where(
            SignupSession.handoff_code_hash.in_(digests(code, secret_keys(settings))),
            SignupSession.handoff_expires_at > utcnow(),
        )
        .values(handoff_code_hash=None, handoff_expires_at=None)
        .returning(SignupSession.id)
        .execution_options(synchronize_session=False)
    )
    signup_id = spent.scalar_one_or_none()
    if signup_id is None:
        raise CodeRefused("The code is not valid, has expired, or was used")
    signup = await session.get(SignupSession, signup_id)
    assert signup is not None
    return signup


async def owner_tokens(
    session: AsyncSession, settings: Settings, issuer: TokenIssuer, signup: SignupSession
) -> sessions.TokenPair:
    """The first tokens of the provisioned signup's owner (its continuation or its code
    spent already)."""
    assert signup.tenant_id is not None
    owner = await owner_of(session, signup)
    return await sessions.issue(
        session, settings, issuer, user_id=owner.id, tenant_id=signup.tenant_id
    )
