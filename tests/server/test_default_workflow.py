"""ComfyUI's default API workflow (basic_api_example.py) through the real server, as a plain
client sees it: POST /prompt, the /ws message stream, GET /history/{id}, GET /view.

The expected messages, their order and recipients, and the history entry's shape are
ComfyUI's (server.py, execution.py, main.py); see comfy_client.py for the tiny model.
"""
import json
import os
import re
import time

import pytest

from comfy_client import HEIGHT, VAE_SCALE, WIDTH, WsListener, default_workflow, of_prompt, png_info
from conftest import Server

ALL_NODES = {"3", "4", "5", "6", "7", "8", "9"}


@pytest.fixture(scope="module")
def server(darkroom_bin, tmp_path_factory, install_tiny):
    base = tmp_path_factory.mktemp("base")
    install_tiny(base)
    s = Server(darkroom_bin, base)
    yield s
    assert s.alive(), "the server died during the tests:\n" + s.log()
    s.stop()


def post_prompt(server, prompt, client_id=None, **extra):
    body = {"prompt": prompt, **extra}
    if client_id is not None:
        body["client_id"] = client_id
    r = server.post("/prompt", json=body)
    assert r.status_code == 200, r.text
    j = r.json()
    assert set(j) == {"prompt_id", "number", "node_errors"} and j["node_errors"] == {}, j
    return j


def types_of(messages):
    return [m["type"] for m in messages]


def executing_nodes(messages):
    return [m["data"]["node"] for m in messages
            if m["type"] == "executing" and m["data"]["node"] is not None]


