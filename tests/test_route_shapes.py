"""Every route is typed at the edge: a response model for what it answers (a 204 answers
nothing), so the OpenAPI document describes each response."""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi.routing import APIRoute
from pydantic import BaseModel

from tenantry.app import create_app
from tests.conftest import make_settings
from tests.fixtures.routes import api_routes, dependencies


def test_every_route_has_a_response_model(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    untyped = []
    for context in api_routes(app):
        route = context.original_route
        assert isinstance(route, APIRoute)
        if not route.include_in_schema or route.status_code == 204:
            continue  # pages and /metrics are not JSON; a 204 has no body
        model = route.response_model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            untyped.append(f"{sorted(route.methods)} {context.path}: {model}")
    assert untyped == []


def test_the_openapi_document_names_each_response_schema(tmp_path: Path) -> None:
    document = create_app(make_settings(tmp_path)).openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ok = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            for code, response in ok.items():
                if code == "204":
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert "$ref" in schema, f"{method} {path} {code}: {schema}"


def test_every_error_is_a_documented_problem_and_no_422_shape_is_left(tmp_path: Path) -> None:
    document = create_app(make_settings(tmp_path)).openapi()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and {"code", "status"} <= set(
        schemas["Problem"]["properties"]
    )
    assert set(document["components"]["securitySchemes"]) == {"HTTPBearer", "clientSecretBasic"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {c: r for c, r in operation["responses"].items() if c >= "400"}
            assert {"400", "500"} <= set(errors), (method, path)
            for code, response in errors.items():
                (media_type, content), *_ = response["content"].items()
                if path.startswith("/health"):
                    continue  # a 503 there carries the health report
                assert media_type == "application/problem+json", (method, path, code)
                assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
            idempotent = any(
                p["in"] == "header" and p["name"].lower() == "idempotency-key"
                for p in operation.get("parameters", [])
            )
            assert ("422" in errors) == idempotent, (method, path)
            if operation.get("security") and path != "/v1/auth/token":
                assert {"401", "403"} <= set(errors), (method, path)
    token = document["paths"]["/v1/auth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]


def test_every_dependency_is_async(tmp_path: Path) -> None:
    """FastAPI runs a plain `def` dependency or endpoint on its thread pool: a thread hop,
    and a wait for the GIL under load, on every request for what is a lookup."""
    app = create_app(make_settings(tmp_path))
    synchronous = set()
    for context in api_routes(app):
        route = context.original_route
        assert isinstance(route, APIRoute)
        for call in [route.endpoint, *dependencies(route.dependant)]:
            function = call if inspect.isroutine(call) else type(call).__call__
            if not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)):
                synchronous.add(f"{call.__module__}.{getattr(call, '__qualname__', call)}")
    assert synchronous == set()
