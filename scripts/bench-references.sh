#!/usr/bin/env bash
# seckill beside reference servers on the same machine, in the same
# interleaved rounds (median of 3), ab -n N -c 100 each:
#   /healthz: seckill, and std-accept-pool (64 threads each calling accept);
#   the Lua purchase on a sale of 500 and on a sale where every request buys:
#     seckill (a line per purchase, as by default; and --quiet), and
#     axum-lua (axum on tokio, one multiplexed Redis connection, the same script),
#     and std-lua (the floor of a synchronous purchase: 64 std threads each
#     calling accept, each with a blocking Redis connection of its own);
#     every request buying, seckill with --orders off too: the cost of orders;
#   the tutorial's WATCH purchase on a sale of 500: seckill, and the Flask
#     tutorial itself (bench/flask/tutorial.py, Flask's threaded development
#     server; N/4 requests, as it is some twenty times slower);
# then wrk with keep-alive (100 connections, 10 s, every request buys, the
# same rounds) against seckill (orders on and off), axum-lua and std-lua, and
# the orders seckill had yet to write as each run ended. Prints requests/s,
# p50 and p99 in ms, and seckill's ratio to each reference. The references are built from bench/ into
# target/bench/ (and a Python venv there for Flask); the README's two
# commands never build them. Loopback only; about ten minutes.
#   scripts/bench-references.sh [-n requests] [-r rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bench_options 3 "$@"

need redis-server redis-server
need ab apache2-utils
need wrk wrk
need python3 python3
echo "building the reference servers (bench/) into target/bench..." >&2
cargo build --release --quiet --manifest-path bench/Cargo.toml --target-dir target/bench
venv=target/bench/venv
if [ ! -x "$venv/bin/flask" ]; then
  echo "installing Flask and redis-py into $venv..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r bench/flask/requirements.txt
fi
private_run bench-references
trap 'stop; stop_all' EXIT
form=application/x-www-form-urlencoded
big_stock=$((requests * 10))

# start_other LOG PROGRAM ARGS...: a reference server on $port (chosen
# here; ARGS may use it through the literal PORT), in the background; sets
# $server and returns once it listens.
start_other() {
  local log=$1
  shift
  port=$(free_port)
  "${@//PORT/$port}" >"$log" 2>&1 &
  server=$!
  wait_for_port "$port"
}

# start NAME STOCK: a fresh sale of STOCK and the server NAME on it.
start() {
  redis-cli -u "$redis" del user:id commodity:sale >/dev/null
  case $1 in
    seckill-*) start_seckill "$redis" "$dir/server.log" --strategy "${1#seckill-}" --stock "$2" --suffix-max 4000000000 ;;
    nodb-lua) ORDERS=off start_seckill "$redis" "$dir/server.log" --strategy lua --stock "$2" --suffix-max 4000000000 ;;
    quiet-lua) start_seckill "$redis" "$dir/server.log" --strategy lua --quiet --stock "$2" --suffix-max 4000000000 ;;
    std-accept-pool) start_other "$dir/server.log" target/bench/release/std-accept-pool 127.0.0.1:PORT ;;
    axum-lua) start_other "$dir/server.log" target/bench/release/axum-lua 127.0.0.1:PORT "$redis" "$2" 4000000000 ;;
    std-lua) start_other "$dir/server.log" target/bench/release/std-lua 127.0.0.1:PORT "$redis" "$2" 4000000000 ;;
    flask) start_other "$dir/server.log" "$venv/bin/python" bench/flask/tutorial.py 127.0.0.1 PORT "$redis" "$2" ;;
  esac
}

# ab_run NAME N ARGS...: one ab run of N requests; keeps "requests/s p50 p99"
# in $dir/NAME.runs. Non-2xx answers are counted, not fatal (the tutorial
# answers a lost race with 500).
ab_run() {
  local name=$1 n=$2
  shift 2
  ab -q -n "$n" -c 100 "$@" >"$dir/ab.out" 2>&1 || { cat "$dir/ab.out"; exit 1; }
  ab_figures "$dir/ab.out" >>"$dir/$name.runs"
  grep '^Non-2xx' "$dir/ab.out" | sed "s/^/$name: /" >>"$dir/non2xx" || true
}

# stop: stops the server started last. SIGTERM, not lib.sh's SIGINT: a
# script's background jobs ignore SIGINT unless they catch it, as seckill
# does and the references do not.
stop() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}

purchase() { echo -p postfile -T "$form" "http://127.0.0.1:$port/seckill"; }

