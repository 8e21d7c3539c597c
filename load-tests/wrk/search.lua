-- wrk script: GET /api/admin/customers/search with a rotating set of queries and filters.
--   TOKEN  the JWT (customer360 token --role admin --name Bench)
--   QUERY  a single query string to repeat instead (e.g. "q=ann%20lee"), for one figure per query
local token = os.getenv("TOKEN") or error("set TOKEN")
local headers = { ["Authorization"] = "Bearer " .. token }
local fixed = os.getenv("QUERY")
local queries = {
  "q=ana%20john", "q=lee", "q=example.co.uk", "q=5550102030", "q=010-98", "q=ORD-00000060",
  "tier=gold&sort=lifetime_value", "clv_min=500000&clv_max=900000", "orders_min=20&sort=last_order",
  "segment=Champions&sort=name", "tag=VIP", "signup_from=2026-01-01&signup_to=2026-03-01",
  "last_order_from=2026-10-01&tier=platinum", "q=sophia&tier=silver&orders_min=3",
}
local i = 0

function request()
  local q = fixed
  if not q then
    i = i + 1
    q = queries[(i % #queries) + 1]
  end
  return wrk.format("GET", "/api/admin/customers/search?" .. q, headers)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  non-2xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status))
end
