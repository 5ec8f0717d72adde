-- wrk: POST /api/allocate of one unit for a new order each time, over the SKUs in
-- BENCH_SKUS (comma-separated), with the bench user's API token (BENCH_TOKEN): the write
-- that Cosmic Python's ch.12 app serves at /allocate, 16 clients at once. The peer
-- (bench/peer.py) gets the same with BENCH_PREFIX "" and no token.
wrk.method = "POST"
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Token " .. token
end
wrk.headers["Content-Type"] = "application/json"
local prefix = os.getenv("BENCH_PREFIX") or "/api"
local skus = {}
for sku in string.gmatch(os.getenv("BENCH_SKUS"), "[^,]+") do
  skus[#skus + 1] = sku
end
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + number)
  sent = 0
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"orderid": "wrk-%d-%d-%d", "sku": "%s", "qty": 1}',
    os.time(), number, sent, skus[math.random(1, #skus)]
  )
  return wrk.format(nil, prefix .. "/allocate", nil, body)
end
