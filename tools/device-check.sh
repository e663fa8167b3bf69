#!/usr/bin/env bash
# One-shot check of the CUDA backend on a GPU machine (run from the repository root):
#   (a) unpack the carried Debian packages (.device-debs/*.deb) into /tmp/prefix
#   (b) configure and build with the CUDA backend (sm_90, cuDNN from the torch venv)
#   (c) nvidia-smi, `darkroom info`, darkroom_cuda_tests, the CPU suite (ctest),
#       `darkroom bench cuda-ops --json`, tools/bench_torch_ops.py, the UNet step benches
#       (`darkroom bench unet`: SD 1.5 at 512² and SDXL at 1024², CUDA graph on and off,
#       it/s and peak memory; tools/bench_torch_unet.py for diffusers at the same shapes),
#       SD 1.5 end to end (make-demo-model, then `darkroom generate` 512², 20 steps, on
#       cuda:0, graph on and off: it/s, VAE decode seconds, peak memory), `darkroom serve
#       --cuda-device 0` with the default API workflow twice (tools/serve_smoke.py), and the CPU bench
#       `darkroom bench ops --json` (that machine's CPU has AMX) into bench_cpu_ops.json
#   (d) $OUT/summary.md with pass/fail counts and bench figures (always written)
# Exits non-zero if a step or a test failed.
#
# Environment:
#   OUT                 where logs, JSON and summary.md go (default /tmp/device-check-out)
#   DEVICE_CHECK_DRY=1  skip everything that needs a GPU (for trying the script on a
#                       CPU machine); the build still includes the CUDA backend, and
#                       `darkroom bench unet --cuda-device 0` runs a tiny step on the CPU
#                       (the fallback when no GPU exists)
#   JOBS                build parallelism (default: nproc)
#   BUILD_DIR           build directory (default /tmp/dr-device-build)
#   CUDA_ARCHS          DARKROOM_CUDA_ARCHS (default 90)
#   STOP_AFTER=configure|build  stop after configuring or building (for ad-hoc runs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/device-check-out}"
DRY="${DEVICE_CHECK_DRY:-0}"
JOBS="${JOBS:-$(nproc)}"
BUILD_DIR="${BUILD_DIR:-/tmp/dr-device-build}"
CUDA_ARCHS="${CUDA_ARCHS:-90}"
PREFIX=/tmp/prefix
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.md"
START=$(date +%s)

# Step bookkeeping: each step's status goes into the summary.
declare -a STEPS=()
FAILED=0
record() {  # record NAME STATUS DETAIL
  STEPS+=("| $1 | $2 | $3 |")
  if [[ "$2" != "ok" && "$2" != "skipped" && "$2" != "info" ]]; then FAILED=1; fi
}
log() { echo "[device-check +$(($(date +%s) - START))s] $*"; }

gtest_counts() {  # gtest_counts FILE.json → "tests=N failures=F errors=E"
  python3 - "$1" <<'PY' 2>/dev/null || echo "no JSON report"
import json, sys
d = json.load(open(sys.argv[1]))
fails = [f"{s['name']}.{t['name']}" for s in d.get("testsuites", []) for t in s.get("testsuite", [])
         if t.get("failures")]
print(f"tests={d.get('tests')} failures={d.get('failures')} errors={d.get('errors')}"
      + (f"; failed: {', '.join(fails[:20])}" if fails else ""))
PY
}

bench_table() {  # bench_table FILE.json
  python3 - "$1" <<'PY' 2>/dev/null || echo "(no bench JSON)"
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{d.get('impl')} on {d.get('device')} ({d.get('dtype')})\n")
print("| op | shape | ms | TFLOP/s |\n|---|---|---|---|")
for r in d["results"]:
    print(f"| {r['op']} | {r['shape']} | {r['ms']} | {r['tflops']} |")
PY
}

