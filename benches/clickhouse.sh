#!/usr/bin/env bash
# The ClickHouse backend beside the embedded store: import over HTTP and
# query latency (ticks-load's suite) on one store of generated traffic, for
#   - the embedded store,
#   - one ClickHouse server,
#   - the two-shard cluster written by two `ticks serve` at once.
#
#   benches/clickhouse.sh MESSAGES [WORK_DIR]
#
# Uses scripts/clickhouse.sh (ports 18123-18125: not while the tests run).
# Prints one line per figure; the release build is made first.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:?usage: benches/clickhouse.sh MESSAGES [WORK_DIR]}
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/ticks-chbench.XXXXXX")}
mkdir -p "$work"
cargo build --release -q -p ticks-server -p ticks-benches
ticks=target/release/ticks
load=target/release/ticks-load
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ./scripts/clickhouse.sh stop "$work/clickhouse" || true
}
trap cleanup EXIT
. benches/clickhouse-common.sh
./scripts/clickhouse.sh start "$work/clickhouse" >/dev/null
"$ticks" generate --messages "$messages" --seed 1 > "$work/traffic.ndjson"
lines=$(wc -l < "$work/traffic.ndjson")
split -l 5000 -d -a 5 "$work/traffic.ndjson" "$work/chunk."
echo "messages $messages, lines $lines"



config() { # name urls cluster
  printf 'backend = "clickhouse"\nclickhouse_url = [%s]\nclickhouse_database = "%s"\n%s' "$2" "$1" "$3" > "$work/$1.toml"
  echo "$work/$1.toml"
}

took() { # t0 t1: "N lines/s (S s)"
  awk -v l="$lines" -v a="$1" -v b="$2" 'BEGIN { printf "%.0f lines/s (%.1f s)", l / (b - a), b - a }'
}

measure() { # label url
  local t0 t1
  echo "== $1"
  "$load" --url "$2" queries --samples 100 --warmup 10 2>&1 | sed 's/^/   /'
}

# Embedded.
serve embedded --data "$work/embedded"
t0=$(date +%s.%N); post_chunks "$url" 1 0 "$work"/chunk.; t1=$(date +%s.%N)
echo "embedded import: $(took "$t0" "$t1")"
measure embedded "$url"

# One ClickHouse server.
cfg=$(config bench_single '"http://127.0.0.1:18123"' "")
serve single --config "$cfg" --data "$work/single"
t0=$(date +%s.%N); post_chunks "$url" 1 0 "$work"/chunk.; t1=$(date +%s.%N)
echo "clickhouse single import: $(took "$t0" "$t1")"
measure "clickhouse single" "$url"

# The two-shard cluster, two writers at once.
cfg=$(config bench_cluster '"http://127.0.0.1:18124", "http://127.0.0.1:18125"' 'clickhouse_cluster = "ticks"
')
serve cluster_a --config "$cfg" --data "$work/cluster_a"; a=$url
serve cluster_b --config "$cfg" --data "$work/cluster_b"; b=$url
t0=$(date +%s.%N)
post_chunks "$a" 2 0 "$work"/chunk. & pa=$!
post_chunks "$b" 2 1 "$work"/chunk. & pb=$!
wait $pa; wait $pb
t1=$(date +%s.%N)
echo "clickhouse cluster import, two writers: $(took "$t0" "$t1")"
measure "clickhouse cluster (writer a)" "$a"
echo "totals: embedded/single/cluster $(for u in $(grep -ho 'http://[0-9.:]*' "$work"/embedded.out "$work"/single.out "$work"/cluster_a.out); do curl -s "$u/v1/logs?limit=0" | grep -o '"total":[0-9]*'; done | tr '\n' ' ')"