echo "$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo);" \
  "ab -n $requests -c 100, median of $rounds interleaved rounds; ab, Redis and the servers share the machine"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds..." >&2
  for name in seckill-lua std-accept-pool; do
    start "$name" 500
    ab_run "$name-healthz" "$requests" "http://127.0.0.1:$port/healthz"
    stop
  done
  for name in seckill-lua quiet-lua axum-lua std-lua; do
    start "$name" 500
    # shellcheck disable=SC2046 # purchase prints words on purpose
    ab_run "$name-500" "$requests" $(purchase)
    stop
    start "$name" "$big_stock"
    # shellcheck disable=SC2046
    ab_run "$name-buys" "$requests" $(purchase)
    stop
  done
  start nodb-lua "$big_stock"
  # shellcheck disable=SC2046
  ab_run nodb-lua-buys "$requests" $(purchase)
  stop
  start seckill-watch 500
  # shellcheck disable=SC2046
  ab_run seckill-watch-500 "$requests" $(purchase)
  stop
  start flask 500
  # shellcheck disable=SC2046
  ab_run flask-500 $((requests / 4)) $(purchase)
  stop
done

column() { median_of "$dir/$1.runs" "$2"; }
echo
echo "| load | server | requests/s | p50 ms | p99 ms | seckill's ratio |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
# row LOAD NAME LABEL SECKILL: one row; the ratio is SECKILL's rate to this one's.
row() {
  local rps ratio
  rps=$(column "$2" 1)
  ratio=$(awk -v s="$(column "$4" 1)" -v r="$rps" 'BEGIN { printf "%.2f", s / r }')
  [ "$2" = "$4" ] && ratio="-"
  printf "| %s | %s | %s | %s | %s | %s |\n" "$1" "$3" "$rps" "$(column "$2" 2)" "$(column "$2" 3)" "$ratio"
}
row "/healthz" seckill-lua-healthz seckill seckill-lua-healthz
row "/healthz" std-accept-pool-healthz "std, 64 threads calling accept" seckill-lua-healthz
row "Lua purchase, sale of 500" seckill-lua-500 "seckill (a line per purchase)" seckill-lua-500
row "Lua purchase, sale of 500" quiet-lua-500 "seckill --quiet" seckill-lua-500
row "Lua purchase, sale of 500" axum-lua-500 "axum + tokio" seckill-lua-500
row "Lua purchase, sale of 500" std-lua-500 "std, 64 threads, a Redis connection each" seckill-lua-500
row "Lua purchase, every request buys" seckill-lua-buys "seckill (a line per purchase)" seckill-lua-buys
row "Lua purchase, every request buys" nodb-lua-buys "seckill --orders off" seckill-lua-buys
row "Lua purchase, every request buys" quiet-lua-buys "seckill --quiet" seckill-lua-buys
row "Lua purchase, every request buys" axum-lua-buys "axum + tokio" seckill-lua-buys
row "Lua purchase, every request buys" std-lua-buys "std, 64 threads, a Redis connection each" seckill-lua-buys
row "WATCH purchase, sale of 500" seckill-watch-500 "seckill" seckill-watch-500
row "WATCH purchase, sale of 500" flask-500 "the Flask tutorial" seckill-watch-500

echo
echo "wrk with keep-alive, 100 connections, 10 s, every request buys, median of $rounds interleaved rounds:"
for round in $(seq "$rounds"); do
  echo "wrk round $round of $rounds..." >&2
  for name in seckill-lua nodb-lua axum-lua std-lua; do
    start "$name" 1000000000
    wrk -t2 -c100 -d10s --latency -s scripts/wrk-post.lua "http://127.0.0.1:$port/seckill" >"$dir/wrk.out"
    if [ "$name" = seckill-lua ]; then
      # The orders not yet written as the load ends: a backlog that grew
      # all along would show here.
      curl -s "http://127.0.0.1:$port/seckill/stats" |
        grep -o '"orders_waiting":[0-9]*\|"oldest_waiting_ms":[0-9]*' | tr '\n' ' ' >>"$dir/backlog"
      echo >>"$dir/backlog"
    fi
    stop
    grep -E 'Non-2xx|Socket errors' "$dir/wrk.out" | sed "s/^/wrk $name: /" >>"$dir/non2xx" || true
    # requests/s, p50 and p99 in ms (wrk prints us, ms or s)
    awk 'function ms(t) { if (t ~ /us$/) return t / 1000; if (t ~ /ms$/) return t + 0; return t * 1000 }
         /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
         END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }' "$dir/wrk.out" >>"$dir/wrk-$name.runs"
  done
done
echo
echo "| load | server | requests/s | p50 ms | p99 ms | seckill's ratio |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
row "wrk keep-alive, every request buys" wrk-seckill-lua "seckill (a line per purchase)" wrk-seckill-lua
row "wrk keep-alive, every request buys" wrk-nodb-lua "seckill --orders off" wrk-seckill-lua
row "wrk keep-alive, every request buys" wrk-axum-lua "axum + tokio" wrk-seckill-lua
row "wrk keep-alive, every request buys" wrk-std-lua "std, 64 threads, a Redis connection each" wrk-seckill-lua
echo
echo "Orders not yet written as each wrk run on seckill ended:"
sed 's/^/  /' "$dir/backlog"
if [ -s "$dir/non2xx" ]; then
  echo
  echo "Non-2xx answers and socket errors (the tutorial answers a lost WATCH race with 500):"
  sed 's/^/  /' "$dir/non2xx"
fi
