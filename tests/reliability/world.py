"""The world a hypothesis state machine runs in: one event loop, the real app with its
lifespan, the test's own database handle and a worker, shared by every run of the machine.

Hypothesis drives rules synchronously, so the world owns a loop and each rule runs its
coroutine to completion on it; the worker's task makes progress while a rule awaits.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import Event, MailMessage
from tenantry.worker.registry import load_task_modules
from tests.cli.test_servers import _env
from tests.conftest import make_settings
from tests.fixtures.workers import running_worker

T = TypeVar("T")
UNLIMITED = "100000/hour"
# How many runs of how many steps at most: small in `make test`, large in `make reliability`.
RUNS = int(os.environ.get("TENANTRY_STATEFUL_RUNS", "30"))
STEPS = int(os.environ.get("TENANTRY_STATEFUL_STEPS", "20"))


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    api: httpx.AsyncClient
    database: Database
    settings: Settings
    runs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    tally: Counter[str] = field(default_factory=Counter)  # what the runs reached

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)


# The limits these tests lift: they are about states and faults, not abuse.
SIGNUP_LIMITS = (
    "signup_limit_per_ip",
    "signup_limit_per_email",
    "signup_limit_per_domain",
    "signup_resend_limit_per_ip",
    "signup_verify_limit_per_ip",
)


def served_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `tenantry` process under test load, limits lifted; `extra` wins."""
    limits = {f"TENANTRY_{name.upper()}": UNLIMITED for name in SIGNUP_LIMITS}
    return _env(data_dir, TENANTRY_DATABASE_URL=database_url, **{**limits, **extra})


def machine_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Limits out of the way and a quick worker."""
    limits = dict.fromkeys(SIGNUP_LIMITS, UNLIMITED)
    return make_settings(
        data_dir,
        database_url=database_url,
        job_poll_interval=timedelta(milliseconds=50),
        **limits,
        **overrides,
    )


@contextmanager
def world(settings_: Settings, owner_database_url: str) -> Iterator[World]:
    load_task_modules(settings_)
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()

    async def start() -> World:
        app = create_app(settings_)
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        api = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
        database = Database(owner_database_url)
        stack.push_async_callback(database.dispose)
        await stack.enter_async_context(running_worker(database, settings_))
        return World(loop, api, database, settings_)

    try:
        yield loop.run_until_complete(start())
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


def explore(
    machine: type[RuleBasedStateMachine],
    shared: World,
    record_property: Callable[[str, object], None],
    *,
    faults: str,
) -> Counter[str]:
    """Run `machine` RUNS times in `shared`, record the row of the reliability table, and
    return what the runs reached (for the test to check that they reached anything)."""
    machine.world = shared  # type: ignore[attr-defined]
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=RUNS,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    reached = ", ".join(f"{name} {n}" for name, n in sorted(shared.tally.items()))
    print(f"{machine.__name__}: {RUNS} runs of up to {STEPS} steps reached {reached}")
    record_property("load", f"{RUNS} runs of up to {STEPS} steps, races of up to 3")
    record_property("faults", faults)
    record_property("figure", reached)
    return shared.tally


async def unexplained(
    session: AsyncSession, model: Any, status: str, event_type: str, *where: Any
) -> list[str]:
    """Ids of `model` rows in `status` with no `event_type` event about them."""
    rows = await session.execute(
        select(model.id).where(
            model.status == status,
            *where,
            ~select(Event.id)
            .where(Event.subject_id == model.id, Event.type == event_type)
            .exists(),
        )
    )
    return list(rows.scalars())


async def delivered(world: World, email: str, template: str) -> Message | None:
    """The newest `template` mail to `email` as its file backend delivered it, if sent yet."""
    async with world.database.session() as session:
        newest = await session.scalar(
            select(MailMessage.id)
            .where(MailMessage.to_address == email, MailMessage.template == template)
            .order_by(MailMessage.created_at.desc())
            .limit(1)
        )
    path = world.settings.data_dir / "mail" / f"{newest}.eml"
    if newest is None or not path.exists():
        return None
    return message_from_bytes(path.read_bytes())
