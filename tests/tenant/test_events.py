"""GET /v1/tenants/{id}/events: the tenant's events in order, filtered, paged with `after`."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.secrets import seen
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem


@pytest.fixture
def owner(provisioned_owner: dict[str, str]) -> dict[str, str]:
    """These tests are about what the signup flow leaves: the owner it provisioned."""
    return provisioned_owner


async def integration_token(
    api: httpx.AsyncClient, owner: dict[str, str], scopes: list[str]
) -> str:
    created = await api.post(
        f"/v1/tenants/{owner['tenant_id']}/keys",
        json={"name": "events", "scopes": scopes},
        headers=auth(owner["access_token"]),
    )
    secret = seen(created.json()["secret"])
    exchanged = await api.post(
        "/v1/auth/token", json={"grant_type": "client_credentials", "client_secret": secret}
    )
    return str(exchanged.json()["access_token"])


async def test_owner_reads_the_provisioning_story_in_order(
    api: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    path = f"/v1/tenants/{owner['tenant_id']}/events"
    events = (await api.get(path, headers=auth(owner["access_token"]))).json()
    types = [e["type"] for e in events["data"]]
    assert types[-1] == "activation.TenantProvisioned"
    assert {e["tenant_id"] for e in events["data"]} == {owner["tenant_id"]}
    assert all(
        e["id"].startswith("evt_") and e["occurred_at"] and "trace_id" in e for e in events["data"]
    )

    only = (
        await api.get(
            path,
            params={"type": "activation.TenantProvisioned"},
            headers=auth(owner["access_token"]),
        )
    ).json()
    assert [e["type"] for e in only["data"]] == ["activation.TenantProvisioned"]

    first = (await api.get(path, params={"limit": 1}, headers=auth(owner["access_token"]))).json()
    assert first["next_cursor"] == first["data"][0]["id"]
    rest = (
        await api.get(
            path, params={"after": first["next_cursor"]}, headers=auth(owner["access_token"])
        )
    ).json()
    assert [e["id"] for e in first["data"] + rest["data"]] == [e["id"] for e in events["data"]]

    bad = await api.get(path, params={"after": "evt_nope"}, headers=auth(owner["access_token"]))
    assert_problem(bad, 400, "VALIDATION")


async def test_integrations_need_events_read(api: httpx.AsyncClient, owner: dict[str, str]) -> None:
    path = f"/v1/tenants/{owner['tenant_id']}/events"
    reader = await integration_token(api, owner, ["events:read"])
    assert (await api.get(path, headers=auth(reader))).status_code == 200
    jobs_only = await integration_token(api, owner, ["jobs:read"])
    assert (
        assert_problem(await api.get(path, headers=auth(jobs_only)), 403, "FORBIDDEN")["reason"]
        == "scope_missing"
    )
    other = await api.get("/v1/tenants/ten_other/events", headers=auth(reader))
    assert assert_problem(other, 403, "FORBIDDEN")["reason"] == "tenant_mismatch"
