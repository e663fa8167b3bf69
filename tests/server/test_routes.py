"""ComfyUI's HTTP and WebSocket API through the real `darkroom serve` process.

Expected shapes are ComfyUI's (server.py, app/user_manager.py, app/app_settings.py)."""
import http.client
import io
import json
import os
import subprocess
import time

import pytest
import websocket
from PIL import Image

from comfy_prompts import CKPT, default_prompt, write_fake_checkpoint


def png_bytes(size=(8, 6), color=(10, 200, 30, 128), mode="RGBA"):
    buf = io.BytesIO()
    Image.new(mode, size, color if mode == "RGBA" else color[:3]).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module", autouse=True)
def checkpoint(server):
    return write_fake_checkpoint(server.base_dir)


# --- the server itself -------------------------------------------------------------------

def test_healthz_and_readyz(server):
    assert server.get("/healthz").status_code == 200
    assert server.get("/readyz").status_code == 200


def test_system_stats_has_comfyui_shape_with_and_without_api_prefix(server):
    for path in ("/system_stats", "/api/system_stats"):
        r = server.get(path)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/json"
        j = r.json()
        assert j["system"]["ram_total"] > 0
        assert j["system"]["argv"][:2] == ["darkroom", "serve"]
        assert j["devices"][0]["type"] == "cpu"
        assert "oneDNN" in j["devices"][0]["name"]
        for key in ("vram_total", "vram_free", "torch_vram_total", "torch_vram_free", "index"):
            assert key in j["devices"][0]


def test_unknown_api_route_is_404_json_and_server_keeps_serving(server):
    r = server.get("/api/no/such/route")
    assert r.status_code == 404
    assert "no route /api/no/such/route" in r.json()["error"]["message"]
    assert server.get("/healthz").status_code == 200


def test_wrong_method_is_405(server):
    assert server.delete("/prompt").status_code == 405


