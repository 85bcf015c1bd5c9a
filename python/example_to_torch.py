"""From seqgrad to PyTorch and back: a runnable example.

    cargo build --release
    python python/example_to_torch.py            # or: python/example_to_torch.py --seqgrad PATH

1. writes a small labelled DNA data set (two classes; class `motif` carries a planted TATAAT)
   and a small conv -> maxpool -> BiLSTM -> dense softmax model file;
2. trains it with `seqgrad train` (run folder with weights.safetensors, model.json, labels.json);
3. predicts with `seqgrad predict` (TSV: id, then one probability column per class);
4. loads the model file and weights into PyTorch through seqgrad_torch, predicts the same
   sequences, and checks the two agree (max abs difference printed, asserted < 1e-5; the TSV
   has 6 decimals);
5. continues training in PyTorch for a few steps (the loss seqgrad uses, on logits), writes the
   weights back with seqgrad_torch.save_weights, and checks `seqgrad predict` on them agrees with
   PyTorch again.

Everything goes into a temporary folder (or --workdir). Exit code 0 when both checks pass.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import seqgrad_torch as st  # noqa: E402

MODEL = """{"input_shape": [40, 4], "layers": [
  {"type": "conv1d", "filters": 8, "kernel_size": 6, "activation": "relu"},
  {"type": "maxpool1d", "pool_size": 3},
  {"type": "bidirectional", "layer": {"type": "lstm", "units": 6}},
  {"type": "dense", "units": 2, "activation": "softmax"}]}
"""


def write_data(path: str, n: int = 300, length: int = 40, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "sequence"])
        for i in range(n):
            seq = [rng.choice("ACGT") for _ in range(length)]
            label = "motif" if i % 2 == 0 else "background"
            if label == "motif":
                at = rng.randrange(0, length - 6)
                seq[at:at + 6] = "TATAAT"
            w.writerow([f"r{i}", label, "".join(seq)])


def read_data(path: str):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [r["id"] for r in rows], [r["sequence"] for r in rows]


def read_tsv(path: str):
    with open(path) as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header, body = rows[0], rows[1:]
    assert header[0] == "id", header
    return header[1:], {r[0]: [float(v) for v in r[1:]] for r in body}


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def compare(tsv: str, ids, probs: torch.Tensor, what: str) -> float:
    classes, pred = read_tsv(tsv)
    assert len(classes) == probs.shape[1], (classes, probs.shape)
    assert set(pred) == set(ids), "the TSV and the data have different ids"
    diff = max(abs(pred[i][j] - float(probs[k, j])) for k, i in enumerate(ids) for j in range(len(classes)))
    print(f"{what}: {len(ids)} sequences x {len(classes)} classes {classes}, max |seqgrad - torch| = {diff:.2e}")
    return diff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seqgrad", default=os.path.join(ROOT, "target", "release", "seqgrad"),
                    help="the seqgrad binary (default target/release/seqgrad; build it with cargo build --release)")
    ap.add_argument("--workdir", help="keep the files here (default: a temporary folder)")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    if not os.path.exists(args.seqgrad):
        print(f"{args.seqgrad} not found: run `cargo build --release` first (or pass --seqgrad)", file=sys.stderr)
        return 2
    work = args.workdir or tempfile.mkdtemp(prefix="seqgrad-example-")
    os.makedirs(work, exist_ok=True)
    model_json, data, run_dir = (os.path.join(work, n) for n in ("model.json", "data.csv", "run"))
    with open(model_json, "w") as f:
        f.write(MODEL)
    write_data(data)

    # 1. Train in seqgrad; predict in seqgrad.
    run([args.seqgrad, "train", "--model", model_json, "--data", data, "--epochs", str(args.epochs),
         "--seed", "1", "--out", run_dir, "--progress", "plain"])
    weights = os.path.join(run_dir, "weights.safetensors")
    preds = os.path.join(work, "preds.tsv")
    run([args.seqgrad, "predict", "--model", os.path.join(run_dir, "model.json"), "--weights", weights,
         "--data", data, "--out", preds])

    # 2. The same model and weights in PyTorch (float32, the weights file's dtype).
    model = st.from_files(os.path.join(run_dir, "model.json"), weights)
    model.eval()
    ids, seqs = read_data(data)
    x = st.one_hot(seqs, torch.float32)
    with torch.no_grad():
        probs = model(x)
    d1 = compare(preds, ids, probs, "seqgrad-trained weights")

    # 3. Continue training in PyTorch (logits + the loss seqgrad uses), then back to seqgrad.
    classes, _ = read_tsv(preds)
    with open(data) as f:
        labels = [r["label"] for r in csv.DictReader(f)]
    y = torch.tensor([classes.index(lab) for lab in labels])
    model.train()  # dropout on, if the model has any
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = st.loss_for(model)
    for step in range(20):
        idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(step))[:64]
        opt.zero_grad()
        loss = loss_fn(model(x[idx], logits=True), y[idx])
        loss.backward()
        opt.step()
    print(f"PyTorch: 20 more Adam steps, last batch loss {loss.item():.4f}")
    model.eval()
    continued = os.path.join(work, "torch_continued.safetensors")
    st.save_weights(model, continued)
    preds2 = os.path.join(work, "preds_continued.tsv")
    run([args.seqgrad, "predict", "--model", model_json, "--weights", continued, "--data", data,
         "--labels", os.path.join(run_dir, "labels.json"), "--out", preds2])
    with torch.no_grad():
        probs2 = model(x)
    d2 = compare(preds2, ids, probs2, "PyTorch-continued weights")

    ok = d1 < 1e-5 and d2 < 1e-5
    print(f"{'OK' if ok else 'MISMATCH'}: files in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
