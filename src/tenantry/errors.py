"""Errors that carry their HTTP status and stable code, rendered as RFC 9457 problem+json.

Domains subclass `TenantryError` (`class SlugTaken(TenantryError)`) and raise;
`install_error_handlers` renders them, FastAPI's validation errors, Starlette's
404/405 and anything unexpected in one shape.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar

import sqlalchemy.exc
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry.logging import current_request_id

PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger(__name__)


class TenantryError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL"
    title: ClassVar[str] = "Internal error"
    headers: dict[str, str] | None = None  # extra response headers; an instance may add its own

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.detail = detail or self.title
        self.extra = extra
        if headers is not None:
            self.headers = {**(type(self).headers or {}), **headers}
        super().__init__(self.detail)

    def to_problem(self) -> dict[str, Any]:
        return problem(self.status, self.code, self.detail, title=self.title, **self.extra)


class RateLimited(TenantryError):
    status, code, title = 429, "RATE_LIMITED", "Too many requests"


class ValidationFailed(TenantryError):
    status, code, title = 400, "VALIDATION", "The request is not valid"


class NotFound(TenantryError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class Unauthenticated(TenantryError):
    status, code, title = 401, "UNAUTHENTICATED", "Authentication required"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(TenantryError):
    """Refused for who the caller is; `reason` says why (audience, role, scope, tenant)."""

    status, code, title = 403, "FORBIDDEN", "Not allowed"


class TokenExpired(Unauthenticated):
    code, title = "TOKEN_EXPIRED", "The token has expired"


class TokenUsed(TenantryError):
    status, code, title = 409, "TOKEN_USED", "The token has been used"


class TokenRevoked(Unauthenticated):
    code, title = "TOKEN_REVOKED", "The token has been revoked"


class DatabaseUnavailable(TenantryError):
    """The database did not answer: refused, closed, timed out, or (SQLite) locked or full."""

    status, code, title = 503, "DATABASE_UNAVAILABLE", "The database is not answering"
    headers = {"Retry-After": "5"}


# What a database that is down, restarting, failing over or out of room raises: the
# request can be retried, so it is a 503, not a defect. Constraint and data errors are
# other DBAPIError subclasses and stay 500s (each route maps the ones it expects).
_DATABASE_DOWN = (
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection within the pool timeout
    ConnectionError,  # refused or reset while connecting
)


def problem(
    status: int, code: str, detail: str, *, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": f"https://tenantry.dev/problems/{code.lower().replace('_', '-')}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "org_name") -> "org_name"; ("query", "limit") -> "limit"; ("body",) -> "body"
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts)


_STATUS_CODES = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TenantryError)
    async def _tenantry(_: Request, exc: TenantryError) -> JSONResponse:
        return problem_response(exc.to_problem(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_name(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
            if err.get("type") != "json_invalid"
            else {"field": "body", "message": "is not valid JSON"}  # loc holds an offset
            for err in exc.errors()
        ]
        return problem_response(
            ValidationFailed("One or more fields are not valid", errors=errors).to_problem()
        )

    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
        refusal = DatabaseUnavailable()
        return problem_response(refusal.to_problem(), refusal.headers)

    for down in _DATABASE_DOWN:
        app.add_exception_handler(down, _database_down)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": a body that is not JSON
            message = exc.detail if isinstance(exc.detail, str) else "not valid"
            errors = [{"field": "body", "message": message}]
            return problem_response(
                ValidationFailed("The body is not valid", errors=errors).to_problem()
            )
        code = _STATUS_CODES.get(exc.status_code, HTTPStatus(exc.status_code).name)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(problem(exc.status_code, code, detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Starlette's outermost middleware calls this one: it bypasses our
        # request-context middleware, so the request id header is set here.
        request_id = current_request_id()
        log.exception("unhandled_exception", error_type=type(exc).__name__)
        body = problem(500, "INTERNAL", "An unexpected error occurred", request_id=request_id)
        return problem_response(body, {"X-Request-ID": request_id} if request_id else None)


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is answered, with our fields."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="The stable machine value: act on this, not on the text")
    errors: list[FieldError] | None = Field(default=None, description="400 VALIDATION: per field")
    reason: str | None = Field(default=None, description="403 FORBIDDEN: why it was refused")
    attempts_remaining: int | None = Field(default=None, description="400 OTP_INVALID")
    error: str | None = Field(default=None, description="The token endpoint: RFC 6749 §5.2")
    error_description: str | None = None
