#!/usr/bin/env bash
# The ClickHouse backend's tests on a current ClickHouse engine: chdb (the
# `chdb` Python package embeds one) served on loopback by
# scripts/chdb-server.py, as one single server (the cluster tests need
# Debian's servers, scripts/clickhouse.sh). Installs Python's venv and chdb
# when missing (root on Debian: apt-get; PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v curl >/dev/null 2>&1 || ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq curl python3 python3-venv >/dev/null
fi
venv=target/chdb-venv
if ! "$venv/bin/python" -c 'import chdb' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'chdb==4.4.0'
fi
data=$(mktemp -d "${TMPDIR:-/tmp}/ticks-chdb.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/python" scripts/chdb-server.py "$port" "$data/engine" > "$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.2
done
head -1 "$data/server.log"
export TICKS_TEST_CLICKHOUSE="http://127.0.0.1:$port"
unset TICKS_TEST_CLICKHOUSE_CLUSTER TICKS_TEST_CLICKHOUSE_REPLICAS TICKS_REQUIRE_CLICKHOUSE
cargo test -p ticks-query --test clickhouse
cargo test -p ticks-server --test e2e conformance::
