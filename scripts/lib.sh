# Shared by the scripts: installing what is missing, and finding Redis.
# shellcheck shell=bash

# need COMMAND PACKAGE: installs the Debian PACKAGE when COMMAND is missing and
# this user may (root, or sudo without a password); otherwise says how, and fails.
need() {
  command -v "$1" >/dev/null 2>&1 || install_package "$2" "$1"
}

# need_cjk_font: a font with Chinese characters, so that the page's screenshots
# show 秒杀 rather than boxes.
need_cjk_font() {
  fc-list :lang=zh 2>/dev/null | grep -q . || install_package fonts-wqy-microhei "a font for 秒杀"
}

# need_postgres: PostgreSQL's server programs, for the orders tests, which
# start a private cluster of their own (Debian keeps initdb off the PATH).
need_postgres() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
    install_package postgresql "PostgreSQL (initdb, pg_ctl)"
  need psql postgresql-client
}

# need_rust: a Rust new enough for seckill (edition 2024 and let chains).
need_rust() {
  local wanted=1.88 have
  have=$(rustc --version 2>/dev/null | awk '{ print $2 }')
  if [ -z "$have" ] || [ "$(printf '%s\n' "$wanted" "$have" | sort -V | head -1)" != "$wanted" ]; then
    echo "seckill needs Rust $wanted or newer (this machine has ${have:-none}):" \
      "install it from https://rustup.rs, or run \`rustup update\`" >&2
    return 1
  fi
}

