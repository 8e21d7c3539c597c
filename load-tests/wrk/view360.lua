-- wrk script: GET /api/admin/customers/{id}/360 with a bearer token.
--   TOKEN        the JWT (customer360 token --role admin --name Bench)
--   CUSTOMERS    ids 1..CUSTOMERS (default 100000) are each requested once, spread over the
--                threads, so with an empty cache every request is a miss (uncached)
--   CUSTOMER_ID  fix the id instead: every request after the first is a cache hit (cached)
local token = os.getenv("TOKEN") or error("set TOKEN")
local customers = tonumber(os.getenv("CUSTOMERS") or "100000")
local fixed = os.getenv("CUSTOMER_ID")
local headers = { ["Authorization"] = "Bearer " .. token }
local threads = 0

function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end

function init(args)
  counter = 0
  stride = tonumber(os.getenv("WRK_THREADS") or "2")
end

function request()
  local id = fixed
  if not id then
    id = tostring((counter * stride + index) % customers + 1)
    counter = counter + 1
  end
  return wrk.format("GET", "/api/admin/customers/" .. id .. "/360", headers)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  non-2xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status))
end
