#!/usr/bin/env bash
# Starts a private redis-server for development where REDIS_URL points
# (default redis://127.0.0.1:6379/0), unless a Redis already answers there.
# Its data is kept in target/redis-dev/, with append-only persistence, so a
# restart of this Redis keeps the sale. Stop it with `redis-cli shutdown`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need redis-server redis-server
url=$(redis_url)
if redis_answers "$url"; then
  echo "Redis already answers at $url: not starting another. If it is not the one" \
    "that keeps the sale's data (an empty one started elsewhere), stop it with" \
    "\`redis-cli -u $url shutdown\` and run this again."
  exit 0
fi
address=${url#*://}
address=${address##*@}
address=${address%%/*}
host=${address%:*}
port=${address##*:}
case $host in
  127.0.0.1 | localhost) ;;
  *) echo "nothing answers at $url, and this script starts a Redis on this machine only" >&2; exit 1 ;;
esac
dir=$PWD/target/redis-dev
mkdir -p "$dir"
redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 50); do
  if redis_answers "$url"; then
    echo "started redis-server on 127.0.0.1:$port (data and log in target/redis-dev/;" \
      "stop it with \`redis-cli -p $port shutdown\`)"
    exit 0
  fi
  sleep 0.1
done
echo "redis-server did not answer on 127.0.0.1:$port; see $dir/redis.log" >&2
exit 1
