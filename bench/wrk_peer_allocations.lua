-- wrk: GET /allocations/<orderid> from the peer (Cosmic Python's ch.12 app,
-- bench/peer.py) for seeded orders picked at random (DEMO-0000001 … DEMO-<BENCH_ORDERS>):
-- what wrk_allocations.lua asks Quartermaster, without a token (the peer has no accounts).
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
  return wrk.format(nil, string.format("/allocations/DEMO-%07d", math.random(1, orders)))
end
