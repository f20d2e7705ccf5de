#!/usr/bin/env bash
# Runs every test of Ticks: unit, property, integration (real server over
# loopback, crash recovery). Installs nothing beyond what cargo fetches.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --exclude ticks-benches --all-targets --no-fail-fast
# The benches are run by hand (see README); here they only have to compile,
# and the bench command's own unit tests run.
cargo test -p ticks-benches --all-targets --no-run
cargo test -p ticks-benches --bins
cargo test --workspace --exclude ticks-benches --doc
# The web page in headless Chromium.
./scripts/browser-test.sh
