#!/usr/bin/env bash
# A private PostgreSQL for the orders, on this machine only (127.0.0.1), its
# data in data/postgres-PORT/ of this repository (outside target/):
#   scripts/postgres-dev.sh [start]   installs PostgreSQL if missing (and this
#                                     user may), starts the cluster (made at
#                                     first), and prints the --orders URL
#   scripts/postgres-dev.sh stop      stops it, keeping its data
# The port is PGPORT's, 5433 by default (beside a system PostgreSQL on 5432).
# As root, the cluster runs as the user postgres, which must be able to
# reach this folder.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

port=${PGPORT:-5433}
again=$0
[ -n "${PGPORT:-}" ] && again="PGPORT=$port $0"
dir=$(data_dir "postgres-$port")
url="postgres://postgres@127.0.0.1:$port/postgres"

need_postgres
bin=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")

# as_owner COMMAND...: COMMAND as the cluster's owner: postgres when this is
# root (PostgreSQL will not run as root), else this user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case ${1:-start} in
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
      echo "stopped the PostgreSQL of $dir (its data stays; start it again with $again)"
    else
      echo "no PostgreSQL of this repository runs on port $port"
    fi
    ;;
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$dir"
      if ! runuser -u postgres -- test -w "$dir"; then
        echo "the user postgres cannot reach $dir (a folder above it is private to root):" \
          "run this from a clone in a folder others may enter, or as another user" >&2
        exit 1
      fi
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -N >"$dir/initdb.log" 2>&1 ||
        { echo "initdb failed; see $dir/initdb.log" >&2; exit 1; }
    fi
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      echo "PostgreSQL already runs on 127.0.0.1:$port"
    else
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null ||
        { echo "PostgreSQL did not start; see $dir/postgres.log" >&2; exit 1; }
      echo "started PostgreSQL on 127.0.0.1:$port (data and log in $dir)"
    fi
    echo "orders there: --orders $url  (stop it with \`$again stop\`)"
    ;;
  *)
    usage "$0"
    exit 2
    ;;
esac
