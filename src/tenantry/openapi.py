"""The OpenAPI document as the API really answers: every error a problem+json `Problem`,
no FastAPI 422 validation shape (validation errors are `400 VALIDATION`), the client
authentication of the token endpoint, and each route's possible error statuses.

Statuses come from what a route is: any route can answer 400, 500 and 503 (the database
not answering, `DATABASE_UNAVAILABLE`); one with a path
parameter 404; one behind a bearer token 401 and 403; one taking `Idempotency-Key` 422;
and what the route declares itself with `problems(...)` (conflicts, rate limits, …).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tenantry.errors import PROBLEM_JSON, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
CLIENT_AUTH = "clientSecretBasic"


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error statuses (the document adds their schema)."""
    return {status: {"description": HTTPStatus(status).phrase} for status in statuses}


def _error_statuses(operation: dict[str, Any]) -> set[str]:
    responses = operation["responses"]
    responses.pop("422", None)  # FastAPI's validation shape: we answer 400 VALIDATION
    statuses = {"400", "500", "503"} | {code for code in responses if code >= "400"}
    parameters = operation.get("parameters", [])
    if any(p["in"] == "path" for p in parameters):
        statuses.add("404")
    if operation.get("security"):
        statuses |= {"401", "403"}
    if any(p["in"] == "header" and p["name"].lower() == "idempotency-key" for p in parameters):
        statuses.add("422")  # IDEMPOTENCY_KEY_REUSED, a problem like the others
    return statuses


def _as_problems(operation: dict[str, Any]) -> None:
    for status in sorted(_error_statuses(operation)):
        if "content" in operation["responses"].get(status, {}):
            continue  # a body of its own, such as /health's 503
        operation["responses"][status] = {
            "description": HTTPStatus(int(status)).phrase,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
        }


def build(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(
        Problem.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs", {})
    )
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["Problem"].pop("$defs", None)
    components.setdefault("securitySchemes", {})[CLIENT_AUTH] = {
        "type": "http",
        "scheme": "basic",
        "description": "An integration key at the token endpoint: its id and its secret",
    }
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise RuntimeError(f"endpoints share a name, so an operationId: {duplicates}")
    for operations in document["paths"].values():
        for operation in operations.values():
            _as_problems(operation)
    return document


def install(app: FastAPI) -> None:
    """Serve `build(app)` as /openapi.json, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
