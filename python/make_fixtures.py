"""Generates the PyTorch parity fixtures under tests/fixtures/parity/ (checked by tests/it/parity.rs).

    python python/make_fixtures.py            # (re)writes every case
    python python/make_fixtures.py --check    # only the self-checks, writes nothing

Layout, one folder per case:

    tests/fixtures/parity/<case>/model.json        the seqgrad model file
    tests/fixtures/parity/<case>/f64.safetensors   all tensors F64
    tests/fixtures/parity/<case>/f32.safetensors   all tensors F32

each safetensors file holding
    layers.<i>.<name>                the weights, under seqgrad's names
    input                            (batch, ...input_shape)
    output_grad                      shaped like the output (random)
    expected.output                  PyTorch's eval-mode output (final softmax/sigmoid included)
    expected.input_grad              d/d input of sum(output * output_grad)
    expected.grad.layers.<i>.<name>  the same for every parameter

i.e. the union of a `seqgrad grad` weights file, its --input file, and its --out file with every
name prefixed by `expected.`. The f32 file holds the f64 case's weights, input and output_grad
rounded to f32, and PyTorch's results computed in f32.

Before writing, the script checks the translator's conv/pool semantics against a naive loop
implementation of the definitions (Keras `same` padding, -inf max padding, real-element average).
Generation is deterministic (each case seeded from its name): rerunning gives identical files.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seqgrad_torch as st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "parity")
BATCH = 2


def conv(filters, k, **kw):
    return {"type": "conv1d", "filters": filters, "kernel_size": k, **kw}


def pool(kind, p, s=None, padding="valid"):
    d = {"type": kind, "pool_size": p, "padding": padding}
    if s is not None:
        d["strides"] = s
    return d


def dense(units, activation="linear", **kw):
    return {"type": "dense", "units": units, "activation": activation, **kw}


def rnn(kind, units, seq, **kw):
    return {"type": kind, "units": units, "return_sequences": seq, **kw}


def bidi(inner, merge):
    return {"type": "bidirectional", "merge_mode": merge, "layer": inner}


def cases():
    """(name, model spec, input kind) for every layer type and option."""
    out = []

    def add(name, input_shape, layers, inp="normal"):
        out.append((name, {"input_shape": input_shape, "layers": layers}, inp))

    # conv1d: padding x strides x dilation (k=3, L=10: same padding is asymmetric for s=2,3).
    for padding in ("valid", "same"):
        for s in (1, 2, 3):
            for d in (1, 2):
                add(f"conv_{padding}_s{s}_d{d}", [10, 3],
                    [conv(4, 3, strides=s, dilation_rate=d, padding=padding)])
    add("conv_same_k4_l11", [11, 3], [conv(3, 4, padding="same")])  # left 1, right 2
    add("conv_same_k4_s2_d2_l11", [11, 3], [conv(3, 4, strides=2, dilation_rate=2, padding="same")])
    add("conv_valid_k1", [8, 4], [conv(3, 1)])
    add("conv_no_bias", [10, 3], [conv(4, 3, use_bias=False)])
    add("conv_no_bias_same_s2", [9, 3], [conv(4, 3, strides=2, padding="same", use_bias=False)])
    for act in st.ACTIVATIONS:
        add(f"conv_act_{act}", [10, 3], [conv(4, 3, activation=act)])
    # pools: valid/same x non-overlapping/overlapping/gapped.
    for kind in ("maxpool1d", "avgpool1d"):
        short = kind[:3]
        for padding in ("valid", "same"):
            add(f"{short}pool_{padding}_p2_s2", [9, 3], [pool(kind, 2, 2, padding)])
            add(f"{short}pool_{padding}_p3_s2", [9, 3], [pool(kind, 3, 2, padding)])
            add(f"{short}pool_{padding}_p3_s1", [9, 3], [pool(kind, 3, 1, padding)])
            add(f"{short}pool_{padding}_p4_s1", [10, 3], [pool(kind, 4, 1, padding)])
            add(f"{short}pool_{padding}_p2_s3", [11, 3], [pool(kind, 2, 3, padding)])
        add(f"{short}pool_default_strides", [10, 3], [pool(kind, 3)])
        add(f"{short}pool_after_conv_relu", [12, 3], [conv(4, 3, activation="relu"), pool(kind, 3, 2, "same")])
    add("global_maxpool", [8, 4], [{"type": "global_maxpool1d"}])
    add("global_avgpool", [8, 4], [{"type": "global_avgpool1d"}])
    add("conv_global_maxpool_dense", [10, 3],
        [conv(4, 3, activation="tanh"), {"type": "global_maxpool1d"}, dense(3, "softmax")])
    add("conv_global_avgpool_dense", [10, 3],
        [conv(4, 3, activation="relu"), {"type": "global_avgpool1d"}, dense(2, "sigmoid")])
    # dense: 2-D and 3-D (per time step), every activation, no bias.
    for act in st.ACTIVATIONS:
        add(f"dense2d_{act}", [5], [dense(4, act)])
        add(f"dense3d_{act}", [6, 4], [dense(3, act)])
    add("dense2d_no_bias", [5], [dense(4, use_bias=False)])
    add("dense3d_no_bias", [6, 4], [dense(3, "tanh", use_bias=False)])
    add("dense_stack_2d", [5], [dense(4, "relu"), dense(4, "tanh"), dense(3, "softmax")])
    # flatten, dropout (eval: identity), activation layers.
    add("flatten", [6, 3], [{"type": "flatten"}])
    add("conv_flatten_dense", [8, 3], [conv(3, 3, activation="relu"), {"type": "flatten"}, dense(3, "softmax")])
    add("dropout_eval", [6, 3], [conv(4, 3), {"type": "dropout", "rate": 0.5}, dense(2)])
    for act in st.ACTIVATIONS:
        add(f"activation_{act}", [6, 4], [{"type": "activation", "activation": act}])
    add("dense_activation_softmax", [6, 4], [dense(3), {"type": "activation", "activation": "softmax"}])
    # recurrent cells x return_sequences.
    cells = [("rnn_tanh", "simple_rnn", {"activation": "tanh"}),
             ("rnn_relu", "simple_rnn", {"activation": "relu"}),
             ("lstm", "lstm", {}), ("gru", "gru", {})]
    for name, kind, kw in cells:
        for seq in (False, True):
            add(f"{name}_{'seq' if seq else 'last'}", [7, 3], [rnn(kind, 4, seq, **kw)])
    # bidirectional: every cell x merge mode x return_sequences.
    for name, kind, kw in cells:
        for merge in ("concat", "sum", "mul", "ave"):
            for seq in (False, True):
                add(f"bi_{name}_{merge}_{'seq' if seq else 'last'}", [6, 3], [bidi(rnn(kind, 3, seq, **kw), merge)])
    # stacked recurrent layers.
    add("stack_lstm_gru", [7, 3], [rnn("lstm", 4, True), rnn("gru", 3, False), dense(2, "softmax")])
    add("stack_rnn_bilstm_dense3d", [6, 3],
        [rnn("simple_rnn", 4, True), bidi(rnn("lstm", 3, True), "concat"), dense(2, "sigmoid")])
    add("stack_conv_bilstm_bigru", [12, 4],
        [conv(4, 3, activation="relu"), pool("maxpool1d", 2, 2), bidi(rnn("lstm", 3, True), "concat"),
         bidi(rnn("gru", 3, False), "ave"), dense(3, "softmax")])
    add("stack_dense3d_bigru_sum", [6, 4],
        [dense(5, "tanh"), bidi(rnn("gru", 4, True), "sum"), bidi(rnn("simple_rnn", 3, False), "mul"), dense(2)])
    # layer_norm: on (length, channels) and (features), in a stack, with Keras' epsilon.
    add("layer_norm_seq", [6, 4], [{"type": "layer_norm"}])
    add("layer_norm_flat", [5], [{"type": "layer_norm", "epsilon": 0.001}])
    add("conv_layer_norm_bigru", [9, 3],
        [conv(4, 3, activation="relu"), {"type": "layer_norm"},
         bidi(rnn("gru", 3, True), "concat"), {"type": "layer_norm"}, dense(2, "softmax")])
    # the seed model (models/seed.json), shrunk: same layers and input, fewer units.
    add("seed_small", [40, 4],
        [conv(8, 10, activation="relu"), pool("maxpool1d", 5, 5),
         bidi(rnn("simple_rnn", 6, True), "concat"), {"type": "flatten"},
         dense(10, "relu"), dense(2, "softmax")], inp="dna")
    # a small DanQ-like model.
    add("danq_small", [30, 4],
        [conv(6, 5, activation="relu"), pool("maxpool1d", 3, 3), {"type": "dropout", "rate": 0.2},
         bidi(rnn("lstm", 4, True), "concat"), {"type": "dropout", "rate": 0.5}, {"type": "flatten"},
         dense(8, "relu"), dense(5, "sigmoid")], inp="dna")
    return out


# ---------------------------------------------------------------- naive reference (self-check)

def naive_conv(x, w, b, s, d, padding, act):
    """x (B, L, C) numpy; w (F, C, k). Direct definition with Keras `same` padding."""
    B, L, C = x.shape
    Fn, _, k = w.shape
    if padding == "same":
        left, _ = st.same_padding(L, k, s, d)
        n_out = -(-L // s)
    else:
        left, n_out = 0, (L - (k - 1) * d - 1) // s + 1
    y = np.zeros((B, n_out, Fn))
    for bi in range(B):
        for t in range(n_out):
            for f in range(Fn):
                acc = b[f] if b is not None else 0.0
                for j in range(k):
                    pos = t * s + j * d - left
                    if 0 <= pos < L:
                        acc += float(np.dot(x[bi, pos], w[f, :, j]))
                y[bi, t, f] = acc
    return st.activate(act, torch.from_numpy(y)).numpy()


def naive_pool(x, kind, p, s, padding):
    B, L, C = x.shape
    if padding == "same":
        left, _ = st.same_padding(L, p, s)
        n_out = -(-L // s)
    else:
        left, n_out = 0, (L - p) // s + 1
    y = np.zeros((B, n_out, C))
    for t in range(n_out):
        idx = [t * s + j - left for j in range(p)]
        idx = [i for i in idx if 0 <= i < L]
        win = x[:, idx, :]
        y[:, t, :] = win.max(axis=1) if kind == "maxpool1d" else win.mean(axis=1)
    return y


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def keras_reference(x, kw, spec):
    """Forward pass in Keras' conventions (kernels (in, out), GRU gates z, r, h with
    reset_after, one LSTM/SimpleRNN bias), written from the Keras cell equations; for checking
    seqgrad_torch.from_keras_weights. Supports conv1d (valid), dense, simple_rnn, lstm, gru and
    bidirectional(concat)."""
    def cell(kind, w, seq):
        K, U, b = w
        u = U.shape[0]
        h = np.zeros((seq.shape[0], u))
        c = np.zeros_like(h)
        outs = []
        for t in range(seq.shape[1]):
            xt = seq[:, t, :]
            if kind == "gru":
                mx, mh = xt @ K + b[0], h @ U + b[1]
                z = _sig(mx[:, :u] + mh[:, :u])
                r = _sig(mx[:, u:2 * u] + mh[:, u:2 * u])
                hh = np.tanh(mx[:, 2 * u:] + r * mh[:, 2 * u:])
                h = z * h + (1 - z) * hh
            elif kind == "lstm":
                m = xt @ K + h @ U + b
                i, f, g, o = _sig(m[:, :u]), _sig(m[:, u:2 * u]), np.tanh(m[:, 2 * u:3 * u]), _sig(m[:, 3 * u:])
                c = f * c + i * g
                h = o * np.tanh(c)
            else:
                h = np.tanh(xt @ K + h @ U + b)
            outs.append(h)
        return np.stack(outs, axis=1)

    for ls, w in zip(spec["layers"], kw):
        kind = ls["type"]
        if kind == "conv1d":
            K, b = w
            k = K.shape[0]
            x = np.stack([np.einsum("bjc,jcf->bf", x[:, t:t + k, :], K) for t in range(x.shape[1] - k + 1)], 1) + b
        elif kind == "dense":
            x = x @ w[0] + w[1]
        elif kind == "bidirectional":
            inner = ls["layer"]
            half = len(w) // 2
            f = cell(inner["type"], w[:half], x)
            bw = cell(inner["type"], w[half:], x[:, ::-1, :])[:, ::-1, :]
            x = np.concatenate([f, bw], -1) if inner.get("return_sequences") else np.concatenate([f[:, -1], bw[:, 0]], -1)
        else:
            y = cell(kind, w, x)
            x = y if ls.get("return_sequences") else y[:, -1]
    return x


def keras_check():
    rng = np.random.default_rng(5)
    spec = {"input_shape": [7, 3], "layers": [
        conv(4, 3), bidi(rnn("gru", 3, True), "concat"), rnn("lstm", 4, True), rnn("simple_rnn", 3, False), dense(2)]}
    r = lambda *s: rng.normal(0, 0.5, s)  # noqa: E731
    kw = [[r(3, 3, 4), r(4)],
          [r(4, 9), r(3, 9), r(2, 9), r(4, 9), r(3, 9), r(2, 9)],
          [r(6, 16), r(4, 16), r(16)],
          [r(4, 3), r(3, 3), r(3)],
          [r(3, 2), r(2)]]
    x = rng.normal(size=(2, 7, 3))
    m = st.from_spec(spec, torch.float64).eval()
    st.load_weights(m, {k: torch.from_numpy(v) for k, v in st.from_keras_weights(spec, kw).items()})
    got = m(torch.from_numpy(x)).detach().numpy()
    want = keras_reference(x, kw, spec)
    assert np.allclose(got, want, rtol=0, atol=1e-12), np.abs(got - want).max()
    back = st.to_keras_weights(spec, st.from_keras_weights(spec, kw))
    for a, b in zip(kw, back):
        assert all(np.allclose(u, v, rtol=0, atol=1e-15) for u, v in zip(a, b))
    print("self-check: Keras weights (conv1d, bidirectional gru, lstm, simple_rnn, dense) convert exactly")


def self_check(all_cases):
    n = 0
    for name, spec, _ in all_cases:
        if len(spec["layers"]) != 1:
            continue
        ls = spec["layers"][0]
        if ls["type"] not in ("conv1d", "maxpool1d", "avgpool1d"):
            continue
        torch.manual_seed(1)
        m = st.from_spec(spec, torch.float64).eval()
        x = torch.randn(BATCH, *spec["input_shape"], dtype=torch.float64)
        got = m(x).detach().numpy()
        xn = x.numpy()
        if ls["type"] == "conv1d":
            layer = m.layers[0]
            want = naive_conv(xn, layer.weight.detach().numpy(),
                              None if layer.bias is None else layer.bias.detach().numpy(),
                              layer.stride, layer.dilation, layer.padding, layer.activation)
        else:
            want = naive_pool(xn, ls["type"], ls["pool_size"], ls.get("strides") or ls["pool_size"],
                              ls.get("padding", "valid"))
        if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-12):
            raise SystemExit(f"self-check failed for {name}: shapes {got.shape} vs {want.shape}")
        n += 1
    # Flatten is time-major on channels-last.
    x = torch.arange(12, dtype=torch.float64).reshape(1, 3, 4)
    assert st.Flatten()(x).tolist() == [list(map(float, range(12)))]
    # Bidirectional with return_sequences false: forward at t=L-1, backward at t=0.
    torch.manual_seed(2)
    bi = st.from_spec({"input_shape": [5, 2], "layers": [bidi(rnn("gru", 3, False), "concat")]}, torch.float64)
    seq = st.from_spec({"input_shape": [5, 2], "layers": [bidi(rnn("gru", 3, True), "concat")]}, torch.float64)
    seq.load_state_dict(bi.state_dict())
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    full = seq(x)
    assert torch.equal(bi(x), torch.cat([full[:, -1, :3], full[:, 0, 3:]], dim=-1))
    # The backward direction alone equals a forward cell run on the reversed sequence.
    fwd = st.from_spec({"input_shape": [5, 2], "layers": [rnn("gru", 3, True)]}, torch.float64)
    fwd.load_state_dict({k.replace("_reverse", ""): v for k, v in bi.state_dict().items() if "_reverse" in k})
    assert torch.allclose(full[:, :, 3:], fwd(x.flip(1)).flip(1), rtol=0, atol=1e-14)
    print(f"self-check: {n} conv/pool cases match the naive definitions; flatten and bidirectional rules hold")
    keras_check()


# ---------------------------------------------------------------- generation

def make_input(shape, kind, gen):
    if kind == "dna":
        # soft one-hot: a random base per position plus a little noise (no exact ties in pools)
        idx = torch.randint(0, 4, shape[:-1], generator=gen)
        x = torch.nn.functional.one_hot(idx, 4).to(torch.float64)
        return 0.9 * x + 0.1 * torch.rand(shape, generator=gen, dtype=torch.float64)
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def model_json(spec):
    """A model file in the repository's style: one layer per line."""
    layers = ",\n  ".join(json.dumps(ls) for ls in spec["layers"])
    return f'{{"input_shape": {json.dumps(spec["input_shape"])}, "layers": [\n  {layers}]}}\n'


