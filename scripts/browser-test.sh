#!/usr/bin/env bash
# The web page in a real browser: Debian's Chromium, headless, driven by
# playwright-core (never `npx playwright install`, which downloads a browser).
# Installs what it needs when missing (root on Debian: apt-get; npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium nodejs npm >/dev/null
fi
cargo build -p ticks-server --bin ticks
cd tests/browser
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent
node --test --test-concurrency=1 ui.test.mjs
