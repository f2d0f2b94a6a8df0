"""Start servers, load them with wrk at fixed concurrency, and collect table rows."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 32


@dataclass
class Row:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    extra: str = ""
    p95_ms: float | None = None  # only from scripts that report it
    cpu_us: float | None = None  # server CPU (user+sys) per request, when its pid was given


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 30) -> float:
    """Seconds until `url` answers 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} not ready after {timeout_s}s")


@contextmanager
def server(
    args: Sequence[str], ready_path: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """Run a server on a free port; yield its base URL, process and start-up seconds."""
    port = free_port()
    process = subprocess.Popen(
        [*args, "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        startup = wait_ready(base + ready_path)
        yield base, process, startup
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def uvicorn_app(target: str) -> list[str]:
    # The same server settings Tenantry runs with: one process, uvloop/httptools when present.
    return [
        str(BIN / "python"),
        "-m",
        "uvicorn",
        target,
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-server-header",
    ]


_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


_SCRIPTED = re.compile(r"^P(\d+)_US (\d+)$", re.MULTILINE)


def wrk(
    name: str,
    url: str,
    headers: Sequence[str] = (),
    connections: int = CONNECTIONS,
    script: Path | None = None,
    env: dict[str, str] | None = None,
    pid: int | None = None,
) -> Row:
    """One row; a `script` (bench/*.lua) also reports p95, and reads `env`; with the server's
    `pid`, the CPU time its processes spent per request."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{SECONDS}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    output = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_DIR": str(ROOT / "bench"), **(env or {})},
    ).stdout
    latencies = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(output)}
    latencies |= {p: int(us) / 1000 for p, us in _SCRIPTED.findall(output)}
    rate = _RATE.search(output)
    requests = re.search(r"(\d+) requests in", output)
    cpu_us = None
    if pid and requests and int(requests.group(1)):
        cpu_us = (cpu_seconds(pid) - cpu_before) / int(requests.group(1)) * 1e6
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return Row(
        name,
        float(rate.group(1)) if rate else 0.0,
        latencies.get("50", 0.0),
        latencies.get("99", 0.0),
        f"{non_2xx.group(1)} non-2xx!" if non_2xx else "",
        latencies.get("95"),
        cpu_us,
    )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children (server workers), so far."""
    total = 0
    for each in [pid, *_children(pid)]:
        stat = Path(f"/proc/{each}/stat")
        if stat.exists():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    pids = [pid, *_children(pid)]
    total_kb = 0
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
            total_kb += int(match.group(1)) if match else 0
    return total_kb / 1024


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(c) for c in path.read_text().split()] if path.exists() else []
    return found + [g for c in found for g in _children(c)]


def table(title: str, rows: list[Row], reference: Row) -> str:
    lines = [
        f"### {title}",
        "",
        f"{CONNECTIONS} connections unless the row says, {SECONDS}s per row, wrk; "
        "ratio = req/s over FastAPI hello of the same run.",
        "",
        "| row | req/s | p50 ms | p95 ms | p99 ms | vs FastAPI hello | CPU µs/req | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        ratio = row.requests_per_s / reference.requests_per_s if reference.requests_per_s else 0.0
        cells = [
            row.name,
            f"{row.requests_per_s:,.0f}",
            f"{row.p50_ms:.2f}",
            "-" if row.p95_ms is None else f"{row.p95_ms:.2f}",
            f"{row.p99_ms:.2f}",
            f"{ratio:.2f}",
            "-" if row.cpu_us is None else f"{row.cpu_us:,.0f}",
            row.extra,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
