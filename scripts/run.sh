#!/usr/bin/env bash
# From a fresh clone to a running sale in one command: installs redis-server
# when it is missing (and this user may), starts a development Redis where
# --redis (or REDIS_URL) points when none answers there, then builds and runs
# seckill in release mode. Flags go to seckill:
#   scripts/run.sh --bind 0.0.0.0:5000 --stock 100
#   scripts/run.sh --redis redis://127.0.0.1:6390/0
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_rust
url=$(redis_url_of "$@")
REDIS_URL=$url scripts/redis-dev.sh
for arg in "$@"; do
  if [ "$arg" = --join ] && [ "$(redis-cli -u "$url" exists commodity:num 2>/dev/null)" = 0 ]; then
    echo "note: the Redis at $url holds no sale, so --join has nothing to join: if it is" \
      "not the one that keeps the sale's data, stop it (redis-cli -u $url shutdown) and" \
      "run this again; to start a fresh sale, leave out --join" >&2
  fi
done
echo "building seckill (the first build takes several minutes; later ones, seconds)..." >&2
exec cargo run --release -- "$@"
