"""`/v1/admin/funnel`, `/v1/admin/slo`, `/v1/admin/integrity`: what on-call looks at."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from tenantry.auth.access import PlatformOperator
from tenantry.db import PlatformReader
from tenantry.deps import SettingsDep
from tenantry.kit.clock import utcnow
from tenantry.metrics import render_latest
from tenantry.ops import funnel, integrity, slo

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class StageRead(BaseModel):
    type: str
    count: int
    conversion: float | None  # of the first stage's count; null when that is zero


class Percentiles(BaseModel):
    p50: float | None
    p95: float | None


class BucketRead(BaseModel):
    start: datetime
    signups_started: int
    tenants_provisioned: int


class FunnelRead(BaseModel):
    since: datetime
    until: datetime
    stages: list[StageRead]
    invite_acceptance_72h: float | None
    provisioning_ms: Percentiles
    series: list[BucketRead]


class ObjectiveRead(BaseModel):
    name: str
    value: float | None
    target: float
    alert: float
    window: str
    status: Literal["ok", "breach", "no_data"]


class SloRead(BaseModel):
    status: Literal["ok", "breach"]
    objectives: list[ObjectiveRead]


@router.get(
    "/slo",
    response_model=SloRead,
    summary="Each objective's value now and whether it is past its alert threshold",
)
async def read_slo(
    _: PlatformOperator, session: PlatformReader, settings: SettingsDep
) -> dict[str, Any]:
    metrics, _content_type = render_latest()
    return await slo.check(session, settings, metrics.decode())


class FindingRead(BaseModel):
    kind: str
    ids: list[str]  # the first 100
    count: int
    fixable: bool


class IntegrityRead(BaseModel):
    findings: list[FindingRead]


@router.get(
    "/integrity",
    response_model=IntegrityRead,
    summary="States the service should never be in; `tenantry integrity check --fix` repairs",
)
async def read_integrity(
    _: PlatformOperator, session: PlatformReader, settings: SettingsDep
) -> dict[str, Any]:
    return {"findings": [asdict(f) for f in await integrity.check(session, settings)]}


@router.get(
    "/funnel",
    response_model=FunnelRead,
    summary="The activation funnel of a window (default: the last 24 hours), canaries left out",
)
async def read_funnel(
    _: PlatformOperator,
    session: PlatformReader,
    settings: SettingsDep,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    by: funnel.Bucket = funnel.Bucket.HOUR,
) -> dict[str, Any]:
    end = (until or utcnow()).astimezone(UTC)
    window = funnel.Window.checked((since or end - timedelta(hours=24)).astimezone(UTC), end)
    return await funnel.report(session, settings, window, by)
