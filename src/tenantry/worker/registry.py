"""Task kinds and periodic schedules, registered by name (`domain.verb`).

Built-in tasks register on import of their module; a host application adds its
own kinds through the `tenantry.job_kinds` entry-point group (each entry point
names a module, imported for its `@task` decorators) or the
`TENANTRY_JOB_MODULES` setting.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

from croniter import croniter
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db import Database

ENTRY_POINT_GROUP = "tenantry.job_kinds"
BUILT_IN_TASK_MODULES = (
    "tenantry.worker.tasks",
    "tenantry.auth.tasks",
    "tenantry.mail.tasks",
    "tenantry.signup.tasks",
    "tenantry.provisioning.tasks",
    "tenantry.invitation.tasks",
    "tenantry.event.tasks",
    "tenantry.ops.tasks",
)
DEFAULT_MAX_ATTEMPTS = 5


class NonRetryableError(Exception):
    """Raise from a task to fail its job at once, whatever attempts remain."""


@dataclass(frozen=True)
class JobContext:
    """What a task receives: its job, and the process's database and settings."""

    job_id: str
    kind: str
    tenant_id: str | None
    payload: Any
    attempt: int
    max_attempts: int
    database: Database
    settings: Settings
    # A job a tenant submitted (a `tenant_submittable` kind): its handler is host code
    # acting for that tenant, so its sessions see that tenant's rows only.
    submitted_by_tenant: bool = False

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A transaction scoped to the submitting tenant (row-level security holds inside the
        handler), or, for the platform's own tasks, across tenants under the kind's name."""
        if self.submitted_by_tenant:
            return self.database.session(tenant_id=self.tenant_id)
        return self.database.session(cross_tenant=f"job {self.kind}")


Handler = Callable[[JobContext], Awaitable[Any]]


@dataclass(frozen=True)
class TaskKind:
    name: str
    handler: Handler
    max_attempts: int
    tenant_submittable: bool  # may tenants enqueue it through the API?


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    cron: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.cron, moment).get_next(datetime)


class UnknownJobKind(LookupError):
    pass


class TaskRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, TaskKind] = {}
        self._schedules: dict[str, ScheduleSpec] = {}

    def task(
        self,
        name: str,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        tenant_submittable: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._kinds[name] = TaskKind(name, handler, max_attempts, tenant_submittable)
            return handler

        return register

    def schedule(
        self, name: str, cron: str, kind: str, payload: dict[str, Any] | None = None
    ) -> None:
        if not croniter.is_valid(cron):
            raise ValueError(f"schedule {name}: {cron!r} is not a cron expression")
        self._schedules[name] = ScheduleSpec(name, cron, kind, payload or {})

    def get(self, name: str) -> TaskKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownJobKind(name) from None

    def kinds(self) -> Iterable[TaskKind]:
        return self._kinds.values()

    def schedules(self) -> Iterable[ScheduleSpec]:
        return self._schedules.values()


registry = TaskRegistry()


def load_task_modules(settings: Settings) -> None:
    """Import the built-in tasks and every host application's task modules."""
    for module in BUILT_IN_TASK_MODULES:
        importlib.import_module(module)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()
    for module in settings.job_modules:
        importlib.import_module(module)
