"""seqgrad in Python: hand-written, exact gradients of conv -> RNN models over DNA, as numpy.

    import seqgrad, numpy as np
    x = seqgrad.one_hot(["ACGT" * 15])                       # float32 (N, L, 4)
    m = seqgrad.Model.from_json("models/splice.json", seed=42, dtype="float64")
    g = m.grad(x, target=np.array([1]))                      # g.input = dL/dx, g.params, ...
    run = seqgrad.train(model="models/splice.json", data="data/splice.csv", out="runs/py")

Everything runs in seqgrad's Rust library (the same code as the ``seqgrad`` command line,
which it does not call); the GIL is released while it computes. Errors are ``ValueError`` (bad
input, shapes, options), ``OSError`` (files) or ``MemoryError`` (a run that would not fit),
carrying the command line's one-line message. Only ``seqgrad.torch`` imports PyTorch.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _seqgrad

__all__ = [
    "one_hot",
    "Model",
    "Grads",
    "saliency",
    "gradcheck",
    "train",
    "Run",
    "Picture",
    "gradflow",
    "plot_gradflow",
    "saliency_logo",
    "synth",
]

PathLike = Union[str, "os.PathLike[str]"]

_DTYPES = {"float32": np.float32, "f32": np.float32, "float64": np.float64, "f64": np.float64}


def _path(p: PathLike) -> str:
    return os.fspath(p)


def _as_array(x, dtype) -> np.ndarray:
    """``x`` as a C-contiguous array of ``dtype``: no copy when it already is one."""
    return np.ascontiguousarray(x, dtype=dtype)


def one_hot(sequences: Sequence[str]) -> np.ndarray:
    """One-hot DNA ``(N, L, 4)`` float32 (A, C, G, T), the command line's encoding: IUPAC
    codes as fractions (``N`` is 0.25 each), ``-``/``.`` all zeros. All sequences must have
    one length."""
    if isinstance(sequences, str):
        sequences = [sequences]
    return _seqgrad.one_hot(list(sequences))


class Grads:
    """Gradients of one batch (``Model.grad``).

    - ``output``: the model output ``(N, ...)`` (probabilities for a softmax/sigmoid head);
    - ``loss``: the mean training loss (``None`` with ``output_grad``);
    - ``input``: dL/dx ``(N, L, 4)``;
    - ``params``: parameter name -> dL/dtheta;
    - ``layer_norms``: ``"layers.{i}"`` -> ||dL/d output of layer i|| over the batch;
    - ``step_norms``: ``("layers.{i}", "forward"|"reverse")`` -> ``(T,)`` batch-mean ||dL/dh_t||
      of each recurrent layer and direction, t in sequence order.
    """

    def __init__(self, d: dict):
        self.output: np.ndarray = d["output"]
        self.loss: Optional[float] = d["loss"]
        self.input: np.ndarray = d["input"]
        self.params: Dict[str, np.ndarray] = d["params"]
        self.layer_norms: Dict[str, float] = d["layer_norms"]
        self.step_norms: Dict[Tuple[str, str], np.ndarray] = d["step_norms"]

    def __repr__(self) -> str:
        loss = "None" if self.loss is None else f"{self.loss:.6g}"
        return (
            f"Grads(loss={loss}, output {self.output.shape}, input {self.input.shape}, "
            f"{len(self.params)} parameter tensors, {len(self.step_norms)} recurrent directions)"
        )


class Model:
    """A seqgrad model with its weights, in float32 or float64.

    Build it with ``Model.from_json(path)``, ``Model.from_spec(dict)`` or
    ``Model.from_keras(path)``; weights start seeded (``seed``) as ``seqgrad train`` would
    draw them, or come from ``load_weights`` / the Keras file.
    """

    def __init__(self, inner: "_seqgrad.Model"):
        self._m = inner

    # construction
    @classmethod
    def from_json(cls, path: PathLike, seed: int = 0, dtype: str = "float32") -> "Model":
        """A model file (JSON, or Keras' model JSON) with seeded initial weights."""
        return cls(_seqgrad.Model.from_json(_path(path), seed, dtype))

    @classmethod
    def from_spec(cls, spec: dict, seed: int = 0, dtype: str = "float32") -> "Model":
        """A model from a model file's content as a dict (``{"input_shape": ..., "layers": [...]}``)."""
        return cls(_seqgrad.Model.from_spec_json(json.dumps(spec), seed, dtype))

    @classmethod
    def from_keras(
        cls, path: PathLike, seed: int = 0, dtype: str = "float32", weights: Optional[PathLike] = None
    ) -> "Model":
        """A Keras 3 model (``.keras`` archive or model JSON), read by seqgrad's Keras loader
        (as ``seqgrad convert``), with the archive's weights, or those of ``weights`` (Keras
        variables as safetensors, as ``convert --keras-weights``); seeded weights without."""
        w = None if weights is None else _path(weights)
        return cls(_seqgrad.Model.from_keras(_path(path), seed, dtype, w))

    # description
    @property
    def dtype(self) -> str:
        """``"float32"`` or ``"float64"``."""
        return self._m.dtype

    @property
    def input_shape(self) -> tuple:
        """Per-sample input shape, e.g. ``(60, 4)``; ``None`` for a length of any size."""
        return tuple(self._m.input_dims)

    @property
    def output_shape(self) -> tuple:
        """Per-sample output shape, e.g. ``(3,)``."""
        return tuple(self._m.output_shape)

    @property
    def param_count(self) -> int:
        return self._m.param_count

    @property
    def spec(self) -> dict:
        """The model file's content."""
        return json.loads(self._m.spec_json())

    def summary(self) -> str:
        """The command line's table: layers, output shapes, parameter counts."""
        return self._m.summary()

    def __repr__(self) -> str:
        return f"seqgrad.Model ({self.dtype})\n{self.summary()}"

    def _repr_html_(self) -> str:
        return f"<pre>seqgrad.Model ({self.dtype})\n{html.escape(self.summary())}</pre>"

    # weights
    def load_weights(self, path: PathLike) -> None:
        """Loads a safetensors weights file by PyTorch names (any dtype, converted)."""
        self._m.load_weights(_path(path))

    def save_weights(self, path: PathLike) -> None:
        """Writes the weights as safetensors in the model's dtype (atomically)."""
        self._m.save_weights(_path(path))

    def parameters(self) -> Dict[str, np.ndarray]:
        """PyTorch parameter name -> a copy of its value."""
        return self._m.parameters()

    def set_parameters(self, values: Dict[str, np.ndarray], strict: bool = True) -> None:
        """Sets parameters by name; shapes must match. With ``strict`` every parameter must be
        given. Nothing changes unless every value is accepted."""
        dt = _DTYPES[self.dtype]
        self._m.set_parameters({k: _as_array(v, dt) for k, v in values.items()}, strict)

    # running
    def _x(self, x) -> np.ndarray:
        return _as_array(x, _DTYPES[self.dtype])

    def forward(self, x, logits: bool = False) -> np.ndarray:
        """The output for ``x`` ``(N, ...input_shape)`` in evaluation mode (dropout off):
        probabilities, or with ``logits=True`` the values before the final softmax/sigmoid."""
        return self._m.forward(self._x(x), bool(logits))

    def predict(self, x) -> np.ndarray:
        """Probabilities ``(N, C)`` (the output, final softmax/sigmoid included)."""
        return self.forward(x, logits=False)

    def grad(self, x, target=None, output_grad=None) -> Grads:
        """Exact gradients for the batch ``x`` (evaluation mode: dropout off).

        - ``target``: class indices ``(N,)`` or a one-hot / multi-label / 0-1 array ``(N, C)``:
          gradients of the mean training loss for the model's head (what ``seqgrad grad
          --data`` computes);
        - ``output_grad`` ``dy`` shaped like the output: gradients of ``sum(output * dy)``
          (what ``seqgrad grad --input`` computes).
        """
        if (target is None) == (output_grad is None):
            raise ValueError("give exactly one of target= (labels) and output_grad=")
        x = self._x(x)
        if output_grad is not None:
            return Grads(self._m.grad_output(x, self._x(output_grad)))
        t = np.asarray(target)
        if t.ndim == 1 and (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.bool_)):
            if t.size and t.min() < 0:
                raise ValueError(f"target: class indices must be >= 0, got {int(t.min())}")
            return Grads(self._m.grad_target(x, classes=[int(c) for c in t]))
        if t.ndim == 1 and self.output_shape == (1,):
            t = t.reshape(-1, 1)
        return Grads(self._m.grad_target(x, y=self._x(t)))


