"""The tenant portal: an owner signs in by email code, creates a key (its secret shown once),
creates a webhook endpoint and sends a failed message again to a real receiver; members
and forged forms are refused. In Chromium against `tenantry up`, with axe-core."""

from __future__ import annotations

import re
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from playwright.async_api import async_playwright
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import Membership
from tests.cli.test_servers import _env, running
from tests.conftest import AppFactory
from tests.fixtures.axe import serious_violations, unreachable_by_keyboard
from tests.fixtures.browser import CHROMIUM_ARGS
from tests.fixtures.factories import create_member, create_tenant
from tests.fixtures.secrets import seen
from tests.fixtures.signup import mailed_code, mailed_secret
from tests.fixtures.workers import wait_for
from tests.webhook.conftest import Receiver, emit

OWNER = "olive@acme.example.com"


async def _code(data_dir: Path, to: str) -> str:
    async def mailed() -> bool:
        return mailed_code(data_dir, to) is not None

    await wait_for(mailed)
    code = mailed_code(data_dir, to)
    assert code is not None
    return code


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_an_owner_makes_a_key_and_replays_a_failed_webhook(
    database: Database,
    signup_settings: Settings,
    receiver: Receiver,
    chromium: str,
    axe_script: Path,
    tmp_path: Path,
) -> None:
    tenant = await create_tenant(database, name="Acme")
    await create_member(database, tenant.id, "owner", email=OWNER)
    failures = iter([True])
    receiver.reply = lambda call: (500, {}, b"down") if next(failures, False) else (200, {}, b"")
    data_dir = signup_settings.data_dir
    env = _env(
        data_dir,
        TENANTRY_DATABASE_URL=signup_settings.resolved_database_url,
        TENANTRY_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    findings: dict[str, list[dict[str, object]]] = {}
    with running(["up"], env, tmp_path) as (base_url, _):
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context(bypass_csp=True)).new_page()

                async def check() -> None:
                    name = f"{len(findings)} {page.url}"
                    findings[name] = await serious_violations(page, axe_script)
                    findings[name] += await unreachable_by_keyboard(page)

                await page.goto(f"{base_url}/portal")
                await check()
                await page.get_by_label("Your email").fill(OWNER)
                await page.get_by_role("button", name="Send me a code").click()
                await page.get_by_label("Code").fill(await _code(data_dir, OWNER))
                await page.get_by_role("button", name="Sign in").click()
                await page.get_by_role("heading", name="Webhooks").wait_for()
                await check()

                await page.get_by_role("link", name="Integration keys").click()
                await page.get_by_label("Name").fill("ci")
                await page.get_by_label("jobs:read").check()
                await page.get_by_role("button", name="Create key").click()
                secret = seen(await page.get_by_label("Secret").input_value())
                assert secret.startswith("tnt_sk_")
                await check()
                await page.get_by_role("link", name="Done").click()
                listed = await page.content()
                assert "ci" in listed and secret not in listed  # shown once, never again
                await check()

                await page.get_by_role("link", name="Webhooks").click()
                await page.get_by_label("URL").fill(receiver.url())
                await page.get_by_role("button", name="Create endpoint").click()
                assert (await page.get_by_label("Secret").input_value()).startswith("whsec_")
                seen(await page.get_by_label("Secret").input_value())
                await page.get_by_role("link", name="Done").click()
                await emit(database, tenant.id, "key.Created")

                async def failed_once() -> bool:
                    return len(receiver.calls) == 1

                await wait_for(failed_once)
                await page.get_by_role("link", name=receiver.url()).click()
                button = page.get_by_role("button", name="Send msg_")
                await button.wait_for()
                await check()
                await button.first.click()
                await page.get_by_text("goes again now.").wait_for()

                async def delivered() -> bool:
                    return len(receiver.calls) == 2

                await wait_for(delivered)
            finally:
                await browser.close()
    first, again = receiver.calls
    assert first.message_id == again.message_id
    assert findings == {name: [] for name in findings} and len(findings) == 5


