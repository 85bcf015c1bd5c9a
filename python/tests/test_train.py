"""`seqgrad.train`, `seqgrad.Run`, `seqgrad.gradflow`: the run folder as the command line
writes it, Ctrl-C, and the main job's weights byte for byte against the release binary."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import seqgrad
from conftest import REPO, SPLICE_DATA, SPLICE_MODEL, run_cli


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """Every 8th record of data/splice.csv (399 records of the three classes)."""
    d = tmp_path_factory.mktemp("data")
    with open(SPLICE_DATA, newline="") as f:
        rows = list(csv.reader(f))
    path = d / "splice400.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([rows[0]] + rows[1::8])
    return str(path)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, small_data):
    out = tmp_path_factory.mktemp("runs") / "py"
    run = seqgrad.train(
        model=SPLICE_MODEL, data=small_data, out=out, seed=3, epochs=3, batch_size=32,
        record_grads=4, progress="quiet",
    )
    return run


def test_train_writes_the_cli_run_folder(small_run, small_data, tmp_path):
    run = small_run
    for f in ["weights.safetensors", "model.json", "labels.json", "config.json", "history.json",
              "history.csv", "test_metrics.json", "grads.csv", "steps.csv"]:
        assert os.path.exists(os.path.join(run.path, f)), f
    # the same options through the command line: the same weights, byte for byte
    cli_out = tmp_path / "cli"
    run_cli(["train", "--model", SPLICE_MODEL, "--data", small_data, "--out", str(cli_out),
             "--seed", "3", "--epochs", "3", "--batch-size", "32", "--record-grads", "4",
             "--progress", "quiet"])
    a = open(os.path.join(run.path, "weights.safetensors"), "rb").read()
    b = open(cli_out / "weights.safetensors", "rb").read()
    assert a == b


def test_run_api(small_run):
    run = seqgrad.Run.open(small_run.path)
    assert isinstance(run.model, seqgrad.Model) and run.model.output_shape == (3,)
    assert run.config["optimizer"]["name"] == "adam" and run.config["seed"] == 3
    h = run.history
    assert h["epoch"] == [1.0, 2.0, 3.0] and len(h["loss"]) == 3 and len(h["val_loss"]) == 3
    m = run.evaluate(split="test")
    assert {"loss", "accuracy", "confusion", "classes", "per_class"} <= set(m)
    assert m["classes"] == ["EI", "IE", "N"]
    assert sum(v["records"] for v in m["per_class"].values()) == m["records"]
    # the test split's metrics are test_metrics.json's
    import json

    saved = json.load(open(os.path.join(run.path, "test_metrics.json")))
    assert abs(saved["loss"] - m["loss"]) < 1e-6 and saved["confusion"] == m["confusion"]
    with pytest.raises(ValueError, match="split \"dev\""):
        run.evaluate(split="dev")
    g = run.grads()
    assert "step" in g and g["step"].dtype == np.float64 and len(g["step"]) > 0
    s = run.steps()
    assert {"step", "t"} <= set(s) and len(s["t"]) > 0
    p = run.plot("training")
    assert p._repr_png_().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="no single picture named 'nope'"):
        run.plot("nope")


def test_picture_save(small_run, tmp_path):
    p = small_run.plot("training")
    p.save(tmp_path / "t.png")
    p.save(tmp_path / "t.svg")
    assert open(tmp_path / "t.png", "rb").read() == p.png
    assert open(tmp_path / "t.svg", "rb").read().lstrip().startswith(b"<svg")


def test_train_keywords(tmp_path, small_data):
    with pytest.raises(ValueError, match="unknown train option \"epoch\"; the options are: .*epochs"):
        seqgrad.train(model=SPLICE_MODEL, data=small_data, epoch=3)
    with pytest.raises(ValueError, match="train option epochs: invalid type"):
        seqgrad.train(model=SPLICE_MODEL, data=small_data, epochs="three")
    with pytest.raises(ValueError, match="--momentum/--nesterov apply to sgd, not adam"):
        seqgrad.train(model=SPLICE_MODEL, data=small_data, momentum=0.9, out=tmp_path / "m")
    # plots=False is --no-plots; a data option (crop) reaches the reader
    run = seqgrad.train(model=SPLICE_MODEL, data=small_data, out=tmp_path / "np", epochs=1,
                        plots=False, crop=60, progress="quiet")
    assert not os.path.exists(os.path.join(run.path, "plots"))
    assert run.config["data_settings"]["crop"] == 60 and run.config["epochs"] == 1


def test_ctrl_c_stops_at_a_step_writes_the_checkpoint_and_raises(tmp_path, small_data):
    out = tmp_path / "int"
    script = textwrap.dedent(f"""
        import seqgrad
        try:
            seqgrad.train(model={SPLICE_MODEL!r}, data={small_data!r}, out={str(out)!r},
                          epochs=1000, patience=0, batch_size=8, checkpoint_every="never", progress="quiet")
        except KeyboardInterrupt as e:
            print("KeyboardInterrupt:", e)
            raise SystemExit(3)
        print("finished")
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not os.path.exists(out / "config.json") and time.time() - t0 < 60:
        time.sleep(0.05)
    time.sleep(1.0)  # training under way
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 3, (stdout, stderr)
    assert "KeyboardInterrupt: interrupted after step" in stdout
    assert f'continue with: seqgrad.train(resume="{out}")' in stdout
    # the checkpoint of a stop request (checkpoint_every="never" writes none otherwise)
    assert os.path.exists(out / "checkpoint" / "args.json")
    # the unfinished run opens with its checkpoint's best weights
    run = seqgrad.Run.open(out)
    assert run.model.param_count == 80963


