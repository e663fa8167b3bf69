"""Hostile and broken input through the real server: every case gets ComfyUI's answer (or
a clear 4xx) and the server keeps serving afterwards.

Validation errors are ComfyUI's (execution.py validate_prompt / validate_inputs): the
response is 400 {"error": {"type", "message", "details", "extra_info"}, "node_errors":
{"<id>": {"errors": [...], "dependent_outputs": [...], "class_type": ...}}}."""
import io
import os
import subprocess
import time

import pytest
import requests
import websocket
from PIL import Image

from comfy_prompts import CKPT, default_prompt, write_fake_checkpoint


@pytest.fixture(scope="module", autouse=True)
def checkpoint(server):
    return write_fake_checkpoint(server.base_dir)


@pytest.fixture(autouse=True)
def still_serving(server):
    yield
    assert server.alive(), server.log()
    assert server.get("/healthz").status_code == 200


def png_bytes(size=(4, 4)):
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


def post_prompt(server, prompt):
    return server.post("/prompt", json={"prompt": prompt})


def node_error(r, node_id):
    assert r.status_code == 400, r.text
    j = r.json()
    assert set(j) == {"error", "node_errors"}
    assert j["error"]["type"] == "prompt_outputs_failed_validation"
    assert j["error"]["message"] == "Prompt outputs failed validation"
    ne = j["node_errors"][node_id]
    assert set(ne) == {"errors", "dependent_outputs", "class_type"}
    assert ne["dependent_outputs"] == ["9"]
    for e in ne["errors"]:
        assert set(e) == {"type", "message", "details", "extra_info"}
    return ne


# --- prompts -------------------------------------------------------------------------------

