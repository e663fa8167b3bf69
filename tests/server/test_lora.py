"""LoRA nodes through the real server: CheckpointLoaderSimple → LoraLoader → LoraLoader →
CLIPTextEncode ×2 → KSampler → VAEDecode → SaveImage, as a ComfyUI client queues it, on
pipeline_golden.py's tiny SD 1.5 with the LoRA files of tools/fixtures/lora_pipeline.py.
The saved PNGs are compared with that script's goldens (diffusers + PEFT fused LoRAs,
k-diffusion euler; tests/data/lora/pipe_golden.safetensors) turned into 8-bit pixels as
SaveImage does (clip(255·(x + 1)/2) truncated).

The checkpoint is assembled here without torch: the sd15_tiny UNet and VAE, clip32's
tensors, and a token table that holds only the rows the two prompts use (the golden's
"tokens.rows"; zeros elsewhere) -- CLIP reads no other row for these prompts, so it
encodes them exactly as the full torch.randn table does.
"""
import os
import shutil
import struct

from comfy_client import (empty_latent, max_level_diff, open_rgb, read_safetensors, run_for_png,
                          sampler_graph, save_image_levels, tensor_values, write_safetensors)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "data")
LORA = os.path.join(DATA, "lora")
CKPT = "golden_lora_base.safetensors"
VOCAB, WIDTH = 49408, 32
TABLE = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


def golden(name):
    """(shape, f32 values) of a tensor of pipe_golden.safetensors."""
    tensors, _ = read_safetensors(os.path.join(LORA, "pipe_golden.safetensors"))
    return tensor_values(tensors[name], ("F32", "I64"))


def install_checkpoint(base_dir):
    if os.path.exists(os.path.join(base_dir, "models", "checkpoints", CKPT)):
        return
    tensors = {}
    for file, prefix in (("models/sd15_tiny/unet.safetensors", "model.diffusion_model."),
                         ("models/sd15_tiny/clip_vae.safetensors", "first_stage_model."),
                         ("pipeline/clip32.safetensors", "cond_stage_model.transformer.")):
        t, _ = read_safetensors(os.path.join(DATA, file))
        tensors.update({k: v for k, v in t.items() if k.startswith(prefix)})
    _, ids = golden("tokens.ids")
    _, rows = golden("tokens.rows")
    table = bytearray(VOCAB * WIDTH * 4)
    for i, token in enumerate(ids):
        table[token * WIDTH * 4:(token + 1) * WIDTH * 4] = struct.pack(
            f"<{WIDTH}f", *rows[i * WIDTH:(i + 1) * WIDTH])
    tensors[TABLE] = ("F32", [VOCAB, WIDTH], bytes(table))
    meta = {"darkroom.family": "sd15", "darkroom.unet.groups": "4",
            "darkroom.unet.num_heads": "4", "darkroom.vae.groups": "8",
            "darkroom.clip.heads": "2"}
    write_safetensors(os.path.join(base_dir, "models", "checkpoints", CKPT), tensors, meta)
    loras = os.path.join(base_dir, "models", "loras")
    os.makedirs(os.path.join(loras, "sub"), exist_ok=True)
    shutil.copy(os.path.join(LORA, "pipe_a1.safetensors"), loras)
    shutil.copy(os.path.join(LORA, "pipe_b.safetensors"), loras)
    shutil.copy(os.path.join(LORA, "pipe_a2.safetensors"), os.path.join(loras, "sub"))


def lora_prompt(loras):
    """loras: [(class, name, strength_model, strength_clip or None)], chained from "4"."""
    p = {}
    model, clip = ["4", 0], ["4", 1]
    for i, (cls, name, sm, sc) in enumerate(loras):
        nid = str(10 + i)
        inputs = {"model": model, "lora_name": name, "strength_model": sm}
        if cls == "LoraLoader":
            inputs.update(clip=clip, strength_clip=sc)
            clip = [nid, 1]
        p[nid] = {"class_type": cls, "inputs": inputs}
        model = [nid, 0]
    p.update(sampler_graph(CKPT, "a red cat in the snow", "blurry, ugly", "lora", seed=7,
                           steps=4, cfg=5.0, model=model, clip=clip))
    p["5"] = empty_latent(128, 128)
    return p


def run_png(server, prompt):
    """RGB bytes of the image SaveImage "9" wrote for `prompt`."""
    got, size = open_rgb(run_for_png(server, prompt, timeout=300))
    assert size == (32, 32)
    return got


def golden_pixels(run):
    """The 8-bit levels SaveImage writes for a golden run's image (values in [-1, 1])."""
    shape, values = golden(run + ".image")
    assert shape == [1, 32, 32, 3]
    return save_image_levels((v + 1.0) / 2.0 for v in values)


def test_lora_loader_images_match_goldens(server):
    install_checkpoint(server.base_dir)
    stack = [("LoraLoader", "pipe_a1.safetensors", 0.8, 0.6),
             ("LoraLoader", "sub/pipe_a2.safetensors", 1.0, 1.0)]
    # f32 differences of ~1e-6 (the C++ golden test) may move a value across a truncation
    # step: 1 level.
    got_stack = run_png(server, lora_prompt(stack))
    assert max_level_diff(got_stack, golden_pixels("stack")) <= 1
    got_base = run_png(server, lora_prompt([]))
    assert max_level_diff(got_base, golden_pixels("base")) <= 1
    assert max_level_diff(got_stack, got_base) > 8  # the LoRAs change the picture
    got_model_only = run_png(server, lora_prompt([("LoraLoaderModelOnly", "pipe_a1.safetensors",
                                                   1.0, None)]))
    assert max_level_diff(got_model_only, golden_pixels("model_only")) <= 1
    got_b = run_png(server, lora_prompt([("LoraLoader", "pipe_b.safetensors", -0.7, 1.0)]))
    assert max_level_diff(got_b, golden_pixels("b_negative")) <= 1
    # The stack again after other sets: the cached base checkpoint was not changed.
    assert run_png(server, lora_prompt(stack)) == got_stack
    assert server.alive(), server.log()


def test_object_info_lists_lora_nodes_as_comfy(server):
    install_checkpoint(server.base_dir)
    names = ["pipe_a1.safetensors", "pipe_b.safetensors", "sub/pipe_a2.safetensors"]
    info = server.get("/object_info").json()
    loader = info["LoraLoader"]
    assert loader["display_name"] == "Load LoRA"
    assert loader["category"] == "loaders"
    assert loader["input_order"] == {"required": ["model", "clip", "lora_name", "strength_model",
                                                  "strength_clip"]}
    req = loader["input"]["required"]
    assert req["model"][0] == "MODEL" and req["clip"][0] == "CLIP"
    assert req["lora_name"][0] == names
    for s in ("strength_model", "strength_clip"):
        assert req[s][0] == "FLOAT"
        assert {k: req[s][1][k] for k in ("default", "min", "max", "step")} == {
            "default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
    assert loader["output"] == ["MODEL", "CLIP"]
    only = server.get("/object_info/LoraLoaderModelOnly").json()["LoraLoaderModelOnly"]
    assert only["input_order"] == {"required": ["model", "lora_name", "strength_model"]}
    assert only["input"]["required"]["lora_name"][0] == names
    assert only["output"] == ["MODEL"]
