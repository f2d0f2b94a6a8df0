"""Real HTTP receivers for webhook deliveries, and the pieces the webhook tests share."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook, WebhookVerificationError

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.models import Tenant, WebhookAttempt, WebhookDelivery
from tenantry.webhook.dispatcher import Dispatcher
from tests.conftest import make_settings
from tests.fixtures.factories import create_member, create_tenant, tokens_for
from tests.fixtures.secrets import seen
from tests.fixtures.servers import free_port
from tests.fixtures.workers import wait_for

Reply = Callable[["Call"], tuple[int, dict[str, str], bytes]]


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_with: list[str]  # which of the receiver's secrets verified the signature
    at: float = field(default_factory=time.time)  # when it arrived (wall clock)

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def document(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP/1.1 server (keep-alive) that verifies each delivery with the
    standardwebhooks library against every secret it was told, and answers as told."""

    port: int
    calls: list[Call] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    reply: Reply = lambda call: (200, {}, b"ok")
    connections: set[tuple[str, int]] = field(default_factory=set)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ids(self) -> set[str]:
        return {call.message_id for call in self.calls}

    def verify(self, body: bytes, headers: dict[str, str]) -> list[str]:
        good = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                good.append(secret)
            except WebhookVerificationError:
                pass
        return good


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            receiver.connections.add(self.client_address)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            call = Call(self.path, headers, body, receiver.verify(body, headers))
            status, extra, answer = receiver.reply(call)
            receiver.calls.append(call)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(free_port())
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook_settings(database_url: str, tmp_path: Path) -> Settings:
    """Receivers here are on loopback: that network is allowed, as an operator would for tests."""
    return make_settings(
        tmp_path / "data",
        database_url=database_url,
        webhook_allowed_networks="127.0.0.0/8",
        webhook_lease="3s",
    )


@dataclass
class Owner:
    tenant: Tenant
    token: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def base(self) -> str:
        return f"/v1/tenants/{self.tenant.id}/webhook-endpoints"


@pytest.fixture
async def owner(database: Database, webhook_settings: Settings) -> Owner:
    tenant = await create_tenant(database)
    user = await create_member(database, tenant.id, "owner")
    return Owner(tenant, tokens_for(webhook_settings, user.id, tenant.id, "owner"), user.id)


def signed_in_now(owner: Owner, settings: Settings) -> dict[str, str]:
    """The owner's headers with a token minted now (after a test moved the clock)."""
    token = tokens_for(settings, owner.user_id, owner.tenant.id, "owner")
    return {"Authorization": f"Bearer {token}"}


async def register(client: Any, owner: Owner, url: str, **body: Any) -> dict[str, Any]:
    response = await client.post(owner.base, json={"url": url, **body}, headers=owner.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    seen(created["secret"])
    return created


async def emit(
    database: Database, tenant_id: str | None, type_: str = "test.Happened", **data: Any
) -> str:
    """An event of the tenant, written as every state change writes one."""
    async with database.session() as session:
        event = events.record(session, type_, tenant_id=tenant_id, data=data)
    return event.id


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.session() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()
        )


async def deliveries(database: Database, *where: Any) -> list[WebhookDelivery]:
    async with database.session() as session:
        query = select(WebhookDelivery).where(*where).order_by(WebhookDelivery.created_at)
        return list((await session.execute(query)).scalars())


async def attempts(database: Database, *where: Any) -> list[WebhookAttempt]:
    async with database.session() as session:
        query = select(WebhookAttempt).where(*where).order_by(WebhookAttempt.created_at)
        return list((await session.execute(query)).scalars())


@asynccontextmanager
async def dispatching(settings: Settings, **options: Any) -> AsyncIterator[Dispatcher]:
    """A dispatcher on the application's own database role, running until the block ends."""
    database = Database(settings.resolved_database_url)
    dispatcher = Dispatcher(database, settings, **options)
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
        await task
        await database.dispose()


@dataclass
class Hooks:
    """What a webhook test works with: the database (as its owner), the settings, a tenant's
    owner, a receiver, and the app to register endpoints through."""

    database: Database
    settings: Settings
    owner: Owner
    receiver: Receiver
    client_for: Any

    async def endpoint(self, path: str = "/hook", **body: Any) -> dict[str, Any]:
        """An endpoint of the owner's tenant at the receiver's `path`, registered through
        the API."""
        async with self.client_for(self.settings) as client:
            return await register(client, self.owner, self.receiver.url(path), **body)

    async def emit(self, type_: str = "test.Happened", **data: Any) -> str:
        return await emit(self.database, self.owner.tenant.id, type_, **data)

    def dispatching(self, settings: Settings | None = None, **options: Any) -> Any:
        return dispatching(settings or self.settings, **options)

    async def attempted(self, n: int) -> None:
        """Until `n` attempts are written."""

        async def made() -> bool:
            return len(await attempts(self.database)) >= n

        await wait_for(made)

    async def calls(self, n: int) -> None:
        """Until the receiver has had `n` requests."""

        async def arrived() -> bool:
            return len(self.receiver.calls) >= n

        await wait_for(arrived)


@pytest.fixture
def hooks(
    client_for: Any,
    database: Database,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> Hooks:
    return Hooks(database, webhook_settings, owner, receiver, client_for)


async def failed_delivery(database: Database, tenant_id: str, endpoint_id: str) -> str:
    """A message whose every attempt failed an hour ago."""
    await emit(database, tenant_id)
    (delivery,) = await deliveries(database)
    now = utcnow()
    async with database.session() as session:
        session.add(
            WebhookAttempt(
                id=new_id("wha"),
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                delivery_id=delivery.id,
                message_id=delivery.message_id,
                event_type="test.Happened",
                attempt=8,
                status="failed",
                response_status=503,
                duration_ms=12,
                trigger="scheduled",
                created_at=now - timedelta(hours=1),
            )
        )
    async with database.session() as session:
        # Seeded as the dispatcher leaves a spent schedule (tests may write any state).
        await session.execute(
            WebhookDelivery.__table__.update()  # type: ignore[attr-defined]
            .where(WebhookDelivery.id == delivery.id)
            .values({"status": "failed", "attempts": 8, "next_attempt_at": None})
        )
    return delivery.message_id
