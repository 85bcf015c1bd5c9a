"""Shared helpers of the seqgrad Python tests: the repository root, the release binary
(``SEQGRAD_BIN``, default ``target/release/seqgrad``) and a small safetensors reader/writer (so
the tests need numpy only)."""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
from typing import Dict, List, Tuple

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPLICE_MODEL = os.path.join(REPO, "models", "splice.json")
SPLICE_DATA = os.path.join(REPO, "data", "splice.csv")

_DT = {"F64": np.float64, "F32": np.float32, "I64": np.int64}


def seqgrad_bin() -> str:
    """The command line built from this repository (`cargo build --release`)."""
    path = os.environ.get("SEQGRAD_BIN", os.path.join(REPO, "target", "release", "seqgrad"))
    if not os.path.isfile(path):
        pytest.fail(f"{path} is missing: run `cargo build --release` (or set SEQGRAD_BIN)")
    return path


def run_cli(args: List[str], cwd: str = REPO, env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    p = subprocess.run([seqgrad_bin()] + args, cwd=cwd, capture_output=True, text=True, env=env)
    assert p.returncode == 0, f"seqgrad {' '.join(args)} failed ({p.returncode}): {p.stderr}"
    return p


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=_DT[t["dtype"]]).reshape(t["shape"])
    return out


def write_safetensors(path: str, tensors: Dict[str, np.ndarray]) -> None:
    header, chunks, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dtype = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def splice_records(n: int) -> Tuple[List[str], List[str]]:
    """The first ``n`` sequences of data/splice.csv and their classes (fields trimmed, as the
    library reads them)."""
    with open(SPLICE_DATA, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f)]
    header = [h.lower() for h in rows[0]]
    si, ci = header.index("sequence"), header.index("class")
    body = rows[1 : n + 1]
    return [r[si] for r in body], [r[ci] for r in body]


def splice_classes() -> List[str]:
    """The classes of data/splice.csv, sorted (the library's order)."""
    with open(SPLICE_DATA, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f)]
    ci = [h.lower() for h in rows[0]].index("class")
    return sorted({r[ci] for r in rows[1:]})