def write_case(name, spec, inp, seed, out_dir):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = st.from_spec(spec, torch.float64)
    with torch.no_grad():
        # torch's default init gives non-zero biases; make sure of it (and break symmetry).
        for pname, p in model.named_parameters():
            if "bias" in pname:
                p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
                # keep most relu units alive, so their gradients are exercised
                ls = spec["layers"][int(pname.split(".")[1])]
                if ls.get("activation") == "relu" or ls.get("layer", {}).get("activation") == "relu":
                    p.add_(0.6 if "_ih_" in pname or "_hh_" not in pname else 0.0)
            elif spec["layers"][int(pname.split(".")[1])]["type"] == "layer_norm":
                # layer_norm's weight starts at 1: move it off, so its gradient role is seen
                p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    model.eval()
    x = make_input([BATCH, *spec["input_shape"]], inp, gen)
    with torch.no_grad():
        out_shape = model(x).shape
    og = torch.randn(out_shape, generator=gen, dtype=torch.float64)
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.json"), "w") as f:
        f.write(model_json(spec))
    for dtype, fname in ((torch.float64, "f64"), (torch.float32, "f32")):
        m = copy.deepcopy(model).to(dtype)
        r = st.gradients(m, x.to(dtype), og.to(dtype))
        for k, v in r.items():
            if not torch.isfinite(v).all():
                raise SystemExit(f"{name}/{fname}: {k} is not finite")
        tensors = dict(st.state_tensors(m))
        tensors["input"] = x.to(dtype)
        tensors["output_grad"] = og.to(dtype)
        for k, v in r.items():
            tensors[f"expected.{k}"] = v
        st.save_tensors(tensors, os.path.join(folder, f"{fname}.safetensors"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run the self-checks only")
    ap.add_argument("--out", default=OUT, help="fixture folder (default tests/fixtures/parity)")
    ap.add_argument("--case", action="append", default=[],
                    help="(re)write only the named case(s), leaving the others as they are")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    all_cases = cases()
    names = [c[0] for c in all_cases]
    assert len(names) == len(set(names)), "duplicate case names"
    self_check(all_cases)
    if args.check:
        return
    if args.case:
        unknown = set(args.case) - set(names)
        if unknown:
            raise SystemExit(f"unknown case(s): {sorted(unknown)}")
        for name, spec, inp in all_cases:
            if name in args.case:
                write_case(name, spec, inp, zlib.crc32(name.encode()), args.out)
        print(f"wrote {len(args.case)} case(s) x 2 dtypes to {os.path.relpath(args.out, ROOT)}")
        return
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    for name, spec, inp in all_cases:
        write_case(name, spec, inp, zlib.crc32(name.encode()), args.out)
    total = 0
    for dirpath, _, files in os.walk(args.out):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    print(f"wrote {len(all_cases)} cases x 2 dtypes to {os.path.relpath(args.out, ROOT)}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