def saliency(
    model: Model,
    x,
    method: str = "integrated_gradients",
    target: Optional[int] = None,
    baseline: str = "zeros",
    steps: int = 256,
    quadrature: str = "gauss_legendre",
    batch_size: int = 128,
) -> np.ndarray:
    """Per-base saliency ``(N, L, 4)`` (float64) of ``model`` for one-hot ``x``, explaining the
    logit of class ``target`` (default: each record's predicted class), as ``seqgrad
    saliency``: ``"grad"``, ``"grad_x_input"``, ``"integrated_gradients"`` (``baseline``
    ``"zeros"`` or ``"uniform"``, ``steps`` quadrature points, refined until complete to 1%)
    or ``"ism"``. Runs in float64 (a float32 model is copied)."""
    scores, _targets = model._m.saliency(
        _as_array(x, np.float64), method, target, baseline, int(steps), quadrature, int(batch_size)
    )
    return scores


def gradcheck(
    model: Model,
    layers: Optional[Sequence[int]] = None,
    whole_model: bool = True,
    batch: int = 2,
    samples: int = 32,
    tolerance: float = 1e-4,
    mode: str = "train",
    seed: int = 0,
) -> List[dict]:
    """Central finite differences in float64 against the hand-written gradients of every layer
    and of the whole model (``seqgrad gradcheck``). One dict per checked tensor: ``tensor``,
    ``worst_rel_err``, ``ok``, and ``layer`` / ``kind`` (``None`` for the whole model),
    ``checked`` / ``total`` elements, ``all_zero``."""
    return model._m.gradcheck(
        None if layers is None else list(layers),
        whole_model,
        batch,
        samples,
        tolerance,
        mode,
        seed,
    )


