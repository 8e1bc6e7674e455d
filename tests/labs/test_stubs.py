"""The learner's view: every lab run WITHOUT the solutions switch, with the exercises unsolved.

Each check cell must fail, naming its exercise (no check may pass on a stub); cells tagged
"exercise-dependent" may fail (they use the learner's function); every other cell must run, so a
learner can read and play with the whole lab before solving anything.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from tests.labs.notebooks import (CHECK_CALL, EXERCISE_DECORATOR, EXERCISE_DEPENDENT, RUN_LABS, lab_notebooks,
                                  notebook_id, source, tags)

NOTEBOOKS = lab_notebooks()
WORKERS = max(1, min(2, os.cpu_count() or 1))  # each lab runs in its own kernel; two at a time on 2 cores


@pytest.fixture(scope="module")
def unsolved_runs(request, tmp_path_factory) -> dict[Path, tuple[Path, subprocess.CompletedProcess]]:
    """Execute the selected notebooks once, unsolved, side by side; {notebook: (executed copy, process)}."""
    selected = [item.callspec.params["path"] for item in request.session.items
                if item.module is request.module and "path" in getattr(getattr(item, "callspec", None), "params", {})]
    out_root = tmp_path_factory.mktemp("unsolved")
    env = {k: v for k, v in os.environ.items() if k != "AISYS_LAB_SOLUTIONS"}

    def run(path: Path):
        out_dir = out_root / notebook_id(path).replace(":", "_")
        proc = subprocess.run([sys.executable, str(RUN_LABS), "--stubs", "--allow-errors", "--output", str(out_dir),
                               "--timeout", "300", str(path)], capture_output=True, text=True, env=env)
        return path, (out_dir / path.name, proc)

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(pool.map(run, selected))


def _errors(cell) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def unsolved_run_problems(nb) -> list[str]:
    """What is wrong with a notebook executed unsolved (allow_errors): one line per problem."""
    problems, check_cells = [], 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = source(cell)
        ids = CHECK_CALL.findall(text)
        errors = _errors(cell)
        lines = [ln for ln in text.strip().splitlines() if not ln.startswith("# NBVAL_")]
        first_line = lines[0][:60] if lines else ""
        where = f"cell {index} ({first_line})"
        if ids:
            check_cells += 1
            if not errors:
                problems.append(f"{where}: check({ids[0]!r}, ...) PASSED on the unsolved stub; its check "
                                f"must fail when the stub raises NotImplementedError")
                continue
            err = errors[0]
            if err.get("ename") != "ExerciseFailed" or not any(f"exercise {i}" in err.get("evalue", "")
                                                               for i in ids):
                problems.append(f"{where}: expected ExerciseFailed naming exercise {' or '.join(ids)}, got "
                                f"{err.get('ename')}: {err.get('evalue', '')[:300]}")
        elif errors and EXERCISE_DEPENDENT not in tags(cell):
            err = errors[0]
            problems.append(f"{where}: {err.get('ename')}: {err.get('evalue', '')[:300]} — every cell that "
                            f"is not a check must run unsolved; if it uses the learner's function, tag it "
                            f"{EXERCISE_DEPENDENT!r}")
    code = [source(c) for c in nb.cells if c.cell_type == "code"]
    exercises = {i for text in code for i in EXERCISE_DECORATOR.findall(text)}
    checked = {i for text in code for i in CHECK_CALL.findall(text)}
    if exercises and not check_cells:
        problems.append(f"the lab defines exercises {sorted(exercises)} but no cell calls check(...)")
    elif exercises - checked:
        problems.append(f"exercises {sorted(exercises - checked)} have a stub but no check(...) cell")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[notebook_id(p) for p in NOTEBOOKS])
def test_unsolved_lab_fails_only_its_checks(path, unsolved_runs):
    executed, proc = unsolved_runs[path]
    assert executed.exists(), f"{path.name} did not execute:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    problems = unsolved_run_problems(nbformat.read(executed, as_version=4))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def _executed(*cells):
    """A hand-made 'executed' notebook: (source, error or None, tags) per code cell."""
    nb = nbformat.v4.new_notebook()
    for src, error, cell_tags in cells:
        cell = nbformat.v4.new_code_cell(src)
        if error:
            ename, evalue = error
            cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])]
        if cell_tags:
            cell.metadata["tags"] = list(cell_tags)
        nb.cells.append(cell)
    return nb


STUB = ('@exercise("5.1")\ndef plan(g):\n    raise NotImplementedError', None, ())
GOOD_CHECK = ('check("5.1", plan)', ("ExerciseFailed", "exercise 5.1 — Plan: not implemented yet"), ())


def test_analysis_accepts_a_well_formed_lab():
    dependent = ("show(plan(g))", ("NotImplementedError", "exercise 5.1"), (EXERCISE_DEPENDENT,))
    assert unsolved_run_problems(_executed(("import aisys", None, ()), STUB, GOOD_CHECK, dependent)) == []


def test_analysis_catches_a_check_that_passes_on_the_stub():
    problems = unsolved_run_problems(_executed(STUB, ('check("5.1", plan)', None, ())))
    assert len(problems) == 1 and "PASSED on the unsolved stub" in problems[0]


def test_analysis_catches_a_check_failing_for_the_wrong_reason():
    bad = ('check("5.1", plan)', ("NameError", "name 'plan' is not defined"), ())
    assert "expected ExerciseFailed naming exercise 5.1" in unsolved_run_problems(_executed(STUB, bad))[0]


def test_analysis_catches_an_untagged_cell_that_needs_the_solution():
    untagged = ("show(plan(g))", ("NotImplementedError", "exercise 5.1"), ())
    problems = unsolved_run_problems(_executed(STUB, GOOD_CHECK, untagged))
    assert len(problems) == 1 and "tag it 'exercise-dependent'" in problems[0]


def test_analysis_catches_a_stub_without_check():
    assert "no cell calls check" in unsolved_run_problems(_executed(STUB))[0]
