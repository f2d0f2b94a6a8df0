"""Invitations and activation over HTTP: the funnel from signup to an activated member, the
rules of pending invitations, links that work once, the hosted page, member management."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.invitation import service
from tenantry.kit.clock import clock, utcnow
from tenantry.models import Invitation, Membership, User
from tests.conftest import AppFactory, LogCapture
from tests.fixtures.factories import member_token
from tests.fixtures.secrets import seen
from tests.fixtures.signup import invitation_token, signup_body
from tests.tenant.conftest import auth, member_of_another_tenant
from tests.test_errors import assert_problem

INVITEE = "bea@acme.example.com"
OWNER_EMAIL = signup_body()["email"]


async def invite(
    api: httpx.AsyncClient,
    owner: dict[str, str],
    email: str = INVITEE,
    role: str = "member",
    bearer: str | None = None,
) -> httpx.Response:
    return await api.post(
        f"/v1/tenants/{owner['tenant_id']}/invitations",
        json={"email": email, "role": role},
        headers=auth(bearer or owner["access_token"]),
    )


async def accept(api: httpx.AsyncClient, token: str, **extra: str) -> httpx.Response:
    return await api.post("/v1/invitations/accept", json={"token": token, "name": "Bea", **extra})


def token_for(settings: Settings, tenant_id: str, role: str, subject: str = "usr_x") -> str:
    minted, _ = build_token_issuer(settings).mint(
        subject=subject,
        audience=Audience.TENANT,
        ttl=timedelta(minutes=15),
        roles=[role],
        tenant_id=tenant_id,
    )
    return minted


@dataclass(frozen=True)
class Invited:
    id: str
    expires_at: str
    token: str


@pytest.fixture
async def invited(
    api: httpx.AsyncClient, owner: dict[str, str], database: Database, signup_settings: Settings
) -> Invited:
    """A pending member invitation to INVITEE and the token of its mailed link."""
    body = (await invite(api, owner)).json()
    token = await invitation_token(database, signup_settings, INVITEE)
    return Invited(body["id"], body["expires_at"], token)


class TestFunnel:
    @pytest.fixture
    def owner(self, provisioned_owner: dict[str, str]) -> dict[str, str]:
        """The end-to-end funnel: signup, provisioning, invitation, activation."""
        return provisioned_owner

    async def test_owner_invites_the_invitee_activates_and_works_on_the_tenant(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        database: Database,
        signup_settings: Settings,
    ) -> None:
        created = await invite(api, owner, role="admin")
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["email"], body["role"], body["status"]) == (INVITEE, "admin", "pending")
        assert body["id"].startswith("inv_") and body["expires_at"]

        token = await invitation_token(database, signup_settings, INVITEE)
        looked = await api.get("/v1/invitations/lookup", params={"token": token})
        assert looked.json() | {"expires_at": None} == {
            "tenant_name": "Acme",
            "email": INVITEE,
            "role": "admin",
            "status": "pending",
            "expires_at": None,
        }

        accepted = await accept(api, token, password="correct horse battery")
        assert accepted.status_code == 200, accepted.text
        tokens = accepted.json()
        seen(tokens["refresh_token"])
        assert tokens["tenant_id"] == owner["tenant_id"]
        tenant = await api.get(
            f"/v1/tenants/{owner['tenant_id']}", headers=auth(tokens["access_token"])
        )
        assert tenant.status_code == 200
        members = await api.get(
            f"/v1/tenants/{owner['tenant_id']}/members", headers=auth(owner["access_token"])
        )
        assert {(m["email"], m["role"]) for m in members.json()["data"]} == {
            (OWNER_EMAIL, "owner"),
            (INVITEE, "admin"),
        }

        events = await api.get(
            f"/v1/tenants/{owner['tenant_id']}/events", headers=auth(owner["access_token"])
        )
        activation = [e for e in events.json()["data"] if e["type"].startswith("activation.")]
        assert [e["type"] for e in activation][-3:] == [
            "activation.InvitationCreated",
            "activation.InvitationAccepted",
            "activation.ActivationCompleted",
        ]
        assert "activation.TenantProvisioned" in [e["type"] for e in activation]
        created_event, accepted_event, completed_event = activation[-3:]
        assert accepted_event["trace_id"] == completed_event["trace_id"]  # one request
        assert created_event["trace_id"] != accepted_event["trace_id"]
        assert all(e["trace_id"] for e in activation[-3:])

    async def test_an_existing_user_just_gains_a_membership(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        database: Database,
        signup_settings: Settings,
    ) -> None:
        async with database.session() as session:
            session.add(User(id="usr_elsewhere", email=INVITEE, name="Bea B.", created_at=utcnow()))
        await member_of_another_tenant(database, "ten_other", "usr_elsewhere", "owner")
        await invite(api, owner)
        token = await invitation_token(database, signup_settings, INVITEE)
        accepted = await accept(api, token, name="Someone Else", password="a new password!")
        assert accepted.status_code == 200 and accepted.json()["user_id"] == "usr_elsewhere"
        seen(accepted.json()["refresh_token"])
        async with database.session() as session:
            user = await session.get(User, "usr_elsewhere")
            assert user is not None and user.name == "Bea B." and user.password_hash is None
            roles = await session.execute(
                select(Membership.tenant_id, Membership.role).where(
                    Membership.user_id == "usr_elsewhere"
                )
            )
            assert set(roles.all()) == {("ten_other", "owner"), (owner["tenant_id"], "member")}


class TestRules:
    async def test_one_pending_per_address_and_members_are_refused(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        assert (await invite(api, owner)).status_code == 201
        assert_problem(await invite(api, owner, email=INVITEE.upper()), 409, "INVITATION_PENDING")
        assert_problem(await invite(api, owner, email=OWNER_EMAIL), 409, "ALREADY_MEMBER")
        assert_problem(await invite(api, owner, role="root"), 400, "VALIDATION")
        assert_problem(await invite(api, owner, email="not-an-email"), 400, "VALIDATION")

    async def test_who_may_invite(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        database: Database,
        signup_settings: Settings,
    ) -> None:
        _, member = await member_token(database, signup_settings, owner["tenant_id"], "member")
        refused = await invite(api, owner, bearer=member)
        assert assert_problem(refused, 403, "FORBIDDEN")["reason"] == "role_mismatch"
        _, admin = await member_token(database, signup_settings, owner["tenant_id"], "admin")
        as_owner = await invite(api, owner, role="owner", bearer=admin)
        assert assert_problem(as_owner, 403, "FORBIDDEN")["reason"] == "role_mismatch"
        assert (await invite(api, owner, role="admin", bearer=admin)).status_code == 201
        other = token_for(signup_settings, "ten_elsewhere", "owner")
        crossing = await invite(api, owner, bearer=other)
        assert assert_problem(crossing, 403, "FORBIDDEN")["reason"] == "tenant_mismatch"

    async def test_a_token_works_once_under_ten_concurrent_accepts(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        invited: Invited,
        database: Database,
    ) -> None:
        responses = await asyncio.gather(*(accept(api, invited.token) for _ in range(10)))
        assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409, "TOKEN_USED")
            else:
                seen(response.json()["refresh_token"])
        async with database.session() as session:
            count = await session.execute(select(Membership).where(Membership.role == "member"))
            assert len(count.all()) == 1

    async def test_resend_kills_the_old_link(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        invited: Invited,
        database: Database,
        signup_settings: Settings,
    ) -> None:
        old = invited.token
        clock.advance(timedelta(hours=70))
        path = f"/v1/tenants/{owner['tenant_id']}/invitations/{invited.id}"
        fresh = token_for(signup_settings, owner["tenant_id"], "owner", owner["user_id"])
        resent = await api.post(f"{path}/resend", headers=auth(fresh))
        assert resent.status_code == 200
        assert resent.json()["expires_at"] > invited.expires_at  # the expiry restarts
        new = await invitation_token(database, signup_settings, INVITEE)
        assert new != old
        assert_problem(await accept(api, old), 404, "TOKEN_INVALID")
        clock.advance(timedelta(hours=10))  # past the first expiry, within the new one
        accepted = await accept(api, new)
        assert accepted.status_code == 200
        seen(accepted.json()["refresh_token"])

    async def test_revoke(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        invited: Invited,
    ) -> None:
        path = f"/v1/tenants/{owner['tenant_id']}/invitations/{invited.id}/revoke"
        revoked = await api.post(path, headers=auth(owner["access_token"]))
        assert revoked.json()["status"] == "revoked"
        assert_problem(
            await api.post(path, headers=auth(owner["access_token"])), 409, "INVITATION_STATE"
        )
        assert_problem(await accept(api, invited.token), 410, "TOKEN_REVOKED")
        assert (await invite(api, owner)).status_code == 201  # the address is free again

    async def test_expiry_and_the_sweep(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        invited: Invited,
        database: Database,
        signup_settings: Settings,
    ) -> None:
        clock.advance(timedelta(hours=72, seconds=1))
        looked = await api.get("/v1/invitations/lookup", params={"token": invited.token})
        assert_problem(looked, 410, "TOKEN_EXPIRED")
        listing = await api.get(
            f"/v1/tenants/{owner['tenant_id']}/invitations?status=expired",
            headers=auth(token_for(signup_settings, owner["tenant_id"], "owner")),
        )
        assert [i["status"] for i in listing.json()["data"]] == ["expired"]
        async with database.session() as session:
            report = await service.sweep(session, signup_settings)
        assert (report.expired, report.deleted) == (1, 0)
        clock.advance(timedelta(days=7, seconds=1))
        async with database.session() as session:
            report = await service.sweep(session, signup_settings)
            assert (report.expired, report.deleted) == (0, 1)
            assert (await session.execute(select(Invitation))).first() is None

    async def test_failed_links_are_counted_limited_and_logged(
        self, api: httpx.AsyncClient, logs: LogCapture
    ) -> None:
        address = {"X-Forwarded-For": "198.51.100.7"}
        statuses = []
        for n in range(12):
            response = await api.get(
                "/v1/invitations/lookup", params={"token": f"guess-{n}"}, headers=address
            )
            statuses.append(response.status_code)
        assert statuses == [404] * 10 + [429] * 2
        assert_problem(
            await api.get("/v1/invitations/lookup", params={"token": "x"}, headers=address),
            429,
            "RATE_LIMITED",
        )
        (burst, *_) = logs.events("token_validation_burst")
        assert burst["ip"] == "198.51.100.7" and burst["level"] == "warning"
        metrics = (await api.get("/metrics")).text
        assert 'tenantry_token_validation_failures_total{kind="token_invalid"}' in metrics
        other = await api.get(
            "/v1/invitations/lookup", params={"token": "x"}, headers={"X-Forwarded-For": "9.9.9.9"}
        )
        assert_problem(other, 404, "TOKEN_INVALID")  # another address is not affected


class TestPage:
    async def test_opening_the_page_changes_nothing_and_its_form_activates(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        invited: Invited,
        database: Database,
    ) -> None:
        for _ in range(3):  # a mail scanner, a preview, the person
            page = await api.get("/activate", params={"token": invited.token})
        assert page.status_code == 200 and "Join Acme" in page.text and INVITEE in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert (
            "<script" not in page.text and invited.token in page.text
        )  # in the form, nowhere else
        async with database.session() as session:
            (status,) = (await session.execute(select(Invitation.status))).one()
        assert status == "pending"

        too_short = await api.post(
            "/activate", data={"token": invited.token, "name": "Bea", "password": "short"}
        )
        assert too_short.status_code == 400 and "password" in too_short.text
        done = await api.post("/activate", data={"token": invited.token, "name": "Bea"})
        assert done.status_code == 200 and "Welcome to Acme" in done.text
        again = await api.get("/activate", params={"token": invited.token})
        assert again.status_code == 409 and "sign in" in again.text

    async def test_bad_links_get_a_clear_page(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        invited: Invited,
    ) -> None:
        invalid = await api.get("/activate", params={"token": "nonsense"})
        assert invalid.status_code == 404 and "not valid" in invalid.text
        assert invalid.headers["content-type"].startswith("text/html")
        clock.advance(timedelta(hours=73))
        expired = await api.get("/activate", params={"token": invited.token})
        assert expired.status_code == 410 and "Ask the person who invited you" in expired.text

    async def test_each_outcome_is_said_in_words_with_the_next_step(
        self,
        client_for: AppFactory,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        invited: Invited,
        signup_settings: Settings,
    ) -> None:
        branded = signup_settings.model_copy(
            update={"brand_name": "Acme Cloud", "sign_in_url": "https://app.acme.example/login"}
        )
        async with client_for(branded) as pages:
            form = await pages.get("/activate", params={"token": invited.token})
            assert "At least 12 characters" in form.text and "Acme Cloud" in form.text
            revoked = await api.post(
                f"/v1/tenants/{owner['tenant_id']}/invitations/{invited.id}/revoke",
                headers=auth(owner["access_token"]),
            )
            assert revoked.status_code == 200
            withdrawn = await pages.get("/activate", params={"token": invited.token})
        assert withdrawn.status_code == 410
        assert "This invitation was withdrawn" in withdrawn.text
        assert "token" not in withdrawn.text.lower().replace(invited.token.lower(), "")
        assert 'href="https://app.acme.example/login">Sign in to Acme Cloud' in withdrawn.text


class TestMembers:
    async def test_the_last_owner_stays(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        path = f"/v1/tenants/{owner['tenant_id']}/members/{owner['user_id']}"
        headers = auth(owner["access_token"])
        demote = await api.patch(path, json={"role": "admin"}, headers=headers)
        assert_problem(demote, 409, "LAST_OWNER")
        assert_problem(await api.delete(path, headers=headers), 409, "LAST_OWNER")
        missing = f"/v1/tenants/{owner['tenant_id']}/members/usr_missing"
        assert_problem(await api.delete(missing, headers=headers), 404, "NOT_FOUND")

    async def test_roles_change_and_members_leave(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        database: Database,
        signup_settings: Settings,
    ) -> None:
        await invite(api, owner, role="owner")
        accepted = await accept(api, await invitation_token(database, signup_settings, INVITEE))
        second = accepted.json()
        seen(second["refresh_token"])
        members = f"/v1/tenants/{owner['tenant_id']}/members"
        _, admin = await member_token(database, signup_settings, owner["tenant_id"], "admin")
        touch_owner = await api.patch(
            f"{members}/{owner['user_id']}", json={"role": "member"}, headers=auth(admin)
        )
        assert assert_problem(touch_owner, 403, "FORBIDDEN")["reason"] == "role_mismatch"
        demoted = await api.patch(
            f"{members}/{owner['user_id']}",
            json={"role": "member"},
            headers=auth(second["access_token"]),
        )
        assert demoted.json() == {"user_id": owner["user_id"], "role": "member"}
        removed = await api.delete(
            f"{members}/{owner['user_id']}", headers=auth(second["access_token"])
        )
        assert removed.status_code == 204
        listed = await api.get(members, headers=auth(second["access_token"]))
        assert owner["user_id"] not in [m["user_id"] for m in listed.json()["data"]]
        refreshed = await api.post(
            "/v1/auth/token",
            json={"grant_type": "refresh_token", "refresh_token": owner["refresh_token"]},
        )
        assert_problem(refreshed, 401, "TOKEN_REVOKED")
