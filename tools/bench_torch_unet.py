#!/usr/bin/env python3
"""The PyTorch/diffusers baseline for `darkroom bench unet`: the SD 1.5 UNet
(UNet2DConditionModel with SD 1.5's config, random init) timed on the same inputs —
batch 2 (cond + uncond), 77×768 context — in eager mode and with SDPA attention.

Prints one JSON line like darkroom's: step_ms, it_per_s, peak memory.
Usage: bench_torch_unet.py [--device cuda] [--dtype bf16|f16|f32] [--size 512] [--iters 20]
"""
import argparse
import json
import time

import torch
from diffusers import UNet2DConditionModel

SD15 = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768, attention_head_dim=8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[a.dtype]
    dev = torch.device(a.device)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15).to(dev, dtype).eval()
    lat = a.size // 8
    x = torch.randn(2, 4, lat, lat, device=dev, dtype=dtype)
    t = torch.tensor([500, 500], device=dev)
    ctx = torch.randn(2, 77, 768, device=dev, dtype=dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for _ in range(3):
            unet(x, t, ctx)
        sync()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            unet(x, t, ctx)
        sync()
        step = (time.perf_counter() - t0) / a.iters
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else 0
    print(json.dumps({"model": "sd15_unet", "impl": f"diffusers eager, torch {torch.__version__}",
                      "device": str(dev), "dtype": a.dtype, "size": a.size, "batch": 2,
                      "step_ms": round(step * 1e3, 3), "it_per_s": round(1 / step, 3),
                      "peak_bytes": peak}))


if __name__ == "__main__":
    main()
