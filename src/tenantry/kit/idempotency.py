"""`Idempotency-Key` for POSTs that create: the same key and body replay the first response.

The key is claimed at the start of the request's transaction (an insert that
a concurrent twin waits on), so two identical requests racing execute once.
Only successful responses are kept: an error rolls the claim back with
everything else, and a retry with the same key runs again. Records live 24 h.
A response that shows a secret once (a new key) is stored sealed under the
server secret, so the replay can show it again and a database reader cannot.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db import insert_for
from tenantry.errors import TenantryError, ValidationFailed
from tenantry.kit.clock import utcnow
from tenantry.kit.sealed import seal, unseal
from tenantry.models import IdempotencyRecord
from tenantry.state import state_of

RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255
_PENDING = 0  # status of a claimed key whose response is not written yet
_SEALED = "sealed"  # the stored body's only field when the response holds a secret


class IdempotencyKeyReused(TenantryError):
    status, code, title = 422, "IDEMPOTENCY_KEY_REUSED", "The key was used with another request"


class IdempotentRequest:
    def __init__(self, key: str | None, route: str, secret_keys: Sequence[bytes]) -> None:
        self.key = key
        self.route = route
        self._secret_keys = secret_keys  # the current one seals, any opens
        self._record_key: str | None = None

    async def replay(self, session: AsyncSession, scope: str, body: Any) -> JSONResponse | None:
        """Claim the key, or answer the stored response of its first use."""
        if self.key is None:
            return None
        record_key = f"{scope}:{self.route}:{self.key}"
        request_hash = hashlib.sha256(
            json.dumps(body, sort_keys=True, default=str).encode()
        ).hexdigest()
        now = utcnow()
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.key == record_key, IdempotencyRecord.expires_at < now
            )
        )
        claimed = await session.execute(
            insert_for(session)(IdempotencyRecord)
            .values(
                key=record_key,
                request_hash=request_hash,
                status_code=_PENDING,
                body={},
                created_at=now,
                expires_at=now + RETENTION,
            )
            .on_conflict_do_nothing(index_elements=[IdempotencyRecord.key])
            .returning(IdempotencyRecord.key)
        )
        if claimed.scalar_one_or_none() is not None:
            self._record_key = record_key
            return None
        stored = (
            await session.execute(
                select(IdempotencyRecord).where(IdempotencyRecord.key == record_key)
            )
        ).scalar_one()
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused("This Idempotency-Key was sent before with a different body")
        body = stored.body
        if isinstance(body, dict) and set(body) == {_SEALED}:
            body = unseal(body[_SEALED], self._secret_keys, "idempotency")
        return JSONResponse(
            body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
        )

    async def remember(
        self, session: AsyncSession, status_code: int, body: Any, *, secret: bool = False
    ) -> JSONResponse:
        """Store the response for the claimed key (if any; sealed if it shows a `secret`)
        and return it."""
        if self._record_key is not None:
            stored = {_SEALED: seal(body, self._secret_keys[0], "idempotency")} if secret else body
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.key == self._record_key)
                .values(status_code=status_code, body=stored)
            )
        return JSONResponse(body, status_code=status_code)


async def _idempotency(
    request: Request, idempotency_key: Annotated[str | None, Header()] = None
) -> IdempotentRequest:
    if idempotency_key is not None and not 1 <= len(idempotency_key.strip()) <= MAX_KEY_LENGTH:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 characters",
            errors=[{"field": "Idempotency-Key", "message": "1 to 255 characters"}],
        )
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return IdempotentRequest(
        idempotency_key.strip() if idempotency_key else None, route, state_of(request).secret_keys
    )


Idempotency = Annotated[IdempotentRequest, Depends(_idempotency)]
