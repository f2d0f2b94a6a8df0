"""POST /v1/signup over HTTP: every error code, replays, idempotency, concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock, utcnow
from tenantry.models import Event, MailMessage, Membership, PromoCode, SignupSession, Tenant, User
from tests.conftest import AppFactory, LogCapture, make_settings
from tests.fixtures.signup import from_address, signup_body
from tests.test_errors import assert_problem


async def count(database_url: str, model: type) -> int:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
            )
    finally:
        await database.dispose()


async def add_rows(database_url: str, *rows: object) -> None:
    database = Database(database_url)
    try:
        async with database.session() as session:
            for row in rows:
                session.add(row)
                await session.flush()
    finally:
        await database.dispose()


def an_owner(email: str, slug: str) -> list[object]:
    now = utcnow()
    return [
        Tenant(
            id="ten_x",
            slug=slug,
            name="X",
            plan="starter",
            status="active",
            created_at=now,
            updated_at=now,
        ),
        User(id="usr_x", email=email, created_at=now),
        Membership(tenant_id="ten_x", user_id="usr_x", role="owner", created_at=now),
    ]


class TestCreated:
    async def test_201_with_session_code_mail_and_event(
        self, api: httpx.AsyncClient, owner_database_url: str, logs: LogCapture
    ) -> None:
        response = await api.post("/v1/signup", json=signup_body(), headers=from_address())
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["id"].startswith("ses_") and body["status"] == "PENDING_EMAIL_VERIFICATION"
        assert body["expires_at"]
        assert await count(owner_database_url, MailMessage) == 1
        assert await count(owner_database_url, Event) == 1
        read = (await api.get(f"/v1/signup/{body['id']}")).json()
        assert (read["slug"], read["plan"], read["org_name"], read["tenant_id"]) == (
            "acme",
            "starter",
            "Acme",
            None,
        )
        assert read["provisioning"] == {"steps": []}
        assert response.headers["RateLimit-Policy"].startswith('"signup-ip";q=1000;w=3600')
        assert response.headers["RateLimit"]

    async def test_email_is_normalised(self, api: httpx.AsyncClient) -> None:
        first = await api.post(
            "/v1/signup", json=signup_body(email="Ada@ACME.example.com"), headers=from_address()
        )
        again = await api.post(
            "/v1/signup", json=signup_body(email="ada@acme.example.com"), headers=from_address()
        )
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]


class TestValidation:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("slug", "ab"),
            ("slug", "-acme"),
            ("slug", "acme-"),
            ("slug", "ac--me"),
            ("slug", "Acme"),
            ("slug", "admin"),
            ("slug", "x" * 41),
            ("email", "not-an-email"),
            ("org_name", ""),
        ],
    )
    async def test_field_errors(self, api: httpx.AsyncClient, field: str, value: str) -> None:
        response = await api.post(
            "/v1/signup", json=signup_body(**{field: value}), headers=from_address()
        )
        body = assert_problem(response, 400, "VALIDATION")
        assert [error["field"] for error in body["errors"]] == [field]  # type: ignore[attr-defined]

    async def test_unknown_plan(self, api: httpx.AsyncClient) -> None:
        body = assert_problem(
            await api.post("/v1/signup", json=signup_body(plan="gold"), headers=from_address()),
            400,
            "VALIDATION",
        )
        assert body["errors"][0]["field"] == "plan"  # type: ignore[index]

    async def test_unknown_fields_are_refused(self, api: httpx.AsyncClient) -> None:
        response = await api.post(
            "/v1/signup", json=signup_body(admin=True), headers=from_address()
        )
        assert_problem(response, 400, "VALIDATION")


class TestConflicts:
    async def test_slug_held_by_a_live_session(self, api: httpx.AsyncClient) -> None:
        assert (
            await api.post("/v1/signup", json=signup_body(), headers=from_address())
        ).status_code == 201
        other = await api.post(
            "/v1/signup", json=signup_body(email="eve@other.example.com"), headers=from_address()
        )
        assert_problem(other, 409, "SLUG_TAKEN")

    async def test_slug_of_an_existing_tenant(
        self, api: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        await add_rows(owner_database_url, *an_owner("owner@x.example.com", "acme"))
        assert_problem(
            await api.post("/v1/signup", json=signup_body(), headers=from_address()),
            409,
            "SLUG_TAKEN",
        )

    async def test_email_of_a_tenant_owner(
        self, api: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        await add_rows(owner_database_url, *an_owner("ada@acme.example.com", "elsewhere"))
        assert_problem(
            await api.post("/v1/signup", json=signup_body(), headers=from_address()),
            409,
            "EMAIL_EXISTS",
        )

    async def test_expired_session_releases_its_slug(self, api: httpx.AsyncClient) -> None:
        first = await api.post("/v1/signup", json=signup_body(), headers=from_address())
        clock.advance(timedelta(hours=25))
        other = await api.post(
            "/v1/signup", json=signup_body(email="eve@other.example.com"), headers=from_address()
        )
        assert other.status_code == 201
        assert (await api.get(f"/v1/signup/{first.json()['id']}")).json()["status"] == "EXPIRED"


class TestPromo:
    async def test_valid_unknown_expired_exhausted_disabled(
        self, api: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        now = utcnow()

        def promo(code: str, **values: object) -> PromoCode:
            defaults: dict[str, object] = {"redemptions": 0, "disabled": False, "created_at": now}
            return PromoCode(code=code, **{**defaults, **values})

        await add_rows(
            owner_database_url,
            promo("LAUNCH"),
            promo("OLD", expires_at=now - timedelta(days=1)),
            promo("FULL", max_redemptions=3, redemptions=3),
            promo("OFF", disabled=True),
        )
        for code in ("NOPE", "OLD", "FULL", "OFF"):
            response = await api.post(
                "/v1/signup", json=signup_body(promo_code=code), headers=from_address()
            )
            assert_problem(response, 400, "INVALID_PROMO")
        ok = await api.post(
            "/v1/signup", json=signup_body(promo_code="launch"), headers=from_address()
        )
        assert ok.status_code == 201


class TestKillSwitch:
    async def test_signup_disabled_is_503(
        self, client_for: AppFactory, database_url: str, tmp_path: Path
    ) -> None:
        async with client_for(
            make_settings(tmp_path, database_url=database_url, signup_enabled=False)
        ) as client:
            assert_problem(
                await client.post("/v1/signup", json=signup_body()), 503, "SIGNUP_DISABLED"
            )


class TestIdempotency:
    async def test_same_key_same_body_replays(
        self, api: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        headers = {"Idempotency-Key": "k-1", **from_address()}
        first = await api.post("/v1/signup", json=signup_body(), headers=headers)
        again = await api.post("/v1/signup", json=signup_body(), headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await count(owner_database_url, MailMessage) == 1

    async def test_same_key_other_body_is_422(self, api: httpx.AsyncClient) -> None:
        headers = {"Idempotency-Key": "k-2", **from_address()}
        await api.post("/v1/signup", json=signup_body(), headers=headers)
        other = await api.post("/v1/signup", json=signup_body(slug="other"), headers=headers)
        assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")

    async def test_without_key_the_pending_session_is_returned(
        self, api: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        first = await api.post("/v1/signup", json=signup_body(), headers=from_address())
        again = await api.post("/v1/signup", json=signup_body(), headers=from_address())
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json()["id"] == again.json()["id"]
        assert await count(owner_database_url, SignupSession) == 1
        assert await count(owner_database_url, MailMessage) == 1  # within the resend cooldown


class TestConcurrency:
    async def test_hundred_identical_signups_make_one_session(
        self, api: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        responses = await asyncio.gather(
            *(
                api.post("/v1/signup", json=signup_body(), headers=from_address())
                for _ in range(100)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 99 + [201], [
            r.text for r in responses if r.status_code not in (200, 201)
        ]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await count(owner_database_url, SignupSession) == 1

    async def test_hundred_emails_race_for_one_slug(
        self, api: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        responses = await asyncio.gather(
            *(
                api.post(
                    "/v1/signup",
                    json=signup_body(email=f"user{i}@race.example.com"),
                    headers=from_address(),
                )
                for i in range(100)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 99
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"SLUG_TAKEN"}
        assert await count(owner_database_url, SignupSession) == 1


class TestRateLimits:
    @pytest.mark.parametrize(
        ("limiter", "setting", "vary"),
        [
            (
                "signup-ip",
                "signup_limit_per_ip",
                lambda i: {"email": f"u{i}@d{i}.example.com", "slug": f"s-{i}"},
            ),
            ("signup-email", "signup_limit_per_email", lambda i: {"slug": f"s-{i}"}),
            (
                "signup-domain",
                "signup_limit_per_domain",
                lambda i: {"email": f"u{i}@same.example.com", "slug": f"s-{i}"},
            ),
        ],
    )
    async def test_limit_gives_429_with_retry_after(
        self,
        client_for: AppFactory,
        signup_settings: Settings,
        limiter: str,
        setting: str,
        vary: object,
        logs: LogCapture,
    ) -> None:
        settings = signup_settings.model_copy(update={setting: "3/hour"})
        one_address = {"X-Forwarded-For": "198.51.100.7"}
        async with client_for(settings) as client:
            for i in range(3):
                headers = one_address if limiter == "signup-ip" else from_address()
                response = await client.post(
                    "/v1/signup", json=signup_body(**vary(i)), headers=headers
                )  # type: ignore[operator]
                assert response.status_code == 201, response.text
            headers = one_address if limiter == "signup-ip" else from_address()
            refused = await client.post("/v1/signup", json=signup_body(**vary(9)), headers=headers)  # type: ignore[operator]
        body = assert_problem(refused, 429, "RATE_LIMITED")
        assert limiter in str(body["detail"])
        assert int(refused.headers["Retry-After"]) >= 1
        assert f'"{limiter}";q=3;w=3600' in refused.headers["RateLimit-Policy"]
        (logged,) = logs.events("rate_limited")
        assert logged["limiter"] == limiter and logged["email_domain"] and logged["ip"]

    async def test_limits_are_shared_through_redis(
        self, client_for: AppFactory, signup_settings: Settings, fresh_redis_url: str
    ) -> None:
        settings = signup_settings.model_copy(
            update={"redis_url": fresh_redis_url, "signup_limit_per_ip": "2/hour"}
        )
        address = {"X-Forwarded-For": "192.0.2.55"}
        async with client_for(settings) as first, client_for(settings) as second:
            assert (
                await first.post("/v1/signup", json=signup_body(slug="a-1"), headers=address)
            ).status_code == 201
            assert (
                await second.post(
                    "/v1/signup",
                    json=signup_body(slug="a-2", email="b@b.example.com"),
                    headers=address,
                )
            ).status_code == 201
            refused = await first.post(
                "/v1/signup", json=signup_body(slug="a-3", email="c@c.example.com"), headers=address
            )
        assert_problem(refused, 429, "RATE_LIMITED")

    async def test_an_ipv6_client_is_counted_by_its_64(
        self, client_for: AppFactory, signup_settings: Settings
    ) -> None:
        settings = signup_settings.model_copy(update={"signup_limit_per_ip": "1/hour"})

        async def signup(client: httpx.AsyncClient, n: int, address: str) -> int:
            body = signup_body(slug=f"v6-{n}", email=f"u{n}@v{n}.example.com")
            headers = {"X-Forwarded-For": address}
            return (await client.post("/v1/signup", json=body, headers=headers)).status_code

        async with client_for(settings) as client:
            assert await signup(client, 1, "2001:db8:1:2::1") == 201
            assert await signup(client, 2, "2001:db8:1:2:ffff:ffff:ffff:fffe") == 429
            assert await signup(client, 3, "2001:db8:1:3::1") == 201  # the next /64

    async def test_untrusted_peer_cannot_spoof_its_address(
        self, client_for: AppFactory, signup_settings: Settings
    ) -> None:
        settings = signup_settings.model_copy(
            update={"trusted_proxies": [ip_network("10.9.9.9")], "signup_limit_per_ip": "1/hour"}
        )
        async with client_for(settings) as client:
            await client.post("/v1/signup", json=signup_body(slug="b-1"), headers=from_address())
            spoofed = await client.post(
                "/v1/signup",
                json=signup_body(slug="b-2", email="x@x.example.com"),
                headers=from_address(),
            )
        assert_problem(spoofed, 429, "RATE_LIMITED")


class TestDisposableEmail:
    async def test_blocked_only_when_the_setting_asks(
        self, client_for: AppFactory, signup_settings: Settings
    ) -> None:
        body = signup_body(email="someone@mailinator.com")
        async with client_for(signup_settings) as client:
            assert (
                await client.post("/v1/signup", json=body, headers=from_address())
            ).status_code == 201
        blocking = signup_settings.model_copy(update={"block_disposable_email": True})
        async with client_for(blocking) as client:
            refused = await client.post(
                "/v1/signup",
                json=signup_body(slug="other", email="x@mailinator.com"),
                headers=from_address(),
            )
        assert assert_problem(refused, 400, "VALIDATION")["errors"][0]["field"] == "email"  # type: ignore[index]
