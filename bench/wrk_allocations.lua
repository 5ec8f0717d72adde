-- wrk: GET /api/allocations/<orderid> for seeded orders picked at random
-- (DEMO-0000001 … DEMO-<BENCH_ORDERS>), with the bench user's API token (BENCH_TOKEN).
-- pgbench_allocations.sql picks its orders the same way. The peer (bench/peer.py) gets
-- the same with BENCH_PREFIX "" and no token.
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Token " .. token
end
local prefix = os.getenv("BENCH_PREFIX") or "/api"
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
  return wrk.format(nil, string.format("%s/allocations/DEMO-%07d", prefix, math.random(1, orders)))
end
