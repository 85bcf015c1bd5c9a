"""The Python API of issue 19, line by line, against the command line where it has the same
computation (`seqgrad grad --data`, `seqgrad grad --input`) and against independent checks
(softmax of the logits, integrated-gradients completeness, finite differences)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import seqgrad
from conftest import (
    REPO,
    SPLICE_DATA,
    SPLICE_MODEL,
    read_safetensors,
    run_cli,
    splice_classes,
    splice_records,
    write_safetensors,
)

SEED_MODEL = os.path.join(REPO, "models", "seed.json")
KERAS = os.path.join(REPO, "tests", "fixtures", "keras")


@pytest.fixture(scope="module")
def splice64():
    return seqgrad.Model.from_json(SPLICE_MODEL, seed=42, dtype="float64")


def test_one_hot_is_the_cli_encoding():
    x = seqgrad.one_hot(["ACGTN", "RYacg"])
    assert x.dtype == np.float32 and x.shape == (2, 5, 4)
    np.testing.assert_array_equal(x[0, :4], np.eye(4))
    np.testing.assert_array_equal(x[0, 4], [0.25] * 4)
    np.testing.assert_array_equal(x[1, 0], [0.5, 0, 0.5, 0])  # R = A/G
    np.testing.assert_array_equal(x[1, 1], [0, 0.5, 0, 0.5])  # Y = C/T
    np.testing.assert_array_equal(x[1, 2:], np.eye(4)[:3])  # lower case
    with pytest.raises(ValueError, match="sequence #1 has length 3 but sequence #0 has 4"):
        seqgrad.one_hot(["ACGT", "ACG"])
    with pytest.raises(ValueError, match="is not a DNA letter"):
        seqgrad.one_hot(["ACGZ"])


def test_model_description(splice64):
    m = splice64
    assert m.dtype == "float64"
    assert m.input_shape == (60, 4) and m.output_shape == (3,)
    assert m.param_count == 80963
    s = m.summary()
    assert "bidirectional(lstm)" in s and "Total params: 80,963" in s
    assert s in repr(m) and "<pre>" in m._repr_html_()
    # the CLI's table
    cli = run_cli(["summary", "--model", SPLICE_MODEL]).stdout
    assert cli.startswith(s.rstrip("\n").split("\n")[0])
    for line in s.strip().split("\n"):
        assert line in cli
    spec = json.load(open(SPLICE_MODEL))
    m2 = seqgrad.Model.from_spec(spec, seed=42, dtype="float64")
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(m2.parameters()[k], v)
    assert seqgrad.Model.from_json(SPLICE_MODEL).dtype == "float32"


def test_weights_round_trip_and_parameters(tmp_path, splice64):
    m = seqgrad.Model.from_json(SPLICE_MODEL, seed=7, dtype="float64")
    p = m.parameters()
    assert "layers.3.weight_hh_l0_reverse" in p and p["layers.0.weight"].shape == (64, 4, 9)
    p["layers.0.weight"][:] = 0  # a copy: the model is unchanged
    assert np.abs(m.parameters()["layers.0.weight"]).sum() > 0
    path = tmp_path / "w.safetensors"
    m.save_weights(path)
    m2 = seqgrad.Model.from_json(SPLICE_MODEL, seed=1, dtype="float64")
    m2.load_weights(path)
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(m2.parameters()[k], v)
    # float32 weights into a float64 model: converted
    m32 = seqgrad.Model.from_json(SPLICE_MODEL, seed=7, dtype="float32")
    m32.save_weights(tmp_path / "w32.safetensors")
    m2.load_weights(tmp_path / "w32.safetensors")
    np.testing.assert_array_equal(m2.parameters()["layers.6.weight"], m32.parameters()["layers.6.weight"])
    # set_parameters
    new = {k: np.full_like(v, 0.01) for k, v in m.parameters().items()}
    m2.set_parameters(new)
    np.testing.assert_array_equal(m2.parameters()["layers.7.bias"], [0.01] * 3)
    m2.set_parameters({"layers.7.bias": [1.0, 2.0, 3.0]}, strict=False)
    np.testing.assert_array_equal(m2.parameters()["layers.7.bias"], [1, 2, 3])
    with pytest.raises(ValueError, match="missing parameter"):
        m2.set_parameters({"layers.7.bias": np.zeros(3)})
    with pytest.raises(ValueError, match="unknown parameter.*layers.9.bias"):
        m2.set_parameters({"layers.9.bias": np.zeros(3)}, strict=False)
    with pytest.raises(ValueError, match=r"parameter layers.7.bias: expected shape \(3\) but got \(4\)"):
        m2.set_parameters({"layers.7.bias": np.zeros(4)}, strict=False)
    np.testing.assert_array_equal(m2.parameters()["layers.7.bias"], [1, 2, 3])


def test_predict_is_softmax_of_logits(splice64):
    x = seqgrad.one_hot(splice_records(5)[0])
    p = splice64.predict(x)
    z = splice64.forward(x, logits=True)
    assert p.shape == (5, 3) and p.dtype == np.float64
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(splice64.forward(x), p)
    # a non-contiguous float32 view is converted once, same numbers
    xt = np.asfortranarray(x)
    np.testing.assert_array_equal(splice64.predict(xt), p)


def test_grad_equals_cli_grad_data_to_1e_12(tmp_path, splice64):
    n = 16
    seqs, labels = splice_records(n)
    classes = splice_classes()
    out = tmp_path / "g.safetensors"
    cli = run_cli([
        "grad", "--model", SPLICE_MODEL, "--dtype", "f64", "--seed", "42", "--data", SPLICE_DATA,
        "--records", str(n), "--out", str(out), "--record-steps",
    ])
    want = read_safetensors(str(out))
    y = np.array([classes.index(c) for c in labels])
    g = splice64.grad(seqgrad.one_hot(seqs), target=y)

    def close(a, b, what):
        err = np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))
        assert err <= 1e-12, f"{what}: {err:.3e}"

    np.testing.assert_array_equal(want["input"], seqgrad.one_hot(seqs).astype(np.float64))
    close(g.output, want["output"], "output")
    close(g.input, want["input_grad"], "input")
    names = [k[len("grad."):] for k in want if k.startswith("grad.")]
    assert sorted(names) == sorted(g.params)
    for k in names:
        close(g.params[k], want["grad." + k], k)
    close(np.array(list(g.layer_norms.values())), want["output_grad_norm"], "layer_norms")
    assert sorted(g.step_norms) == [("layers.3", "forward"), ("layers.3", "reverse")]
    for (layer, d), v in g.step_norms.items():
        assert v.shape == (13,)
        close(v, want[f"step_grad_norm.{layer}.{d}"].mean(axis=0), f"{layer} {d}")
    loss = float(next(l for l in cli.stdout.splitlines() if l.startswith("loss ")).split()[1])
    assert abs(g.loss - loss) < 1e-6
    # one-hot targets give the same gradients as class indices
    g2 = splice64.grad(seqgrad.one_hot(seqs), target=np.eye(3)[y])
    np.testing.assert_array_equal(g2.input, g.input)


def test_grad_output_grad_equals_cli_grad_input(tmp_path, splice64):
    rng = np.random.default_rng(3)
    x = seqgrad.one_hot(splice_records(4)[0]).astype(np.float64)
    dy = rng.uniform(-1, 1, size=(4, 3))
    write_safetensors(str(tmp_path / "in.safetensors"), {"input": x, "output_grad": dy})
    run_cli([
        "grad", "--model", SPLICE_MODEL, "--dtype", "f64", "--seed", "42",
        "--input", str(tmp_path / "in.safetensors"), "--out", str(tmp_path / "out.safetensors"),
    ])
    want = read_safetensors(str(tmp_path / "out.safetensors"))
    g = splice64.grad(x, output_grad=dy)
    assert g.loss is None
    np.testing.assert_allclose(g.output, want["output"], rtol=0, atol=1e-14)
    np.testing.assert_allclose(g.input, want["input_grad"], rtol=0, atol=1e-13)
    for k, v in g.params.items():
        np.testing.assert_allclose(v, want["grad." + k], rtol=0, atol=1e-12 * max(1, np.abs(v).max()))


def test_grad_against_finite_differences():
    # the gradient of sum(output * dy) w.r.t. one input entry, by central differences
    m = seqgrad.Model.from_json(SEED_MODEL, seed=3, dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(2, 40, 4))
    dy = rng.uniform(-1, 1, size=(2, 2))
    g = m.grad(x, output_grad=dy)
    h = 1e-6
    for idx in [(0, 3, 1), (1, 20, 2), (0, 39, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fd = ((m.predict(xp) - m.predict(xm)) * dy).sum() / (2 * h)
        assert abs(fd - g.input[idx]) < 1e-7 * max(1, abs(fd)), idx


def test_integrated_gradients_completeness(splice64):
    x = seqgrad.one_hot(splice_records(3)[0])
    s = seqgrad.saliency(splice64, x, method="integrated_gradients", target=1, baseline="zeros", steps=256)
    assert s.shape == (3, 60, 4) and s.dtype == np.float64
    fx = splice64.forward(x, logits=True)[:, 1]
    f0 = splice64.forward(np.zeros_like(x), logits=True)[:, 1]
    total = s.sum(axis=(1, 2))
    err = np.abs(total - (fx - f0)) / np.abs(fx - f0)
    assert np.all(err < 1e-2), err
    # the float32 model gives the same scores (it runs in float64)
    m32 = seqgrad.Model.from_json(SPLICE_MODEL, seed=42, dtype="float32")
    s32 = seqgrad.saliency(m32, x, target=1, steps=256)
    np.testing.assert_allclose(s32, s, rtol=1e-5, atol=1e-6)


def test_other_saliency_methods(splice64):
    x = seqgrad.one_hot(splice_records(2)[0])
    grad = seqgrad.saliency(splice64, x, method="grad", target=2)
    gxi = seqgrad.saliency(splice64, x, method="grad_x_input", target=2)
    ism = seqgrad.saliency(splice64, x, method="ism", target=2)
    assert grad.shape == gxi.shape == ism.shape == (2, 60, 4)
    np.testing.assert_allclose(gxi, grad * x, rtol=1e-12, atol=1e-15)
    m = splice64
    # "grad" explains the class-2 logit, not the loss
    g = m.grad(x, target=np.array([2, 2]))
    assert not np.allclose(g.input, grad)
    with pytest.raises(ValueError, match="method \"lime\""):
        seqgrad.saliency(m, x, method="lime")
    with pytest.raises(ValueError, match="target 5"):
        seqgrad.saliency(m, x, target=5)


def test_gradcheck_rows():
    m = seqgrad.Model.from_json(SEED_MODEL, seed=1, dtype="float32")
    rows = seqgrad.gradcheck(m)
    assert rows and all(set(r) >= {"tensor", "worst_rel_err", "ok"} for r in rows)
    assert all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]
    assert rows[-1]["layer"] is None  # the whole model last
    assert {r["tensor"] for r in rows} >= {"input", "layers.0.weight"}


def test_error_types(tmp_path, splice64, monkeypatch):
    with pytest.raises(OSError, match="No such file"):
        seqgrad.Model.from_json(tmp_path / "none.json")
    with pytest.raises(OSError):
        splice64.load_weights(tmp_path / "none.safetensors")
    bad = tmp_path / "bad.json"
    bad.write_text('{"input_shape": [40, 4], "layers": [{"type": "conv1", "filters": 3, "kernel_size": 2}]}')
    with pytest.raises(ValueError, match="conv1d"):
        seqgrad.Model.from_json(bad)
    with pytest.raises(ValueError, match=r"model input: expected shape \(batch, 60, 4\) but got \(2, 5, 4\)"):
        splice64.predict(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match="target #1 is class 7"):
        splice64.grad(np.zeros((2, 60, 4)), target=[0, 7])
    with pytest.raises(ValueError, match="dtype"):
        seqgrad.Model.from_json(SPLICE_MODEL, dtype="float16")
    with pytest.raises(ValueError, match="weights"):
        splice64.load_weights(bad)  # not a safetensors file
    # a run that would not fit is a MemoryError with the CLI's message
    monkeypatch.setenv("SEQGRAD_MEMORY_LIMIT", "1M")
    with pytest.raises(MemoryError, match="not enough memory: training at batch size 64 needs about"):
        seqgrad.train(model=SPLICE_MODEL, data=SPLICE_DATA, out=tmp_path / "h")
    assert not os.path.exists(tmp_path / "h"), "nothing written"


def write_json(path, obj) -> str:
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def test_flatten_mistake_is_the_cli_message(tmp_path):
    spec = json.load(open(SEED_MODEL))
    spec["layers"].insert(2, {"type": "flatten"})
    with pytest.raises(ValueError) as e:
        seqgrad.Model.from_spec(spec)
    p = tmp_path / "broken.json"
    write_json(p, spec)
    import subprocess
    from conftest import seqgrad_bin

    cli = subprocess.run([seqgrad_bin(), "summary", "--model", str(p)], capture_output=True, text=True)
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"seqgrad: error: {e.value}"
    assert "Flatten (#2) removed the time axis" in str(e.value)


def test_from_keras_with_keras_variables(tmp_path):
    # Keras model JSON + its variables (as `convert --keras-weights`): Keras' own outputs
    for name in ["bi_lstm_concat", "bi_gru_sum", "conv_same_stride"]:
        t = read_safetensors(os.path.join(KERAS, f"{name}.f64.safetensors"))
        vars_path = str(tmp_path / f"{name}.vars.safetensors")
        write_safetensors(vars_path, {k[len("keras/"):]: v for k, v in t.items() if k.startswith("keras/")})
        m = seqgrad.Model.from_keras(os.path.join(KERAS, f"{name}.json"), dtype="float64", weights=vars_path)
        np.testing.assert_allclose(m.predict(t["input"]), t["output"], rtol=0, atol=1e-10, err_msg=name)
    # the seed's .keras archive with its variables dumped by keras_to_seqgrad.py
    m = seqgrad.Model.from_keras(os.path.join(KERAS, "seed.keras"), weights=os.path.join(KERAS, "seed.vars.safetensors"))
    np.testing.assert_allclose(m.predict(seed_inputs()), seed_expected(), atol=1e-5)


def seed_inputs() -> np.ndarray:
    import csv

    with open(os.path.join(KERAS, "seed_data.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    seq_key = next(k for k in rows[0] if k.strip().lower() in ("sequence", "seq"))
    return seqgrad.one_hot([r[seq_key].strip() for r in rows])


def seed_expected() -> np.ndarray:
    lines = open(os.path.join(KERAS, "seed_expected.tsv")).read().split("\n")[1:]
    return np.array([[float(v) for v in l.split("\t")[1:]] for l in lines if l])


def test_from_keras_archive():
    # the committed seed.keras with its own model.weights.h5, against Keras' predictions
    path = os.path.join(KERAS, "seed.keras")
    try:
        m = seqgrad.Model.from_keras(path)
    except ValueError as e:
        if "needs seqgrad built with --features hdf5" in str(e):
            pytest.skip("this build cannot read model.weights.h5 yet (issue 19 item 4)")
        raise
    np.testing.assert_allclose(m.predict(seed_inputs()), seed_expected(), atol=1e-5)
