"""Ten clients at once, each with its own websocket (clientId), each posting its own prompt
and waiting for its own result. ComfyUI sends a prompt's execution messages to the client
that queued it only, so no client may see another's prompt_id; every prompt ends in
/history with its own image.
"""
import threading

import requests

from comfy_client import WsListener, default_workflow, of_prompt, png_info
from conftest import Server

CLIENTS = 10


def test_ten_clients_each_get_their_own_result(darkroom_bin, tiny_base):
    server = Server(darkroom_bin, tiny_base)
    try:
        barrier = threading.Barrier(CLIENTS)
        results = [None] * CLIENTS
        errors = []

        def client(i):
            try:
                ws = WsListener(server.host_port, f"client-{i}")
                ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "status")
                barrier.wait(60)
                r = requests.post(server.url + "/prompt", timeout=60, json={
                    "prompt": default_workflow(seed=500 + i, steps=3,
                                               positive=f"client {i}", prefix=f"client{i}"),
                    "client_id": ws.client_id})
                assert r.status_code == 200, r.text
                pid = r.json()["prompt_id"]
                msgs = ws.wait_done(pid, timeout=600)
                ws.close()
                results[i] = (ws.client_id, pid, msgs)
            except BaseException as e:  # reported by the main thread
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(900)
        assert not errors, errors
        pids = [r[1] for r in results]
        assert len(set(pids)) == CLIENTS
        for i, (cid, pid, msgs) in enumerate(results):
            json_msgs = [m for m in msgs if isinstance(m, dict)]
            foreign = {m["data"]["prompt_id"] for m in json_msgs
                       if "prompt_id" in m["data"]} - {pid}
            assert not foreign, f"client {i} got messages of {foreign}"
            mine = of_prompt(json_msgs, pid)
            assert [m["type"] for m in mine][0] == "execution_start"
            assert [m["type"] for m in mine][-2:] == ["execution_success", "executing"]
            assert [m["data"]["value"] for m in mine if m["type"] == "progress"] == [1, 2, 3]
            executed = [m["data"] for m in mine if m["type"] == "executed"]
            assert len(executed) == 1 and executed[0]["node"] == "9"
            image = executed[0]["output"]["images"][0]
            assert image["filename"].startswith(f"client{i}_")
            entry = server.get(f"/history/{pid}").json()[pid]
            assert entry["status"]["status_str"] == "success"
            assert entry["prompt"][3]["client_id"] == cid
            assert entry["outputs"]["9"]["images"] == [image]
            r = server.get("/view", params={"filename": image["filename"], "type": "output"})
            assert r.status_code == 200
            png_info(r.content)
        assert len(server.get("/history").json()) == CLIENTS
        assert server.get("/queue").json() == {"queue_running": [], "queue_pending": []}
        assert server.alive(), server.log()
    finally:
        server.stop()
