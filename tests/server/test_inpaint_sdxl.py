"""SDXL inpainting through the real server, as a ComfyUI client queues it: an RGBA PNG (the
mask in its alpha) uploaded to /upload/image → LoadImage → VAEEncodeForInpaint (grow 6) →
KSampler (euler / normal, 20 steps) → VAEDecode → SaveImage, on a 9-channel SDXL
inpainting checkpoint, the saved PNG against the golden image of tools/fixtures/inpaint_sdxl.py
(its vae_inpaint run: diffusers' 9-channel UNet2DConditionModel, transformers' CLIP text
models, k-diffusion's euler, ComfyUI's nodes transcribed in PyTorch).

The checkpoint is the tiny SDXL of tests/data/pipeline/families/sdxl.safetensors with its
conv_in replaced by the 9-channel one (tests/data/inpaint_sdxl/conv_in.safetensors) and the
tiny VAE of tests/data/models/sd15_tiny/ added, as tests/workflow/test_inpaint_sdxl_nodes.cpp
builds it. The fixture lacks its two 49408-row token tables (torch.randn of a seed); here
they hold the generator's rows for the tokens this graph's prompts read
(tests/data/inpaint_sdxl/server_tokens.safetensors: BOS, EOS, CLIP-G's pad 0 and the words)
and zeros elsewhere, which gives the same text embeddings without torch.

Tolerance: SaveImage truncates 255·x to 8 bits, so an image within ~1e-4 of the golden one
(test_inpaint_sdxl_nodes.cpp's tolerance for this run) lands on the golden level or one below
or above it where 255·x is within 1e-4·255 of an integer: at most one level.
"""
import io
import os

import pytest
from PIL import Image

from comfy_client import (model_folder, read_safetensors, run_for_png, sampler_graph,
                          save_image_levels, tensor_values, tiny_vae, upload_png_file,
                          write_safetensors)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "data")
FAMILY = os.path.join(DATA, "pipeline", "families", "sdxl.safetensors")
INPAINT_SDXL = os.path.join(DATA, "inpaint_sdxl")
INPUT_PNG = os.path.join(DATA, "inpaint", "vae_inpaint.png")
CKPT = "sdxl_inpaint_tiny.safetensors"
CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"
VOCAB = 49408
TABLES = {  # token table name, the tensor whose width it has
    "l": ("conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
          "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight"),
    "g": ("conditioner.embedders.1.model.token_embedding.weight",
          "conditioner.embedders.1.model.positional_embedding"),
}


def write_checkpoint(path):
    tensors, meta = read_safetensors(FAMILY)
    widened, _ = read_safetensors(os.path.join(INPAINT_SDXL, "conv_in.safetensors"))
    assert tensors[CONV_IN][1] == [8, 4, 3, 3] and widened[CONV_IN][1] == [8, 9, 3, 3]
    tensors[CONV_IN] = widened[CONV_IN]
    rows, _ = read_safetensors(os.path.join(INPAINT_SDXL, "server_tokens.safetensors"))
    _, ids = tensor_values(rows["ids"], ("I32",))
    for key, (name, width_of) in TABLES.items():
        width = tensors[width_of][1][1]
        assert rows[key][1] == [len(ids), width]
        table = bytearray(VOCAB * width * 4)
        raw = rows[key][2]
        for i, token in enumerate(ids):
            table[token * width * 4:(token + 1) * width * 4] = raw[i * width * 4:(i + 1) * width * 4]
        tensors[name] = ("F32", [VOCAB, width], bytes(table))
    tensors.update(tiny_vae())
    write_safetensors(path, tensors, meta)


@pytest.fixture(scope="module")
def sdxl_inpaint_server(server):
    write_checkpoint(os.path.join(model_folder(server.base_dir, "checkpoints"), CKPT))
    return server


def test_vae_encode_for_inpaint_on_sdxl_matches_the_golden_image(sdxl_inpaint_server):
    server = sdxl_inpaint_server
    name = upload_png_file(server, INPUT_PNG, "sdxl_inpaint_in.png")
    # The generator's vae_inpaint run (RUNS in tools/fixtures/inpaint_sdxl.py).
    prompt = sampler_graph(CKPT, "a red apple on a table", "blurry", "sdxl_inpaint", seed=8,
                           steps=20, cfg=6.0, latent=("10", 0))
    prompt.update({
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "10": {"class_type": "VAEEncodeForInpaint",
               "inputs": {"pixels": ["1", 0], "vae": ["4", 2], "mask": ["1", 1],
                          "grow_mask_by": 6}},
    })
    got = Image.open(io.BytesIO(run_for_png(server, prompt)))
    assert got.mode == "RGB" and got.size == (32, 32)
    golden, _ = read_safetensors(os.path.join(INPAINT_SDXL, "golden.safetensors"))
    shape, values = tensor_values(golden["vae_inpaint.image"])
    assert shape == [1, 32, 32, 3]
    want = save_image_levels(values)
    levels = [abs(a - b) for a, b in zip(got.tobytes(), want)]
    print(f"SDXL vae_inpaint (server): max level diff {max(levels)}, "
          f"{sum(1 for d in levels if d)} of {len(levels)} values differ")
    assert max(levels) <= 1
    # Not a constant image: the golden one has detail the comparison can miss.
    assert max(want) - min(want) > 32
