"""`/v1/tenants/{tenant_id}/webhook-endpoints`: a tenant's endpoints, their attempts, replay."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from tenantry.auth.access import WebhookManager, WebhookReader
from tenantry.db import DbReader, DbSession
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.pagination import Page, PageQuery, page_of
from tenantry.models import WebhookAttempt, WebhookEndpoint
from tenantry.state import state_of
from tenantry.webhook import service
from tenantry.webhook.schemas import (
    Accepted,
    AttemptRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    Recover,
    Recovered,
    RotateSecret,
    SecretRead,
)

router = APIRouter(prefix="/v1/tenants/{tenant_id}/webhook-endpoints", tags=["webhooks"])


def endpoint_read(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead.model_validate(endpoint)


def _attempt(attempt: WebhookAttempt) -> AttemptRead:
    return AttemptRead.model_validate(attempt)


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreated,
    summary="Register an endpoint; its signing secret is shown once",
)
async def create_webhook_endpoint(
    tenant_id: str,
    payload: EndpointCreate,
    _: WebhookManager,
    request: Request,
    session: DbSession,
    idempotency: Idempotency,
) -> JSONResponse:
    if replay := await idempotency.replay(session, tenant_id, payload.model_dump(mode="json")):
        return replay
    state = state_of(request)
    endpoint, secret = await service.create_endpoint(
        session,
        state.settings,
        state.resolver,
        tenant_id=tenant_id,
        **payload.model_dump(),
    )
    created = EndpointCreated(**endpoint_read(endpoint).model_dump(), secret=secret)
    return await idempotency.remember(session, 201, created.model_dump(mode="json"), secret=True)


@router.get("", response_model=Page[EndpointRead], summary="The tenant's endpoints, newest first")
async def list_webhook_endpoints(
    tenant_id: str, _: WebhookReader, session: DbReader, page: PageQuery
) -> dict[str, Any]:
    rows = await service.list_endpoints(session, tenant_id, after=page.after, limit=page.limit + 1)
    return page_of(list(rows), page.limit, endpoint_read)


@router.get("/{endpoint_id}", response_model=EndpointRead, summary="One endpoint")
async def get_webhook_endpoint(
    tenant_id: str, endpoint_id: str, _: WebhookReader, session: DbReader
) -> EndpointRead:
    return endpoint_read(await service.get_endpoint(session, endpoint_id, tenant_id))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointRead,
    summary="Change the URL, description, event types, rate limit, or enable/disable",
)
async def update_webhook_endpoint(
    tenant_id: str,
    endpoint_id: str,
    payload: EndpointUpdate,
    caller: WebhookManager,
    request: Request,
    session: DbSession,
) -> EndpointRead:
    state = state_of(request)
    endpoint = await service.get_endpoint(session, endpoint_id, tenant_id, for_update=True)
    await service.update_endpoint(
        session, state.settings, state.resolver, endpoint, payload.changes(), by=caller.subject
    )
    return endpoint_read(endpoint)


@router.delete(
    "/{endpoint_id}", status_code=204, response_class=Response, summary="Remove an endpoint"
)
async def delete_webhook_endpoint(
    tenant_id: str, endpoint_id: str, _: WebhookManager, session: DbSession
) -> Response:
    endpoint = await service.get_endpoint(session, endpoint_id, tenant_id, for_update=True)
    await service.delete_endpoint(session, endpoint)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=SecretRead,
    summary="A new secret; the old one still signs for the grace period (default 24 h)",
)
async def rotate_webhook_secret(
    tenant_id: str,
    endpoint_id: str,
    payload: RotateSecret,
    _: WebhookManager,
    request: Request,
    session: DbSession,
) -> SecretRead:
    settings = state_of(request).settings
    endpoint = await service.get_endpoint(session, endpoint_id, tenant_id, for_update=True)
    grace = payload.grace if payload.grace is not None else settings.webhook_rotation_grace
    return SecretRead(secret=await service.rotate_secret(session, settings, endpoint, grace))


@router.get(
    "/{endpoint_id}/attempts",
    response_model=Page[AttemptRead],
    summary="The endpoint's delivery attempts, newest first",
)
async def list_webhook_attempts(
    tenant_id: str,
    endpoint_id: str,
    _: WebhookReader,
    session: DbReader,
    page: PageQuery,
    status: Annotated[Literal["succeeded", "failed"] | None, Query()] = None,
) -> dict[str, Any]:
    endpoint = await service.get_endpoint(session, endpoint_id, tenant_id)
    rows = await service.list_attempts(
        session, endpoint, status=status, after=page.after, limit=page.limit + 1
    )
    return page_of(list(rows), page.limit, _attempt)


@router.post(
    "/{endpoint_id}/messages/{message_id}/retry",
    status_code=202,
    response_model=Accepted,
    summary="Send one message to this endpoint again, now",
)
async def retry_webhook_message(
    tenant_id: str, endpoint_id: str, message_id: str, _: WebhookManager, session: DbSession
) -> Accepted:
    endpoint = await service.get_endpoint(session, endpoint_id, tenant_id)
    await service.retry_message(session, endpoint, message_id)
    return Accepted()


@router.post(
    "/{endpoint_id}/recover",
    status_code=202,
    response_model=Recovered,
    summary="Send the endpoint's failed messages of a time range again (at most 10,000)",
)
async def recover_webhook_messages(
    tenant_id: str, endpoint_id: str, payload: Recover, _: WebhookManager, session: DbSession
) -> Recovered:
    endpoint = await service.get_endpoint(session, endpoint_id, tenant_id)
    count = await service.recover(session, endpoint, since=payload.since, until=payload.until)
    return Recovered(messages=count)
