"""Inpainting through the real server, as a ComfyUI client queues it: images (the mask in
a PNG's alpha, or a second PNG) uploaded to /upload/image → LoadImage → VAEEncodeForInpaint
or InpaintModelConditioning → KSampler → VAEDecode → SaveImage, on an SD 1.5 inpainting
checkpoint (9-channel UNet).

The checkpoint is comfy_client's tiny wiring checkpoint (random 768-wide CLIP, so the
server detects SD 1.x) with its UNet's conv_in replaced by the 9-channel one of
tools/fixtures/inpaint.py (tests/data/inpaint/unet9.safetensors). Its images are noise; the
numbers of these nodes are checked against diffusers + ComfyUI's code in
tests/workflow/test_inpaint_nodes.cpp. Here: the graphs run, SaveImage writes the image's
size, and one property that must hold whatever the weights: with an empty mask (alpha 255
everywhere) the noise mask keeps the whole latent (KSamplerX0Inpaint), so both nodes give
back exactly what VAEEncode → VAEDecode gives for the same image.
"""
import io
import os

import pytest
from PIL import Image

from comfy_client import (build_tiny_checkpoint, max_level_diff, model_folder, png_bytes,
                          read_safetensors, run_for_png, sampler_graph, upload_png,
                          upload_png_file, write_safetensors)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INPAINT = os.path.join(REPO, "tests", "data", "inpaint")
CKPT = "sd15_inpaint_tiny.safetensors"
CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.fixture(scope="module")
def inpaint_server(server, tmp_path_factory):
    built = str(tmp_path_factory.mktemp("inpaint-ckpt") / "plain.safetensors")
    build_tiny_checkpoint(built)
    tensors, meta = read_safetensors(built)
    unet9, _ = read_safetensors(os.path.join(INPAINT, "unet9.safetensors"))
    assert tensors[CONV_IN][1][1] == 4 and unet9[CONV_IN][1][1] == 9
    tensors[CONV_IN] = unet9[CONV_IN]
    write_safetensors(os.path.join(model_folder(server.base_dir, "checkpoints"), CKPT),
                      tensors, meta)
    return server


def empty_mask_png(server, width, height, name):
    """An RGBA PNG whose alpha is 255 everywhere: LoadImage's MASK is all zeros."""
    return upload_png(server, name, png_bytes(Image.new("RGBA", (width, height), (0, 0, 0, 255))))


def graph(latent_nodes, latent_src, pos_src=("6", 0), neg_src=("7", 0), steps=4):
    p = sampler_graph(CKPT, "a red apple", "blurry", "inpaint", steps=steps, cfg=6.0,
                      cond=pos_src, uncond=neg_src, latent=latent_src)
    p.update(latent_nodes)
    return p


def run_for_image(server, prompt):
    """Queues `prompt`, waits, returns the PIL image SaveImage node "9" wrote."""
    return Image.open(io.BytesIO(run_for_png(server, prompt))).convert("RGB")


def roundtrip(server, image_name):
    """VAEEncode → VAEDecode of the image, saved (no sampling)."""
    return run_for_image(server, {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "10": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["4", 2]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "rt", "images": ["8", 0]}},
    })


def image_level_diff(a, b):
    """max_level_diff of two PIL images of the same size."""
    assert a.size == b.size
    return max_level_diff(a.tobytes(), b.tobytes())


def test_vae_encode_for_inpaint_on_an_inpainting_checkpoint(inpaint_server):
    server = inpaint_server
    info = server.get("/object_info/VAEEncodeForInpaint").json()["VAEEncodeForInpaint"]
    assert info["input"]["required"]["grow_mask_by"] == [
        "INT", {"default": 6, "min": 0, "max": 64, "step": 1}]
    name = upload_png_file(server, os.path.join(INPAINT, "vae_inpaint.png"), "inpaint_in.png")
    nodes = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "10": {"class_type": "VAEEncodeForInpaint",
               "inputs": {"pixels": ["1", 0], "vae": ["4", 2], "mask": ["1", 1],
                          "grow_mask_by": 6}},
    }
    got = run_for_image(server, graph(nodes, ("10", 0)))
    assert got.size == (32, 32)

    # An empty mask keeps the whole (encoded) image.
    rgb = Image.open(os.path.join(INPAINT, "vae_inpaint.png")).convert("RGB")
    plain = upload_png(server, "plain_in.png", png_bytes(rgb))
    mask = empty_mask_png(server, 32, 32, "empty_mask.png")
    nodes = {
        "1": {"class_type": "LoadImage", "inputs": {"image": plain}},
        "2": {"class_type": "LoadImage", "inputs": {"image": mask}},
        "10": {"class_type": "VAEEncodeForInpaint",
               "inputs": {"pixels": ["1", 0], "vae": ["4", 2], "mask": ["2", 1],
                          "grow_mask_by": 6}},
    }
    kept = run_for_image(server, graph(nodes, ("10", 0)))
    # Euler's last step rounds to within an ulp of the input latent: at most one 8-bit level.
    assert image_level_diff(kept, roundtrip(server, plain)) <= 1


def test_inpaint_model_conditioning_on_an_inpainting_checkpoint(inpaint_server):
    server = inpaint_server
    info = server.get("/object_info/InpaintModelConditioning").json()["InpaintModelConditioning"]
    assert info["input_order"]["required"] == ["positive", "negative", "vae", "pixels", "mask",
                                               "noise_mask"]
    assert info["input"]["required"]["noise_mask"][1]["default"] is True
    assert info["output"] == ["CONDITIONING", "CONDITIONING", "LATENT"]
    assert info["output_name"] == ["positive", "negative", "latent"]
    image = upload_png_file(server, os.path.join(INPAINT, "model_cond.png"), "cond_in.png")
    mask = upload_png_file(server, os.path.join(INPAINT, "model_cond_mask.png"), "cond_mask.png")

    def nodes(mask_name, noise_mask):
        return {
            "1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "LoadImage", "inputs": {"image": mask_name}},
            "10": {"class_type": "InpaintModelConditioning",
                   "inputs": {"positive": ["6", 0], "negative": ["7", 0], "vae": ["4", 2],
                              "pixels": ["1", 0], "mask": ["2", 1], "noise_mask": noise_mask}},
        }

    for noise_mask in (True, False):
        got = run_for_image(server, graph(nodes(mask, noise_mask), ("10", 2), ("10", 0),
                                          ("10", 1)))
        assert got.size == (32, 48)
    empty = empty_mask_png(server, 8, 12, "empty_cond_mask.png")
    kept = run_for_image(server, graph(nodes(empty, True), ("10", 2), ("10", 0), ("10", 1)))
    assert image_level_diff(kept, roundtrip(server, image)) <= 1
