"""The canary CLI against a live `tenantry serve` and `tenantry worker` (separate processes):
it passes every stage; without a worker it fails at provisioning; behind a gateway that refuses
key exchanges it fails at auth; a stage over its budget is an SLO_BREACH; and none of it counts
in the funnel."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.db import Database
from tenantry.models import IntegrationKey, Invitation, Job, Membership, Tenant, User
from tenantry.ops import canary_runs
from tests.cli.test_servers import running
from tests.conftest import TENANTRY
from tests.fixtures.factories import create_member, create_tenant
from tests.fixtures.servers import free_port
from tests.fixtures.workers import WorkerProcess
from tests.ops.test_funnel import operator
from tests.reliability.world import machine_settings, served_env

STAGES = [
    "signup",
    "verify",
    "provision",
    "session",
    "invite",
    "accept",
    "key",
    "exchange",
    "enqueue",
    "completion",
]


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()  # the public URL names it: every process's tokens name their issuer
    env = served_env(
        tmp_path / "data",
        database_url,
        TENANTRY_JOB_POLL_INTERVAL="1",
        TENANTRY_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    with running(["serve"], env, tmp_path, port, log=tmp_path / "serve.log") as (base_url, _):
        yield base_url, env


def canary(base_url: str, env: dict[str, str], **settings: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [TENANTRY, "canary", "--base-url", base_url, "--json"],
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


async def test_passes_every_stage_and_counts_nowhere(
    served: tuple[str, dict[str, str]],
    worker_process: Callable[..., WorkerProcess],
    database_url: str,
    owner_database_url: str,
    tmp_path: Path,
) -> None:
    base_url, env = served
    worker_process(TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"])
    code, run = canary(base_url, env)
    assert code == 0, run
    assert run["ok"] and list(run["stages"]) == STAGES and run["failure"] is None
    settings = machine_settings(
        tmp_path / "data", database_url, public_url=env["TENANTRY_PUBLIC_URL"]
    )
    async with httpx.AsyncClient(base_url=base_url) as client:
        funnel = (await client.get("/v1/admin/funnel", headers=operator(settings))).json()
    assert {stage["count"] for stage in funnel["stages"]} == {0}, "canary traffic counted"

    database = Database(owner_database_url)
    try:
        real = await create_tenant(database, slug="real")
        await create_member(database, real.id, "owner")
        async with database.session() as session:
            assert await canary_runs.delete_stale_tenants(session, timedelta(hours=24)) == 0
            assert await canary_runs.delete_stale_tenants(session, timedelta(0)) == 1
        async with database.session() as session:
            for model in (Tenant, User, Membership, IntegrationKey, Invitation):
                rows = (await session.execute(select(func.count()).select_from(model))).scalar()
                assert rows == (1 if model in (Tenant, User, Membership) else 0), model
            left = select(func.count()).select_from(Job).where(Job.tenant_id.is_not(None))
            assert (await session.execute(left)).scalar() == 0
    finally:
        await database.dispose()


class AlertReceiver:
    """A real HTTP endpoint for TENANTRY_ALERT_WEBHOOK_URL, keeping what it is sent."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[AlertReceiver]:
    hook = AlertReceiver()
    yield hook
    hook.close()


def test_without_a_worker_it_fails_at_provisioning_alerts_and_is_kept(
    served: tuple[str, dict[str, str]],
    worker_process: Callable[..., WorkerProcess],
    receiver: AlertReceiver,
) -> None:
    base_url, env = served
    code, run = canary(
        base_url,
        env,
        TENANTRY_CANARY_BUDGETS='{"completion": 3}',
        TENANTRY_ALERT_WEBHOOK_URL=receiver.url,
    )
    assert code == 1
    assert (run["failure"], run["stage"]) == ("FAIL_PROVISION", "provision")
    assert list(run["stages"]) == STAGES[:3]
    ((alert,),) = [receiver.received]
    assert set(alert) == {"text"} and "FAIL_PROVISION" in alert["text"]
    metrics = httpx.get(f"{base_url}/metrics").text
    assert "tenantry_canary_success 0.0" in metrics

    worker_process(TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"])
    assert canary(base_url, env)[0] == 0
    result = subprocess.run(
        [TENANTRY, "canary", "report", "--days", "7", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr  # one of the two runs failed
    report = json.loads(result.stdout)
    assert (report["runs"], report["clean"]) == (2, False)
    assert [(f["failure"], f["stage"]) for f in report["failures"]] == [
        ("FAIL_PROVISION", "provision")
    ]


class RefusingGateway:
    """A proxy in front of the deployment (as a misconfigured gateway or WAF would be) that
    forwards every request but answers the token endpoint 401: integration keys refused."""

    def __init__(self, upstream: str) -> None:
        client = httpx.Client(base_url=upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/v1/auth/token"):
                    status, headers = 401, {"content-type": "application/problem+json"}
                    content = b'{"status": 401, "code": "UNAUTHENTICATED"}'
                else:
                    keep = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    answer = client.request(self.command, self.path, content=body, headers=keep)
                    status, content = answer.status_code, answer.content
                    headers = {"content-type": answer.headers.get("content-type", "")}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward

            def log_message(self, *_: object) -> None:
                pass

        self.client = client
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


def test_when_key_exchanges_are_refused_it_fails_at_auth(
    served: tuple[str, dict[str, str]], worker_process: Callable[..., WorkerProcess]
) -> None:
    base_url, env = served
    worker_process(TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"])
    gateway = RefusingGateway(base_url)
    try:
        code, run = canary(gateway.url, env)
    finally:
        gateway.close()
    assert code == 1
    assert (run["failure"], run["stage"]) == ("FAIL_AUTH", "exchange")
    assert list(run["stages"]) == STAGES[: STAGES.index("exchange") + 1]
    assert "answered 401" in run["error"]


def test_a_stage_over_its_budget_is_an_slo_breach(
    served: tuple[str, dict[str, str]], worker_process: Callable[..., WorkerProcess]
) -> None:
    base_url, env = served
    worker_process(TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"])
    code, run = canary(base_url, env, TENANTRY_CANARY_BUDGETS='{"enqueue": 0.000001}')
    assert code == 0 and run["ok"]
    assert run["breaches"] == ["enqueue"]


def test_the_in_process_schedule_runs_it_and_keeps_the_result(
    served: tuple[str, dict[str, str]], worker_process: Callable[..., WorkerProcess]
) -> None:
    _, env = served
    scheduled = {
        "TENANTRY_CANARY_INTERVAL": "1h",
        "TENANTRY_PUBLIC_URL": env["TENANTRY_PUBLIC_URL"],
    }
    worker_process(TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"], **scheduled)

    def fire() -> subprocess.CompletedProcess[str]:
        command = [TENANTRY, "schedules", "run", "canary.run"]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    deadline = time.monotonic() + 30
    while (fired := fire()).returncode != 0 and time.monotonic() < deadline:
        assert "a worker writes the schedules" in fired.stderr, fired.stderr  # not yet started
        time.sleep(0.5)
    assert fired.returncode == 0, fired.stderr

    def report() -> dict[str, Any]:
        result = subprocess.run(
            [TENANTRY, "canary", "report", "--json"], env=env, capture_output=True, text=True
        )
        return dict(json.loads(result.stdout))

    deadline = time.monotonic() + 60
    while report()["runs"] == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert report() | {"days": 7} == {"days": 7, "runs": 1, "clean": True, "failures": []}
