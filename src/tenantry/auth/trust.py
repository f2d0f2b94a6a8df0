"""What this process trusts: the signing keys, the token revocations and the suspended
tenants of the database, and the integration keys found live since they last changed.

Every `auth_refresh_interval` (1 s by default) a background task reads the
auth revision; when it moved, it reloads the key set into the token issuer,
the revocation list and the suspended tenants. A revocation, a key change or a
suspension made by any process (the CLI included) is therefore in force
everywhere within about one interval (at once in the process that made it),
and the check on each request costs a few dictionary lookups, no query.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

import structlog

from tenantry.auth.jwt import KeySet, TokenIssuer
from tenantry.auth.revision import read_revision
from tenantry.auth.revocation import REVOKED_TOPIC, RevocationList, load_revocations
from tenantry.auth.signing_keys import load_keyset
from tenantry.auth.suspension import SUSPENSION_TOPIC, suspended_tenants
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import TokenRevoked

log = structlog.get_logger(__name__)

MAX_LIVE_KEYS = 100_000  # past this, exchanges of further keys read the database


class Trust:
    def __init__(self, database: Database, settings: Settings, issuer: TokenIssuer) -> None:
        self.database = database
        self.settings = settings
        self.issuer = issuer
        self.revocations = RevocationList()
        self.suspended: frozenset[str] = frozenset()  # tenants whose tokens are refused
        self._revision: int | None = None
        # Integration keys an exchange found live, by secret digest (tenantry.integration_
        # key.service.LiveKey); forgotten whenever what this process trusts changes.
        self.live_keys: dict[str, Any] = {}
        self.generation = 0  # moves at each forgetting
        # Changes this process committed, with when: in force for its next request, and
        # applied again over a reload that may have read the database before they landed.
        self._here: list[tuple[float, Callable[[], None]]] = []
        database.listen(REVOKED_TOPIC, lambda row: self._commit_here(self._revoke, row))
        database.listen(SUSPENSION_TOPIC, lambda change: self._commit_here(self._suspend, change))

    def _commit_here(self, apply: Callable[[Any], None], change: Any) -> None:
        self._here.append((time.monotonic(), functools.partial(apply, change)))
        apply(change)

    def _revoke(self, row: Any) -> None:
        self.revocations = self.revocations.plus(row)
        self._forget_keys()

    def _forget_keys(self) -> None:
        self.live_keys = {}
        self.generation += 1

    def remember_key(self, digest: str, key: Any, generation: int) -> None:
        """Cache a key read live while `generation` held: a change since may have revoked
        it, so a key read before a change is not remembered after it."""
        if generation == self.generation and len(self.live_keys) < MAX_LIVE_KEYS:
            self.live_keys[digest] = key

    def _suspend(self, change: tuple[str, bool]) -> None:
        tenant_id, suspended = change
        self.suspended = self.suspended | {tenant_id} if suspended else self.suspended - {tenant_id}

    async def refresh(self) -> None:
        """Reload keys, revocations and suspensions if any changed since the last look."""
        started = time.monotonic()
        async with self.database.reader(cross_tenant="auth refresh") as session:
            revision = await read_revision(session)
            if revision == self._revision:
                return
            issuer = self.issuer
            keys = await load_keyset(session, self.settings, issuer.configured_verifiers)
            revocations = await load_revocations(session)
            suspended = await suspended_tenants(session)
        issuer.use(keys or KeySet.of(issuer.configured_private, issuer.configured_verifiers))
        self.revocations = revocations
        self.suspended = suspended
        self._revision = revision
        self._forget_keys()
        # What this process committed before the reload began is in what it read; later
        # changes may not be, so they are applied again (each is idempotent).
        self._here = [(at, apply) for at, apply in self._here if at >= started]
        for _, apply in self._here:
            apply()
        log.info("auth_reloaded", revision=revision, signing_kid=issuer.signing_kid)

    async def run(self) -> None:
        """Refresh until cancelled; a failed look is logged and retried next interval."""
        interval = self.settings.auth_refresh_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.warning("auth_refresh_failed", exc_info=True)

    def check(self, claims: dict[str, Any]) -> None:
        if self.revocations.revoked(claims):
            raise TokenRevoked("The token has been revoked")
