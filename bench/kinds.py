"""The benchmark's no-op task, loaded by worker processes with TENANTRY_JOB_MODULES=bench.kinds."""

from tenantry.worker.registry import JobContext, registry


@registry.task("bench.noop")
async def noop(_: JobContext) -> None:
    return None
