#!/usr/bin/env bash
# ClickHouse servers on loopback for the tests of the ClickHouse backend:
# one single server; two servers that are the two shards of the cluster
# `ticks` (a `remote_servers` entry, Distributed tables over them); and
# three replicas of one shard (replicated tables) with a ZooKeeper server.
#
#   scripts/clickhouse.sh start DIR   installs Debian's clickhouse-server and
#                                     zookeeper if missing, starts them all,
#                                     waits until they answer, writes DIR/env
#   scripts/clickhouse.sh stop DIR    stops them by the PIDs it wrote
#   scripts/clickhouse.sh start-one DIR NAME HTTP_PORT TCP_PORT INTERSERVER_PORT [REPLICA]
#   scripts/clickhouse.sh stop-one DIR NAME
#                                     one server of its own (the fault
#                                     tests stop and restart theirs); with
#                                     REPLICA, a replica named so, on the
#                                     ZooKeeper of TICKS_TEST_ZOOKEEPER
#
# DIR/env sets TICKS_TEST_CLICKHOUSE (the single server's URL),
# TICKS_TEST_CLICKHOUSE_CLUSTER (the two shards' URLs, comma-separated),
# TICKS_TEST_CLICKHOUSE_REPLICAS (the three replicas' URLs) and
# TICKS_TEST_ZOOKEEPER (host:port).
# Ports: 18123 (single), 18124 and 18125 (shards), 18126-18128 (replicas);
# native ports 19000-19005; ZooKeeper 18181.
set -euo pipefail
cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

server_bin() {
  for b in /usr/sbin/clickhouse-server /usr/bin/clickhouse-server /usr/bin/clickhouse; do
    [ -x "$b" ] && { echo "$b"; return; }
  done
}

stop_pidfile() {
  local pidfile=$1
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

stop() {
  for pidfile in "$dir"/*/pid; do stop_pidfile "$pidfile"; done
}

apt_install() { # package...
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; fi
}

install() {
  [ -n "$(server_bin)" ] || apt_install clickhouse-server
}

zookeeper_jar=/usr/share/java/zookeeper.jar

install_zookeeper() {
  [ -f "$zookeeper_jar" ] && command -v java >/dev/null || apt_install zookeeper
}

# One standalone ZooKeeper server (what replicated tables coordinate
# through; production runs an ensemble of three).
start_zookeeper() { # port
  local port=$1 d="$dir/zookeeper"
  mkdir -p "$d/data"
  cat > "$d/zoo.cfg" <<CFG
tickTime=500
dataDir=$d/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
4lw.commands.whitelist=srvr,ruok
CFG
  (cd "$d" && exec java -Xmx256m -cp "$zookeeper_jar" org.apache.zookeeper.server.ZooKeeperServerMain "$d/zoo.cfg" >"$d/stdout.log" 2>&1) &
  echo $! > "$d/pid"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf ruok >&3 && [ "$(cat <&3)" = imok ]) 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "ZooKeeper on port $port did not start" >&2; cat "$d/stdout.log" >&2 || true; exit 1
}

launch() { # name http_port
  local name=$1 http=$2 bin; bin=$(server_bin)
  (cd "$dir/$name" && exec "$bin" --config-file="$dir/$name/config.xml" >"$dir/$name/log/stdout.log" 2>&1) &
  echo $! > "$dir/$name/pid"
}

wait_up() { # http_port
  local port=$1
  for i in $(seq 1 300); do
    [ "$(curl -s "http://127.0.0.1:$port/ping" || true)" = "Ok." ] && return 0
    sleep 0.2
  done
  echo "ClickHouse on port $port did not start" >&2; cat "$dir"/*/log/*.log >&2 || true; exit 1
}

config() { # name http_port tcp_port interserver_port [replica]
  local name=$1 http=$2 tcp=$3 inter=$4 replica=${5:-} d="$dir/$1" replication=""
  if [ -n "$replica" ]; then
    local zk=${TICKS_TEST_ZOOKEEPER:?a replica needs TICKS_TEST_ZOOKEEPER}
    replication="<zookeeper><node><host>${zk%:*}</host><port>${zk##*:}</port></node><session_timeout_ms>6000</session_timeout_ms></zookeeper>
  <macros><shard>1</shard><replica>$replica</replica></macros>"
  fi
  mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas" "$d/log"
  cat > "$d/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  cat > "$d/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$d/log/server.log</log><errorlog>$d/log/error.log</errorlog><size>10M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <interserver_http_port>$inter</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <format_schema_path>$d/format_schemas/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <remote_servers>
    <ticks>
      <shard><replica><host>127.0.0.1</host><port>19001</port></replica></shard>
      <shard><replica><host>127.0.0.1</host><port>19002</port></replica></shard>
    </ticks>
    <ticks_replicated>
      <shard>
        <internal_replication>true</internal_replication>
        <replica><host>127.0.0.1</host><port>19003</port></replica>
        <replica><host>127.0.0.1</host><port>19004</port></replica>
        <replica><host>127.0.0.1</host><port>19005</port></replica>
      </shard>
    </ticks_replicated>
  </remote_servers>
  $replication
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
XML
}

start() {
  install
  install_zookeeper
  local bin; bin=$(server_bin)
  mkdir -p "$dir"
  stop
  start_zookeeper 18181
  export TICKS_TEST_ZOOKEEPER=127.0.0.1:18181
  config single 18123 19000 19009
  config shard1 18124 19001 19010
  config shard2 18125 19002 19011
  config replica1 18126 19003 19012 r1
  config replica2 18127 19004 19013 r2
  config replica3 18128 19005 19014 r3
  launch single 18123; launch shard1 18124; launch shard2 18125
  launch replica1 18126; launch replica2 18127; launch replica3 18128
  for port in 18123 18124 18125 18126 18127 18128; do wait_up "$port"; done
  cat > "$dir/env" <<ENV
export TICKS_TEST_CLICKHOUSE=http://127.0.0.1:18123
export TICKS_TEST_CLICKHOUSE_CLUSTER=http://127.0.0.1:18124,http://127.0.0.1:18125
export TICKS_TEST_CLICKHOUSE_REPLICAS=http://127.0.0.1:18126,http://127.0.0.1:18127,http://127.0.0.1:18128
export TICKS_TEST_ZOOKEEPER=127.0.0.1:18181
ENV
  echo "ClickHouse: single on 18123, cluster 'ticks' on 18124 and 18125, replicas on 18126-18128 with ZooKeeper on 18181 ($("$bin" --version 2>/dev/null || curl -s 'http://127.0.0.1:18123/?query=SELECT%20version()'))"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  start-one)
    install
    [ $# -eq 6 ] || [ $# -eq 7 ] || { echo "usage: $0 start-one DIR NAME HTTP_PORT TCP_PORT INTERSERVER_PORT [REPLICA]" >&2; exit 2; }
    name=$3
    mkdir -p "$dir"
    stop_pidfile "$dir/$name/pid"
    [ -f "$dir/$name/config.xml" ] || config "$name" "$4" "$5" "$6" "${7:-}"
    launch "$name" "$4"
    wait_up "$4"
    cat "$dir/$name/pid" ;;
  stop-one) stop_pidfile "$dir/${3:?name}/pid" ;;
  *) echo "usage: $0 start|stop|start-one|stop-one DIR ..." >&2; exit 2 ;;
esac