def test_bad_port_is_a_clear_error(darkroom_bin):
    r = subprocess.run([darkroom_bin, "serve", "--port", "99999"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "[serve] --port '99999' is not a port number" in r.stderr


def test_keep_alive_serves_several_requests_on_one_connection(server):
    host, port = server.host_port.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.connect()
    sock = conn.sock
    for path in ("/healthz", "/prompt", "/api/queue"):
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        assert conn.sock is sock  # the same TCP connection
    conn.close()


def test_metrics_counts_requests_and_prompts(server):
    before = server.get("/metrics").text
    server.post("/prompt", data="{not json")
    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")

    def value(text, name):
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        raise AssertionError(f"{name} missing from /metrics")

    assert value(r.text, "darkroom_prompts_rejected_total") == \
        value(before, "darkroom_prompts_rejected_total") + 1
    assert 'darkroom_http_requests_total{code="400"}' in r.text
    assert "# TYPE darkroom_queue_remaining gauge" in r.text


# --- prompt and queue --------------------------------------------------------------------

def test_get_prompt_reports_queue_remaining(server):
    for path in ("/prompt", "/api/prompt"):
        j = server.get(path).json()
        assert isinstance(j["exec_info"]["queue_remaining"], int)


def test_post_prompt_queues_and_answers_like_comfyui(server):
    r = server.post("/api/prompt", json={"prompt": default_prompt(), "client_id": "t1"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"prompt_id", "number", "node_errors"}
    assert j["node_errors"] == {}
    assert len(j["prompt_id"]) == 36  # a UUID
    # The prompt is now pending, running or done.
    # (Between leaving the queue and entering the history there is a moment in neither.)
    deadline = time.time() + 30
    while True:
        q = server.get("/queue").json()
        assert set(q) == {"queue_running", "queue_pending"}
        ids = [item[1] for item in q["queue_running"] + q["queue_pending"]]
        hist = server.get(f"/history/{j['prompt_id']}").json()
        if j["prompt_id"] in ids or j["prompt_id"] in hist or time.time() > deadline:
            break
        time.sleep(0.1)
    assert j["prompt_id"] in ids or j["prompt_id"] in hist


def test_post_prompt_with_own_prompt_id_and_number(server):
    pid = "11111111-2222-3333-4444-555555555555"
    r = server.post("/prompt", json={"prompt": default_prompt(), "prompt_id": pid, "number": 7})
    assert r.status_code == 200, r.text
    assert r.json()["prompt_id"] == pid
    server.post("/queue", json={"delete": [pid]})


def test_queue_and_history_posts(server):
    assert server.post("/queue", json={"clear": True}).status_code == 200
    assert server.post("/api/queue", json={"delete": ["nope"]}).status_code == 200
    assert server.get("/queue").json()["queue_pending"] == []
    assert isinstance(server.get("/history").json(), dict)
    assert isinstance(server.get("/history?max_items=2&offset=0").json(), dict)
    assert server.get("/history/does-not-exist").json() == {}
    assert server.post("/history", json={"delete": ["nope"]}).status_code == 200
    assert server.post("/interrupt", data="").status_code == 200
    assert server.post("/api/interrupt", json={"prompt_id": "nope"}).status_code == 200
    assert server.post("/free", json={"unload_models": True, "free_memory": True}).status_code == 200


def test_history_keeps_completion_order_and_max_items_gives_the_newest(start_server):
    # ComfyUI's history is a dict in the order prompts finished; GET /history?max_items=N
    # (offset defaulting to -1) is the newest N of it, oldest first (execution.py
    # get_history). These ids sort ("a" < "b" < "c") differently from the order they run in.
    s = start_server()
    write_fake_checkpoint(s.base_dir)  # each run ends at once in a load error
    order = ["c0000000-0000-0000-0000-000000000001", "a0000000-0000-0000-0000-000000000002",
             "b0000000-0000-0000-0000-000000000003"]
    for pid in order:
        # One at a time, so the completion order is the order of this list.
        r = s.post("/prompt", json={"prompt": default_prompt(), "prompt_id": pid})
        assert r.status_code == 200, r.text
        deadline = time.time() + 60
        while pid not in s.get(f"/history/{pid}").json():
            assert time.time() < deadline, f"{pid} never reached the history"
            time.sleep(0.1)

    def keys(path):
        r = s.get(path)
        assert r.status_code == 200, r.text
        # The keys as they stand in the body text.
        return [k for k, _ in json.loads(r.text, object_pairs_hook=lambda pairs: pairs)]

    assert keys("/history") == order
    assert keys("/api/history") == order
    assert keys("/history?max_items=2") == order[1:]
    assert keys("/history?max_items=1") == order[2:]
    assert keys("/history?max_items=5") == order
    assert keys("/history?max_items=2&offset=0") == order[:2]
    assert keys("/history?max_items=1&offset=1") == order[1:2]
    assert keys("/history?offset=1") == order[1:]
    # A prompt run again becomes the newest entry.
    r = s.post("/prompt", json={"prompt": default_prompt(), "prompt_id": order[0]})
    assert r.status_code == 200, r.text
    deadline = time.time() + 60
    while keys("/history") != order[1:] + order[:1]:
        assert time.time() < deadline, keys("/history")
        time.sleep(0.1)


# --- node and model lookups --------------------------------------------------------------

def test_object_info_has_comfyui_node_shape(server):
    info = server.get("/object_info").json()
    ks = info["KSampler"]
    for key in ("input", "input_order", "output", "output_name", "name", "display_name",
                "category", "output_node", "description"):
        assert key in ks, key
    assert ks["input"]["required"]["seed"][0] == "INT"
    assert ks["output"] == ["LATENT"]
    assert info["SaveImage"]["output_node"] is True
    assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == [CKPT]
    one = server.get("/api/object_info/KSampler").json()
    assert list(one) == ["KSampler"]
    assert server.get("/object_info/NoSuchNode").json() == {}


def test_models_and_embeddings(server):
    emb = os.path.join(server.base_dir, "models", "embeddings", "sub")
    os.makedirs(emb, exist_ok=True)
    open(os.path.join(emb, "easyneg.safetensors"), "wb").close()
    assert server.get("/embeddings").json() == ["sub/easyneg"]
    kinds = server.get("/models").json()
    for k in ("checkpoints", "loras", "vae", "embeddings", "upscale_models"):
        assert k in kinds
    assert server.get("/api/models/checkpoints").json() == [CKPT]
    assert server.get("/models/no_such_folder").status_code == 404


def test_extensions_features_i18n(server):
    assert server.get("/extensions").json() == []
    f = server.get("/features").json()
    assert f["max_upload_size"] == 100 * 1024 * 1024
    assert server.get("/i18n").json() == {}


# --- files ---------------------------------------------------------------------------------

def upload(server, data, name="a.png", **fields):
    return server.post("/upload/image", files={"image": (name, data, "image/png")},
                       data={k: v for k, v in fields.items()})


def test_upload_then_view_round_trip(server):
    data = png_bytes()
    r = upload(server, data, "round.png")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "round.png", "subfolder": "", "type": "input"}
    with open(os.path.join(server.base_dir, "input", "round.png"), "rb") as f:
        assert f.read() == data
    v = server.get("/view", params={"filename": "round.png", "type": "input"})
    assert v.status_code == 200
    assert v.headers["Content-Type"] == "image/png"
    assert v.content == data
    # ComfyUI's annotated name selects the folder too.
    assert server.get("/api/view", params={"filename": "round.png [input]"}).content == data


def test_upload_names_like_comfyui(server):
    a, b = png_bytes(color=(1, 2, 3, 255)), png_bytes(color=(4, 5, 6, 255))
    assert upload(server, a, "dup.png", subfolder="s").json()["name"] == "dup.png"
    # Same bytes again: kept as is. Different bytes: "dup (1).png".
    assert upload(server, a, "dup.png", subfolder="s").json()["name"] == "dup.png"
    r = upload(server, b, "dup.png", subfolder="s").json()
    assert r == {"name": "dup (1).png", "subfolder": "s", "type": "input"}
    r = upload(server, b, "dup.png", subfolder="s", overwrite="true").json()
    assert r["name"] == "dup.png"
    with open(os.path.join(server.base_dir, "input", "s", "dup.png"), "rb") as f:
        assert f.read() == b
    r = upload(server, a, "out.png", type="temp").json()
    assert r["type"] == "temp"
    assert os.path.exists(os.path.join(server.base_dir, "temp", "out.png"))


def test_view_preview_and_channels(server):
    upload(server, png_bytes(color=(200, 100, 50, 77)), "ch.png")
    p = server.get("/view", params={"filename": "ch.png", "type": "input", "preview": "webp;90"})
    assert p.status_code == 200
    assert p.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(p.content)).format == "WEBP"
    j = server.get("/view", params={"filename": "ch.png", "type": "input", "preview": "jpeg;50"})
    assert Image.open(io.BytesIO(j.content)).format == "JPEG"
    rgb = Image.open(io.BytesIO(server.get(
        "/view", params={"filename": "ch.png", "type": "input", "channel": "rgb"}).content))
    assert rgb.convert("RGBA").getpixel((0, 0)) == (200, 100, 50, 255)
    a = Image.open(io.BytesIO(server.get(
        "/view", params={"filename": "ch.png", "type": "input", "channel": "a"}).content))
    assert a.convert("RGBA").getpixel((0, 0)) == (0, 0, 0, 77)
    assert server.get("/view", params={"filename": "missing.png"}).status_code == 404
    assert server.get("/view").status_code == 404


def test_upload_mask_puts_mask_alpha_on_original(server):
    upload(server, png_bytes(color=(9, 8, 7, 255)), "orig.png")
    mask = png_bytes(color=(0, 0, 0, 40))
    ref = json.dumps({"filename": "orig.png", "subfolder": "", "type": "input"})
    r = server.post("/upload/mask", files={"image": ("clipspace-mask.png", mask, "image/png")},
                    data={"original_ref": ref, "type": "input", "subfolder": "clipspace"})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "clipspace-mask.png", "subfolder": "clipspace", "type": "input"}
    out = Image.open(os.path.join(server.base_dir, "input", "clipspace", "clipspace-mask.png"))
    assert out.convert("RGBA").getpixel((3, 3)) == (9, 8, 7, 40)


