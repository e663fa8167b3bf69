#!/usr/bin/env bash
# The CPU benchmark on the GPU machine's host CPU (16 cores, AMX), run from the repository
# root through the device tool with .device-debs and .whl carried: builds the CPU-only
# darkroom, then runs scripts/bench-cpu.sh (darkroom beside diffusers) and
# `darkroom bench unet` / `bench ops` for comparison with earlier runs. Results in $OUT.
set -uo pipefail
ROOT="$(pwd)" OUT="${OUT:-/tmp/bench-out}" PREFIX=/tmp/prefix
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
mkdir -p "$OUT" "$PREFIX"
for deb in .device-debs/*.deb; do dpkg -x "$deb" "$PREFIX"; done
[[ -e "$LIBDIR/libOpenCL.so" ]] || ln -sf libOpenCL.so.1 "$LIBDIR/libOpenCL.so"
mkdir -p "$PREFIX/ocl-stub/include/CL" && echo '#define CL_VERSION_2_2 1' >"$PREFIX/ocl-stub/include/CL/cl.h"
export CMAKE_PREFIX_PATH="$PREFIX/usr" LD_LIBRARY_PATH="$LIBDIR" CPATH="$PREFIX/usr/include"
export LIBRARY_PATH="$LIBDIR" PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig:$PREFIX/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$PREFIX" PATH="$PATH:/opt/torch/.venv/bin"
PY=python3; [[ -x /opt/torch/.venv/bin/python3 ]] && PY=/opt/torch/.venv/bin/python3
"$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1
export PYTHONPATH=/tmp/site
{ lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | cut -c1-200; date -u; } >"$OUT/machine.txt"
B=/tmp/dr-bench-build
( cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DDARKROOM_CUDA=OFF -DDARKROOM_TESTS=OFF \
    -DOpenCL_INCLUDE_DIR="$PREFIX/ocl-stub/include" -DOpenCL_LIBRARY="$LIBDIR/libOpenCL.so.1" &&
  ninja -C $B -j 16 darkroom ) >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
echo "built in $SECONDS s"
export PYTHON="$PY"
timeout 330 scripts/bench-cpu.sh --size 512 --steps 3 --darkroom $B/darkroom --json \
  | tee "$OUT/sd15.jsonl"
echo "sd15 done at $SECONDS s"
timeout 90 "$PY" bench/peers/diffusers_pipeline.py --dtype bf16 --bf16-mode cast --json | tee "$OUT/diffusers_bf16_cast.jsonl"
[[ "${SKIP_UNET:-0}" == 1 ]] || for dt in f32 bf16; do
  timeout 60 $B/darkroom bench unet --size 512 --iters 3 --dtype $dt --json | tee -a "$OUT/unet.jsonl"
done
timeout 90 $B/darkroom bench ops --repeat 3 --json >"$OUT/ops.jsonl" 2>&1
echo "all done at $SECONDS s"
