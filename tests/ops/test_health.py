from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tenantry.db import Database
from tenantry.job import service as job_service
from tenantry.kit.clock import clock
from tenantry.worker.queue import enqueue
from tenantry.worker.registry import load_task_modules
from tests.conftest import AppFactory, make_settings
from tests.fixtures.servers import free_port


class TestShallowHealth:
    async def test_reports_ok_with_version_and_uptime(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["version"]
        assert body["uptime_s"] >= 0
        assert body["checks"] == {}

    async def test_live_always_answers(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/health/live")).json() == {"status": "ok"}


class TestDeepHealth:
    async def test_all_parts_ok_and_rate_limit_local(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health", params={"deep": "true"})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["checks"]["database"]["status"] == "ok"
        assert body["checks"]["migrations"] == {"status": "ok"}
        assert body["checks"]["rate_limit"] == {"status": "local", "store": "memory"}
        assert body["checks"]["mail"]["status"] == "ok"
        assert body["checks"]["mail"]["backend"] == "file"
        assert body["checks"]["queue"] == {
            "status": "ok",
            "pending": 0,
            "processing": 0,
            "oldest_pending_age_s": None,
            "paused": [],
        }

    async def test_queue_backlog_and_paused_queues_are_shown(
        self, client: httpx.AsyncClient, owner_database_url: str
    ) -> None:
        database = Database(owner_database_url)
        load_task_modules(make_settings(Path("unused")))
        async with database.session() as session:
            await enqueue(session, "canary.ping", {}, queue="bulk")
            await job_service.set_queue_paused(session, "bulk", True)
        await database.dispose()
        clock.advance(timedelta(seconds=30))
        queue_check = (await client.get("/health?deep=true")).json()["checks"]["queue"]
        assert queue_check["status"] == "ok"
        assert queue_check["pending"] == 1 and queue_check["paused"] == ["bulk"]
        assert queue_check["oldest_pending_age_s"] >= 30

    async def test_redis_configured_and_reachable(
        self, client_for: AppFactory, database_url: str, redis_url: str, tmp_path: Path
    ) -> None:
        settings = make_settings(tmp_path, database_url=database_url, redis_url=redis_url)
        async with client_for(settings) as client:
            body = (await client.get("/health?deep=true")).json()
        assert body["status"] == "ok"
        assert body["checks"]["rate_limit"]["status"] == "ok"
        assert body["checks"]["rate_limit"]["store"] == "redis"

    async def test_unreachable_redis_degrades(
        self, client_for: AppFactory, database_url: str, tmp_path: Path
    ) -> None:
        dead = f"redis://127.0.0.1:{free_port()}/0"
        async with client_for(
            make_settings(tmp_path, database_url=database_url, redis_url=dead)
        ) as client:
            response = await client.get("/health?deep=true")
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        assert response.json()["checks"]["rate_limit"]["status"] == "down"

    async def test_unreachable_smtp_server_degrades(
        self, client_for: AppFactory, database_url: str, tmp_path: Path
    ) -> None:
        settings = make_settings(
            tmp_path,
            database_url=database_url,
            email_backend="smtp",
            smtp_url=f"smtp://127.0.0.1:{free_port()}",
        )
        async with client_for(settings) as client:
            body = (await client.get("/health?deep=true")).json()
        assert body["status"] == "degraded"
        assert (
            body["checks"]["mail"]["status"] == "down"
            and body["checks"]["mail"]["backend"] == "smtp"
        )

    async def test_unmigrated_database_degrades_with_drift(
        self, client_for: AppFactory, empty_database_url: str, tmp_path: Path
    ) -> None:
        async with client_for(make_settings(tmp_path, database_url=empty_database_url)) as client:
            body = (await client.get("/health?deep=true")).json()
        assert body["status"] == "degraded"
        assert body["checks"]["migrations"]["status"] == "degraded"
        assert "no revision" in body["checks"]["migrations"]["drift"][0]


def _unreachable_database(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'missing-dir' / 'tenantry.db'}"
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"


class TestDatabaseDown:
    @pytest.mark.parametrize("backend", ["sqlite", "postgres"])
    async def test_deep_health_is_down_with_503(
        self, client_for: AppFactory, backend: str, tmp_path: Path
    ) -> None:
        settings = make_settings(tmp_path, database_url=_unreachable_database(backend, tmp_path))
        async with client_for(settings) as client:
            response = await client.get("/health?deep=true")
        assert response.status_code == 503
        assert response.json()["status"] == "down"
        assert response.json()["checks"]["database"]["status"] == "down"

    @pytest.mark.parametrize("backend", ["sqlite", "postgres"])
    async def test_not_ready(self, client_for: AppFactory, backend: str, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, database_url=_unreachable_database(backend, tmp_path))
        async with client_for(settings) as client:
            response = await client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "down"


class TestReady:
    async def test_ready_when_database_answers(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health/ready")
        assert response.status_code == 200
        assert response.json()["checks"]["database"]["status"] == "ok"
