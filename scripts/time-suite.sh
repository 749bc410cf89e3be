#!/usr/bin/env bash
# Clean build and test-suite time, as on a fresh clone: builds the tests into an empty target
# folder, runs the suite there, prints both times and removes the folder.
#   bash scripts/time-suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
start=$(date +%s)
CARGO_TARGET_DIR="$dir" cargo test --workspace --no-run
built=$(date +%s)
CARGO_TARGET_DIR="$dir" cargo test --workspace
end=$(date +%s)
echo "clean build $((built - start)) s, suite $((end - built)) s, total $((end - start)) s ($(nproc) cores)"
