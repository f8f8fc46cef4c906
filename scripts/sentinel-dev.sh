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

# The master the sentinels name now, as HOST PORT: the first that answers says.
named_master() {
  local port named
  for port in "${sentinel_ports[@]}"; do
    named=$(timeout 2 redis-cli -p "$port" sentinel get-master-addr-by-name mymaster 2>/dev/null | paste -sd' ' || true)
    if [[ $named =~ ^[^\ ]+\ [0-9]+$ ]]; then
      echo "$named"
      return 0
    fi
  done
  echo "no sentinel of this set answers (is it started? \`$0 start\`)" >&2
  return 1
}

# Stops every server of the set, and waits until each has ended: the
# sentinels first, so that they start no failover, and the master last, so
# that it has no replica to wait for.
# Stops what runs of the set; `stopped` counts them.
stopped=0
stop_set() {
  local pidfile pid _
  for pidfile in "$dir"/sentinel-*/redis.pid "$dir"/replica-*/redis.pid "$dir"/master/redis.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || continue
    stopped=$((stopped + 1))
    for _ in $(seq 50); do
      # Ended, or a zombie waiting for init to reap it.
      [[ $(ps -o stat= -p "$pid" 2>/dev/null) =~ ^[^Z] ]] || break
      sleep 0.1
    done
  done
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
    # Half a set is no use: whatever fails, stop what did start.
    trap 'stop_set; echo "could not start the set; logs in target/sentinel-dev/" >&2' ERR
    redis master "$master_port"
    for port in "${replica_ports[@]}"; do
      redis "replica-$port" "$port" --replicaof 127.0.0.1 "$master_port"
    done
    # Both replicas synced before the sentinels watch: a replica promoted
    # before its first sync would be an empty master (docs/scaling.md).
    synced=
    for _ in $(seq 100); do
      if [ "$(redis-cli -p "$master_port" info replication | grep -c 'state=online')" = 2 ]; then
        synced=yes
        break
      fi
      sleep 0.1
    done
    if [ -z "$synced" ]; then
      echo "the replicas did not sync with the master within 10 s" >&2
      false
    fi
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
    named=$(named_master)
    port=${named#* }
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
    named=$(named_master)
    port=${named#* }
    echo "the sentinels name 127.0.0.1:$port master"
    redis-cli -p "$port" info replication | grep -E '^(role|connected_slaves|slave[0-9])' | tr -d '\r'
    # user:id holds the winners and the tutorial's placeholder `null`.
    members=$(redis-cli -p "$port" scard user:id)
    placeholder=$(redis-cli -p "$port" sismember user:id null)
    echo "commodity:num $(redis-cli -p "$port" get commodity:num), winners $((members - placeholder))"
    ;;
  stop)
    stop_set
    echo "stopped $stopped servers of target/sentinel-dev/ (of 6: a master, two replicas, three sentinels)"
    ;;
  *)
    usage "$0"
    exit 2
    ;;
esac
