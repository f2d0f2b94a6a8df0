"""Request ids, trace ids and per-route latency metrics."""

from __future__ import annotations

import re

import httpx

from tenantry.middleware import trace_id_from


class TestRequestId:
    async def test_generated_when_absent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live")
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])

    async def test_echoed_when_sent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"

    async def test_replaced_when_unsafe(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/live", headers={"X-Request-ID": "bad id\n<script>"})
        assert response.headers["x-request-id"] != "bad id\n<script>"
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


class TestTraceparent:
    def test_valid_header_gives_its_trace_id(self) -> None:
        header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        assert trace_id_from(header) == "4bf92f3577b34da6a3ce929d0e0e4736"

    def test_invalid_or_zero_header_gives_a_fresh_id(self) -> None:
        for header in (None, "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"):
            trace_id = trace_id_from(header)
            assert re.fullmatch(r"[0-9a-f]{32}", trace_id) and trace_id != "0" * 32


class TestMetrics:
    async def test_latency_histogram_by_route_template(self, client: httpx.AsyncClient) -> None:
        await client.get("/v1/whoami")
        text = (await client.get("/metrics")).text
        assert re.search(
            r'tenantry_http_request_duration_seconds_bucket\{le="0\.001",method="GET",'
            r'route="/v1/whoami",status_class="4xx"\} \d',
            text,
        )
        assert "process_resident_memory_bytes" in text
        for name in (
            "tenantry_jobs_enqueued_total",
            "tenantry_jobs_finished_total",
            "tenantry_job_duration_seconds",
            "tenantry_job_pickup_delay_seconds",
            "tenantry_jobs_lease_expired_total",
            "tenantry_jobs_queue_depth",
        ):
            assert f"# TYPE {name.removesuffix('_total')}" in text, name

    async def test_unknown_paths_share_one_label(self, client: httpx.AsyncClient) -> None:
        await client.get("/no/such/path/123")
        text = (await client.get("/metrics")).text
        assert 'route="<unmatched>"' in text
        assert "/no/such/path/123" not in text


class TestBodies:
    async def test_a_body_no_route_reads_is_415_and_json_or_forms_go_through(
        self, client: httpx.AsyncClient
    ) -> None:
        body = b'{"org_name": "A", "slug": "abc", "email": "a@example.com", "plan": "starter"}'
        for content_type in ("text/plain", "application/xml", None):
            headers = {"content-type": content_type} if content_type else {}
            refused = await client.post("/v1/signup", content=body, headers=headers)
            assert refused.status_code == 415, content_type
            assert refused.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
        accepted = await client.post(
            "/v1/signup", content=body, headers={"content-type": "application/json; charset=utf-8"}
        )
        assert accepted.status_code == 201, accepted.text
