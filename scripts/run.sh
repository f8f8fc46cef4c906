#!/usr/bin/env bash
# From a fresh clone to a running sale in one command: installs redis-server
# when it is missing (and this user may), starts a development Redis when none
# answers, then builds and runs seckill in release mode. Flags go to seckill:
#   scripts/run.sh --bind 0.0.0.0:5000 --stock 100
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_rust
scripts/redis-dev.sh
echo "building seckill (the first build takes a few minutes)..." >&2
exec cargo run --release -- "$@"
