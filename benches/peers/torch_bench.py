#!/usr/bin/env python3
"""The PyTorch (eager) side of `seqgrad bench`: same workloads, same JSON line.

    python benches/peers/torch_bench.py --workload w1|w2|w3|MODEL.json [--batch-size N]
        [--mode train|infer] [--threads N] [--seconds S] [--compile]

The model is `python/seqgrad_torch.py`'s module for the same model file (the module seqgrad's
parity fixtures are checked against: channels-last conv1d, nn.RNN/nn.LSTM batch_first,
bidirectional concat). Random one-hot input, random targets, float32. A training step is
zero_grad → forward (logits) → loss (cross-entropy / BCE-with-logits) → backward → Adam
(lr 1e-3, eps 1e-7, as seqgrad's default); an inference step is one forward pass of the whole
model (head included) in `model.eval()` under `torch.inference_mode()`; with `--compile` (inference
only) the model is `torch.compile(model)` (default inductor backend, C++ codegen on CPU; its
first calls compile, inside the warm-up). PyTorch runs at its defaults: the OpenMP wait policy
is whatever the environment says (the peer script leaves it unset unless asked). Warm-up: at
least two steps and 10% of the time budget. Peak RSS is VmHWM of this process (the torch import
included).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))

from peer_common import WORKLOADS, time_steps  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", required=True)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0, help="weights and batch")
    ap.add_argument("--compile", action="store_true", help="inference through torch.compile(model)")
    a = ap.parse_args(argv)
    if a.compile and a.mode != "infer":
        ap.error("--compile is measured for inference only")

    import torch
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    import seqgrad_torch as st

    path, batch = WORKLOADS.get(a.workload.lower(), (a.workload, 32))
    batch = a.batch_size or batch
    torch.manual_seed(a.seed)
    model = st.from_spec(st.load_spec(path))
    in_shape = model.input_shape if hasattr(model, "input_shape") else st.load_spec(path)["input_shape"]
    x = torch.zeros((batch, *in_shape))
    idx = torch.randint(0, in_shape[-1], (batch, *in_shape[:-1]))
    x.scatter_(-1, idx.unsqueeze(-1), 1.0)
    with torch.no_grad():
        out_shape = model(x[:1], logits=True).shape[1:]
    head = model.head()
    loss_fn = st.loss_for(model)
    if head == "softmax":
        y = torch.randint(0, out_shape[-1], (batch,))
    else:
        y = torch.randint(0, 2, (batch, *out_shape)).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    if a.mode == "train":
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x, logits=True), y)
            loss.backward()
            opt.step()
    else:
        model.eval()
        fwd = model
        if a.compile:
            # Without allow_rnn, Dynamo's graph break at nn.LSTM/nn.RNN fails inside the
            # subclasses' forward (torch 2.15: "DelayGraphBreakVariable() has no type").
            import torch._dynamo
            torch._dynamo.config.allow_rnn = True
            fwd = torch.compile(model)

        def step():
            with torch.inference_mode():
                fwd(x)

    timing = time_steps(step, batch, a.seconds)
    print(json.dumps({
        "workload": a.workload, "mode": a.mode, "batch_size": batch, "compile": a.compile,
        "threads": torch.get_num_threads(), **timing,
        "versions": f"torch {torch.__version__}",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }))

if __name__ == "__main__":
    main()
