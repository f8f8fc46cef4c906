#!/usr/bin/env bash
# Every check in one command: installs redis-server, ab, wrk, PostgreSQL,
# Chromium, Node.js and playwright-core when they are missing (and this user
# may), then formatting, lints and the tests. The tests start their own
# redis-server and PostgreSQL on free loopback ports; they never touch 6379
# or 5432.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_rust
need redis-server redis-server
need ab apache2-utils
need wrk wrk
need_postgres
# The browser test (tests/browser.rs): Debian's Chromium, driven by playwright-core.
need chromium chromium
need_cjk_font
need node nodejs
need npm npm
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing playwright-core for the browser test (npm ci in tests/browser)..." >&2
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >&2
fi
cargo fmt --check
cargo clippy --all-targets -- -D warnings
# Every test binary runs, whatever an earlier one did; the vendored
# tiny_http's own tests too (it is not a workspace member). A summary of
# all of them comes last.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
cargo test --no-fail-fast 2>&1 | tee "$log" || failed=1
cargo test --manifest-path vendor/tiny_http/Cargo.toml --target-dir target/tiny_http 2>&1 |
  tee -a "$log" || failed=1
test_summary "$log"
exit "$failed"
