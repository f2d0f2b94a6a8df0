"""Turning switches: a flag on or off, degraded mode on or off, each audited."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.db import Database, insert_for
from tenantry.errors import TenantryError
from tenantry.flag.board import DEGRADED, FLAGS, TOPIC, SwitchState, read_all
from tenantry.kit.clock import utcnow
from tenantry.models import Switch


class UnknownFlag(TenantryError):
    status, code, title = 404, "NOT_FOUND", "No such flag"


async def _set(
    session: AsyncSession, name: str, enabled: bool, *, reason: str, by: str
) -> SwitchState:
    before = (await read_all(session))[name]
    after = SwitchState(name, enabled, reason=reason, changed_by=by, changed_at=utcnow())
    values = dataclasses.asdict(after)
    upsert = insert_for(session)(Switch).values(**values)
    await session.execute(upsert.on_conflict_do_update(index_elements=[Switch.name], set_=values))
    await trail.record(
        session,
        actor=by,
        action="degraded.set" if name == DEGRADED else "flag.set",
        target=name,
        reason=reason,
        before={"enabled": before.enabled},
        after={"enabled": enabled},
    )
    Database.of(session).publish(session, TOPIC, after)
    return after


async def set_flag(
    session: AsyncSession, name: str, enabled: bool, *, reason: str, by: str
) -> SwitchState:
    if name not in FLAGS:
        raise UnknownFlag(f"no flag {name!r}; flags are {', '.join(FLAGS)}")
    return await _set(session, name, enabled, reason=reason, by=by)


async def set_degraded(
    session: AsyncSession, enabled: bool, *, reason: str, by: str
) -> SwitchState:
    return await _set(session, DEGRADED, enabled, reason=reason, by=by)


async def flags(session: AsyncSession) -> list[SwitchState]:
    switches = await read_all(session)
    return [switches[name] for name in FLAGS]


async def degraded(session: AsyncSession) -> SwitchState:
    return (await read_all(session))[DEGRADED]
