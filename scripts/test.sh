#!/usr/bin/env bash
# Every check in one command: installs redis-server and ab when they are
# missing (and this user may), then formatting, lints and the tests. The tests
# start their own redis-server on free loopback ports; they never touch 6379.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need redis-server redis-server
need ab apache2-utils
need wrk wrk
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
