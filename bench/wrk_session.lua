-- wrk: a staff page with the bench user's browser session (BENCH_SESSION).
wrk.headers["Cookie"] = "sessionid=" .. os.getenv("BENCH_SESSION")
