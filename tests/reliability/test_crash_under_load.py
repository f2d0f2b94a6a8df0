"""The service SIGKILLed in the middle of a burst of verifications, invitations, acceptances and
job submissions, then started again (`tenantry up` on SQLite; `serve` and `worker` processes on
PostgreSQL): every request answered 2xx is in the database, and every verified signup ends
PROVISIONED exactly once (one tenant, one owner, one welcome mail)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage as Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience, TokenIssuer
from tenantry.db import Database
from tenantry.models import (
    Invitation,
    Job,
    MailMessage,
    Membership,
    SignupSession,
    SignupStatus,
    Tenant,
    User,
)
from tests.cli.test_servers import running
from tests.conftest import make_settings
from tests.fixtures.factories import create_member, create_tenant
from tests.fixtures.servers import free_port
from tests.fixtures.signup import signup_body
from tests.fixtures.workers import WorkerProcess, wait_for
from tests.reliability.world import served_env

pytestmark = pytest.mark.reliability

SIGNUPS = int(os.environ.get("TENANTRY_CRASH_SIGNUPS", "24"))
JOBS = SIGNUPS * 2
INVITES = SIGNUPS // 2  # accepted during the burst, and as many new ones sent


def mailed(mail_dir: Path) -> dict[str, Message]:
    """The newest message to each address, read from the files the mail backend wrote."""
    paths = sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    messages = [message_from_bytes(path.read_bytes(), policy=policy.default) for path in paths]
    return {str(message["To"]): message for message in messages}


def codes_in(mail_dir: Path) -> dict[str, str]:
    """The signup code delivered to each address."""
    subjects = {to: str(message["Subject"]) for to, message in mailed(mail_dir).items()}
    return {to: subject.split()[0] for to, subject in subjects.items() if subject[0].isdigit()}


def link_token(message: Message) -> str:
    """The token of the activation link in an invitation."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return re.search(r"/activate\?token=([\w.-]+)", body.get_content()).group(1)  # type: ignore[union-attr]


async def count(database: Database, model: type, *where: object) -> int:
    async with database.session() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int((await session.execute(query)).scalar_one())


@contextmanager
def deployment(
    backend: str,
    env: dict[str, str],
    tmp_path: Path,
    port: int,
    start_worker: Callable[..., WorkerProcess],
    name: str,
) -> Iterator[tuple[str, Callable[[], None]]]:
    """The service as each backend runs it, and a function that SIGKILLs all of it."""
    command = ["up"] if backend == "sqlite" else ["serve"]
    with running(command, env, tmp_path, port, log=tmp_path / f"{name}.log") as (base, api):
        worker = None
        if backend != "sqlite":
            worker = start_worker(
                TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"], TENANTRY_JOB_LEASE="3s"
            )

        def kill() -> None:
            os.killpg(api.pid, signal.SIGKILL)
            if worker is not None:
                worker.signal(signal.SIGKILL)

        yield base, kill


async def host_tenant(database: Database, issuer: TokenIssuer) -> tuple[str, dict[str, str]]:
    """A tenant to invite into and submit jobs to, and its owner's authorisation."""
    tenant = await create_tenant(database, slug="host", name="Host")
    user = await create_member(database, tenant.id, "owner", email="owner@host.example.com")
    token, _ = issuer.mint(
        subject=user.id,
        audience=Audience.TENANT,
        ttl=timedelta(minutes=15),
        roles=["owner"],
        tenant_id=tenant.id,
    )
    return tenant.id, {"Authorization": f"Bearer {token}"}


