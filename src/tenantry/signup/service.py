"""Signup sessions: start, re-send the code, read; expiry and purge.

Services never commit: the request's session dependency (or a task's own
`database.session()`) does. Mail is queued in the same transaction.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.config import Settings
from tenantry.datadir import secret_keys, server_secret
from tenantry.db import unique_or
from tenantry.errors import (
    RateLimited,
    TenantryError,
    TokenExpired,
    TokenUsed,
    Unauthenticated,
    ValidationFailed,
)
from tenantry.event import service as events
from tenantry.flag.board import Switchboard
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.otp import OtpExpired, OtpInvalid, OtpLocked, code_digest, code_matches, new_code
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.kit.tokens import matching, new_secret
from tenantry.mail.service import queue_mail
from tenantry.models import Membership, PromoCode, SignupSession, SignupStatus, Tenant, User
from tenantry.provisioning.service import request_run
from tenantry.signup import transitions
from tenantry.signup.schemas import SignupCreate

CODE_TEMPLATE = "signup_code"
TERMINAL_FOR_PURGE = (SignupStatus.REVIEW_REQUIRED, SignupStatus.FAILED, SignupStatus.EXPIRED)
IN_FLIGHT = (SignupStatus.EMAIL_VERIFIED, SignupStatus.PROVISIONING)


class SignupDisabled(TenantryError):
    status, code, title = 503, "SIGNUP_DISABLED", "Signup is closed"


class SlugTaken(TenantryError):
    status, code, title = 409, "SLUG_TAKEN", "The slug is taken"


class EmailExists(TenantryError):
    status, code, title = 409, "EMAIL_EXISTS", "An account with this email exists"


class InvalidPromo(TenantryError):
    status, code, title = 400, "INVALID_PROMO", "The promo code is not valid"


class SessionExpired(TenantryError):
    status, code, title = 410, "SESSION_EXPIRED", "The signup session has expired"


@dataclass(frozen=True)
class Started:
    signup: SignupSession
    created: bool  # False: the same email and slug were already pending (a replay)


def _new_code(settings: Settings, signup: SignupSession) -> str:
    """A fresh code for `signup` (the previous one dies); returns it for its mail only."""
    code = new_code()
    now = utcnow()
    signup.code_hash = code_digest(server_secret(settings), signup.id, code)
    signup.code_expires_at = now + settings.signup_code_ttl
    signup.failed_attempts = 0
    signup.last_code_sent_at = now
    return code


async def _send_code(session: AsyncSession, settings: Settings, signup: SignupSession) -> None:
    """A fresh code for `signup` and its mail, in this transaction."""
    await _mail_code(session, settings, signup, _new_code(settings, signup))


async def _mail_code(
    session: AsyncSession, settings: Settings, signup: SignupSession, code: str
) -> None:
    await queue_mail(
        session,
        settings,
        to=signup.email,
        template=CODE_TEMPLATE,
        context={
            "org_name": signup.org_name,
            "expires_minutes": int(settings.signup_code_ttl.total_seconds() // 60),
        },
        secrets={"code": code},
        waited_on=True,
    )


async def _check_promo(session: AsyncSession, code: str) -> str:
    promo = await session.get(PromoCode, code.upper())
    now = utcnow()
    if promo is None or promo.disabled:
        raise InvalidPromo(f"{code!r} is not a valid promo code")
    if promo.expires_at is not None and promo.expires_at <= now:
        raise InvalidPromo(f"{code!r} has expired")
    if promo.max_redemptions is not None and promo.redemptions >= promo.max_redemptions:
        raise InvalidPromo(f"{code!r} has been fully redeemed")
    return promo.code


def _check_disposable(settings: Settings, email: str) -> None:
    if not settings.block_disposable_email:
        return
    from disposable_email_domains import blocklist  # 10,000 domains: loaded only when asked

    if email_domain(email) in blocklist:
        raise ValidationFailed(
            "One or more fields are not valid",
            errors=[{"field": "email", "message": "use a permanent address, not a disposable one"}],
        )


def _check_plan(settings: Settings, plan: str) -> None:
    if plan not in settings.plans:
        raise ValidationFailed(
            "One or more fields are not valid",
            errors=[{"field": "plan", "message": f"choose one of: {', '.join(settings.plans)}"}],
        )


async def _pending_twin(session: AsyncSession, email: str, slug: str) -> SignupSession | None:
    query = select(SignupSession).where(
        SignupSession.email == email,
        SignupSession.slug == slug,
        SignupSession.status == SignupStatus.PENDING_EMAIL_VERIFICATION,
        SignupSession.expires_at > utcnow(),
    )
    return (await session.execute(query)).scalar_one_or_none()


def _unverified_lapsed(now: datetime) -> ColumnElement[bool]:
    return (SignupSession.status == SignupStatus.PENDING_EMAIL_VERIFICATION) & (
        SignupSession.expires_at <= now
    )


def _stalled(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """In flight with no progress (a step begun, finished or retried) for the deadline."""
    last_progress = func.coalesce(SignupSession.progressed_at, SignupSession.updated_at)
    return SignupSession.status.in_(IN_FLIGHT) & (
        last_progress <= now - settings.signup_in_flight_deadline
    )


async def _expire(
    session: AsyncSession, candidates: Sequence[SignupSession], lapsed: ColumnElement[bool]
) -> int:
    """Expire each candidate that still meets `lapsed` when its update runs; a run that
    finished or progressed since it was read wins, and is left alone."""
    expired = 0
    for signup in candidates:
        reason = (
            "unverified"
            if signup.status == SignupStatus.PENDING_EMAIL_VERIFICATION
            else "in flight too long"
        )
        expired += await transitions.try_move(
            session, signup, SignupStatus.EXPIRED, lapsed, data={"reason": reason}
        )
    await session.flush()
    return expired


async def _expire_lapsed_holders(session: AsyncSession, slug: str) -> None:
    """Release the slug from an unverified session whose time ran out before the sweeper came."""
    lapsed = _unverified_lapsed(utcnow())
    holders = await session.execute(select(SignupSession).where(SignupSession.slug == slug, lapsed))
    await _expire(session, list(holders.scalars()), lapsed)


async def _resend_if_cooled(
    session: AsyncSession, settings: Settings, signup: SignupSession
) -> None:
    """The replay path: a new code when the cooldown allows, silence otherwise."""
    with contextlib.suppress(RateLimited):
        await resend_code(session, settings, signup.id)


def ensure_open(settings: Settings, board: Switchboard | None = None) -> None:
    """Closed by the setting, or by the `signup` flag (`board`: this process's switches)."""
    if not settings.signup_enabled:
        raise SignupDisabled("Signup is disabled on this deployment")
    if board is not None and not board.enabled("signup"):
        raise SignupDisabled("Signup is closed for now; please try again later")


async def start_signup(
    session: AsyncSession, settings: Settings, payload: SignupCreate, *, client_ip: str | None
) -> Started:
    ensure_open(settings)
    _check_plan(settings, payload.plan)
    _check_disposable(settings, payload.email)
    promo = await _check_promo(session, payload.promo_code) if payload.promo_code else None
    if twin := await _pending_twin(session, payload.email, payload.slug):
        await _resend_if_cooled(session, settings, twin)
        return Started(twin, created=False)
    # One round trip for the three questions every new signup asks.
    owner, tenant, lapsed = (
        await session.execute(
            select(
                exists().where(
                    Membership.user_id == User.id,
                    User.email == payload.email,
                    Membership.role == "owner",
                ),
                exists().where(Tenant.slug == payload.slug),
                exists().where(
                    SignupSession.slug == payload.slug,
                    SignupSession.status == SignupStatus.PENDING_EMAIL_VERIFICATION,
                    SignupSession.expires_at <= utcnow(),
                ),
            )
        )
    ).one()
    if owner:
        raise EmailExists("An account with this email already owns a tenant; sign in instead")
    if tenant:
        raise SlugTaken(f"{payload.slug!r} is taken")
    if lapsed:
        await _expire_lapsed_holders(session, payload.slug)

    now = utcnow()
    signup = SignupSession(
        id=new_id("ses"),
        status=SignupStatus.PENDING_EMAIL_VERIFICATION,
        org_name=payload.org_name,
        slug=payload.slug,
        email=payload.email,
        plan=payload.plan,
        promo_code=promo,
        failed_attempts=0,
        codes_sent=1,
        client_ip=client_ip,
        synthetic=settings.is_canary_address(payload.email),
        expires_at=now + settings.signup_session_ttl,
        created_at=now,
        updated_at=now,
    )
    code = _new_code(settings, signup)  # written with the row: one INSERT, no UPDATE after
    try:
        # A savepoint: losing the slug race leaves the transaction usable.
        async with session.begin_nested():
            session.add(signup)
            await session.flush()
    except IntegrityError:
        if twin := await _pending_twin(session, payload.email, payload.slug):
            return Started(twin, created=False)
        raise SlugTaken(f"{payload.slug!r} is taken") from None
    await _mail_code(session, settings, signup, code)
    events.record(
        session,
        "activation.SignupStarted",
        subject_id=signup.id,
        data={"slug": signup.slug, "plan": signup.plan, "email_domain": email_domain(signup.email)},
        synthetic=signup.synthetic,
    )
    return Started(signup, created=True)


async def get_signup(session: AsyncSession, signup_id: str) -> SignupSession:
    return await get_or_404(session, SignupSession, signup_id, tenant_id=ANY_TENANT)


async def resend_code(session: AsyncSession, settings: Settings, signup_id: str) -> SignupSession:
    """A new code with fresh tries, once the cooldown has passed and under the per-session cap.

    One conditional update decides, so concurrent resends send one code.
    """
    signup = await get_signup(session, signup_id)
    now = utcnow()
    if signup.status != SignupStatus.PENDING_EMAIL_VERIFICATION:
        raise transitions.IllegalTransition(
            f"signup {signup_id} is {signup.status}; no code to send"
        )
    if signup.expires_at <= now:
        raise SessionExpired(f"signup {signup_id} has expired; start again")
    cooled = now - settings.signup_resend_cooldown
    claimed = await session.execute(
        update(SignupSession)
        .where(
            SignupSession.id == signup_id,
            SignupSession.status == SignupStatus.PENDING_EMAIL_VERIFICATION,
            SignupSession.codes_sent < settings.signup_max_codes,
            (SignupSession.last_code_sent_at.is_(None))
            | (SignupSession.last_code_sent_at <= cooled),
        )
        .values(codes_sent=SignupSession.codes_sent + 1, last_code_sent_at=now, updated_at=now)
        .returning(SignupSession.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.scalar_one_or_none() is None:
        await session.refresh(signup)
        if signup.codes_sent >= settings.signup_max_codes:
            wait = signup.expires_at - now
            raise RateLimited(
                "No more codes for this session; start a new signup",
                headers={"Retry-After": str(max(1, math.ceil(wait.total_seconds())))},
            )
        assert signup.last_code_sent_at is not None
        wait = signup.last_code_sent_at + settings.signup_resend_cooldown - now
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise RateLimited(
            f"A code was sent recently; retry in {seconds} s", headers={"Retry-After": str(seconds)}
        )
    await session.refresh(signup)
    await _send_code(session, settings, signup)
    return signup


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1]


async def list_signups(
    session: AsyncSession,
    *,
    status: SignupStatus | None = None,
    older_than: timedelta | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Sequence[SignupSession]:
    """Newest first; `after` is the (created_at, id) of the last row already seen."""
    query = (
        select(SignupSession)
        .order_by(SignupSession.created_at.desc(), SignupSession.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(SignupSession.status == status)
    if older_than is not None:
        query = query.where(SignupSession.updated_at <= utcnow() - older_than)
    if after is not None:
        query = query.where(tuple_(SignupSession.created_at, SignupSession.id) < after)
    return (await session.execute(query)).scalars().all()


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(SignupSession.status, func.count()).group_by(SignupSession.status)
    )
    return {status: count for status, count in rows}


@dataclass(frozen=True)
class PurgeReport:
    expired: int
    deleted: int


async def expire_and_purge(
    session: AsyncSession, settings: Settings, *, dry_run: bool = False
) -> PurgeReport:
    """Expire sessions unverified past their TTL or in flight with no progress past the
    deadline; delete stale ones (review, failed, expired) after the retention.

    Each expiry and the delete re-check their condition in the statement that writes, so
    a run that finishes or moves on between this read and that write is not touched.
    """
    now = utcnow()
    lapsed = _unverified_lapsed(now) | _stalled(settings, now)
    expiring = list((await session.execute(select(SignupSession).where(lapsed))).scalars())
    stale = SignupSession.status.in_(TERMINAL_FOR_PURGE) & (
        SignupSession.updated_at <= now - settings.signup_retention
    )
    if dry_run:
        stale_count = (
            await session.execute(select(func.count()).select_from(SignupSession).where(stale))
        ).scalar_one()
        return PurgeReport(expired=len(expiring), deleted=int(stale_count))
    expired = await _expire(session, expiring, lapsed)
    deleted = await session.execute(delete(SignupSession).where(stale))
    return PurgeReport(expired=expired, deleted=int(deleted.rowcount))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Verified:
    signup: SignupSession
    continuation_token: str  # shown once; only its digest is stored


async def _redeem_promo(session: AsyncSession, signup: SignupSession) -> dict[str, str]:
    """Count the redemption now that the email is proven; a code used up meanwhile is dropped."""
    if signup.promo_code is None:
        return {}
    redeemed = await session.execute(
        update(PromoCode)
        .where(
            PromoCode.code == signup.promo_code,
            PromoCode.disabled.is_(False),
            (PromoCode.max_redemptions.is_(None))
            | (PromoCode.redemptions < PromoCode.max_redemptions),
        )
        .values(redemptions=PromoCode.redemptions + 1)
        .returning(PromoCode.code)
    )
    if redeemed.scalar_one_or_none() is None:
        dropped = signup.promo_code
        signup.promo_code = None
        return {"promo_dropped": dropped}
    return {"promo": signup.promo_code}


async def verify_code(
    session: AsyncSession, settings: Settings, signup_id: str, code: str
) -> Verified | OtpInvalid:
    """Check the code; on success the session is verified and provisioning is enqueued.

    A wrong code is counted by one conditional update, so concurrent guesses get
    no more tries than the limit; it is *returned* rather than raised, so the
    count commits with the request.
    """
    signup = await get_signup(session, signup_id)
    now = utcnow()
    if signup.status == SignupStatus.EXPIRED or (
        signup.status == SignupStatus.PENDING_EMAIL_VERIFICATION and signup.expires_at <= now
    ):
        raise SessionExpired(f"signup {signup_id} has expired; start again")
    if signup.status != SignupStatus.PENDING_EMAIL_VERIFICATION:
        raise transitions.IllegalTransition(f"signup {signup_id} is {signup.status}")
    if signup.failed_attempts >= settings.signup_max_attempts:
        raise OtpLocked("Too many wrong codes: ask for a new one")
    if signup.code_expires_at is None or signup.code_expires_at <= now:
        raise OtpExpired("The code has expired: ask for a new one")

    under_limit = SignupSession.failed_attempts < settings.signup_max_attempts
    if digest := code_matches(secret_keys(settings), signup_id, code, signup.code_hash):
        return await _verified(session, settings, signup, digest, under_limit)
    return await _count_wrong_code(session, settings, signup_id, under_limit)


async def _owns_a_tenant(session: AsyncSession, email: str) -> bool:
    query = select(
        exists().where(
            Membership.user_id == User.id, User.email == email, Membership.role == "owner"
        )
    )
    return bool((await session.execute(query)).scalar())


async def _verified(
    session: AsyncSession,
    settings: Settings,
    signup: SignupSession,
    digest: str,
    under_limit: ColumnElement[bool],
) -> Verified:
    """The right code: verified, and its run enqueued, unless the email owns a tenant now or
    another verified signup of it is in flight (one owner per email, by a unique index)."""
    if await _owns_a_tenant(session, signup.email):
        raise EmailExists("An account with this email already owns a tenant; sign in instead")
    now = utcnow()
    token, token_hash = new_secret(server_secret(settings), prefix="tnt_ct_")
    promo = await _redeem_promo(session, signup)
    in_flight = EmailExists("Another signup with this email is being set up already")
    async with unique_or(session, in_flight):
        verified = await transitions.try_move(
            session,
            signup,
            SignupStatus.EMAIL_VERIFIED,
            under_limit,
            SignupSession.code_hash == digest,
            data={"email_domain": email_domain(signup.email), **promo},
            verified_at=now,
            progressed_at=now,
            code_hash=None,
            continuation_hash=token_hash,
            promo_code=signup.promo_code,
        )
    if not verified:
        if signup.failed_attempts >= settings.signup_max_attempts:
            raise OtpLocked("Too many wrong codes: ask for a new one")
        raise transitions.IllegalTransition(f"signup {signup.id} is {signup.status}")
    await request_run(session, signup)
    return Verified(signup, token)


async def _count_wrong_code(
    session: AsyncSession, settings: Settings, signup_id: str, under_limit: ColumnElement[bool]
) -> OtpInvalid:
    """One more wrong try, counted by a conditional update that stops at the limit."""
    now = utcnow()
    counted = await session.execute(
        update(SignupSession)
        .where(
            SignupSession.id == signup_id,
            SignupSession.status == SignupStatus.PENDING_EMAIL_VERIFICATION,
            under_limit,
        )
        .values(failed_attempts=SignupSession.failed_attempts + 1, updated_at=now)
        .returning(SignupSession.failed_attempts)
        .execution_options(synchronize_session=False)
    )
    failures = counted.scalar_one_or_none()
    if failures is None:
        raise OtpLocked("Too many wrong codes: ask for a new one")
    return OtpInvalid(
        "The code is not right", attempts_remaining=settings.signup_max_attempts - failures
    )


class NotReady(TenantryError):
    status, code, title = 409, "NOT_READY", "The tenant is not provisioned yet"


async def owner_of(session: AsyncSession, signup: SignupSession) -> User:
    user = (await session.execute(select(User).where(User.email == signup.email))).scalar_one()
    return user


async def redeem_continuation(
    session: AsyncSession, settings: Settings, signup_id: str, token: str
) -> SignupSession:
    """Spend the continuation token of a provisioned signup, once, even under concurrency."""
    signup = await get_signup(session, signup_id)
    if not matching(token, signup.continuation_hash, secret_keys(settings)):
        raise Unauthenticated("The continuation token is not valid for this signup")
    if (
        signup.verified_at is not None
        and signup.verified_at + settings.continuation_token_ttl <= utcnow()
    ):
        raise TokenExpired("The continuation token has expired: sign in with your email instead")
    if signup.status != SignupStatus.PROVISIONED:
        raise NotReady(f"The tenant is {signup.status.lower()}; try again shortly")
    spent = await session.execute(
        update(SignupSession)
        .where(SignupSession.id == signup_id, SignupSession.continuation_used_at.is_(None))
        .values(continuation_used_at=utcnow())
        .returning(SignupSession.id)
        .execution_options(synchronize_session=False)
    )
    if spent.scalar_one_or_none() is None:
        raise TokenUsed("The continuation token was already used: sign in with your email instead")
    return signup


RETRYABLE = (SignupStatus.REVIEW_REQUIRED, SignupStatus.FAILED, SignupStatus.EXPIRED)


async def retry_provisioning(
    session: AsyncSession, signup_id: str, *, by: str, reason: str | None = None
) -> SignupSession:
    """Resume a stopped run from its checkpoint; a second retry while one runs is refused.

    A run expired in flight resumes too (its tenant may exist, its slug is held by it);
    an expired session that never verified its email has no run to resume.
    """
    signup = await get_signup(session, signup_id)
    stopped = signup.status
    if signup.status not in RETRYABLE or signup.verified_at is None:
        raise transitions.IllegalTransition(
            f"signup {signup_id} is {signup.status}; only REVIEW_REQUIRED, FAILED or a run "
            "expired in flight can be retried"
        )
    taken = transitions.IllegalTransition(
        f"{signup.slug!r} or {signup.email} went to another signup meanwhile"
    )
    async with unique_or(session, taken):  # a unique index: the slug, or the email in flight
        resumed = await transitions.try_move(
            session,
            signup,
            SignupStatus.PROVISIONING,
            data={"retried_by": by},
            review_reason=None,
            failure_reason=None,
            progressed_at=utcnow(),
        )
    if not resumed:
        raise transitions.IllegalTransition(f"signup {signup_id} is {signup.status} meanwhile")
    await request_run(session, signup)
    await trail.record(
        session,
        actor=by,
        action="signup.retry",
        target=signup_id,
        reason=reason,
        before={"status": stopped},
        after={"status": signup.status},
    )
    return signup


class NotCompletable(TenantryError):
    status, code, title = 409, "NOT_COMPLETABLE", "The run cannot be marked complete"


async def mark_complete(
    session: AsyncSession, signup_id: str, *, reason: str, by: str
) -> SignupSession:
    """An operator's verdict on a stopped run whose work is done (a step fixed by hand, a
    run expired after its last step): PROVISIONED, if its tenant and its owner exist."""
    signup = await get_signup(session, signup_id)
    if signup.status not in RETRYABLE or signup.verified_at is None:
        raise transitions.IllegalTransition(
            f"signup {signup_id} is {signup.status}; only a stopped run can be marked complete"
        )
    if signup.tenant_id is None or await session.get(Tenant, signup.tenant_id) is None:
        raise NotCompletable(f"signup {signup_id} has no tenant yet: retry it instead")
    owner = (
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.tenant_id == signup.tenant_id,
            Membership.role == "owner",
            User.email == signup.email,
        )
    )
    if (await session.execute(owner)).first() is None:
        raise NotCompletable(f"tenant {signup.tenant_id} has no owner {signup.email}: retry it")
    stopped = signup.status
    completed = await transitions.try_move(
        session,
        signup,
        SignupStatus.PROVISIONED,
        data={"marked_complete_by": by, "reason": reason},
        review_reason=None,
        failure_reason=None,
    )
    if not completed:
        raise transitions.IllegalTransition(f"signup {signup_id} is {signup.status} meanwhile")
    await trail.record(
        session,
        actor=by,
        action="signup.mark_complete",
        target=signup_id,
        reason=reason,
        before={"status": stopped},
        after={"status": signup.status, "tenant_id": signup.tenant_id},
    )
    return signup
