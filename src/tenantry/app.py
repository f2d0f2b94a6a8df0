"""The ASGI application: `create_app(settings)` wires routers, middleware and the lifespan."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import structlog
from fastapi import FastAPI

from tenantry import __version__, api, apidocs, openapi
from tenantry.auth.denials import DenialLog
from tenantry.auth.jwt import TokenIssuer
from tenantry.auth.trust import Trust
from tenantry.config import Settings, check_environment
from tenantry.datadir import ensure_data_dir, secret_keys, signing_key_pem
from tenantry.db import Database
from tenantry.errors import install_error_handlers
from tenantry.flag.board import Switchboard
from tenantry.kit.ratelimit import RateLimiter
from tenantry.logging import configure_logging
from tenantry.mail.backends import build_backend
from tenantry.middleware import BodyReaderMiddleware, RequestContextMiddleware
from tenantry.ops import doctor
from tenantry.ops.abuse import AbuseLog, ResetFollower
from tenantry.state import AppState
from tenantry.worker.registry import load_task_modules
from tenantry.worker.runner import Worker

log = structlog.get_logger(__name__)


def build_token_issuer(settings: Settings) -> TokenIssuer:
    return TokenIssuer(
        signing_key_pem(settings),
        issuer=settings.public_url,
        verification_pem=(settings.verification_keys or "").encode(),
    )


async def _password_self_test() -> None:
    """Argon2id's parameters and time on this machine, logged once; off the start-up path."""
    hashing = await asyncio.to_thread(doctor.password_hashing)
    log.info("password_hashing_self_test", status=hashing.status, detail=hashing.detail)


def create_app(settings: Settings, *, embedded_worker: bool = False) -> FastAPI:
    """The API; with `embedded_worker`, also the worker and scheduler (`tenantry up`)."""
    check_environment(settings)
    configure_logging(json=settings.is_prod, level=settings.log_level)
    ensure_data_dir(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
        tokens = build_token_issuer(settings)
        abuse = AbuseLog(database)
        limiter = RateLimiter(settings.redis_url, on_refusal=abuse.rate_limited)
        state = AppState(
            settings=settings,
            database=database,
            redis=(
                aioredis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
                if settings.redis_url
                else None
            ),
            secret_keys=secret_keys(settings),
            mail=build_backend(settings),
            rate_limiter=limiter,
            tokens=tokens,
            trust=Trust(database, settings, tokens),
            switches=Switchboard(database, settings.flag_refresh_interval.total_seconds()),
            denials=DenialLog(database),
            abuse=abuse,
            started_at=time.monotonic(),
        )
        app.state.tenantry = state
        for first, what in ((state.trust.refresh, "auth"), (state.switches.refresh, "switches")):
            try:
                await first()
            except Exception:  # down or not migrated: readiness says so; the task retries
                log.warning(f"{what}_refresh_failed", exc_info=True)
        background = [
            asyncio.create_task(state.trust.run(), name="auth-refresh"),
            asyncio.create_task(state.switches.run(), name="switches-refresh"),
            asyncio.create_task(state.denials.run(), name="denials-flush"),
            asyncio.create_task(abuse.run(), name="abuse-flush"),
            asyncio.create_task(_password_self_test(), name="password-self-test"),
            asyncio.create_task(
                ResetFollower(database, limiter, settings).run(), name="ratelimit-resets"
            ),
        ]
        load_task_modules(settings)
        worker = Worker(state.database, settings) if embedded_worker else None
        worker_run = asyncio.create_task(worker.run(), name="embedded-worker") if worker else None
        # What start-up built (routes, schemas, models, modules) lives as long as the
        # process: frozen, the cyclic collector stops walking it on every full
        # collection, which under load cost more than the requests themselves.
        gc.collect()
        gc.freeze()
        log.info(
            "started",
            version=__version__,
            env=settings.env.value,
            database=state.database.engine.dialect.name,
            embedded_worker=embedded_worker,
        )
        try:
            yield
        finally:
            state.shutting_down = True
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await state.denials.flush()
            await abuse.flush()
            if worker is not None and worker_run is not None:
                worker.stop()
                await worker_run
            if state.redis is not None:
                await state.redis.aclose()
            await state.database.dispose()
            log.info("stopped")

    app = FastAPI(
        title="Tenantry",
        version=__version__,
        summary="Onboarding and tenant-lifecycle control plane",
        lifespan=lifespan,
        # operationId = the endpoint's name: generated clients get `start_signup`, not
        # `start_signup_v1_signup_post` (tenantry.openapi checks they are unique).
        generate_unique_id_function=lambda route: route.name,
        docs_url=None,  # served by tenantry.apidocs, with their assets
        redoc_url=None,
    )
    install_error_handlers(app)
    openapi.install(app)
    apidocs.install(app)
    api.install(app)
    # Added last = outermost: the request id is known before the body reader answers.
    app.add_middleware(
        BodyReaderMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_read_timeout.total_seconds(),
    )
    app.add_middleware(RequestContextMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn's worker processes, which read settings themselves."""
    return create_app(Settings())