async def test_every_answered_request_survives_a_sigkill_mid_burst(
    backend: str,
    database_url: str,
    owner_database_url: str,
    tmp_path: Path,
    worker_process: Callable[..., WorkerProcess],
    record_property: Callable[[str, object], None],
) -> None:
    """SIGKILL mid-burst: answered requests kept, each verified signup provisioned once."""
    data_dir = tmp_path / "data"
    env = served_env(data_dir, database_url, TENANTRY_JOB_LEASE="3s")
    port = free_port()
    bodies = [
        signup_body(slug=f"load-{i}", email=f"founder{i}@load{i}.example.com")
        for i in range(SIGNUPS)
    ]
    settings = make_settings(data_dir, database_url=database_url)
    issuer = build_token_issuer(settings)
    database = Database(owner_database_url)
    verified: list[str] = []
    submitted: list[str] = []
    accepted: list[str] = []
    invited: list[str] = []

    with deployment(backend, env, tmp_path, port, worker_process, "first") as (base_url, kill):
        tenant_id, owner = await host_tenant(database, issuer)
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            started = [await client.post("/v1/signup", json=body) for body in bodies]
            assert [r.status_code for r in started] == [201] * SIGNUPS
            ids = {body["email"]: r.json()["id"] for body, r in zip(bodies, started, strict=True)}
            invitations = f"/v1/tenants/{tenant_id}/invitations"
            for n in range(INVITES):
                body = {"email": f"early{n}@host.example.com", "role": "member"}
                assert (await client.post(invitations, json=body, headers=owner)).status_code == 201

            async def all_mailed() -> bool:
                return len(mailed(data_dir / "mail")) == SIGNUPS + INVITES

            await wait_for(all_mailed, 30)
            codes = codes_in(data_dir / "mail")
            links = {
                link_token(m): to for to, m in mailed(data_dir / "mail").items() if "early" in to
            }
            assert len(links) == INVITES

            async def answered(into: list[str], status: int, method: str, path: str, **kw: Any):
                with contextlib.suppress(httpx.TransportError):
                    response = await client.request(method, path, **kw)
                    if response.status_code == status:
                        into.append(response.json().get("id") or kw["json"]["token"])

            async def kill_midway(burst: asyncio.Future[list[None]]) -> None:
                def enough(done: list[str], of: int) -> bool:
                    return len(done) >= of // 3

                while not burst.done() and not all(  # noqa: ASYNC110
                    enough(done, of)
                    for done, of in [(verified, SIGNUPS), (submitted, JOBS), (accepted, INVITES)]
                ):
                    await asyncio.sleep(0.005)
                kill()

            burst = asyncio.gather(
                *(
                    answered(
                        verified,
                        200,
                        "POST",
                        f"/v1/signup/{ids[b['email']]}/verify",
                        json={"code": codes[b["email"]]},
                    )
                    for b in bodies
                ),
                *(
                    answered(
                        submitted,
                        202,
                        "POST",
                        f"/v1/tenants/{tenant_id}/jobs",
                        json={"kind": "canary.ping", "payload": {"n": n}},
                        headers=owner,
                    )
                    for n in range(JOBS)
                ),
                *(
                    answered(
                        accepted,
                        200,
                        "POST",
                        "/v1/invitations/accept",
                        json={"token": link, "name": "Early", "password": "correct horse 9"},
                    )
                    for link in links
                ),
                *(
                    answered(
                        invited,
                        201,
                        "POST",
                        invitations,
                        json={"email": f"late{n}@host.example.com", "role": "member"},
                        headers=owner,
                    )
                    for n in range(INVITES)
                ),
            )
            await kill_midway(burst)
            await burst
    answers = len(verified) + len(submitted) + len(accepted) + len(invited)
    assert answers < SIGNUPS + JOBS + 2 * INVITES, "the kill landed mid-burst"

    in_flight = SignupSession.status.in_([SignupStatus.EMAIL_VERIFIED, SignupStatus.PROVISIONING])
    provisioned = SignupSession.status == SignupStatus.PROVISIONED
    try:
        with deployment(backend, env, tmp_path, port, worker_process, "second"):

            async def settled() -> bool:  # answered or not, no verified signup left behind
                return await count(database, SignupSession, in_flight) == 0

            await wait_for(settled, 60)
        assert await count(
            database, SignupSession, SignupSession.id.in_(verified), provisioned
        ) == len(verified)
        assert await count(database, Job, Job.id.in_(submitted)) == len(submitted)
        assert await count(database, Invitation, Invitation.id.in_(invited)) == len(invited)
        joined = select(User.email).join(Membership, Membership.user_id == User.id)
        async with database.session() as session:
            members = set((await session.execute(joined)).scalars())
        assert {links[token] for token in accepted} <= members, "each 200 acceptance made a member"
        tenants_made = await count(database, SignupSession, provisioned)
        assert await count(database, Tenant) == tenants_made + 1
        owners = await count(database, Membership, Membership.role == "owner")
        assert owners == tenants_made + 1
        welcome = MailMessage.template == "welcome"
        assert await count(database, MailMessage, welcome) == tenants_made
    finally:
        await database.dispose()
    record_property(
        "load",
        f"{SIGNUPS} verifications, {JOBS} job submissions, {INVITES} acceptances "
        f"and {INVITES} invitations at once",
    )
    killed = "`tenantry up`" if backend == "sqlite" else "`serve` and `worker`"
    record_property("faults", f"SIGKILL of {killed} a third of the way in, then a restart")
    record_property(
        "figure",
        f"answered before the kill: {len(verified)} verifications, {len(submitted)} jobs, "
        f"{len(accepted)} acceptances, {len(invited)} invitations: all kept; "
        f"{tenants_made} tenants, one owner and one welcome mail each",
    )
