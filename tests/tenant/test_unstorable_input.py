"""Text storage cannot hold is refused at the edge, alike on SQLite and PostgreSQL: NUL,
lone surrogates, NaN and Infinity, nesting past the bound. Each answer is `400 VALIDATION`
naming the field, on a connection that stays open, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tenantry.config import Settings
from tenantry.storable import MAX_DEPTH, check_json
from tests.fixtures.signup import from_address, signup_body
from tests.job.test_jobs_api import admin_token
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem


def refused_at(response: httpx.Response, field: str) -> str:
    body = assert_problem(response, 400, "VALIDATION")
    assert "connection" not in response.headers  # the body was read whole: keep-alive holds
    (error,) = body["errors"]  # type: ignore[misc]
    assert error["field"] == field, body
    return str(error["message"])


def raw_json(api: httpx.AsyncClient, path: str, text: str, token: str) -> Any:
    headers = {**auth(token), "content-type": "application/json"}
    return api.post(path, content=text.encode(), headers=headers)


class TestEveryTextThatReachesStorage:
    async def test_signup_fields(self, api: httpx.AsyncClient) -> None:
        assert "NUL" in refused_at(
            await api.post(
                "/v1/signup", json=signup_body(org_name="Ac\x00me"), headers=from_address()
            ),
            "org_name",
        )
        refused_at(
            await api.post(
                "/v1/signup", json=signup_body(promo_code="LAUNCH\x00"), headers=from_address()
            ),
            "promo_code",
        )

    async def test_key_name(self, api: httpx.AsyncClient, owner: dict[str, str]) -> None:
        response = await api.post(
            f"/v1/tenants/{owner['tenant_id']}/keys",
            json={"name": "crm\x00", "scopes": ["jobs:read"]},
            headers=auth(owner["access_token"]),
        )
        refused_at(response, "name")

    @pytest.mark.parametrize(
        ("payload", "field", "says"),
        [
            ('{"note": "a\\u0000b"}', "payload.note", "NUL"),
            ('{"a\\u0000": 1}', "payload", "keys must not contain a NUL"),
            ('{"n": NaN}', "payload.n", "finite"),
            ('{"n": [1, Infinity]}', "payload.n.1", "finite"),
            ('{"n": -Infinity}', "payload.n", "finite"),
            ('{"s": "\\udfff"}', "payload.s", "surrogate"),
            ('{"s": {"t": ["\\ud800x"]}}', "payload.s.t.0", "surrogate"),
        ],
    )
    async def test_job_payloads(
        self,
        api: httpx.AsyncClient,
        signup_settings: Settings,
        payload: str,
        field: str,
        says: str,
    ) -> None:
        token = admin_token(signup_settings, "ten_a")
        path = "/v1/tenants/ten_a/jobs"
        body = f'{{"kind": "canary.ping", "payload": {payload}}}'
        assert says in refused_at(await raw_json(api, path, body, token), field)
        listed = await api.get(path, headers=auth(token))
        assert listed.status_code == 200 and listed.json()["data"] == []

    async def test_nesting_past_the_bound(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        token = admin_token(signup_settings, "ten_a")
        deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
        body = f'{{"kind": "canary.ping", "payload": {{"n": {deep}}}}}'
        assert "nest" in refused_at(
            await raw_json(api, "/v1/tenants/ten_a/jobs", body, token),
            "payload.n" + ".0" * (MAX_DEPTH - 2),
        )
        far_too_deep = '{"kind": "k", "payload": {"n": ' + "[" * 100_000 + "]" * 100_000 + "}}"
        refused_at(await raw_json(api, "/v1/tenants/ten_a/jobs", far_too_deep, token), "body")

    async def test_query_filters_and_path_ids(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        headers = auth(admin_token(signup_settings, "ten_a"))
        refused_at(await api.get("/v1/tenants/ten_a/jobs?kind=canary%00", headers=headers), "kind")
        refused_at(await api.get("/v1/tenants/ten_a/events?type=a%00", headers=headers), "type")
        refused_at(await api.get("/v1/tenants/ten_a/jobs/job_%00", headers=headers), "path")

    async def test_form_fields(self, api: httpx.AsyncClient) -> None:
        form = {"grant_type": "client_credentials", "client_secret": "tnt_sk_\x00"}
        refused_at(await api.post("/v1/auth/token", data=form), "client_secret")


class TestWhatPasses:
    @pytest.mark.parametrize(
        "document",
        [
            {"name": "Zoë \u00e9\u4e2d \U0001f600"},  # escapes of real characters and pairs
            {"n": 1e308, "list": [[[]]]},
            {"nested": json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))},
        ],
    )
    def test_ordinary_documents(self, document: object) -> None:
        check_json(json.dumps(document).encode())  # ensure_ascii: every non-ASCII escaped
