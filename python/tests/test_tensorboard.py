"""``seqgrad train --tensorboard DIR`` read back with TensorBoard's own ``EventAccumulator``:
the scalars equal ``history.json`` and ``grads.csv`` (as float32, TensorBoard's scalar type),
there is a gradient histogram per parameter tensor and recorded step, and the pictures of
``RUN/plots/`` are there as images.

Runs the CLI binary: ``SEQGRAD_BIN``, default ``target/release/seqgrad`` at the repository root
(``cargo build --release``). Skipped when ``tensorboard`` is not importable (it does not need
TensorFlow: ``pip install tensorboard pytest``) or the binary is missing.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import struct
import subprocess

import pytest

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="needs tensorboard (pip install tensorboard)",
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SEQGRAD_BIN", os.path.join(ROOT, "target", "release", "seqgrad"))

MODEL = {
    "input_shape": [30, 4],
    "layers": [
        {"type": "conv1d", "filters": 6, "kernel_size": 5, "activation": "relu"},
        {"type": "maxpool1d", "pool_size": 2},
        {"type": "bidirectional", "layer": {"type": "lstm", "units": 5}},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ],
}


def f32(x: float) -> float:
    """x rounded to float32, as TensorBoard stores a scalar."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def same(got: float, want: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == f32(want)


def write_data(path: str) -> None:
    """240 random 30 bp records; class "yes" when the motif TATAA is planted."""
    rng = random.Random(5)
    with open(path, "w") as f:
        f.write("id,label,sequence\n")
        for i in range(240):
            s = [rng.choice("ACGT") for _ in range(30)]
            label = "yes" if i % 2 == 0 else "no"
            if label == "yes":
                at = rng.randrange(0, 25)
                s[at:at + 5] = "TATAA"
            f.write(f"r{i},{label},{''.join(s)}\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not os.path.exists(BIN):
        pytest.skip(f"no seqgrad binary at {BIN} (cargo build --release, or set SEQGRAD_BIN)")
    d = tmp_path_factory.mktemp("tb")
    with open(d / "m.json", "w") as f:
        json.dump(MODEL, f)
    write_data(str(d / "d.csv"))
    p = subprocess.run(
        [BIN, "train", "--model", "m.json", "--data", "d.csv", "--epochs", "3",
         "--batch-size", "32", "--patience", "0", "--progress", "quiet",
         "--record-grads", "3", "--tensorboard", "tb", "--out", "run"],
        cwd=d, capture_output=True, text=True,
    )
    assert p.returncode == 0, p.stderr
    acc = event_accumulator.EventAccumulator(
        str(d / "tb"),
        size_guidance={
            event_accumulator.SCALARS: 0,
            event_accumulator.HISTOGRAMS: 0,
            event_accumulator.IMAGES: 0,
        },
    )
    acc.Reload()
    return d, acc


def test_epoch_scalars_equal_history_json(run):
    d, acc = run
    with open(d / "run" / "history.json") as f:
        history = json.load(f)
    tags = set(acc.Tags()["scalars"])
    compared = 0
    for col, values in history.items():
        if col == "epoch" or not isinstance(values, list):
            continue
        events = acc.Scalars(f"epoch/{col}")
        assert [e.step for e in events] == history["epoch"], col
        for e, want in zip(events, values):
            assert same(e.value, want), (col, e.step, e.value, want)
            compared += 1
    assert {"epoch/loss", "epoch/val_loss", "epoch/accuracy", "epoch/val_accuracy"} <= tags
    assert compared >= 3 * 4


def test_grad_scalars_equal_grads_csv_and_histograms_per_tensor(run):
    d, acc = run
    with open(d / "run" / "grads.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows
    scalars = {}
    for r in rows:
        tag = (f"{r['statistic']}/{r['tensor']}" if r["tensor"]
               else f"{r['statistic']}/layers.{r['layer']}")
        if tag not in scalars:
            scalars[tag] = {e.step: e.value for e in acc.Scalars(tag)}
        got = scalars[tag].get(int(r["step"]))
        assert got is not None and same(got, float(r["value"])), (tag, r, got)
    # Every row was logged once: as many scalar events as rows.
    assert sum(len(v) for v in scalars.values()) == len(rows)
    steps = sorted({int(r["step"]) for r in rows})
    tensors = sorted({r["tensor"] for r in rows if r["tensor"]})
    assert set(acc.Tags()["histograms"]) == {f"grad/{t}" for t in tensors}
    norms = {(r["tensor"], int(r["step"])): float(r["value"])
             for r in rows if r["statistic"] == "l2_norm"}
    for t in tensors:
        hist = acc.Histograms(f"grad/{t}")
        assert [h.step for h in hist] == steps, t
        for h in hist:
            v = h.histogram_value
            assert sum(v.bucket) == v.num > 0
            assert math.isclose(math.sqrt(v.sum_squares), norms[(t, h.step)], rel_tol=1e-9)


def test_run_pictures_are_images(run):
    d, acc = run
    pngs = sorted(p for p in os.listdir(d / "run" / "plots") if p.endswith(".png"))
    assert pngs
    assert set(acc.Tags()["images"]) == {f"plots/{p[:-4]}" for p in pngs}
    for p in pngs:
        (img,) = acc.Images(f"plots/{p[:-4]}")
        with open(d / "run" / "plots" / p, "rb") as f:
            data = f.read()
        assert img.encoded_image_string == data
        w, h = struct.unpack(">II", data[16:24])
        assert (img.width, img.height) == (w, h)
