#!/usr/bin/env bash
# What --replicas 1 costs, and how many purchases one Redis can run. Starts
# the failover set of scripts/sentinel-dev.sh (a master, two replicas, three
# sentinels), then interleaved rounds (median of 3) of ab against a fresh
# seckill (lua, through the sentinels) with --replicas 0 and --replicas 1:
# the tutorial's load on a sale of 500, and a sale where every request buys.
# Then redis-benchmark runs the Lua purchase itself on the master. Prints
# requests/s and p50/p99 in ms. Loopback only; stops everything at the end.
#   scripts/bench-replicas.sh [-n requests] [-r rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bench_options 3 "$@"

need redis-server redis-server
need ab apache2-utils
ulimit -n "$(ulimit -Hn)"
cargo build --release --quiet
dir=$PWD/target/bench-replicas
rm -rf "$dir"
mkdir -p "$dir"
server=
stop_server_and_set() {
  stop_server
  scripts/sentinel-dev.sh stop >/dev/null
}
trap stop_server_and_set EXIT
scripts/sentinel-dev.sh start >"$dir/set.log"
# The flags it printed, such as --sentinel HOST:PORT,... and the master's port.
sentinels=$(awk '{ for (i = 1; i < NF; i++) if ($i == "--sentinel") print $(i + 1) }' "$dir/set.log")
master_port=$(awk '$1 == "master" { split($2, a, ":"); sub(",", "", a[2]); print a[2] }' "$dir/set.log")
form=application/x-www-form-urlencoded

# run NAME REPLICAS STOCK SUFFIX_MAX: one ab run on a fresh sale; keeps
# "requests/s p50 p99" in $dir/NAME.runs.
run() {
  # Through the sentinels; --redis gives only the database.
  start_seckill "redis://127.0.0.1:$master_port/0" "$dir/server.log" --sentinel "$sentinels" --master mymaster \
    --strategy lua --replicas "$2" --stock "$3" --suffix-max "$4"
  ab -q -n "$requests" -c 100 -p postfile -T "$form" "http://127.0.0.1:$port/seckill" >"$dir/ab.out" 2>&1
  ab_figures "$dir/ab.out" >>"$dir/$1.runs"
  grep -h '^Non-2xx' "$dir/ab.out" | sed "s/^/$1: /" >&2 || true
  stop_server
}

echo "$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo);" \
  "ab -n $requests -c 100, median of $rounds interleaved rounds; lua through the sentinels"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds..." >&2
  for replicas in 0 1; do
    run "sale-$replicas" "$replicas" 500 100000
    run "buys-$replicas" "$replicas" $((requests * 10)) 4000000000
  done
done

column() { median_of "$dir/$1.runs" "$2"; }
echo
echo "| load | --replicas | requests/s | p50 ms | p99 ms |"
echo "| --- | ---: | ---: | ---: | ---: |"
for load in sale buys; do
  for replicas in 0 1; do
    name="$load-$replicas"
    label=$([ "$load" = sale ] && echo "sale of 500" || echo "every request buys")
    echo "| $label | $replicas | $(column "$name" 1) | $(column "$name" 2) | $(column "$name" 3) |"
  done
done

# The Lua purchase alone, on the master: a fresh sale large enough that
# every call buys, the script loaded, and redis-benchmark calling it.
echo
sha=$(redis-cli -p "$master_port" script load "$(cat src/purchase/purchase.lua)")
redis-cli -p "$master_port" set commodity:num 100000000 >/dev/null
for clients in 1 50; do
  rps=$(redis-benchmark -p "$master_port" -n 200000 -c "$clients" -r 1000000000 -q \
    evalsha "$sha" 2 commodity:num user:id "buyer:__rand_int__" | tr '\r' '\n' |
    awk '/requests per second/ { for (i = 2; i <= NF; i++) if ($i == "requests") print $(i - 1) }')
  echo "redis-benchmark, the Lua purchase, $clients client(s): $rps purchases/s"
done
