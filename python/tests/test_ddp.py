"""DDP check: two CPU processes (gloo) train a seqgrad model file to the same weights as one
process with the same global batch, and seqgrad itself evaluates the result.

Run with pytest (``pytest python/tests``) or plainly (``python python/tests/test_ddp.py``).
Skipped, with the reason printed, when PyTorch / safetensors / torch.distributed (gloo) are
missing. Not part of ``cargo test``. Uses the built ``target/release/seqgrad`` if present, else
``cargo run --release``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYDIR)
SCRIPT = os.path.join(PYDIR, "seqgrad_torch.py")

# conv -> maxpool -> BiGRU -> dense softmax; no dropout, so both runs see the same computation
MODEL = {
    "input_shape": [24, 4],
    "layers": [
        {"type": "conv1d", "filters": 6, "kernel_size": 5, "activation": "relu"},
        {"type": "maxpool1d", "pool_size": 2},
        {"type": "bidirectional", "merge_mode": "concat", "layer": {"type": "gru", "units": 5}},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ],
}


def skip_reason():
    try:
        import torch  # noqa: F401
        import torch.distributed as dist
        import safetensors  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        return f"needs PyTorch, safetensors and numpy ({e})"
    if not dist.is_available() or not dist.is_gloo_available():
        return "torch.distributed with the gloo backend is not available in this PyTorch build"
    return None


def write_data(path: str, n: int = 192, length: int = 24, seed: int = 3) -> None:
    rng = random.Random(seed)
    rows = ["id,label,sequence"]
    for i in range(n):
        s = [rng.choice("ACGT") for _ in range(length)]
        label = "motif" if i % 2 else "background"
        if label == "motif":
            p = rng.randrange(length - 6)
            s[p:p + 6] = "TATAAT"
        rows.append(f"r{i},{label},{''.join(s)}")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


def run(cmd, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def seqgrad_cmd():
    exe = os.path.join(REPO, "target", "release", "seqgrad")
    if os.path.exists(exe):
        return [exe]
    return ["cargo", "run", "--quiet", "--release", "--manifest-path", os.path.join(REPO, "Cargo.toml"), "--"]


def check_ddp(workdir: str) -> str:
    from safetensors.torch import load_file

    model, data = os.path.join(workdir, "model.json"), os.path.join(workdir, "data.csv")
    with open(model, "w") as f:
        json.dump(MODEL, f)
    write_data(data)
    common = ["train", "--model", model, "--data", data, "--epochs", "3", "--batch-size", "32",
              "--lr", "0.01", "--seed", "7"]
    one, two = os.path.join(workdir, "one"), os.path.join(workdir, "two")
    r1 = run([sys.executable, SCRIPT] + common + ["--out", one])
    r2 = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              SCRIPT] + common + ["--out", two, "--backend", "gloo"])
    assert "(2 process(es), cpu)" in r2.stdout, r2.stdout
    a, b = load_file(os.path.join(one, "weights.safetensors")), load_file(os.path.join(two, "weights.safetensors"))
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    moved = load_file(os.path.join(one, "weights.safetensors"))
    assert worst < 1e-5, f"1 vs 2 processes: max |weight difference| {worst:.3g}"
    # training changed the weights (a run that did nothing would also "agree")
    import torch
    torch.manual_seed(7)
    sys.path.insert(0, PYDIR)
    import seqgrad_torch as st
    init = st.from_spec(MODEL).state_dict()
    change = max((moved[k] - init[k]).abs().max().item() for k in moved)
    assert change > 1e-3, f"training did not move the weights ({change:.3g})"
    # seqgrad reads them by name: evaluate --model/--weights and --run
    ev = run(seqgrad_cmd() + ["evaluate", "--model", model, "--weights", os.path.join(two, "weights.safetensors"),
                              "--data", data])
    ev_run = run(seqgrad_cmd() + ["evaluate", "--run", two, "--data", data])
    assert ev.stdout == ev_run.stdout, (ev.stdout, ev_run.stdout)
    acc = float(ev.stdout.split("accuracy")[1].split()[0])
    assert acc > 0.6, ev.stdout
    # and its outputs agree with PyTorch's on the same weights
    m = st.from_files(model, os.path.join(two, "weights.safetensors")).eval()
    pr = run(seqgrad_cmd() + ["predict", "--run", two, "--data", data])
    lines = pr.stdout.strip().split("\n")[1:]
    seqs = [l.split(",")[2] for l in open(data).read().strip().split("\n")[1:]]
    with torch.no_grad():
        ref = m(st.one_hot(seqs))
    got = torch.tensor([[float(v) for v in l.split("\t")[1:]] for l in lines])
    pdiff = (got - ref).abs().max().item()
    assert pdiff < 2e-6, f"seqgrad predict vs PyTorch: {pdiff:.3g}"
    return (f"1 vs 2 processes (gloo): max |weight difference| {worst:.3g} over {len(a)} tensors "
            f"(training moved weights by up to {change:.3g}); seqgrad evaluate: {ev.stdout.splitlines()[0]}; "
            f"seqgrad predict vs PyTorch: {pdiff:.3g}")


def test_ddp_matches_single_process_and_loads_in_seqgrad():
    reason = skip_reason()
    if reason:
        import pytest
        pytest.skip(reason)
    with tempfile.TemporaryDirectory() as d:
        print(check_ddp(d))


if __name__ == "__main__":
    reason = skip_reason()
    if reason:
        print(f"SKIPPED: {reason}")
        sys.exit(0)
    d = tempfile.mkdtemp(prefix="seqgrad-ddp-")
    try:
        print(check_ddp(d))
        print("OK")
    finally:
        shutil.rmtree(d, ignore_errors=True)
