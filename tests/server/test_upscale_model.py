"""Upscale models through the real server: an uploaded image → UpscaleModelLoader →
ImageUpscaleWithModel → SaveImage, as a ComfyUI client would queue it, on the tiny
Real-ESRGAN-style x4 model of tools/fixtures/rrdbnet.py. The saved PNG is compared with
spandrel's output for the same model and image (tests/data/models/rrdbnet/ref.safetensors,
"x4.call"), turned into 8-bit pixels as SaveImage does (clip(255·v) truncated).
"""
import os
import shutil

from PIL import Image

from comfy_client import (max_level_diff, open_rgb, png_bytes, read_safetensors, run_for_png,
                          save_image_levels, tensor_values, upload_png)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RRDB = os.path.join(REPO, "tests", "data", "models", "rrdbnet")
MODEL = "tiny_x4.safetensors"


def ref_tensor(name):
    """(shape, f32 values) of a reference tensor."""
    tensors, _ = read_safetensors(os.path.join(RRDB, "ref.safetensors"))
    return tensor_values(tensors[name])


def test_upscale_model_workflow_saves_spandrels_pixels(server):
    shutil.copy(os.path.join(RRDB, "x4.safetensors"),
                os.path.join(server.base_dir, "models", "upscale_models", MODEL))
    info = server.get("/object_info/UpscaleModelLoader").json()
    assert MODEL in info["UpscaleModelLoader"]["input"]["required"]["model_name"][0]

    # The fixture's input lies on the 1/255 grid, so the PNG carries it exactly.
    (_, h, w, _), values = ref_tensor("x4.input")
    pixels = Image.frombytes("RGB", (w, h), bytes(round(v * 255) for v in values))
    name = upload_png(server, "upscale_in.png", png_bytes(pixels), overwrite=False)

    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": MODEL}},
        "3": {"class_type": "ImageUpscaleWithModel",
              "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "up", "images": ["3", 0]}},
    }
    got, size = open_rgb(run_for_png(server, prompt, node="4"))
    (_, oh, ow, _), expected = ref_tensor("x4.call")
    assert size == (ow, oh) == (4 * w, 4 * h)
    # f32 differences of ~1e-6 may move a value across a truncation step: 1 level.
    assert max_level_diff(got, save_image_levels(expected)) <= 1
