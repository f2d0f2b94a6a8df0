"""The dispatcher: claims due webhook deliveries and sends them, many at once.

It runs in every worker process beside the job worker. One loop claims as many
deliveries as it has free slots (`TENANTRY_WEBHOOK_CONCURRENCY`), fairly over
endpoints and tenants and never past an endpoint's in-flight cap, so a slow or
failing receiver holds only its own slots. A flusher writes the outcomes of every
attempt that finished meanwhile in one transaction (group commit, as the job worker
does); a delivery stays `delivering`, under a lease its heartbeat renews, until then. A commit that
wrote deliveries wakes the dispatcher at once: in this process through the
database's publish, elsewhere through PostgreSQL's NOTIFY; it polls each second
otherwise. The `webhooks.delivery` flag holds every claim; a suspended tenant's
deliveries wait. A dispatcher that dies mid-delivery leaves a lease that runs out,
and the delivery goes again with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import structlog

from tenantry.config import Settings
from tenantry.datadir import secret_keys
from tenantry.db import Database
from tenantry.flag.board import HELD_QUEUES, held_queues
from tenantry.kit.clock import utcnow
from tenantry.kit.ratelimit import Limit, RateLimiter
from tenantry.metrics import WEBHOOK_ATTEMPT_DURATION, WEBHOOK_ATTEMPTS
from tenantry.webhook import attempts, fanout, signing, transitions
from tenantry.webhook.addresses import DestinationPolicy, Resolver, SystemResolver
from tenantry.webhook.client import DeliveryClient, DeliveryFailed
from tenantry.webhook.transitions import Claimed
from tenantry.worker.listener import listen_for_jobs

log = structlog.get_logger(__name__)

QUEUE = HELD_QUEUES["webhooks.delivery"]
POLL_S = 1.0
ERROR_BACKOFF_S = 1.0
SHUTDOWN_GRACE_S = 5.0


class Dispatcher:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.concurrency = concurrency or settings.webhook_concurrency
        self.keys = secret_keys(settings)
        self.client = DeliveryClient(
            DestinationPolicy.of(settings),
            resolver or SystemResolver(),
            timeout_s=settings.webhook_timeout.total_seconds(),
            max_connections=self.concurrency,
        )
        self.limiter = RateLimiter(settings.redis_url)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._outcomes: list[tuple[Claimed, attempts.Result]] = []
        self._held_claims: dict[str, Claimed] = {}  # claimed, outcome not written yet
        self._outcomes_ready = asyncio.Event()
        self._held = False
        self._kick = asyncio.Event()
        self._stopping = asyncio.Event()
        database.listen(fanout.TOPIC, lambda _: self._kick.set())

    @property
    def held(self) -> bool:
        """Whether the `webhooks.delivery` flag holds this dispatcher's claims now."""
        return self._held

    def stop(self) -> None:
        self._stopping.set()
        self._kick.set()

    async def run(self) -> None:
        structlog.contextvars.clear_contextvars()
        background = [
            asyncio.create_task(self._maintenance_loop(), name="webhook-maintenance"),
            asyncio.create_task(self._flush_loop(), name="webhook-flush"),
            asyncio.create_task(self._heartbeat_loop(), name="webhook-heartbeat"),
        ]
        if self.database.is_postgres:
            background.append(
                asyncio.create_task(
                    listen_for_jobs(self.database.engine.url, self._kick, self._stopping)
                )
            )
        try:
            await self._refresh_held()
            await self._claim_loop()
            await self._drain()
            await self._flush()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.client.aclose()

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._kick.clear()
            free = self.concurrency - len(self._running)
            if free > 0 and not self._held:
                try:
                    claimed = await self._claim(free)
                except Exception as exc:
                    log.warning("webhook_claim_failed", error=f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(ERROR_BACKOFF_S)
                    continue
                for delivery in claimed:
                    self._held_claims[delivery.id] = delivery
                    self._running[delivery.id] = asyncio.create_task(self._deliver(delivery))
                if claimed and len(claimed) == free:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=POLL_S)

    async def _claim(self, limit: int) -> list[Claimed]:
        async with self.database.session(cross_tenant="webhooks") as session:
            return await transitions.claim(
                session,
                limit=limit,
                lease=self.settings.webhook_lease,
                per_endpoint=self.settings.webhook_max_in_flight_per_endpoint,
            )

    async def _deliver(self, claimed: Claimed) -> None:
        structlog.contextvars.bind_contextvars(
            tenant_id=claimed.tenant_id, endpoint_id=claimed.endpoint_id
        )
        try:
            if await self._over_rate(claimed):
                return
            result = await self._send(claimed)
            self._outcomes.append((claimed, result))
            self._outcomes_ready.set()
        except Exception as exc:  # let the lease run out: the delivery goes again
            self._held_claims.pop(claimed.id, None)
            log.warning("webhook_delivery_crashed", error=f"{type(exc).__name__}: {exc}")
        finally:
            del self._running[claimed.id]
            self._kick.set()

    async def _over_rate(self, claimed: Claimed) -> bool:
        """Past the endpoint's own rate limit: back in line, unsent and uncounted."""
        if not claimed.rate_limit_per_s:
            return False
        limit = Limit.of("webhook-endpoint", f"{claimed.rate_limit_per_s}/second")
        decision = await self.limiter.hit(limit, claimed.endpoint_id)
        if decision.allowed:
            return False
        later = utcnow() + timedelta(seconds=max(decision.reset_s, 0.1))
        async with self.database.session(cross_tenant="webhooks") as session:
            await transitions.put_back(session, claimed, at=later)
        self._held_claims.pop(claimed.id, None)
        return True

    def _secrets(self, claimed: Claimed) -> list[str]:
        secrets = [signing.open_secret(claimed.secret_sealed, self.keys)]
        expires = claimed.previous_secret_expires_at
        if claimed.previous_secret_sealed and expires is not None and expires > utcnow():
            secrets.append(signing.open_secret(claimed.previous_secret_sealed, self.keys))
        return secrets

    async def _send(self, claimed: Claimed) -> attempts.Result:
        body = claimed.payload.encode()
        headers = signing.signed_headers(claimed.message_id, body, self._secrets(claimed))
        started = time.perf_counter()
        try:
            answer = await self.client.post(claimed.url, body, headers)
            error = None if 200 <= answer.status < 300 else "http_status"
        except DeliveryFailed as exc:
            answer, error = None, exc.error
            log.info("webhook_attempt_error", error=exc.error, detail=str(exc))
        elapsed = time.perf_counter() - started
        WEBHOOK_ATTEMPT_DURATION.observe(elapsed)
        outcome = "error" if answer is None else "succeeded" if error is None else "failed"
        WEBHOOK_ATTEMPTS.labels(outcome).inc()
        return attempts.Result(answer, error, int(elapsed * 1000))

    async def _flush_loop(self) -> None:
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            await self._flush()

    async def _flush(self) -> None:
        """Write the outcomes waiting; on a failure keep them for the next try (their leases
        run meanwhile: past them, the deliveries go again)."""
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        try:
            async with self.database.session(cross_tenant="webhooks") as session:
                await attempts.record(session, self.settings, batch)
        except Exception as exc:
            log.warning("webhook_outcome_write_failed", error=f"{type(exc).__name__}: {exc}")
            self._outcomes = batch + self._outcomes
            await asyncio.sleep(ERROR_BACKOFF_S)
            self._outcomes_ready.set()
            return
        for claimed, _ in batch:
            self._held_claims.pop(claimed.id, None)

    async def _heartbeat_loop(self) -> None:
        """Renew the leases of what this dispatcher holds: only a dead one's run out."""
        lease = self.settings.webhook_lease
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                async with self.database.session(cross_tenant="webhooks") as session:
                    await transitions.renew(session, list(self._held_claims.values()), lease)
            except Exception as exc:
                log.warning("webhook_lease_renewal_failed", error=f"{type(exc).__name__}: {exc}")

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self._refresh_held()
                async with self.database.session(cross_tenant="webhooks") as session:
                    reaped = await transitions.reap(session)
                if reaped:
                    log.warning("webhook_leases_expired", deliveries=reaped)
                    self._kick.set()
            except Exception as exc:
                log.warning("webhook_maintenance_failed", error=f"{type(exc).__name__}: {exc}")

    async def _refresh_held(self) -> None:
        async with self.database.session(cross_tenant="webhooks") as session:
            held = QUEUE in await held_queues(session)
        if self._held and not held:
            self._kick.set()
        self._held = held

    async def _drain(self) -> None:
        """Let deliveries in flight finish; what does not in time goes again after its lease."""
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=SHUTDOWN_GRACE_S)
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
