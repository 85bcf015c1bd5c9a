"""docs/notebooks/gradient-flow.ipynb executes (nbclient), every cell without an error, and its
pictures come out."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from execute_notebook import NOTEBOOK, execute  # noqa: E402


def test_notebook_executes():
    nb = execute(NOTEBOOK)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    # the training curves, the gradflow pictures and three saliency logos
    assert len(pngs) >= 5, len(pngs)
    text = "".join(o.get("text", "") for o in outputs)
    assert "ValueError: layer #3 (bidirectional(simple_rnn))" in text
    assert "Flatten (#2) removed the time axis" in text
