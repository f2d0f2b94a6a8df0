"""`tenantry jobs`, `queues` and `schedules` against a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantry.cli.main import app
from tenantry.db import Database
from tenantry.models import JobStatus
from tenantry.worker import queue, transitions
from tenantry.worker.queue import enqueue
from tenantry.worker.registry import load_task_modules
from tests.conftest import make_settings

runner = CliRunner()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"TENANTRY_DATABASE_URL": database_url, "TENANTRY_DATA_DIR": str(tmp_path)}


@pytest.fixture
def jobs(owner_database_url: str, tmp_path: Path) -> dict[str, str]:
    """One pending, one failed and one processing job."""

    async def make() -> dict[str, str]:
        load_task_modules(make_settings(tmp_path))
        database = Database(owner_database_url)
        try:
            async with database.session() as session:
                failed = await enqueue(session, "canary.ping", {}, tenant_id="ten_a")
                pending = await enqueue(
                    session,
                    "canary.ping",
                    {"n": 1},
                    tenant_id="ten_b",
                    queue="bulk",
                    submitted_by="usr_b",
                )
            async with database.session() as session:
                (claimed,) = await transitions.claim(
                    session, worker_id="w", limit=1, lease=timedelta(minutes=5)
                )
                await transitions.finish(
                    session,
                    worker_id="w",
                    outcomes=[
                        queue.Outcome(claimed.id, claimed.attempts, JobStatus.FAILED, error="boom")
                    ],
                )
            return {"failed": failed, "pending": pending}
        finally:
            await database.dispose()

    return asyncio.run(make())


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


class TestJobs:
    def test_list_filters_and_json(self, env: dict[str, str], jobs: dict[str, str]) -> None:
        code, out = invoke(env, "jobs", "list", "--status", "FAILED", "--json")
        assert code == 0
        (row,) = json.loads(out)
        assert row["id"] == jobs["failed"] and row["last_error"] == "boom"
        code, out = invoke(env, "jobs", "list", "--tenant", "ten_b", "--json")
        assert [r["id"] for r in json.loads(out)] == [jobs["pending"]]
        code, out = invoke(env, "jobs", "list")
        assert code == 0 and jobs["pending"][:12] in out

    def test_show(self, env: dict[str, str], jobs: dict[str, str]) -> None:
        code, out = invoke(env, "jobs", "show", jobs["pending"], "--json")
        assert code == 0 and json.loads(out)["payload"] == {"n": 1}
        code, out = invoke(env, "jobs", "show", "job_missing")
        assert code == 1 and "no job" in out

    def test_stats(self, env: dict[str, str], jobs: dict[str, str]) -> None:
        invoke(env, "queues", "pause", "bulk")
        code, out = invoke(env, "jobs", "stats", "--json")
        assert code == 0
        stats = json.loads(out)
        assert stats["paused"] == ["bulk"]
        counts = {(r["queue"], r["status"]): r["count"] for r in stats["queues"]}
        assert counts == {("bulk", "PENDING"): 1, ("default", "FAILED"): 1}
        bulk = next(r for r in stats["queues"] if r["queue"] == "bulk")
        assert bulk["paused"] is True and bulk["oldest_pending_age_s"] >= 0
        # Only the submitted job counts against the admission caps.
        assert stats["admission"] == [
            {"cap": "total", "limit": 80, "in_use": 1},
            {"cap": "tenant ten_b", "limit": 20, "in_use": 1},
        ]
        code, out = invoke(env, "jobs", "stats")
        assert code == 0 and "admission caps" in out and "tenant ten_b" in out

    def test_retry_only_failed(self, env: dict[str, str], jobs: dict[str, str]) -> None:
        assert invoke(env, "jobs", "retry", jobs["failed"])[0] == 0
        code, out = invoke(env, "jobs", "show", jobs["failed"], "--json")
        shown = json.loads(out)
        assert (shown["status"], shown["attempts"]) == ("PENDING", 0)
        code, out = invoke(env, "jobs", "retry", jobs["pending"])
        assert code == 1 and "only FAILED" in out

    def test_cancel_only_pending(self, env: dict[str, str], jobs: dict[str, str]) -> None:
        assert invoke(env, "jobs", "cancel", jobs["pending"])[0] == 0
        assert (
            json.loads(invoke(env, "jobs", "show", jobs["pending"], "--json")[1])["status"]
            == "CANCELLED"
        )
        code, out = invoke(env, "jobs", "cancel", jobs["failed"])
        assert code == 1 and "only PENDING" in out

    def test_bad_status_is_a_usage_error(self, env: dict[str, str]) -> None:
        assert invoke(env, "jobs", "list", "--status", "SLEEPY")[0] == 2


class TestQueues:
    def test_pause_and_resume(self, env: dict[str, str], jobs: dict[str, str]) -> None:
        assert invoke(env, "queues", "pause", "bulk")[0] == 0
        assert json.loads(invoke(env, "jobs", "stats", "--json")[1])["paused"] == ["bulk"]
        assert invoke(env, "queues", "resume", "bulk")[0] == 0
        assert json.loads(invoke(env, "jobs", "stats", "--json")[1])["paused"] == []


class TestSchedules:
    def test_list_and_run(self, env: dict[str, str]) -> None:
        # Rows appear when a worker starts; `run` needs one.
        async def sync() -> None:
            from tenantry.worker.registry import registry
            from tenantry.worker.scheduler import sync_schedules

            database = Database(env["TENANTRY_DATABASE_URL"])
            await sync_schedules(database, registry)
            await database.dispose()

        load_task_modules(make_settings(Path(env["TENANTRY_DATA_DIR"])))
        asyncio.run(sync())
        code, out = invoke(env, "schedules", "run", "jobs.cleanup")
        assert code == 0 and "enqueued as job_" in out
        code, out = invoke(env, "schedules", "list", "--json")
        (row,) = [r for r in json.loads(out) if r["name"] == "jobs.cleanup"]
        assert row["cron"] == "*/10 * * * *" and row["last_outcome"] == "PENDING"
        assert invoke(env, "schedules", "run", "nope")[0] == 1