async def test_members_and_forged_forms_are_refused(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    tenant = await create_tenant(database)
    await create_member(database, tenant.id, "owner", email=OWNER)
    await create_member(database, tenant.id, "member", email="max@acme.example.com")
    async with client_for(signup_settings) as owner, client_for(signup_settings) as member:
        for client, email in ((owner, OWNER), (member, "max@acme.example.com")):
            await client.post("/portal/sign-in", data={"email": email})
            code = await mailed_secret(database, signup_settings, email, "login_code", "code")
            signed = await client.post("/portal/sign-in/code", data={"code": code})
            assert signed.status_code == 303
        refused = await member.get("/portal/keys")
        assert refused.status_code == 403 and "owners and admins" in refused.text
        forged = await owner.post("/portal/keys", data={"name": "x", "scopes": "jobs:read"})
        assert forged.status_code == 403 and "did not come from the portal" in forged.text
        keys = await owner.get("/portal/keys")  # the forged form created nothing
        assert keys.status_code == 200 and "No key yet." in keys.text


async def _signed_in(client: object, database: Database, settings: Settings, email: str) -> str:
    """Signed in through the portal's forms; the CSRF value of its pages."""
    await client.post("/portal/sign-in", data={"email": email})  # type: ignore[attr-defined]
    code = await mailed_secret(database, settings, email, "login_code", "code")
    await client.post("/portal/sign-in/code", data={"code": code})  # type: ignore[attr-defined]
    page = await client.get("/portal/members")  # type: ignore[attr-defined]
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_members_and_invitations_keep_an_owner_and_only_owners_make_owners(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    tenant = await create_tenant(database)
    await create_member(database, tenant.id, "owner", email=OWNER)
    admin = await create_member(database, tenant.id, "admin", email="ada@acme.example.com")
    member = await create_member(database, tenant.id, "member", email="max@acme.example.com")
    async with client_for(signup_settings) as as_owner, client_for(signup_settings) as as_admin:
        owner_csrf = await _signed_in(as_owner, database, signup_settings, OWNER)
        admin_csrf = await _signed_in(as_admin, database, signup_settings, admin.email)

        made = await as_admin.post(
            f"/portal/members/{member.id}/role", data={"role": "owner", "csrf": admin_csrf}
        )
        assert "Only an owner" in unquote_plus(made.headers["location"])
        invited = await as_admin.post(
            "/portal/invitations",
            data={"email": "new@acme.example.com", "role": "member", "csrf": admin_csrf},
        )
        assert "on its way" in unquote_plus(invited.headers["location"])
        page = await as_owner.get("/portal/members")
        assert "new@acme.example.com" in page.text and "pending" in page.text

        promoted = await as_owner.post(
            f"/portal/members/{member.id}/role", data={"role": "admin", "csrf": owner_csrf}
        )
        assert "admin now" in unquote_plus(promoted.headers["location"])
        removed = await as_owner.post(
            f"/portal/members/{admin.id}/remove", data={"csrf": owner_csrf}
        )
        assert "removed" in unquote_plus(removed.headers["location"])
        # Removed, the admin's next write is refused at once, whatever their token says.
        after = await as_admin.post(
            "/portal/invitations",
            data={"email": "late@acme.example.com", "role": "member", "csrf": admin_csrf},
        )
        assert after.status_code == 403
    async with database.session() as session:
        rows = await session.execute(select(Membership.user_id, Membership.role))
        roles = {user_id: role for user_id, role in rows}
    assert roles[member.id] == "admin" and admin.id not in roles


async def test_a_key_is_revoked_and_a_webhook_secret_rotated_from_the_portal(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    settings = signup_settings.model_copy(
        update={"webhook_allowed_networks": [ip_network("127.0.0.0/8")]}
    )
    tenant = await create_tenant(database)
    await create_member(database, tenant.id, "owner", email=OWNER)
    async with client_for(settings) as owner:
        csrf = await _signed_in(owner, database, settings, OWNER)
        made = await owner.post(
            "/portal/keys", data={"name": "ci", "scopes": "jobs:read", "csrf": csrf}
        )
        assert made.status_code == 201 and seen(_secret(made.text)).startswith("tnt_sk_")
        key_id = re.search(r"/portal/keys/(key_\w+)/revoke", (await owner.get("/portal/keys")).text)
        assert key_id is not None
        revoked = await owner.post(f"/portal/keys/{key_id.group(1)}/revoke", data={"csrf": csrf})
        assert "revoked" in unquote_plus(revoked.headers["location"])

        created = await owner.post(
            "/portal/webhooks", data={"url": "http://127.0.0.1:9/hook", "csrf": csrf}
        )
        first = seen(_secret(created.text))
        listed = (await owner.get("/portal/webhooks")).text
        endpoint_id = re.search(r"/portal/webhooks/(whe_\w+)", listed)
        assert endpoint_id is not None
        rotated = await owner.post(
            f"/portal/webhooks/{endpoint_id.group(1)}/rotate", data={"csrf": csrf}
        )
        second = seen(_secret(rotated.text))
        assert second.startswith("whsec_") and second != first


def _secret(html: str) -> str:
    found = re.search(r'id="secret" readonly value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)
