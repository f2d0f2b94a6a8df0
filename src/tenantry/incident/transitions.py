"""The incident state machine, the runbook's status template: investigating, identified,
monitoring, resolved. Any open state may follow another (a fix that did not hold goes back
to investigating); resolved is final."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import Incident, IncidentStatus

S = IncidentStatus
OPEN = frozenset({S.INVESTIGATING, S.IDENTIFIED, S.MONITORING})
ALLOWED: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    **{state: (OPEN | {S.RESOLVED}) - {state} for state in OPEN},
    S.RESOLVED: frozenset(),
}


class IncidentState(TenantryError):
    status, code, title = 409, "INCIDENT_STATE", "The incident is not in a state that allows this"


MACHINE = Machine(Incident, ALLOWED, IncidentState)


async def move(session: AsyncSession, incident: Incident, to: IncidentStatus) -> None:
    """To `to` from the state it was read in; a resolved incident is closed for posts."""
    if incident.status == S.RESOLVED:
        raise IncidentState(f"incident {incident.id} is resolved")
    if incident.status == to:
        return  # a progress post in the same state
    now = utcnow()
    resolved = {"resolved_at": now} if to is S.RESOLVED else {}
    if not await MACHINE.move(session, incident, to, updated_at=now, **resolved):
        raise IncidentState(f"incident {incident.id} is {incident.status} meanwhile")
