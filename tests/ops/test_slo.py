"""The SLO check: each objective provoked past its alert threshold on a real database, the
request-based ones from real Prometheus text, the API and the CLI (exit 1 on a breach)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.models import Job, JobStatus, MailMessage, MailStatus, SignupStatus
from tenantry.ops import slo
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_signup
from tests.ops.test_funnel import operator


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {objective["name"]: objective for objective in report["objectives"]}


async def check(database: Database, settings: Settings) -> dict[str, dict[str, Any]]:
    async with database.session() as session:
        return by_name(await slo.check(session, settings, None))


async def pending_mail(database: Database, count: int) -> None:
    async with database.session() as session:
        for n in range(count):
            session.add(
                MailMessage(
                    id=new_id("msg"),
                    message_id=f"<{n}@bench>",
                    to_address=f"u{n}@example.com",
                    template="welcome",
                    subject="Welcome",
                    context={},
                    status=MailStatus.PENDING.value,
                    attempts=0,
                    created_at=utcnow(),
                )
            )


async def job(database: Database, status: JobStatus, *, finished_ago: timedelta | None) -> None:
    now = utcnow()
    async with database.session() as session:
        session.add(
            Job(
                id=new_id("job"),
                queue="default",
                kind="canary.ping",
                payload={},
                status=status.value,
                priority=0,
                vtime=0,
                attempts=0,
                max_attempts=1,
                run_at=now - timedelta(minutes=30),
                created_at=now - timedelta(minutes=30),
                finished_at=now - finished_ago if finished_ago else None,
            )
        )


class TestFromTheDatabase:
    async def test_a_quiet_service_has_no_breach(
        self, database: Database, settings: Settings
    ) -> None:
        found = await check(database, settings)
        assert list(found) == [
            "signup_success",
            "invite_acceptance_72h",
            "magic_link_p95",
            "provisioning_p95",
            "funnel_completion",
            "mail_backlog",
            "queue_stall",
            "error_rate",
        ]
        assert {o["status"] for o in found.values()} == {"ok", "no_data"}
        assert found["mail_backlog"]["status"] == "ok" and found["queue_stall"]["value"] == 0

    async def test_mail_backlog_past_its_threshold(
        self, database: Database, settings: Settings
    ) -> None:
        await pending_mail(database, 3)
        strict = settings.model_copy(update={"slo_mail_backlog": 2})
        assert (await check(database, strict))["mail_backlog"] == {
            "name": "mail_backlog",
            "value": 3.0,
            "target": 2.0,
            "alert": 2.0,
            "window": "now",
            "status": "breach",
        }
        assert (await check(database, settings))["mail_backlog"]["status"] == "ok"

    async def test_a_queue_that_stopped_finishing_jobs(
        self, database: Database, settings: Settings
    ) -> None:
        await job(database, JobStatus.COMPLETED, finished_ago=timedelta(minutes=11))
        await job(database, JobStatus.PENDING, finished_ago=None)
        stall = (await check(database, settings))["queue_stall"]
        assert stall["status"] == "breach" and 11 <= stall["value"] < 12
        await job(database, JobStatus.COMPLETED, finished_ago=timedelta(minutes=1))
        assert (await check(database, settings))["queue_stall"]["status"] == "ok"

    async def test_slow_provisioning_and_a_funnel_that_does_not_complete(
        self, database: Database, settings: Settings
    ) -> None:
        done = utcnow() - timedelta(minutes=5)
        for _ in range(4):
            await create_signup(
                database,
                status=SignupStatus.PROVISIONED,
                verified_at=done - timedelta(seconds=4),
                provisioned_at=done,
            )
        async with database.session() as session:
            for _ in range(10):
                events.record(session, "activation.SignupStarted")
            events.record(session, "activation.TenantProvisioned")
        found = await check(database, settings)
        assert found["provisioning_p95"]["value"] == 4.0
        assert found["provisioning_p95"]["status"] == "breach"
        assert found["funnel_completion"]["value"] == 0.1
        assert found["funnel_completion"]["status"] == "breach"
        lenient = settings.model_copy(
            update={
                "slo_provisioning_p95_alert": timedelta(seconds=5),
                "slo_funnel_completion_alert": 0.05,
            }
        )
        found = await check(database, lenient)
        assert found["provisioning_p95"]["status"] == found["funnel_completion"]["status"] == "ok"


def exposition(observations: list[tuple[str, str, float]]) -> str:
    """Prometheus text as Tenantry's request histogram writes it."""
    registry = CollectorRegistry()
    histogram = Histogram(
        "tenantry_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template.",
        ["route", "method", "status_class"],
        registry=registry,
    )
    for route, status_class, seconds in observations:
        histogram.labels(route, "POST", status_class).observe(seconds)
    return generate_latest(registry).decode()


class TestFromMetrics:
    def test_signup_success_error_rate_and_magic_link_latency(self, settings: Settings) -> None:
        text = exposition(
            [("/v1/signup", "2xx", 0.05)] * 18
            + [("/v1/signup", "5xx", 0.05)] * 2
            + [("/v1/invitations/accept", "2xx", 0.8)] * 20  # slow links
            + [("/v1/tenants/{tenant_id}/jobs", "2xx", 0.01)] * 60
        )
        found = {o.name: o for o in slo.from_metrics(settings, text)}
        assert (found["signup_success"].value, found["signup_success"].status) == (0.9, "breach")
        assert (found["error_rate"].value, found["error_rate"].status) == (0.02, "ok")
        p95 = found["magic_link_p95"]
        assert p95.value is not None and 0.75 < p95.value <= 1.0 and p95.status == "breach"

    def test_no_requests_is_no_data(self, settings: Settings) -> None:
        assert {o.status for o in slo.from_metrics(settings, None)} == {"no_data"}
        assert {o.status for o in slo.from_metrics(settings, exposition([]))} == {"no_data"}


class TestSurfaces:
    async def test_the_api_reads_this_process_metrics(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        await client.get("/health")
        response = await client.get("/v1/admin/slo", headers=operator(settings))
        assert response.status_code == 200, response.text
        found = by_name(response.json())
        assert found["error_rate"]["status"] in {"ok", "breach"}  # requests were counted
        assert found["error_rate"]["value"] is not None

    async def test_the_cli_exits_1_on_a_breach(
        self, database: Database, settings: Settings
    ) -> None:
        code, output = await run_tenantry(settings, "slo", "check", "--json")
        assert code == 0, output
        assert json.loads(output)["status"] == "ok"
        await pending_mail(database, 101)
        code, output = await run_tenantry(settings, "slo", "check")
        assert code == 1 and "mail_backlog" in output and "breach" in output
