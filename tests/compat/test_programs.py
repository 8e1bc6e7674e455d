"""PyTorch programs run unchanged on aisys: each file in programs/ is ordinary PyTorch code (``import torch``).

Each is run with aisys by changing only its import lines (``import torch`` → ``import aisys as torch``, and the
submodules likewise) — the test checks that nothing else differs — and, where PyTorch is installed, also
with torch itself, and the numbers compared. Weights and data come from numpy generators, so both runs
start from the same values; training curves then agree to float32 rounding.
"""
from __future__ import annotations

import functools
import pathlib
import re

import numpy as np
import pytest

PROGRAMS = sorted((pathlib.Path(__file__).parent / "programs").glob("*.py"))

_IMPORTS = [  # (PyTorch's import line, aisys's) — the only edits a program gets
    (r"^import torch\.nn\.functional as (\w+)$", r"import aisys.nn.functional as \1"),
    (r"^import torch\.nn as (\w+)$", r"import aisys.nn as \1"),
    (r"^import torch\.optim as (\w+)$", r"import aisys.optim as \1"),
    (r"^from torch\.nn import functional as (\w+)$", r"from aisys.nn import functional as \1"),
    (r"^from torch import (.+)$", r"from aisys import \1"),
    (r"^from torch\.optim\.lr_scheduler import (.+)$", r"from aisys.optim.lr_scheduler import \1"),
    (r"^from torch\.utils\.data import (.+)$", r"from aisys.data import \1"),
    (r"^import torch$", r"import aisys as torch"),
]


def as_aisys(source: str) -> str:
    out = []
    for line in source.splitlines():
        for pattern, repl in _IMPORTS:
            if re.match(pattern, line):
                line = re.sub(pattern, repl, line)
                break
        out.append(line)
    return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=None)
def run(path: pathlib.Path, library: str) -> dict:
    """``main()``'s results (run once per program and library: the programs are deterministic)."""
    source = path.read_text(encoding="utf-8")
    if library == "aisys":
        source = as_aisys(source)
    namespace = {"__name__": f"compat_{path.stem}_{library}"}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace["main"]()


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_only_import_lines_change(path):
    before = path.read_text(encoding="utf-8").splitlines()
    after = as_aisys(path.read_text(encoding="utf-8")).splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed and all(a.lstrip().startswith(("import ", "from ")) for a, _ in changed)
    assert "aisys" not in path.read_text(encoding="utf-8")


def _close(mine, theirs, key, rtol):
    if isinstance(theirs, (list, tuple)) and theirs and isinstance(theirs[0], (list, tuple, float, int)):
        np.testing.assert_allclose(np.asarray(mine, float), np.asarray(theirs, float), rtol=rtol, atol=1e-6,
                                   err_msg=key)
    elif isinstance(theirs, float):
        assert mine == pytest.approx(theirs, rel=rtol, abs=1e-6), key
    else:
        assert mine == theirs, key


TOLERANCE = {"poly_tensors": 1e-4, "poly_autograd": 1e-4, "nn_optim": 1e-3, "custom_function": 1e-9,
             "cnn_mnist": 2e-3, "micro_gpt": 2e-3}


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_program_runs_on_aisys_and_agrees_with_pytorch(path, capsys):
    mine = run(path, "aisys")
    assert mine and all(v is not None for v in mine.values())
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = run(path, "torch")
    assert set(mine) == set(theirs)
    for key in theirs:
        _close(mine[key], theirs[key], f"{path.stem}: {key}", TOLERANCE[path.stem])


def test_programs_learn_without_pytorch():
    """What CI checks without torch: each program's own success criterion, on aisys alone."""
    res = {p.stem: run(p, "aisys") for p in PROGRAMS}
    assert res["poly_tensors"]["losses"][-1] < 0.3 * res["poly_tensors"]["losses"][0]
    assert res["poly_autograd"]["losses"][-1] < res["poly_autograd"]["losses"][0]
    assert res["nn_optim"]["rmsprop"][-1] < res["nn_optim"]["rmsprop"][0] and res["nn_optim"]["lr"] == [1e-6 / 16]
    assert res["custom_function"]["gradcheck"] and res["custom_function"]["losses"][-1] < \
        res["custom_function"]["losses"][0]
    assert res["cnn_mnist"]["correct"] >= 48 and res["cnn_mnist"]["lr"] == pytest.approx([0.343])
    assert res["micro_gpt"]["losses"][-1] < 0.7 * res["micro_gpt"]["losses"][0]
    assert res["micro_gpt"]["sample_length"] == 41 and res["micro_gpt"]["sample_in_vocab"]
