"""Backups taken while 20 clients sign up hold every signup answered before the backup began;
restored into an empty database they are all there; `--verify` reads a backup's revision and
row counts, and a restore refuses to replace data without --force."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tenantry.db import Database
from tenantry.models import SignupSession
from tests.cli.test_servers import running
from tests.conftest import TENANTRY
from tests.fixtures import databases
from tests.fixtures.servers import PostgresServer
from tests.reliability.world import served_env

CLIENTS = 20


@pytest.fixture
async def empty_target(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[str]:
    """Where the backup is restored: a new SQLite file, or a new PostgreSQL database (the
    owner's URL)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = await databases.create_postgres_database(server, None)
    yield server.url(name)
    await databases.drop_postgres_database(server, name)


def tenantry(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TENANTRY, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


class Load:
    """Clients signing up until stopped, each answer kept with when it arrived."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.answered: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def _client(self, number: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            serial = 0
            while not self.stopping.is_set():
                serial += 1
                body = {
                    "org_name": "Load",
                    "slug": f"load-{number}-{serial}",
                    "email": f"c{number}-{serial}@load.example.com",
                    "plan": "starter",
                }
                answer = http.post("/v1/signup", json=body)
                if answer.status_code == 201:
                    self.answered.append((time.monotonic(), answer.json()["id"]))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def backup_under_load(env: dict[str, str], file: Path, tmp_path: Path) -> tuple[set[str], int]:
    """The ids answered 201 before the backup began, and how many were answered in all."""
    with running(["serve"], env, tmp_path) as (base_url, _), Load(base_url) as load:
        while len(load.answered) < 40:
            time.sleep(0.05)
        began = time.monotonic()
        made = tenantry(env, "backup", str(file), "--json")
        assert made.returncode == 0, made.stderr
        while sum(1 for at, _ in load.answered if at >= began) < 20:
            time.sleep(0.05)  # the load goes on past the backup
    return {signup_id for at, signup_id in load.answered if at < began}, len(load.answered)


async def test_a_backup_under_write_load_restores_every_signup_answered_before_it(
    database_url: str, owner_database_url: str, empty_target: str, tmp_path: Path
) -> None:
    env = served_env(
        tmp_path / "data", database_url, TENANTRY_MIGRATION_DATABASE_URL=owner_database_url
    )
    file = tmp_path / "tenantry.backup"
    before, answered = backup_under_load(env, file, tmp_path)
    assert answered > len(before) >= 40

    checked = tenantry(env, "backup", "--verify", str(file), "--json")
    assert checked.returncode == 0, checked.stderr
    found = json.loads(checked.stdout)
    assert found["ok"] and found["current"]
    assert found["rows"]["signup_sessions"] >= len(before)

    target = {**env, "TENANTRY_DATABASE_URL": empty_target}
    target["TENANTRY_MIGRATION_DATABASE_URL"] = empty_target
    restored = tenantry(target, "restore", str(file), "--reason", "drill")
    assert restored.returncode == 0, restored.stderr
    database = Database(empty_target)
    try:
        async with database.session() as session:
            kept = set((await session.execute(select(SignupSession.id))).scalars())
    finally:
        await database.dispose()
    assert before <= kept, f"{len(before - kept)} answered signups lost"

    again = tenantry(target, "restore", str(file))
    assert again.returncode == 1 and "--force" in again.stderr
    assert tenantry(target, "restore", str(file), "--force").returncode == 0
    assert tenantry(target, "audit", "verify").returncode == 0


def test_verify_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup")
    env = {"TENANTRY_DATA_DIR": str(tmp_path / "data")}
    checked = tenantry(env, "backup", "--verify", str(junk))
    assert checked.returncode == 1