def test_main_job_weights_are_byte_identical_to_the_release_binary(tmp_path):
    """`seqgrad` with no command (what `cargo run --release` runs: TrainOptions::main_job,
    the bundled splice model and data, 30 epochs, seed 42, into runs/splice) against
    `seqgrad.train` with the same settings."""
    env = {k: v for k, v in os.environ.items() if k != "SEQGRAD_DEMO_EPOCHS"}
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()
    run_cli([], cwd=str(cli_dir), env=env)
    run = seqgrad.train(model=SPLICE_MODEL, data=SPLICE_DATA, out=tmp_path / "py", seed=42, epochs=30)
    a = open(os.path.join(run.path, "weights.safetensors"), "rb").read()
    b = open(cli_dir / "runs" / "splice" / "weights.safetensors", "rb").read()
    assert len(a) > 300_000 and a == b


def test_gradflow_rows_and_pictures(tmp_path):
    rows = seqgrad.gradflow(cells=["lstm"], lengths=[20], directions=["uni"], steps=5, seed=1,
                            test_count=20, record_count=8, out=tmp_path)
    assert list(rows[0]) == ["cell", "bidirectional", "length", "init", "seed", "stage", "direction", "t", "norm"]
    assert rows[0]["bidirectional"] is False and isinstance(rows[0]["norm"], float)
    assert {r["stage"] for r in rows} == {"init", "trained"}
    assert all(r["cell"] == "lstm" and r["length"] == 20 for r in rows)
    with open(tmp_path / "gradflow.csv") as f:
        assert len(f.read().strip().split("\n")) == len(rows) + 1
    pics = seqgrad.plot_gradflow(tmp_path)
    assert pics and all(p.png.startswith(b"\x89PNG") for p in pics)
    with pytest.raises(ValueError, match="cell"):
        seqgrad.gradflow(cells=["transformer"], lengths=[20], steps=1)


def test_synth_and_saliency_logo(tmp_path):
    motifs = seqgrad.synth(tmp_path / "s.csv", count=40, length=50, classes=2, seed=1)
    assert len(motifs) == 2
    cli = tmp_path / "c.csv"
    run_cli(["synth", "--count", "40", "--length", "50", "--classes", "2", "--seed", "1", "--out", str(cli)])
    assert open(tmp_path / "s.csv").read() == open(cli).read()
    pic = seqgrad.saliency_logo(np.random.default_rng(0).normal(size=(30, 4)), id="r1")
    assert pic.png.startswith(b"\x89PNG")
