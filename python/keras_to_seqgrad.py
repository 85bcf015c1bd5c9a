#!/usr/bin/env python3
"""Dump the weights of a Keras 3 model (a ``.keras`` archive or a ``.weights.h5`` file) to a
safetensors file that ``seqgrad convert --keras-weights`` reads.

Every HDF5 dataset is written under its path in ``model.weights.h5``
(``layers/conv1d/vars/0`` ...), unchanged: seqgrad does the mapping to PyTorch names and
shapes itself (``src/keras/weights.rs``), so there is one mapping, in Rust.

Needs only h5py, numpy and safetensors (h5py ships with Keras; Keras itself is NOT needed).

    python python/keras_to_seqgrad.py model.keras vars.safetensors
    seqgrad convert --from model.keras --keras-weights vars.safetensors --out converted/
"""

import argparse
import io
import sys
import zipfile

import h5py
import numpy as np
from safetensors.numpy import save_file


def read_vars(path):
    """{h5 path: array} for every dataset of a .keras archive's model.weights.h5 (or of a
    bare .weights.h5 file)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if "model.weights.h5" not in z.namelist():
                raise SystemExit(f"{path}: no model.weights.h5 in the archive")
            data = io.BytesIO(z.read("model.weights.h5"))
        f = h5py.File(data, "r")
    else:
        f = h5py.File(path, "r")
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            a = np.asarray(obj[()])
            if a.dtype not in (np.float32, np.float64):
                raise SystemExit(f"{path}: {name} has dtype {a.dtype}; seqgrad reads float32/float64")
            out[name] = np.ascontiguousarray(a)

    f.visititems(visit)
    f.close()
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help=".keras archive or .weights.h5 file")
    p.add_argument("out", help="output safetensors file")
    a = p.parse_args(argv)
    tensors = read_vars(a.model)
    save_file(tensors, a.out)
    print(f"wrote {a.out}: {len(tensors)} Keras variables")


if __name__ == "__main__":
    sys.exit(main())
