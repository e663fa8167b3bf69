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
import os
import random
import struct

import pytest

from comfy_client import (CKPT_NAME, controlnet_apply, empty_latent, model_folder, open_rgb,
                          read_safetensors, run_for_png, sampler_graph, upload_png_file,
                          write_safetensors)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONTROLNET = os.path.join(REPO, "tests", "data", "controlnet", "sd15.safetensors")
HINT = os.path.join(REPO, "tests", "data", "controlnet_pipeline", "hint_a.png")
CN_NAME = "tiny_canny_cn.safetensors"


@pytest.fixture(scope="module")
def cn_server(server, install_tiny):
    install_tiny(server.base_dir)
    tensors, meta = read_safetensors(CONTROLNET)
    rng = random.Random(7)
    for k, (dtype, shape, _) in list(tensors.items()):
        if k.endswith((".attn2.to_k.weight", ".attn2.to_v.weight")):
            n = shape[0] * 768
            tensors[k] = ("F32", [shape[0], 768],
                          struct.pack(f"<{n}f", *(rng.gauss(0.0, 0.05) for _ in range(n))))
    write_safetensors(os.path.join(model_folder(server.base_dir, "controlnet"), CN_NAME),
                      tensors, meta)
    server.hint_name = upload_png_file(server, HINT, "cn_hint.png")
    return server


def graph(hint, strength, with_apply=True):
    """A 64² text-to-image graph with the ControlNet on Canny(hint), or without the apply."""
    cond = ("20", 0) if with_apply else ("6", 0)
    uncond = ("20", 1) if with_apply else ("7", 0)
    g = sampler_graph(CKPT_NAME, "a cat", "blurry", "cn", cond=cond, uncond=uncond)
    g["5"] = empty_latent(64, 64)
    if with_apply:
        loader = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CN_NAME}}
        g.update(controlnet_apply(loader, hint, strength, image=("12", 0)))
        g["12"] = {"class_type": "Canny",
                   "inputs": {"image": ["11", 0], "low_threshold": 0.2, "high_threshold": 0.5}}
    return g


def test_canny_controlnet_workflow_saves_an_image(cn_server):
    hint = cn_server.hint_name
    controlled, size = open_rgb(run_for_png(cn_server, graph(hint, 1.0)))
    # EmptyLatentImage 64² is an 8² latent; the tiny VAE doubles it.
    assert size == (16, 16)
    off, _ = open_rgb(run_for_png(cn_server, graph(hint, 0.0)))
    plain, _ = open_rgb(run_for_png(cn_server, graph(hint, 0.0, with_apply=False)))
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
