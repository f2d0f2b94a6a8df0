"""The verified caller of a request, as routes and services see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantry.auth.jwt import Audience


@dataclass(frozen=True)
class Principal:
    subject: str
    audience: Audience
    roles: frozenset[str]
    scopes: frozenset[str]
    tenant_id: str | None
    claims: dict[str, Any]

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        return cls(
            subject=claims["sub"],
            audience=Audience(claims["aud"]),
            roles=frozenset(claims.get("roles", ())),
            scopes=frozenset(claims.get("scope", "").split()),
            tenant_id=claims.get("tenant_id"),
            claims=claims,
        )
