#!/bin/bash
# The README's search sweep in one run: one single-client wrk run per query against a
# server on 127.0.0.1:8360, printed as Markdown table rows (query, p50, p90, p99, max in ms).
#   TOKEN     the JWT (customer360 token --role admin --name Bench)
#   SECONDS_EACH  how long each query runs (default 5)
set -euo pipefail
cd "$(dirname "$0")"
: "${TOKEN:?set TOKEN}"
each=${SECONDS_EACH:-5}
queries=(
  # text, selective
  "q=ana%20john" "q=5550102030" "q=ORD-00000060" "q=lee"
  # text, broad (q=example and q=%40 match every customer; q=a, q=e, q=1 are too short for a trigram)
  "q=example.co.uk" "q=example" "q=%40" "q=a" "q=e" "q=1" "q=jo" "q=qx" "q=555" "q=%25"
  "q=example&sort=name" "q=example&sort=lifetime_value" "q=example&sort=last_order" "q=a&sort=name"
  "q=example&limit=100" "q=example&sort=name&limit=100"
  # no text: the whole base sorted, and each filter alone
  "limit=20" "limit=100" "sort=lifetime_value" "sort=last_order"
  "tier=bronze" "tier=platinum" "tier=gold&sort=lifetime_value" "tag=VIP" "tag=VIP&sort=last_order"
  "segment=Champions&sort=name" "segment=Dormant" "segment=Dormant&sort=lifetime_value"
  "clv_min=1" "clv_max=1000" "clv_min=500000&clv_max=900000" "orders_min=1" "orders_max=2"
  "orders_min=20&sort=last_order" "signup_from=2020-01-01" "signup_to=2026-06-01"
  "signup_from=2026-01-01&signup_to=2026-03-01" "last_order_from=2020-01-01" "last_order_to=2025-01-01"
  "last_order_from=2026-10-01&tier=platinum" "tier=gold&segment=Dormant"
  # broad text and a filter
  "q=example&tier=gold" "q=example&tier=bronze" "q=example&tier=platinum" "q=e&tier=gold"
  "q=example&segment=Dormant" "q=example&segment=Champions&sort=last_order" "q=example&tag=VIP"
  "q=example&clv_min=100000" "q=example&orders_min=5" "q=example&signup_from=2026-01-01"
  "q=example&last_order_from=2026-10-01" "q=sophia&tier=silver&orders_min=3"
  "q=a&tier=platinum&sort=lifetime_value" "q=com&tier=silver&orders_max=3"
)
echo "| query | p50 | p90 | p99 | max |"
echo "|---|---|---|---|---|"
for q in "${queries[@]}"; do
  QUERY="$q" wrk -t1 -c1 -d"${each}s" --latency -s search.lua http://127.0.0.1:8360 |
    awk -v q="$q" '/^p50/ { printf "| `%s` | %s | %s | %s | %s |\n", q, $2, $5, $8, $11 }'
done
