"""What a plain ComfyUI API client does, for the end-to-end queue tests: ComfyUI's default
API workflow (script_examples/basic_api_example.py, nodes 3-9) on a tiny model, a
websocket listener on /ws?clientId=, and the PNG checks.

The tiny checkpoint: data/models/sd15_tiny has the UNet (model.diffusion_model.*) and the
VAE (first_stage_model.*) as separate fixtures, with a 32-wide cross-attention context.
A single-file SD 1.x checkpoint is assembled from them here, because CheckpointLoaderSimple
loads one file and detects SD 1.x by its 768-wide context: the UNet's attn2 to_k/to_v
weights are replaced by random ones that take 768 inputs, and a one-layer 768-wide CLIP
text model with CLIP's real 49408-token vocabulary is drawn at random. The images are noise;
these tests check the wiring (queue, messages, history, files), not pixels.

The node tests (ControlNet, inpainting, LoRA, upscale models) share the rest: uploading
input PNGs, a text-to-image graph to build on, queueing a prompt and fetching the PNG its
SaveImage wrote, and reading golden tensors as the 8-bit levels SaveImage would write.
"""
import io
import json
import os
import random
import shutil
import struct
import threading
import time
import uuid
import zlib

import websocket
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY = os.path.join(REPO, "tests", "data", "models", "sd15_tiny")
CKPT_NAME = "sd15_tiny.safetensors"

# The tiny UNet has 3 downsamplings (latent sides multiple of 8, so EmptyLatentImage's
# pixel sides are multiples of 64) and the tiny VAE 2 levels: images are 2x the latent.
WIDTH, HEIGHT = 128, 64
VAE_SCALE = 2


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)} and the metadata of a .safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    return {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}, meta


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for k in sorted(tensors):
        dtype, shape, blob = tensors[k]
        header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def tiny_vae():
    """The first_stage_model.* tensors of sd15_tiny's VAE (2 levels: images 2x the latent),
    to complete a checkpoint."""
    vae, _ = read_safetensors(os.path.join(TINY, "clip_vae.safetensors"))
    return {k: v for k, v in vae.items() if k.startswith("first_stage_model.")}