# install_package PACKAGE WHAT: installs the Debian PACKAGE (for WHAT) when
# this user may; otherwise says how, and fails.
install_package() {
  local package=$1 what=$2 sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      echo "$what is missing: install it with \`sudo apt-get install $package\` (Debian, Ubuntu)" \
        "or your system's package for it, then run this again" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$what is missing and there is no apt-get here: install the package that provides it" >&2
    return 1
  fi
  echo "installing $package (for $what) with apt-get..." >&2
  if [ -z "${APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq >&2
    APT_UPDATED=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}

# usage SCRIPT: prints the comment at the top of SCRIPT, which says how to use it.
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# stat URL FIELD: a number from the JSON of a running seckill's /seckill/stats.
stat() {
  curl -fsS "$1/seckill/stats" | grep -o "\"$2\":-\{0,1\}[0-9]*" | cut -d: -f2
}

# The Redis the server uses, as seckill reads it.
redis_url() {
  echo "${REDIS_URL:-redis://127.0.0.1:6379/0}"
}

# redis_url_of ARGS...: the Redis that seckill run with ARGS uses: its
# --redis URL (or --redis=URL), else as redis_url says.
redis_url_of() {
  local url
  url=$(redis_url)
  while [ $# -gt 0 ]; do
    case $1 in
      --redis=*) url=${1#--redis=} ;;
      --redis) [ $# -gt 1 ] && url=$2 && shift ;;
    esac
    shift
  done
  echo "$url"
}

# url_host URL, url_port URL: where a redis:// or postgres:// URL points.
url_authority() {
  local address=${1#*://}
  address=${address%%/*}
  echo "${address##*@}"
}
url_host() {
  local address
  address=$(url_authority "$1")
  echo "${address%:*}"
}
url_port() {
  local address
  address=$(url_authority "$1")
  case $address in
    *:*) echo "${address##*:}" ;;
    *) echo "$2" ;;
  esac
}

# data_dir NAME: where a development server keeps its data: data/NAME in
# this repository (or under $SECKILL_DATA), outside target/, which
# `cargo clean` wipes.
data_dir() {
  echo "${SECKILL_DATA:-$PWD/data}/$1"
}

# redis_answers URL: true when a Redis answers PING there.
redis_answers() {
  [ "$(redis-cli -u "$1" ping 2>/dev/null)" = PONG ]
}

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local port
  for port in $(shuf -i 20000-32000 -n 200); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found between 20000 and 32000 (below the ephemeral ports)" >&2
  return 1
}

# wait_for_port PORT: waits up to 10 s for something to listen on 127.0.0.1:PORT.
wait_for_port() {
  local _
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1 after 10 s" >&2
  return 1
}

# private_redis DIR: starts a redis-server of its own on a free loopback port,
# with its files in DIR and no persistence, and prints its URL. The caller
# stops it with `redis-cli -u URL shutdown nosave`.
private_redis() {
  local dir=$1 port
  mkdir -p "$dir"
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  wait_for_port "$port"
  echo "redis://127.0.0.1:$port/0"
}

# orders_db: the database of the orders of the servers a script starts, in
# its $dir; $ORDERS instead, when set (ORDERS=off: none).
orders_db() {
  echo "${ORDERS:-sqlite:$dir/orders.sqlite}"
}

# start_seckill REDIS LOG FLAGS...: the release build on a free loopback port,
# in the background, logging to LOG (a line per purchase, as users run it),
# writing orders to orders_db, with FLAGS; sets $port and $server (its pid)
# and returns once it listens.
start_seckill() {
  local redis=$1 log=$2
  shift 2
  port=$(free_port)
  target/release/seckill --bind "127.0.0.1:$port" --redis "$redis" --orders "$(orders_db)" "$@" \
    >"$log" 2>&1 &
  # shellcheck disable=SC2034 # $server is for the caller, as $port is
  server=$!
  wait_for_port "$port"
}

# stop_server: stops the seckill started last ($server), as Ctrl-C does, and
# waits for it. It never fails, so an EXIT trap goes on to stop the rest.
stop_server() {
  if [ -n "${server:-}" ]; then
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  server=
}

# stop_all: for an EXIT trap; stops the server started last and the private
# Redis at $redis.
stop_all() {
  stop_server
  if [ -n "${redis:-}" ]; then
    redis-cli -u "$redis" shutdown nosave >/dev/null 2>&1 || true
  fi
}

# private_run NAME: the set-up of a script that loads servers of its own:
# room for a big crowd's descriptors, the release build, a fresh
# target/NAME/ in $dir, a private Redis at $redis, and an EXIT trap that
# stops it and the server started last.
private_run() {
  ulimit -n "$(ulimit -Hn)"
  cargo build --release --quiet
  dir=$PWD/target/$1
  rm -rf "$dir"
  redis=$(private_redis "$dir")
  server=
  trap stop_all EXIT
}

# bench_options ROUNDS "$@": the bench scripts' -n requests (20000) and -r
# rounds (ROUNDS), into $requests and $rounds; -h or a wrong flag prints the
# usage.
bench_options() {
  requests=20000
  rounds=$1
  shift
  local opt OPTIND=1
  # shellcheck disable=SC2034 # both are for the calling script
  while getopts n:r:h opt; do
    case $opt in
      n) requests=$OPTARG ;;
      r) rounds=$OPTARG ;;
      *) usage "$0"; exit 2 ;;
    esac
  done
}

# load_options "$@": the tutorial load's -n requests (1000) and -c
# concurrency (100), into $requests and $concurrency; -h or a wrong flag
# prints the usage. OPTIND is left for the caller's `shift $((OPTIND - 1))`.
load_options() {
  requests=1000
  concurrency=100
  local opt
  OPTIND=1
  # shellcheck disable=SC2034 # both are for the calling script
  while getopts n:c:h opt; do
    case $opt in
      n) requests=$OPTARG ;;
      c) concurrency=$OPTARG ;;
      *) usage "$0"; exit 2 ;;
    esac
  done
}

# ab_figures FILE: "requests/s p50 p99" (ms) from an ab report.
ab_figures() {
  awk '/^Requests per second/ { rps = $4 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
       END { printf "%.0f %s %s\n", rps, p50, p99 }' "$1"
}

# median_of FILE COLUMN: the median of one column of FILE's lines.
median_of() {
  awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# test_summary LOG: one line for all the test binaries of a `cargo test` log
# (passed, failed), and the binaries that failed, each with its failing tests.
test_summary() {
  awk '
    /^ *Running / { name = $2; tests = "" }
    /^ *Doc-tests / { name = "doc-tests " $2; tests = "" }
    /^test .* \.\.\. FAILED$/ { tests = tests "\n    " $2 }
    /^test result:/ {
      binaries += 1
      passed += $4; failures += $6
      if ($3 != "ok.") bad = bad "\n  " name tests
    }
    END {
      printf "\nsummary: %d test binaries, %d tests passed, %d failed", binaries, passed, failures
      if (bad != "") printf "; failed:%s", bad
      printf "\n"
    }' "$1"
}
