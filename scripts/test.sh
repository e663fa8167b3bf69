#!/usr/bin/env bash
# Sets up a fresh machine, builds darkroom and runs every test: the GoogleTest suite
# (CTest) and a short libFuzzer run of each fuzz target. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)")
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" fuzz/run.sh
echo "test.sh: all tests passed"
