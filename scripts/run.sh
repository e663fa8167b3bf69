#!/usr/bin/env bash
# Sets up a fresh machine, builds darkroom and starts the server on its embedded
# defaults (127.0.0.1:8188, data under ./darkroom-data). Extra arguments go to
# `darkroom serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec build/darkroom serve "$@"
