"""Task kinds for the tests; worker processes load them with TENANTRY_JOB_MODULES.

Each records its runs by appending a line to the file named in its payload:
appends of one short line are atomic, so several processes can share a file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tenantry.worker.registry import JobContext, NonRetryableError, registry


def record(context: JobContext, event: str) -> None:
    with Path(context.payload["path"]).open("a") as handle:
        handle.write(f"{event} {context.job_id} {context.attempt}\n")


@registry.task("test.record")
async def record_run(context: JobContext) -> dict[str, Any]:
    record(context, "done")
    return {"attempt": context.attempt}


@registry.task("test.flaky")
async def flaky(context: JobContext) -> str:
    record(context, "try")
    if context.attempt <= context.payload["failures"]:
        raise RuntimeError(f"failure number {context.attempt}")
    return "finally"


@registry.task("test.no_retry")
async def no_retry(context: JobContext) -> None:
    record(context, "try")
    raise NonRetryableError("this will never work")


@registry.task("test.block_first")
async def block_first(context: JobContext) -> str:
    """The first attempt hangs (until its worker is killed); later ones complete."""
    if context.attempt == 1:
        record(context, "started")
        await asyncio.sleep(3600)
    record(context, "done")
    return "second time lucky"


@registry.task("test.sleep")
async def sleep(context: JobContext) -> str:
    record(context, "started")
    await asyncio.sleep(context.payload["seconds"])
    record(context, "done")
    return "slept"
