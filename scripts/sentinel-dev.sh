#!/usr/bin/env bash
# Redis's own failover on this machine, for a class to watch: a master, two
# replicas and three sentinels on loopback, their files in target/sentinel-dev/.
#   scripts/sentinel-dev.sh start         starts them, and prints seckill's flags
#   scripts/sentinel-dev.sh kill-master   kill -9 of the master the sentinels name now
#   scripts/sentinel-dev.sh status        which server is master, and the sale in it
#   scripts/sentinel-dev.sh stop          stops every one of them
# The sentinels promote a replica 1 s after the master stops answering
# (down-after-milliseconds 1000); a killed master is not restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

dir=$PWD/target/sentinel-dev
master_port=6380
replica_ports=(6381 6382)
sentinel_ports=(26380 26381 26382)

# redis NAME PORT ARGS...: a redis-server of this set, daemonized, files in $dir/NAME.
redis() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$dir/$name"
  redis-server "$@" --bind 127.0.0.1 --port "$port" --dir "$dir/$name" --save "" \
    --appendonly no --daemonize yes --pidfile "$dir/$name/redis.pid" --logfile "$dir/$name/redis.log"
  wait_for_port "$port"
}

# The master the sentinels name now, as HOST PORT.
named_master() {
  redis-cli -p "${sentinel_ports[0]}" sentinel get-master-addr-by-name mymaster | paste -sd' '
}

case ${1:-} in
  start)
    need redis-server redis-server
    for port in "$master_port" "${replica_ports[@]}" "${sentinel_ports[@]}"; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "something listens on 127.0.0.1:$port already: \`$0 stop\`, or stop it" >&2
        exit 1
      fi
    done
    rm -rf "$dir"
    redis master "$master_port"
    for port in "${replica_ports[@]}"; do
      redis "replica-$port" "$port" --replicaof 127.0.0.1 "$master_port"
    done
    # Both replicas synced before the sentinels watch: a replica promoted
    # before its first sync would be an empty master (docs/scaling.md).
    for _ in $(seq 100); do
      [ "$(redis-cli -p "$master_port" info replication | grep -c 'state=online')" = 2 ] && break
      sleep 0.1
    done
    for port in "${sentinel_ports[@]}"; do
      mkdir -p "$dir/sentinel-$port"
      cat >"$dir/sentinel-$port/sentinel.conf" <<EOF
sentinel monitor mymaster 127.0.0.1 $master_port 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 3000
sentinel parallel-syncs mymaster 1
EOF
      redis "sentinel-$port" "$port" "$dir/sentinel-$port/sentinel.conf" --sentinel
    done
    sentinels=$(printf '127.0.0.1:%s,' "${sentinel_ports[@]}")
    echo "master 127.0.0.1:$master_port, replicas ${replica_ports[*]}, sentinels ${sentinel_ports[*]} (files in target/sentinel-dev/)"
    echo "run seckill with:  --sentinel ${sentinels%,} --master mymaster --replicas 1"
    ;;
  kill-master)
    read -r _ port < <(named_master)
    for pidfile in "$dir"/*/redis.pid; do
      if [ "$(redis-cli -p "$port" info server | awk -F: '/^process_id/ { print $2 }' | tr -d '\r')" = "$(cat "$pidfile")" ]; then
        kill -9 "$(cat "$pidfile")"
        echo "killed the master on 127.0.0.1:$port; the sentinels promote a replica in about 2 s"
        exit 0
      fi
    done
    echo "no master of this set answers on 127.0.0.1:$port" >&2
    exit 1
    ;;
  status)
    read -r _ port < <(named_master)
    echo "the sentinels name 127.0.0.1:$port master"
    redis-cli -p "$port" info replication | grep -E '^(role|connected_slaves|slave[0-9])' | tr -d '\r'
    echo "commodity:num $(redis-cli -p "$port" get commodity:num), winners $(redis-cli -p "$port" scard user:id)"
    ;;
  stop)
    for pidfile in "$dir"/*/redis.pid; do
      if [ -f "$pidfile" ]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
      fi
    done
    echo "stopped the servers of target/sentinel-dev/"
    ;;
  *)
    usage "$0"
    exit 2
    ;;
esac
