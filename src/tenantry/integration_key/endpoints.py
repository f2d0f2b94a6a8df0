"""`/v1/tenants/{tenant_id}/keys`: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tenantry.auth.access import KeyManager, KeyReader
from tenantry.db import DbReader, DbSession
from tenantry.integration_key import service
from tenantry.integration_key.schemas import KeyCreate, KeyCreated, KeyRead
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.pagination import Page
from tenantry.models import IntegrationKey
from tenantry.openapi import problems
from tenantry.state import state_of

router = APIRouter(prefix="/v1/tenants/{tenant_id}/keys", tags=["integration keys"])


def _read(key: IntegrationKey) -> KeyRead:
    return KeyRead.model_validate(key, from_attributes=True)


@router.post(
    "", status_code=201, response_model=KeyCreated, summary="Create a key; its secret is shown once"
)
async def create_key(
    tenant_id: str,
    payload: KeyCreate,
    _: KeyManager,
    request: Request,
    session: DbSession,
    idempotency: Idempotency,
) -> JSONResponse:
    if replay := await idempotency.replay(session, tenant_id, payload.model_dump(mode="json")):
        return replay
    key, secret = await service.create_key(
        session,
        state_of(request).settings,
        tenant_id=tenant_id,
        name=payload.name,
        scopes=payload.scopes,
        expires_at=payload.expires_at,
    )
    await session.flush()
    created = KeyCreated(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        secret=secret,
        scopes=key.scopes,
        created_at=key.created_at,
    )
    return await idempotency.remember(session, 201, created.model_dump(mode="json"), secret=True)


@router.get("", response_model=Page[KeyRead], summary="The tenant's keys, never their secrets")
async def list_keys(tenant_id: str, _: KeyReader, session: DbReader) -> dict[str, Any]:
    keys = await service.list_keys(session, tenant_id)
    return {"data": [_read(key).model_dump(mode="json") for key in keys], "next_cursor": None}


@router.post(
    "/{key_id}/revoke",
    responses=problems(409),
    response_model=KeyRead,
    summary="Revoke a key for good",
)
async def revoke_key(
    tenant_id: str, key_id: str, _: KeyManager, request: Request, session: DbSession
) -> KeyRead:
    settings = state_of(request).settings
    return _read(await service.revoke_key(session, settings, key_id, tenant_id=tenant_id))
