"""What every lab in labs/ must be, read from its committed notebook (no kernel runs here):

- the notebook is what its generator tools/make_labs/labNN.py writes;
- stub cells hold only the stub, with the reference's parameters; no reference solution is bound in the
  learner's namespace; learner-facing code and instructions use public names only;
- its text links only to labs that exist, and every quantity its prose states is produced by a cell (or
  listed in the generator's QUOTED table, computed from the library or cited);
- at least one exercise plugs the learner's code into the library and shows it in a widget.

Each test runs for every notebook in labs/, so a new lab is held to it as soon as it lands; the failure
says what is missing and how to add it (labs/README.md, "Writing a lab", has the whole list).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re

import nbformat
import pytest

from aisys.labkit import list_exercises
from aisys.labkit.registry import resolve
from tests.labs.notebooks import (CHECK_CALL, EXERCISE_DECORATOR, EXERCISE_DEPENDENT, LABS_DIR, generator_module,
                                  generator_path, output_texts, shows_widget, source, tags)
from tests.labs.quoted_numbers import matches_library, produced, quantities

LABS = sorted(LABS_DIR.glob("*.ipynb"))
IDS = [p.stem for p in LABS]
README = "labs/README.md, 'Writing a lab'"


def _nb(path):
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _lab_exercises(nb) -> dict[str, object]:
    ids = {i for _, c in _code_cells(nb) for i in EXERCISE_DECORATOR.findall(source(c))}
    known = {ex.id: ex for ex in list_exercises()}
    return {i: known[i] for i in sorted(ids) if i in known}


def _parse(text: str):
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))]   # IPython magics
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


# ---- the notebook is generated ------------------------------------------------------------------------
@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_notebook_is_what_its_generator_writes(path):
    gen = generator_path(path)
    assert gen.exists(), (f"{path.name} has no generator: write {gen.relative_to(LABS_DIR.parent)} (a CELLS list "
                          f"built with tools/make_labs/labcells.py), so the lab can be regenerated ({README})")
    built = generator_module(path).build()
    want = [(c.cell_type, source(c), tags(c)) for c in built.cells]
    have = [(c.cell_type, source(c), tags(c)) for c in _nb(path).cells]
    for k, (w, h) in enumerate(zip(want, have)):
        assert w == h, (f"{path.name} cell {k} differs from what {gen.name} writes: regenerate and re-execute it "
                        f"(python {gen.relative_to(LABS_DIR.parent)} && make run-labs ONLY={path.stem[:2]})\n"
                        f"generator: {w[1][:300]!r}\nnotebook:  {h[1][:300]!r}")
    assert len(want) == len(have), f"{path.name} has {len(have)} cells, {gen.name} writes {len(want)}: regenerate it"


# ---- stubs and the learner's namespace ---------------------------------------------------------------
@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_stub_cells_hold_only_the_stub(path):
    problems = []
    for i, cell in _code_cells(_nb(path)):
        text = source(cell)
        ids = EXERCISE_DECORATOR.findall(text)
        if not ids:
            continue
        tree = _parse(text)
        others = [type(node).__name__ for node in (tree.body if tree else []) if not isinstance(node, ast.FunctionDef)]
        if others or len(ids) != 1:
            problems.append(f"cell {i} (exercise {', '.join(ids)}) holds {', '.join(others) or 'several stubs'} "
                            f"besides the stub: a learner who replaces the cell loses them; move imports and "
                            f"helpers to an earlier cell")
        if CHECK_CALL.search(text):
            problems.append(f"cell {i}: the check(...) call belongs in its own cell after the stub")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_stub_takes_the_references_parameters(path):
    nb = _nb(path)
    problems = []
    for i, cell in _code_cells(nb):
        tree = _parse(source(cell))
        for node in (tree.body if tree else []):
            ids = EXERCISE_DECORATOR.findall(ast.get_source_segment(source(cell), node) or "")
            if not isinstance(node, ast.FunctionDef) or not ids:
                continue
            try:
                ref = _lab_exercises(nb)[ids[0]].reference_function()
            except KeyError:
                problems.append(f"cell {i}: exercise {ids[0]} is not registered by any aisys/labkit/checks module")
                continue
            params = [p for p in inspect.signature(ref).parameters.values()]
            stub_args = node.args
            stub_names = [a.arg for a in stub_args.posonlyargs + stub_args.args]
            ref_names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if stub_names != ref_names[:len(stub_names)]:
                problems.append(f"exercise {ids[0]}: the stub takes ({', '.join(stub_names)}), the reference "
                                f"({', '.join(ref_names)}); in solutions mode the reference replaces the stub, so "
                                f"they must agree")
            required = [p.name for p in params if p.default is inspect.Parameter.empty
                        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if len(stub_names) < len(required):
                problems.append(f"exercise {ids[0]}: the stub lacks the reference's required parameters "
                                f"{required[len(stub_names):]}")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def _bound_objects(nb):
    """(cell index, expression text, object) for every imported name and every dotted attribute chain on one
    that the lab's code cells use (resolved without running the cells)."""
    names: dict[str, object] = {}
    found = []
    for i, cell in _code_cells(nb):
        tree = _parse(source(cell))
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    try:
                        mod = importlib.import_module(a.name)
                    except ImportError:
                        continue
                    if a.asname:
                        names[a.asname] = mod
                    else:
                        names[a.name.split(".")[0]] = importlib.import_module(a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                try:
                    mod = importlib.import_module(node.module)
                except ImportError:
                    continue
                for a in node.names:
                    obj = getattr(mod, a.name, None)
                    if obj is None:
                        try:
                            obj = importlib.import_module(f"{node.module}.{a.name}")
                        except ImportError:
                            continue
                    names[a.asname or a.name] = obj
                    found.append((i, f"from {node.module} import {a.name}", obj))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                chain, base = [], node
                while isinstance(base, ast.Attribute):
                    chain.append(base.attr)
                    base = base.value
                if isinstance(base, ast.Name) and base.id in names:
                    obj = names[base.id]
                    for attr in reversed(chain):
                        obj = getattr(obj, attr, None)
                        if obj is None:
                            break
                    if obj is not None:
                        found.append((i, ".".join([base.id, *reversed(chain)]), obj))
    return found


@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_reference_solutions_stay_out_of_the_learners_namespace(path):
    nb = _nb(path)
    refs = {}
    for ex in _lab_exercises(nb).values():
        refs[id(ex.reference_function())] = ex
    problems = [f"cell {i}: `{expr}` is the reference solution of exercise {refs[id(obj)].id} "
                f"({refs[id(obj)].reference}); a learner could call it instead of writing theirs. Show the library "
                f"at work through something that is not the answer (the solutions switch fetches the reference)"
                for i, expr, obj in _bound_objects(nb) if id(obj) in refs]
    problems = list(dict.fromkeys(problems))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


_PRIVATE = re.compile(r"(?<![\w.])_[A-Za-z]\w*|\._[A-Za-z]\w*")


def _private_names(tree) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
                else None)
        if isinstance(node, ast.ImportFrom):
            out |= {a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")}
        if isinstance(node, ast.FunctionDef) or name is None:
            continue
        if name.startswith("_") and not name.startswith("__") and name != "_":
            out.add(name)
    return out


@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_learner_facing_code_uses_public_names(path):
    problems = []
    for i, cell in enumerate(_nb(path).cells):
        text = source(cell)
        if cell.cell_type == "code":
            tree = _parse(text)
            used = _private_names(tree) if tree is not None else set()
            if used:
                problems.append(f"cell {i} uses private names {sorted(used)}")
        else:
            spans = " ".join(re.findall(r"`([^`\n]+)`", text))
            used = {m.lstrip(".") for m in _PRIVATE.findall(spans) if not m.lstrip(".").startswith("__")}
            if used:
                problems.append(f"cell {i} (markdown) tells the learner to use private names {sorted(used)}")
    assert not problems, (f"{path.name}:\n  " + "\n  ".join(problems) + "\nA learner works with public names "
                          f"only: add a public hook to aisys (a function, property or context manager with a "
                          f"docstring) and use that")


# ---- the text ------------------------------------------------------------------------------------------
_LAB_REF = re.compile(r"\b[Ll]abs?\s+(\d{2}(?:\s*(?:,|and|or|–|-)\s*\d{2})*)")


@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_text_links_only_to_labs_that_exist(path):
    existing = {p.stem[:2] for p in LABS}
    problems = []
    for i, cell in enumerate(_nb(path).cells):
        if cell.cell_type != "markdown":
            continue
        for m in _LAB_REF.finditer(source(cell)):
            for number in re.findall(r"\d{2}", m.group(1)):
                if number not in existing:
                    problems.append(f"cell {i} mentions lab {number} ({m.group(0)!r}), which is not in labs/")
    assert not problems, (f"{path.name}:\n  " + "\n  ".join(problems) + "\nLink only to labs that exist; "
                          f"the lab's author adds the link when it lands")


@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_quantities_in_the_text_come_from_the_notebook(path):
    nb = _nb(path)
    lines = []
    for _, cell in _code_cells(nb):
        lines += source(cell).splitlines()
        for text in output_texts(cell):
            lines += text.splitlines()
    quoted = dict(getattr(generator_module(path), "QUOTED", {}) or {}) if generator_path(path).exists() else {}
    problems, used = [], set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for q in quantities(source(cell)):
            if q.key in quoted:
                used.add(q.key)
                why = quoted[q.key]
                if callable(why):
                    value = float(why())
                    if not matches_library(q, value):
                        problems.append(f"cell {i} says {q.text!r} but QUOTED[{q.key!r}] computes {value:g} "
                                        f"from the library")
                elif not (isinstance(why, str) and len(why.split()) >= 2):
                    problems.append(f"QUOTED[{q.key!r}] must be a callable computing it from the library or "
                                    f"the citation of a published figure, got {why!r}")
                continue
            if not produced(q, lines):
                problems.append(f"cell {i} states {q.text!r}, but no line of the notebook's code or outputs shows "
                                f"{q.value:g} next to {q.unit!r}")
    stale = sorted(set(quoted) - used)
    if stale:
        problems.append(f"QUOTED lists {stale}, which the text no longer states: remove them")
    assert not problems, (f"{path.name}:\n  " + "\n  ".join(problems) + f"\nA quantity in the prose must come from "
                          f"the library: print it from a cell (and refer to the printed value), or add it to "
                          f"QUOTED in {generator_path(path).name} as a callable that computes it (checked here) "
                          f"or as the citation of a published figure ({README})")


# ---- exercises in action --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", LABS, ids=IDS)
def test_an_exercise_shows_the_learners_code_in_a_widget(path):
    nb = _nb(path)
    if not _lab_exercises(nb):
        pytest.skip(f"{path.name} has no exercises")
    shown = [i for i, c in _code_cells(nb) if EXERCISE_DEPENDENT in tags(c) and shows_widget(c)]
    assert shown, (f"{path.name}: no exercise-dependent cell shows a widget. Plug one exercise's function into the "
                   f"library (a pass, a planner, a rule, a layout...) and end a cell tagged {EXERCISE_DEPENDENT!r} "
                   f"with the widget that draws its result, so the learner sees their code at work ({README})")
