"""seqgrad_torch: the PyTorch reference of seqgrad models.

Builds a ``torch.nn.Module`` equivalent to a seqgrad model file, with the same parameter names
(``layers.{i}.weight``, ``layers.{i}.weight_ih_l0_reverse`` ...) and shapes, so a seqgrad
safetensors weights file loads into it by name and a state dict written from it loads back into
seqgrad. Input and output are channels-last, as in seqgrad: ``(batch, length, channels)``.

Use it as a library:

    import seqgrad_torch as st
    model = st.from_files("model.json", "weights.safetensors")   # dtype of the file
    model.eval()
    probs = model(x)                      # x: (batch, length, channels) tensor
    logits = model(x, logits=True)        # without the final softmax/sigmoid (for a stable loss)
    ...train in PyTorch (model.train(), torch.optim.*, st.loss_for(model))...
    st.save_weights(model, "continued.safetensors")              # back to seqgrad

or from the command line (same contract as ``seqgrad grad``, for cross-checks):

    python seqgrad_torch.py grad --model M.json --weights W.safetensors --input IN.safetensors --out OUT.safetensors
    python seqgrad_torch.py summary --model M.json

Semantics reproduced exactly (see docs/weights.md):
  conv1d       channels-last around torch's conv; Keras ``same`` padding (also for strides > 1):
               out = ceil(L/s), total = max((out-1)*s + (k-1)*d + 1 - L, 0), left = total//2.
  maxpool1d    ``same`` pads with -inf; avgpool1d divides by the number of real elements only.
  dense        on the last axis (per time step on sequences).
  flatten      time-major on channels-last: (B, L, C) -> (B, L*C).
  simple_rnn/lstm/gru   nn.RNN/nn.LSTM/nn.GRU(batch_first=True), zero initial state.
  bidirectional         merge concat (forward first) | sum | mul | ave; with return_sequences
               false: merge(forward output at t=L-1, backward output at t=0).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")

# Keras class names seqgrad accepts as aliases.
_ALIASES = {
    "Conv1D": "conv1d", "Conv1d": "conv1d",
    "MaxPooling1D": "maxpool1d", "MaxPool1D": "maxpool1d", "MaxPool1d": "maxpool1d",
    "AveragePooling1D": "avgpool1d", "AvgPool1D": "avgpool1d", "AvgPool1d": "avgpool1d",
    "GlobalMaxPooling1D": "global_maxpool1d", "GlobalMaxPool1D": "global_maxpool1d",
    "GlobalAveragePooling1D": "global_avgpool1d", "GlobalAvgPool1D": "global_avgpool1d",
    "Dense": "dense", "Linear": "dense", "Flatten": "flatten", "Dropout": "dropout",
    "Activation": "activation", "SimpleRNN": "simple_rnn", "RNN": "simple_rnn",
    "LSTM": "lstm", "GRU": "gru", "Bidirectional": "bidirectional",
    "LayerNormalization": "layer_norm", "LayerNorm": "layer_norm",
}


def _kind(spec: dict) -> str:
    t = spec["type"]
    return _ALIASES.get(t, t)


def activate(name: str, x: torch.Tensor) -> torch.Tensor:
    """Applies a seqgrad activation (softmax over the last axis)."""
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "softmax":
        return torch.softmax(x, dim=-1)
    raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


def same_padding(length: int, kernel: int, stride: int, dilation: int = 1) -> Tuple[int, int]:
    """Keras ``same`` padding (left, right): output length ceil(length / stride)."""
    out = -(-length // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - length, 0)
    left = total // 2
    return left, total - left


def _window_out(length: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    if padding == "same":
        return -(-length // stride)
    span = (kernel - 1) * dilation + 1
    if span > length:
        raise ValueError(f"window {span} is longer than the input length {length}")
    return (length - span) // stride + 1


class _Activated(nn.Module):
    """A layer with an output activation: ``forward(x) = activate(self.pre(x))``."""

    activation = "linear"

    def pre(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(self.activation, self.pre(x))


class Conv1d(_Activated):
    """seqgrad ``conv1d``: channels-last; ``weight (filters, in, k)``, ``bias (filters)``."""

    def __init__(self, in_channels: int, spec: dict):
        super().__init__()
        self.filters = int(spec["filters"])
        self.kernel_size = int(spec["kernel_size"])
        self.stride = int(spec.get("strides", 1))
        self.dilation = int(spec.get("dilation_rate", 1))
        self.padding = spec.get("padding", "valid")
        self.activation = spec.get("activation", "linear")
        conv = nn.Conv1d(in_channels, self.filters, self.kernel_size, bias=spec.get("use_bias", True))
        self.weight = conv.weight
        self.bias = conv.bias

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        t = x.transpose(1, 2)  # (B, C, L)
        if self.padding == "same":
            t = F.pad(t, same_padding(t.shape[-1], self.kernel_size, self.stride, self.dilation))
        y = F.conv1d(t, self.weight, self.bias, stride=self.stride, dilation=self.dilation)
        return y.transpose(1, 2)


class MaxPool1d(nn.Module):
    """seqgrad ``maxpool1d``: ``same`` pads with -inf."""

    def __init__(self, spec: dict):
        super().__init__()
        self.pool_size = int(spec.get("pool_size", 2))
        s = spec.get("strides")
        self.stride = int(s) if s is not None else self.pool_size
        self.padding = spec.get("padding", "valid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.transpose(1, 2)
        if self.padding == "same":
            t = F.pad(t, same_padding(t.shape[-1], self.pool_size, self.stride), value=-math.inf)
        return F.max_pool1d(t, self.pool_size, self.stride).transpose(1, 2)


class AvgPool1d(nn.Module):
    """seqgrad ``avgpool1d``: ``same`` divides by the number of real (unpadded) elements."""

    def __init__(self, spec: dict):
        super().__init__()
        self.pool_size = int(spec.get("pool_size", 2))
        s = spec.get("strides")
        self.stride = int(s) if s is not None else self.pool_size
        self.padding = spec.get("padding", "valid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.transpose(1, 2)  # (B, C, L)
        length = t.shape[-1]
        if self.padding == "same":
            pad = same_padding(length, self.pool_size, self.stride)
            sums = F.pad(t, pad).unfold(-1, self.pool_size, self.stride).sum(-1)
            ones = torch.ones(1, 1, length, dtype=t.dtype, device=t.device)
            counts = F.pad(ones, pad).unfold(-1, self.pool_size, self.stride).sum(-1)
            y = sums / counts
        else:
            y = t.unfold(-1, self.pool_size, self.stride).sum(-1) / self.pool_size
        return y.transpose(1, 2)


class GlobalMaxPool1d(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.max(dim=1).values


class GlobalAvgPool1d(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class Dense(_Activated):
    """seqgrad ``dense``: ``weight (units, in)``, ``bias (units)``, on the last axis."""

    def __init__(self, in_features: int, spec: dict):
        super().__init__()
        self.activation = spec.get("activation", "linear")
        lin = nn.Linear(in_features, int(spec["units"]), bias=spec.get("use_bias", True))
        self.weight = lin.weight
        self.bias = lin.bias

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class Flatten(nn.Module):
    """Time-major flatten of channels-last input: ``(B, L, C) -> (B, L*C)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class Activation(_Activated):
    def __init__(self, spec: dict):
        super().__init__()
        self.activation = spec.get("activation", "linear")

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _merge(mode: str, f: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if mode == "concat":
        return torch.cat([f, b], dim=-1)
    if mode == "sum":
        return f + b
    if mode == "mul":
        return f * b
    if mode == "ave":
        return (f + b) / 2
    raise ValueError(f"unknown merge_mode {mode!r}; valid: concat, sum, mul, ave")


def _rnn_output(self, out: torch.Tensor) -> torch.Tensor:
    """Turns torch's (B, L, D*H) output into seqgrad's output for this layer."""
    if not self.bidirectional:
        return out if self.return_sequences else out[:, -1, :]
    h = self.hidden_size
    f, b = out[..., :h], out[..., h:]
    if not self.return_sequences:
        f, b = f[:, -1, :], b[:, 0, :]
    return _merge(self.merge_mode, f, b)


class SimpleRNN(nn.RNN):
    """seqgrad ``simple_rnn`` (``tanh`` or ``relu``), optionally bidirectional."""

    def __init__(self, in_features: int, spec: dict, bidirectional: bool = False, merge_mode: str = "concat"):
        act = spec.get("activation", "tanh")
        if act not in ("tanh", "relu"):
            raise ValueError(f"simple_rnn activation must be tanh or relu, got {act!r}")
        super().__init__(in_features, int(spec["units"]), num_layers=1, nonlinearity=act,
                         batch_first=True, bidirectional=bidirectional)
        self.return_sequences = bool(spec.get("return_sequences", False))
        self.merge_mode = merge_mode

    def forward(self, x):  # type: ignore[override]
        return _rnn_output(self, super().forward(x)[0])


class LSTM(nn.LSTM):
    """seqgrad ``lstm`` (gates i, f, g, o), optionally bidirectional."""

    def __init__(self, in_features: int, spec: dict, bidirectional: bool = False, merge_mode: str = "concat"):
        super().__init__(in_features, int(spec["units"]), num_layers=1, batch_first=True,
                         bidirectional=bidirectional)
        self.return_sequences = bool(spec.get("return_sequences", False))
        self.merge_mode = merge_mode

    def forward(self, x):  # type: ignore[override]
        return _rnn_output(self, super().forward(x)[0])


class GRU(nn.GRU):
    """seqgrad ``gru`` (gates r, z, n; reset after the matmul), optionally bidirectional."""

    def __init__(self, in_features: int, spec: dict, bidirectional: bool = False, merge_mode: str = "concat"):
        super().__init__(in_features, int(spec["units"]), num_layers=1, batch_first=True,
                         bidirectional=bidirectional)
        self.return_sequences = bool(spec.get("return_sequences", False))
        self.merge_mode = merge_mode

    def forward(self, x):  # type: ignore[override]
        return _rnn_output(self, super().forward(x)[0])


_CELLS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def _out_shape(kind: str, spec: dict, shape: List[int]) -> List[int]:
    """Per-sample output shape (no batch axis), as seqgrad computes it."""
    def need_seq():
        if len(shape) != 2:
            raise ValueError(f"{kind} needs a sequence (length, features) but got {tuple(shape)}")

    if kind == "conv1d":
        need_seq()
        k, s, d = spec["kernel_size"], spec.get("strides", 1), spec.get("dilation_rate", 1)
        return [_window_out(shape[0], k, s, d, spec.get("padding", "valid")), spec["filters"]]
    if kind in ("maxpool1d", "avgpool1d"):
        need_seq()
        p = spec.get("pool_size", 2)
        s = spec.get("strides") or p
        return [_window_out(shape[0], p, s, 1, spec.get("padding", "valid")), shape[1]]
    if kind in ("global_maxpool1d", "global_avgpool1d"):
        need_seq()
        return [shape[1]]
    if kind == "dense":
        return shape[:-1] + [spec["units"]]
    if kind == "flatten":
        return [math.prod(shape)]
    if kind in ("dropout", "activation", "layer_norm"):
        return list(shape)
    if kind in _CELLS:
        need_seq()
        u = spec["units"]
        return [shape[0], u] if spec.get("return_sequences", False) else [u]
    if kind == "bidirectional":
        need_seq()
        inner = spec["layer"]
        u = inner["units"] * (2 if spec.get("merge_mode", "concat") == "concat" else 1)
        return [shape[0], u] if inner.get("return_sequences", False) else [u]
    raise ValueError(f"unknown layer type {kind!r}")


def build_layer(spec: dict, shape: List[int]) -> nn.Module:
    """The torch module of one seqgrad layer for a per-sample input shape."""
    kind = _kind(spec)
    if kind == "conv1d":
        return Conv1d(shape[-1], spec)
    if kind == "maxpool1d":
        return MaxPool1d(spec)
    if kind == "avgpool1d":
        return AvgPool1d(spec)
    if kind == "global_maxpool1d":
        return GlobalMaxPool1d()
    if kind == "global_avgpool1d":
        return GlobalAvgPool1d()
    if kind == "dense":
        return Dense(shape[-1], spec)
    if kind == "flatten":
        return Flatten()
    if kind == "dropout":
        return nn.Dropout(float(spec.get("rate", 0.0)))
    if kind == "activation":
        return Activation(spec)
    if kind == "layer_norm":
        # over the last (channel) axis; parameters weight (C), bias (C) as seqgrad's
        return nn.LayerNorm(shape[-1], eps=float(spec.get("epsilon", 1e-5)))
    if kind in _CELLS:
        return _CELLS[kind](shape[-1], spec)
    if kind == "bidirectional":
        inner = dict(spec["layer"])
        inner_kind = _kind(inner)
        return _CELLS[inner_kind](shape[-1], inner, bidirectional=True,
                                  merge_mode=spec.get("merge_mode", "concat"))
    raise ValueError(f"unknown layer type {kind!r}")


class SeqgradModel(nn.Module):
    """A seqgrad ``Sequential`` model in PyTorch. ``state_dict()`` keys are seqgrad's names."""

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec
        self.input_shape = list(spec["input_shape"])
        shapes, layers = [], []
        shape = self.input_shape
        for i, ls in enumerate(spec["layers"]):
            try:
                layers.append(build_layer(ls, shape))
                shape = _out_shape(_kind(ls), ls, shape)
            except (ValueError, KeyError) as e:
                raise ValueError(f"layer #{i} ({ls.get('type')}): {e}") from None
            shapes.append(shape)
        self.layers = nn.ModuleList(layers)
        self.shapes = shapes

    @property
    def output_shape(self) -> List[int]:
        return self.shapes[-1] if self.shapes else self.input_shape

    def head(self) -> Optional[str]:
        """``softmax``/``sigmoid`` if the last layer ends in one (seqgrad's model head)."""
        if len(self.layers) and isinstance(self.layers[-1], _Activated):
            a = self.layers[-1].activation
            if a in ("softmax", "sigmoid"):
                return a
        return None

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        """Runs the model on channels-last input; ``logits=True`` skips the final softmax/sigmoid."""
        if list(x.shape[1:]) != self.input_shape:
            raise ValueError(f"model input: expected (batch, {', '.join(map(str, self.input_shape))}) "
                             f"but got {tuple(x.shape)}")
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            if logits and i == n - 1 and self.head() is not None:
                x = layer.pre(x)
            else:
                x = layer(x)
        return x


def loss_for(model: SeqgradModel) -> nn.Module:
    """The loss seqgrad trains with, on ``model(x, logits=True)``: cross-entropy for a softmax
    head (class-index targets), binary cross-entropy for a sigmoid head, else mean squared error."""
    head = model.head()
    if head == "softmax":
        return nn.CrossEntropyLoss()
    if head == "sigmoid":
        return nn.BCEWithLogitsLoss()
    return nn.MSELoss()


def from_spec(spec: dict, dtype: torch.dtype = torch.float32) -> SeqgradModel:
    return SeqgradModel(spec).to(dtype)


def load_spec(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


_DTYPES = {torch.float32: "F32", torch.float64: "F64"}


def file_dtype(path: str) -> torch.dtype:
    """The dtype of a safetensors file's tensors (all must agree)."""
    from safetensors import safe_open

    dtypes = set()
    with safe_open(path, framework="pt") as f:
        for k in f.keys():
            dtypes.add(f.get_slice(k).get_dtype())
    if dtypes == {"F64"}:
        return torch.float64
    if dtypes in ({"F32"}, set()):
        return torch.float32
    raise ValueError(f"{path}: tensors have dtypes {sorted(dtypes)}; seqgrad files are all F32 or all F64")


def read_tensors(path: str) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def load_weights(model: nn.Module, path_or_tensors, params_only: bool = False, cast: bool = True) -> None:
    """Loads seqgrad weights by name. Every problem (missing, unexpected, wrong shape) is listed
    in one error. ``params_only`` ignores tensors not named ``layers.*`` (fixture files hold
    inputs and expectations too). ``cast`` converts the model to the file's dtype first."""
    tensors = read_tensors(path_or_tensors) if isinstance(path_or_tensors, (str, os.PathLike)) else path_or_tensors
    if params_only:
        tensors = {k: v for k, v in tensors.items() if k.startswith("layers.")}
    expected = model.state_dict()
    problems = []
    for k, v in expected.items():
        if k not in tensors:
            problems.append(f"missing tensor {k} {tuple(v.shape)}")
        elif tuple(tensors[k].shape) != tuple(v.shape):
            problems.append(f"tensor {k} has shape {tuple(tensors[k].shape)} but the model expects {tuple(v.shape)}")
    for k in tensors:
        if k not in expected:
            problems.append(f"unexpected tensor {k}")
    if problems:
        raise ValueError(f"{len(problems)} problem(s): " + "; ".join(problems))
    if cast and tensors:
        model.to(next(iter(tensors.values())).dtype)
    model.load_state_dict(tensors, strict=True)


def state_tensors(model_or_state: "nn.Module | Dict[str, torch.Tensor]",
                  dtype: Optional[torch.dtype] = None) -> Dict[str, torch.Tensor]:
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    out = {}
    for k, v in state.items():
        t = v.detach().to("cpu")
        if dtype is not None:
            t = t.to(dtype)
        if t.dtype not in _DTYPES:
            raise ValueError(f"tensor {k} is {t.dtype}; seqgrad reads float32 and float64")
        out[k] = t.contiguous()
    return out


def save_tensors(tensors: Dict[str, torch.Tensor], path: str) -> None:
    """Writes a safetensors file atomically (temporary file in the same folder, then rename)."""
    from safetensors.torch import save_file

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".seqgrad-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_weights(model_or_state, path: str, dtype: Optional[torch.dtype] = None) -> None:
    """Writes seqgrad weights (safetensors, names ``layers.{i}.…``) from a module or state dict,
    e.g. after continuing training in PyTorch. ``dtype`` float32/float64 (default: as stored)."""
    save_tensors(state_tensors(model_or_state, dtype), path)


def from_files(model_path: str, weights_path: Optional[str] = None,
               dtype: Optional[torch.dtype] = None) -> SeqgradModel:
    """Builds the model from a seqgrad model file and, if given, loads its weights (the model
    takes the weights file's dtype unless ``dtype`` is given)."""
    if dtype is None:
        dtype = file_dtype(weights_path) if weights_path else torch.float32
    model = from_spec(load_spec(model_path), dtype)
    if weights_path:
        load_weights(model, {k: v.to(dtype) for k, v in read_tensors(weights_path).items()})
    return model


def gradients(model: SeqgradModel, x: torch.Tensor, output_grad: torch.Tensor) -> Dict[str, torch.Tensor]:
    """What ``seqgrad grad`` computes, in eval mode: ``output``, ``input_grad`` (d/dx of
    sum(output * output_grad)) and ``grad.<name>`` for every parameter."""
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    if tuple(output_grad.shape) != tuple(out.shape):
        raise ValueError(f"output_grad: expected shape {tuple(out.shape)} but got {tuple(output_grad.shape)}")
    (out * output_grad).sum().backward()
    result = {"output": out.detach(), "input_grad": x.grad.detach()}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        result[f"grad.{name}"] = g.detach()
    model.train(was_training)
    return result


# ---------------------------------------------------------------- Keras weights

def _blocks(a, n: int, axis: int):
    import numpy as np

    return np.split(a, n, axis=axis)


def _keras_gru_order_to_torch(a, axis: int):
    """Keras GRU gate blocks z, r, h -> torch r, z, n (along ``axis``)."""
    import numpy as np

    z, r, h = _blocks(a, 3, axis)
    return np.concatenate([r, z, h], axis=axis)


def _torch_gru_order_to_keras(a, axis: int):
    import numpy as np

    r, z, n = _blocks(a, 3, axis)
    return np.concatenate([z, r, n], axis=axis)


def _keras_cell_to_torch(kind: str, weights: list, suffix: str) -> Dict[str, "object"]:
    import numpy as np

    kernel, recurrent, bias = (np.asarray(w) for w in weights)
    if kind == "gru":
        kernel = _keras_gru_order_to_torch(kernel, 1)
        recurrent = _keras_gru_order_to_torch(recurrent, 1)
        if bias.ndim == 2:  # reset_after=True: row 0 input bias, row 1 recurrent bias
            b_ih, b_hh = (_keras_gru_order_to_torch(b, 0) for b in bias)
        else:
            raise ValueError("Keras GRU with reset_after=False has no seqgrad/PyTorch equivalent")
    else:  # simple_rnn, lstm (gate order i, f, c, o is PyTorch's i, f, g, o)
        b_ih, b_hh = bias, np.zeros_like(bias)
    return {f"weight_ih_l0{suffix}": kernel.T, f"weight_hh_l0{suffix}": recurrent.T,
            f"bias_ih_l0{suffix}": b_ih, f"bias_hh_l0{suffix}": b_hh}


def from_keras_weights(spec: dict, keras_weights: List[list]) -> Dict[str, "object"]:
    """seqgrad tensors (numpy, by name) from Keras weights: ``keras_weights[i]`` is
    ``layer.get_weights()`` of the Keras layer matching seqgrad layer ``i`` (``[]`` for layers
    without weights; for Bidirectional, forward then backward weights as Keras lists them).
    Keras RNNs must use their default activations (recurrent_activation sigmoid) and GRU
    reset_after=True (Keras 2.3+ default)."""
    import numpy as np

    out: Dict[str, object] = {}
    if len(keras_weights) != len(spec["layers"]):
        raise ValueError(f"{len(keras_weights)} Keras weight lists for {len(spec['layers'])} layers")
    for i, (ls, w) in enumerate(zip(spec["layers"], keras_weights)):
        kind = _kind(ls)
        pre = f"layers.{i}."
        if kind == "conv1d":
            out[pre + "weight"] = np.transpose(np.asarray(w[0]), (2, 1, 0))  # (k, in, f) -> (f, in, k)
            if len(w) > 1:
                out[pre + "bias"] = np.asarray(w[1])
        elif kind == "dense":
            out[pre + "weight"] = np.asarray(w[0]).T  # (in, units) -> (units, in)
            if len(w) > 1:
                out[pre + "bias"] = np.asarray(w[1])
        elif kind in _CELLS:
            out.update({pre + k: v for k, v in _keras_cell_to_torch(kind, w, "").items()})
        elif kind == "bidirectional":
            inner = _kind(ls["layer"])
            half = len(w) // 2
            out.update({pre + k: v for k, v in _keras_cell_to_torch(inner, w[:half], "").items()})
            out.update({pre + k: v for k, v in _keras_cell_to_torch(inner, w[half:], "_reverse").items()})
        elif w:
            raise ValueError(f"layer #{i} ({kind}) has no weights but Keras gave {len(w)}")
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def _torch_cell_to_keras(kind: str, t: Dict[str, "object"], pre: str, suffix: str) -> list:
    import numpy as np

    g = lambda n: np.asarray(t[f"{pre}{n}_l0{suffix}"])  # noqa: E731
    w_ih, w_hh, b_ih, b_hh = g("weight_ih"), g("weight_hh"), g("bias_ih"), g("bias_hh")
    if kind == "gru":
        return [_torch_gru_order_to_keras(w_ih.T, 1), _torch_gru_order_to_keras(w_hh.T, 1),
                np.stack([_torch_gru_order_to_keras(b_ih, 0), _torch_gru_order_to_keras(b_hh, 0)])]
    return [w_ih.T, w_hh.T, b_ih + b_hh]  # Keras has one bias: the sum is exact in the maths


def to_keras_weights(spec: dict, tensors: Dict[str, "object"]) -> List[list]:
    """The inverse of :func:`from_keras_weights`: one ``set_weights`` list per layer."""
    import numpy as np

    res = []
    for i, ls in enumerate(spec["layers"]):
        kind = _kind(ls)
        pre = f"layers.{i}."
        if kind in ("conv1d", "dense"):
            w = np.asarray(tensors[pre + "weight"])
            w = np.transpose(w, (2, 1, 0)) if kind == "conv1d" else w.T
            res.append([w] + ([np.asarray(tensors[pre + "bias"])] if pre + "bias" in tensors else []))
        elif kind in _CELLS:
            res.append(_torch_cell_to_keras(kind, tensors, pre, ""))
        elif kind == "bidirectional":
            inner = _kind(ls["layer"])
            res.append(_torch_cell_to_keras(inner, tensors, pre, "") + _torch_cell_to_keras(inner, tensors, pre, "_reverse"))
        else:
            res.append([])
    return res


def one_hot(seqs: Sequence[str], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One-hot DNA (A, C, G, T; IUPAC codes as probability vectors), ``(batch, length, 4)``."""
    iupac = {"A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG",
             "W": "AT", "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG",
             "N": "ACGT"}
    col = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = torch.zeros(len(seqs), len(seqs[0]) if seqs else 0, 4, dtype=dtype)
    for i, s in enumerate(seqs):
        if len(s) != out.shape[1]:
            raise ValueError(f"sequence {i} has length {len(s)}, expected {out.shape[1]}")
        for j, ch in enumerate(s.upper()):
            bases = iupac.get(ch)
            if bases is None:
                raise ValueError(f"sequence {i} column {j + 1}: invalid character {ch!r}")
            for b in bases:
                out[i, j, col[b]] = 1.0 / len(bases)
    return out


def summary(model: SeqgradModel) -> str:
    rows = [f"{'#':>3}  {'layer':<28} {'output shape':<16} {'params':>10}"]
    for i, (ls, layer, shape) in enumerate(zip(model.spec["layers"], model.layers, model.shapes)):
        n = sum(p.numel() for p in layer.parameters())
        rows.append(f"{i:>3}  {ls['type']:<28} {str(tuple(shape)):<16} {n:>10,}")
    rows.append(f"Total params: {sum(p.numel() for p in model.parameters()):,}")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# Training in PyTorch, on one process or many (DistributedDataParallel under torchrun)
# ---------------------------------------------------------------------------------------------

def read_data(path: str, fmt: Optional[str] = None) -> Tuple[List[str], List[str], List[List[str]], bool]:
    """Reads a labelled CSV/TSV/FASTA file as seqgrad does (columns ``label``/``class``/``labels``,
    ``sequence``/``seq``, ``id``/``name``, case-insensitive, fields trimmed; FASTA headers
    ``>id label=X`` or ``labels=A,B``). Returns ids, sequences, per-record label lists and
    whether the data is multi-label."""
    import csv

    ext = os.path.splitext(path)[1].lower().lstrip(".")
    fmt = fmt or ("tsv" if ext in ("tsv", "tab") else "fasta" if ext in ("fa", "fasta", "fna", "fas") else "csv")
    ids, seqs, labels, multi = [], [], [], False
    split = lambda v: [x.strip() for x in v.replace(",", ";").split(";") if x.strip()]
    with open(path, encoding="utf-8-sig") as f:
        if fmt == "fasta":
            for n, line in enumerate(f, 1):
                t = line.strip()
                if not t or t.startswith(";"):
                    continue
                if t.startswith(">"):
                    parts = t[1:].split()
                    ids.append(parts[0] if parts else str(len(ids) + 1))
                    seqs.append("")
                    lab = None
                    for q in parts[1:]:
                        if q.startswith("labels="):
                            multi, lab = True, split(q[7:])
                        elif q.startswith("label="):
                            lab = [q[6:]]
                    if lab is None:
                        raise ValueError(f"{path}: line {n}: FASTA header has no label")
                    labels.append(lab)
                elif not seqs:
                    raise ValueError(f"{path}: line {n}: sequence before the first `>` header")
                else:
                    seqs[-1] += t
        else:
            rows = [r for r in csv.reader(f, delimiter="\t" if fmt == "tsv" else ",", skipinitialspace=True)
                    if any(c.strip() for c in r)]
            if not rows:
                raise ValueError(f"{path}: the file is empty")
            cols = [c.strip().lower() for c in rows[0]]
            find = lambda names: next((cols.index(c) for c in names if c in cols), None)
            si, li, ii = find(["sequence", "seq"]), find(["label", "class", "labels"]), find(["id", "name"])
            if si is None or li is None:
                raise ValueError(f"{path}: the header needs a sequence and a label column (columns: {', '.join(cols)})")
            multi = cols[li] == "labels"
            for k, r in enumerate(rows[1:], 1):
                seqs.append(r[si].strip())
                labels.append(split(r[li]) if multi else [r[li].strip()])
                ids.append(r[ii].strip() if ii is not None else str(k))
    if not seqs:
        raise ValueError(f"{path}: no records")
    return ids, seqs, labels, multi


def encode_labels(labels: List[List[str]], classes: List[str], multi: bool) -> torch.Tensor:
    """Class indices (multi-class) or a multi-hot matrix (multi-label), classes in ``classes`` order."""
    index = {c: i for i, c in enumerate(classes)}
    if multi:
        y = torch.zeros(len(labels), len(classes))
        for i, ls in enumerate(labels):
            for l in ls:
                y[i, index[l]] = 1.0
        return y
    return torch.tensor([index[ls[0]] for ls in labels], dtype=torch.long)


def batch_order(n: int, batch_size: int, epoch: int, seed: int, shuffle: bool = True) -> List[List[int]]:
    """The global batches of an epoch: a permutation drawn from ``seed`` and ``epoch`` only (the
    same on every rank), cut into ``batch_size`` pieces; the last one may be smaller."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
    else:
        perm = list(range(n))
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def rank_share(batch: List[int], rank: int, world: int) -> List[int]:
    """This rank's part of a global batch: contiguous, sizes differing by at most one."""
    n = len(batch)
    lo, hi = rank * n // world, (rank + 1) * n // world
    return batch[lo:hi]


def train(model_path: str, data_path: str, out: str, epochs: int = 10, batch_size: int = 64,
          lr: float = 1e-3, seed: int = 0, dtype: torch.dtype = torch.float32,
          device: Optional[str] = None, backend: Optional[str] = None, shuffle: bool = True,
          weights: Optional[str] = None, log=print) -> Dict[str, object]:
    """Trains a seqgrad model file on a labelled data file with Adam, on one process or — when
    started by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) — on every process with
    DistributedDataParallel. Every rank computes the same global batches (:func:`batch_order`)
    and takes its share (:func:`rank_share`); each rank's loss is its summed loss divided by the
    global batch size times the world size, so DDP's gradient average equals the gradient of the
    global batch's mean loss, as on one process. Rank 0 writes ``out/weights.safetensors``
    (seqgrad names), ``out/model.json``, ``out/labels.json`` and ``out/history.csv``.

    Dropout masks are random per rank, so with dropout the runs are equal in distribution only;
    without dropout one process and N processes give the same weights up to rounding."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    distributed = world > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"))
    try:
        ids, seqs, labs, multi = read_data(data_path)
        spec = load_spec(model_path)
        torch.manual_seed(seed)
        model = from_spec(spec, dtype)
        if weights:
            load_weights(model, {k: v.to(dtype) for k, v in read_tensors(weights).items()})
        head = model.head()
        if head not in ("softmax", "sigmoid"):
            raise ValueError("the model must end in a softmax (classes) or sigmoid (labels) layer to train")
        multi = multi or head == "sigmoid"
        classes = sorted({l for ls in labs for l in ls})
        if model.output_shape != [len(classes)]:
            raise ValueError(f"the model output is {tuple(model.output_shape)} but {data_path} has "
                             f"{len(classes)} classes/labels ({', '.join(classes)})")
        x = one_hot(seqs, dtype)
        y = encode_labels(labs, classes, multi)
        if multi:
            y = y.to(dtype)
        model.to(dev)
        net = model
        if distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        base = loss_for(model)
        loss_sum = type(base)(reduction="sum")
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        history = []
        for epoch in range(1, epochs + 1):
            model.train()
            total = torch.zeros((), dtype=torch.float64, device=dev)
            for batch in batch_order(len(seqs), batch_size, epoch, seed, shuffle):
                if len(batch) < world:
                    continue  # every rank needs at least one record of the batch
                mine = rank_share(batch, rank, world)
                xb, yb = x[mine].to(dev), y[mine].to(dev)
                opt.zero_grad(set_to_none=True)
                raw = loss_sum(net(xb, logits=True), yb)
                if head == "sigmoid":
                    raw = raw / y.shape[1]  # BCE's mean runs over the labels too
                (raw * world / len(batch)).backward()
                opt.step()
                total += raw.detach().to(torch.float64)
            if distributed:
                dist.all_reduce(total)
            history.append((epoch, total.item() / len(seqs)))
            if rank == 0:
                log(f"epoch {epoch}/{epochs}  loss {history[-1][1]:.4f}  ({world} process(es), {dev})")
        if rank == 0:
            os.makedirs(out, exist_ok=True)
            save_weights(model, os.path.join(out, "weights.safetensors"))
            with open(os.path.join(out, "model.json"), "w") as f:
                json.dump(spec, f, indent=1)
                f.write("\n")
            with open(os.path.join(out, "labels.json"), "w") as f:
                json.dump({"classes": classes, "multi_label": multi}, f, indent=2)
                f.write("\n")
            with open(os.path.join(out, "history.csv"), "w") as f:
                f.write("epoch,loss\n" + "".join(f"{e},{l:.8f}\n" for e, l in history))
        if distributed:
            dist.barrier()
        return {"history": history, "classes": classes, "world": world}
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def _main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="PyTorch reference of seqgrad models")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grad", help="like `seqgrad grad`, computed by PyTorch")
    g.add_argument("--model", required=True)
    g.add_argument("--weights", required=True)
    g.add_argument("--input", required=True)
    g.add_argument("--out", required=True)
    s = sub.add_parser("summary", help="layers, output shapes, parameter counts")
    s.add_argument("--model", required=True)
    t = sub.add_parser("train", help="train a seqgrad model file in PyTorch (DDP under torchrun)")
    t.add_argument("--model", required=True, help="seqgrad model file (JSON)")
    t.add_argument("--data", required=True, help="labelled CSV, TSV or FASTA")
    t.add_argument("--out", default="torch_run", help="output folder (weights.safetensors, labels.json, model.json)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=64, help="global batch size (split over the processes)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    t.add_argument("--seed", type=int, default=0, help="initial weights and batch order")
    t.add_argument("--weights", help="start from these seqgrad weights instead of a fresh initialisation")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda:LOCAL_RANK if available, else cpu)")
    t.add_argument("--backend", choices=["gloo", "nccl", "mpi"], help="default: nccl on GPUs, gloo on CPUs")
    t.add_argument("--no-shuffle", action="store_true", help="batches in file order")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "train":
            if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
                raise ValueError("--epochs and --batch-size must be at least 1 and --lr positive")
            train(args.model, args.data, args.out, args.epochs, args.batch_size, args.lr, args.seed,
                  torch.float64 if args.dtype == "float64" else torch.float32, args.device,
                  args.backend, not args.no_shuffle, args.weights)
            return 0
        if args.cmd == "summary":
            print(summary(from_spec(load_spec(args.model))))
            return 0
        model = from_files(args.model, args.weights)
        dtype = next(model.parameters()).dtype if len(list(model.parameters())) else torch.float32
        inputs = read_tensors(args.input)
        if "input" not in inputs:
            raise ValueError(f"{args.input}: no tensor named input")
        x = inputs["input"].to(dtype)
        og = inputs.get("output_grad")
        if og is None:
            raise ValueError(f"{args.input}: no tensor named output_grad (shaped like the model output)")
        result = gradients(model, x, og.to(dtype))
        save_tensors(result, args.out)
        return 0
    except (ValueError, OSError) as e:
        print(f"seqgrad_torch: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
