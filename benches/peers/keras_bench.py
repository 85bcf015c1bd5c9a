#!/usr/bin/env python3
"""The Keras 3 on JAX side of `seqgrad bench`: same workloads, same JSON line.

    KERAS_BACKEND=jax python benches/peers/keras_bench.py --workload w1|w2|w3|MODEL.json
        [--batch-size N] [--mode train|infer] [--style jit|fit] [--seconds S]

The model is the workload's model file built as Keras layers (Conv1D 'valid', MaxPooling1D,
Dropout, Bidirectional(LSTM / SimpleRNN, merge concat), Flatten, Dense; Keras' default
initialisers), float32, random one-hot input and random targets, as `torch_bench.py`. The last
layer's softmax/sigmoid is left out of the trained graph and the loss takes logits
(sparse categorical / binary cross-entropy `from_logits=True`), like seqgrad and the PyTorch side;
inference applies it. Adam: lr 1e-3, eps 1e-7 (Keras' and seqgrad's defaults).

Two ways to run a step, the fastest of which the peer script uses (`--style`):
- `jit` (default): the JAX custom-training-loop pattern of the Keras guide: the train step is
  `model.stateless_call` → loss → `jax.value_and_grad` → `optimizer.stateless_apply`, all under one
  `jax.jit` with the variables donated; inference is a jitted `stateless_call(training=False)`.
- `fit`: `model.compile(jit_compile=True)` and `train_on_batch` / `predict_on_batch`.

Threads: XLA's CPU client uses every core of the machine (2 here) and has no per-process
thread-count setting short of `taskset`; `--threads 1` runs it under one core's affinity.
Warm-up (JIT compilation included): at least two steps and 10% of the time budget. Peak RSS is
VmHWM of this process (imports and XLA compilation included).
"""
import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

from peer_common import WORKLOADS, time_steps  # noqa: E402

KINDS = {
    "Conv1D": "conv1d", "MaxPooling1D": "maxpool1d", "Dense": "dense", "Flatten": "flatten",
    "Dropout": "dropout", "SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru",
    "Bidirectional": "bidirectional",
}


def build(spec):
    """(keras.Sequential with logits out, head activation or None)."""
    import keras
    from keras import layers as L

    def kind(s):
        return KINDS.get(s["type"], s["type"])

    def rnn(s):
        k = kind(s)
        common = dict(units=s["units"], return_sequences=s.get("return_sequences", False))
        if k == "lstm":
            return L.LSTM(**common)
        if k == "gru":
            return L.GRU(**common)
        if k == "simple_rnn":
            return L.SimpleRNN(activation=s.get("activation", "tanh"), **common)
        raise ValueError(f"unsupported recurrent layer {s['type']}")

    specs = spec["layers"]
    head = None
    out = [keras.Input(tuple(spec["input_shape"]))]
    for i, s in enumerate(specs):
        k = kind(s)
        act = s.get("activation", "linear")
        if i == len(specs) - 1 and act in ("softmax", "sigmoid"):
            head, act = act, "linear"
        if k == "conv1d":
            out.append(L.Conv1D(s["filters"], s["kernel_size"], strides=s.get("strides", 1),
                                padding=s.get("padding", "valid"),
                                dilation_rate=s.get("dilation", 1), activation=act))
        elif k == "maxpool1d":
            out.append(L.MaxPooling1D(s["pool_size"], strides=s.get("strides"),
                                      padding=s.get("padding", "valid")))
        elif k == "dropout":
            out.append(L.Dropout(s["rate"]))
        elif k == "flatten":
            out.append(L.Flatten())
        elif k == "dense":
            out.append(L.Dense(s["units"], activation=act))
        elif k == "bidirectional":
            out.append(L.Bidirectional(rnn(s["layer"]), merge_mode=s.get("merge_mode", "concat")))
        elif k in ("lstm", "gru", "simple_rnn"):
            out.append(rnn(s))
        else:
            raise ValueError(f"unsupported layer {s['type']}")
    return keras.Sequential(out), head


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", required=True)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--style", choices=["jit", "fit"], default="jit")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0, help="weights and batch")
    a = ap.parse_args(argv)

    if a.threads < os.cpu_count():
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:a.threads]))
    import numpy as np
    import jax
    import jax.numpy as jnp
    import keras

    path, batch = WORKLOADS.get(a.workload.lower(), (a.workload, 32))
    batch = a.batch_size or batch
    with open(path) as f:
        spec = json.load(f)
    keras.utils.set_random_seed(a.seed)
    model, head = build(spec)
    rng = np.random.default_rng(a.seed)
    in_shape = tuple(spec["input_shape"])
    x = np.eye(in_shape[-1], dtype="float32")[rng.integers(0, in_shape[-1], (batch, *in_shape[:-1]))]
    out_shape = model.output_shape[1:]
    if head == "softmax":
        y = rng.integers(0, out_shape[-1], (batch,)).astype("int32")
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    elif head == "sigmoid":
        y = rng.integers(0, 2, (batch, *out_shape)).astype("float32")
        loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    else:
        y = rng.standard_normal((batch, *out_shape)).astype("float32")
        loss_fn = keras.losses.MeanSquaredError()
    optimizer = keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7)

    def activate(z):
        if head == "softmax":
            return jax.nn.softmax(z, axis=-1)
        if head == "sigmoid":
            return jax.nn.sigmoid(z)
        return z

    if a.style == "fit":
        model.compile(optimizer=optimizer, loss=loss_fn, jit_compile=True)
        if a.mode == "train":
            def step():
                return model.train_on_batch(x, y)
        else:
            def step():
                return activate(model.predict_on_batch(x))
    else:
        optimizer.build(model.trainable_variables)
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        if a.mode == "train":
            def loss_of(tv, ntv, xb, yb):
                z, ntv = model.stateless_call(tv, ntv, xb, training=True)
                return loss_fn(yb, z), ntv

            grad_fn = jax.value_and_grad(loss_of, has_aux=True)

            def train_step(state, xb, yb):
                tv, ntv, ov = state
                (loss, ntv), grads = grad_fn(tv, ntv, xb, yb)
                tv, ov = optimizer.stateless_apply(ov, grads, tv)
                return loss, (tv, ntv, ov)

            train_step = jax.jit(train_step, donate_argnums=0)
            state = [[v.value for v in model.trainable_variables],
                     [v.value for v in model.non_trainable_variables],
                     [v.value for v in optimizer.variables]]

            def step():
                nonlocal state
                loss, state = train_step(state, xj, yj)
                return loss
        else:
            tv = [v.value for v in model.trainable_variables]
            ntv = [v.value for v in model.non_trainable_variables]

            @jax.jit
            def predict(tv, ntv, xb):
                z, _ = model.stateless_call(tv, ntv, xb, training=False)
                return activate(z)

            def step():
                return predict(tv, ntv, xj)

    def run():
        out = step()
        jax.block_until_ready(out)

    timing = time_steps(run, batch, a.seconds)
    print(json.dumps({
        "workload": a.workload, "mode": a.mode, "batch_size": batch, "style": a.style,
        "threads": len(os.sched_getaffinity(0)), **timing,
        "versions": f"keras {keras.__version__}, jax {jax.__version__}",
    }))

if __name__ == "__main__":
    main()
