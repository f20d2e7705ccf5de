# Shared by benches/clickhouse.sh and benches/clickhouse-large.sh (sourced):
# starting `ticks serve` and posting chunks of lines to it. Uses the
# caller's $ticks, $work and pids.

serve() { # name args...: starts `ticks serve`, sets $url once /readyz says 200
  local name=$1; shift
  "$ticks" serve --listen 127.0.0.1:0 "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  url=""
  for _ in $(seq 1 3000); do
    url=$(grep -o 'http://[0-9.:]*' "$work/$name.out" 2>/dev/null || true)
    [ -n "$url" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ] && return
    sleep 0.2
  done
  echo "$name did not start: $(cat "$work/$name.err")" >&2; exit 1
}

post_chunks() { # url every offset prefix: posts every every-th file $prefix* from offset
  local url=$1 every=$2 offset=$3 prefix=$4 i=0
  for f in "$prefix"*; do
    if [ $((i % every)) = "$offset" ]; then
      code=$(curl -s -o "$work/last.$offset.json" -w '%{http_code}' -X POST "$url/v1/import" --data-binary @"$f")
      [ "$code" = 200 ] || { echo "import of $f to $url: $code $(cat "$work/last.$offset.json")" >&2; exit 1; }
    fi
    i=$((i + 1))
  done
}
