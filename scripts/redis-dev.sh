#!/usr/bin/env bash
# Starts a private redis-server for development where REDIS_URL points
# (default redis://127.0.0.1:6379/0; the host must be this machine), unless a
# Redis already answers there. Each port keeps its data in data/redis-PORT/
# of this repository, with append-only persistence, so a restart of this
# Redis keeps the sale. Stop it with `redis-cli -p PORT shutdown`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need redis-server redis-server
url=$(redis_url)
if redis_answers "$url"; then
  echo "using the Redis that answers at $url"
  exit 0
fi
host=$(url_host "$url")
port=$(url_port "$url" 6379)
case $host in
  127.0.0.1 | localhost) ;;
  *) echo "nothing answers at $url, and this script starts a Redis on this machine only" >&2; exit 1 ;;
esac
dir=$(data_dir "redis-$port")
mkdir -p "$dir"
redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 50); do
  if redis_answers "$url"; then
    echo "started redis-server on 127.0.0.1:$port (data and log in $dir;" \
      "stop it with \`redis-cli -p $port shutdown\`)"
    exit 0
  fi
  sleep 0.1
done
echo "redis-server did not answer on 127.0.0.1:$port; see $dir/redis.log" >&2
exit 1
