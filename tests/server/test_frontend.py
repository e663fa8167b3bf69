"""The official ComfyUI frontend (pip comfyui_frontend_package) served by darkroom and
driven by headless Chromium (playwright with Debian's /usr/bin/chromium): it loads with a
clean console, and ComfyUI's default text-to-image workflow queues from it.

(Frontend 1.58's own start graph is a Z-Image Turbo workflow whose loader nodes darkroom
does not have; the test loads ComfyUI's classic SD 1.5 default graph into the frontend and
queues that through the frontend's own queuePrompt.)"""
import json
import os
import time

import pytest
from playwright.sync_api import sync_playwright

from comfy_prompts import CKPT, default_prompt

CHROMIUM = "/usr/bin/chromium"
APP = "window.comfyAPI.app.app"


@pytest.fixture
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class PageLog:
    """Console errors, page errors and failed requests of one page."""

    def __init__(self, page, origin):
        self.origin = origin
        self.console_errors = []
        self.page_errors = []
        self.external_failures = []
        self.server_errors = []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _failed(self, request):
        if not request.url.startswith(self.origin):
            self.external_failures.append(request.url)

    def _response(self, response):
        if response.url.startswith(self.origin) and response.status >= 400:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")

    def own_console_errors(self):
        # The frontend looks for updates on api.comfy.org; this machine may have no internet.
        # Those failures are the network's, and are listed apart in external_failures.
        errs = self.console_errors
        if self.external_failures:
            errs = [e for e in errs if "net::ERR_" not in e]
        return errs


def seeded_base(tmp_path):
    """A base directory whose user has finished the first-run tour (otherwise the frontend
    opens its template browser instead of a graph)."""
    base = tmp_path / "fe"
    os.makedirs(base / "user" / "default")
    (base / "user" / "default" / "comfy.settings.json").write_text(
        json.dumps({"Comfy.TutorialCompleted": True}))
    return base


def open_frontend(browser, server):
    page = browser.new_page()
    log = PageLog(page, server.url)
    page.goto(server.url + "/", wait_until="networkidle", timeout=120000)
    page.wait_for_function(f"() => window.comfyAPI && {APP} && {APP}.graph && "
                           f"{APP}.graph._nodes.length > 0", timeout=120000)
    time.sleep(5)  # late requests (queue, history, model library)
    return page, log


def test_frontend_loads_with_clean_console(start_server, browser, tmp_path):
    s = start_server(base=seeded_base(tmp_path))
    page, log = open_frontend(browser, s)
    assert "ComfyUI" in page.title()
    assert log.page_errors == []
    assert log.server_errors == []
    assert log.own_console_errors() == []
    # The static files come with their types.
    r = s.get("/")
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-cache"
    js = [a for a in page.evaluate(
        "() => Array.from(document.scripts).map(s => s.src).filter(s => s)")]
    assert js, "index.html loads no scripts"
    r = s.get(js[0][len(s.url):])
    assert r.headers["Content-Type"] == "application/javascript; charset=utf-8"


def test_frontend_queues_the_default_workflow(start_server, browser, tmp_path):
    base = seeded_base(tmp_path)
    os.makedirs(base / "models" / "checkpoints")
    # A stand-in checkpoint: enough for validation and for the queue; loading it fails,
    # which ends the run with an execution error in the history.
    (base / "models" / "checkpoints" / CKPT).write_bytes(b"stand-in")
    s = start_server(base=base)
    page, log = open_frontend(browser, s)
    page.evaluate(f"(p) => {APP}.loadApiJson(p, 'default.json')", default_prompt())
    page.wait_for_function(f"() => {APP}.graph._nodes.some(n => n.type === 'KSampler')",
                           timeout=60000)
    with page.expect_response(lambda r: r.url.endswith("/api/prompt") and
                              r.request.method == "POST", timeout=60000) as resp:
        page.evaluate(f"() => {APP}.queuePrompt(0, 1)")
    r = resp.value
    assert r.status == 200, r.text()
    body = r.json()
    assert body["node_errors"] == {}
    pid = body["prompt_id"]
    sent = r.request.post_data_json
    classes = sorted(n["class_type"] for n in sent["prompt"].values())
    assert classes == sorted(n["class_type"] for n in default_prompt().values())
    assert sent["client_id"]  # the frontend's websocket session
    assert sent["extra_data"]["extra_pnginfo"]["workflow"]["nodes"]
    # The run reaches the history (ending in the stand-in checkpoint's load error).
    deadline = time.time() + 120
    h = {}
    while time.time() < deadline:
        h = s.get(f"/history/{pid}").json()
        if pid in h:
            break
        time.sleep(0.5)
    assert pid in h
    assert h[pid]["prompt"][1] == pid
    assert log.page_errors == []
    assert log.server_errors == []
