#!/usr/bin/env python3
"""Re-executes docs/notebooks/gradient-flow.ipynb in place (outputs, pictures inline), so the
committed notebook shows what the current seqgrad draws. Needs `pip install "./python[test]"`.

    python python/execute_notebook.py [--check]   # --check: execute a copy, write nothing
"""

import argparse
import os
import sys

import nbformat
from nbclient import NotebookClient

NOTEBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "notebooks", "gradient-flow.ipynb")


def execute(path: str = NOTEBOOK, timeout: int = 600) -> "nbformat.NotebookNode":
    """Executes the notebook in its own folder; returns it with its outputs."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
    ).execute()
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="execute only; do not rewrite the notebook")
    a = ap.parse_args()
    nb = execute()
    if not a.check:
        nbformat.write(nb, NOTEBOOK)
        print(f"executed and wrote {os.path.normpath(NOTEBOOK)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
