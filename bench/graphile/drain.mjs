// Drain no-op jobs with graphile-worker (run by bench/peers.py).
// Usage: node drain.mjs <postgres dsn> <jobs> <defaults|batched>; prints jobs/s last.
import { run, runMigrations } from "graphile-worker";
import pg from "pg";

const [connectionString, total, mode] = process.argv.slice(2);
const jobs = Number(total);
const worker = mode === "batched" ? { localQueue: { size: 500 }, completeJobBatchDelay: 0 } : {};
const options = {
  connectionString,
  concurrency: 10,
  noHandleSignals: true,
  pollInterval: 1000,
  taskList: { noop: async () => {} },
  preset: { worker },
};

await runMigrations(options);
const client = new pg.Client({ connectionString });
await client.connect();
await client.query("delete from graphile_worker._private_jobs");
for (let first = 0; first < jobs; first += 1000) {
  const count = Math.min(1000, jobs - first);
  await client.query(
    "select graphile_worker.add_job('noop', '{}'::json) from generate_series(1, $1)",
    [count],
  );
}
const started = performance.now();
const runner = await run(options);
for (;;) {
  const { rows } = await client.query("select count(*)::int as n from graphile_worker._private_jobs");
  if (rows[0].n === 0) break;
  await new Promise((resolve) => setTimeout(resolve, 10));
}
const elapsed = (performance.now() - started) / 1000;
await runner.stop();
await client.end();
console.log(jobs / elapsed);
