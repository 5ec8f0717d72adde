-- wrk: GET /api/allocations/<orderid> for seeded orders picked at random
-- (DEMO-0000001 … DEMO-<BENCH_ORDERS>), with the bench user's API token (BENCH_TOKEN).
-- pgbench_allocations.sql picks its orders the same way.
wrk.headers["Authorization"] = "Token " .. os.getenv("BENCH_TOKEN")
local orders = tonumber(os.getenv("BENCH_ORDERS"))
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + number)
end

function request()
  return wrk.format(nil, string.format("/api/allocations/DEMO-%07d", math.random(1, orders)))
end
