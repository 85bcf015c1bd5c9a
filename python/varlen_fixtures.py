"""Generates the variable-length parity fixtures under tests/fixtures/varlen/ (checked by the
`varlen` module of tests/it): small models run by PyTorch on padded mixed-length batches with
`torch.nn.utils.rnn.pack_padded_sequence`, the reference for seqgrad's masked batches.

    /work/venv/bin/python python/varlen_fixtures.py

The PyTorch side is written out by hand with plain `torch.nn` modules (not seqgrad's
translator), the way a PyTorch user writes it:

    x = x * mask                                   # padded positions ignored
    z = conv1d / max_pool1d on the padded batch    # valid windows: real positions only
    lengths' = formula(lengths)                    # per-record output lengths
    packed = pack_padded_sequence(z, lengths', batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed)                         # h_n: last real step (fwd), t = 0 (reverse)
    seq, _ = pad_packed_sequence(out, batch_first=True, total_length=L')  # zeros past the end

Layout, one folder per case:

    tests/fixtures/varlen/<case>/model.json        the seqgrad model file (input_shape [null, C])
    tests/fixtures/varlen/<case>/f64.safetensors   all tensors F64
    tests/fixtures/varlen/<case>/f32.safetensors   all tensors F32 (weights and input rounded,
                                                   PyTorch run in float32)

each safetensors file holding `layers.<i>.<name>` (PyTorch names), `input` (batch, L, C) with
non-zero garbage at padded positions, `lengths` (batch) as floats, `output_grad`, and
`expected.output`, `expected.input_grad` (d/d input of sum(output * output_grad)) and
`expected.grad.layers.<i>.<name>`. Deterministic: rerunning writes identical files.
"""

from __future__ import annotations

import json
import os
import shutil

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "varlen")


