#!/usr/bin/env python3
"""Writes tests/data/safetensors/reference_small.safetensors with the official
safetensors implementation (pip install safetensors numpy), so the C++ reader is
tested against a file it did not write. tests/test_safetensors.cpp knows every value
below from these formulas; change both together."""

import pathlib

import numpy as np
from safetensors.numpy import save_file

OUT = (pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "safetensors"
       / "reference_small.safetensors")

tensors = {
    # 0, 1, ..., 11 as [3, 4]
    "arange_f32": np.arange(12, dtype=np.float32).reshape(3, 4),
    # -3, -2, ..., 2
    "ramp_i64": np.arange(-3, 3, dtype=np.int64),
    # i * 0.25 - 1 for i in 0..7, as [2, 2, 2] (exact in f16)
    "quarters_f16": (np.arange(8, dtype=np.float16) * np.float16(0.25) - np.float16(1)).reshape(2, 2, 2),
    # 0, 50, 100, 150, 200
    "steps_u8": (np.arange(5, dtype=np.uint8) * 50).astype(np.uint8),
    # True, False, True, False
    "flags_bool": np.array([True, False, True, False]),
    # -1.5 - i for i in 0..2, as [3, 1]
    "neg_f64": (-1.5 - np.arange(3, dtype=np.float64)).reshape(3, 1),
    # a 0-d tensor holding 7
    "scalar_i32": np.array(7, dtype=np.int32),
    # no elements
    "empty_f32": np.zeros((0, 3), dtype=np.float32),
}
metadata = {"format": "np", "producer": "make_safetensors_reference.py"}

OUT.parent.mkdir(parents=True, exist_ok=True)
save_file(tensors, str(OUT), metadata=metadata)
print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
