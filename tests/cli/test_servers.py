"""`tenantry up` and `tenantry serve` as real processes: start, answer, stop cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.fixtures.servers import free_port

TENANTRY = str(Path(sys.executable).parent / "tenantry")
READY_TIMEOUT_S = 30


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TENANTRY_", "PROMETHEUS_"))}
    return {**base, "TENANTRY_DATA_DIR": str(data_dir), **extra}


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited before it was ready"
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"not ready after {READY_TIMEOUT_S}s")


@contextmanager
def running(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    port: int | None = None,
    *,
    log: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The server on `port`; its output piped, or written to `log` for a long run (a pipe
    nobody reads fills up and stalls the server's logging)."""
    port = port or free_port()
    output = log.open("wb") if log else subprocess.PIPE
    process = subprocess.Popen(
        [TENANTRY, *args, "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=output,
        stderr=subprocess.STDOUT,
        process_group=0,  # its own group: `serve --workers` children are stopped with it
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(base_url, process)
        yield base_url, process
    finally:
        stop_group(process)
        if log:
            output.close()  # type: ignore[union-attr]


def stop_group(process: subprocess.Popen[bytes], grace_s: float = 20) -> None:
    """SIGTERM to the server and its workers, a wait for them, then SIGKILL for stragglers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def assert_embedded_worker_runs_jobs(data_dir: Path, cwd: Path) -> None:
    """A job enqueued by another process is run by the worker inside `up`."""

    def cli(*args: str) -> str:
        done = subprocess.run(
            [TENANTRY, *args], env=_env(data_dir), cwd=cwd, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    job_id = cli("schedules", "run", "jobs.cleanup").split()[-1]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while json.loads(cli("jobs", "show", job_id, "--json"))["status"] != "COMPLETED":
        assert time.monotonic() < deadline, "the embedded worker did not run the job"
        time.sleep(0.1)


class TestUp:
    def test_fresh_data_dir_serves_then_stops_on_sigterm(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "fresh"
        with running(["up"], _env(data_dir), tmp_path) as (base_url, process):
            assert httpx.get(f"{base_url}/health").json()["status"] == "ok"
            deep = httpx.get(f"{base_url}/health?deep=true").json()
            assert deep["status"] == "ok", deep
            assert_embedded_worker_runs_jobs(data_dir, tmp_path)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        output = process.stdout.read().decode() if process.stdout else ""
        assert "Traceback" not in output
        assert (data_dir / "tenantry.db").exists() and (data_dir / "keys" / "signing.pem").exists()
        check = subprocess.run(
            [TENANTRY, "migrate", "--check"], env=_env(data_dir), cwd=tmp_path, capture_output=True
        )
        assert check.returncode == 0, check.stderr

    def test_prod_refuses_dev_settings_naming_each(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [TENANTRY, "up"],
            env=_env(tmp_path, TENANTRY_ENV="prod"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1
        assert "TENANTRY_EMAIL_BACKEND" in result.stderr and "TENANTRY_SECRET_KEY" in result.stderr


class TestServeWorkers:
    def test_metrics_add_up_across_worker_processes(self, tmp_path: Path) -> None:
        with running(
            ["serve", "--migrate", "--workers", "2"], _env(tmp_path / "data"), tmp_path
        ) as (base_url, _):
            for _ in range(40):
                httpx.get(
                    f"{base_url}/health/live"
                )  # a new connection each: the kernel spreads them
            pattern = re.compile(
                r'tenantry_http_request_duration_seconds_count\{method="GET",route="/health/live",'
                r'status_class="2xx"\} (\d+(?:\.\d+)?)'
            )
            counts = set()
            for _ in range(6):
                match = pattern.search(httpx.get(f"{base_url}/metrics").text)
                assert match, "the live-probe histogram is missing"
                counts.add(float(match.group(1)))
        assert counts == {40.0}
