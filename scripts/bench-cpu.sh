#!/usr/bin/env bash
# darkroom beside diffusers on PyTorch, on this CPU, the same way and in the same run:
# `darkroom bench sd15|sdxl` and bench/peers/diffusers_pipeline.py with the same model,
# size, timed steps and thread count, f32 and bf16 (diffusers: bf16 autocast), then one
# side-by-side table.
#
#   scripts/bench-cpu.sh [--model sd15|sdxl] [--size N] [--steps 3] [--threads N] [--json]
#                        [--darkroom PATH]
#
# --size defaults to the model's own (512 / 1024). SDXL in f32 needs about 18 GB of RAM
# for darkroom and as much for diffusers (they run one after the other).
#
# --threads defaults to every CPU (nproc); darkroom gets DARKROOM_THREADS and
# OMP_NUM_THREADS, torch gets torch.set_num_threads. --json prints the JSON lines of all
# runs instead of the table. PYTHON picks the interpreter (default python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL=sd15 SIZE=0 STEPS=3 THREADS="$(nproc)" JSON=0 DR="${DARKROOM:-$ROOT/build/darkroom}"
PY="${PYTHON:-python3}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --darkroom) DR=$2; shift 2 ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench-cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$SIZE" != 0 ]] || { [[ $MODEL == sdxl ]] && SIZE=1024 || SIZE=512; }
[[ -x "$DR" ]] || { echo "bench-cpu.sh: no darkroom executable at $DR (--darkroom PATH)" >&2; exit 2; }

LINES="$(mktemp)"
trap 'rm -f "$LINES"' EXIT
# Interleaved by dtype, so that both implementations see the same machine load.
for dt in f32 bf16; do
  "$DR" bench "$MODEL" --dtype "$dt" --size "$SIZE" --steps "$STEPS" --threads "$THREADS" --json \
    | grep '^{' >>"$LINES"
  "$PY" "$ROOT/bench/peers/diffusers_pipeline.py" --model "$MODEL" --dtype "$dt" --size "$SIZE" --steps "$STEPS" \
    --threads "$THREADS" --json | grep '^{' >>"$LINES"
done

if [[ $JSON == 1 ]]; then cat "$LINES"; exit 0; fi
"$PY" - "$LINES" "$SIZE" "$STEPS" "$MODEL" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
size, steps, model = sys.argv[2], sys.argv[3], sys.argv[4]
cpu = next((r["cpu"] for r in rows if r.get("cpu")), "")
print(f"{cpu}\n{model} {size}x{size}, CFG (UNet batch 2), mean of {steps} steps after a warm-up, "
      f"{rows[0]['threads']} threads\n")
print("| implementation | dtype | text encode s | s / step | VAE decode s | 20 steps s | peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    impl = "darkroom" if r["impl"] == "darkroom" else r["impl"].split(",")[0] + " (" + \
        r["impl"].split(",")[-1].strip() + ")"
    dt = r["dtype"] + (" autocast" if r.get("bf16_mode") == "autocast" else "")
    flag = "" if r.get("finite", True) else " (NOT FINITE)"
    print(f"| {impl} | {dt} | {r['text_encode_s']:.3f} | {r['step_s']:.3f} | "
          f"{r['vae_decode_s']:.3f} | {r['total_20_steps_s']:.1f} | {r['peak_rss_mib']:.0f} |{flag}")
by = {(r["impl"] == "darkroom", r["dtype"]): r for r in rows}
for dt in ("f32", "bf16"):
    a, b = by.get((True, dt)), by.get((False, dt))
    if a and b:
        print(f"\n{dt}: darkroom step {b['step_s'] / a['step_s']:.2f}x diffusers' speed "
              f"(>1 = darkroom faster)", end="")
a, b = by.get((True, "f32")), by.get((True, "bf16"))
if a and b:
    print(f"\ndarkroom bf16 vs f32: {a['step_s'] / b['step_s']:.2f}x per step")
PY
