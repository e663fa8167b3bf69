"""Per-client queue limits (darkroom serve --max-queued-per-client N) through the real
server process. The one worker is kept busy by a 1000-step prompt on the tiny model, so
what each client has queued stays put while the test posts; it is interrupted at the end.

- a client at N pending + running prompts gets 429 with ComfyUI's error shape, and the
  refused prompt is not stored; other clients are unaffected;
- prompts without a client_id share one anonymous client;
- the count drops as prompts end (interrupted, deleted from the queue, finished);
- after kill -9 and a restart, the recovered prompts still count.
"""
from comfy_client import WsListener, default_workflow, wait_queue_empty
from conftest import Server

LIMIT = 2


def submit(server, client_id, steps=1, seed=0):
    body = {"prompt": default_workflow(seed=seed, steps=steps)}
    if client_id is not None:
        body["client_id"] = client_id
    return server.post("/prompt", json=body)


def accepted(server, client_id, steps=1, seed=0):
    r = submit(server, client_id, steps, seed)
    assert r.status_code == 200, r.text
    return r.json()["prompt_id"]


def check_refused(server, client_id):
    queued_before = server.get("/queue").json()
    r = submit(server, client_id, seed=99)
    assert r.status_code == 429, r.text
    body = r.json()
    assert set(body) == {"error", "node_errors"} and body["node_errors"] == {}
    error = body["error"]
    assert set(error) == {"type", "message", "details", "extra_info"}
    assert error["type"] == "queue_limit" and error["extra_info"] == {}
    who = f"client '{client_id}'" if client_id else "prompts without a client_id"
    assert error["details"].startswith(f"{who} has {LIMIT} prompt(s) pending or running")
    assert server.get("/queue").json() == queued_before  # nothing was stored


def queued_ids(server):
    q = server.get("/queue").json()
    return [item[1] for item in q["queue_running"] + q["queue_pending"]]


def busy(server, ws, client_id):
    """Queues the 1000-step prompt for `client_id` and waits until it samples."""
    pid = accepted(server, client_id, steps=1000)
    ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress"
                and m["data"]["prompt_id"] == pid, timeout=300)
    return pid


def test_a_client_at_its_limit_gets_429_and_others_are_unaffected(darkroom_bin, tiny_base):
    server = Server(darkroom_bin, tiny_base, ["--max-queued-per-client", str(LIMIT)])
    try:
        ws = WsListener(server.host_port, "alice")
        long = busy(server, ws, "alice")
        a2 = accepted(server, "alice", steps=1000)  # runs next, for long enough
        check_refused(server, "alice")
        check_refused(server, "alice")  # still refused: a refusal does not count itself

        b = [accepted(server, "bob", seed=i) for i in range(LIMIT)]
        check_refused(server, "bob")
        anon = [accepted(server, None, seed=i) for i in range(LIMIT)]
        check_refused(server, None)
        r = submit(server, "")  # an empty client_id is no client_id
        assert r.status_code == 429, r.text
        assert set(queued_ids(server)) == {long, a2, *b, *anon}

        # Deleting a pending prompt frees a place at once.
        assert server.post("/queue", json={"delete": [b[0]]}).status_code == 200
        b.append(accepted(server, "bob", seed=7))
        check_refused(server, "bob")

        # Ending the running prompt frees alice's place once it is in history (a2 runs now).
        assert server.post("/interrupt", json={"prompt_id": long}).status_code == 200
        ws.wait_done(long)
        a3 = accepted(server, "alice", seed=3)
        check_refused(server, "alice")
        ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress"
                    and m["data"]["prompt_id"] == a2)
        assert server.post("/interrupt", json={"prompt_id": a2}).status_code == 200

        wait_queue_empty(server)
        # Everything finished: each client has its full allowance again.
        fresh = [accepted(server, "alice", seed=10 + i) for i in range(LIMIT)]
        wait_queue_empty(server)
        history = server.get("/history").json()
        assert set(history) == {long, a2, a3, *b[1:], *anon, *fresh}
        assert server.get("/metrics").status_code == 200
        ws.close()
        assert server.alive(), server.log()
    finally:
        server.stop()


def test_recovered_prompts_count_after_kill_9(darkroom_bin, tiny_base):
    args = ["--max-queued-per-client", str(LIMIT)]
    first = Server(darkroom_bin, tiny_base, args)
    ws = WsListener(first.host_port, "carol")
    long = busy(first, ws, "carol")
    pending = accepted(first, "carol")
    check_refused(first, "carol")
    first.kill()  # SIGKILL: nothing of the shutdown path runs
    ws.close()

    second = Server(darkroom_bin, tiny_base, args)
    try:
        # The recovered running prompt runs again (1000 steps), the other waits: carol is
        # at her limit from the first request on.
        assert set(queued_ids(second)) == {long, pending}
        check_refused(second, "carol")
        assert submit(second, "dave").status_code == 200
        assert second.post("/queue", json={"clear": True}).status_code == 200
        assert second.post("/interrupt", json={"prompt_id": long}).status_code == 200
        wait_queue_empty(second)
        assert accepted(second, "carol")
        wait_queue_empty(second)
    finally:
        second.stop()


def test_without_the_flag_there_is_no_limit(darkroom_bin, tiny_base):
    server = Server(darkroom_bin, tiny_base)
    try:
        ws = WsListener(server.host_port, "erin")
        long = busy(server, ws, "erin")
        for i in range(5):
            accepted(server, "erin", seed=i)
        assert server.post("/queue", json={"clear": True}).status_code == 200
        assert server.post("/interrupt", json={"prompt_id": long}).status_code == 200
        wait_queue_empty(server)
        ws.close()
    finally:
        server.stop()
