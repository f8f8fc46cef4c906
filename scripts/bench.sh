#!/usr/bin/env bash
# How fast each strategy answers a crowd, beside the ceiling of the HTTP
# layer (/healthz answers without Redis). Builds in release mode, starts a
# private Redis, and runs interleaved rounds (median of 3) of:
#   ab -n 20000 -c 100 against /healthz;
#   the tutorial's POST load (postfile, -c 100) against each strategy on a
#   fresh sale of 500 (most answers are "sold out", as in a real flash sale);
#   the same on a sale large enough that every request buys;
#   ab -c 1000 on the sale of 500;
# then wrk with keep-alive against the purchase path. It prints requests/s,
# p50 and p99 in ms, each figure's ratio to /healthz, and the server's peak
# resident memory. Loopback only; takes about five minutes.
#   scripts/bench.sh [-n requests] [-r rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bench_options 3 "$@"

need redis-server redis-server
need ab apache2-utils
need wrk wrk
private_run bench-seckill
form=application/x-www-form-urlencoded
big_stock=$((requests * 10))

# start STRATEGY STOCK SUFFIX_MAX: a fresh server and sale; sets $port and $server.
start() {
  start_seckill "$redis" "$dir/server.log" --strategy "$1" --stock "$2" --suffix-max "$3"
}

# stop NAME: stops the server and keeps its peak resident memory (kB) and
# the stock left in Redis (below 0 is an oversell).
stop() {
  awk '/^VmHWM/ { print $2 }' "/proc/$server/status" >>"$dir/$1.rss"
  { target/release/seckill --audit --redis "$redis" --orders "$(orders_db)" || true; } |
    awk '$1 == "remaining:" { print $2 }' >>"$dir/$1.left"
  stop_server
}

# ab_run NAME ARGS...: one ab run; keeps "requests/s p50 p99" in $dir/NAME.runs.
ab_run() {
  local name=$1
  shift
  ab -q -n "$requests" "$@" >"$dir/ab.out" 2>&1 || { cat "$dir/ab.out"; exit 1; }
  if grep -qE '^(Non-2xx responses|Failed requests: +[1-9]).*' "$dir/ab.out" &&
    ! grep -q 'Connect: 0, Receive: 0, Length: [0-9]*, Exceptions: 0' "$dir/ab.out"; then
    echo "$name: ab saw failures:" >&2
    grep -E 'Failed|Non-2xx|Connect: ' "$dir/ab.out" >&2
  fi
  if grep -q '^Non-2xx responses' "$dir/ab.out"; then
    echo "$name: $(grep '^Non-2xx' "$dir/ab.out")" >&2
  fi
  ab_figures "$dir/ab.out" >>"$dir/$name.runs"
}

# The tutorial's POST, as ab's arguments; $port is the server started last.
post() { sale=(-p postfile -T "$form" "http://127.0.0.1:$port/seckill"); }

echo "$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo);" \
  "ab -n $requests, median of $rounds interleaved rounds; ab, Redis and the server share the machine"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds..." >&2
  start watch 500 100000
  ab_run healthz -c 100 "http://127.0.0.1:$port/healthz"
  stop healthz
  for strategy in naive watch watch-retry lua; do
    start "$strategy" 500 100000
    post
    ab_run "$strategy" -c 100 "${sale[@]}"
    stop "$strategy"
    start "$strategy" "$big_stock" 4000000000
    post
    ab_run "$strategy-buys" -c 100 "${sale[@]}"
    stop "$strategy-buys"
    start "$strategy" 500 100000
    post
    ab_run "$strategy-c1000" -c 1000 "${sale[@]}"
    stop "$strategy-c1000"
  done
  # The cost of the orders: lua with every request buying, without them.
  ORDERS=off start_seckill "$redis" "$dir/server.log" --strategy lua --stock "$big_stock" --suffix-max 4000000000
  post
  ab_run lua-buys-no-orders -c 100 "${sale[@]}"
  stop lua-buys-no-orders
done

column() { median_of "$dir/$1.runs" "$2"; }
base=$(column healthz 1)
echo
echo "| load | requests/s | ratio to /healthz | p50 ms | p99 ms | peak RSS MB | stock left, each round |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
row() {
  local rps p50 p99 rss left
  rps=$(column "$1" 1)
  p50=$(column "$1" 2)
  p99=$(column "$1" 3)
  rss=$(sort -n "$dir/$1.rss" | tail -1)
  left=$(paste -sd/ "$dir/$1.left")
  [ "$1" = healthz ] && left="-"
  printf "| %s | %s | %.2f | %s | %s | %.1f | %s |\n" "$2" "$rps" "$(echo "$rps $base" | awk '{ print $1 / $2 }')" \
    "$p50" "$p99" "$(echo "$rss" | awk '{ print $1 / 1024 }')" "$left"
}
row healthz "/healthz, -c 100"
for strategy in naive watch watch-retry lua; do row "$strategy" "$strategy, sale of 500, -c 100"; done
for strategy in naive watch watch-retry lua; do row "$strategy-buys" "$strategy, every request buys, -c 100"; done
for strategy in naive watch watch-retry lua; do row "$strategy-c1000" "$strategy, sale of 500, -c 1000"; done
row lua-buys-no-orders "lua, every request buys, --orders off, -c 100"

echo
echo "wrk with keep-alive, 100 connections, 10 s, every request buys:"
for strategy in watch lua; do
  start "$strategy" 100000000 4000000000
  wrk -t2 -c100 -d10s --latency -s scripts/wrk-post.lua "http://127.0.0.1:$port/seckill" >"$dir/wrk.out"
  stop "wrk-$strategy"
  awk -v s="$strategy" '/Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
       /Non-2xx|Socket errors/ { errors = errors " " $0 }
       END { printf "  %s: %.0f requests/s, p50 %s, p99 %s%s\n", s, rps, p50, p99, errors }' "$dir/wrk.out"
done
