#!/usr/bin/env python3
"""Writes the tiny torch.save checkpoints that tests/test_torch_checkpoint.cpp reads.

    python3 tools/make_ckpt_fixtures.py            (writes into tests/data/ckpt/)

  sd_like.ckpt       {"state_dict": OrderedDict of f32/f16/bf16/i64 tensors, "global_step": 5}
                     with a view at a non-zero storage offset, two tensors sharing one
                     storage, a transposed (non-contiguous) view and an nn.Parameter.
  sd_like.safetensors  the same tensors, made contiguous, written by safetensors.torch:
                     the independent reference the test compares values against.
  hostile_system.ckpt  a state dict plus an object whose __reduce__ is (os.system, ...).
  hostile_eval.ckpt    the same with (builtins.eval, ...).
  hostile_numpy.ckpt   a numpy scalar (numpy is not on the allowlist either).
  legacy.ckpt          the pre-1.6 (non-zip) torch.save format.
  corrupt_*.ckpt       broken archives: truncated, central directory garbled, no data.pkl,
                     a storage entry shorter than its tensor,
                     a dict that contains itself.

Needs torch, numpy and safetensors (pip). Tensor values are fixed (seeded); the bytes
differ between runs only in the random .data/serialization_id torch.save writes.
"""
import collections
import io
import os
import pathlib
import zipfile

import numpy as np
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "ckpt"


class RunsSystem:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class RunsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('echo pwned')",))


def state_dict():
    g = torch.Generator().manual_seed(1234)
    sd = collections.OrderedDict()
    sd["model.diffusion_model.conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["model.diffusion_model.conv.bias"] = torch.randn(4, generator=g).half()
    sd["first_stage_model.norm.weight"] = torch.randn(2, 5, generator=g).bfloat16()
    # A view into the middle of a bigger storage (non-zero storage offset) and a second
    # view of the same storage: both must read their own slice.
    base = torch.randn(6, 4, generator=g)
    sd["cond_stage_model.proj.weight"] = base[2:5]
    sd["cond_stage_model.proj.bias"] = base[5]
    # Shared storage under two names (tied weights).
    tied = torch.randn(3, 2, generator=g).half()
    sd["model.tied_a"] = tied
    sd["model.tied_b"] = tied
    # A transposed view: the reader must make it contiguous.
    sd["model.transposed"] = torch.randn(3, 5, generator=g).t()
    # Integer buffer (CLIP's position_ids in SD 1.x checkpoints are int64).
    sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(7).unsqueeze(0)
    sd["model.scalar"] = torch.tensor(2.5)
    sd["model.param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    return sd


def save(obj, name):
    torch.save(obj, OUT / name)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    sd = state_dict()
    save({"state_dict": sd, "global_step": 5, "epoch": 1}, "sd_like.ckpt")
    ref = {"state_dict." + k: v.detach().contiguous().clone() for k, v in sd.items()}
    save_file(ref, str(OUT / "sd_like.safetensors"))

    small = collections.OrderedDict(w=torch.ones(2))
    save({"state_dict": small, "evil": RunsSystem()}, "hostile_system.ckpt")
    save({"state_dict": small, "evil": RunsEval()}, "hostile_eval.ckpt")
    save({"state_dict": small, "step": np.float64(1.5)}, "hostile_numpy.ckpt")
    torch.save({"w": torch.ones(2)}, OUT / "legacy.ckpt", _use_new_zipfile_serialization=False)

    good = (OUT / "sd_like.ckpt").read_bytes()
    (OUT / "corrupt_truncated.ckpt").write_bytes(good[: len(good) // 2])
    # Break the signature of the first central directory record (torch writes a ZIP64
    # end record too, so garbling the 32-bit directory offset alone changes nothing).
    central = good.find(b"PK\x01\x02")
    garbled = bytearray(good)
    garbled[central : central + 4] = b"PK\xee\xee"
    (OUT / "corrupt_directory.ckpt").write_bytes(bytes(garbled))

    # Re-pack the archive without its data.pkl, and with one storage cut short.
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        names = z.namelist()
        files = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("/data.pkl"))
    with zipfile.ZipFile(OUT / "corrupt_no_pickle.ckpt", "w", zipfile.ZIP_STORED) as z:
        for n in names:
            if n != pkl:
                z.writestr(n, files[n])
    short = next(n for n in names if "/data/" in n and len(files[n]) > 16)
    with zipfile.ZipFile(OUT / "corrupt_short_storage.ckpt", "w", zipfile.ZIP_STORED) as z:
        for n in names:
            z.writestr(n, files[n][:8] if n == short else files[n])
    # A dict that contains itself (hand-assembled pickle: {"a": <itself>}), which
    # must be refused when flattened instead of recursing forever.
    cycle = b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s."
    with zipfile.ZipFile(OUT / "corrupt_cycle.ckpt", "w", zipfile.ZIP_STORED) as z:
        z.writestr("cycle/data.pkl", cycle)
        z.writestr("cycle/version", "3\n")
    # The same archive deflated (not as torch writes it, but other tools re-zip files).
    with zipfile.ZipFile(OUT / "sd_like_deflated.ckpt", "w", zipfile.ZIP_DEFLATED) as z:
        for n in names:
            z.writestr(n, files[n])


if __name__ == "__main__":
    main()
