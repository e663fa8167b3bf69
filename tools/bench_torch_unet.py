#!/usr/bin/env python3
"""The PyTorch/diffusers baseline for `darkroom bench unet`: the SD 1.5 or SDXL UNet
(UNet2DConditionModel with the published config, random init) timed on the same inputs —
batch 2 (cond + uncond), 77-token context (768 wide for SD 1.5; 2048 for SDXL, with
SDXL's text_embeds [2, 1280] and time_ids [2, 6]) — in eager mode and with SDPA attention.

Prints one JSON line like darkroom's: step_ms, it_per_s, peak memory.
Usage: bench_torch_unet.py [--model sd15|sdxl] [--device cuda] [--dtype bf16|f16|f32]
                           [--size 512 (sd15) | 1024 (sdxl)] [--iters 20]
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
# stable-diffusion-xl-base-1.0/unet/config.json (attention_head_dim = heads per level).
SDXL = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
            cross_attention_dim=2048, use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--model", default="sd15", choices=("sd15", "sdxl"))
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[a.dtype]
    dev = torch.device(a.device)
    sdxl = a.model == "sdxl"
    size = a.size or (1024 if sdxl else 512)
    torch.manual_seed(0)
    # Initialised on the device itself: SDXL's 2.6 G parameters init slowly on a CPU.
    with torch.device(dev):
        unet = UNet2DConditionModel(**(SDXL if sdxl else SD15))
    unet = unet.to(dev, dtype).eval()
    lat = size // 8
    x = torch.randn(2, 4, lat, lat, device=dev, dtype=dtype)
    t = torch.tensor([500, 500], device=dev)
    ctx = torch.randn(2, 77, 2048 if sdxl else 768, device=dev, dtype=dtype)
    kw = {}
    if sdxl:
        kw["added_cond_kwargs"] = {
            "text_embeds": torch.randn(2, 1280, device=dev, dtype=dtype),
            "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * 2, device=dev,
                                     dtype=dtype)}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for _ in range(3):
            unet(x, t, ctx, **kw)
        sync()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            unet(x, t, ctx, **kw)
        sync()
        step = (time.perf_counter() - t0) / a.iters
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else 0
    print(json.dumps({"model": f"{a.model}_unet",
                      "impl": f"diffusers eager, torch {torch.__version__}",
                      "device": str(dev), "dtype": a.dtype, "size": size, "batch": 2,
                      "step_ms": round(step * 1e3, 3), "it_per_s": round(1 / step, 3),
                      "peak_bytes": peak}))


if __name__ == "__main__":
    main()
