#!/usr/bin/env python3
"""Smoke test of `darkroom serve` as a plain ComfyUI API client would use it.

Starts `darkroom serve --port 0 --base-directory BASE` (plus --device-args, by default
`--cuda-device 0`), puts the checkpoint into BASE/models/checkpoints/ (hard link, else a
copy), posts ComfyUI's default API workflow (script_examples/basic_api_example.py: KSampler
3, CheckpointLoaderSimple 4, EmptyLatentImage 5, CLIPTextEncode 6/7, VAEDecode 8, SaveImage
9) once per seed, polls /history/{prompt_id} until each is done, fetches every saved image
through /view and checks its PNG signature (and its size: width x height, unless
--no-size-check), prints the seconds each prompt took, and exits non-zero on any failure.

Standard library only (the GPU machine has no requests or websocket-client).

  tools/serve_smoke.py --darkroom build/darkroom                       # 512², 20 steps, cuda:0
  tools/serve_smoke.py --darkroom build/darkroom --device-args=--cpu --width 64 --height 64 --steps 1
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def workflow(ckpt_name, seed, steps, width, height):
    """basic_api_example.py's prompt with our checkpoint, seed, steps and size."""
    return {
        "3": {"class_type": "KSampler",
              "inputs": {"cfg": 8, "denoise": 1, "latent_image": ["5", 0], "model": ["4", 0],
                         "negative": ["7", 0], "positive": ["6", 0], "sampler_name": "euler",
                         "scheduler": "normal", "seed": seed, "steps": steps}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"batch_size": 1, "height": height, "width": width}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"clip": ["4", 1], "text": "masterpiece best quality girl"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "bad hands"}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": f"smoke_{seed}", "images": ["8", 0]}},
    }


def request(base_url, path, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url + path, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def start_server(args):
    cmd = [args.darkroom, "serve", "--port", "0", "--base-directory", args.base_directory,
           *shlex.split(args.device_args)]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    # stderr (the server's log) goes where ours goes; stdout has the "listening on" line.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + args.start_timeout
    url = None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        sys.stdout.write(line)
        if "listening on " in line:
            url = line.strip().split("listening on ", 1)[1]
            break
    if url is None:
        proc.kill()
        raise RuntimeError(f"the server did not say where it listens (exit status {proc.poll()})")

    def drain():
        for rest in proc.stdout:
            sys.stdout.write(rest)
    threading.Thread(target=drain, daemon=True).start()
    return proc, url


def place_checkpoint(src, base):
    folder = os.path.join(base, "models", "checkpoints")
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, os.path.basename(src))
    if os.path.exists(target) and os.path.samefile(src, target):
        return os.path.basename(src)
    if os.path.exists(target):
        os.remove(target)
    try:
        os.link(src, target)
    except OSError:
        shutil.copyfile(src, target)
    return os.path.basename(src)


def png_size(data):
    """(width, height) from the IHDR chunk that follows the signature."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise RuntimeError("no IHDR chunk")
    return struct.unpack(">II", data[16:24])


def run_prompt(url, ckpt, seed, args):
    t0 = time.time()
    reply = json.loads(request(url, "/prompt", {"prompt": workflow(
        ckpt, seed, args.steps, args.width, args.height), "client_id": "serve-smoke"}))
    prompt_id = reply.get("prompt_id")
    if not prompt_id:
        raise RuntimeError(f"POST /prompt gave no prompt_id: {reply}")
    deadline = t0 + args.prompt_timeout
    entry = None
    while time.time() < deadline:
        history = json.loads(request(url, f"/history/{prompt_id}"))
        if prompt_id in history:
            entry = history[prompt_id]
            status = entry.get("status") or {}
            if status.get("completed") or status.get("status_str") in ("success", "error"):
                break
        time.sleep(0.05)
    seconds = time.time() - t0
    if entry is None:
        raise RuntimeError(f"prompt {prompt_id} not done after {args.prompt_timeout} s")
    status = entry.get("status") or {}
    if status.get("status_str") != "success":
        raise RuntimeError(f"prompt {prompt_id} failed: {json.dumps(status)[:2000]}")
    images = [img for out in entry.get("outputs", {}).values() for img in out.get("images", [])]
    if not images:
        raise RuntimeError(f"prompt {prompt_id} saved no image: {json.dumps(entry)[:2000]}")
    for img in images:
        query = urllib.parse.urlencode({"filename": img["filename"],
                                        "subfolder": img.get("subfolder", ""),
                                        "type": img.get("type", "output")})
        data = request(url, "/view?" + query)
        if not data.startswith(PNG_SIGNATURE):
            raise RuntimeError(f"/view?{query} is not a PNG ({data[:16]!r})")
        w, h = png_size(data)
        if not args.no_size_check and (w, h) != (args.width, args.height):
            raise RuntimeError(f"{img['filename']} is {w}x{h}, expected {args.width}x{args.height}")
        print(f"  {img['filename']}: PNG {w}x{h}, {len(data)} bytes", flush=True)
    # The worker's own figure: execution_start → execution_success in the status messages.
    stamps = {m[0]: m[1].get("timestamp") for m in status.get("messages", [])
              if isinstance(m, list) and len(m) == 2 and isinstance(m[1], dict)}
    run_s = None
    if stamps.get("execution_start") and stamps.get("execution_success"):
        run_s = (stamps["execution_success"] - stamps["execution_start"]) / 1000.0
    return prompt_id, seconds, run_s


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--darkroom", default="darkroom", help="the darkroom binary")
    p.add_argument("--base-directory", default="/tmp/dr-serve")
    p.add_argument("--checkpoint", default="/tmp/dr-demo.safetensors")
    p.add_argument("--device-args", default="--cuda-device 0",
                   help="extra `darkroom serve` arguments (e.g. --cpu)")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[156680208700286, 42])
    p.add_argument("--no-size-check", action="store_true",
                   help="accept any image size (tiny test VAEs upscale 2x, not 8x)")
    p.add_argument("--start-timeout", type=float, default=30)
    p.add_argument("--prompt-timeout", type=float, default=120)
    args = p.parse_args()

    if not os.path.isfile(args.checkpoint):
        print(f"serve_smoke: no checkpoint at {args.checkpoint}", file=sys.stderr)
        return 1
    os.makedirs(args.base_directory, exist_ok=True)
    ckpt = place_checkpoint(args.checkpoint, args.base_directory)
    proc, url = start_server(args)
    failed = False
    try:
        for seed in args.seeds:
            prompt_id, seconds, run_s = run_prompt(url, ckpt, seed, args)
            extra = f", {run_s:.2f} s executing" if run_s is not None else ""
            print(f"prompt seed={seed} id={prompt_id}: {seconds:.2f} s "
                  f"({args.width}x{args.height}, {args.steps} steps{extra})", flush=True)
    except (RuntimeError, urllib.error.URLError, OSError, ValueError) as e:
        print(f"serve_smoke: FAILED: {e}", file=sys.stderr, flush=True)
        failed = True
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        else:
            print(f"serve_smoke: the server exited early with status {proc.returncode}",
                  file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
