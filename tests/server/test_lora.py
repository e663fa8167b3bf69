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
import io
import os
import shutil
import struct

from PIL import Image

from comfy_client import WsListener, of_prompt, read_safetensors, write_safetensors

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "data")
LORA = os.path.join(DATA, "lora")
CKPT = "golden_lora_base.safetensors"
VOCAB, WIDTH = 49408, 32
TABLE = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


def golden(name):
    """(shape, f32 values) of a tensor of pipe_golden.safetensors."""
    tensors, _ = read_safetensors(os.path.join(LORA, "pipe_golden.safetensors"))
    dtype, shape, raw = tensors[name]
    fmt = {"F32": "f", "I64": "q"}[dtype]
    return shape, struct.unpack(f"<{len(raw) // struct.calcsize(fmt)}{fmt}", raw)


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
    p = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}}}
    model, clip = ["4", 0], ["4", 1]
    for i, (cls, name, sm, sc) in enumerate(loras):
        nid = str(10 + i)
        inputs = {"model": model, "lora_name": name, "strength_model": sm}
        if cls == "LoraLoader":
            inputs.update(clip=clip, strength_clip=sc)
            clip = [nid, 1]
        p[nid] = {"class_type": cls, "inputs": inputs}
        model = [nid, 0]
    p.update({
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 128, "height": 128, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a red cat in the snow", "clip": clip}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, ugly", "clip": clip}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": 7, "steps": 4, "cfg": 5.0, "sampler_name": "euler",
                         "scheduler": "normal", "denoise": 1.0, "model": model,
                         "positive": ["6", 0], "negative": ["7", 0],
                         "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "lora", "images": ["8", 0]}},
    })
    return p


def run_png(server, prompt):
    """RGB bytes of the image SaveImage wrote for `prompt`."""
    ws = WsListener(server.host_port)
    try:
        r = server.post("/prompt", json={"prompt": prompt, "client_id": ws.client_id})
        assert r.status_code == 200, r.text
        pid = r.json()["prompt_id"]
        messages = of_prompt(ws.wait_done(pid, timeout=300), pid)
    finally:
        ws.close()
    assert not [m for m in messages if m["type"] == "execution_error"], messages
    saved = [m["data"] for m in messages if m["type"] == "executed" and m["data"]["node"] == "9"]
    image = saved[0]["output"]["images"][0]
    png = server.get("/view", params={"filename": image["filename"],
                                      "subfolder": image["subfolder"], "type": "output"})
    assert png.status_code == 200
    got = Image.open(io.BytesIO(png.content))
    assert got.size == (32, 32)
    return got.convert("RGB").tobytes()


def golden_pixels(run):
    shape, values = golden(run + ".image")
    assert shape == [1, 32, 32, 3]
    return bytes(int(min(max((v + 1.0) / 2.0 * 255.0, 0.0), 255.0)) for v in values)


def worst(a, b):
    return max(abs(x - y) for x, y in zip(a, b))


def test_lora_loader_images_match_goldens(server):
    install_checkpoint(server.base_dir)
    stack = [("LoraLoader", "pipe_a1.safetensors", 0.8, 0.6),
             ("LoraLoader", "sub/pipe_a2.safetensors", 1.0, 1.0)]
    # f32 differences of ~1e-6 (the C++ golden test) may move a value across a truncation
    # step: 1 level.
    got_stack = run_png(server, lora_prompt(stack))
    assert worst(got_stack, golden_pixels("stack")) <= 1
    got_base = run_png(server, lora_prompt([]))
    assert worst(got_base, golden_pixels("base")) <= 1
    assert worst(got_stack, got_base) > 8  # the LoRAs change the picture
    got_model_only = run_png(server, lora_prompt([("LoraLoaderModelOnly", "pipe_a1.safetensors",
                                                   1.0, None)]))
    assert worst(got_model_only, golden_pixels("model_only")) <= 1
    got_b = run_png(server, lora_prompt([("LoraLoader", "pipe_b.safetensors", -0.7, 1.0)]))
    assert worst(got_b, golden_pixels("b_negative")) <= 1
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
