"""The tenant state machine: active ⇄ suspended. A suspension refuses the tenant's tokens and
keys (`403 tenant_suspended`) and holds its jobs; reactivation lifts both.

Each move is a conditional update on the status it was read in, bumps the auth revision
(every process reloads the suspended tenants within its refresh interval) and tells this
process at once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.revision import bump_revision
from tenantry.auth.suspension import SUSPENSION_TOPIC
from tenantry.db import Database
from tenantry.errors import TenantryError
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import Tenant, TenantStatus

T = TenantStatus
ALLOWED: dict[TenantStatus, frozenset[TenantStatus]] = {
    T.ACTIVE: frozenset({T.SUSPENDED}),
    T.SUSPENDED: frozenset({T.ACTIVE}),
}
EVENT_TYPES = {T.SUSPENDED: "tenant.Suspended", T.ACTIVE: "tenant.Reactivated"}


class TenantState(TenantryError):
    status, code, title = 409, "TENANT_STATE", "The tenant is not in a state that allows this"


MACHINE = Machine(Tenant, ALLOWED, TenantState)


async def move(
    session: AsyncSession, tenant: Tenant, to: TenantStatus, *, reason: str, by: str
) -> None:
    read_in = tenant.status
    if not await MACHINE.move(session, tenant, to, updated_at=utcnow()):
        raise TenantState(f"tenant {tenant.id} moved from {read_in} to {tenant.status}")
    events.record(
        session,
        EVENT_TYPES[to],
        tenant_id=tenant.id,
        subject_id=tenant.id,
        data={"from": read_in, "to": to.value, "reason": reason, "by": by},
    )
    await bump_revision(session)
    Database.of(session).publish(session, SUSPENSION_TOPIC, (tenant.id, to is T.SUSPENDED))