def test_malformed_json(server):
    r = server.post("/prompt", data='{"prompt": {', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_prompt"
    assert r.json()["node_errors"] == {}


def test_body_without_prompt(server):
    r = server.post("/prompt", json={"client_id": "x"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "no_prompt"
    assert r.json()["error"]["message"] == "No prompt provided"


def test_prompt_not_an_object(server):
    for bad in ([1, 2], "text", 5, None):
        r = post_prompt(server, bad)
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_prompt"


def test_unknown_class(server):
    p = default_prompt()
    p["10"] = {"class_type": "NoSuchNode", "inputs": {}}
    r = post_prompt(server, p)
    assert r.status_code == 400
    e = r.json()["error"]
    assert e["type"] == "invalid_prompt"
    assert e["message"] == "Cannot execute because node NoSuchNode does not exist."
    assert e["details"] == "Node ID '#10'"


def test_prompt_without_outputs(server):
    r = post_prompt(server, {"4": default_prompt()["4"]})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "prompt_no_outputs"


def test_missing_input(server):
    p = default_prompt()
    del p["3"]["inputs"]["steps"]
    ne = node_error(post_prompt(server, p), "3")
    assert ne["class_type"] == "KSampler"
    assert ne["errors"][0]["type"] == "required_input_missing"
    assert ne["errors"][0]["extra_info"]["input_name"] == "steps"


def test_wrong_link_type(server):
    p = default_prompt()
    p["3"]["inputs"]["model"] = ["6", 0]  # CONDITIONING into MODEL
    ne = node_error(post_prompt(server, p), "3")
    assert ne["errors"][0]["type"] == "return_type_mismatch"
    assert ne["errors"][0]["extra_info"]["input_name"] == "model"


def test_wrong_value_type(server):
    p = default_prompt()
    p["3"]["inputs"]["steps"] = "many"
    ne = node_error(post_prompt(server, p), "3")
    assert ne["errors"][0]["type"] == "invalid_input_type"


@pytest.mark.parametrize("node,name,value,kind", [
    ("5", "width", 8, "value_smaller_than_min"),
    ("3", "cfg", 1000.0, "value_bigger_than_max"),
    ("3", "steps", 0, "value_smaller_than_min"),
])
def test_out_of_range(server, node, name, value, kind):
    p = default_prompt()
    p[node]["inputs"][name] = value
    ne = node_error(post_prompt(server, p), node)
    assert ne["errors"][0]["type"] == kind
    assert ne["errors"][0]["extra_info"]["input_name"] == name


def test_server_limits_refuse_huge_prompts(server):
    """Within ComfyUI's ranges, past the server's default caps (16 Mpx, 1000 steps)."""
    p = default_prompt()
    p["5"]["inputs"].update(width=16384, height=16384, batch_size=4096)
    p["3"]["inputs"]["steps"] = 10000
    r = post_prompt(server, p)
    latent = node_error(r, "5")["errors"]
    assert [e["type"] for e in latent] == ["value_bigger_than_max"]
    assert latent[0]["extra_info"]["input_name"] == "batch_size"
    assert "over this server's limit of 16777216 (serve --max-pixels)" in latent[0]["details"]
    steps = r.json()["node_errors"]["3"]["errors"]
    assert steps[0]["extra_info"]["input_name"] == "steps"
    assert "limit of 1000 (serve --max-steps)" in steps[0]["details"]
    assert server.get("/queue").json()["queue_pending"] == []


def test_server_limits_are_flags(start_server):
    s = start_server("--max-pixels", "4096", "--max-steps", "0")
    p = default_prompt()
    p["5"]["inputs"].update(width=64, height=128, batch_size=1)  # 8192 > 4096
    p["3"]["inputs"]["steps"] = 5000  # no step cap
    r = post_prompt(s, p)
    assert r.status_code == 400, r.text
    errors = r.json()["node_errors"]  # "4": this fresh server has no checkpoint
    assert "5" in errors and "3" not in errors
    with pytest.raises(RuntimeError, match="--max-pixels 'lots' is not a number"):
        start_server("--max-pixels", "lots")


def test_value_not_in_list(server):
    p = default_prompt()
    p["4"]["inputs"]["ckpt_name"] = "../../etc/passwd"
    ne = node_error(post_prompt(server, p), "4")
    assert ne["errors"][0]["type"] == "value_not_in_list"


# --- /view ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def secret(server, tmp_path_factory):
    """A file outside every served folder, and links to it from inside output/."""
    d = tmp_path_factory.mktemp("outside")
    path = d / "secret.png"
    path.write_bytes(png_bytes())
    out = os.path.join(server.base_dir, "output")
    os.symlink(path, os.path.join(out, "link.png"))
    os.symlink(d, os.path.join(out, "linkdir"))
    return path


@pytest.mark.parametrize("params", [
    {"filename": "../../outside/secret.png"},
    {"filename": "/etc/passwd"},
    {"filename": "secret.png", "subfolder": "../.."},
    {"filename": "passwd", "subfolder": "/etc"},
    {"filename": "link.png"},
    {"filename": "secret.png", "subfolder": "linkdir"},
    {"filename": "x.png", "type": "models"},
    {"filename": "..\\..\\secret.png"},
])
def test_view_refuses_escapes(server, secret, params):
    r = server.get("/view", params=params)
    assert r.status_code in (400, 403, 404)
    assert r.content != secret.read_bytes()


def test_view_refuses_encoded_traversal(server, secret):
    r = server.get("/view?filename=%2E%2E%2F%2E%2E%2Fsecret.png&subfolder=linkdir")
    assert r.status_code in (400, 403, 404)


def test_static_files_refuse_escapes(server):
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd"):
        r = requests.get(server.url + path, timeout=10)
        assert r.status_code in (400, 403, 404)
        assert "root:" not in r.text


# --- uploads -------------------------------------------------------------------------------

def upload(server, data, name, **fields):
    return server.post("/upload/image", files={"image": (name, data, "image/png")}, data=fields)


@pytest.mark.parametrize("name,fields", [
    ("../evil.png", {}),
    ("..", {}),
    ("a/../../evil.png", {}),
    ("/tmp/evil.png", {}),
    ("evil.png", {"subfolder": "../../"}),
    ("evil.png", {"subfolder": "/tmp"}),
    ("evil.png", {"type": "models"}),
])
def test_upload_refuses_escapes(server, name, fields):
    r = upload(server, png_bytes(), name, **fields)
    assert r.status_code == 400
    assert not os.path.exists(os.path.join(server.base_dir, "evil.png"))


def test_upload_refuses_symlinked_subfolder(server, tmp_path):
    os.symlink(tmp_path, os.path.join(server.base_dir, "input", "linked"))
    r = upload(server, png_bytes(), "through.png", subfolder="linked")
    assert r.status_code == 400
    assert not (tmp_path / "through.png").exists()


def test_upload_does_not_write_through_a_symlinked_file(server, tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("keep")
    os.symlink(target, os.path.join(server.base_dir, "input", "victim.png"))
    r = upload(server, png_bytes(), "victim.png", overwrite="true")
    assert r.status_code == 400
    assert target.read_text() == "keep"


@pytest.mark.parametrize("data", [
    b"",
    b"hello, not an image",
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 20,          # PNG magic, broken header
    b"\xff\xd8\xff\xe0" + os.urandom(64),          # JPEG magic, garbage
    b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8,  # WebP magic, no image
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
])
def test_upload_refuses_corrupt_images(server, data):
    r = upload(server, data, "bad.png")
    assert r.status_code == 400
    assert not os.path.exists(os.path.join(server.base_dir, "input", "bad.png"))


def test_upload_without_image_part_or_multipart(server):
    assert server.post("/upload/image", data={"type": "input"}).status_code == 400
    assert server.post("/upload/image", data=b"raw", headers={
        "Content-Type": "multipart/form-data"}).status_code == 400
    assert server.post("/upload/image", data=b"--x\r\nbroken", headers={
        "Content-Type": "multipart/form-data; boundary=x"}).status_code == 400


def test_oversized_upload_is_413_and_server_lives(start_server):
    s = start_server("--max-upload-size", "1")
    big = b"\x89PNG\r\n\x1a\n" + os.urandom(2 * 1024 * 1024)
    r = s.post("/upload/image", files={"image": ("big.png", big, "image/png")})
    assert r.status_code == 413
    assert not os.path.exists(os.path.join(s.base_dir, "input", "big.png"))
    # Chunked bodies are cut off at the same limit.
    r = s.post("/upload/image", data=(big[i:i + 65536] for i in range(0, len(big), 65536)),
               headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413
    assert s.get("/healthz").status_code == 200
    assert s.get("/features").json()["max_upload_size"] == 1024 * 1024
    assert s.alive()


def test_userdata_refuses_escapes(server):
    for path in ("/userdata/..%2F..%2Fescape.json", "/userdata/%2Fetc%2Fpasswd"):
        assert server.post(path, data="x").status_code == 403
        assert server.get(path).status_code == 403
    assert not os.path.exists(os.path.join(server.base_dir, "escape.json"))
    r = server.post("/userdata/a.json/move/..%2F..%2F..%2Fmoved.json")
    assert r.status_code in (403, 404)


# --- auth ----------------------------------------------------------------------------------

TOKEN = "s3cret-token-for-tests"


def test_auth_token_required_and_accepted(start_server):
    s = start_server("--auth-token", TOKEN)
    for path in ("/prompt", "/api/queue", "/object_info", "/", "/system_stats"):
        r = requests.get(s.url + path, timeout=10)
        assert r.status_code == 401, path
        assert r.headers["WWW-Authenticate"] == "Bearer"
    bad = {"Authorization": "Bearer wrong-token-xxxx"}
    assert requests.get(s.url + "/prompt", headers=bad, timeout=10).status_code == 401
    good = {"Authorization": "Bearer " + TOKEN}
    assert requests.get(s.url + "/prompt", headers=good, timeout=10).status_code == 200
    r = requests.post(s.url + "/prompt", json={}, headers=good, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "no_prompt"
    # Probes stay open; the token never shows in /system_stats.
    assert requests.get(s.url + "/healthz", timeout=10).status_code == 200
    argv = requests.get(s.url + "/system_stats", headers=good, timeout=10).json()["system"]["argv"]
    assert TOKEN not in argv
    # A browser opens /?token=... once and then rides on the cookie.
    browser = requests.Session()
    assert browser.get(s.url + "/prompt?token=" + TOKEN, timeout=10).status_code == 200
    assert browser.get(s.url + "/prompt", timeout=10).status_code == 200


def test_auth_on_websocket(start_server):
    s = start_server("--auth-token", TOKEN)
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection("ws://" + s.host_port + "/ws?clientId=a", timeout=10)
    assert e.value.status_code == 401
    ws = websocket.create_connection(
        "ws://" + s.host_port + "/ws?clientId=a&token=" + TOKEN, timeout=10)
    assert '"status"' in ws.recv()
    ws.close()
    ws = websocket.create_connection("ws://" + s.host_port + "/ws?clientId=b", timeout=10,
                                     header=["Authorization: Bearer " + TOKEN])
    assert '"status"' in ws.recv()
    ws.close()


def test_non_loopback_listen_needs_a_token(darkroom_bin, tmp_path, start_server):
    r = subprocess.run([darkroom_bin, "serve", "--listen", "0.0.0.0", "--port", "0",
                        "--base-directory", str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "--auth-token" in r.stderr
    s = start_server("--listen", "0.0.0.0", "--insecure-no-auth")
    assert s.url.startswith("http://0.0.0.0:")
    port = s.url.rsplit(":", 1)[1]
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200


def test_malformed_http_is_refused_and_server_lives(server):
    import socket
    host, port = server.host_port.rsplit(":", 1)
    for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n"):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(raw)
        try:
            reply = s.recv(100)
        except ConnectionResetError:
            reply = b""
        assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
        s.close()


# --- graphs that validate badly or fail while running ---------------------------------------

def test_dependency_cycle(server):
    # 3 (KSampler) → 8 (VAEDecode) → 10 (VAEEncode) → 3: every link has the right type, so
    # only the cycle is wrong.
    p = default_prompt()
    p["10"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["8", 0], "vae": ["4", 2]}}
    p["3"]["inputs"]["latent_image"] = ["10", 0]
    r = post_prompt(server, p)
    assert r.status_code == 400, r.text
    j = r.json()
    assert j["error"]["type"] == "prompt_outputs_failed_validation"
    cycle_errors = [e for ne in j["node_errors"].values() for e in ne["errors"]
                    if e["type"] == "dependency_cycle"]
    assert cycle_errors, j
    assert set(cycle_errors[0]["extra_info"]["cycle_nodes"]) == {"3", "8", "10"}


def test_corrupt_model_file_fails_the_prompt_not_the_server(server):
    # The module's checkpoint file holds "not a real model": validation passes (the name is
    # in the folder), loading fails, the prompt ends in ComfyUI's execution_error and the
    # next request is served.
    r = post_prompt(server, default_prompt())
    assert r.status_code == 200, r.text
    pid = r.json()["prompt_id"]
    entry = None
    for _ in range(600):
        h = server.get(f"/history/{pid}").json()
        if pid in h:
            entry = h[pid]
            break
        time.sleep(0.1)
    assert entry is not None, "the prompt never finished"
    assert entry["status"]["status_str"] == "error"
    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
    assert len(errors) == 1, entry["status"]["messages"]
    assert errors[0]["node_id"] == "4"
    assert errors[0]["node_type"] == "CheckpointLoaderSimple"
    assert CKPT in errors[0]["exception_message"], errors[0]["exception_message"]
    assert server.get("/object_info/KSampler").status_code == 200
