"""The official ComfyUI frontend (pip comfyui_frontend_package) served by darkroom and
driven by headless Chromium (playwright with Debian's /usr/bin/chromium): it loads with a
clean console, and ComfyUI's default text-to-image workflow runs from it to an image the
frontend shows.

(Frontend 1.58's own start graph is a Z-Image Turbo workflow whose loader nodes darkroom
does not have; the test loads ComfyUI's classic SD 1.5 default graph into the frontend and
queues that through the frontend's own queuePrompt, with the tiny single-file SD 1.x
checkpoint of comfy_client.py, a small size and 2 steps so the run ends quickly on a CPU.)"""
import json
import os
import time

import pytest
from playwright.sync_api import sync_playwright

from comfy_client import CKPT_NAME, HEIGHT, VAE_SCALE, WIDTH, default_workflow, png_info

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


def test_frontend_runs_the_default_workflow_and_shows_the_image(start_server, browser,
                                                               tmp_path, install_tiny):
    base = seeded_base(tmp_path)
    install_tiny(base)  # a real (tiny) SD 1.x single-file checkpoint
    s = start_server(base=base)
    page, log = open_frontend(browser, s)
    # ComfyUI's default graph with the tiny checkpoint, a small size and 2 steps: the
    # frontend takes the widget values from the API JSON it loads.
    steps = 2
    wf = default_workflow(steps=steps, prefix="frontend")
    page.evaluate(f"(p) => {APP}.loadApiJson(p, 'default.json')", wf)
    page.wait_for_function(f"() => {APP}.graph._nodes.some(n => n.type === 'KSampler')",
                           timeout=60000)
    widgets = page.evaluate(f"""() => Object.fromEntries({APP}.graph._nodes.map(n =>
        [n.type, Object.fromEntries((n.widgets || []).map(w => [w.name, w.value]))]))""")
    assert widgets["KSampler"]["steps"] == steps
    assert widgets["EmptyLatentImage"]["width"] == WIDTH
    assert widgets["EmptyLatentImage"]["height"] == HEIGHT
    assert widgets["CheckpointLoaderSimple"]["ckpt_name"] == CKPT_NAME
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
    assert classes == sorted(n["class_type"] for n in wf.values())
    assert sent["client_id"]  # the frontend's websocket session
    assert sent["extra_data"]["extra_pnginfo"]["workflow"]["nodes"]
    # The run finishes with a success status in the history.
    deadline = time.time() + 240
    h = {}
    while time.time() < deadline:
        h = s.get(f"/history/{pid}").json()
        if pid in h and h[pid]["status"]["completed"] is not None:
            break
        time.sleep(0.5)
    assert pid in h, "the prompt never reached the history:\n" + s.log()
    entry = h[pid]
    assert entry["prompt"][1] == pid
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_success"
    save_id = next(k for k, n in sent["prompt"].items() if n["class_type"] == "SaveImage")
    images = entry["outputs"][save_id]["images"]
    assert len(images) == 1 and images[0]["type"] == "output"
    assert images[0]["filename"].startswith("frontend")
    # The frontend got the output over its websocket (its "executed" message) ...
    page.wait_for_function(f"() => {APP}.nodeOutputs && {APP}.nodeOutputs[{json.dumps(save_id)}]",
                           timeout=60000)
    got = page.evaluate(f"() => {APP}.nodeOutputs[{json.dumps(save_id)}].images")
    assert got == images
    # ... and shows it on the SaveImage node: the canvas loads a node's images when it draws
    # the node, so the view is centred on it (headless, the default view may not show it),
    # and the node's image element loads the file through /view.
    page.evaluate(f"""() => {{
        const n = {APP}.graph._nodes.find(n => n.type === 'SaveImage');
        {APP}.canvas.centerOnNode(n);
        {APP}.graph.setDirtyCanvas(true, true);
    }}""")
    page.wait_for_function(f"""() => {{
        {APP}.canvas.draw(true, true);
        const n = {APP}.graph._nodes.find(n => n.type === 'SaveImage');
        return n && n.imgs && n.imgs.length > 0 && n.imgs[0].complete &&
               n.imgs[0].naturalWidth > 0;
    }}""", timeout=60000)
    shown = page.evaluate(f"""() => {{
        const img = {APP}.graph._nodes.find(n => n.type === 'SaveImage').imgs[0];
        return {{src: img.src, w: img.naturalWidth, h: img.naturalHeight}};
    }}""")
    assert "/view?" in shown["src"] and images[0]["filename"] in shown["src"], shown
    # The tiny VAE upsamples the 1/8-size latent 2x (comfy_client.py).
    size = (WIDTH // 8 * VAE_SCALE, HEIGHT // 8 * VAE_SCALE)
    assert (shown["w"], shown["h"]) == size
    # The same file through /view is a PNG of that size.
    v = s.get("/view", params={"filename": images[0]["filename"],
                               "subfolder": images[0]["subfolder"], "type": "output"})
    assert v.status_code == 200
    assert v.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_info(v.content)[:2] == size
    time.sleep(1)  # late requests the frontend makes after the run (history, queue)
    assert log.page_errors == []
    assert log.server_errors == []
    assert log.own_console_errors() == []
