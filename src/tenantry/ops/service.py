"""Health checks: what is broken, how badly, and whether to take traffic.

`down` means the service cannot do its job (the database is unreachable) and
answers 503; `degraded` means an optional part is failing or out of date while
requests can still be served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis

from tenantry import __version__, rls, schema
from tenantry.db import Database
from tenantry.flag.board import Switchboard
from tenantry.job import service as job_service
from tenantry.kit.ratelimit import RateLimiter
from tenantry.mail.backends import MailBackend
from tenantry.models import JobStatus

CHECK_TIMEOUT_S = 2.0

OK, DEGRADED, DOWN, LOCAL = "ok", "degraded", "down", "local"


@dataclass
class HealthReport:
    status: str
    uptime_s: float
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def switched(self, board: Switchboard) -> HealthReport:
        """With the operators' degraded mode, which makes an `ok` service `degraded`."""
        if (degraded := board.degraded) is None:
            return self
        check = {
            "status": DEGRADED,
            "reason": degraded.reason,
            "since": degraded.changed_at.isoformat() if degraded.changed_at else None,
        }
        return replace(
            self,
            status=DEGRADED if self.status == OK else self.status,
            checks={**self.checks, "degraded_mode": check},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": __version__,
            "uptime_s": round(self.uptime_s, 3),
            "checks": self.checks,
        }


async def _timed(probe: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await probe()
    except Exception as exc:
        return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": OK, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _migrations(database: Database) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            drift = await schema.revision_drift(database.read_engine)
    except Exception as exc:
        return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": DEGRADED, "drift": drift} if drift else {"status": OK}


async def _rate_limit_store(redis: aioredis.Redis | None, limiter: RateLimiter) -> dict[str, Any]:
    """Redis's answer to a ping, and where this process counts limits now."""
    counting = limiter.status()
    if redis is None:
        return counting
    checked = await _timed(redis.ping)
    return {**checked, **counting} if checked["status"] == OK else {**counting, **checked}


async def _queues(database: Database) -> dict[str, Any]:
    """Backlog and paused queues; paused is an operator's choice, so it stays `ok`."""
    try:
        async with (
            asyncio.timeout(CHECK_TIMEOUT_S),
            database.reader(cross_tenant="health") as session,
        ):
            stats = await job_service.queue_stats(session)
            paused = await job_service.paused_queues(session)
    except Exception as exc:
        return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    pending = [s for s in stats if s.status == JobStatus.PENDING]
    ages = [s.oldest_pending_age_s for s in pending if s.oldest_pending_age_s is not None]
    return {
        "status": OK,
        "pending": sum(s.count for s in pending),
        "processing": sum(s.count for s in stats if s.status == JobStatus.PROCESSING),
        "oldest_pending_age_s": round(max(ages), 1) if ages else None,
        "paused": paused,
    }


async def _isolation(database: Database) -> dict[str, Any]:
    """Tenant tables without their row-level security (PostgreSQL)."""
    if not database.is_postgres:
        return {"status": OK, "row_level_security": "not on SQLite"}
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), database.engine.connect() as connection:
            unprotected = (await rls.read_schema(connection)).unprotected
    except Exception as exc:
        return {"status": DOWN, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": DEGRADED if unprotected else OK, "unprotected_tables": unprotected}


async def _mail(backend: MailBackend) -> dict[str, Any]:
    return {
        **await _timed(backend.check),
        "backend": type(backend).__name__.removesuffix("Backend").lower(),
    }


async def deep_report(
    database: Database,
    redis: aioredis.Redis | None,
    limiter: RateLimiter,
    mail: MailBackend,
    uptime_s: float,
) -> HealthReport:
    database_check, migrations, rate_limit, queues, mail_check, isolation = await asyncio.gather(
        _timed(database.ping),
        _migrations(database),
        _rate_limit_store(redis, limiter),
        _queues(database),
        _mail(mail),
        _isolation(database),
    )
    checks: dict[str, dict[str, Any]] = {
        "database": database_check,
        "migrations": migrations,
        "rate_limit": rate_limit,
        "queue": queues,
        "mail": mail_check,
        "tenant_isolation": isolation,
    }
    if database_check["status"] != OK:
        status = DOWN
    elif any(check["status"] not in (OK, LOCAL) for check in checks.values()):
        status = DEGRADED
    else:
        status = OK
    return HealthReport(status, uptime_s, checks)


async def readiness(
    database: Database, limiter: RateLimiter, *, shutting_down: bool
) -> HealthReport:
    """Down without the database; degraded, still taking traffic, while limits are local."""
    if shutting_down:
        return HealthReport(DOWN, 0, {"lifecycle": {"status": DOWN, "error": "shutting down"}})
    database_check = await _timed(database.ping)
    rate_limit = limiter.status()
    if database_check["status"] != OK:
        status = DOWN
    else:
        status = DEGRADED if rate_limit["status"] == DEGRADED else OK
    return HealthReport(status, 0, {"database": database_check, "rate_limit": rate_limit})
