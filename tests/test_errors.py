"""Every error leaves as RFC 9457 problem+json with a stable code; no client input yields a 500."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from tenantry.app import create_app
from tenantry.errors import TenantryError
from tests.conftest import AppFactory, LogCapture, make_settings
from tests.fixtures.databases import sqlite_copy
from tests.fixtures.routes import api_routes


class Widget(BaseModel):
    name: str = Field(min_length=1)
    count: int


class Conflict(TenantryError):
    status, code, title = 409, "WIDGET_TAKEN", "Widget taken"


def _app_with_probe_routes(tmp_path: Path, database_url: str) -> FastAPI:
    app = create_app(make_settings(tmp_path, database_url=database_url, max_body_bytes=2048))

    @app.post("/probe/widgets", status_code=201)
    async def create_widget(widget: Widget) -> Widget:
        return widget

    @app.get("/probe/conflict")
    async def conflict() -> None:
        raise Conflict("that widget exists", widget="w1")

    @app.get("/probe/crash")
    async def crash() -> None:
        password = "local-hunter2"  # a local that a traceback must never print
        raise RuntimeError(f"secret internals tnt_sk_abcdef0123456789 {len(password)}")

    return app


@pytest.fixture
async def probe(
    client_for: AppFactory, database_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    app = _app_with_probe_routes(tmp_path, database_url)
    async with client_for(app=app) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body  # type: ignore[no-any-return]


class TestValidation:
    async def test_malformed_json_is_400_validation(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post(
            "/probe/widgets",
            content=b'{"name": "x", ',
            headers={"content-type": "application/json"},
        )
        assert_problem(response, 400, "VALIDATION")

    async def test_wrong_types_name_each_field(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post("/probe/widgets", json={"name": "", "count": "many"})
        body = assert_problem(response, 400, "VALIDATION")
        fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
        assert fields == {"name", "count"}
        assert all(error["message"] for error in body["errors"])  # type: ignore[attr-defined]

    async def test_missing_body(self, probe: httpx.AsyncClient) -> None:
        body = assert_problem(await probe.post("/probe/widgets"), 400, "VALIDATION")
        assert body["errors"][0]["field"] == "body"  # type: ignore[index]

    async def test_wrong_query_type(self, probe: httpx.AsyncClient) -> None:
        body = assert_problem(
            await probe.get("/health", params={"deep": "perhaps"}), 400, "VALIDATION"
        )
        assert body["errors"][0]["field"] == "deep"  # type: ignore[index]

    async def test_valid_body_passes(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post("/probe/widgets", json={"name": "w", "count": 2})
        assert response.status_code == 201


class TestBodySize:
    async def test_declared_length_over_cap_is_413(self, probe: httpx.AsyncClient) -> None:
        response = await probe.post("/probe/widgets", json={"name": "x" * 5000, "count": 1})
        assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
        assert response.headers["x-request-id"]

    async def test_streamed_body_over_cap_is_413(self, probe: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1024

        response = await probe.post(
            "/probe/widgets", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


class TestRouting:
    async def test_unknown_route(self, probe: httpx.AsyncClient) -> None:
        assert_problem(await probe.get("/nowhere"), 404, "NOT_FOUND")

    async def test_wrong_method(self, probe: httpx.AsyncClient) -> None:
        assert_problem(await probe.delete("/health"), 405, "METHOD_NOT_ALLOWED")


class TestDomainErrors:
    async def test_rendered_with_code_and_extras(self, probe: httpx.AsyncClient) -> None:
        body = assert_problem(await probe.get("/probe/conflict"), 409, "WIDGET_TAKEN")
        assert body["detail"] == "that widget exists"
        assert body["widget"] == "w1"


class TestUnexpected:
    async def test_500_carries_request_id_and_no_internals(
        self, probe: httpx.AsyncClient, logs: LogCapture
    ) -> None:
        response = await probe.get("/probe/crash", headers={"X-Request-ID": "req-crash-1"})
        body = assert_problem(response, 500, "INTERNAL")
        assert body["request_id"] == "req-crash-1"
        assert response.headers["x-request-id"] == "req-crash-1"
        assert "RuntimeError" not in response.text
        assert "tnt_sk_abcdef" not in response.text
        assert "Traceback" not in response.text
        (logged,) = logs.events("unhandled_exception")
        assert logged["request_id"] == "req-crash-1"
        assert "RuntimeError" in logged["exception"]
        assert "tnt_sk_abcdef0123456789" not in logs.text and "local-hunter2" not in logs.text


CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain"]
GARBAGE_BODIES = [b"", b"{", b"null", b"[]", b'{"a": 1}', b"\xff\xfe", b'"' + b"x" * 100 + b'"']


async def test_no_route_answers_500_to_garbage(
    client_for: AppFactory, sqlite_template: Path, tmp_path: Path
) -> None:
    """Generated from the route table: a new route is covered without editing this test."""
    app = create_app(make_settings(tmp_path, database_url=sqlite_copy(sqlite_template, tmp_path)))
    async with client_for(app=app) as client:
        for route in api_routes(app):
            path = str(route.path).replace("{", "").replace("}", "")
            for method, body, content_type in itertools.product(
                route.methods, GARBAGE_BODIES, CONTENT_TYPES
            ):
                response = await client.request(
                    method,
                    path,
                    content=body,
                    params={"limit": "-1", "cursor": "%%%", "deep": "x"},
                    headers={"content-type": content_type, "authorization": "Bearer garbage"},
                )
                assert response.status_code < 500, (method, path, body, response.text)
                if response.status_code >= 400:
                    # Pages for people (the activation page) explain errors in HTML; the body
                    # reader refuses what no route reads (415) before any route runs.
                    page = route.response_class is HTMLResponse and response.status_code != 415
                    expected = "text/html" if page else "application/problem+json"
                    assert response.headers["content-type"].startswith(expected), path


@pytest.mark.parametrize("sent", [b'{"org_name": ', b'{"org_name": "\xff"}'])
async def test_a_body_that_is_not_json_is_a_validation_error(
    client: httpx.AsyncClient, sent: bytes
) -> None:
    response = await client.post(
        "/v1/signup", content=sent, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400, "VALIDATION")
    assert body["errors"][0]["field"] == "body"  # type: ignore[index]
