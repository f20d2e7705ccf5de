#!/usr/bin/env bash
# Runs every test of Ticks: unit, property, integration (real server over
# loopback, crash recovery). Installs nothing beyond what cargo fetches.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets --no-fail-fast
cargo test --workspace --doc
