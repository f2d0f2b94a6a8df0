"""`tenantry webhooks`: the runbook's commands, run as the real CLI beside the database."""

from __future__ import annotations

import json

from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import AuditRecord
from tests.fixtures.cli import run_tenantry
from tests.webhook.conftest import Hooks, count, deliveries, failed_delivery

LOOPBACK_ALLOWED = {"TENANTRY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


async def test_list_attempts_retry_failed_disable_enable(
    hooks: Hooks,
) -> None:
    endpoint = await hooks.endpoint(event_types=["test.*"])
    message_id = await failed_delivery(hooks.database, hooks.owner.tenant.id, endpoint["id"])

    code, output = await run_tenantry(
        hooks.settings, "webhooks", "list", "--tenant", hooks.owner.tenant.id, "--json"
    )
    assert code == 0, output
    (listed,) = json.loads(output)
    assert (listed["id"], listed["event_types"], listed["enabled"]) == (
        endpoint["id"],
        "test.*",
        True,
    )
    assert endpoint["secret"] not in output

    code, output = await run_tenantry(
        hooks.settings, "webhooks", "attempts", endpoint["id"], "--status", "failed", "--json"
    )
    assert code == 0, output
    (attempt,) = json.loads(output)
    assert (attempt["message_id"], attempt["response_status"]) == (message_id, 503)

    code, output = await run_tenantry(
        hooks.settings, "webhooks", "retry-failed", endpoint["id"], "--since", "2h",
        "--reason", "receiver fixed",
    )  # fmt: skip
    assert code == 0 and "1 failed messages" in output, output
    (delivery,) = await deliveries(hooks.database)
    assert (delivery.status, delivery.trigger) == ("pending", "manual")

    code, output = await run_tenantry(
        hooks.settings, "webhooks", "disable", endpoint["id"], "--reason", "flooding us"
    )
    assert code == 0, output
    code, output = await run_tenantry(hooks.settings, "webhooks", "disable", endpoint["id"])
    assert code == 0 and "already" in output
    code, output = await run_tenantry(hooks.settings, "webhooks", "enable", endpoint["id"])
    assert code == 0, output

    code, output = await run_tenantry(
        hooks.settings, "webhooks", "update", endpoint["id"], "--url", hooks.receiver.url("/v2"),
        "--event-types", "test.*,key.Created", "--reason", "moved", env=LOOPBACK_ALLOWED,
    )  # fmt: skip
    assert code == 0 and hooks.receiver.url("/v2") in output, output
    code, output = await run_tenantry(
        hooks.settings, "webhooks", "update", endpoint["id"], "--event-types", "a..b"
    )
    assert code == 2, output
    code, output = await run_tenantry(
        hooks.settings, "webhooks", "update", endpoint["id"], "--url", "http://10.0.0.1/",
        env=LOOPBACK_ALLOWED,
    )  # fmt: skip
    assert code == 1 and "not public" in output, output

    async with hooks.database.session() as session:
        actions = [
            (r.action, r.target, r.reason)
            for r in (
                await session.execute(select(AuditRecord).order_by(AuditRecord.seq))
            ).scalars()
        ]
    assert actions == [
        ("webhook_endpoint.retry_failed", endpoint["id"], "receiver fixed"),
        ("webhook_endpoint.disable", endpoint["id"], "flooding us"),
        ("webhook_endpoint.disable", endpoint["id"], None),
        ("webhook_endpoint.enable", endpoint["id"], None),
        ("webhook_endpoint.update", endpoint["id"], "moved"),
    ]


async def test_an_unknown_endpoint_exits_1(webhook_settings: Settings, database: Database) -> None:
    code, output = await run_tenantry(webhook_settings, "webhooks", "attempts", "whe_nope")
    assert code == 1 and "whe_nope" in output
    assert await count(database, AuditRecord) == 0
