"""ControlNet through the real server, as a ComfyUI client queues it: an uploaded image →
LoadImage → Canny → ControlNetApplyAdvanced (ControlNetLoader) → KSampler → VAEDecode →
SaveImage, and /object_info's declarations of Canny, ControlNetApply,
ControlNetApplyAdvanced and ControlNetLoader as ComfyUI's nodes.py /
comfy_extras/nodes_canny.py declare them.

Models: comfy_client's tiny wiring checkpoint (random 768-wide CLIP, so the server detects
SD 1.x) and the tiny ControlNet of tools/fixtures/controlnet.py
(tests/data/controlnet/sd15.safetensors, diffusers names) with its cross-attention
key/value projections widened to 768 inputs the same way as the checkpoint's UNet. Images
are noise; the numbers are checked against diffusers in
tests/workflow/test_controlnet_nodes.cpp and tests/workflow/test_canny_node.cpp. Here:
the graph runs, SaveImage writes an image of the latent's size, and the ControlNet reaches
the sampler (strength 1 gives another image than strength 0, which must equal the graph
without the apply node).
"""
import io
import os
import random
import struct

import pytest
from PIL import Image

from comfy_client import (CKPT_NAME, WsListener, install_tiny_checkpoint, of_prompt,
                          read_safetensors, write_safetensors)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONTROLNET = os.path.join(REPO, "tests", "data", "controlnet", "sd15.safetensors")
HINT = os.path.join(REPO, "tests", "data", "controlnet_pipeline", "hint_a.png")
CN_NAME = "tiny_canny_cn.safetensors"


@pytest.fixture(scope="module")
def cn_server(server, tmp_path_factory):
    install_tiny_checkpoint(server.base_dir, tmp_path_factory.mktemp("cn-ckpt"))
    tensors, meta = read_safetensors(CONTROLNET)
    rng = random.Random(7)
    for k, (dtype, shape, _) in list(tensors.items()):
        if k.endswith((".attn2.to_k.weight", ".attn2.to_v.weight")):
            n = shape[0] * 768
            tensors[k] = ("F32", [shape[0], 768],
                          struct.pack(f"<{n}f", *(rng.gauss(0.0, 0.05) for _ in range(n))))
    dest = os.path.join(server.base_dir, "models", "controlnet")
    os.makedirs(dest, exist_ok=True)
    write_safetensors(os.path.join(dest, CN_NAME), tensors, meta)
    with open(HINT, "rb") as f:
        r = server.post("/upload/image", files={"image": ("cn_hint.png", f.read(), "image/png")},
                        data={"overwrite": "true"})
    assert r.status_code == 200, r.text
    server.hint_name = r.json()["name"]
    return server


def graph(hint, strength, with_apply=True):
    cond = ["20", 0] if with_apply else ["6", 0]
    uncond = ["20", 1] if with_apply else ["7", 0]
    g = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT_NAME}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": 5, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
                         "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                         "positive": cond, "negative": uncond, "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "cn", "images": ["8", 0]}},
    }
    if with_apply:
        g.update({
            "10": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CN_NAME}},
            "11": {"class_type": "LoadImage", "inputs": {"image": hint}},
            "12": {"class_type": "Canny",
                   "inputs": {"image": ["11", 0], "low_threshold": 0.2, "high_threshold": 0.5}},
            "20": {"class_type": "ControlNetApplyAdvanced",
                   "inputs": {"positive": ["6", 0], "negative": ["7", 0],
                              "control_net": ["10", 0], "image": ["12", 0],
                              "strength": strength, "start_percent": 0.0,
                              "end_percent": 1.0}},
        })
    return g


def run_and_fetch(server, prompt):
    """Queues `prompt`; returns the saved image's RGB bytes and size."""
    ws = WsListener(server.host_port)
    try:
        r = server.post("/prompt", json={"prompt": prompt, "client_id": ws.client_id})
        assert r.status_code == 200, r.text
        pid = r.json()["prompt_id"]
        messages = of_prompt(ws.wait_done(pid), pid)
    finally:
        ws.close()
    assert not [m for m in messages if m["type"] == "execution_error"], messages
    executed = [m["data"] for m in messages if m["type"] == "executed"]
    assert [e["node"] for e in executed] == ["9"]
    image = executed[0]["output"]["images"][0]
    png = server.get("/view", params={"filename": image["filename"],
                                      "subfolder": image["subfolder"], "type": "output"})
    assert png.status_code == 200
    got = Image.open(io.BytesIO(png.content))
    return got.convert("RGB").tobytes(), got.size


def test_canny_controlnet_workflow_saves_an_image(cn_server):
    controlled, size = run_and_fetch(cn_server, graph(cn_server.hint_name, 1.0))
    # EmptyLatentImage 64² is an 8² latent; the tiny VAE doubles it.
    assert size == (16, 16)
    off, _ = run_and_fetch(cn_server, graph(cn_server.hint_name, 0.0))
    plain, _ = run_and_fetch(cn_server, graph(cn_server.hint_name, 0.0, with_apply=False))
    assert off == plain  # strength 0 hands the conditioning on unchanged
    assert controlled != plain  # the ControlNet's residuals reached the UNet


def test_object_info_declares_the_controlnet_nodes(cn_server):
    info = cn_server.get("/object_info").json()
    for name in ("Canny", "ControlNetApply", "ControlNetApplyAdvanced", "ControlNetLoader"):
        assert name in info, name

    canny = info["Canny"]
    assert canny["input"]["required"] == {
        "image": ["IMAGE"],
        "low_threshold": ["FLOAT", {"default": 0.4, "min": 0.01, "max": 0.99, "step": 0.01}],
        "high_threshold": ["FLOAT", {"default": 0.8, "min": 0.01, "max": 0.99, "step": 0.01}],
    }
    assert canny["output"] == ["IMAGE"]
    assert canny["category"] == "image/preprocessors"
    assert canny["python_module"] == "comfy_extras.nodes_canny"

    old = info["ControlNetApply"]
    assert old["input"]["required"] == {
        "conditioning": ["CONDITIONING"], "control_net": ["CONTROL_NET"], "image": ["IMAGE"],
        "strength": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}],
    }
    assert old["output"] == ["CONDITIONING"]
    assert old["category"] == "conditioning/controlnet"
    assert old["deprecated"] is True  # nodes.py: DEPRECATED = True

    adv = info["ControlNetApplyAdvanced"]
    assert adv["input"]["required"] == {
        "positive": ["CONDITIONING"], "negative": ["CONDITIONING"],
        "control_net": ["CONTROL_NET"], "image": ["IMAGE"],
        "strength": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}],
        "start_percent": ["FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}],
        "end_percent": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}],
    }
    assert adv["input"]["optional"] == {"vae": ["VAE"]}
    assert adv["output"] == ["CONDITIONING", "CONDITIONING"]
    assert adv["output_name"] == ["positive", "negative"]
    assert adv["display_name"] == "Apply ControlNet"
    assert "deprecated" not in adv and "experimental" not in adv

    loader = info["ControlNetLoader"]
    files = loader["input"]["required"]["control_net_name"][0]
    assert CN_NAME in files
    assert loader["output"] == ["CONTROL_NET"]
    assert loader["category"] == "loaders"
