"""Incidents: opened, posted as they move and resolved from the CLI; the notice is public at
GET /v1/status and /status while open; --notify mails the affected tenants' owners only;
the timeline holds the posts, operators' actions and canary failures of the window."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.flag import service as flags
from tenantry.kit.clock import utcnow
from tenantry.models import MailMessage
from tenantry.ops import canary_runs
from tenantry.ops.canary import Run
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_member, create_tenant


async def tenantry(settings: Settings, *args: str) -> str:
    code, output = await run_tenantry(settings, *args)
    assert code == 0, output
    return output


async def test_an_incident_from_open_to_resolved(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    hit, spared = await create_tenant(database), await create_tenant(database)
    owner = await create_member(database, hit.id, "owner")
    await create_member(database, spared.id, "owner")
    assert (await client.get("/v1/status")).json() == {"status": "operational", "incident": None}

    incident_id = (
        await tenantry(
            settings,
            "incident",
            "open",
            "--title",
            "Sign-in is slow",
            "--impact",
            "Sign-in takes up to a minute for some workspaces.",
            "--tenants",
            hit.id,
            "--notify",
        )
    ).strip()
    status = (await client.get("/v1/status")).json()
    assert status["status"] == "incident"
    assert (status["incident"]["id"], status["incident"]["state"]) == (incident_id, "investigating")
    page = await client.get("/status")
    assert page.status_code == 200 and "Sign-in is slow" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]

    async with database.session() as session:
        await flags.set_flag(session, "login", False, reason="shed load", by="ops")
        run = Run(failure="FAIL_AUTH", failed_stage="exchange", error="answered 503")
        canary_runs.record(session, run, started_at=utcnow(), origin="schedule")
    await tenantry(
        settings,
        "incident", "post", incident_id, "--state", "identified",
        "--message", "A database index was missing; rebuilding it.", "--notify",
    )  # fmt: skip
    await tenantry(
        settings,
        "incident", "post", incident_id, "--state", "resolved",
        "--message", "Sign-in is fast again.", "--notify",
    )  # fmt: skip
    assert (await client.get("/v1/status")).json()["status"] == "operational"
    code, output = await run_tenantry(
        settings, "incident", "post", incident_id, "--state", "monitoring", "--message", "x"
    )
    assert code == 1 and "resolved" in output

    async with database.session() as session:
        mails = (
            await session.execute(
                select(MailMessage.to_address, MailMessage.subject)
                .where(MailMessage.template == "incident")
                .order_by(MailMessage.created_at)
            )
        ).all()
    assert [to for to, _ in mails] == [owner.email] * 3
    assert [subject.split(":")[0] for _, subject in mails] == ["Incident", "Update", "Resolved"]

    timeline = await tenantry(settings, "incident", "timeline", incident_id)
    assert timeline.startswith(f"# Sign-in is slow ({incident_id})")
    lines = [line for line in timeline.splitlines() if line.startswith("- 20")]
    assert "**INVESTIGATING**" in lines[0] and "**RESOLVED**" in lines[-1]
    assert any("operator `flag.set` on login" in line and "shed load" in line for line in lines)
    assert any("canary FAIL_AUTH at exchange" in line for line in lines)

    listed = await tenantry(settings, "audit", "list", "--action", "incident.post", "--json")
    assert listed.count('"incident.post"') == 2
