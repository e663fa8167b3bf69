"""Webhooks on completion (darkroom serve --webhook-url) through the real server process,
with a real HTTP receiver (python's http.server in a thread) on this machine:

- one POST per finished prompt, with the fields of its /history entry and the right
  status (success, error, interrupted), and client_id null for a prompt without one;
- a receiver that first answers 500 gets the same delivery again (retry with backoff);
- a receiver that is down when the prompt ends gets it once it comes up;
- kill -9 of the server before the delivery: the outbox in the queue database survives,
  and the restarted server delivers it, once.
"""
import http.server
import json
import os
import socket
import threading
import time

import pytest

from comfy_client import WsListener, default_workflow, wait_queue_empty
from conftest import Server


class Receiver:
    """An HTTP server that records every POST body; `answers` are the status codes to give
    (in order; 200 once they run out)."""

    def __init__(self, port=0, answers=()):
        self.posts = []  # (path, parsed JSON body, content type)
        self.answers = list(answers)
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.cond:
                    code = outer.answers.pop(0) if outer.answers else 200
                    outer.posts.append((self.path, json.loads(body),
                                        self.headers.get("Content-Type"), code))
                    outer.cond.notify_all()
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook?from=darkroom"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_posts(self, n, timeout=60):
        end = time.time() + timeout
        with self.cond:
            while len(self.posts) < n:
                left = end - time.time()
                assert left > 0, f"{len(self.posts)} POST(s) within {timeout}s, wanted {n}"
                self.cond.wait(left)
            return list(self.posts)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_prompt(server, prompt, client_id=None):
    body = {"prompt": prompt}
    if client_id is not None:
        body["client_id"] = client_id
    r = server.post("/prompt", json=body)
    assert r.status_code == 200, r.text
    return r.json()["prompt_id"]


def check_matches_history(server, post, prompt_id, status, client_id, before_ms, after_ms):
    path, body, content_type, _ = post
    assert path == "/hook?from=darkroom" and content_type == "application/json"
    assert set(body) == {"prompt_id", "number", "status", "outputs", "client_id",
                         "completed_at"}
    entry = server.get(f"/history/{prompt_id}").json()[prompt_id]
    assert body["prompt_id"] == prompt_id
    assert body["number"] == entry["prompt"][0]
    assert body["status"] == status
    assert body["outputs"] == entry["outputs"]
    assert body["client_id"] == client_id
    assert before_ms <= body["completed_at"] <= after_ms


