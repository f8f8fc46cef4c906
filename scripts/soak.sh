#!/usr/bin/env bash
# A soak: the release server under `ab -n REQUESTS -c 1000`, ROUNDS times,
# a fresh server and sale each round. Fails if a server died, ab did not
# complete, or a sale went wrong. At -c 1000 the connection threads come
# and go by the thousand, and a fault that strikes once in millions of
# requests shows only here (docs/failures.md); glibc is told to unmap each
# ended thread's stack at once, so that a thread's descriptor read after
# its end faults every time it happens. Loopback only; about 3 s a round.
# A failed round's server log and ab report stay in target/soak/.
#   scripts/soak.sh [-n requests] [-r rounds]    (20000 requests, at least
#   1000; 100 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

bench_options 100 "$@"
if [ "$requests" -lt 1000 ]; then
  echo "scripts/soak.sh: -n $requests: ab -c 1000 needs at least 1000 requests" >&2
  exit 2
fi

need redis-server redis-server
need ab apache2-utils
private_run soak
# ab takes Ctrl-C as the end of its run; the soak stops there too.
trap 'exit 130' INT

failed=0
answered=0
for round in $(seq "$rounds"); do
  GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0 \
    start_seckill "$redis" "$dir/server.log" --strategy watch
  ab -q -s 5 -n "$requests" -c 1000 -p postfile -T application/x-www-form-urlencoded \
    "http://127.0.0.1:$port/seckill" >"$dir/ab.out" 2>&1 || true
  completed=$(awk '/^Complete requests/ { print $3 }' "$dir/ab.out")
  answered=$((answered + ${completed:-0}))
  status=0
  kill -INT "$server" 2>/dev/null || true
  wait "$server" || status=$?
  server=
  why=
  if [ "$status" -gt 128 ]; then
    why="the server was killed by signal $((status - 128))"
  elif [ "$status" -ne 0 ]; then
    why="the server ended with status $status"
  elif [ "${completed:-0}" -ne "$requests" ]; then
    why="ab completed ${completed:-0} of $requests requests: $(tail -1 "$dir/ab.out")"
  elif ! target/release/seckill --audit --redis "$redis" --orders "$(orders_db)" >"$dir/audit.out" 2>&1; then
    why="the audit failed: $(tail -1 "$dir/audit.out")"
  fi
  if [ -n "$why" ]; then
    failed=$((failed + 1))
    echo "round $round: $why (target/soak/round-$round.*)" >&2
    cp "$dir/server.log" "$dir/round-$round.server.log"
    cp "$dir/ab.out" "$dir/round-$round.ab.out"
  fi
done
echo "$rounds rounds of ab -n $requests -c 1000, $answered answers: $failed rounds failed"
[ "$failed" -eq 0 ] && [ "$answered" -gt 0 ]
