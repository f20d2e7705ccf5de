#!/usr/bin/env bash
# The web page in a real browser: Debian's Chromium, headless, driven by
# playwright-core (never `npx playwright install`, which downloads a browser).
# Installs what it needs when missing (root on Debian: apt-get; npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what is missing: a machine's own Node.js (e.g. from NodeSource) ships
# npm itself, and Debian's npm package conflicts with it.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The page speaks Japanese: without a CJK font its screenshots show boxes.
[ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto | grep -q CJK || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build -p ticks-server --bin ticks
cd tests/browser
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent
node --test --test-concurrency=1 ui.test.mjs
# The same page on the ClickHouse backend, when scripts/test.sh started one.
if [ -n "${TICKS_TEST_CLICKHOUSE:-}" ]; then
  TICKS_UI_CLICKHOUSE="${TICKS_TEST_CLICKHOUSE%%,*}" node --test --test-concurrency=1 ui.test.mjs
fi
