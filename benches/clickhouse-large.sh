#!/usr/bin/env bash
# The ClickHouse backend beside the embedded store at sizes where posting
# every line over HTTP takes hours on ClickHouse (10M messages: ~34M
# lines): each store is filled the way an operator fills it, and the
# import over HTTP is measured on the last lines only, on a full store.
#
#   benches/clickhouse-large.sh MESSAGES [WORK_DIR] [TAIL_LINES]
#
# 1. `ticks generate --messages MESSAGES --seed 1`: all but the last
#    TAIL_LINES lines (default 67,826: ~20,000 messages' worth) go to
#    `ticks import` of an embedded store (timed), the rest to a file.
# 2. `ticks migrate --to clickhouse` copies the store into one server and
#    into the two-shard cluster (timed); each `ticks serve` settles it
#    (timed until every entry is settled).
# 3. The last lines are posted over HTTP in chunks of 5,000: to the
#    embedded store, to the server, and to the cluster through two
#    `ticks serve` at once (alternate chunks); then `ticks-load queries`.
#
# Uses scripts/clickhouse.sh (ports 18123-18125: not while the tests run).
# Needs ~2.3 KB of disk per message for the embedded store and ~3 KB per
# copy on ClickHouse.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:?usage: benches/clickhouse-large.sh MESSAGES [WORK_DIR] [TAIL_LINES]}
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/ticks-chlarge.XXXXXX")}
tail_lines=${3:-67826}
samples=${SAMPLES:-20}
mkdir -p "$work"
cargo build --release -q -p ticks-server -p ticks-benches
ticks=$PWD/target/release/ticks
load=$PWD/target/release/ticks-load
ch=http://127.0.0.1
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ./scripts/clickhouse.sh stop "$work/clickhouse" || true
}
trap cleanup EXIT
. benches/clickhouse-common.sh
./scripts/clickhouse.sh start "$work/clickhouse" >/dev/null

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# 1. The store, less its last lines.
t0=$(now)
"$ticks" generate --messages "$messages" --seed 1 \
  | awk -v keep="$tail_lines" -v tail="$work/tail.ndjson" '
      NR > keep { print ring[NR % keep] }
      { ring[NR % keep] = $0 }
      END { n = NR < keep ? NR : keep; for (i = NR - n + 1; i <= NR; i++) print ring[i % keep] > tail }' \
  | "$ticks" import --data "$work/embedded" - > "$work/import.out" 2> "$work/import.err"
t1=$(now)
echo "embedded import of the store: $(secs "$t0" "$t1") s: $(tail -1 "$work/import.out")"
rm -f "$work"/tail.chunk.*
split -l 5000 -d -a 4 "$work/tail.ndjson" "$work/tail.chunk."

config() { # name urls cluster
  printf 'backend = "clickhouse"\nclickhouse_url = [%s]\nclickhouse_database = "%s"\nclickhouse_settle_lag_seconds = 2\n%s' \
    "$2" "$1" "$3" > "$work/$1.toml"
  echo "$work/$1.toml"
}
single=$(config bench_single "\"$ch:18123\"" "")
cluster=$(config bench_cluster "\"$ch:18124\", \"$ch:18125\"" 'clickhouse_cluster = "ticks"
')

# 2. The copies.
for cfg in "$single" "$cluster"; do
  t0=$(now)
  "$ticks" --data "$work/embedded" --config "$cfg" migrate --to clickhouse > /dev/null 2> "$work/migrate.err"
  t1=$(now)
  echo "migrate to $(basename "$cfg" .toml): $(secs "$t0" "$t1") s"
done


settled() { # node database: waits until every entry is settled; prints seconds
  local t0; t0=$(now)
  local db=$2
  until [ "$(curl -s "$1" -d "SELECT (SELECT sum(sign) FROM $db.latest) = (SELECT uniqExact(key) FROM $db.entries)")" = 1 ]; do
    sleep 2
  done
  secs "$t0" "$(now)"
}


lines=$(wc -l < "$work/tail.ndjson")
rate() { awk -v l="$lines" -v a="$1" -v b="$2" 'BEGIN { printf "%.0f lines/s (%.1f s)", l / (b - a), b - a }'; }

measure() { # label url
  echo "== $1"
  "$load" --url "$2" queries --samples "$samples" --warmup 2 2>&1 | sed 's/^/   /'
}

# 3. Each deployment: settled, the last lines over HTTP, the queries.
serve embedded --data "$work/embedded"
t0=$(now); post_chunks "$url" 1 0 "$work"/tail.chunk.; t1=$(now)
echo "embedded, the last $lines lines over HTTP: $(rate "$t0" "$t1")"
measure embedded "$url"

serve single --config "$single" --data "$work/single"
echo "one server settled in $(settled "$ch:18123" bench_single) s"
measure "clickhouse single" "$url"
t0=$(now); post_chunks "$url" 1 0 "$work"/tail.chunk.; t1=$(now)
echo "clickhouse single, the last $lines lines over HTTP: $(rate "$t0" "$t1")"

serve cluster_a --config "$cluster" --data "$work/cluster_a"; a=$url
serve cluster_b --config "$cluster" --data "$work/cluster_b"; b=$url
echo "the cluster settled in $(settled "$ch:18124" bench_cluster) s"
measure "clickhouse cluster (writer a)" "$a"
t0=$(now)
post_chunks "$a" 2 0 "$work"/tail.chunk. & pa=$!
post_chunks "$b" 2 1 "$work"/tail.chunk. & pb=$!
wait $pa; wait $pb
t1=$(now)
echo "clickhouse cluster, the last $lines lines over HTTP, two writers: $(rate "$t0" "$t1")"
echo "totals: embedded/single/cluster $(for u in $(grep -ho 'http://[0-9.:]*' "$work"/embedded.out "$work"/single.out "$work"/cluster_a.out); do curl -s "$u/v1/logs?limit=0" | grep -o '"total":[0-9]*'; done | tr '\n' ' ')"
