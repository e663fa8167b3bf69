#!/usr/bin/env bash
# Sets up a fresh machine, builds darkroom and starts the server on its embedded
# defaults: 127.0.0.1:8188, the official ComfyUI frontend at http://127.0.0.1:8188/, data
# under ./darkroom-data (models/, input/, output/, temp/, user/ as ComfyUI lays them out).
# Extra arguments go to `darkroom serve`.
#
# With no checkpoint in darkroom-data/models/checkpoints/, it first writes the demo model
# (full-size SD 1.5 architecture, seeded RANDOM weights: its images are noise) so that the
# default workflow runs end to end. Put real checkpoints in that folder for real images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
DATA=darkroom-data
CKPTS="$DATA/models/checkpoints"
mkdir -p "$CKPTS"
if ! compgen -G "$CKPTS/*.safetensors" >/dev/null && ! compgen -G "$CKPTS/*.ckpt" >/dev/null; then
  build/darkroom make-demo-model --out "$CKPTS/darkroom-demo-random-sd15.safetensors"
fi
exec build/darkroom serve --base-directory "$DATA" "$@"
