"""Shared output helpers: Rich for people, `--json` for scripts, exit codes by the contract."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True)

EXIT_FINDING = 1  # a check found something, or the operation failed
EXIT_USAGE = 2  # click's own code for bad arguments


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str, code: int = EXIT_FINDING) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
