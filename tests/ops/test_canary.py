"""The canary CLI against a live `tenantry serve` and `tenantry worker` (separate processes):
it passes every stage; without a worker it fails at provisioning; a stage over its budget is
an SLO_BREACH; and none of it counts in the funnel."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_servers import running
from tests.conftest import TENANTRY
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
    env = served_env(tmp_path / "data", database_url, TENANTRY_JOB_POLL_INTERVAL="1")
    with running(["serve"], env, tmp_path, log=tmp_path / "serve.log") as (base_url, _):
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
    tmp_path: Path,
) -> None:
    base_url, env = served
    worker_process(TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"])
    code, run = canary(base_url, env)
    assert code == 0, run
    assert run["ok"] and list(run["stages"]) == STAGES and run["failure"] is None
    settings = machine_settings(tmp_path / "data", database_url)
    async with httpx.AsyncClient(base_url=base_url) as client:
        funnel = (await client.get("/v1/admin/funnel", headers=operator(settings))).json()
    assert {stage["count"] for stage in funnel["stages"]} == {0}, "canary traffic counted"


def test_without_a_worker_it_fails_at_provisioning(served: tuple[str, dict[str, str]]) -> None:
    base_url, env = served
    code, run = canary(base_url, env, TENANTRY_CANARY_BUDGETS='{"completion": 3}')
    assert code == 1
    assert (run["failure"], run["stage"]) == ("FAIL_PROVISION", "provision")
    assert list(run["stages"]) == STAGES[:3]


def test_a_stage_over_its_budget_is_an_slo_breach(
    served: tuple[str, dict[str, str]], worker_process: Callable[..., WorkerProcess]
) -> None:
    base_url, env = served
    worker_process(TENANTRY_DATA_DIR=env["TENANTRY_DATA_DIR"])
    code, run = canary(base_url, env, TENANTRY_CANARY_BUDGETS='{"enqueue": 0.000001}')
    assert code == 0 and run["ok"]
    assert run["breaches"] == ["enqueue"]
