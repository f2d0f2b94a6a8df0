"""Access tokens refused before their expiry: one token by `jti`, or every token of a subject
(a user, an integration key), of a tenant, or of one user for one tenant (a membership whose
role changed or that was removed) issued at or before a moment.

Revocations are rows (tenantry.models.TokenRevocation). Each process keeps
them all in memory (`RevocationList`, reloaded by tenantry.auth.trust when
any changes, and at once in the process that committed one), so the check on
every request is a few dictionary lookups.
Cut-offs compare whole seconds (`iat` has no more): a token issued in the same
second as the revocation is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.revision import bump_revision
from tenantry.config import Settings
from tenantry.db import Database, insert_for
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.models import RevocationKind, TokenRevocation

REVOKED_TOPIC = "auth.revoked"  # in-process: a revocation this process committed


async def revoke(
    session: AsyncSession,
    settings: Settings,
    kind: RevocationKind,
    target: str,
    *,
    expires_at: datetime | None = None,
    reason: str | None = None,
) -> TokenRevocation:
    """Refuse the token `target` (JTI) or the tokens of `target` issued until now.

    `expires_at` is when no token the revocation matches can still be valid:
    the token's own expiry for a JTI, now + the longest token lifetime otherwise.
    """
    now = utcnow()
    values = {
        "issued_before": now,
        "expires_at": expires_at or now + settings.max_token_ttl,
        "created_at": now,
        "reason": reason,
    }
    statement = (
        insert_for(session)(TokenRevocation)
        .values(id=new_id("rvk"), kind=kind.value, target=target, **values)
        .on_conflict_do_update(index_elements=["kind", "target"], set_=values)
        .returning(TokenRevocation)
    )
    revocation: TokenRevocation = (await session.execute(statement)).scalar_one()
    await bump_revision(session)
    Database.of(session).publish(session, REVOKED_TOPIC, revocation)
    return revocation


def member_target(tenant_id: str, user_id: str) -> str:
    return f"{tenant_id}/{user_id}"


async def cut_off_member(
    session: AsyncSession, settings: Settings, tenant_id: str, user_id: str, reason: str
) -> None:
    """Refuse the tokens `user_id` holds for `tenant_id` now: its role there changed or ended."""
    target = member_target(tenant_id, user_id)
    await revoke(session, settings, RevocationKind.MEMBER, target, reason=reason)


async def delete_expired(session: AsyncSession) -> int:
    """Drop revocations that can no longer match a valid token."""
    result = await session.execute(
        delete(TokenRevocation).where(TokenRevocation.expires_at <= utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RevocationList:
    """Every live revocation, indexed for the per-request check."""

    jtis: frozenset[str] = frozenset()
    subjects: dict[str, int] = field(default_factory=dict)  # cut-off, epoch seconds
    tenants: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)  # by `tenant_id/user_id`

    @classmethod
    def of(cls, revocations: Iterable[Any]) -> RevocationList:
        jtis: set[str] = set()
        cut_offs: dict[str, dict[str, int]] = {"subject": {}, "tenant": {}, "member": {}}
        for row in revocations:
            if row.kind == RevocationKind.JTI:
                jtis.add(row.target)
            else:
                cut_offs[row.kind][row.target] = int(row.issued_before.timestamp())
        return cls(frozenset(jtis), cut_offs["subject"], cut_offs["tenant"], cut_offs["member"])

    def plus(self, row: Any) -> RevocationList:
        """This list with one more revocation (a row just committed by this process)."""
        if row.kind == RevocationKind.JTI:
            return replace(self, jtis=self.jtis | {row.target})
        moment = int(row.issued_before.timestamp())

        def later(cut_offs: dict[str, int]) -> dict[str, int]:
            return {**cut_offs, row.target: max(moment, cut_offs.get(row.target, moment))}

        if row.kind == RevocationKind.SUBJECT:
            return replace(self, subjects=later(self.subjects))
        if row.kind == RevocationKind.TENANT:
            return replace(self, tenants=later(self.tenants))
        return replace(self, members=later(self.members))

    def revoked(self, claims: dict[str, Any]) -> bool:
        issued = claims["iat"]
        tenant_id = claims.get("tenant_id")
        return (
            claims["jti"] in self.jtis
            or issued <= self.subjects.get(claims["sub"], -1)
            or (
                tenant_id is not None
                and (
                    issued <= self.tenants.get(tenant_id, -1)
                    or issued <= self.members.get(member_target(tenant_id, claims["sub"]), -1)
                )
            )
        )


async def load_revocations(session: AsyncSession) -> RevocationList:
    rows = await session.execute(
        select(TokenRevocation).where(TokenRevocation.expires_at > utcnow())
    )
    return RevocationList.of(rows.scalars())
