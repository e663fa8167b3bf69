#!/usr/bin/env bash
# Builds the fuzzers with clang and runs each for N seconds (default 30): safetensors,
# then the .ckpt reader (pickle VM and torch.save archive, seeded with tests/data/ckpt),
# then the image decoders (seeded with tests/data/images).
#   fuzz/run.sh [seconds]        BUILD_DIR=... to build elsewhere (default build-fuzz)
# New inputs go to a scratch corpus, never into the committed seeds; a crash leaves its
# input in $BUILD_DIR/fuzz-artifacts/ and makes this script fail.
set -euo pipefail

seconds="${1:-30}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-fuzz}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DDARKROOM_FUZZ=ON -DDARKROOM_TESTS=OFF -DDARKROOM_CUDA=OFF >/dev/null
ninja -C "$build" fuzz_safetensors fuzz_pickle fuzz_image

scratch="$build/fuzz-corpus/safetensors"
artifacts="$build/fuzz-artifacts/"
mkdir -p "$scratch" "$artifacts"
"$build/fuzz/fuzz_safetensors" \
  -max_total_time="$seconds" -print_final_stats=1 \
  -dict="$root/fuzz/safetensors.dict" -artifact_prefix="$artifacts" \
  "$scratch" "$root/fuzz/corpus/safetensors"

pickle_scratch="$build/fuzz-corpus/pickle"
mkdir -p "$pickle_scratch"
"$build/fuzz/fuzz_pickle" \
  -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts" \
  "$pickle_scratch" "$root/tests/data/ckpt"

image_scratch="$build/fuzz-corpus/image"
mkdir -p "$image_scratch"
"$build/fuzz/fuzz_image" \
  -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts" \
  -rss_limit_mb=2048 "$image_scratch" "$root/tests/data/images"
