#!/usr/bin/env python3
"""Keras 3 parity fixtures for seqgrad's Keras import (tests/it/keras_parity.rs).

For every model below, in float32 and float64 (``keras.config.set_floatx``), writes to
``tests/fixtures/keras/``:

- ``NAME.json``: ``model.to_json()`` (written once, from the float32 model);
- ``NAME.f32.keras`` / ``NAME.f64.keras``: the model saved by Keras 3 (``model.save``), the
  weights below in its ``model.weights.h5``;
- ``NAME.f32.safetensors`` / ``NAME.f64.safetensors``: the Keras variables under their
  ``model.weights.h5`` paths prefixed ``keras/`` (``keras/layers/conv1d/vars/0``), an input
  batch ``input``, an upstream gradient ``output_grad``, Keras' ``output`` (inference mode)
  and ``input_grad`` = d(sum(output * output_grad))/d input, by torch autograd through the
  Keras torch backend.

And the seed model (``models/seed.json``) as Keras builds it, with seeded random weights:
``seed.keras`` (saved by Keras 3), ``seed_expected.tsv`` (Keras' predictions on
``seed_data.csv``), ``seed.f32.safetensors`` (input, output, input gradient; no variables)
and ``seed.vars.safetensors``: ``seed.keras``'s variables exactly as
``python python/keras_to_seqgrad.py seed.keras seed.vars.safetensors`` dumps them (no
``keras/`` prefix), so plain ``cargo test`` (no HDF5 library, no Python) runs
``seqgrad convert --keras-weights`` + ``predict`` on the seed model against Keras.

Run: KERAS_BACKEND=torch python python/keras_fixtures.py  (Keras 3, torch, h5py, safetensors);
``--only NAME …`` writes just those models' files.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import keras  # noqa: E402
from keras import layers as L  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

# Keras 3's non-TensorFlow backends follow JAX's default and compute float64 `ops.matmul` (Dense,
# the recurrent cells) in float32: `dtypes.result_type(float64, float64)` is "float32" through
# BIT64_TO_BIT32_DTYPE. Lift that so "float64" fixtures are float64 all the way through (the
# layers' maths is unchanged; only the precision of the products).
from keras.src.backend.common import dtypes as _kdtypes  # noqa: E402

_kdtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"

sys.path.insert(0, os.path.dirname(__file__))
from keras_to_seqgrad import read_vars  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "keras")


def models():
    """name -> (builder, input shape). Builders make a fresh model in the current floatx."""

    def conv_same_stride():
        # 'same' at stride > 1 pads asymmetrically (more on the right); dilation too.
        return keras.Sequential([
            keras.Input((23, 4)),
            L.Conv1D(5, 4, strides=3, padding="same", activation="relu"),
            L.Conv1D(4, 3, strides=2, padding="same"),
            L.Conv1D(3, 2, padding="same", dilation_rate=2, activation="tanh"),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ])

    def pools_same():
        # Max pools with asymmetric 'same' padding; average pools where Keras' torch backend
        # and its TF/JAX backends agree (see docs/keras.md).
        return keras.Sequential([
            keras.Input((17, 3)),
            L.Conv1D(4, 3, padding="same"),
            L.MaxPooling1D(3, strides=2, padding="same"),
            L.MaxPooling1D(4, strides=3, padding="same"),
            L.Conv1D(4, 1),
            L.AveragePooling1D(3, strides=1, padding="same"),
            L.AveragePooling1D(2, padding="same"),
            L.GlobalMaxPooling1D(),
            L.Dense(2),
        ])

    def pools_valid_global_avg():
        return keras.Sequential([
            keras.Input((19, 4)),
            L.Conv1D(6, 4, activation="relu"),
            L.AveragePooling1D(3, strides=2),
            L.MaxPooling1D(2),
            L.GlobalAveragePooling1D(),
            L.Dense(3, activation="sigmoid"),
        ])

    def bi_lstm_concat():
        return keras.Sequential([
            keras.Input((9, 4)),
            L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode="concat"),
            L.Flatten(),
            L.Dense(1, activation="sigmoid"),
        ])

    def bi_gru_sum():
        return keras.Sequential([
            keras.Input((8, 3)),
            L.Bidirectional(L.GRU(4), merge_mode="sum"),
            L.Dense(3, activation="softmax"),
        ])

    def bi_rnn_mul():
        return keras.Sequential([
            keras.Input((7, 4)),
            L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode="mul"),
            L.GlobalMaxPooling1D(),
            L.Dense(2),
        ])

    def bi_lstm_ave():
        return keras.Sequential([
            keras.Input((6, 4)),
            L.Bidirectional(L.LSTM(3), merge_mode="ave"),
            L.Dense(2, activation="softmax"),
        ])

    def stacked_rnns():
        return keras.Sequential([
            keras.Input((16, 4)),
            L.Conv1D(6, 5, activation="relu"),
            L.MaxPooling1D(2),
            L.GRU(5, return_sequences=True),
            L.LSTM(4, return_sequences=True),
            L.SimpleRNN(3, activation="relu"),
            L.Dropout(0.3),
            L.Dense(2, activation="softmax"),
        ])

    def functional_chain():
        inp = keras.Input((15, 4))
        x = L.Conv1D(4, 3, strides=2, padding="same")(inp)
        x = L.Activation("tanh")(x)
        x = L.Bidirectional(L.GRU(3, return_sequences=True))(x)
        x = L.GlobalAveragePooling1D()(x)
        x = L.Dropout(0.1)(x)
        out = L.Dense(2, activation="softmax")(x)
        return keras.Model(inp, out)

    def seed_small():
        # models/seed.json's structure at a smaller width (the full seed is the .keras fixture).
        return keras.Sequential([
            keras.Input((40, 4)),
            L.Conv1D(8, 10, activation="relu"),
            L.MaxPooling1D(5, strides=5),
            L.Bidirectional(L.SimpleRNN(6, return_sequences=True), merge_mode="concat"),
            L.Flatten(),
            L.Dense(7, activation="relu"),
            L.Dense(2, activation="softmax"),
        ])

    def conv_layer_norm():
        # LayerNormalization on a sequence (Keras' epsilon 1e-3) and on flat features.
        return keras.Sequential([
            keras.Input((11, 4)),
            L.Conv1D(5, 3, activation="relu"),
            L.LayerNormalization(),
            L.GRU(4, return_sequences=True),
            L.LayerNormalization(epsilon=1e-5),
            L.GlobalAveragePooling1D(),
            L.Dense(3),
            L.LayerNormalization(),
            L.Dense(2, activation="softmax"),
        ])

    return {
        "conv_same_stride": (conv_same_stride, (23, 4)),
        "pools_same": (pools_same, (17, 3)),
        "pools_valid_global_avg": (pools_valid_global_avg, (19, 4)),
        "bi_lstm_concat": (bi_lstm_concat, (9, 4)),
        "bi_gru_sum": (bi_gru_sum, (8, 3)),
        "bi_rnn_mul": (bi_rnn_mul, (7, 4)),
        "bi_lstm_ave": (bi_lstm_ave, (6, 4)),
        "stacked_rnns": (stacked_rnns, (16, 4)),
        "functional_chain": (functional_chain, (15, 4)),
        "seed_small": (seed_small, (40, 4)),
        "conv_layer_norm": (conv_layer_norm, (11, 4)),
    }


def seed_model():
    """models/seed.json, in Keras."""
    return keras.Sequential([
        keras.Input((40, 4)),
        L.Conv1D(100, 10, activation="relu"),
        L.MaxPooling1D(5, strides=5),
        L.Bidirectional(L.SimpleRNN(100, return_sequences=True), merge_mode="concat"),
        L.Flatten(),
        L.Dense(100, activation="relu"),
        L.Dense(2, activation="softmax"),
    ])


def randomize(model, rng):
    """Non-zero biases and weights of a useful scale, so every mapping is exercised."""
    for v in model.weights:
        shape = tuple(v.shape)
        fan = shape[0] if len(shape) > 1 else 4
        v.assign((rng.standard_normal(shape) / np.sqrt(max(fan, 1)) * 0.9).astype(v.dtype))


def keras_vars(model):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.weights.h5")
        model.save_weights(p)
        return read_vars(p)


def run(model, x, g):
    xt = torch.tensor(x, requires_grad=True)
    y = model(xt, training=False)
    (y * torch.tensor(g)).sum().backward()
    return y.detach().cpu().numpy(), xt.grad.detach().cpu().numpy()


def one_hot_batch(rng, batch, shape, dtype):
    """One-hot DNA-like inputs plus noise (noise keeps max-pool ties away)."""
    length, ch = shape
    idx = rng.integers(0, ch, size=(batch, length))
    x = np.eye(ch)[idx] + 0.3 * rng.standard_normal((batch, length, ch))
    return x.astype(dtype)


def main():
    # `--only NAME …`: (re)write just those models' fixtures, nothing else.
    only = sys.argv[sys.argv.index("--only") + 1:] if "--only" in sys.argv else None
    os.makedirs(OUT, exist_ok=True)
    for name, (build, shape) in models().items():
        if only is not None and name not in only:
            continue
        for floatx, dtype, tag in [("float32", np.float32, "f32"), ("float64", np.float64, "f64")]:
            # Both: the global dtype policy, once used, no longer follows floatx.
            keras.config.set_floatx(floatx)
            keras.config.set_dtype_policy(floatx)
            keras.utils.set_random_seed(7)
            rng = np.random.default_rng(sum(map(ord, name)))
            m = build()
            randomize(m, rng)
            x = one_hot_batch(rng, 3, shape, dtype)
            y0 = m(x, training=False)
            g = rng.standard_normal(tuple(y0.shape)).astype(dtype)
            y, dx = run(m, x, g)
            kv = keras_vars(m)
            assert all(v.dtype == dtype for v in kv.values()), (name, tag)
            assert y.dtype == dtype and dx.dtype == dtype, (name, tag)
            tensors = {f"keras/{k}": v for k, v in kv.items()}
            tensors.update(input=x, output_grad=g, output=y.astype(dtype), input_grad=dx.astype(dtype))
            save_file(tensors, os.path.join(OUT, f"{name}.{tag}.safetensors"))
            # The same model and weights as Keras saves them (model.weights.h5 inside).
            m.save(os.path.join(OUT, f"{name}.{tag}.keras"))
            if tag == "f32":
                with open(os.path.join(OUT, f"{name}.json"), "w") as f:
                    f.write(m.to_json() + "\n")
            print(f"{name} {tag}: output {tuple(y.shape)}, {len(tensors) - 4} variables")
    if only is not None:
        return
    # The seed model, saved as a .keras archive by Keras.
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    m = seed_model()
    randomize(m, rng)
    m.save(os.path.join(OUT, "seed.keras"))
    # Its variables as the translator reads them back out of the saved archive.
    save_file(read_vars(os.path.join(OUT, "seed.keras")), os.path.join(OUT, "seed.vars.safetensors"))
    # Records for `seqgrad predict`: 12 random 40 bp sequences.
    seqs = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(12)]
    with open(os.path.join(OUT, "seed_data.csv"), "w") as f:
        f.write("id,sequence\n")
        for i, s in enumerate(seqs):
            f.write(f"r{i},{s}\n")
    onehot = {"A": 0, "C": 1, "G": 2, "T": 3}
    x = np.zeros((len(seqs), 40, 4), np.float32)
    for i, s in enumerate(seqs):
        for t, ch in enumerate(s):
            x[i, t, onehot[ch]] = 1.0
    g = rng.standard_normal((len(seqs), 2)).astype(np.float32)
    y, dx = run(m, x, g)
    with open(os.path.join(OUT, "seed_expected.tsv"), "w") as f:
        f.write("id\tclass0\tclass1\n")
        for i, row in enumerate(y):
            f.write(f"r{i}\t" + "\t".join(f"{v:.9g}" for v in row) + "\n")
    save_file({"input": x, "output_grad": g, "output": y, "input_grad": dx},
              os.path.join(OUT, "seed.f32.safetensors"))
    print("seed.keras:", os.path.getsize(os.path.join(OUT, "seed.keras")), "bytes")


if __name__ == "__main__":
    main()
