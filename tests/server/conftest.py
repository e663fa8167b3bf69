"""Fixtures for the server tests: the real `darkroom serve` process on a free port.

    python3 -m pytest -q tests/server --darkroom build/darkroom

Each server gets a fresh --base-directory under pytest's tmp_path, so tests see
ComfyUI's folder layout (models/, input/, output/, temp/, user/) and nothing else.
"""
import os
import subprocess
import threading

import pytest
import requests

from comfy_client import install_tiny_checkpoint


def pytest_addoption(parser):
    parser.addoption("--darkroom", default=os.environ.get("DARKROOM", "build/darkroom"),
                     help="path to the darkroom executable")


@pytest.fixture(scope="session")
def darkroom_bin(request):
    path = os.path.abspath(request.config.getoption("--darkroom"))
    assert os.access(path, os.X_OK), f"no darkroom executable at {path} (pass --darkroom PATH)"
    return path


class Server:
    """A running `darkroom serve`; `url` is http://HOST:PORT."""

    def __init__(self, binary, base_dir, args=(), env=None):
        self.base_dir = str(base_dir)
        os.makedirs(self.base_dir, exist_ok=True)
        self.log_path = os.path.join(self.base_dir, "server.log")
        self._log = open(self.log_path, "w")
        cmd = [binary, "serve", "--port", "0", "--base-directory", self.base_dir, *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     env=env)
        self.url = None
        line_box = []
        reader = threading.Thread(target=lambda: line_box.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(60)
        line = line_box[0] if line_box else ""
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r}\n{self.log()}")
        self.url = line.strip().split("listening on ", 1)[1]
        self.host_port = self.url.split("://", 1)[1]
        self.session = requests.Session()

    def log(self):
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL (no shutdown code runs); waits for the process and closes its log."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def start_server(darkroom_bin, tmp_path):
    """start_server(*args, base=None, env=None) → Server; all are stopped after the test."""
    started = []

    def start(*args, base=None, env=None):
        s = Server(darkroom_bin, base or tmp_path / f"base{len(started)}", args, env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def server(darkroom_bin, tmp_path_factory):
    """One server per test module (no auth, loopback)."""
    s = Server(darkroom_bin, tmp_path_factory.mktemp("darkroom"))
    yield s
    assert s.alive(), "the server died during the tests:\n" + s.log()
    s.stop()


@pytest.fixture(scope="session")
def install_tiny(tmp_path_factory):
    """install_tiny(base_dir): comfy_client's tiny SD 1.x checkpoint (built once per session)
    under base_dir/models/checkpoints."""
    cache = tmp_path_factory.getbasetemp() / "tiny-ckpt"
    cache.mkdir(exist_ok=True)
    return lambda base_dir: install_tiny_checkpoint(base_dir, cache)


@pytest.fixture
def tiny_base(tmp_path_factory, install_tiny):
    """A fresh --base-directory that holds the tiny checkpoint."""
    base = tmp_path_factory.mktemp("tiny-base")
    install_tiny(base)
    return base
