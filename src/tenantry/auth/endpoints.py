"""Public keys for verifiers and the caller's own view of its token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantry.auth.dependencies import Authenticated

router = APIRouter(tags=["auth"])


@router.get("/.well-known/jwks.json", summary="Public keys that verify Tenantry's access tokens")
async def jwks(request: Request) -> dict[str, Any]:
    keys: dict[str, Any] = request.app.state.tokens.jwks()
    return keys


@router.get("/v1/whoami", summary="The verified claims of the caller's token")
async def whoami(principal: Authenticated) -> dict[str, Any]:
    return principal.claims