def test_one_post_per_prompt_with_its_history_fields_and_status(darkroom_bin, tiny_base):
    receiver = Receiver()
    # A file with a checkpoint's name that is not one: validation passes (the name is
    # listed), loading it fails at run time, so the prompt ends with an error.
    with open(os.path.join(tiny_base, "models", "checkpoints", "broken.safetensors"), "wb") as f:
        f.write(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    server = Server(darkroom_bin, tiny_base, ["--webhook-url", receiver.url])
    try:
        # The URL may carry a secret: /system_stats shows the flag, not its value.
        argv = server.get("/system_stats").json()["system"]["argv"]
        assert argv[argv.index("--webhook-url") + 1] == "***" and receiver.url not in argv
        ws = WsListener(server.host_port, "hook-client")
        before = int(time.time() * 1000)
        ok = post_prompt(server, default_workflow(seed=1, steps=2), "hook-client")
        anon = post_prompt(server, default_workflow(seed=2, steps=2))
        broken = default_workflow(seed=3, steps=2)
        broken["4"]["inputs"]["ckpt_name"] = "broken.safetensors"
        bad = post_prompt(server, broken, "hook-client")
        long = post_prompt(server, default_workflow(seed=4, steps=1000), "hook-client")
        ws.wait_for(lambda m: isinstance(m, dict) and m["type"] == "progress"
                    and m["data"]["prompt_id"] == long, timeout=300)
        assert server.post("/interrupt", json={"prompt_id": long}).status_code == 200
        wait_queue_empty(server)
        posts = receiver.wait_posts(4)
        after = int(time.time() * 1000)
        time.sleep(1.0)  # nothing more may come
        assert len(receiver.posts) == 4, receiver.posts
        by_id = {p[1]["prompt_id"]: p for p in posts}
        assert set(by_id) == {ok, anon, bad, long}
        check_matches_history(server, by_id[ok], ok, "success", "hook-client", before, after)
        check_matches_history(server, by_id[anon], anon, "success", None, before, after)
        check_matches_history(server, by_id[bad], bad, "error", "hook-client", before, after)
        check_matches_history(server, by_id[long], long, "interrupted", "hook-client", before,
                              after)
        assert by_id[ok][1]["outputs"]["9"]["images"][0]["filename"].endswith(".png")
        # Delivered in completion order (one dispatcher, an outbox in order).
        assert [p[1]["prompt_id"] for p in posts] == [ok, anon, bad, long]
        ws.close()
        assert server.alive(), server.log()
    finally:
        server.stop()
        receiver.stop()


def test_a_500_answer_is_retried_with_backoff(darkroom_bin, tiny_base):
    receiver = Receiver(answers=[500, 503])
    server = Server(darkroom_bin, tiny_base,
                    ["--webhook-url", receiver.url, "--webhook-backoff", "0.3"])
    try:
        pid = post_prompt(server, default_workflow(seed=5, steps=2), "retry")
        posts = receiver.wait_posts(3)
        time.sleep(1.0)
        assert len(receiver.posts) == 3, receiver.posts
        assert [p[3] for p in posts] == [500, 503, 200]
        assert all(p[1] == posts[0][1] for p in posts)  # the same delivery each time
        assert posts[0][1]["prompt_id"] == pid and posts[0][1]["status"] == "success"
        log = server.log()
        assert "failed (HTTP 500); attempt 2 in 300 ms" in log, log
        assert "failed (HTTP 503); attempt 3 in 600 ms" in log, log
    finally:
        server.stop()
        receiver.stop()


def test_a_4xx_answer_is_final_and_attempts_are_bounded(darkroom_bin, tiny_base):
    receiver = Receiver(answers=[400, 500, 500, 500])
    server = Server(darkroom_bin, tiny_base, ["--webhook-url", receiver.url, "--webhook-backoff",
                                         "0.1", "--webhook-attempts", "3"])
    try:
        refused = post_prompt(server, default_workflow(seed=6, steps=1), "bounded")
        receiver.wait_posts(1)
        failing = post_prompt(server, default_workflow(seed=7, steps=1), "bounded")
        receiver.wait_posts(4)
        time.sleep(1.5)
        ids = [p[1]["prompt_id"] for p in receiver.posts]
        assert ids == [refused, failing, failing, failing], ids
        log = server.log()
        assert f"giving up on prompt {refused}" in log and "after 1 attempt(s): HTTP 400" in log
        assert f"giving up on prompt {failing}" in log and "after 3 attempt(s): HTTP 500" in log
    finally:
        server.stop()
        receiver.stop()


def test_delivery_waits_for_a_receiver_that_is_down(darkroom_bin, tiny_base):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook?from=darkroom"
    server = Server(darkroom_bin, tiny_base, ["--webhook-url", url, "--webhook-backoff", "0.2"])
    receiver = None
    try:
        pid = post_prompt(server, default_workflow(seed=8, steps=2), "late")
        wait_queue_empty(server)
        end = time.time() + 30
        while "Connection refused" not in server.log():
            assert time.time() < end, server.log()
            time.sleep(0.1)
        receiver = Receiver(port=port)
        posts = receiver.wait_posts(1, timeout=30)
        time.sleep(1.0)
        assert len(receiver.posts) == 1
        assert posts[0][1]["prompt_id"] == pid and posts[0][1]["status"] == "success"
    finally:
        server.stop()
        if receiver:
            receiver.stop()


def test_an_undelivered_webhook_survives_kill_9_and_is_delivered_once(darkroom_bin, tiny_base):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook?from=darkroom"
    args = ["--webhook-url", url, "--webhook-backoff", "0.3"]
    first = Server(darkroom_bin, tiny_base, args)
    pid = post_prompt(first, default_workflow(seed=9, steps=2), "durable")
    wait_queue_empty(first)
    end = time.time() + 30
    while "Connection refused" not in first.log():
        assert time.time() < end, first.log()
        time.sleep(0.1)
    entry = first.get(f"/history/{pid}").json()[pid]
    first.kill()  # SIGKILL: nothing of the shutdown path runs

    receiver = Receiver(port=port)
    second = Server(darkroom_bin, tiny_base, args)
    try:
        posts = receiver.wait_posts(1, timeout=30)
        time.sleep(1.5)
        assert len(receiver.posts) == 1, receiver.posts
        body = posts[0][1]
        assert body["prompt_id"] == pid and body["status"] == "success"
        assert body["outputs"] == entry["outputs"] and body["number"] == entry["prompt"][0]
        assert "1 delivery(ies) left from the last run" in second.log()
        # Delivered entries leave the outbox: a third start sends nothing again.
        second.stop()
        third = Server(darkroom_bin, tiny_base, args)
        time.sleep(1.5)
        third.stop()
        assert len(receiver.posts) == 1, receiver.posts
    finally:
        second.stop()
        receiver.stop()


@pytest.mark.parametrize("url,why", [
    ("https://example.com/hook", "https is not supported yet"),
    ("ftp://example.com/hook", "is not an http:// URL"),
    ("http://:80/hook", "has no host"),
    ("http://localhost:99999/hook", "is not a port"),
])
def test_a_bad_webhook_url_stops_the_server_at_start(start_server, url, why):
    with pytest.raises(RuntimeError) as e:
        start_server("--webhook-url", url)
    assert why in str(e.value)
