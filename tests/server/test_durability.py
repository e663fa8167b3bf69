"""The queue survives kill -9: 20 prompts are queued, the server is SIGKILLed while one of
them runs, and a new server on the same base directory (the same SQLite queue database in
user/) finishes them all. Every prompt acknowledged by POST /prompt ends in /history
exactly once, successful, with its original queue number; the pending ones run in queue
order (SaveImage's file counter shows the order they ran in).
"""
import os
import re

from comfy_client import WsListener, default_workflow, history_pairs, png_info, wait_queue_empty
from conftest import Server

N = 20
STEPS = 8


def test_queue_survives_kill_9_while_a_prompt_runs(darkroom_bin, tiny_base):
    base = tiny_base
    first = Server(darkroom_bin, base)
    ws = WsListener(first.host_port, "durability")
    submitted = {}  # prompt_id -> queue number
    for seed in range(N):
        r = first.post("/prompt", json={"prompt": default_workflow(seed=1000 + seed, steps=STEPS),
                                        "client_id": "durability"})
        assert r.status_code == 200, r.text
        submitted[r.json()["prompt_id"]] = r.json()["number"]
    assert sorted(submitted.values()) == list(range(N))

    # Kill in the sampler of the third prompt: two are done, one runs, 17 wait.
    by_number = sorted(submitted, key=submitted.get)
    running = by_number[2]
    ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress"
                and m["data"]["prompt_id"] == running and m["data"]["value"] == 1, timeout=300)
    first.kill()  # SIGKILL: no shutdown code runs
    ws.close()
    with open(first.log_path) as f:
        assert "stopping" not in f.read()  # it died without running its shutdown path

    second = Server(darkroom_bin, base)
    try:
        wait_queue_empty(second, timeout=600)
        assert second.get("/queue").json() == {"queue_running": [], "queue_pending": []}

        pairs = history_pairs(second)  # a prompt in /history twice would show twice
        ids = [k for k, _ in pairs]
        assert len(ids) == len(set(ids)), "a prompt is in /history twice"
        assert set(ids) == set(submitted), "lost or unknown prompts"
        entries = dict(pairs)
        ran_at = {}
        for pid, entry in entries.items():
            e = dict(entry)
            prompt = e["prompt"]
            assert prompt[1] == pid and prompt[0] == submitted[pid]
            status = dict(e["status"])
            assert status["status_str"] == "success", (pid, status)
            images = [dict(i) for i in dict(dict(e["outputs"])["9"])["images"]]
            assert len(images) == 1
            name = images[0]["filename"]
            ran_at[pid] = int(re.fullmatch(r"ComfyUI_(\d{5})_\.png", name).group(1))
            with open(os.path.join(base, "output", name), "rb") as f:
                png_info(f.read())
        assert len(set(ran_at.values())) == N, "two prompts claim the same image file"
        # Queue order: by number, the image counter only grows (the prompt re-run after
        # the crash may have saved an image before it, hence "grows", not "+1").
        counters = [ran_at[p] for p in by_number]
        assert counters == sorted(counters), counters
        assert f"prompt {running} was running when the server stopped; running it again" \
            in second.log()
        outputs = os.listdir(os.path.join(base, "output"))
        assert len(outputs) in (N, N + 1), outputs  # +1: the killed run saved its image
        assert second.alive()
    finally:
        second.stop()
