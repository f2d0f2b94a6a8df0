"""Peer job queues drained on the same PostgreSQL: Procrastinate and graphile-worker.

They are installed here only, never in the project's environment:
Procrastinate into `.venv-peers` (uv), graphile-worker into bench/graphile
(npm). A peer that cannot be installed is reported as n/a with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.harness import ROOT

PEERS_VENV = ROOT / ".venv-peers"
GRAPHILE_DIR = ROOT / "bench" / "graphile"
PROCRASTINATE_VERSION = "3.10.0"
GRAPHILE_VERSION = "0.18.0"

PeerRow = tuple[str, float | None, str]


def _install_procrastinate() -> Path:
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        uv = shutil.which("uv") or f"{sys.executable} -m uv"
        subprocess.run([*uv.split(), "venv", "--quiet", str(PEERS_VENV)], check=True)
        subprocess.run(
            [
                *uv.split(),
                "pip",
                "install",
                "--quiet",
                "--python",
                str(python),
                f"procrastinate=={PROCRASTINATE_VERSION}",
            ],
            check=True,
        )
    return python


def _drain(command: list[str], cwd: Path = ROOT) -> float:
    """Run a peer's drain script; it prints its jobs/s as its last line."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def procrastinate(dsn: str, jobs: int) -> PeerRow:
    name = f"Procrastinate {PROCRASTINATE_VERSION} (defaults, concurrency 10)"
    try:
        python = _install_procrastinate()
        rate = _drain([str(python), str(ROOT / "bench" / "procrastinate_drain.py"), dsn, str(jobs)])
        return name, rate, ""
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        return name, None, type(exc).__name__


def graphile(dsn: str, jobs: int, *, batched: bool) -> PeerRow:
    setting = "batched: localQueue 500, completeJobBatchDelay 0" if batched else "defaults"
    name = f"graphile-worker {GRAPHILE_VERSION} ({setting}, concurrency 10)"
    node = shutil.which("node")
    if node is None:
        return name, None, "node is not installed"
    try:
        if not (GRAPHILE_DIR / "node_modules" / "graphile-worker").exists():
            subprocess.run(
                ["npm", "install", "--silent", "--no-package-lock", "--no-audit", "--no-fund"],
                cwd=GRAPHILE_DIR,
                check=True,
                capture_output=True,
            )
        mode = "batched" if batched else "defaults"
        return name, _drain([node, "drain.mjs", dsn, str(jobs), mode], cwd=GRAPHILE_DIR), ""
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        return name, None, type(exc).__name__


def run_all(dsn: str, jobs: int) -> list[PeerRow]:
    return [
        procrastinate(dsn, jobs),
        graphile(dsn, jobs, batched=False),
        graphile(dsn, jobs, batched=True),
    ]
