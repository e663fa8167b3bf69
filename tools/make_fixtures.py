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
    # torch.save copies of sdxl_pipeline's tiny SDXL and SD 2.x checkpoints (after it)
    "family_ckpt": TOOLS / "fixtures" / "family_ckpt.py",
    # the same tiny SDXL as a diffusers folder (model_index.json, unet/, text_encoder{,_2}/)
    "sdxl_diffusers_folders": TOOLS / "fixtures" / "sdxl_diffusers_folders.py",
    # textual-inversion embeddings on the tiny SDXL: transformers CLIP-L / bigG-shaped models
    # with the file's clip_l / clip_g vectors as extra token-table rows
    "sdxl_embeddings": TOOLS / "fixtures" / "sdxl_embeddings.py",
    # the tiny SD 2.x as diffusers' conversion writes it (text_encoder without the last layer)
    "sd2_diffusers_folder": TOOLS / "fixtures" / "sd2_diffusers_folder.py",
    # LoRA files: diffusers + PEFT (fused weights, kohya names checked by diffusers' reader),
    # LoHa / LoKr / LoCon-Tucker from ComfyUI's formulas transcribed in torch
    "lora": TOOLS / "fixtures" / "lora.py",
    # LoraLoader / LoraLoaderModelOnly goldens: LoRA stacks fused by diffusers + PEFT into
    # pipeline_golden's tiny SD 1.5, 4 k-diffusion euler steps
    "lora_pipeline": TOOLS / "fixtures" / "lora_pipeline.py",
    # LoRAs on the OpenCLIP text encoders (bigG, ViT-H) of sdxl_pipeline's tiny SDXL / SD 2.x,
    # merged by PEFT into the transformers models; kohya names checked by diffusers' reader
    "lora_folder_te": TOOLS / "fixtures" / "lora_folder_te.py",
    # inpainting: a 9-channel tiny SD 1.5 UNet (diffusers), ComfyUI's VAEEncodeForInpaint,
    # InpaintModelConditioning, concat_cond and KSamplerX0Inpaint transcribed, k-diffusion
    "inpaint": TOOLS / "fixtures" / "inpaint.py",
    # SDXL inpainting: the tiny SDXL with a 9-channel conv_in, inpaint.py's nodes with SDXL's
    # text_embeds / time_ids and latent scale, k-diffusion euler (reads sdxl_pipeline's
    # model and inpaint's PNG inputs)
    "inpaint_sdxl": TOOLS / "fixtures" / "inpaint_sdxl.py",
    # ControlNets: diffusers ControlNetModel (SD 1.5 / SDXL layouts), ldm files checked by
    # diffusers' from_single_file, UNet2DConditionModel with the residuals
    "controlnet": TOOLS / "fixtures" / "controlnet.py",
    # ControlNet sampling goldens: k-diffusion euler around diffusers' ControlNetModel +
    # UNet2DConditionModel with ComfyUI's strength / range / chain rules (after "controlnet")
    "controlnet_pipeline": TOOLS / "fixtures" / "controlnet_pipeline.py",
    # SD 2.x and difference ControlNets: diffusers ControlNetModel shaped for sdxl_pipeline's
    # tiny SD 2.x UNet (after "sdxl_pipeline"), its ldm file checked by from_single_file
    "controlnet_sd2": TOOLS / "fixtures" / "controlnet_sd2.py",
    # text-encoder LoRAs on the tiny SDXL refiner (lora_te_ / text_encoder. names: its bigG is
    # its only tower), merged by PEFT; a small refiner diffusers folder (after "lora_folder_te")
    "lora_refiner_te": TOOLS / "fixtures" / "lora_refiner_te.py",
    # a UNet LoRA on the tiny SD 2.x and the difference ControlNet summed with the LoRA'd UNet
    # (diffusers ControlNetModel residuals; after "controlnet_sd2")
    "lora_diff_controlnet": TOOLS / "fixtures" / "lora_diff_controlnet.py",
    # an SDXL UNet LoRA (kohya sgm names checked by diffusers' SDXL reader, PEFT names) fused
    # by diffusers into sdxl_pipeline's tiny SDXL: weights and UNet output (after it)
    "lora_sdxl": TOOLS / "fixtures" / "lora_sdxl.py",
    # a LoRA on the whole tiny SDXL refiner (kohya lora_unet_ sgm + lora_te_ names) read and
    # fused by diffusers' refiner pipeline, then a sampled CLIPTextEncodeSDXLRefiner → KSampler
    # run (sdxl_pipeline's golden run; after "sdxl_pipeline")
    "lora_refiner_workflow": TOOLS / "fixtures" / "lora_refiner_workflow.py",
    # the Canny node: opencv-python's Canny (kornia's and skimage's as sanity bounds)
    "canny": TOOLS / "fixtures" / "canny.py",
}


def main(names):
    for name in names or GENERATORS:
        if name not in GENERATORS:
            sys.exit(f"unknown fixture set '{name}' (known: {', '.join(GENERATORS)})")
        print(f"== {name}: {GENERATORS[name].relative_to(TOOLS.parent)}", flush=True)
        subprocess.run([sys.executable, str(GENERATORS[name])], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
