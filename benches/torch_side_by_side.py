#!/usr/bin/env python3
"""Side-by-side training throughput: seqgrad vs PyTorch on the same model, data and settings.

Trains `models/splice.json` (or --model) on the bundled splice data for a fixed number of epochs
with Adam, batch 64, in float32, once in PyTorch (through python/seqgrad_torch.py, so the model
is the same module seqgrad's parity fixtures check against) and once with the `seqgrad` release
binary, each on the same number of threads, and prints seconds per epoch and the ratio.
Both are measured in one run, back to back, because this machine is shared and noisy: compare
the ratio, not the absolute numbers.

    cargo build --release
    /work/venv/bin/python benches/torch_side_by_side.py --epochs 5 --threads 2

PyTorch runs at its defaults, as its users run it: leave OMP_WAIT_POLICY unset (PASSIVE roughly
halves PyTorch on a quiet machine; the output says when it is set). Needs torch, numpy and
safetensors (`benches/peers/requirements.txt`; not needed by `cargo test`).
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import torch  # noqa: E402

import seqgrad_torch as st  # noqa: E402


def splice_data(path):
    seqs, labels = [], []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for row in rows:
            labels.append(row[0].strip())
            seqs.append(row[2].strip())
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(l) for l in labels])
    # IUPAC codes (N, D, R, S) become probability vectors, as in seqgrad.
    table = {"A": [1, 0, 0, 0], "C": [0, 1, 0, 0], "G": [0, 0, 1, 0], "T": [0, 0, 0, 1],
             "N": [.25] * 4, "R": [.5, 0, .5, 0], "S": [0, .5, .5, 0],
             "D": [1 / 3, 0, 1 / 3, 1 / 3]}
    x = torch.tensor([[table[c] for c in s.upper()] for s in seqs], dtype=torch.float32)
    return x, y


def torch_epochs(model_path, x, y, epochs, batch):
    torch.manual_seed(0)
    model = st.from_spec(st.load_spec(model_path))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x.shape[0]
    times = []
    for _ in range(epochs):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx], logits=True), y[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def seqgrad_epochs(binary, model_path, data_path, epochs, threads):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [binary, "train", "--model", model_path, "--data", data_path, "--epochs", str(epochs),
             "--patience", "0", "--val-split", "0.1", "--test-split", "0.1", "--threads", str(threads),
             "--progress", "plain", "--out", os.path.join(d, "run")],
            capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    return [float(t) for t in re.findall(r"^epoch .* ([0-9.]+)s", text, flags=re.M)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=os.path.join(ROOT, "models", "splice.json"))
    p.add_argument("--data", default=os.path.join(ROOT, "data", "splice.csv"))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "seqgrad"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x, y = splice_data(a.data)
    # seqgrad trains on its 80% split; give PyTorch the same number of records.
    n_train = x.shape[0] - 2 * round(0.1 * x.shape[0])
    tt = torch_epochs(a.model, x[:n_train], y[:n_train], a.epochs, 64)
    sg = seqgrad_epochs(a.binary, a.model, a.data, a.epochs, a.threads)
    # Median of the epochs after the first (warm-up), for both.
    med = lambda v: sorted(v[1:] or v)[len(v[1:] or v) // 2]
    print(f"model {os.path.relpath(a.model, ROOT)}, {n_train} training records, batch 64, "
          f"Adam, float32, {a.threads} thread(s), {a.epochs} epochs")
    if os.environ.get("OMP_WAIT_POLICY"):
        print(f"note: OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} is set: PyTorch is not at "
              "its defaults")
    print(f"PyTorch {torch.__version__}: {med(tt):.3f} s/epoch  (all: {', '.join(f'{t:.2f}' for t in tt)})")
    print(f"seqgrad: {med(sg):.3f} s/epoch  (all: {', '.join(f'{t:.2f}' for t in sg)}; includes validation)")
    print(f"seqgrad / PyTorch time ratio: {med(sg) / med(tt):.2f}")


if __name__ == "__main__":
    main()