def train(**options) -> "Run":
    """Trains as ``seqgrad train`` does and returns the finished :class:`Run`.

    Every option of ``seqgrad train`` is a keyword of the same name with dashes as
    underscores (``model``, ``data``, ``out``, ``epochs``, ``batch_size``, ``lr``, ``seed``,
    ``record_grads``, ``label_column``, ``resume`` ...); a boolean ``--no-X`` flag is ``X=False``
    (``plots=False``). An unknown name is a ``ValueError`` listing the valid ones.

    Ctrl-C (KeyboardInterrupt) stops training at the end of the current step and writes the
    checkpoint, as the command line does; then ``KeyboardInterrupt`` is raised with the
    command to continue (``seqgrad.train(resume=out)``).
    """
    for k, v in options.items():
        if isinstance(v, os.PathLike):
            options[k] = os.fspath(v)
    out = _seqgrad.train(json.dumps(options))
    return Run.open(out)


class Picture:
    """A picture seqgrad drew: shown inline in Jupyter (``_repr_png_``); ``save(path)`` writes
    the PNG (or the SVG, for a path ending in ``.svg``)."""

    def __init__(self, name: str, png: bytes, svg: Optional[bytes] = None):
        self.name = name
        self.png = png
        self.svg = svg

    @classmethod
    def _from_files(cls, png_path: str) -> "Picture":
        with open(png_path, "rb") as f:
            png = f.read()
        svg_path = os.path.splitext(png_path)[0] + ".svg"
        svg = None
        if os.path.exists(svg_path):
            with open(svg_path, "rb") as f:
                svg = f.read()
        return cls(os.path.splitext(os.path.basename(png_path))[0], png, svg)

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: PathLike) -> None:
        path = _path(path)
        data = self.png
        if path.lower().endswith(".svg"):
            if self.svg is None:
                raise ValueError(f"picture {self.name} has no SVG")
            data = self.svg
        with open(path, "wb") as f:
            f.write(data)

    def __repr__(self) -> str:
        return f"Picture({self.name!r}, {len(self.png)} bytes PNG)"


