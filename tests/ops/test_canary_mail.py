"""The canary's mail is never sent: it waits in the outbox, out of the backlog and the
integrity check, and a service token reads it back to go on with the flow."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select, update

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.models import Job, MailMessage
from tenantry.ops import integrity, slo
from tests.conftest import AppFactory
from tests.fixtures.secrets import seen
from tests.fixtures.signup import from_address, signup_body

CANARY = "probe@canary.tenantry.invalid"
INBOX = "/v1/internal/canary/messages"


def service(settings: Settings) -> dict[str, str]:
    token, _ = build_token_issuer(settings).mint(
        subject="svc_canary",
        audience=Audience.INTERNAL,
        ttl=timedelta(minutes=5),
        roles=["service"],
    )
    return {"Authorization": f"Bearer {token}"}


async def test_the_canary_reads_its_code_back_and_verifies(
    client_for: AppFactory, signup_settings: Settings, database: Database
) -> None:
    async with client_for(signup_settings) as api:
        started = await api.post(
            "/v1/signup", json=signup_body(slug="probe", email=CANARY), headers=from_address()
        )
        assert started.status_code == 201, started.text
        inbox = await api.get(INBOX, params={"to": CANARY}, headers=service(signup_settings))
        assert inbox.status_code == 200, inbox.text
        (message,) = inbox.json()["items"]
        assert message["template"] == "signup_code"
        code = seen(message["secrets"]["code"])
        verified = await api.post(
            f"/v1/signup/{started.json()['id']}/verify", json={"code": code}, headers=from_address()
        )
        assert verified.status_code == 200, verified.text
    async with database.session() as session:
        sends = select(func.count()).select_from(Job).where(Job.kind == "mail.send")
        assert (await session.execute(sends)).scalar_one() == 0, "canary mail is never sent"


async def test_only_canary_mail_and_only_for_services(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    refused = await client.get(
        INBOX, params={"to": "ada@acme.example.com"}, headers=service(settings)
    )
    assert refused.status_code == 400 and refused.json()["code"] == "VALIDATION"
    assert (await client.get(INBOX, params={"to": CANARY})).status_code == 401
    token, _ = build_token_issuer(settings).mint(
        subject="usr_x",
        audience=Audience.TENANT,
        ttl=timedelta(minutes=5),
        roles=["owner"],
        tenant_id="ten_x",
    )
    tenant = {"Authorization": f"Bearer {token}"}
    assert (await client.get(INBOX, params={"to": CANARY}, headers=tenant)).status_code == 403


async def test_held_mail_is_no_backlog_and_no_finding(
    client_for: AppFactory, signup_settings: Settings, database: Database
) -> None:
    async with client_for(signup_settings) as api:
        for n in range(3):
            body = signup_body(slug=f"probe-{n}", email=f"probe{n}@canary.tenantry.invalid")
            assert (
                await api.post("/v1/signup", json=body, headers=from_address())
            ).status_code == 201
    async with database.session() as session:
        await session.execute(update(MailMessage).values(created_at=utcnow() - timedelta(hours=2)))
    async with database.session() as session:
        report = await slo.check(session, signup_settings, None)
        backlog = next(o for o in report["objectives"] if o["name"] == "mail_backlog")
        assert backlog["value"] == 0
        assert await integrity.check(session, signup_settings) == []
