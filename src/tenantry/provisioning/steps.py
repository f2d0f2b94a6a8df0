"""Provisioning steps: idempotent callables registered by name.

A step that only touches the database runs inside the transaction that marks
its checkpoint done and enqueues the next step, so it happens exactly once
however often a worker dies. A step with an effect outside (`outside=True`,
such as the HTTP call to the host application) runs before that transaction
and must be safe to repeat: it sends an idempotency key.

Host applications add steps through the `tenantry.provisioning_steps` entry
point group (each entry point names a module whose `@step` calls register).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db import insert_for
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.mail.service import queue_mail
from tenantry.models import Membership, SignupSession, Tenant, User

ENTRY_POINT_GROUP = "tenantry.provisioning_steps"
DEFAULT_TENANT_SETTINGS: dict[str, Any] = {"locale": "en", "timezone": "UTC", "mfa_required": False}


class StepRetryable(Exception):
    """Try again later (with backoff): a dependency is down or slow."""


class StepNeedsReview(Exception):
    """A person must act (a missing setting, a refusal): the session goes to REVIEW_REQUIRED."""


class StepFatal(Exception):
    """This run cannot succeed: the session goes to FAILED."""


@dataclass
class StepContext:
    signup: SignupSession
    settings: Settings
    session: AsyncSession | None  # the completing transaction; None for outside steps
    attempt: int

    @property
    def db(self) -> AsyncSession:
        if self.session is None:
            raise RuntimeError("an outside step has no transaction")
        return self.session


StepFunction = Callable[[StepContext], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction
    outside: bool


_steps: dict[str, Step] = {}


def step(name: str, *, outside: bool = False) -> Callable[[StepFunction], StepFunction]:
    def register(function: StepFunction) -> StepFunction:
        _steps[name] = Step(name, function, outside)
        return function

    return register


def step_names() -> frozenset[str]:
    """Every registered step, the host application's included."""
    load_step_modules()
    return frozenset(_steps)


def runs_inside(name: str) -> bool:
    """A registered database-only step: a job that completed one step may run it next."""
    step = _steps.get(name)
    return step is not None and not step.outside


def get_step(name: str) -> Step:
    if name not in _steps:
        raise StepFatal(f"no provisioning step named {name!r} is registered")
    return _steps[name]


def load_step_modules() -> None:
    """Register the built-in steps' modules and the host application's (idempotent)."""
    importlib.import_module("tenantry.provisioning.webhook")
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()


@step("create_tenant")
async def create_tenant(context: StepContext) -> dict[str, Any]:
    """The tenant takes over the slug the session held."""
    signup = context.signup
    if signup.tenant_id is None:
        now = utcnow()
        tenant = Tenant(
            id=new_id("ten"),
            slug=signup.slug,
            name=signup.org_name,
            plan=signup.plan,
            status="active",
            settings={},
            created_at=now,
            updated_at=now,
        )
        context.db.add(tenant)
        signup.tenant_id = tenant.id
    return {"tenant_id": signup.tenant_id}


@step("create_owner")
async def create_owner(context: StepContext) -> dict[str, Any]:
    """The signup's email becomes the tenant's owner; an existing user just gains the membership."""
    signup, session = context.signup, context.db
    assert signup.tenant_id is not None, "create_tenant runs first"
    user = (
        await session.execute(select(User).where(User.email == signup.email))
    ).scalar_one_or_none()
    if user is None:
        user = User(id=new_id("usr"), email=signup.email, created_at=utcnow())
        session.add(user)
        await session.flush()
    await session.execute(
        insert_for(session)(Membership)
        .values(tenant_id=signup.tenant_id, user_id=user.id, role="owner", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[Membership.tenant_id, Membership.user_id])
    )
    return {"user_id": user.id}


@step("default_settings")
async def default_settings(context: StepContext) -> dict[str, Any]:
    tenant = await context.db.get(Tenant, context.signup.tenant_id)
    assert tenant is not None, "create_tenant runs first"
    tenant.settings = {**DEFAULT_TENANT_SETTINGS, **(tenant.settings or {})}
    return {"settings": sorted(tenant.settings)}


@step("welcome_mail")
async def welcome_mail(context: StepContext) -> dict[str, Any]:
    signup = context.signup
    message = await queue_mail(
        context.db,
        context.settings,
        to=signup.email,
        template="welcome",
        context={
            "org_name": signup.org_name,
            "slug": signup.slug,
            "public_url": context.settings.public_url,
        },
        tenant_id=signup.tenant_id,
    )
    return {"mail_id": message.id}