def build_tiny_checkpoint(path):
    rng = random.Random(20251126)
    block = [rng.gauss(0.0, 0.02) for _ in range(1 << 16)]

    def randn(dtype, *shape):
        # N(0, 0.02²) values; a 65536-value block repeats (fine for a wiring test, and fast).
        n = 1
        for d in shape:
            n *= d
        fmt, size = {"F16": ("e", 2), "F32": ("f", 4)}[dtype]
        raw = struct.pack(f"<{len(block)}{fmt}", *block)
        return (dtype, list(shape), (raw * (n // len(block) + 1))[:n * size])

    def const(value, n):
        return ("F16", [n], struct.pack(f"<{n}e", *([value] * n)))

    tensors, _ = read_safetensors(os.path.join(TINY, "unet.safetensors"))
    for k, (dtype, shape, _) in list(tensors.items()):
        if k.endswith((".attn2.to_k.weight", ".attn2.to_v.weight")):
            tensors[k] = randn("F32", shape[0], 768)
    tensors.update(tiny_vae())
    width, mlp = 768, 1536
    layer = "encoder.layers.0."
    clip = {
        "embeddings.token_embedding.weight": randn("F16", 49408, width),
        "embeddings.position_embedding.weight": randn("F16", 77, width),
        "final_layer_norm.weight": const(1.0, width),
        "final_layer_norm.bias": const(0.0, width),
        layer + "mlp.fc1.weight": randn("F16", mlp, width),
        layer + "mlp.fc1.bias": const(0.0, mlp),
        layer + "mlp.fc2.weight": randn("F16", width, mlp),
        layer + "mlp.fc2.bias": const(0.0, width),
    }
    for n in ("layer_norm1", "layer_norm2"):
        clip[layer + n + ".weight"] = const(1.0, width)
        clip[layer + n + ".bias"] = const(0.0, width)
    for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
        clip[layer + "self_attn." + n + ".weight"] = randn("F16", width, width)
        clip[layer + "self_attn." + n + ".bias"] = const(0.0, width)
    tensors.update({"cond_stage_model.transformer.text_model." + k: v for k, v in clip.items()})
    # What the shapes cannot say (tools/fixtures/unet.py, clip_vae.py).
    meta = {"darkroom.unet.groups": "4", "darkroom.unet.num_heads": "4",
            "darkroom.vae.groups": "8", "darkroom.clip.heads": "12"}
    tmp = path + ".tmp"
    write_safetensors(tmp, tensors, meta)
    os.replace(tmp, path)


_ckpt_lock = threading.Lock()


def install_tiny_checkpoint(base_dir, cache_dir):
    """Puts the tiny checkpoint (built once into cache_dir) under base/models/checkpoints."""
    with _ckpt_lock:
        built = os.path.join(str(cache_dir), CKPT_NAME)
        if not os.path.exists(built):
            build_tiny_checkpoint(built)
    target = os.path.join(model_folder(base_dir, "checkpoints"), CKPT_NAME)
    if not os.path.exists(target):
        # A hard link or a copy: the server refuses symlinks that leave its model folder.
        try:
            os.link(built, target)
        except OSError:
            shutil.copyfile(built, target)


def default_workflow(seed=8566257, steps=4, positive="masterpiece best quality girl",
                     negative="bad hands", width=WIDTH, height=HEIGHT, prefix="ComfyUI"):
    """ComfyUI's basic_api_example.py prompt with the tiny checkpoint and a small size."""
    return {
        "3": {"class_type": "KSampler",
              "inputs": {"cfg": 8, "denoise": 1, "latent_image": ["5", 0], "model": ["4", 0],
                         "negative": ["7", 0], "positive": ["6", 0], "sampler_name": "euler",
                         "scheduler": "normal", "seed": seed, "steps": steps}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT_NAME}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"batch_size": 1, "height": height, "width": width}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": positive}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": negative}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


class WsListener:
    """A websocket client on /ws?clientId=ID that records every message in a thread."""

    def __init__(self, host_port, client_id=None):
        self.client_id = client_id or str(uuid.uuid4())
        self.ws = websocket.create_connection(
            f"ws://{host_port}/ws?clientId={self.client_id}", timeout=120)
        self.messages = []  # dicts for JSON messages, bytes for binary frames
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                m = self.ws.recv()
                item = m if isinstance(m, bytes) else json.loads(m)
                with self.cond:
                    self.messages.append(item)
                    self.cond.notify_all()
        except Exception:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def wait_for(self, pred, timeout=120):
        """Waits until a message satisfies pred; returns the messages up to and with it."""
        end = time.time() + timeout
        with self.cond:
            while True:
                for i, m in enumerate(self.messages):
                    if pred(m):
                        return self.messages[:i + 1]
                left = end - time.time()
                if left <= 0 or self.closed:
                    raise AssertionError(
                        f"no such message within {timeout}s (closed={self.closed}); got "
                        f"{[m if isinstance(m, dict) else '<binary>' for m in self.messages]}")
                self.cond.wait(left)

    def wait_done(self, prompt_id, timeout=120):
        """ComfyUI's end of a prompt: executing with node null for it."""
        return self.wait_for(lambda m: isinstance(m, dict) and m.get("type") == "executing"
                             and m["data"].get("node") is None
                             and m["data"].get("prompt_id") == prompt_id, timeout)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def of_prompt(messages, prompt_id):
    return [m for m in messages if isinstance(m, dict) and m["data"].get("prompt_id") == prompt_id]


def png_info(data):
    """(width, height, color type, {tEXt key: text}) from a PNG, checking every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, ctype, texts, idat = 8, None, None, None, {}, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind}"
        if kind == b"IHDR":
            width, height, _, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            texts[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    channels = {2: 3, 6: 4}[ctype]
    assert len(raw) == height * (1 + width * channels), "IDAT size does not match IHDR"
    return width, height, ctype, texts


def wait_queue_empty(server, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        q = server.get("/queue").json()
        if not q["queue_running"] and not q["queue_pending"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"queue not empty after {timeout}s: {server.get('/queue').json()}")


def history_pairs(server, path="/history"):
    """The /history body as (key, value) pairs, so duplicate keys would show."""
    r = server.get(path)
    assert r.status_code == 200, r.text
    return json.loads(r.text, object_pairs_hook=lambda pairs: pairs)


# --- What the node tests share: inputs, a graph to build on, the saved PNG, goldens. ---

def model_folder(base_dir, kind):
    """base_dir/models/<kind> (checkpoints, controlnet, ...), created if missing."""
    path = os.path.join(str(base_dir), "models", kind)
    os.makedirs(path, exist_ok=True)
    return path


def png_bytes(image):
    """A PIL image encoded as PNG."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def upload_png(server, name, data, overwrite=True):
    """POSTs PNG bytes to /upload/image as `name` (form field overwrite=true unless
    overwrite is False, then no field); returns the name the server stored it under."""
    r = server.post("/upload/image", files={"image": (name, data, "image/png")},
                    data={"overwrite": "true"} if overwrite else None)
    assert r.status_code == 200, r.text
    return r.json()["name"]


def upload_png_file(server, path, name):
    """upload_png of the file at `path`."""
    with open(path, "rb") as f:
        return upload_png(server, name, f.read())


def sampler_graph(ckpt, positive, negative, prefix, seed=5, steps=2, cfg=5.0,
                  cond=("6", 0), uncond=("7", 0), latent=("5", 0), model=("4", 0),
                  clip=("4", 1)):
    """Text to image short of its latent source: 4 CheckpointLoaderSimple(ckpt), 6 / 7
    CLIPTextEncode(positive / negative, clip), 3 KSampler (euler, normal, denoise 1; model,
    cond, uncond, latent), 8 VAEDecode(3 with 4's VAE), 9 SaveImage(prefix). The callers add
    the latent's node (and whatever feeds cond / uncond / model / clip)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": list(clip)}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": list(clip)}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": steps, "cfg": cfg, "sampler_name": "euler",
                         "scheduler": "normal", "denoise": 1.0, "model": list(model),
                         "positive": list(cond), "negative": list(uncond),
                         "latent_image": list(latent)}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix,
                                                   "images": ["8", 0]}},
    }


def empty_latent(width, height):
    """An EmptyLatentImage node of one latent for a width x height image."""
    return {"class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": 1}}


def controlnet_apply(loader, hint, strength, image=("11", 0)):
    """Nodes 10 (`loader`, a ControlNet loader node), 11 (LoadImage of the uploaded `hint`)
    and 20 (ControlNetApplyAdvanced of 10 on 6 / 7 with `image`, `strength`, start 0, end 1):
    KSampler's positive / negative are then ("20", 0) / ("20", 1)."""
    return {
        "10": loader,
        "11": {"class_type": "LoadImage", "inputs": {"image": hint}},
        "20": {"class_type": "ControlNetApplyAdvanced",
               "inputs": {"positive": ["6", 0], "negative": ["7", 0],
                          "control_net": ["10", 0], "image": list(image),
                          "strength": strength, "start_percent": 0.0, "end_percent": 1.0}},
    }


def queue_and_wait(server, prompt, timeout=120):
    """Queues `prompt` from a fresh websocket client and waits for its end (executing with
    node null); returns that prompt's messages."""
    ws = WsListener(server.host_port)
    try:
        r = server.post("/prompt", json={"prompt": prompt, "client_id": ws.client_id})
        assert r.status_code == 200, r.text
        pid = r.json()["prompt_id"]
        return of_prompt(ws.wait_done(pid, timeout), pid)
    finally:
        ws.close()


def saved_png(server, messages, node="9"):
    """The PNG bytes (from /view) of the first image SaveImage node `node` reported in a
    prompt's messages; the prompt must have had no execution_error and `node` must be the
    only node that reported output."""
    assert not [m for m in messages if m["type"] == "execution_error"], messages
    executed = [m["data"] for m in messages if m["type"] == "executed"]
    assert [e["node"] for e in executed] == [node], messages
    image = executed[0]["output"]["images"][0]
    png = server.get("/view", params={"filename": image["filename"],
                                      "subfolder": image["subfolder"], "type": "output"})
    assert png.status_code == 200
    return png.content


def run_for_png(server, prompt, node="9", timeout=120):
    """queue_and_wait, then saved_png: the PNG bytes SaveImage node `node` wrote."""
    return saved_png(server, queue_and_wait(server, prompt, timeout), node)


def open_rgb(png):
    """PNG bytes → (RGB bytes, (width, height))."""
    image = Image.open(io.BytesIO(png))
    return image.convert("RGB").tobytes(), image.size


STRUCT_FORMATS = {"F32": "f", "I32": "i", "I64": "q"}


def tensor_values(entry, dtypes=("F32",)):
    """(shape, flat tuple of values) of a read_safetensors entry; its dtype must be one of
    dtypes."""
    dtype, shape, raw = entry
    assert dtype in dtypes, dtype
    fmt = STRUCT_FORMATS[dtype]
    return shape, struct.unpack(f"<{len(raw) // struct.calcsize(fmt)}{fmt}", raw)


def save_image_levels(values):
    """The 8-bit levels ComfyUI's SaveImage writes for image values x (nominally in [0, 1]):
    clip(255·x, 0, 255) cast to uint8, i.e. truncated."""
    return bytes(int(min(max(255.0 * x, 0.0), 255.0)) for x in values)


def max_level_diff(a, b):
    """The largest difference between two equally long sequences of 8-bit levels."""
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))