# --- users, settings, userdata -----------------------------------------------------------

def test_users_and_settings(server):
    assert server.get("/users").json() == {"storage": "server", "migrated": True}
    assert server.get("/settings").json() == {}
    assert server.post("/settings/Comfy.Locale", json="en").status_code == 200
    assert server.post("/api/settings", json={"A.B": 3, "C": [1]}).status_code == 200
    assert server.get("/settings/Comfy.Locale").json() == "en"
    assert server.get("/settings").json() == {"Comfy.Locale": "en", "A.B": 3, "C": [1]}
    assert server.get("/settings/Unset").json() is None
    path = os.path.join(server.base_dir, "user", "default", "comfy.settings.json")
    with open(path) as f:
        assert json.load(f)["A.B"] == 3


def test_userdata_files(server):
    wf = json.dumps({"nodes": []})
    r = server.post("/userdata/workflows%2Fmy%20flow.json", data=wf)
    assert r.status_code == 200
    assert r.json() == "workflows/my flow.json"
    assert server.get("/userdata/workflows%2Fmy%20flow.json").text == wf
    assert server.get("/userdata", params={"dir": "workflows"}).json() == ["my flow.json"]
    full = server.get("/userdata", params={"dir": "workflows", "full_info": "true"}).json()
    assert full[0]["path"] == "my flow.json" and full[0]["size"] == len(wf)
    assert server.get("/userdata", params={"dir": "workflows", "split": "true"}).json() == \
        [["my flow.json", "my flow.json"]]
    assert server.post("/userdata/workflows%2Fmy%20flow.json?overwrite=false",
                       data="x").status_code == 409
    r = server.post("/userdata/workflows%2Fmy%20flow.json/move/workflows%2Fb.json")
    assert r.json() == "workflows/b.json"
    v2 = server.get("/v2/userdata", params={"path": "workflows"}).json()
    assert v2[0]["name"] == "b.json" and v2[0]["type"] == "file"
    assert server.delete("/userdata/workflows%2Fb.json").status_code == 204
    assert server.get("/userdata/workflows%2Fb.json").status_code == 404
    assert server.get("/userdata", params={"dir": "nowhere"}).status_code == 404
    assert server.get("/userdata").status_code == 400


