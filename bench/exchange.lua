-- wrk script: POST /v1/auth/token with client credentials (the key's secret from BENCH_SECRET).
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_secret=" .. os.getenv("BENCH_SECRET")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

dofile(os.getenv("BENCH_DIR") .. "/percentiles.lua")
