#!/usr/bin/env python3
"""diffusers on PyTorch (CPU), measured the way `darkroom bench sd15|sdxl` measures darkroom.

The same shapes — SD 1.5: CLIP-L text model (transformers CLIPTextModel), UNet
(UNet2DConditionModel with SD 1.5's config), VAE decoder (AutoencoderKL); SDXL: CLIP-L and
OpenCLIP bigG (CLIPTextModelWithProjection), the SDXL UNet (text_time added conditioning)
and its VAE — built with PyTorch's own seeded random init. The weights are not darkroom's (each side draws its own
random values from a seed): the cost of these networks does not depend on their weight
values, so equal shapes, inputs and thread counts are what makes the timings comparable.

  text encode  the text encoders' passes of two [1, 77] id rows (prompt, negative), as the
               diffusers pipelines encode them (SDXL: penultimate hidden states of both,
               joined, and bigG's text_embeds); the tokenizer is left out
  step         UNet on a batch of 2 (cond + uncond) at size/8, then the CFG combine
  vae decode   vae.decode of one [1, 4, size/8, size/8] latent

f32 runs the f32 model; bf16 runs the same f32 model under torch.autocast("cpu",
torch.bfloat16) (--bf16-mode cast instead converts the models to bf16). Each dtype runs in
a child process of its own, so that its peak RSS (VmHWM, reset after the models are built)
is its own. torch.set_num_threads(--threads, default: every CPU).

Prints one JSON line per dtype with darkroom's keys, or a table.
Usage: diffusers_pipeline.py [--model sd15|sdxl] [--dtype f32|bf16|both] [--size N]
                             [--steps 3] [--threads N] [--bf16-mode autocast|cast] [--json]
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

UNET_SD15 = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280),
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 cross_attention_dim=768, attention_head_dim=8)
VAE_SD15 = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512)
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
              projection_dim=768)
# SDXL 1.0 base (diffusers' unet/config.json and text_encoder_2/config.json).
UNET_SDXL = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
                 attention_head_dim=(5, 10, 20), use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816)
CLIP_G = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
              num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu",
              projection_dim=1280)


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return -1


def reset_peak_rss():
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def prompt_ids(torch, words, first_word):
    ids = [49406] + [first_word + 37 * i if i <= words else 49407 for i in range(1, 77)]
    return torch.tensor([ids], dtype=torch.long)


def run_one(a):
    import torch
    import diffusers
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    xl = a.model == "sdxl"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    t_load = time.perf_counter()
    clip = CLIPTextModel(CLIPTextConfig(**CLIP_L)).eval()
    clip_g = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G)).eval() if xl else None
    unet = UNet2DConditionModel(**(UNET_SDXL if xl else UNET_SD15)).eval()
    vae = AutoencoderKL(**VAE_SD15).eval()  # SDXL's VAE has the same shapes
    vae.encoder = None  # only decoding is timed; darkroom loads no encoder either
    cast = a.dtype == "bf16" and a.bf16_mode == "cast"
    if cast:
        clip, unet, vae = (m.to(torch.bfloat16) for m in (clip, unet, vae))
        clip_g = clip_g.to(torch.bfloat16) if xl else None
    scale = 0.13025 if xl else 0.18215
    load_s = time.perf_counter() - t_load
    load_peak = peak_rss_mib()
    reset_peak_rss()

    in_dtype = torch.bfloat16 if cast else torch.float32
    amp = (torch.autocast("cpu", dtype=torch.bfloat16) if a.dtype == "bf16" and not cast
           else contextlib.nullcontext())
    lat = a.size // 8
    with torch.inference_mode(), amp:
        pos, neg = prompt_ids(torch, 12, 320), prompt_ids(torch, 3, 2000)

        def encode(ids):
            if not xl:
                return clip(ids).last_hidden_state, None
            # StableDiffusionXLPipeline.encode_prompt: hidden_states[-2] of both, joined
            # on channels; bigG's projected pooled output.
            h_l = clip(ids, output_hidden_states=True).hidden_states[-2]
            g = clip_g(ids, output_hidden_states=True)
            return torch.cat([h_l, g.hidden_states[-2]], dim=-1), g.text_embeds

        def encode_both():
            return encode(pos), encode(neg)

        encode_both()
        t0 = time.perf_counter()
        (cond, pooled_c), (uncond, pooled_u) = encode_both()
        text_s = time.perf_counter() - t0

        g = torch.Generator().manual_seed(0)
        x1 = torch.rand(1, 4, lat, lat, generator=g) * 2 - 1
        x = torch.cat([x1, x1]).to(in_dtype)
        ctx = torch.cat([cond, uncond]).to(in_dtype)
        t = torch.tensor([500, 500])
        added = None
        if xl:  # text_embeds [2, 1280] and time_ids [2, 6] (original, crop, target)
            time_ids = torch.tensor([[a.size, a.size, 0, 0, a.size, a.size]] * 2, dtype=in_dtype)
            added = {"text_embeds": torch.cat([pooled_c, pooled_u]).to(in_dtype),
                     "time_ids": time_ids}

        def step():
            eps = unet(x, t, encoder_hidden_states=ctx, added_cond_kwargs=added).sample.float()
            e_c, e_u = eps.chunk(2)
            return e_u + 7.0 * (e_c - e_u)

        step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            guided = step()
        step_s = (time.perf_counter() - t0) / a.steps

        z = guided.to(in_dtype)
        vae.decode(z / scale)
        t0 = time.perf_counter()
        image = vae.decode(z / scale).sample
        vae_s = time.perf_counter() - t0
    finite = bool(torch.isfinite(guided).all() and torch.isfinite(image.float()).all())
    mode = "" if a.dtype == "f32" else f" ({a.bf16_mode})"
    return {"impl": f"diffusers {diffusers.__version__}, transformers {transformers.__version__}, "
                    f"torch {torch.__version__}",
            "model": a.model, "device": "cpu", "dtype": a.dtype, "bf16_mode": mode.strip(" ()"),
            "size": a.size, "batch": 2, "threads": torch.get_num_threads(),
            "load_s": round(load_s, 2), "text_encode_s": round(text_s, 4),
            "step_s": round(step_s, 4), "steps_timed": a.steps, "vae_decode_s": round(vae_s, 4),
            "total_20_steps_s": round(text_s + 20 * step_s + vae_s, 2),
            "peak_rss_mib": round(peak_rss_mib()), "load_peak_rss_mib": round(load_peak),
            "finite": finite}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="sd15", choices=["sd15", "sdxl"])
    ap.add_argument("--dtype", default="both", choices=["f32", "bf16", "both"])
    ap.add_argument("--bf16-mode", default="autocast", choices=["autocast", "cast"])
    ap.add_argument("--size", type=int, default=0, help="default: 512 (sd15), 1024 (sdxl)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.size = a.size or (1024 if a.model == "sdxl" else 512)
    if a.child:
        print(json.dumps(run_one(a)), flush=True)
        return 0
    results = []
    for dt in (["f32", "bf16"] if a.dtype == "both" else [a.dtype]):
        cmd = [sys.executable, __file__, "--child", "--model", a.model, "--dtype", dt,
               "--size", str(a.size),
               "--steps", str(a.steps), "--threads", str(a.threads), "--bf16-mode", a.bf16_mode]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        r = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
        results.append(r)
        if a.json:
            print(json.dumps(r), flush=True)
    if not a.json:
        print(f"{results[0]['impl']}, {results[0]['threads']} threads, {a.model} "
              f"{a.size}x{a.size}, CFG (UNet batch 2)\n")
        print("| dtype | text encode s | s / step | VAE decode s | 20 steps s | peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for r in results:
            name = r["dtype"] + (f" {r['bf16_mode']}" if r["bf16_mode"] else "")
            print(f"| {name} | {r['text_encode_s']:.3f} | {r['step_s']:.3f} | "
                  f"{r['vae_decode_s']:.3f} | {r['total_20_steps_s']:.1f} | "
                  f"{r['peak_rss_mib']:.0f} |")
    return 0 if all(r["finite"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
