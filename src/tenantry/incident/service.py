"""Opening an incident, posting its status, the current public notice, notifying owners, and
the Markdown timeline for the post-incident review."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.config import Settings
from tenantry.incident import transitions
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.mail.service import queue_mail
from tenantry.models import (
    AuditRecord,
    CanaryRun,
    Incident,
    IncidentPost,
    IncidentStatus,
    Membership,
    Tenant,
    TenantStatus,
    User,
)

TEMPLATE = "incident"


async def open_incident(
    session: AsyncSession,
    settings: Settings,
    *,
    title: str,
    impact: str,
    tenants: list[str] | None,
    by: str,
    notify: bool,
) -> Incident:
    """Open it as investigating, its first post the impact; `tenants` None means all."""
    now = utcnow()
    incident = Incident(
        id=new_id("inc"),
        title=title,
        impact=impact,
        tenants=tenants,
        status=IncidentStatus.INVESTIGATING.value,
        opened_by=by,
        opened_at=now,
        updated_at=now,
    )
    session.add(incident)
    await session.flush()
    await _post(session, settings, incident, impact, by=by, notify=notify, phase="start")
    await trail.record(
        session,
        actor=by,
        action="incident.open",
        target=incident.id,
        after={"title": title, "tenants": tenants or "all"},
    )
    return incident


async def post(
    session: AsyncSession,
    settings: Settings,
    incident_id: str,
    *,
    state: IncidentStatus,
    message: str,
    by: str,
    notify: bool,
) -> IncidentPost:
    incident = await get_or_404(session, Incident, incident_id, tenant_id=ANY_TENANT)
    before = incident.status
    await transitions.move(session, incident, state)
    phase = "resolution" if state is IncidentStatus.RESOLVED else "progress"
    entry = await _post(session, settings, incident, message, by=by, notify=notify, phase=phase)
    await trail.record(
        session,
        actor=by,
        action="incident.post",
        target=incident_id,
        before={"status": before},
        after={"status": incident.status, "notified": entry.notified},
    )
    return entry


async def _post(
    session: AsyncSession,
    settings: Settings,
    incident: Incident,
    message: str,
    *,
    by: str,
    notify: bool,
    phase: str,
) -> IncidentPost:
    """The post; with `notify`, a mail to each owner of the affected tenants (the customer
    template of its `phase`: start, progress or resolution)."""
    owners = await owners_of(session, incident.tenants) if notify else []
    for email, tenant_name, tenant_id in owners:
        context = {
            "title": incident.title,
            "state": incident.status,
            "message": message,
            "phase": phase,
            "tenant_name": tenant_name,
            "status_url": f"{settings.public_url}/status",
        }
        await queue_mail(
            session, settings, to=email, template=TEMPLATE, context=context, tenant_id=tenant_id
        )
    entry = IncidentPost(
        id=new_id("ipo"),
        incident_id=incident.id,
        status=incident.status,
        message=message,
        posted_by=by,
        posted_at=utcnow(),
        notified=len(owners),
    )
    session.add(entry)
    return entry


async def owners_of(
    session: AsyncSession, tenants: Sequence[str] | None
) -> list[tuple[str, str, str]]:
    """(email, tenant name, tenant id) of each owner of the affected active tenants."""
    query = (
        select(User.email, Tenant.name, Tenant.id)
        .join(Membership, Membership.user_id == User.id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(Membership.role == "owner", Tenant.status == TenantStatus.ACTIVE.value)
        .order_by(Tenant.id, User.email)
    )
    if tenants is not None:
        query = query.where(Tenant.id.in_(tenants))
    return [(str(e), str(n), str(t)) for e, n, t in (await session.execute(query)).all()]


async def list_incidents(session: AsyncSession, *, limit: int = 50) -> list[Incident]:
    query = select(Incident).order_by(Incident.opened_at.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def posts_of(session: AsyncSession, incident_id: str) -> list[IncidentPost]:
    query = (
        select(IncidentPost)
        .where(IncidentPost.incident_id == incident_id)
        .order_by(IncidentPost.posted_at, IncidentPost.id)
    )
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class Notice:
    incident: Incident
    latest: IncidentPost


async def current_notice(session: AsyncSession) -> Notice | None:
    """The open incident most recently updated, with its latest post."""
    query = (
        select(Incident)
        .where(Incident.status != IncidentStatus.RESOLVED.value)
        .order_by(Incident.updated_at.desc())
        .limit(1)
    )
    incident = (await session.execute(query)).scalar()
    if incident is None:
        return None
    return Notice(incident, (await posts_of(session, incident.id))[-1])


# -- the post-incident timeline


async def timeline(session: AsyncSession, incident_id: str) -> str:
    """Markdown: the incident's posts, operators' actions and canary failures or SLO breaches
    inside its window (opened until resolved, or now), in time order."""
    incident = await get_or_404(session, Incident, incident_id, tenant_id=ANY_TENANT)
    start, end = incident.opened_at, incident.resolved_at or utcnow()
    entries: list[tuple[datetime, str]] = [
        (p.posted_at, f"**{p.status.upper()}** ({p.posted_by}): {p.message}")
        for p in await posts_of(session, incident_id)
    ]
    actions = select(AuditRecord).where(
        AuditRecord.occurred_at.between(start, end), ~AuditRecord.action.startswith("incident.")
    )
    for record in (await session.execute(actions)).scalars():
        why = f": {record.reason}" if record.reason else ""
        entries.append(
            (
                record.occurred_at,
                f"operator `{record.action}` on {record.target} by {record.actor}{why}",
            )
        )
    runs = select(CanaryRun).where(
        CanaryRun.started_at.between(start, end),
        ~CanaryRun.ok | (CanaryRun.breaches != []),
    )
    for run in (await session.execute(runs)).scalars():
        if not run.ok:
            entries.append((run.started_at, f"canary {run.failure} at {run.stage}: {run.error}"))
        for stage in run.breaches:
            entries.append((run.started_at, f"canary SLO breach at {stage}"))
    affected = ", ".join(incident.tenants) if incident.tenants else "all tenants"
    lines = [
        f"# {incident.title} ({incident.id})",
        "",
        f"- Impact: {incident.impact}",
        f"- Affected: {affected}",
        f"- Opened: {start:%Y-%m-%d %H:%M:%S} UTC by {incident.opened_by}",
        f"- Resolved: {end:%Y-%m-%d %H:%M:%S} UTC" if incident.resolved_at else "- Still open",
        "",
        "## Timeline",
        "",
    ]
    lines += [f"- {at:%Y-%m-%d %H:%M:%S} UTC: {text}" for at, text in sorted(entries)]
    return "\n".join(lines) + "\n"
