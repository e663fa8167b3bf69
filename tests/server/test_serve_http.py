#!/usr/bin/env python3
"""Starts the real `darkroom serve` process on a free port and talks HTTP to it.

Usage: test_serve_http.py PATH_TO_DARKROOM
"""
import json
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

DARKROOM = sys.argv.pop(1) if len(sys.argv) > 1 else "build/darkroom"


class ServeHttp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen([DARKROOM, "serve", "--port", "0"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        line = cls.proc.stdout.readline()
        if "listening on" not in line:
            cls.proc.kill()
            raise RuntimeError("server did not start: " + line + cls.proc.stderr.read())
        cls.base = line.strip().split("listening on ")[1]

    @classmethod
    def tearDownClass(cls):
        cls.proc.kill()
        cls.proc.wait()

    def get(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as r:
                return r.status, r.headers.get("Content-Type"), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode()

    def test_healthz(self):
        self.assertEqual(self.get("/healthz")[0], 200)

    def test_system_stats_has_comfyui_shape_with_and_without_api_prefix(self):
        for path in ("/system_stats", "/api/system_stats"):
            status, ctype, body = self.get(path)
            self.assertEqual(status, 200)
            self.assertEqual(ctype, "application/json")
            j = json.loads(body)
            self.assertGreater(j["system"]["ram_total"], 0)
            self.assertIn("argv", j["system"])
            self.assertEqual(j["devices"][0]["type"], "cpu")
            self.assertIn("oneDNN", j["devices"][0]["name"])

    def test_unknown_route_is_404_json_and_server_keeps_serving(self):
        status, _, body = self.get("/no/such/route")
        self.assertEqual(status, 404)
        self.assertIn("no route /no/such/route", json.loads(body)["error"]["message"])
        self.assertEqual(self.get("/healthz")[0], 200)

    def test_bad_port_is_a_clear_error(self):
        r = subprocess.run([DARKROOM, "serve", "--port", "99999"], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("[serve] --port '99999' is not a port number", r.stderr)


if __name__ == "__main__":
    unittest.main()
