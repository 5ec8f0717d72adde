-- wrk: POST /allocate of one unit for a new order each time to the peer (Cosmic Python's
-- ch.12 app, bench/peer.py), over the SKUs in BENCH_SKUS (comma-separated): what
-- wrk_allocate.lua sends Quartermaster, without a token (the peer has no accounts).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
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
    '{"orderid": "peer-%d-%d-%d", "sku": "%s", "qty": 1}',
    os.time(), number, sent, skus[math.random(1, #skus)]
  )
  return wrk.format(nil, "/allocate", nil, body)
end
