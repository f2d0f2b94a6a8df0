"""What the application holds for its requests, typed: built once by the lifespan and read
through `state_of(request)` (or the aliases in tenantry.deps), never as loose attributes of
`app.state`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from tenantry.webhook.addresses import Resolver, SystemResolver

if TYPE_CHECKING:  # the state's parts import the database layer, which reads the state
    from redis.asyncio import Redis

    from tenantry.auth.denials import DenialLog
    from tenantry.auth.jwt import TokenIssuer
    from tenantry.auth.trust import Trust
    from tenantry.config import Settings
    from tenantry.db import Database
    from tenantry.flag.board import Switchboard
    from tenantry.kit.ratelimit import RateLimiter
    from tenantry.mail.backends import MailBackend
    from tenantry.ops.abuse import AbuseLog


@dataclass
class AppState:
    settings: Settings
    database: Database
    redis: Redis | None
    # The server secret (HMAC key of stored digests, sealing key) first, then previous ones.
    secret_keys: tuple[bytes, ...]
    mail: MailBackend
    rate_limiter: RateLimiter
    tokens: TokenIssuer
    trust: Trust
    switches: Switchboard
    denials: DenialLog
    abuse: AbuseLog  # refusals and failed verifications, for `tenantry abuse report`
    started_at: float  # monotonic
    shutting_down: bool = False
    # How webhook destinations are resolved when registered (tests put in their own).
    resolver: Resolver = field(default_factory=SystemResolver)

    @property
    def secret(self) -> bytes:
        """The current server secret: what new digests and sealed values are made with."""
        return self.secret_keys[0]


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.tenantry
    return state
