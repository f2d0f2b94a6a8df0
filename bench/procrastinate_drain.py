"""Drain no-op jobs with Procrastinate (run by bench/peers.py in its own environment).

Prints the drain rate (jobs/s) as its last line.
"""

import asyncio
import sys
import time

import procrastinate

dsn, total = sys.argv[1], int(sys.argv[2])
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))


@app.task(name="noop")
async def noop() -> None:
    return None


async def main() -> None:
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        for first in range(0, total, 1000):
            await noop.batch_defer_async(*({} for _ in range(first, min(total, first + 1000))))
        started = time.perf_counter()
        # wait=False: the worker returns once the queue is empty.
        await app.run_worker_async(concurrency=10, wait=False, install_signal_handlers=False)
        print(total / (time.perf_counter() - started))


asyncio.run(main())
