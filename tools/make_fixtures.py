#!/usr/bin/env python3
"""Regenerates every committed test fixture from the reference implementations.

The C++ tests read only the committed files under tests/data/, so CI needs no PyTorch;
this script is how they were made. Each generator below is its own file and documents
its oracle; this driver runs them in order (or the ones named on the command line).

Needs, from PyPI: torch, diffusers, transformers (<5 for the tokenizer fixture, see
make_tokenizer_fixtures.py), safetensors, numpy, scipy, torchsde, torchdiffeq, tqdm,
regex, ftfy, spandrel, peft, and `k-diffusion==0.1.1.post1` and `open_clip_torch` installed with
--no-deps.

    python3 tools/make_fixtures.py                 # all
    python3 tools/make_fixtures.py unet clip_vae   # some
"""
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
GENERATORS = {
    "safetensors": TOOLS / "make_safetensors_reference.py",  # official safetensors writer
    "sampling": TOOLS / "make_sampling_fixtures.py",  # torch RNG, k-diffusion, torchsde
    "tokenizer": TOOLS / "make_tokenizer_fixtures.py",  # transformers' CLIPTokenizer
    "unet": TOOLS / "fixtures" / "unet.py",  # diffusers UNet2DConditionModel
    "sdxl_unet": TOOLS / "fixtures" / "sdxl_unet.py",  # diffusers SDXL-shaped UNet (text_time)
    "clip_vae": TOOLS / "fixtures" / "clip_vae.py",  # transformers CLIP, diffusers VAE
    # transformers CLIPTextModelWithProjection, cross-checked by open_clip's TextTransformer
    "open_clip": TOOLS / "fixtures" / "open_clip_text.py",
    "ckpt": TOOLS / "make_ckpt_fixtures.py",  # torch.save checkpoints, hostile pickles
    # whole 20-step runs: transformers CLIP + diffusers UNet/VAE + k-diffusion samplers
    "pipeline_golden": TOOLS / "fixtures" / "pipeline_golden.py",
    "rrdbnet": TOOLS / "fixtures" / "rrdbnet.py",  # spandrel's ESRGAN RRDBNet, tiled_scale
    # SDXL, SDXL refiner and SD 2.x v-prediction runs: transformers CLIP / OpenCLIP-shaped
    # text models, diffusers UNets (text_time), k-diffusion samplers
    "sdxl_pipeline": TOOLS / "fixtures" / "sdxl_pipeline.py",
    # the same tiny SDXL as a diffusers folder (model_index.json, unet/, text_encoder{,_2}/)
    "sdxl_diffusers_folders": TOOLS / "fixtures" / "sdxl_diffusers_folders.py",
    # LoRA files: diffusers + PEFT (fused weights, kohya names checked by diffusers' reader),
    # LoHa / LoKr / LoCon-Tucker from ComfyUI's formulas transcribed in torch
    "lora": TOOLS / "fixtures" / "lora.py",
}


def main(names):
    for name in names or GENERATORS:
        if name not in GENERATORS:
            sys.exit(f"unknown fixture set '{name}' (known: {', '.join(GENERATORS)})")
        print(f"== {name}: {GENERATORS[name].relative_to(TOOLS.parent)}", flush=True)
        subprocess.run([sys.executable, str(GENERATORS[name])], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
