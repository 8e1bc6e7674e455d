"""Shared by the lab generators (tools/make_labs/labNN.py): a lab is a list of (kind, source) cells.

kinds: MD (markdown), CODE (runs with the exercises unsolved too), EXERCISE_DEPENDENT (a code cell that
uses the learner's function: tagged "exercise-dependent", so the unsolved-lab test lets it fail).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

MD, CODE, EXERCISE_DEPENDENT = "md", "code", "code-exercise"


def build(cells, prefix: str) -> nbformat.NotebookNode:
    """The notebook for ``cells``; cell ids are ``<prefix>-NN`` so regenerating keeps diffs small."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        if kind == MD:
            nb.cells.append(new_markdown_cell(source))
        else:
            cell = new_code_cell(source)
            if kind == EXERCISE_DEPENDENT:
                cell.metadata["tags"] = ["exercise-dependent"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{prefix}-{i:02d}"
    return nb


def main(cells, prefix: str, default_out: Path, argv: list[str]) -> None:
    """``python tools/make_labs/labNN.py [OUT.ipynb]``: write the (unexecuted) notebook."""
    out = Path(argv[1]) if len(argv) > 1 else default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build(cells, prefix), str(out))
    print(f"wrote {out}")
