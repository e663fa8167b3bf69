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
import os
import random
import shutil
import struct

import pytest

from comfy_client import (controlnet_apply, empty_latent, model_folder, open_rgb, queue_and_wait,
                          read_safetensors, run_for_png, sampler_graph, tiny_vae,
                          upload_png_file, write_safetensors)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SD2 = os.path.join(REPO, "tests", "data", "pipeline", "families", "sd2.safetensors")
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
    tensors.update(tiny_vae())
    write_safetensors(path, tensors, meta)


@pytest.fixture(scope="module")
def diff_server(server):
    write_sd2_checkpoint(os.path.join(model_folder(server.base_dir, "checkpoints"), CKPT_NAME))
    shutil.copyfile(DIFF, os.path.join(model_folder(server.base_dir, "controlnet"), CN_NAME))
    server.hint_name = upload_png_file(server, HINT, "sd2_hint.png")
    return server


def graph(hint, strength, loader="DiffControlNetLoader", with_apply=True):
    """A 64² text-to-image graph with the ControlNet (loaded by `loader`) on the hint image,
    or without the apply."""
    cond = ("20", 0) if with_apply else ("6", 0)
    uncond = ("20", 1) if with_apply else ("7", 0)
    g = sampler_graph(CKPT_NAME, "a hill", "", "sd2cn", cond=cond, uncond=uncond)
    g["5"] = empty_latent(64, 64)
    if with_apply:
        inputs = {"control_net_name": CN_NAME}
        if loader == "DiffControlNetLoader":
            inputs["model"] = ["4", 0]
        g.update(controlnet_apply({"class_type": loader, "inputs": inputs}, hint, strength))
    return g


def test_diff_controlnet_workflow_saves_an_image(diff_server):
    hint = diff_server.hint_name
    controlled, size = open_rgb(run_for_png(diff_server, graph(hint, 0.8)))
    assert size == (16, 16)  # EmptyLatentImage 64² is an 8² latent; the tiny VAE doubles it
    off, _ = open_rgb(run_for_png(diff_server, graph(hint, 0.0)))
    plain, _ = open_rgb(run_for_png(diff_server, graph(hint, 0.0, with_apply=False)))
    assert off == plain  # strength 0 hands the conditioning on unchanged
    assert controlled != plain  # the ControlNet's residuals reached the UNet


def test_controlnet_loader_refuses_the_difference_file(diff_server):
    messages = queue_and_wait(diff_server,
                              graph(diff_server.hint_name, 0.8, loader="ControlNetLoader"))
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
