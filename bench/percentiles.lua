-- Shared by the wrk scripts: print p50/p95/p99 in microseconds for bench.harness to read.
function done(summary, latency, requests)
  for _, p in ipairs({50, 95, 99}) do
    io.write(string.format("P%d_US %d\n", p, latency:percentile(p)))
  end
end
