"""The committed ``tests/fixtures/keras/seed.vars.safetensors`` is byte for byte what
``python/keras_to_seqgrad.py`` writes for the committed ``seed.keras``.

``cargo test`` (no Python, no HDF5 library) runs ``seqgrad convert --keras-weights`` on that
file; this check ties it to the translator. Run with pytest (``pytest python/tests``) or plainly
(``python python/tests/test_keras_vars_fixture.py``). Skipped, with the reason printed, when
h5py / safetensors are missing. (With ``cargo test --features hdf5``, seqgrad's own HDF5 reader
is compared with the same file too: ``tests/it/keras_parity.rs``.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
FIX = os.path.join(os.path.dirname(PYDIR), "tests", "fixtures", "keras")


def skip_reason():
    try:
        import h5py  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as e:
        return f"needs h5py and safetensors ({e})"
    return None


def test_seed_vars_fixture_is_the_translators_output():
    reason = skip_reason()
    if reason:
        try:
            import pytest

            pytest.skip(reason)
        except ImportError:
            print(f"SKIPPED: {reason}")
            return
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "vars.safetensors")
        subprocess.run(
            [sys.executable, os.path.join(PYDIR, "keras_to_seqgrad.py"),
             os.path.join(FIX, "seed.keras"), out],
            check=True,
        )
        with open(out, "rb") as f:
            fresh = f.read()
    with open(os.path.join(FIX, "seed.vars.safetensors"), "rb") as f:
        committed = f.read()
    assert fresh == committed, "seed.vars.safetensors differs from keras_to_seqgrad.py's output"
    print(f"ok: seed.vars.safetensors ({len(committed)} bytes) == keras_to_seqgrad.py seed.keras")


if __name__ == "__main__":
    test_seed_vars_fixture_is_the_translators_output()
