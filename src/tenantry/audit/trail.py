"""Appending to and checking the audit trail.

Each record's hash is SHA-256 over its own fields and the previous record's
hash, and `audit_head` holds the last sequence number and hash. An append
takes the head row's lock first (one UPDATE), so concurrent appends from any
process chain one after another; the record is written in the caller's
transaction, so an action and its record commit or vanish together.
`verify` recomputes the chain: an edited record no longer matches its hash, a
removed one leaves a gap in the sequence, and removing the newest ones leaves
the head pointing past the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.models import AuditHead, AuditRecord

GENESIS = "0" * 64
VERIFY_BATCH = 1000


def _digest(record: AuditRecord) -> str:
    fields = {
        "seq": record.seq,
        "id": record.id,
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "reason": record.reason,
        "before": record.before,
        "after": record.after,
        "occurred_at": record.occurred_at.astimezone(UTC).isoformat(),
        "prev_hash": record.prev_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record in the caller's transaction."""
    advance = (
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)
    )
    seq, prev_hash = (await session.execute(advance)).one()
    entry = AuditRecord(
        seq=seq,
        id=new_id("aud"),
        actor=actor,
        action=action,
        target=target,
        reason=reason,
        before=_plain(before),
        after=_plain(after),
        occurred_at=utcnow(),
        prev_hash=prev_hash,
    )
    entry.hash = _digest(entry)
    session.add(entry)
    await session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=entry.hash))
    return entry


def _plain(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the JSON column will give back (times as text), so the hash reads the same."""
    return None if values is None else json.loads(json.dumps(values, default=_text))


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def list_records(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    action: str | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[AuditRecord]:
    """Newest first; `before_seq` pages on."""
    query = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
    if since is not None:
        query = query.where(AuditRecord.occurred_at >= since)
    if action is not None:
        query = query.where(AuditRecord.action == action)
    if before_seq is not None:
        query = query.where(AuditRecord.seq < before_seq)
    return list((await session.execute(query)).scalars())


@dataclass
class Verification:
    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


async def _in_order(session: AsyncSession) -> AsyncIterator[AuditRecord]:
    last = 0
    while True:
        query = (
            select(AuditRecord)
            .where(AuditRecord.seq > last)
            .order_by(AuditRecord.seq)
            .limit(VERIFY_BATCH)
        )
        batch = list((await session.execute(query)).scalars())
        for entry in batch:
            yield entry
        if len(batch) < VERIFY_BATCH:
            return
        last = batch[-1].seq


async def verify(session: AsyncSession) -> Verification:
    """Recompute the chain from the first record to the head."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    found = Verification(head_seq=head.seq, head_hash=head.hash)
    expected_seq, prev_hash = 1, GENESIS
    async for entry in _in_order(session):
        found.records += 1
        if entry.seq != expected_seq:
            found.problems.append(f"records {expected_seq}..{entry.seq - 1} are missing")
        elif entry.prev_hash != prev_hash:
            found.problems.append(f"record {entry.seq} ({entry.id}) does not follow the one before")
        if _digest(entry) != entry.hash:
            found.problems.append(f"record {entry.seq} ({entry.id}) was changed")
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    if head.seq != expected_seq - 1:
        found.problems.append(f"records {expected_seq}..{head.seq} are missing (the newest)")
    elif head.hash != prev_hash:
        found.problems.append("the newest record does not match the chain's head")
    return found
