"""The token endpoint's OAuth 2.0 edges (RFC 6749): how a request arrives, how a client
authenticates, and errors that standard clients recognise.

- The body is a form (`application/x-www-form-urlencoded`, as OAuth 2 says) or, for our own
  callers, a JSON object; anything else is `415 UNSUPPORTED_MEDIA_TYPE`.
- An integration authenticates with HTTP Basic (`client_secret_basic`: `client_id` is the
  key's id, the password its secret) or with `client_id` and `client_secret` in the body
  (`client_secret_post`). The secret alone is still accepted, for callers from before.
- Every answer carries `Cache-Control: no-store` and `Pragma: no-cache` (§5.1); every error
  stays a problem document and adds `error` / `error_description` (§5.2); a failed client
  authentication is `401` with `WWW-Authenticate: Basic`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import Request

from tenantry.errors import TenantryError, ValidationFailed

NO_CACHE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
GRANT_TYPES = ("client_credentials", "refresh_token", "password", "authorization_code")
FORM = "application/x-www-form-urlencoded"


class UnsupportedMediaType(TenantryError):
    status, code, title = 415, "UNSUPPORTED_MEDIA_TYPE", "Send a form or a JSON object"


class UnsupportedGrantType(TenantryError):
    status, code, title = 400, "UNSUPPORTED_GRANT_TYPE", "The grant type is not supported"


class InvalidScope(TenantryError):
    status, code, title = 400, "INVALID_SCOPE", "The scope asked for is not the client's"


async def read_body(request: Request) -> dict[str, Any]:
    """The token request's parameters, from a form or a JSON object."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == FORM:
        return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
    if media_type not in ("application/json", ""):
        raise UnsupportedMediaType(f"{media_type} is neither {FORM} nor application/json")
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed(
            "Send a form or a JSON object", errors=[{"field": "body", "message": "not an object"}]
        )
    return body


def check_grant_type(body: dict[str, Any]) -> str:
    grant_type = body.get("grant_type")
    if not grant_type:
        raise ValidationFailed(
            "grant_type is required", errors=[{"field": "grant_type", "message": "required"}]
        )
    if grant_type not in GRANT_TYPES:
        raise UnsupportedGrantType(f"{grant_type!r} is not one of {', '.join(GRANT_TYPES)}")
    return str(grant_type)


@dataclass(frozen=True)
class ClientAuth:
    client_id: str | None  # None: the secret alone, as callers from before send it
    client_secret: str
    basic: bool


def client_auth(request: Request, body: dict[str, Any]) -> ClientAuth | None:
    """The client's credentials, from HTTP Basic or the body (never both)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        if "client_secret" in body:
            raise ValidationFailed("Authenticate the client one way: HTTP Basic or the body")
        try:
            client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ValidationFailed("The Basic credentials are not base64 of id:secret") from None
        # RFC 6749 §2.3.1: both parts are form-encoded before they are joined.
        return ClientAuth(unquote_plus(client_id) or None, unquote_plus(secret), basic=True)
    if body.get("client_secret"):
        posted_id = body.get("client_id")
        return ClientAuth(str(posted_id) if posted_id else None, str(body["client_secret"]), False)
    return None


def error_code(exc: TenantryError, grant_type: str | None) -> str:
    """The RFC 6749 §5.2 `error` for a refusal of this grant."""
    if isinstance(exc, UnsupportedGrantType):
        return "unsupported_grant_type"
    if isinstance(exc, InvalidScope):
        return "invalid_scope"
    if exc.status in (401, 403):
        return "invalid_client" if grant_type == "client_credentials" else "invalid_grant"
    return "invalid_request"


class OAuthRefusal(TenantryError):
    """A refusal of the token endpoint: the cause's problem document with the §5.2 fields, and
    the endpoint's headers. Raised, so the request's transaction rolls back as the cause's
    would have."""

    def __init__(
        self, cause: TenantryError, grant_type: str | None, *, basic: bool = False
    ) -> None:
        error = error_code(cause, grant_type)
        # A bearer challenge is for resource requests; the token endpoint challenges clients.
        inherited = {k: v for k, v in (cause.headers or {}).items() if k != "WWW-Authenticate"}
        headers = {**inherited, **NO_CACHE}
        if error == "invalid_client" and cause.status == 401:
            # §5.2: tell a client that authenticated with Basic which scheme to use again.
            headers["WWW-Authenticate"] = 'Basic realm="tenantry"' if basic else "Basic"
        super().__init__(cause.detail, headers=headers)
        self.problem = {**cause.to_problem(), "error": error, "error_description": cause.detail}

    def to_problem(self) -> dict[str, Any]:
        return self.problem