class ConvPoolBiLstm(nn.Module):
    """conv1d (valid, relu) → maxpool1d → BiLSTM (last state, concat) → dense softmax."""

    spec = {"input_shape": [None, 4], "layers": [
        {"type": "conv1d", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "maxpool1d", "pool_size": 2},
        {"type": "bidirectional", "merge_mode": "concat",
         "layer": {"type": "lstm", "units": 3, "return_sequences": False}},
        {"type": "dense", "units": 2, "activation": "softmax"}]}

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3)
        self.rnn = nn.LSTM(4, 3, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(6, 2)

    def names(self):
        return {"conv": 0, "rnn": 2, "dense": 3}

    def forward(self, x, lengths):
        z = F.relu(self.conv(x.transpose(1, 2)))           # (B, 4, L-2)
        z = F.max_pool1d(z, 2).transpose(1, 2)              # (B, (L-2)//2, 4)
        lens = (lengths - 2) // 2
        packed = pack_padded_sequence(z, lens, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)                        # h: (2, B, 3)
        return torch.softmax(self.dense(torch.cat([h[0], h[1]], dim=1)), dim=1)


def last_state(cell: str, torch_rnn) -> type:
    """One recurrent layer of type `cell` (PyTorch's `torch_rnn`; last state) → dense."""

    class LastState(nn.Module):
        spec = {"input_shape": [None, 3], "layers": [
            {"type": cell, "units": 4, "return_sequences": False},
            {"type": "dense", "units": 2}]}

        def __init__(self):
            super().__init__()
            self.rnn = torch_rnn(3, 4, batch_first=True)
            self.dense = nn.Linear(4, 2)

        def names(self):
            return {"rnn": 0, "dense": 1}

        def forward(self, x, lengths):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, h = self.rnn(packed)
            return self.dense(h[0])

    return LastState


class BiGruSeqAvg(nn.Module):
    """BiGRU (return_sequences, concat) → global average over real positions → dense."""

    spec = {"input_shape": [None, 3], "layers": [
        {"type": "bidirectional", "merge_mode": "concat",
         "layer": {"type": "gru", "units": 3, "return_sequences": True}},
        {"type": "global_avgpool1d"},
        {"type": "dense", "units": 2, "activation": "sigmoid"}]}

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 3, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(6, 2)

    def names(self):
        return {"rnn": 0, "dense": 2}

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        seq, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        avg = seq.sum(dim=1) / lengths.to(seq.dtype).unsqueeze(1)
        return torch.sigmoid(self.dense(avg))


class BiLstmSeqSum(nn.Module):
    """BiLSTM (return_sequences, sum merge) output as is: zeros past each record's end."""

    spec = {"input_shape": [None, 2], "layers": [
        {"type": "bidirectional", "merge_mode": "sum",
         "layer": {"type": "lstm", "units": 3, "return_sequences": True}}]}

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(2, 3, batch_first=True, bidirectional=True)

    def names(self):
        return {"rnn": 0}

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        seq, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return seq[..., :3] + seq[..., 3:]


CASES = [
    ("conv_pool_bilstm", ConvPoolBiLstm, [13, 6, 10, 8]),
    ("gru", last_state("gru", nn.GRU), [5, 2, 4]),
    ("simple_rnn", last_state("simple_rnn", nn.RNN), [5, 1, 3]),  # Elman, tanh
    ("bigru_seq_global_avg", BiGruSeqAvg, [6, 3, 5, 1]),
    ("bilstm_seq_sum", BiLstmSeqSum, [4, 2, 3]),
]


def seqgrad_names(model: nn.Module) -> dict:
    """PyTorch parameter name → seqgrad's `layers.<i>.<name>` (the same PyTorch tail)."""
    index = model.names()
    out = {}
    for name, _ in model.named_parameters():
        module, tail = name.split(".", 1)
        out[name] = f"layers.{index[module]}.{tail}"
    return out


def run(model_cls, lengths, dtype, seed):
    torch.manual_seed(seed)
    model = model_cls().to(torch.float64)
    for p in model.parameters():  # non-zero biases too
        nn.init.uniform_(p, -0.6, 0.6)
    b, c = len(lengths), model_cls.spec["input_shape"][1]
    length = max(lengths)
    x = torch.rand(b, length, c, dtype=torch.float64) * 2 - 1
    lens = torch.tensor(lengths, dtype=torch.int64)
    mask = (torch.arange(length).unsqueeze(0) < lens.unsqueeze(1)).to(torch.float64).unsqueeze(2)
    with torch.no_grad():
        out0 = model(x * mask, lens)
    og = torch.rand(out0.shape, dtype=torch.float64) * 2 - 1
    # f32: the same weights and data rounded, computed in float32
    model = model.to(dtype)
    x = x.to(dtype).requires_grad_(True)
    og = og.to(dtype)
    out = model(x * mask.to(dtype), lens)
    (out * og).sum().backward()
    tensors = {seqgrad_names(model)[n]: p.detach().clone() for n, p in model.named_parameters()}
    tensors.update({
        "input": x.detach().clone(),
        "lengths": lens.to(dtype),
        "output_grad": og,
        "expected.output": out.detach().clone(),
        "expected.input_grad": x.grad.detach().clone(),
    })
    for n, p in model.named_parameters():
        tensors["expected.grad." + seqgrad_names(model)[n]] = p.grad.detach().clone()
    return tensors


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    for i, (name, cls, lengths) in enumerate(CASES):
        folder = os.path.join(OUT, name)
        os.makedirs(folder)
        with open(os.path.join(folder, "model.json"), "w") as f:
            json.dump(cls.spec, f, indent=1)
            f.write("\n")
        for dtype, file in [(torch.float64, "f64.safetensors"), (torch.float32, "f32.safetensors")]:
            t = run(cls, lengths, dtype, 1000 + i)
            save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(folder, file))
        print(f"{name}: lengths {lengths}")


if __name__ == "__main__":
    main()