def _pictures(files: Iterable[str]) -> List[Picture]:
    return [Picture._from_files(f) for f in files if f.endswith(".png")]


def _read_csv(path: str) -> Dict[str, np.ndarray]:
    """A CSV as columns: numbers as float64 arrays, anything else as arrays of str."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    columns: Dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = [r[j] if j < len(r) else "" for r in body]
        try:
            columns[name] = np.array([float(v) if v != "" else np.nan for v in values])
        except ValueError:
            columns[name] = np.array(values, dtype=str)
    return columns


class Run:
    """A run folder written by ``seqgrad train`` (or :func:`train`)."""

    def __init__(self, path: str, model: Model):
        self.path = path
        self._model = model

    @classmethod
    def open(cls, path: PathLike, dtype: str = "float32") -> "Run":
        """Opens a run folder: its model with the best weights (an unfinished run: its last
        checkpoint's), class names, config and history."""
        path = _path(path)
        return cls(path, Model(_seqgrad.Model.open_run(path, dtype)))

    @property
    def model(self) -> Model:
        return self._model

    @property
    def config(self) -> Optional[dict]:
        """``config.json``: the settings, data files (with SHA-256) and split of the run."""
        text = _seqgrad.run_config(self.path)
        return None if text is None else json.loads(text)

    @property
    def history(self) -> Optional[Dict[str, list]]:
        """``history.json`` as columns (``epoch``, ``loss``, ``val_loss``, ...)."""
        return _seqgrad.run_history(self.path)

    @property
    def classes(self) -> Optional[List[str]]:
        p = os.path.join(self.path, "labels.json")
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return json.load(f).get("classes")

    def evaluate(self, split: Optional[str] = "test", data: Optional[PathLike] = None, batch_size: int = 256) -> dict:
        """Loss and metrics of the run's weights on a saved split (``"train"``, ``"valid"``,
        ``"test"``: exactly its records), or with ``split=None`` on a data file: ``loss``,
        ``accuracy`` (or ``roc_auc``/``pr_auc``), ``confusion``, ``classes`` and ``per_class``
        (records, precision and recall of each class) as ``seqgrad evaluate``."""
        text = _seqgrad.run_evaluate(
            self.path, split, None if data is None else _path(data), batch_size
        )
        m = json.loads(text)
        if "confusion" in m and "classes" in m:
            c = np.array(m["confusion"], dtype=float)
            names = m["classes"] if len(m["classes"]) == len(c) else [str(i) for i in range(len(c))]
            per = {}
            for i, name in enumerate(names):
                true, pred = c[i].sum(), c[:, i].sum()
                per[name] = {
                    "records": int(true),
                    "precision": float(c[i, i] / pred) if pred else float("nan"),
                    "recall": float(c[i, i] / true) if true else float("nan"),
                }
            m["per_class"] = per
        return m

    def _csv(self, name: str) -> Dict[str, np.ndarray]:
        p = os.path.join(self.path, name)
        if not os.path.exists(p):
            raise OSError(f"{p}: no such file (train with record_grads=N to write it)")
        return _read_csv(p)

    def grads(self) -> Dict[str, np.ndarray]:
        """``grads.csv`` (``train --record-grads``) as columns."""
        return self._csv("grads.csv")

    def steps(self) -> Dict[str, np.ndarray]:
        """``steps.csv`` (``train --record-grads``) as columns."""
        return self._csv("steps.csv")

    def plots(self) -> List[Picture]:
        """Every picture of the run (``seqgrad plot``), drawn afresh."""
        with tempfile.TemporaryDirectory() as d:
            return _pictures(_seqgrad.plot_run(self.path, d))

    def plot(self, name: str = "training") -> Picture:
        """One picture of the run: ``"training"`` (the curves) or any name of
        :meth:`plots`' pictures (a unique prefix will do)."""
        pictures = self.plots()
        for p in pictures:
            if p.name == name:
                return p
        found = [p for p in pictures if p.name.startswith(name)]
        if len(found) == 1:
            return found[0]
        names = ", ".join(p.name for p in pictures)
        raise ValueError(f"run {self.path}: no single picture named {name!r}; the run has: {names}")

    def __repr__(self) -> str:
        return f"seqgrad.Run({self.path!r})"


def gradflow(
    cells: Sequence[str] = ("simple_rnn", "lstm", "gru"),
    lengths: Sequence[int] = (50, 200),
    directions: Sequence[str] = ("uni", "bi"),
    steps: int = 600,
    seed: Optional[int] = None,
    seeds: Sequence[int] = (1, 2, 3),
    inits: Sequence[str] = ("keras", "chrono"),
    batch_size: int = 32,
    lr: float = 0.003,
    test_count: int = 500,
    record_count: int = 64,
    kernel_size: int = 9,
    curriculum: bool = False,
    threads: Optional[int] = None,
    out: Optional[PathLike] = None,
) -> List[dict]:
    """The vanishing-gradient experiment (``seqgrad gradflow``): one row dict per variant,
    seed, stage (``init``/``trained``), direction and step ``t``, as ``gradflow.csv``.
    ``seed=N`` is ``seeds=[N]``. With ``out`` the CSVs are written there too (for
    :func:`plot_gradflow`)."""
    if seed is not None:
        seeds = [seed]
    args = (
        list(cells), [int(v) for v in lengths], list(directions), list(inits),
        [int(s) for s in seeds], int(steps), int(batch_size), float(lr), int(test_count),
        int(record_count), int(kernel_size), bool(curriculum), threads,
    )
    if out is None:
        with tempfile.TemporaryDirectory() as d:
            text = _seqgrad.gradflow_csv(*args, d)
    else:
        text = _seqgrad.gradflow_csv(*args, _path(out))
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        row = {}
        for k, v in r.items():
            if v in ("true", "false"):
                row[k] = v == "true"
            else:
                try:
                    row[k] = int(v)
                except ValueError:
                    try:
                        row[k] = float(v)
                    except ValueError:
                        row[k] = v
        rows.append(row)
    return rows


def plot_gradflow(out: PathLike) -> List[Picture]:
    """The pictures of a gradflow run written with ``gradflow(..., out=DIR)`` (or ``seqgrad
    gradflow --out DIR``)."""
    out = _path(out)
    return _pictures(_seqgrad.plot_gradflow(os.path.join(out, "gradflow.csv"), out))


def saliency_logo(scores, id: str = "record", about: str = "") -> Picture:
    """A sequence logo of one record's saliency ``scores`` ``(L, 4)`` (as ``seqgrad saliency
    --plot``). The title names the record ``id`` and, when given, ``about`` (what the scores
    are of: the target class and the method, as the CLI's logos say)."""
    with tempfile.TemporaryDirectory() as d:
        files = _seqgrad.saliency_logo(
            id, _as_array(scores, np.float64), os.path.join(d, "logo.png"), about
        )
        return _pictures(files)[0]


def synth(
    out: PathLike,
    count: int = 2000,
    length: int = 200,
    classes: Optional[int] = None,
    labels: Optional[int] = None,
    label_prob: float = 0.3,
    motifs: Sequence[str] = (),
    meme: Optional[PathLike] = None,
    seed: int = 42,
) -> List[str]:
    """Writes a synthetic labelled data set with planted JASPAR motifs (``seqgrad synth``):
    ``classes`` classes (default 3) or ``labels`` labels (multi-label). Returns the planted
    motifs, one per class or label."""
    return _seqgrad.synth(
        _path(out), count, length, classes, labels, label_prob, list(motifs),
        None if meme is None else _path(meme), seed,
    )
