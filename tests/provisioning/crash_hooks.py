"""Loaded by a worker process under test: the step named in TENANTRY_TEST_CRASH_STEP hangs
on its first run (after writing TENANTRY_TEST_CRASH_MARKER), so the test can SIGKILL the
worker in the middle of it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path
from typing import Any

from tenantry.provisioning import steps
from tenantry.provisioning.steps import Step, StepContext

NAME = os.environ.get("TENANTRY_TEST_CRASH_STEP")
MARKER = Path(os.environ.get("TENANTRY_TEST_CRASH_MARKER", "/nonexistent"))


def _hanging(original: Step) -> Step:
    async def run(context: StepContext) -> dict[str, Any] | None:
        result = await original.run(context)  # its work is done, not yet committed
        if not MARKER.exists():  # noqa: ASYNC240  (a test hook; the loop will hang anyway)
            MARKER.write_text(original.name)  # noqa: ASYNC240
            await asyncio.sleep(3600)
        return result

    return dataclasses.replace(original, run=run)


if NAME:
    steps.load_step_modules()
    steps._steps[NAME] = _hanging(steps.get_step(NAME))
