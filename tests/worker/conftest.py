"""Fixtures for the job engine: the test kinds, their run log, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tests.worker.kinds  # noqa: F401  (registers the test kinds)
from tenantry.config import Settings
from tests.fixtures.workers import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
TENANTRY = str(Path(sys.executable).parent / "tenantry")


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """The file test kinds append their runs to."""
    path = tmp_path / "runs.log"
    path.touch()
    return path


@pytest.fixture
def worker_process(
    job_settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `tenantry worker` processes on the test's database."""
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")},
            "PYTHONPATH": str(ROOT),
            "TENANTRY_DATA_DIR": str(job_settings.data_dir),
            "TENANTRY_DATABASE_URL": job_settings.resolved_database_url,
            "TENANTRY_JOB_MODULES": "tests.worker.kinds",
            "TENANTRY_JOB_POLL_INTERVAL": "1",
            **env,
        }
        handle = log.open("wb")
        process = subprocess.Popen(
            [TENANTRY, "worker", *args], env=environment, stdout=handle, stderr=handle
        )
        started.append(WorkerProcess(process, log))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)
