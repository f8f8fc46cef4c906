#!/usr/bin/env bash
# The four ways to make a purchase under the same load, side by side. For each
# strategy: a fresh sale of 500 on a private Redis, a fresh release-build
# server, the tutorial's ab load, then one row of the table from the server's
# /seckill/stats.
#   scripts/compare.sh [-n requests] [-c concurrency]     (default -n 1000 -c 100)
# Loopback only; the Redis and the servers it starts are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

load_options "$@"

need redis-server redis-server
need ab apache2-utils
need curl curl
private_run compare

echo "ab -n $requests -c $concurrency -p postfile -T application/x-www-form-urlencoded, stock 500, $(nproc) cores"
echo
echo "| strategy | requests/s | winners | remaining | oversold | conflicts |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for strategy in naive watch watch-retry lua; do
  start_seckill "$redis" "$dir/$strategy.log" --strategy "$strategy" --stock 500
  rps=$(ab -q -n "$requests" -c "$concurrency" -p postfile -T application/x-www-form-urlencoded \
    "http://127.0.0.1:$port/seckill" | awk '/^Requests per second/ { printf "%.0f", $4 }')
  url=http://127.0.0.1:$port
  winners=$(stat "$url" winners)
  remaining=$(stat "$url" remaining)
  conflicts=$(stat "$url" conflicts)
  # As --audit counts it: winners beyond the stock, or stock below zero (two
  # buyers with one id can take two items for one winner).
  oversold=$(( winners - 500 > -remaining ? winners - 500 : -remaining ))
  oversold=$(( oversold > 0 ? oversold : 0 ))
  kill -INT "$server"
  wait "$server"
  server=
  echo "| $strategy | $rps | $winners | $remaining | $oversold | $conflicts |"
done
