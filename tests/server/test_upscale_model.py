"""Upscale models through the real server: an uploaded image → UpscaleModelLoader →
ImageUpscaleWithModel → SaveImage, as a ComfyUI client would queue it, on the tiny
Real-ESRGAN-style x4 model of tools/fixtures/rrdbnet.py. The saved PNG is compared with
spandrel's output for the same model and image (tests/data/models/rrdbnet/ref.safetensors,
"x4.call"), turned into 8-bit pixels as SaveImage does (clip(255·v) truncated).
"""
import io
import os
import shutil
import struct

from PIL import Image

from comfy_client import WsListener, of_prompt, read_safetensors

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RRDB = os.path.join(REPO, "tests", "data", "models", "rrdbnet")
MODEL = "tiny_x4.safetensors"


def ref_tensor(name):
    """(shape, f32 values) of a reference tensor."""
    tensors, _ = read_safetensors(os.path.join(RRDB, "ref.safetensors"))
    dtype, shape, raw = tensors[name]
    assert dtype == "F32", dtype
    return shape, struct.unpack(f"<{len(raw) // 4}f", raw)


def test_upscale_model_workflow_saves_spandrels_pixels(server):
    shutil.copy(os.path.join(RRDB, "x4.safetensors"),
                os.path.join(server.base_dir, "models", "upscale_models", MODEL))
    info = server.get("/object_info/UpscaleModelLoader").json()
    assert MODEL in info["UpscaleModelLoader"]["input"]["required"]["model_name"][0]

    # The fixture's input lies on the 1/255 grid, so the PNG carries it exactly.
    (_, h, w, _), values = ref_tensor("x4.input")
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), bytes(round(v * 255) for v in values)).save(buf, format="PNG")
    up = server.post("/upload/image", files={"image": ("upscale_in.png", buf.getvalue(),
                                                       "image/png")})
    assert up.status_code == 200, up.text

    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": up.json()["name"]}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": MODEL}},
        "3": {"class_type": "ImageUpscaleWithModel",
              "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "up", "images": ["3", 0]}},
    }
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
    assert [e["node"] for e in executed] == ["4"]
    image = executed[0]["output"]["images"][0]
    png = server.get("/view", params={"filename": image["filename"],
                                      "subfolder": image["subfolder"], "type": "output"})
    assert png.status_code == 200
    got = Image.open(io.BytesIO(png.content))
    (_, oh, ow, _), expected = ref_tensor("x4.call")
    assert got.size == (ow, oh) == (4 * w, 4 * h)
    want = bytes(int(min(max(v * 255.0, 0.0), 255.0)) for v in expected)
    # f32 differences of ~1e-6 may move a value across a truncation step: 1 level.
    worst = max(abs(a - b) for a, b in zip(got.convert("RGB").tobytes(), want))
    assert worst <= 1
