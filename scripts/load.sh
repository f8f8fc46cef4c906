#!/usr/bin/env bash
# The tutorial's load against a running seckill, then the audit of the sale
# read from Redis (REDIS_URL, default redis://127.0.0.1:6379/0).
#   scripts/load.sh [-n requests] [-c concurrency] [URL]
# The default is the tutorial's command:
#   ab -n 1000 -c 100 -p postfile -T application/x-www-form-urlencoded http://127.0.0.1:5000/seckill
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

load_options "$@"
shift $((OPTIND - 1))
url=${1:-http://127.0.0.1:5000/seckill}

need ab apache2-utils
status=0
ab -n "$requests" -c "$concurrency" -p postfile -T application/x-www-form-urlencoded "$url" || status=$?
echo
echo "Audit of the sale in Redis at $(redis_url):"
cargo run --release --quiet -- --audit || status=$?
exit "$status"
