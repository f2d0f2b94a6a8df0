"""Operators' view of webhook endpoints: any tenant's list, and audited corrections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantry.auth.access import PlatformAdmin
from tenantry.db import PlatformReader, PlatformSession
from tenantry.kit.pagination import Page, PageQuery, page_of
from tenantry.state import state_of
from tenantry.webhook import service
from tenantry.webhook.endpoints import endpoint_read
from tenantry.webhook.schemas import EndpointRead, OperatorEndpointUpdate

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get(
    "/tenants/{tenant_id}/webhook-endpoints",
    response_model=Page[EndpointRead],
    summary="A tenant's webhook endpoints",
)
async def list_tenant_webhook_endpoints(
    tenant_id: str, _: PlatformAdmin, session: PlatformReader, page: PageQuery
) -> dict[str, Any]:
    rows = await service.list_endpoints(session, tenant_id, after=page.after, limit=page.limit + 1)
    return page_of(list(rows), page.limit, endpoint_read)


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    response_model=EndpointRead,
    summary="Correct a tenant's endpoint (URL, event types, enabled…); audited",
)
async def correct_webhook_endpoint(
    endpoint_id: str,
    payload: OperatorEndpointUpdate,
    caller: PlatformAdmin,
    request: Request,
    session: PlatformSession,
) -> EndpointRead:
    state = state_of(request)
    endpoint = await service.operator_update(
        session,
        state.settings,
        state.resolver,
        endpoint_id,
        payload.changes(),
        by=caller.subject,
        reason=payload.reason,
    )
    return endpoint_read(endpoint)