def test_userdata_html_is_served_as_download(server):
    server.post("/userdata/x.html", data="<script>alert(1)</script>")
    r = server.get("/userdata/x.html")
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == "attachment"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


# --- websocket -----------------------------------------------------------------------------

def ws_url(server, query="clientId=abc"):
    return "ws://" + server.host_port + "/ws?" + query


def test_websocket_greets_with_status_and_answers_feature_flags(server):
    ws = websocket.create_connection(ws_url(server), timeout=10)
    msg = json.loads(ws.recv())
    assert msg["type"] == "status"
    assert msg["data"]["sid"] == "abc"
    assert isinstance(msg["data"]["status"]["exec_info"]["queue_remaining"], int)
    ws.send(json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}}))
    msg = json.loads(ws.recv())
    assert msg["type"] == "feature_flags"
    assert msg["data"]["max_upload_size"] == 100 * 1024 * 1024
    ws.close()
    # Without clientId the server makes one up.
    ws = websocket.create_connection("ws://" + server.host_port + "/api/ws", timeout=10)
    assert len(json.loads(ws.recv())["data"]["sid"]) == 32
    ws.close()


def test_websocket_gets_the_prompt_messages_of_its_client(server):
    ws = websocket.create_connection(ws_url(server, "clientId=runner"), timeout=60)
    json.loads(ws.recv())  # status
    r = server.post("/prompt", json={"prompt": default_prompt(), "client_id": "runner"})
    pid = r.json()["prompt_id"]
    seen = []
    # The fake checkpoint cannot load: the run ends with execution_error (or, if the worker
    # is slow, at least starts). Every message about the prompt names it.
    while True:
        m = ws.recv()
        if isinstance(m, bytes):
            continue
        m = json.loads(m)
        seen.append(m["type"])
        if m["type"] in ("execution_error", "execution_success"):
            assert m["data"]["prompt_id"] == pid
            break
    assert "execution_start" in seen
    assert seen[-1] == "execution_error"
    ws.close()
    # As in ComfyUI, the history entry is written just after the last message: poll.
    deadline = time.time() + 30
    hist = {}
    while pid not in hist and time.time() < deadline:
        hist = server.get(f"/history/{pid}").json()
        time.sleep(0.1)
    assert hist[pid]["status"]["status_str"] == "error"


# --- CORS and the origin check -------------------------------------------------------------

def test_origin_check_refuses_cross_site_posts(server):
    ok = server.post("/prompt", data="{}", headers={"Origin": server.url})
    assert ok.status_code == 400  # passed the check, then "no prompt"
    bad = server.post("/prompt", data="{}", headers={"Origin": "http://evil.example"})
    assert bad.status_code == 403
    # Host names compared without ports when the Origin has none (ComfyUI's rule).
    assert server.get("/prompt", headers={"Origin": "http://127.0.0.1"}).status_code == 200


def test_cors_header_option(start_server):
    s = start_server("--enable-cors-header")
    r = s.request("OPTIONS", "/prompt", headers={"Origin": "http://elsewhere.example"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    r = s.get("/prompt", headers={"Origin": "http://elsewhere.example"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    s2 = start_server("--enable-cors-header", "http://app.example")
    assert s2.get("/prompt").headers["Access-Control-Allow-Origin"] == "http://app.example"


def test_a_client_that_stops_reading_is_dropped_and_blocks_no_one(server):
    import socket
    slow = websocket.create_connection(ws_url(server, "clientId=slow"), timeout=10,
                                       sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    other = websocket.create_connection(ws_url(server, "clientId=other"), timeout=10)
    assert json.loads(other.recv())["type"] == "status"
    ask = json.dumps({"type": "feature_flags", "data": {}})
    # Each message makes the server answer; the slow client never reads the answers.
    dropped = False
    for i in range(400000):
        try:
            slow.send(ask)
        except (OSError, websocket.WebSocketException):
            dropped = True  # the server hung up on it
            break
        if i % 20000 == 0:
            assert server.get("/healthz", timeout=5).status_code == 200
    assert dropped
    # Everyone else is still served.
    other.send(ask)
    assert json.loads(other.recv())["type"] == "feature_flags"
    assert server.get("/healthz").status_code == 200
    other.close()
