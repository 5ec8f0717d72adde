-- wrk: send the bench user's API token (BENCH_TOKEN) with every request.
wrk.headers["Authorization"] = "Token " .. os.getenv("BENCH_TOKEN")