def test_default_workflow_runs_and_reports_like_comfyui(server):
    ws = WsListener(server.host_port)
    greeting = ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "status")[-1]
    assert greeting["data"]["sid"] == ws.client_id
    steps = 4
    wf = default_workflow(steps=steps)
    posted = post_prompt(server, wf, ws.client_id)
    pid = posted["prompt_id"]
    all_msgs = ws.wait_done(pid)
    mine = of_prompt(all_msgs, pid)
    t = types_of(mine)

    assert t[0] == "execution_start"
    assert t[1] == "execution_cached" and mine[1]["data"]["nodes"] == []
    assert t[-2:] == ["execution_success", "executing"]
    assert mine[-1]["data"] == {"node": None, "prompt_id": pid}
    for m in mine:
        if m["type"].startswith("execution_"):
            assert isinstance(m["data"]["timestamp"], int), m

    # Every node once, in an order the graph allows.
    order = executing_nodes(mine)
    assert sorted(order) == sorted(ALL_NODES), order
    pos = {n: order.index(n) for n in order}
    assert pos["4"] < pos["6"] and pos["4"] < pos["7"]
    assert max(pos["4"], pos["5"], pos["6"], pos["7"]) < pos["3"] < pos["8"] < pos["9"]
    for m in mine:
        if m["type"] == "executing" and m["data"]["node"] is not None:
            assert m["data"]["display_node"] == m["data"]["node"]

    # The sampler's progress: node 3, 1..steps of steps, between executing 3 and 8.
    idx = {i for i, m in enumerate(mine) if m["type"] == "progress"}
    prog = [mine[i]["data"] for i in sorted(idx)]
    assert [p["value"] for p in prog] == list(range(1, steps + 1))
    assert all(p["max"] == steps and p["node"] == "3" for p in prog)
    i3 = next(i for i, m in enumerate(mine) if m["type"] == "executing" and m["data"]["node"] == "3")
    i8 = next(i for i, m in enumerate(mine) if m["type"] == "executing" and m["data"]["node"] == "8")
    assert all(i3 < i < i8 for i in idx)

    executed = [m["data"] for m in mine if m["type"] == "executed"]
    assert len(executed) == 1 and executed[0]["node"] == "9" and executed[0]["display_node"] == "9"
    images = executed[0]["output"]["images"]
    assert len(images) == 1
    assert images[0]["subfolder"] == "" and images[0]["type"] == "output"
    assert re.fullmatch(r"ComfyUI_\d{5}_\.png", images[0]["filename"]), images

    # Previews: binary frames, event 1 (PREVIEW_IMAGE), format 1 = JPEG / 2 = PNG.
    frames = [m for m in all_msgs if isinstance(m, bytes)]
    assert frames, "no preview frames (serve's default --preview-method is auto)"
    for f in frames:
        assert f[:4] == b"\x00\x00\x00\x01"
        fmt = int.from_bytes(f[4:8], "big")
        assert (fmt, f[8:10]) in ((1, b"\xff\xd8"), (2, b"\x89P")), f[:12]

    # Queue status: broadcast when it changes; 0 remaining before "executing null".
    statuses = [m for m in all_msgs if isinstance(m, dict) and m["type"] == "status"]
    assert any(s["data"]["status"]["exec_info"]["queue_remaining"] >= 1 for s in statuses)
    assert statuses[-1]["data"]["status"]["exec_info"]["queue_remaining"] == 0

    # The history entry, exactly ComfyUI's shape.
    for prefix in ("", "/api"):
        h = server.get(f"{prefix}/history/{pid}").json()
        assert list(h) == [pid]
        e = h[pid]
        assert set(e) == {"prompt", "outputs", "status", "meta"}
        number, hid, hprompt, extra, outputs = e["prompt"]
        assert (number, hid, hprompt, outputs) == (posted["number"], pid, wf, ["9"])
        assert extra["client_id"] == ws.client_id
        assert e["outputs"] == {"9": executed[0]["output"]}
        assert e["status"]["status_str"] == "success" and e["status"]["completed"] is True
        assert [m[0] for m in e["status"]["messages"]] == [
            "execution_start", "execution_cached", "execution_success"]
        assert all(m[1]["prompt_id"] == pid for m in e["status"]["messages"])
        assert e["meta"] == {"9": {"node_id": "9", "display_node": "9", "parent_node": None,
                                   "real_node_id": "9"}}

    # The image: served by /view, the file in output/, the prompt in its tEXt chunk.
    r = server.get("/view", params={"filename": images[0]["filename"], "subfolder": "",
                                    "type": "output"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    w, h, ctype, texts = png_info(r.content)
    assert (w, h, ctype) == (WIDTH // 8 * VAE_SCALE, HEIGHT // 8 * VAE_SCALE, 2)
    assert json.loads(texts["prompt"]) == wf
    with open(os.path.join(server.base_dir, "output", images[0]["filename"]), "rb") as f:
        assert f.read() == r.content
    q = server.get("/queue").json()
    assert q == {"queue_running": [], "queue_pending": []}
    ws.close()


def test_changed_seed_reruns_only_the_sampler_and_what_follows(server):
    ws = WsListener(server.host_port)
    first = post_prompt(server, default_workflow(seed=11), ws.client_id)["prompt_id"]
    ws.wait_done(first)
    pid = post_prompt(server, default_workflow(seed=12), ws.client_id)["prompt_id"]
    mine = of_prompt(ws.wait_done(pid), pid)
    cached = [m["data"]["nodes"] for m in mine if m["type"] == "execution_cached"]
    assert len(cached) == 1 and sorted(cached[0]) == ["4", "5", "6", "7"]
    assert executing_nodes(mine) == ["3", "8", "9"]
    h1 = server.get(f"/history/{first}").json()[first]["outputs"]["9"]["images"][0]["filename"]
    h2 = server.get(f"/history/{pid}").json()[pid]["outputs"]["9"]["images"][0]["filename"]
    assert h1 != h2
    ws.close()


def test_prompt_without_client_id_broadcasts_only_what_comfyui_broadcasts(server):
    watcher = WsListener(server.host_port)
    watcher.wait_for(lambda m: isinstance(m, dict) and m["type"] == "status")
    pid = post_prompt(server, default_workflow(seed=21, steps=3))["prompt_id"]
    # No client: executing/executed/execution_* go nowhere, progress goes to everyone.
    watcher.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress"
                     and m["data"]["prompt_id"] == pid and m["data"]["value"] == 3)
    deadline = time.time() + 60
    while time.time() < deadline:
        h = server.get(f"/history/{pid}").json()
        if pid in h:
            break
        time.sleep(0.1)
    assert h[pid]["status"]["status_str"] == "success"
    time.sleep(0.5)  # anything sent after the history commit has arrived by now
    seen = {m["type"] for m in of_prompt(watcher.messages, pid)}
    assert seen == {"progress"}, seen
    assert "client_id" not in h[pid]["prompt"][3]
    watcher.close()


def test_interrupt_stops_only_the_targeted_prompt_and_delete_drops_a_pending_one(server):
    ws = WsListener(server.host_port)
    # New prompt texts: the encoders run (are not cached) in this prompt.
    long_wf = default_workflow(seed=31, steps=1000, positive="a long one", negative="stop it")
    p1 = post_prompt(server, long_wf, ws.client_id)["prompt_id"]
    p2 = post_prompt(server, default_workflow(seed=32, steps=2), ws.client_id)["prompt_id"]
    p3 = post_prompt(server, default_workflow(seed=33, steps=2), ws.client_id)["prompt_id"]
    ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress"
                and m["data"]["prompt_id"] == p1 and m["data"]["value"] >= 2)
    # Interrupting a prompt that is not running touches nothing.
    assert server.post("/interrupt", json={"prompt_id": p2}).status_code == 200
    q = server.get("/queue").json()
    assert [i[1] for i in q["queue_running"]] == [p1]
    assert [i[1] for i in q["queue_pending"]] == [p2, p3]
    assert q["queue_running"][0][2] == long_wf
    # POST /queue {"delete"} drops a pending prompt.
    assert server.post("/queue", json={"delete": [p3]}).status_code == 200
    assert [i[1] for i in server.get("/queue").json()["queue_pending"]] == [p2]
    assert server.post("/interrupt", json={"prompt_id": p1}).status_code == 200
    mine1 = of_prompt(ws.wait_done(p1), p1)
    intr = [m["data"] for m in mine1 if m["type"] == "execution_interrupted"]
    assert len(intr) == 1
    assert intr[0]["node_id"] == "3" and intr[0]["node_type"] == "KSampler"
    # "executed": what ran in this prompt before the interrupt, not what came from cache.
    cached = next(m["data"]["nodes"] for m in mine1 if m["type"] == "execution_cached")
    assert {"6", "7"}.isdisjoint(cached)
    assert sorted(intr[0]["executed"]) == sorted({"4", "5", "6", "7"} - set(cached))
    e1 = server.get(f"/history/{p1}").json()[p1]
    assert e1["status"]["status_str"] == "error" and e1["status"]["completed"] is False
    assert e1["status"]["messages"][-1][0] == "execution_interrupted"
    # The next prompt runs normally; the deleted one never runs.
    ws.wait_done(p2)
    assert server.get(f"/history/{p2}").json()[p2]["status"]["status_str"] == "success"
    assert server.get(f"/history/{p3}").json() == {}
    assert not of_prompt(ws.messages, p3)
    ws.close()
