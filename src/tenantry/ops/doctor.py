"""`tenantry doctor`: everything a deployment needs, checked from where the command runs, each
finding with what to do about it (a command, or the RUNBOOK.md section to follow).

A check answers `ok`, `warn` (works, but look) or `fail` (something is broken or unsafe);
`doctor` exits 1 on any `fail`. Checks never change anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
from argon2 import PasswordHasher
from sqlalchemy import func, or_, select

from tenantry import rls, schema
from tenantry.auth.signing_keys import SEAL_PURPOSE as KEY_SEAL
from tenantry.config import Settings
from tenantry.datadir import key_fingerprint, server_secret
from tenantry.db import Database
from tenantry.flag import service as flags
from tenantry.kit.sealed import sealed_under
from tenantry.mail.backends import SmtpBackend, build_backend
from tenantry.mail.service import SEAL_PURPOSE as MAIL_SEAL
from tenantry.models import (
    IntegrationKey,
    KeyStatus,
    MailMessage,
    QueueState,
    SigningKey,
    WebhookEndpoint,
)
from tenantry.ops import slo
from tenantry.webhook import service as webhook_service
from tenantry.webhook.attempts import receiver_gave_up
from tenantry.webhook.signing import SEAL_PURPOSE as WEBHOOK_SEAL

OK, WARN, FAIL = "ok", "warn", "fail"
TIMEOUT_S = 5.0
SLOW_DATABASE_MS = 100
SKEW_WARN_S, SKEW_FAIL_S = 1.0, 30.0
HASH_SLOW_MS = 1000  # a sign-in past this stalls under load; below ~50 ms is too cheap


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    action: str = ""


Probe = Callable[[Settings, Database], Awaitable[list[Check]]]


async def settings_check(settings: Settings, _: Database) -> list[Check]:
    problems = settings.dev_only_settings()
    checks = []
    if problems:
        status = FAIL if settings.is_prod else WARN
        action = "set them before TENANTRY_ENV=prod (README, Configuration)"
        checks.append(Check("settings", status, "; ".join(problems), action))
    else:
        checks.append(Check("settings", OK, "no dev-only setting"))
    if settings.access_token_ttl > settings.max_token_ttl:
        checks.append(
            Check(
                "token_ttls",
                FAIL,
                "TENANTRY_ACCESS_TOKEN_TTL is longer than TENANTRY_MAX_TOKEN_TTL",
                "shorten the access token's life",
            )
        )
    if settings.signup_code_ttl >= settings.signup_session_ttl:
        checks.append(
            Check(
                "signup_ttls",
                WARN,
                "the signup code outlives its session",
                "keep TENANTRY_SIGNUP_CODE_TTL below TENANTRY_SIGNUP_SESSION_TTL",
            )
        )
    plans = ", ".join(f"{name} ({len(steps)} steps)" for name, steps in settings.plans.items())
    checks.append(Check("plans", OK, plans))
    return checks


async def database_check(_: Settings, database: Database) -> list[Check]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await database.ping()
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:300]
        return [Check("database", FAIL, detail, "RUNBOOK.md: The database is down")]
    took_ms = (time.perf_counter() - started) * 1000
    status = WARN if took_ms > SLOW_DATABASE_MS else OK
    return [Check("database", status, f"answered in {took_ms:.1f} ms")]


async def migrations_check(_: Settings, database: Database) -> list[Check]:
    drift = await schema.revision_drift(database.read_engine)
    if drift:
        return [Check("migrations", FAIL, "; ".join(drift), "tenantry migrate")]
    return [Check("migrations", OK, "at the code's head revision")]


async def isolation_check(settings: Settings, database: Database) -> list[Check]:
    if not database.is_postgres:
        return [Check("row_level_security", OK, "SQLite: one process's data, no roles")]
    report = await rls.verify(settings.resolved_database_url)
    if report.findings:
        detail = "; ".join(report.findings)[:500]
        return [Check("row_level_security", FAIL, detail, "tenantry rls verify")]
    return [Check("row_level_security", OK, f"{len(report.tables)} tenant tables protected")]


async def redis_check(settings: Settings, _: Database) -> list[Check]:
    if not settings.redis_url:
        detail = "unset: rate limits count per process"
        action = "" if settings.is_sqlite else "set TENANTRY_REDIS_URL for a fleet"
        return [Check("redis", OK if settings.is_sqlite else WARN, detail, action)]
    client = aioredis.from_url(settings.redis_url, socket_timeout=TIMEOUT_S)
    try:
        started = time.perf_counter()
        await client.ping()
        took_ms = (time.perf_counter() - started) * 1000
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:300]
        return [Check("redis", FAIL, detail, "RUNBOOK.md: Redis is down")]
    finally:
        await client.aclose()
    return [Check("redis", OK, f"PING in {took_ms:.1f} ms")]


async def mail_check(settings: Settings, _: Database) -> list[Check]:
    """For SMTP the handshake a delivery makes (EHLO, STARTTLS, AUTH as configured), then QUIT:
    no message is sent."""
    backend = build_backend(settings)
    try:
        async with asyncio.timeout(settings.smtp_timeout.total_seconds() + 1):
            await backend.check()
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:300]
        return [Check("mail", FAIL, detail, "check TENANTRY_SMTP_URL; tenantry mail list")]
    if isinstance(backend, SmtpBackend):
        steps = [
            "EHLO",
            "STARTTLS" if backend.start_tls else "",
            "AUTH" if backend.username else "",
        ]
        return [Check("mail", OK, f"SMTP handshake: {', '.join(s for s in steps if s)}")]
    return [Check("mail", OK, f"{settings.email_backend.value} backend writable")]


async def clock_check(_: Settings, database: Database) -> list[Check]:
    if not database.is_postgres:
        return [Check("clock_skew", OK, "SQLite: the database is this host")]
    async with database.reader() as session:
        theirs: datetime = (await session.execute(select(func.now()))).scalar_one()
    skew = abs((datetime.now(UTC) - theirs).total_seconds())
    status = FAIL if skew > SKEW_FAIL_S else WARN if skew > SKEW_WARN_S else OK
    action = "" if status == OK else "sync this host's clock (NTP): tokens and expiries drift"
    return [Check("clock_skew", status, f"{skew:.3f} s from the database", action)]


async def signing_keys_check(_: Settings, database: Database) -> list[Check]:
    async with database.reader(cross_tenant="doctor") as session:
        keys = list((await session.execute(select(SigningKey))).scalars())
    if not keys:
        return [Check("signing_keys", OK, "the configured key signs (no rotation yet)")]
    active = [k for k in keys if k.status == KeyStatus.ACTIVE]
    if len(active) != 1:
        detail = f"{len(active)} active keys"
        return [Check("signing_keys", FAIL, detail, "RUNBOOK.md: Signing keys")]
    parts = [f"{active[0].kid[:12]}… signs"]
    parts += [
        f"{k.kid[:12]}… {k.status}"
        + (f" until {k.verify_until:%Y-%m-%d %H:%M} UTC" if k.verify_until else "")
        for k in keys
        if k is not active[0] and k.status != KeyStatus.RETIRED
    ]
    return [Check("signing_keys", OK, "; ".join(parts))]


async def queue_check(settings: Settings, database: Database) -> list[Check]:
    async with database.reader(cross_tenant="doctor") as session:
        stall = await slo.queue_stall(session, settings)
        paused = list(
            (
                await session.execute(select(QueueState.name).where(QueueState.paused.is_(True)))
            ).scalars()
        )
    checks = []
    if stall.status == "breach":
        detail = f"no job finished for {stall.value} min while jobs are due"
        checks.append(Check("queue", FAIL, detail, "RUNBOOK.md: TenantryQueueStalled"))
    else:
        checks.append(Check("queue", OK, "jobs are finishing"))
    if paused:
        detail = f"paused: {', '.join(sorted(paused))}"
        checks.append(Check("queues_paused", WARN, detail, "tenantry queues resume NAME"))
    return checks


async def switches_check(_: Settings, database: Database) -> list[Check]:
    async with database.reader(cross_tenant="doctor") as session:
        off = [state for state in await flags.flags(session) if not state.enabled]
        degraded = await flags.degraded(session)
    checks = [
        Check(
            f"flag:{state.name}",
            WARN,
            f"off since {state.changed_at:%Y-%m-%d %H:%M} UTC by {state.changed_by}: "
            f"{state.reason}",
            f"tenantry flags set {state.name} on --reason R",
        )
        for state in off
        if state.changed_at
    ]
    if degraded.enabled and degraded.changed_at:
        detail = f"on since {degraded.changed_at:%Y-%m-%d %H:%M} UTC: {degraded.reason}"
        checks.append(Check("degraded_mode", WARN, detail, "tenantry degraded off --reason R"))
    return checks or [Check("switches", OK, "every flag on, degraded mode off")]


async def secret_rotation_check(settings: Settings, database: Database) -> list[Check]:
    """After TENANTRY_SECRET_KEY was rotated: what still needs a previous key. Integration keys
    move to the current key at their next exchange; sealed mail is sent and erased; signing
    keys need a rotation of their own; refresh tokens and invitation links made before need
    it until they expire."""
    if not settings.previous_secret_keys:
        return [Check("secret_rotation", OK, "no previous secret keys configured")]
    current = server_secret(settings)
    async with database.reader(cross_tenant="doctor") as session:
        keys = (
            await session.execute(
                select(func.count()).where(
                    IntegrationKey.revoked_at.is_(None),
                    or_(
                        IntegrationKey.secret_key_fp.is_(None),
                        IntegrationKey.secret_key_fp != key_fingerprint(current),
                    ),
                )
            )
        ).scalar_one()
        sealed_mail = (
            await session.execute(
                select(MailMessage.sealed_secrets).where(MailMessage.sealed_secrets.is_not(None))
            )
        ).scalars()
        mails = sum(1 for value in sealed_mail if not sealed_under(str(value), current, MAIL_SEAL))
        signing = (await session.execute(select(SigningKey.sealed_private_key))).scalars()
        signers = sum(1 for value in signing if not sealed_under(value, current, KEY_SEAL))
        hooks = (await session.execute(select(WebhookEndpoint.secret_sealed))).scalars()
        endpoints = sum(1 for value in hooks if not sealed_under(value, current, WEBHOOK_SEAL))
    ttl = max(settings.refresh_token_ttl, settings.invitation_ttl)
    detail = (
        f"{keys} integration keys, {mails} sealed mails, {signers} signing keys and "
        f"{endpoints} webhook endpoints still need a previous key; tokens and links made "
        f"before the rotation, until they expire ({ttl})"
    )
    if keys or mails or signers or endpoints:
        action = (
            "integration keys move at their next exchange; `tenantry signing-keys add`; "
            "`tenantry webhooks reseal`"
        )
        return [Check("secret_rotation", WARN, detail, action)]
    return [Check("secret_rotation", OK, detail, "drop TENANTRY_PREVIOUS_SECRET_KEYS after that")]


async def webhooks_check(_: Settings, database: Database) -> list[Check]:
    """Endpoints their receivers gave up on (410, days of failures) and the waiting backlog."""
    async with database.reader(cross_tenant="doctor") as session:
        disabled = await webhook_service.disabled_endpoints(session)
        waiting, busiest = await webhook_service.backlog(session, top=3)
    checks = []
    gave_up = [e for e in disabled if receiver_gave_up(e)]
    if gave_up:
        named = ", ".join(f"{e.id} ({e.tenant_id}: {e.disabled_reason})" for e in gave_up[:5])
        action = (
            "fix the receiver, then `tenantry webhooks enable ID` and `webhooks retry-failed ID`"
        )
        checks.append(Check("webhook_endpoints_disabled", WARN, named, action))
    detail = f"{waiting} deliveries waiting" + (
        "; most: " + ", ".join(f"{e} {n}" for e, n in busiest) if busiest else ""
    )
    checks.append(Check("webhook_backlog", OK, detail))
    return checks


def password_hashing() -> Check:
    """Hash one password with the deployment's Argon2id parameters and time it."""
    hasher = PasswordHasher()
    started = time.perf_counter()
    hasher.hash("tenantry-self-test")
    took_ms = (time.perf_counter() - started) * 1000
    parameters = f"Argon2id t={hasher.time_cost} m={hasher.memory_cost} KiB p={hasher.parallelism}"
    detail = f"{parameters}: {took_ms:.0f} ms a hash"
    if took_ms > HASH_SLOW_MS:
        return Check("password_hashing", WARN, detail, "a larger machine, or fewer sign-ins")
    return Check("password_hashing", OK, detail)


async def password_check(_: Settings, __: Database) -> list[Check]:
    return [await asyncio.to_thread(password_hashing)]


PROBES: tuple[Probe, ...] = (
    settings_check,
    database_check,
    migrations_check,
    isolation_check,
    redis_check,
    mail_check,
    clock_check,
    signing_keys_check,
    queue_check,
    switches_check,
    webhooks_check,
    secret_rotation_check,
    password_check,
)


async def _run(probe: Probe, settings: Settings, database: Database) -> list[Check]:
    """A check that cannot run is a finding of its own, not the end of the report."""
    try:
        async with asyncio.timeout(TIMEOUT_S * 3):
            return await probe(settings, database)
    except Exception as exc:
        name = probe.__name__.removesuffix("_check")
        return [Check(name, FAIL, f"could not check: {type(exc).__name__}: {exc}"[:300])]


async def examine(settings: Settings, database: Database) -> list[Check]:
    checks = []
    database_ok = True
    for probe in PROBES:
        if not database_ok and probe not in (settings_check, redis_check, mail_check):
            continue  # what needs the database says nothing more while it is down
        found = await _run(probe, settings, database)
        database_ok &= not (probe is database_check and found[0].status == FAIL)
        checks += found
    return checks
