"""Health probes and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.job.service import refresh_depth_gauges
from tenantry.mail import service as mail_service
from tenantry.metrics import (
    MAIL_BACKLOG,
    SIGNUP_SESSIONS,
    WEBHOOK_BACKLOG,
    WEBHOOK_ENDPOINTS_DISABLED,
    render_latest,
)
from tenantry.ops import service
from tenantry.ops.service import HealthReport
from tenantry.signup.service import count_by_status
from tenantry.state import state_of
from tenantry.webhook import service as webhook_service

router = APIRouter(tags=["ops"])


class HealthRead(BaseModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    uptime_s: float
    checks: dict[str, Any]  # each an object with its own `status`


class LiveRead(BaseModel):
    status: Literal["ok"]


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthRead, "description": "Down: the database does not answer"}
}
log = structlog.get_logger(__name__)


def _respond(report: HealthReport) -> JSONResponse:
    status_code = 503 if report.status == service.DOWN else 200
    return JSONResponse(report.to_dict(), status_code=status_code)


def _uptime(request: Request) -> float:
    return time.monotonic() - float(state_of(request).started_at)


@router.get(
    "/health",
    response_model=HealthRead,
    responses=HEALTH_RESPONSES,
    summary="Liveness with version and uptime; ?deep=true checks every dependency",
)
async def health(request: Request, deep: bool = False) -> JSONResponse:
    state = state_of(request)
    if not deep:
        return _respond(HealthReport(service.OK, _uptime(request)).switched(state.switches))
    report = await service.deep_report(
        state.database, state.redis, state.rate_limiter, state.mail, _uptime(request)
    )
    return _respond(report.switched(state.switches))


@router.get("/health/live", response_model=LiveRead, summary="The process is up")
async def live() -> LiveRead:
    return LiveRead(status="ok")


@router.get(
    "/health/ready",
    response_model=HealthRead,
    responses=HEALTH_RESPONSES,
    summary="Ready to take traffic: the database answers (degraded while limits are local)",
)
async def ready(request: Request) -> JSONResponse:
    state = state_of(request)
    report = await service.readiness(
        state.database, state.rate_limiter, shutting_down=state.shutting_down
    )
    return _respond(report.switched(state.switches))


async def refresh_database_gauges(database: Database, settings: Settings) -> None:
    """Gauges that are facts of the database, read at scrape time by whichever process answers."""
    await refresh_depth_gauges(database)
    async with database.session(cross_tenant="health") as session:
        counts = await count_by_status(session)
        MAIL_BACKLOG.set(await mail_service.backlog(session, settings))
        waiting, busiest = await webhook_service.backlog(session)
        disabled = len(await webhook_service.disabled_endpoints(session))
    WEBHOOK_BACKLOG.clear()
    WEBHOOK_BACKLOG.labels("all").set(waiting)
    for endpoint_id, count in busiest:
        WEBHOOK_BACKLOG.labels(endpoint_id).set(count)
    WEBHOOK_ENDPOINTS_DISABLED.set(disabled)
    SIGNUP_SESSIONS.clear()
    for status, count in counts.items():
        SIGNUP_SESSIONS.labels(status).set(count)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    try:
        state = state_of(request)
        await refresh_database_gauges(state.database, state.settings)
    except Exception as exc:  # the rest of the metrics are still worth serving
        log.warning("database_gauges_unavailable", error=f"{type(exc).__name__}: {exc}")
    body, content_type = render_latest()
    return Response(body, media_type=content_type)
