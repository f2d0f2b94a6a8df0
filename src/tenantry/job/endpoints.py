"""`/v1/tenants/{tenant_id}/jobs`: submit (under the admission caps), list, read, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from tenantry.auth.access import JobReader, JobSubmitter
from tenantry.db import DbReader, DbSession
from tenantry.flag.guard import feature
from tenantry.job import service
from tenantry.job.schemas import JobRead, JobSubmit
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.pagination import Page, PageQuery, page_of
from tenantry.models import Job, JobStatus
from tenantry.openapi import problems
from tenantry.state import state_of

router = APIRouter(prefix="/v1/tenants/{tenant_id}/jobs", tags=["jobs"])


def _read(job: Job) -> dict[str, Any]:
    return JobRead.model_validate(job, from_attributes=True).model_dump(mode="json")


@router.post(
    "",
    dependencies=[feature("jobs.enqueue")],
    responses=problems(429),
    status_code=202,
    response_model=JobRead,
    summary="Submit a job (429 with Retry-After when an admission cap is reached)",
)
async def submit_job(
    tenant_id: str,
    payload: JobSubmit,
    principal: JobSubmitter,
    request: Request,
    session: DbSession,
    idempotency: Idempotency,
) -> JSONResponse:
    if replay := await idempotency.replay(session, tenant_id, payload.model_dump(mode="json")):
        return replay
    job = await service.submit_job(
        session,
        state_of(request).settings,
        tenant_id=tenant_id,
        kind=payload.kind,
        payload=payload.payload,
        submitted_by=principal.subject,
    )
    return await idempotency.remember(session, 202, _read(job))


@router.get("", response_model=Page[JobRead], summary="The tenant's submitted jobs, newest first")
async def list_jobs(
    tenant_id: str,
    _: JobReader,
    session: DbReader,
    page: PageQuery,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    rows = await service.list_submitted(
        session, tenant_id, status=status, kind=kind, after=page.after, limit=page.limit + 1
    )
    return page_of(list(rows), page.limit, _read)


@router.get("/{job_id}", response_model=JobRead, summary="One submitted job")
async def get_job(tenant_id: str, job_id: str, _: JobReader, session: DbReader) -> JobRead:
    job = await service.get_submitted(session, tenant_id, job_id)
    return JobRead.model_validate(job, from_attributes=True)


@router.post(
    "/{job_id}/cancel",
    responses=problems(409),
    response_model=JobRead,
    summary="Cancel a PENDING job",
)
async def cancel_job(tenant_id: str, job_id: str, _: JobSubmitter, session: DbSession) -> JobRead:
    job = await service.cancel_submitted(session, tenant_id, job_id)
    return JobRead.model_validate(job, from_attributes=True)
