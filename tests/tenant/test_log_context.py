"""Every log line at INFO and above written while handling a tenant's request or job names the
tenant and a trace; a job carries on the trace of the request that enqueued it."""

from __future__ import annotations

from typing import Any

import httpx

from tenantry.config import Settings
from tenantry.db import Database
from tests.conftest import LogCapture
from tests.fixtures.workers import running_worker, wait_for
from tests.ops.test_funnel import operator as tokens_for_platform

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
LOUD = {"info", "warning", "error", "critical"}


def of_tenant_requests(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every line logged while handling a request to a tenant's routes (by its request id)."""
    ids = {
        line["request_id"]
        for line in lines
        if line.get("event") == "http_request"
        and "/tenants/{tenant_id}" in str(line.get("route", ""))
    }
    return [line for line in lines if line.get("request_id") in ids]


async def test_tenant_lines_carry_the_tenant_and_the_trace(
    api: httpx.AsyncClient,
    database: Database,
    signup_settings: Settings,
    owner: dict[str, str],
    logs: LogCapture,
) -> None:
    tokens = owner
    me = (await api.get("/v1/whoami", headers=_auth(tokens))).json()
    tenant_id = me["tenant_id"]
    traced = {**_auth(tokens), "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
    invited = await api.post(
        f"/v1/tenants/{tenant_id}/invitations",
        json={"email": "bea@acme.example.com", "role": "member"},
        headers=traced,
    )
    assert invited.status_code == 201, invited.text
    refused = await api.post(
        f"/v1/tenants/{tenant_id}/invitations",
        json={"email": "bea@acme.example.com", "role": "member"},
        headers=_auth(tokens),
    )
    assert refused.status_code == 409  # a warning-level refusal, in the tenant's context too
    operator = tokens_for_platform(signup_settings, "admin")
    reactivated = await api.post(
        f"/v1/admin/tenants/{tenant_id}/reactivate", json={"reason": "check"}, headers=operator
    )
    assert reactivated.status_code == 409  # not suspended: refused, and logged as the tenant's
    async with running_worker(database, signup_settings):

        async def mailed() -> bool:
            return bool(logs.events("mail_sent"))

        await wait_for(mailed)

    lines = [line for line in logs.events() if line.get("level") in LOUD]
    requests = of_tenant_requests(lines)
    assert {line["event"] for line in requests} >= {"http_request"}
    assert len({line["request_id"] for line in requests}) == 3
    jobs = [line for line in lines if line.get("job_id")]
    (sent,) = logs.events("mail_sent")
    assert sent["tenant_id"] == tenant_id and sent["trace_id"] == TRACE  # carried on
    tenants_jobs = [line for line in jobs if line["job_id"] == sent["job_id"]]
    unnamed = [
        line
        for line in requests + tenants_jobs
        if line.get("tenant_id") != tenant_id or not line.get("trace_id")
    ]
    assert not unnamed, unnamed
    assert all("tenant_id" in line and line.get("trace_id") for line in jobs), jobs


def _auth(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}