cpu_bench_table() {  # cpu_bench_table FILE (JSON lines of `darkroom bench ops --json`)
  python3 - "$1" <<'PY' 2>/dev/null || echo "(no CPU bench JSON)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
print("| op | dtype | shape | ours GF/s | oneDNN GF/s | ratio |\n|---|---|---|---|---|---|")
for r in rows:
    ref = r.get("reference_gflops") or 0
    ratio = f"{100 * r['ours_gflops'] / ref:.0f}%" if ref else "-"
    print(f"| {r['op']} | {r['dtype']} | {r['shape']} | {r['ours_gflops']} | {ref} | {ratio} |")
PY
}

unet_table() {  # unet_table FILE (JSON lines of darkroom bench unet / bench_torch_unet.py)
  python3 - "$1" <<'PY' 2>/dev/null || echo "(no UNet bench JSON)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
print("| impl | model | dtype | size | graph | ms/step | it/s | peak GiB (tensors + graphs; torch: allocated) |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    peak = r.get("peak_bytes", (r.get("peak_tensor_bytes") or 0) + (r.get("peak_graph_bytes") or 0))
    graph = r.get("graph", "-")
    if graph == "on" and not r.get("graph_replayed", False):
        graph = "on (NOT replayed)"
    print(f"| {r.get('impl', 'darkroom')} | {r.get('model')} | {r.get('dtype')} | {r.get('size')} "
          f"| {graph} | {r.get('step_ms')} | {r.get('it_per_s')} | {peak / 2**30:.2f} |")
PY
}

write_summary() {
  local rc=$?
  {
    echo "# darkroom device check"
    echo
    echo "- date: $(date -u +%FT%TZ), elapsed $(($(date +%s) - START)) s, dry run: $DRY"
    echo "- device: $(cat "$OUT/nvidia-smi.log" 2>/dev/null | head -n 4 | tr '\n' ' ' || true)"
    echo
    echo "| step | status | detail |"
    echo "|---|---|---|"
    for s in "${STEPS[@]}"; do echo "$s"; done
    echo
    if [[ -s "$OUT/cuda_tests.json" ]]; then
      echo "## darkroom_cuda_tests"
      echo
      gtest_counts "$OUT/cuda_tests.json"
      echo
      grep -E "^\[  FAILED  \]|Failure|NMSE|Expected|error" "$OUT/cuda_tests.log" 2>/dev/null | head -n 60 || true
      echo
    fi
    if [[ -s "$OUT/ctest.log" ]]; then
      echo "## CPU suite (ctest)"
      echo
      grep -E "tests passed|tests failed|\*\*\*Failed|\(Failed\)|Timeout" "$OUT/ctest.log" | head -n 40 || true
      echo
    fi
    if [[ -s "$OUT/bench_unet.json" ]]; then
      echo "## bench_unet (UNet step, batch 2: SD 1.5 at 512², SDXL at 1024²)"
      echo
      unet_table "$OUT/bench_unet.json"
      echo
      echo '```'
      cat "$OUT/bench_unet.json"
      echo '```'
      echo
    fi
    if compgen -G "$OUT/e2e_sd15_*.log" >/dev/null; then
      echo "## SD 1.5 end to end (512x512, 20 steps, euler, CFG 7; darkroom generate)"
      echo
      echo '```'
      for f in "$OUT"/e2e_sd15_*.log; do
        echo "$(basename "$f" .log):"
        grep -E "^darkroom: |captured|graph" "$f" | head -n 6 || true
      done
      echo '```'
      echo
    fi
    if [[ -s "$OUT/e2e_serve_cuda.log" ]]; then
      echo "## darkroom serve on cuda:0 (default API workflow, 512x512, 20 steps)"
      echo
      echo '```'
      grep -E "^prompt |FAILED|compute:" "$OUT/e2e_serve_cuda.log" | head -n 10 || true
      echo '```'
      echo
    fi
    for f in bench_cuda_ops bench_torch_ops; do
      if [[ -s "$OUT/$f.json" ]]; then
        echo "## $f"
        echo
        bench_table "$OUT/$f.json"
        echo
      fi
    done
    if [[ -s "$OUT/bench_cpu_ops.json" ]]; then
      echo "## bench_cpu_ops (darkroom bench ops, CPU)"
      echo
      cpu_bench_table "$OUT/bench_cpu_ops.json"
      echo
    fi
    if [[ $rc -ne 0 ]]; then echo "**script stopped early with status $rc** (see the logs)"; fi
  } >"$SUMMARY"
  log "summary written to $SUMMARY"
  # The device tool brings back at most 8 files: keep summary and JSON, pack the logs.
  (cd "$OUT" && shopt -s nullglob && logs=(*.log) && ((${#logs[@]})) &&
    tar czf logs.tar.gz "${logs[@]}" && rm -f "${logs[@]}") || true
  if [[ $rc -ne 0 ]]; then exit "$rc"; fi
  exit "$FAILED"
}
trap write_summary EXIT

# Runs a step, logging to $OUT/NAME.log; never aborts the script.
run_step() {  # run_step NAME TIMEOUT_S CMD...
  local name=$1 limit=$2
  shift 2
  log "$name: $*"
  local rc=0
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    record "$name" ok ""
  else
    record "$name" "FAILED (rc $rc)" "$(tail -n 3 "$OUT/$name.log" | tr '\n|' ' /' | cut -c1-300)"
    log "$name failed (rc $rc); last lines:"
    tail -n 20 "$OUT/$name.log" || true
  fi
  return 0
}

# ---- (a) packages into /tmp/prefix ----
log "unpacking .device-debs into $PREFIX"
mkdir -p "$PREFIX"
shopt -s nullglob
DEBS=("$ROOT"/.device-debs/*.deb)
if [[ ${#DEBS[@]} -eq 0 ]]; then
  record unpack "FAILED" "no .deb files in .device-debs (carry .device-debs)"
  exit 1
fi
for deb in "${DEBS[@]}"; do dpkg -x "$deb" "$PREFIX"; done
# The runtime package has only libOpenCL.so.1; dnnl's config looks for libOpenCL.so.
[[ -e "$LIBDIR/libOpenCL.so" ]] || ln -sf libOpenCL.so.1 "$LIBDIR/libOpenCL.so"
record unpack ok "${#DEBS[@]} packages"
export CMAKE_PREFIX_PATH="$PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Headers (dnnl, gtest, nlohmann) and link-time libraries also for any target that
# does not get them through an imported CMake target.
# The multiarch folder first: Debian keeps jconfig.h (which says JPEG_LIB_VERSION) there,
# and the host's own /usr/include/x86_64-linux-gnu (an implicit system folder, searched
# after CPATH) may hold another libjpeg's ("library is 62, caller expects 80").
export CPATH="$PREFIX/usr/include/x86_64-linux-gnu:$PREFIX/usr/include${CPATH:+:$CPATH}"
export LIBRARY_PATH="$LIBDIR${LIBRARY_PATH:+:$LIBRARY_PATH}"
# pkg-config (minizip) reads only the prefix's .pc files, and their /usr paths are
# rewritten into the prefix.
export PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig:$PREFIX/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$PREFIX"

# dnnl's CMake config wants OpenCL headers (its GPU runtime is OpenCL, unused here):
# the system's or the CUDA toolkit's CL/cl.h, else a stub that only names a version.
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
OCL_INC=""
for d in /usr/include "$CUDA_HOME/include" "$PREFIX/usr/include"; do
  if [[ -f "$d/CL/cl.h" ]]; then OCL_INC=$d; break; fi
done
if [[ -z "$OCL_INC" ]]; then
  OCL_INC="$PREFIX/ocl-stub/include"
  mkdir -p "$OCL_INC/CL"
  echo '#define CL_VERSION_2_2 1' >"$OCL_INC/CL/cl.h"
fi

# Tools: the torch venv may carry cmake / ninja / python when the system lacks them.
VENV=/opt/torch/.venv
PY=python3
[[ -x "$VENV/bin/python3" ]] && PY="$VENV/bin/python3"
export PATH="$PATH:$VENV/bin:$CUDA_HOME/bin"
GEN=(-G Ninja)
BUILD=(ninja -C "$BUILD_DIR" -j "$JOBS")
if ! command -v ninja >/dev/null; then
  GEN=(-G "Unix Makefiles")
  BUILD=(make -C "$BUILD_DIR" -j "$JOBS")
fi
CUDNN_ROOT="$("$PY" -c 'import nvidia.cudnn,os;print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)"
CUDNN_ARGS=()
if [[ -n "$CUDNN_ROOT" ]]; then
  CUDNN_ARGS=(-DCUDNN_ROOT="$CUDNN_ROOT")
  export LD_LIBRARY_PATH="$CUDNN_ROOT/lib:$LD_LIBRARY_PATH"
fi
# cuBLAS from the toolkit (and, if present, torch's wheels) at run time.
[[ -d "$CUDA_HOME/lib64" ]] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$CUDA_HOME/lib64"
{
  echo "cmake: $(command -v cmake || echo missing) $(cmake --version 2>/dev/null | head -n 1)"
  echo "nvcc: $(command -v nvcc || echo missing) $(nvcc --version 2>/dev/null | tail -n 1)"
  echo "g++: $(g++ --version 2>/dev/null | head -n 1)"
  echo "python: $PY; cuDNN root: ${CUDNN_ROOT:-none}; OpenCL headers: $OCL_INC"
  echo "generator: ${GEN[*]}; LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} | tee "$OUT/tools.log"

# ---- (b) configure and build ----
NVCC="$(command -v nvcc || true)"
run_step configure 300 cmake -S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DDARKROOM_CUDA=ON -DDARKROOM_CUDA_ARCHS="$CUDA_ARCHS" "${CUDNN_ARGS[@]}" \
  -DDARKROOM_OPENCV=OFF \
  ${NVCC:+-DCMAKE_CUDA_COMPILER="$NVCC"} \
  -DOpenCL_INCLUDE_DIR="$OCL_INC" -DOpenCL_LIBRARY="$LIBDIR/libOpenCL.so.1"
if [[ $FAILED -ne 0 ]]; then exit 1; fi
grep -E "^(dnnl_DIR|GTest_DIR|Boost_DIR|nlohmann_json_DIR|CUDNN_LIBRARY|CUDNN_INCLUDE_DIR|CMAKE_CUDA_COMPILER):" \
  "$BUILD_DIR/CMakeCache.txt" | tee "$OUT/found.log" || true
if [[ "${STOP_AFTER:-}" == "configure" ]]; then exit 0; fi
run_step build 420 "${BUILD[@]}"
if [[ $FAILED -ne 0 ]]; then exit 1; fi
DR="$BUILD_DIR/darkroom"
if [[ "${STOP_AFTER:-}" == "build" ]]; then exit 0; fi

# ---- (c) run ----
if [[ "$DRY" == "1" ]]; then
  log "dry run: skipping the GPU steps"
  record gpu-steps skipped "DEVICE_CHECK_DRY=1"
  run_step info 60 "$DR" info
  # The CPU half of the UNet bench: --cuda-device falls back to the CPU with a log line.
  run_step bench_unet_cpu_fallback 300 bash -c "'$DR' bench unet --cuda-device 0 --size 64 --iters 1 --json > '$OUT/bench_unet.json'"
  run_step ctest 400 ctest --test-dir "$BUILD_DIR" -j "$JOBS" --timeout 120 --output-on-failure
  exit 0
fi

run_step nvidia-smi 30 nvidia-smi -L
run_step info 60 "$DR" info
run_step cuda_tests 300 "$BUILD_DIR/tests/darkroom_cuda_tests" --gtest_output="json:$OUT/cuda_tests.json"
[[ -s "$OUT/cuda_tests.json" ]] && record cuda_tests-counts info "$(gtest_counts "$OUT/cuda_tests.json" | cut -c1-200)"
run_step bench_cuda_ops_run 180 bash -c "'$DR' bench cuda-ops --json > '$OUT/bench_cuda_ops.json'"
run_step bench_torch_ops_run 180 bash -c "'$PY' '$ROOT/tools/bench_torch_ops.py' > '$OUT/bench_torch_ops.json'"
# Full-size UNet steps (batch 2 = cond + uncond) on the GPU, JSON lines with it/s and
# peak memory: SD 1.5 at 512² and SDXL at 1024², bf16, the CUDA graph on and off (f16
# was within 4% of bf16 in earlier runs: dropped to fit the 8 minutes); then diffusers'
# eager UNets at the same shapes (its wheel is carried in .whl/: not in the machine's
# image).
run_step bench_unet_run 200 bash -c "for g in on off; do '$DR' bench unet --device cuda --dtype bf16 --graph \$g --iters 20 --json >> '$OUT/bench_unet.json' || exit 1; done"
run_step bench_unet_sdxl_run 240 bash -c "for g in on off; do '$DR' bench unet --model sdxl --device cuda --dtype bf16 --graph \$g --iters 10 --json >> '$OUT/bench_unet.json' || exit 1; done"
if compgen -G "$ROOT/.whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$ROOT"/.whl/*.whl \
    >"$OUT/pip.log" 2>&1 || true
fi
run_step bench_torch_unet_run 240 env PYTHONPATH=/tmp/site bash -c "'$PY' '$ROOT/tools/bench_torch_unet.py' --dtype bf16 >> '$OUT/bench_unet.json' && '$PY' '$ROOT/tools/bench_torch_unet.py' --model sdxl --dtype bf16 --iters 10 >> '$OUT/bench_unet.json'"
# SD 1.5 end to end on cuda:0: a random-weight checkpoint (CLIP, UNet, VAE; images are
# noise, the cost is real), 512², 20 euler steps with CFG 7, graph on and off. The last
# lines of each log: steps and it/s (also without the first step, which captures the
# graph), VAE decode seconds, peak memory.
run_step e2e_demo_model 120 "$DR" make-demo-model --out /tmp/dr-demo.safetensors
for g in on off; do
  run_step "e2e_sd15_graph_$g" 150 "$DR" generate "a red fox in the snow" \
    --model /tmp/dr-demo.safetensors --steps 20 --cuda-device 0 --cuda-graphs "$g" \
    --out /tmp/dr-e2e --prefix "graph_$g"
done
# The ComfyUI workflow path on cuda:0: `darkroom serve --cuda-device 0` with the demo
# checkpoint, the default API workflow (512², 20 steps) twice with different seeds;
# per-prompt seconds in the log (the first includes loading the checkpoint).
run_step e2e_serve_cuda 150 "$PY" "$ROOT/tools/serve_smoke.py" --darkroom "$DR" \
  --base-directory /tmp/dr-serve --checkpoint /tmp/dr-demo.safetensors --device-args "--cuda-device 0"
# server_api needs pytest/websocket-client/playwright, which the GPU machine lacks.
# Four tests at a time with four threads each: 16 tests × 16 OpenMP/pool threads thrash
# (gomp's spin-waits), and a UNet golden test then runs past its timeout.
run_step ctest 200 env DARKROOM_THREADS=4 OMP_NUM_THREADS=4 ctest --test-dir "$BUILD_DIR" -j 4 \
  --timeout 100 -E server_api --output-on-failure
# CPU kernels vs oneDNN on the GPU machine's CPU; JSON lines, flushed per case, so a
# timeout still leaves the finished cases (and is reported, not counted as a failure).
# Informational and last: it gets what is left of 7.5 minutes (at most 150 s, at least 20).
CPU_LIMIT=$((450 - ($(date +%s) - START)))
((CPU_LIMIT > 150)) && CPU_LIMIT=150
((CPU_LIMIT < 20)) && CPU_LIMIT=20
log "bench_cpu_ops_run (limit ${CPU_LIMIT} s): $DR bench ops --json"
CPU_RC=0
timeout --kill-after=10 "$CPU_LIMIT" "$DR" bench ops --json >"$OUT/bench_cpu_ops.json" \
  2>"$OUT/bench_cpu_ops.log" || CPU_RC=$?
if [[ $CPU_RC -eq 0 ]]; then
  record bench_cpu_ops_run ok ""
elif [[ $CPU_RC -eq 124 || $CPU_RC -eq 137 ]]; then
  record bench_cpu_ops_run info "timed out after $CPU_LIMIT s; $(grep -c '^{' "$OUT/bench_cpu_ops.json" || true) cases done"
else
  record bench_cpu_ops_run "FAILED (rc $CPU_RC)" "$(tail -n 3 "$OUT/bench_cpu_ops.log" | tr '\n|' ' /' | cut -c1-300)"
fi
