"""The canary: the whole product driven from outside, as a synthetic tenant would.

signup → verify → provisioned → owner session → invite → accept (through the hosted page's
form, as a browser without JavaScript posts it) → integration key → exchange → enqueue
`canary.ping` → completed. Every address is at the canary domain, so its mail never leaves:
the canary reads it back at `/v1/internal/canary/messages` with a service token. The first
stage that fails names the run's failure (`FAIL_<STAGE>`); a stage that passes over its
budget is an `SLO_BREACH`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import structlog

from tenantry.auth.jwt import Audience
from tenantry.config import Settings

POLL_S = 0.1
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    failure: str
    budget_s: float


def stages(settings: Settings) -> list[Stage]:
    """Each stage, its failure code and budget: auth 3 s, enqueue 5 s, completion 90 s; the
    provisioning and magic-link alert thresholds; a second for the plain API calls."""
    budgets = {
        "signup": 1.0,
        "verify": 1.0,
        "provision": settings.slo_provisioning_p95_alert.total_seconds(),
        "session": 1.0,
        "invite": 1.0,
        "accept": max(1.0, settings.slo_magic_link_p95_alert.total_seconds() * 2),  # page + post
        "key": 1.0,
        "exchange": 3.0,
        "enqueue": 5.0,
        "completion": 90.0,
        **settings.canary_budgets,
    }
    failures = {
        "signup": "FAIL_SIGNUP",
        "verify": "FAIL_VERIFY",
        "provision": "FAIL_PROVISION",
        "session": "FAIL_AUTH",
        "invite": "FAIL_INVITE",
        "accept": "FAIL_ACCEPT",
        "key": "FAIL_AUTH",
        "exchange": "FAIL_AUTH",
        "enqueue": "FAIL_ENQUEUE",
        "completion": "FAIL_COMPLETION",
    }
    return [Stage(name, failures[name], budget) for name, budget in budgets.items()]


class StageFailed(Exception):
    pass


@dataclass
class Run:
    durations: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    failed_stage: str | None = None
    error: str | None = None
    breaches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    def lines(self) -> list[str]:
        out = [f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in self.durations.items()]
        out += [f"SLO_BREACH {stage}" for stage in self.breaches]
        if self.failure:
            out.append(f"{self.failure} {self.failed_stage}: {self.error}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stages": {k: round(v * 1000, 1) for k, v in self.durations.items()},
            "breaches": self.breaches,
            "failure": self.failure,
            "stage": self.failed_stage,
            "error": self.error,
        }


def _expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise StageFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:200]}"
        )
    return dict(response.json()) if "json" in response.headers.get("content-type", "") else {}


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise StageFailed(f"{what} within {timeout_s:.0f} s")
        await asyncio.sleep(POLL_S)


class Canary:
    def __init__(self, client: httpx.AsyncClient, settings: Settings, service_token: str) -> None:
        self.client = client
        self.settings = settings
        self.service = {"Authorization": f"Bearer {service_token}"}
        self.stages = {stage.name: stage for stage in stages(settings)}
        self.run = Run()
        self.label = secrets.token_hex(4)

    def address(self, who: str) -> str:
        return f"{who}-{self.label}@{self.settings.canary_email_domain}"

    @asynccontextmanager
    async def stage(self, name: str) -> AsyncIterator[None]:
        stage = self.stages[name]
        started = time.perf_counter()
        try:
            yield
        except (StageFailed, httpx.HTTPError, KeyError, ValueError) as exc:
            self.run.failure, self.run.failed_stage = stage.failure, name
            self.run.error = str(exc)[:300] or type(exc).__name__
            raise
        finally:
            self.run.durations[name] = time.perf_counter() - started
        if self.run.durations[name] > stage.budget_s:
            self.run.breaches.append(name)

    async def secret_for(self, to: str, template: str, name: str) -> str:
        async def arrived() -> bool:
            return bool(await self._held(to, template))

        await _until(arrived, 10, f"no {template} mail to {to}")
        return str((await self._held(to, template))[0]["secrets"][name])

    async def _held(self, to: str, template: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            "/v1/internal/canary/messages", params={"to": to}, headers=self.service
        )
        items = _expect(response, 200)["items"]
        return [item for item in items if item["template"] == template]

    async def go(self) -> Run:
        with contextlib.suppress(StageFailed, httpx.HTTPError, KeyError, ValueError):
            await self._flow()  # a failure is recorded by the stage it happened in
        return self.run

    async def _flow(self) -> None:
        owner = self.address("owner")
        async with self.stage("signup"):
            body: dict[str, Any] = {
                "org_name": "Canary",
                "slug": f"canary-{self.label}",
                "email": owner,
                "plan": "starter",
            }
            signup = _expect(await self.client.post("/v1/signup", json=body), 200, 201)
        async with self.stage("verify"):
            code = await self.secret_for(owner, "signup_code", "code")
            path = f"/v1/signup/{signup['id']}/verify"
            verified = _expect(await self.client.post(path, json={"code": code}), 200)
        async with self.stage("provision"):
            await _until(
                lambda: self._status(signup["id"]),
                self.stages["completion"].budget_s,
                "not PROVISIONED",
            )
        async with self.stage("session"):
            body = {"continuation_token": verified["continuation_token"]}
            path = f"/v1/signup/{signup['id']}/session"
            tokens = _expect(await self.client.post(path, json=body), 200)
        tenant = tokens["tenant_id"]
        as_owner = {"Authorization": f"Bearer {tokens['access_token']}"}
        invitee = self.address("invitee")
        async with self.stage("invite"):
            body = {"email": invitee, "role": "member"}
            path = f"/v1/tenants/{tenant}/invitations"
            _expect(await self.client.post(path, json=body, headers=as_owner), 201)
        async with self.stage("accept"):
            await self._accept(invitee)
        async with self.stage("key"):
            body = {"name": "canary", "scopes": ["jobs:write", "jobs:read"]}
            path = f"/v1/tenants/{tenant}/keys"
            key = _expect(await self.client.post(path, json=body, headers=as_owner), 201)
        async with self.stage("exchange"):
            grant = {"grant_type": "client_credentials", "client_secret": key["secret"]}
            access = _expect(await self.client.post("/v1/auth/token", data=grant), 200)
        as_key = {"Authorization": f"Bearer {access['access_token']}"}
        async with self.stage("enqueue"):
            body = {"kind": "canary.ping", "payload": {"canary": self.label}}
            path = f"/v1/tenants/{tenant}/jobs"
            job = _expect(await self.client.post(path, json=body, headers=as_key), 202)
        async with self.stage("completion"):
            path = f"/v1/tenants/{tenant}/jobs/{job['id']}"

            async def completed() -> bool:
                state = _expect(await self.client.get(path, headers=as_key), 200)
                if state["status"] in ("FAILED", "CANCELLED"):
                    raise StageFailed(f"job {state['status']}: {state.get('last_error')}")
                return bool(state["status"] == "COMPLETED")

            await _until(completed, self.stages["completion"].budget_s, "job not COMPLETED")

    async def _status(self, signup_id: str) -> bool:
        state = _expect(await self.client.get(f"/v1/signup/{signup_id}"), 200)
        if state["status"] in ("FAILED", "REVIEW_REQUIRED", "EXPIRED"):
            raise StageFailed(f"signup {state['status']}: {state.get('failure_reason')}")
        return bool(state["status"] == "PROVISIONED")

    async def _accept(self, invitee: str) -> None:
        """As a browser without JavaScript: open the link, post the page's form."""
        link = await self.secret_for(invitee, "invitation", "link")
        token = link.split("token=", 1)[1]
        page = await self.client.get("/activate", params={"token": token})
        if page.status_code != 200 or 'name="token"' not in page.text:
            raise StageFailed(f"the activation page answered {page.status_code}")
        form = {"token": token, "name": "Canary Invitee", "password": secrets.token_urlsafe(16)}
        done = await self.client.post("/activate", data=form)
        if done.status_code != 200 or "is active" not in done.text:
            raise StageFailed(f"the activation form answered {done.status_code}")


def service_token(settings: Settings) -> str:
    """From TENANTRY_CANARY_TOKEN (a deployment elsewhere), else minted with this data dir's
    signing key, as `tenantry token mint --audience internal --role service` would."""
    if given := os.environ.get("TENANTRY_CANARY_TOKEN"):
        return given
    from tenantry.app import build_token_issuer  # the app's routes import this module

    token, _ = build_token_issuer(settings).mint(
        subject="svc_canary",
        audience=Audience.INTERNAL,
        ttl=timedelta(minutes=10),
        roles=["service"],
    )
    return token


async def run_once(base_url: str, settings: Settings, service_token: str) -> Run:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await Canary(client, settings, service_token).go()


async def alert(settings: Settings, base_url: str, run: Run) -> None:
    """A chat-style `{"text"}` POST about a failed run; a receiver that fails is logged."""
    if run.ok or not settings.alert_webhook_url:
        return
    text = f"Tenantry canary {run.failure} at {run.failed_stage} on {base_url}: {run.error}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            (await client.post(settings.alert_webhook_url, json={"text": text})).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("canary_alert_failed", error=f"{type(exc).__name__}: {exc}"[:300])
