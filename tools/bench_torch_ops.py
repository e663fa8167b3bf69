#!/usr/bin/env python3
"""PyTorch baseline for `darkroom bench cuda-ops`: the same cases (linear, 3x3 conv2d in
channels_last, scaled_dot_product_attention on token-major [B, N, H*D] views), timed
with CUDA events over --repeat calls after warm-up, printed as the same JSON fields.

usage: python3 tools/bench_torch_ops.py [--dtype bf16|f16|f32] [--repeat N]
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


def time_ms(fn, repeat):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeat


def rand(*shape, dtype, scale=1.0):
    return (torch.rand(*shape, device="cuda", dtype=torch.float32) - 0.5).mul_(scale).to(dtype)


def bench_linear(dt, m, k, n, repeat):
    x, w, b = rand(m, k, dtype=dt), rand(n, k, dtype=dt, scale=0.1), rand(n, dtype=dt)
    ms = time_ms(lambda: F.linear(x, w, b), repeat)
    return {"op": "linear", "shape": f"{m}x{k}*{n}x{k}T", "ms": ms, "flops": 2.0 * m * n * k}


def bench_conv(dt, n, hw, c, o, repeat):
    x = rand(n, c, hw, hw, dtype=dt).to(memory_format=torch.channels_last)
    w = rand(o, c, 3, 3, dtype=dt, scale=0.1).to(memory_format=torch.channels_last)
    b = rand(o, dtype=dt)
    ms = time_ms(lambda: F.conv2d(x, w, b, padding=1), repeat)
    return {"op": "conv2d_3x3", "shape": f"{n}x{hw}x{hw}x{c}->{o}", "ms": ms,
            "flops": 2.0 * n * hw * hw * o * c * 9}


def bench_attention(dt, b, heads, nq, nk, d, repeat):
    # Token-major storage like darkroom's, viewed as [B, H, N, D] without copies.
    q = rand(b, nq, heads * d, dtype=dt).view(b, nq, heads, d).transpose(1, 2)
    k = rand(b, nk, heads * d, dtype=dt).view(b, nk, heads, d).transpose(1, 2)
    v = rand(b, nk, heads * d, dtype=dt).view(b, nk, heads, d).transpose(1, 2)
    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), repeat)
    return {"op": "attention", "shape": f"{b}x{heads}x{nq}x{nk}x{d}", "ms": ms,
            "flops": 4.0 * b * heads * nq * nk * d}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dtype", default="bf16", choices=DTYPES)
    p.add_argument("--repeat", type=int, default=20)
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("bench_torch_ops: no CUDA device", file=sys.stderr)
        return 1
    dt, r = DTYPES[a.dtype], max(1, a.repeat)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False  # darkroom uses cuDNN's heuristic too
    results = [
        bench_linear(dt, 2 * 4096, 320, 1280, r),
        bench_linear(dt, 2 * 4096, 1280, 5120, r),
        bench_conv(dt, 2, 64, 320, 320, r),
        bench_conv(dt, 2, 128, 128, 128, r),
        bench_conv(dt, 2, 32, 640, 640, r),
        bench_attention(dt, 2, 8, 4096, 4096, 40, r),
        bench_attention(dt, 2, 10, 4096, 4096, 64, r),
        bench_attention(dt, 2, 8, 4096, 77, 40, r),
    ]
    for res in results:
        res["tflops"] = round(res.pop("flops") / (res["ms"] * 1e9), 2)
        res["ms"] = round(res["ms"], 4)
    out = {"impl": "torch " + torch.__version__, "device": torch.cuda.get_device_name(0),
           "dtype": a.dtype, "results": results}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
