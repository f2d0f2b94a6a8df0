"""`/v1/tenants/{tenant_id}/webhook-endpoints` and the operators' routes over real databases."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock, utcnow
from tenantry.models import AuditRecord, WebhookDelivery
from tests.conftest import AppFactory
from tests.fixtures.factories import create_member, create_tenant, operator_headers, tokens_for
from tests.fixtures.secrets import seen
from tests.fixtures.workers import wait_for
from tests.webhook.conftest import (
    Owner,
    Receiver,
    attempts,
    count,
    deliveries,
    dispatching,
    emit,
    register,
    signed_in_now,
)


@pytest.fixture
async def client(client_for: AppFactory, webhook_settings: Settings) -> httpx.AsyncClient:  # type: ignore[misc]
    async with client_for(webhook_settings) as client:
        yield client


async def test_the_secret_is_shown_once_and_never_read_back(
    client: httpx.AsyncClient, owner: Owner, receiver: Receiver
) -> None:
    created = await register(
        client,
        owner,
        receiver.url(),
        description="billing",
        event_types=["activation.*", "key.Created"],
    )
    assert created["id"].startswith("whe_")
    assert created["secret"].startswith("whsec_")
    assert 24 <= len(base64.b64decode(created["secret"].removeprefix("whsec_"))) <= 64
    assert created["enabled"] is True and created["event_types"] == ["activation.*", "key.Created"]
    listed = (await client.get(owner.base, headers=owner.headers)).json()
    one = (await client.get(f"{owner.base}/{created['id']}", headers=owner.headers)).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0] and "secret" not in one
    assert created["secret"] not in str(listed) + str(one)


async def test_the_same_idempotency_key_replays_the_creation(
    client: httpx.AsyncClient, owner: Owner, receiver: Receiver
) -> None:
    headers = {**owner.headers, "Idempotency-Key": "create-1"}
    body = {"url": receiver.url()}
    first = await client.post(owner.base, json=body, headers=headers)
    again = await client.post(owner.base, json=body, headers=headers)
    other = await client.post(owner.base, json={"url": receiver.url("/x")}, headers=headers)
    seen(first.json()["secret"])
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_patch_changes_what_it_names_and_delete_removes(
    client: httpx.AsyncClient, owner: Owner, receiver: Receiver
) -> None:
    created = await register(client, owner, receiver.url())
    path = f"{owner.base}/{created['id']}"
    changed = await client.patch(
        path,
        json={"description": "new", "event_types": ["job.*"], "enabled": False},
        headers=owner.headers,
    )
    assert changed.status_code == 200
    body = changed.json()
    assert (body["description"], body["event_types"], body["enabled"]) == ("new", ["job.*"], False)
    assert body["disabled_reason"].startswith("disabled by usr_")
    assert body["url"] == receiver.url()
    enabled = await client.patch(path, json={"enabled": True}, headers=owner.headers)
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None
    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    gone = await client.get(path, headers=owner.headers)
    assert gone.status_code == 404 and gone.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": ""},
        {"url": "http://127.0.0.1/", "event_types": ["a..b"]},
        {"url": "http://127.0.0.1/", "event_types": ["*"]},
        {"url": "http://127.0.0.1/", "rate_limit_per_s": 0},
        {"url": "http://127.0.0.1/", "secret": "mine"},
    ],
)
async def test_bad_bodies_are_validation_errors(
    client: httpx.AsyncClient, owner: Owner, body: dict[str, object]
) -> None:
    response = await client.post(owner.base, json=body, headers=owner.headers)
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION"


async def test_a_rotation_grace_past_seven_days_is_refused(
    client: httpx.AsyncClient, owner: Owner, receiver: Receiver
) -> None:
    created = await register(client, owner, receiver.url())
    response = await client.post(
        f"{owner.base}/{created['id']}/rotate-secret", json={"grace": "8d"}, headers=owner.headers
    )
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION"


async def test_members_and_other_tenants_are_refused_integrations_need_the_scope(
    client: httpx.AsyncClient,
    database: Database,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    member = await create_member(database, owner.tenant.id, "member")
    member_token = tokens_for(webhook_settings, member.id, owner.tenant.id, "member")
    as_member = {"Authorization": f"Bearer {member_token}"}
    refused = await client.get(owner.base, headers=as_member)
    assert refused.status_code == 403 and refused.json()["reason"] == "role_mismatch"
    other = await create_tenant(database)
    stranger = await create_member(database, other.id, "owner")
    as_stranger = {
        "Authorization": f"Bearer {tokens_for(webhook_settings, stranger.id, other.id, 'owner')}"
    }
    refused = await client.get(owner.base, headers=as_stranger)
    assert refused.status_code == 403 and refused.json()["reason"] == "tenant_mismatch"

    async def integration(scopes: list[str]) -> dict[str, str]:
        key = await client.post(
            f"/v1/tenants/{owner.tenant.id}/keys",
            json={"name": "hooks", "scopes": scopes},
            headers=owner.headers,
        )
        token = await client.post(
            "/v1/auth/token",
            json={"grant_type": "client_credentials", "client_secret": seen(key.json()["secret"])},
        )
        return {"Authorization": f"Bearer {seen(token.json()['access_token'])}"}

    without = await client.post(
        owner.base, json={"url": receiver.url()}, headers=await integration(["jobs:read"])
    )
    assert without.status_code == 403 and without.json()["reason"] == "scope_missing"
    scoped = await client.post(
        owner.base, json={"url": receiver.url()}, headers=await integration(["webhooks:manage"])
    )
    assert scoped.status_code == 201
    seen(scoped.json()["secret"])


async def test_attempts_retry_and_recover(
    client: httpx.AsyncClient,
    database: Database,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    failing = True
    receiver.reply = lambda call: (500, {}, b"no") if failing else (204, {}, b"")
    created = await register(client, owner, receiver.url())
    path = f"{owner.base}/{created['id']}"
    started = utcnow()
    await emit(database, owner.tenant.id, n=1)
    await emit(database, owner.tenant.id, n=2)
    # Spend the whole schedule (the days it spans do not disable the endpoint here): both
    # messages fail for good.
    patient = webhook_settings.model_copy(update={"webhook_disable_after": timedelta(days=365)})
    async with dispatching(patient):

        async def failed() -> bool:
            clock.advance(timedelta(hours=11))
            return await count(database, WebhookDelivery, WebhookDelivery.status == "failed") == 2

        await wait_for(failed)
        headers = signed_in_now(owner, webhook_settings)
        listed = (
            await client.get(f"{path}/attempts?status=failed&limit=3", headers=headers)
        ).json()
        assert len(listed["data"]) == 3 and listed["next_cursor"]
        first = listed["data"][0]
        assert set(first) >= {
            "id", "message_id", "event_type", "attempt", "status", "response_status",
            "duration_ms", "error", "trigger", "created_at", "next_attempt_at",
        }  # fmt: skip
        assert (first["status"], first["response_status"], first["trigger"]) == (
            "failed",
            500,
            "scheduled",
        )
        failing = False
        one = first["message_id"]
        retried = await client.post(f"{path}/messages/{one}/retry", headers=headers)
        assert retried.status_code == 202

        async def manual_succeeded() -> bool:
            return any(
                a.trigger == "manual" and a.status == "succeeded" for a in await attempts(database)
            )

        await wait_for(manual_succeeded)
        since = (started - timedelta(minutes=1)).isoformat()
        recovered = await client.post(f"{path}/recover", json={"since": since}, headers=headers)
        assert recovered.status_code == 202 and recovered.json() == {"messages": 1}

        async def all_succeeded() -> bool:
            return (
                await count(database, WebhookDelivery, WebhookDelivery.status == "succeeded") == 2
            )

        await wait_for(all_succeeded)
    missing = await client.post(f"{path}/messages/msg_nope/retry", headers=headers)
    assert missing.status_code == 404
    assert {d.trigger for d in await deliveries(database)} == {"scheduled"}


async def test_operators_list_and_correct_an_endpoint_and_it_is_audited(
    client: httpx.AsyncClient,
    database: Database,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    created = await register(client, owner, receiver.url())
    admin = operator_headers(webhook_settings, subject="ops_webhooks")
    listed = await client.get(
        f"/v1/admin/tenants/{owner.tenant.id}/webhook-endpoints", headers=admin
    )
    assert [e["id"] for e in listed.json()["data"]] == [created["id"]]
    corrected = await client.patch(
        f"/v1/admin/webhook-endpoints/{created['id']}",
        json={"url": receiver.url("/fixed"), "reason": "customer asked, ticket 42"},
        headers=admin,
    )
    assert corrected.status_code == 200 and corrected.json()["url"] == receiver.url("/fixed")
    async with database.session() as session:
        (record,) = (
            await session.execute(
                select(AuditRecord).where(AuditRecord.action == "webhook_endpoint.update")
            )
        ).scalars()
    assert (record.actor, record.target, record.reason) == (
        "ops_webhooks",
        created["id"],
        "customer asked, ticket 42",
    )
    assert record.before["url"] == receiver.url() and record.after["url"] == receiver.url("/fixed")  # type: ignore[index]
    as_owner = await client.get(
        f"/v1/admin/tenants/{owner.tenant.id}/webhook-endpoints", headers=owner.headers
    )
    assert as_owner.status_code == 403
