"""Provisioning runs with a real worker: happy path, review, the signed webhook, failure."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook, WebhookVerificationError

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import (
    Event,
    Job,
    MailMessage,
    Membership,
    ProvisioningStep,
    SignupSession,
    Tenant,
    User,
)
from tenantry.provisioning import steps
from tenantry.provisioning.service import request_run
from tenantry.provisioning.tasks import RUN_STEP
from tenantry.provisioning.webhook import webhook_secret
from tests.fixtures.servers import free_port
from tests.fixtures.signup import code_for, from_address, signup_body
from tests.fixtures.workers import running_worker, wait_for


async def verified_signup(
    api: httpx.AsyncClient, database: Database, settings: Settings, **body: str
) -> str:
    start = await api.post("/v1/signup", json=signup_body(**body), headers=from_address())
    assert start.status_code == 201, start.text
    signup_id = str(start.json()["id"])
    code = await code_for(database, settings, start_email(body))
    verified = await api.post(
        f"/v1/signup/{signup_id}/verify", json={"code": code}, headers=from_address()
    )
    assert verified.status_code == 200, verified.text
    return signup_id


def start_email(body: dict[str, str]) -> str:
    return body.get("email", signup_body()["email"])


async def status_of(database: Database, signup_id: str) -> SignupSession:
    async with database.session() as session:
        signup = await session.get(SignupSession, signup_id)
        assert signup is not None
        return signup


async def wait_status(database: Database, signup_id: str, *statuses: str) -> SignupSession:
    async def reached() -> bool:
        return (await status_of(database, signup_id)).status in statuses

    await wait_for(reached)
    return await status_of(database, signup_id)


async def count(database: Database, model: type, *conditions: Any) -> int:
    async with database.session() as session:
        query = select(func.count()).select_from(model).where(*conditions)
        return int((await session.execute(query)).scalar_one())


class TestStarterPlan:
    async def test_verified_signup_becomes_a_tenant_with_its_owner(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await verified_signup(api, database, signup_settings)
        async with running_worker(database, signup_settings):
            signup = await wait_status(
                database, signup_id, "PROVISIONED", "FAILED", "REVIEW_REQUIRED"
            )
        assert signup.status == "PROVISIONED", (signup.failure_reason, signup.review_reason)
        async with database.session() as session:
            tenant = await session.get(Tenant, signup.tenant_id)
            owner = (
                await session.execute(select(User).where(User.email == signup.email))
            ).scalar_one()
            membership = await session.get(Membership, (tenant.id if tenant else "", owner.id))
            checkpoints = (
                (
                    await session.execute(
                        select(ProvisioningStep)
                        .where(ProvisioningStep.signup_id == signup_id)
                        .order_by(ProvisioningStep.position)
                    )
                )
                .scalars()
                .all()
            )
            types = (
                (
                    await session.execute(
                        select(Event.type)
                        .where(Event.subject_id == signup_id)
                        .order_by(Event.occurred_at)
                    )
                )
                .scalars()
                .all()
            )
        assert tenant is not None and tenant.slug == "acme" and tenant.settings["timezone"] == "UTC"
        assert membership is not None and membership.role == "owner"
        assert [(c.name, c.status, c.attempts) for c in checkpoints] == [
            ("create_tenant", "done", 1),
            ("create_owner", "done", 1),
            ("default_settings", "done", 1),
            ("welcome_mail", "done", 1),
        ]
        assert (
            types[0] == "activation.SignupStarted" and types[-1] == "activation.TenantProvisioned"
        )
        assert types.count("provisioning.StepCompleted") == 4
        assert await count(database, MailMessage, MailMessage.template == "welcome") == 1
        read = (await api.get(f"/v1/signup/{signup_id}")).json()
        assert read["status"] == "PROVISIONED" and read["tenant_id"] == tenant.id
        assert [(step["name"], step["status"]) for step in read["provisioning"]["steps"]] == [
            ("create_tenant", "done"),
            ("create_owner", "done"),
            ("default_settings", "done"),
            ("welcome_mail", "done"),
        ]
        assert all(
            step["finished_at"] and step["error"] is None for step in read["provisioning"]["steps"]
        )
        # Every starter step only touches the database: one job ran them all, one by one.
        step_jobs = await count(database, Job, Job.kind == RUN_STEP)
        assert step_jobs == 1


class TestProPlanReview:
    async def test_missing_url_goes_to_review_then_retry_provisions(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await verified_signup(api, database, signup_settings, plan="pro")
        async with running_worker(database, signup_settings):
            signup = await wait_status(
                database, signup_id, "REVIEW_REQUIRED", "PROVISIONED", "FAILED"
            )
        assert signup.status == "REVIEW_REQUIRED"
        assert signup.review_reason == "missing setting TENANTRY_PROVISIONING_WEBHOOK_URL"

        with host_endpoint(signup_settings, fail_first=0) as (url, calls):
            fixed = signup_settings.model_copy(update={"provisioning_webhook_url": url})
            async with database.session() as session:
                await request_run(session, await session.get(SignupSession, signup_id))  # type: ignore[arg-type]
            async with running_worker(database, fixed):
                signup = await wait_status(database, signup_id, "PROVISIONED")
        assert signup.status == "PROVISIONED" and signup.review_reason is None
        assert len(calls) == 1
        assert await count(database, Tenant) == 1 and await count(database, Membership) == 1


class Host(BaseHTTPRequestHandler):
    """The host application: checks the signature, fails a number of times with 503."""

    secret = ""
    fail_first = 0
    calls: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            Webhook(self.secret).verify(body, dict(self.headers.items()))
            valid = True
        except WebhookVerificationError:
            valid = False
        self.calls.append(
            {"valid": valid, "body": json.loads(body), "key": self.headers["Idempotency-Key"]}
        )
        status = 401 if not valid else 503 if len(self.calls) <= self.fail_first else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def host_endpoint(
    settings: Settings, *, fail_first: int
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    calls: list[dict[str, Any]] = []
    handler = type(
        "Handler",
        (Host,),
        {"secret": webhook_secret(settings), "fail_first": fail_first, "calls": calls},
    )
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/provisioning", calls
    finally:
        server.shutdown()
        server.server_close()


class TestWebhookStep:
    async def test_signed_call_fails_twice_with_503_then_succeeds(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        with host_endpoint(signup_settings, fail_first=2) as (url, calls):
            settings = signup_settings.model_copy(update={"provisioning_webhook_url": url})
            signup_id = await verified_signup(api, database, settings, plan="pro")
            async with running_worker(database, settings):
                signup = await wait_status(
                    database, signup_id, "PROVISIONED", "FAILED", "REVIEW_REQUIRED"
                )
        assert signup.status == "PROVISIONED", (signup.failure_reason, signup.review_reason)
        assert [call["valid"] for call in calls] == [True, True, True]
        assert {call["key"] for call in calls} == {f"{signup_id}:notify_host"}
        assert (
            calls[0]["body"]["tenant_id"] == signup.tenant_id and calls[0]["body"]["slug"] == "acme"
        )
        async with database.session() as session:
            (checkpoint,) = (
                await session.execute(
                    select(ProvisioningStep).where(ProvisioningStep.name == "notify_host")
                )
            ).scalars()
        assert checkpoint.attempts == 3 and checkpoint.output == {"status": 200}
        # The steps before the outside one ran in one job; the host's call got its own, and
        # that job went on with the database-only step after it.
        assert await count(database, Job, Job.kind == RUN_STEP) == 2

    async def test_a_4xx_refusal_goes_to_review(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        with host_endpoint(
            signup_settings.model_copy(update={"provisioning_webhook_secret": "other"}),
            fail_first=0,
        ) as (url, _):
            settings = signup_settings.model_copy(update={"provisioning_webhook_url": url})
            signup_id = await verified_signup(api, database, settings, plan="pro")
            async with running_worker(database, settings):
                signup = await wait_status(
                    database, signup_id, "REVIEW_REQUIRED", "PROVISIONED", "FAILED"
                )
        assert signup.review_reason is not None and "401" in signup.review_reason


@pytest.fixture
def broken_step() -> Iterator[dict[str, bool]]:
    """A host step that fails fatally until fixed."""
    state = {"fixed": False}

    @steps.step("check_quota")
    async def check_quota(_: steps.StepContext) -> dict[str, Any]:
        if not state["fixed"]:
            raise steps.StepFatal("quota service says no")
        return {"quota": "ok"}

    yield state
    steps._steps.pop("check_quota")


class TestFatalStep:
    async def test_fails_with_a_reason_then_retry_after_the_fix_provisions(
        self,
        api: httpx.AsyncClient,
        database: Database,
        signup_settings: Settings,
        broken_step: dict[str, bool],
    ) -> None:
        plans = {**signup_settings.plans, "team": ["create_tenant", "check_quota", "create_owner"]}
        settings = signup_settings.model_copy(update={"plans": plans})
        signup_id = await verified_signup(api, database, settings, plan="starter")
        async with database.session() as session:
            signup = await session.get(SignupSession, signup_id)
            assert signup is not None
            signup.plan = "team"
        async with running_worker(database, settings):
            signup = await wait_status(
                database, signup_id, "FAILED", "PROVISIONED", "REVIEW_REQUIRED"
            )
        assert (
            signup.status == "FAILED"
            and signup.failure_reason == "step check_quota: quota service says no"
        )
        broken_step["fixed"] = True
        async with database.session() as session:
            await request_run(session, await session.get(SignupSession, signup_id))  # type: ignore[arg-type]
        async with running_worker(database, settings):
            signup = await wait_status(database, signup_id, "PROVISIONED")
        assert signup.status == "PROVISIONED"
        assert await count(database, Tenant) == 1
        async with database.session() as session:
            attempts = dict(
                (
                    await session.execute(
                        select(ProvisioningStep.name, ProvisioningStep.attempts).where(
                            ProvisioningStep.signup_id == signup_id
                        )
                    )
                ).all()
            )
        assert attempts == {"create_tenant": 1, "check_quota": 2, "create_owner": 1}
