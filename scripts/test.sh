#!/usr/bin/env bash
# Runs every test of Ticks: unit, property, integration (real server over
# loopback, crash recovery), the ClickHouse backend on real ClickHouse
# servers, and the page in headless Chromium. Installs what they need:
# Debian's clickhouse-server, Chromium and fonts.
set -euo pipefail
cd "$(dirname "$0")/.."
# ClickHouse for the ClickHouse backend's tests: Debian's server (installed
# when missing) as one single server and a two-shard cluster on loopback,
# stopped by their PIDs when the tests end, whatever their outcome.
clickhouse_dir=$(mktemp -d "${TMPDIR:-/tmp}/ticks-clickhouse.XXXXXX")
trap './scripts/clickhouse.sh stop "$clickhouse_dir"; rm -rf "$clickhouse_dir"' EXIT
./scripts/clickhouse.sh start "$clickhouse_dir"
# shellcheck disable=SC1091
. "$clickhouse_dir/env"
export TICKS_REQUIRE_CLICKHOUSE=1
cargo test --workspace --exclude ticks-benches --all-targets --no-fail-fast
# The benches are run by hand (see README); here they only have to compile,
# and the bench command's own unit tests run.
cargo test -p ticks-benches --all-targets --no-run
cargo test -p ticks-benches --bins
cargo test --workspace --exclude ticks-benches --doc
# The ClickHouse backend's SQL on a current engine too (chdb, from PyPI).
./scripts/chdb-test.sh
# The web page in headless Chromium.
./scripts/browser-test.sh
