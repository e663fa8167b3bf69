"""DiffControlNetLoader and an SD 2.x ControlNet through the real server, as a ComfyUI
client queues them: an uploaded image → LoadImage → ControlNetApplyAdvanced
(DiffControlNetLoader with the MODEL) → KSampler → VAEDecode → SaveImage, ControlNetLoader
refusing the difference file, and /object_info's declaration of DiffControlNetLoader as
ComfyUI's nodes.py declares it (display name "Load ControlNet Model (diff)").

Models: the tiny SD 2.x checkpoint of tools/fixtures/sdxl_pipeline.py
(tests/data/pipeline/families/sd2.safetensors) completed here with a random token table
and the tiny VAE of tests/data/models/sd15_tiny/, and the difference ControlNet of
tools/fixtures/controlnet_sd2.py (tests/data/controlnet_sd2/sd2_diff.safetensors, made
for that UNet). The numbers are checked against diffusers in
tests/models/test_controlnet_sd2.cpp and tests/workflow/test_diff_controlnet_node.cpp.
Here: the graph runs, the saved image has the latent's size, and the ControlNet reaches
the sampler (strength 0.8 gives another image than strength 0, which equals the graph
without the apply node).
"""
import io
import os
import random
import shutil
import struct

import pytest
from PIL import Image

from comfy_client import WsListener, of_prompt, read_safetensors, write_safetensors

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SD2 = os.path.join(REPO, "tests", "data", "pipeline", "families", "sd2.safetensors")
VAE = os.path.join(REPO, "tests", "data", "models", "sd15_tiny", "clip_vae.safetensors")
DIFF = os.path.join(REPO, "tests", "data", "controlnet_sd2", "sd2_diff.safetensors")
HINT = os.path.join(REPO, "tests", "data", "controlnet_pipeline", "hint_a.png")
CKPT_NAME = "tiny_sd2.safetensors"
CN_NAME = "tiny_sd2_diff.safetensors"


def write_sd2_checkpoint(path):
    tensors, meta = read_safetensors(SD2)
    width = tensors["cond_stage_model.model.positional_embedding"][1][1]
    rng = random.Random(11)
    block = [rng.gauss(0.0, 1.0) for _ in range(1 << 14)]
    n = 49408 * width  # a 16384-value block repeats: fine for a wiring test
    table = struct.pack(f"<{1 << 14}f", *block) * (n >> 14) + struct.pack(
        f"<{n % (1 << 14)}f", *block[:n % (1 << 14)])
    tensors["cond_stage_model.model.token_embedding.weight"] = ("F32", [49408, width], table)
    vae, _ = read_safetensors(VAE)
    tensors.update({k: v for k, v in vae.items() if k.startswith("first_stage_model.")})
    write_safetensors(path, tensors, meta)


@pytest.fixture(scope="module")
def diff_server(server):
    ckpts = os.path.join(server.base_dir, "models", "checkpoints")
    os.makedirs(ckpts, exist_ok=True)
    write_sd2_checkpoint(os.path.join(ckpts, CKPT_NAME))
    dest = os.path.join(server.base_dir, "models", "controlnet")
    os.makedirs(dest, exist_ok=True)
    shutil.copyfile(DIFF, os.path.join(dest, CN_NAME))
    with open(HINT, "rb") as f:
        r = server.post("/upload/image", files={"image": ("sd2_hint.png", f.read(), "image/png")},
                        data={"overwrite": "true"})
    assert r.status_code == 200, r.text
    server.hint_name = r.json()["name"]
    return server


def graph(hint, strength, loader="DiffControlNetLoader", with_apply=True):
    cond = ["20", 0] if with_apply else ["6", 0]
    uncond = ["20", 1] if with_apply else ["7", 0]
    g = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT_NAME}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a hill", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": 5, "steps": 2, "cfg": 5.0, "sampler_name": "euler",
                         "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                         "positive": cond, "negative": uncond, "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sd2cn",
                                                   "images": ["8", 0]}},
    }
    if with_apply:
        inputs = {"control_net_name": CN_NAME}
        if loader == "DiffControlNetLoader":
            inputs["model"] = ["4", 0]
        g.update({
            "10": {"class_type": loader, "inputs": inputs},
            "11": {"class_type": "LoadImage", "inputs": {"image": hint}},
            "20": {"class_type": "ControlNetApplyAdvanced",
                   "inputs": {"positive": ["6", 0], "negative": ["7", 0],
                              "control_net": ["10", 0], "image": ["11", 0],
                              "strength": strength, "start_percent": 0.0,
                              "end_percent": 1.0}},
        })
    return g


def run(server, prompt):
    """Queues `prompt`; returns its websocket messages."""
    ws = WsListener(server.host_port)
    try:
        r = server.post("/prompt", json={"prompt": prompt, "client_id": ws.client_id})
        assert r.status_code == 200, r.text
        pid = r.json()["prompt_id"]
        return of_prompt(ws.wait_done(pid), pid)
    finally:
        ws.close()


def saved_image(server, messages):
    assert not [m for m in messages if m["type"] == "execution_error"], messages
    executed = [m["data"] for m in messages if m["type"] == "executed"]
    assert [e["node"] for e in executed] == ["9"]
    image = executed[0]["output"]["images"][0]
    png = server.get("/view", params={"filename": image["filename"],
                                      "subfolder": image["subfolder"], "type": "output"})
    assert png.status_code == 200
    got = Image.open(io.BytesIO(png.content))
    return got.convert("RGB").tobytes(), got.size


def test_diff_controlnet_workflow_saves_an_image(diff_server):
    controlled, size = saved_image(diff_server, run(diff_server, graph(diff_server.hint_name, 0.8)))
    assert size == (16, 16)  # EmptyLatentImage 64² is an 8² latent; the tiny VAE doubles it
    off, _ = saved_image(diff_server, run(diff_server, graph(diff_server.hint_name, 0.0)))
    plain, _ = saved_image(diff_server, run(diff_server, graph(diff_server.hint_name, 0.0,
                                                               with_apply=False)))
    assert off == plain  # strength 0 hands the conditioning on unchanged
    assert controlled != plain  # the ControlNet's residuals reached the UNet


def test_controlnet_loader_refuses_the_difference_file(diff_server):
    messages = run(diff_server, graph(diff_server.hint_name, 0.8, loader="ControlNetLoader"))
    errors = [m["data"] for m in messages if m["type"] == "execution_error"]
    assert len(errors) == 1, messages
    assert errors[0]["node_id"] == "10"
    assert errors[0]["node_type"] == "ControlNetLoader"
    assert "DiffControlNetLoader" in errors[0]["exception_message"]


def test_object_info_declares_diff_controlnet_loader(diff_server):
    info = diff_server.get("/object_info/DiffControlNetLoader").json()
    node = info["DiffControlNetLoader"]
    required = node["input"]["required"]
    assert set(required) == {"model", "control_net_name"}  # the order: input_order
    assert required["model"] == ["MODEL"]
    assert CN_NAME in required["control_net_name"][0]
    assert node["input_order"]["required"] == ["model", "control_net_name"]
    assert node["output"] == ["CONTROL_NET"]
    assert node["output_name"] == ["CONTROL_NET"]
    assert node["output_is_list"] == [False]
    assert node["name"] == "DiffControlNetLoader"
    assert node["display_name"] == "Load ControlNet Model (diff)"
    assert node["category"] == "loaders"
    assert node["output_node"] is False
    assert node["python_module"] == "nodes"
