"""A lab author's self-test of one exercise: is its check honest, strict and thorough?

- the library's reference PASSES;
- every registered :class:`~aisys.labkit.registry.Mistake` FAILS with a diagnosis (a mismatch, not a crash)
  whose report contains the words the mistake declares (``says``), and there are at least
  ``MIN_MISTAKES`` of them;
- the check calls the function with a non-default value of every parameter that has a default, so an
  answer that ignores ``dim=``, ``stride=`` or ``fold_params=`` cannot pass.

``python -m aisys.labkit check`` prints these problems; tests/labs/test_exercises.py fails on them.
"""
from __future__ import annotations

import ast
import functools
import inspect
import json
import re
from pathlib import Path

import numpy as np

from .registry import MIN_MISTAKES, Exercise, Mistake
from .runner import run_check

__all__ = ["reference_problems", "mistake_problems", "argument_problems", "audit", "find_stubs"]

_HOW = "see labs/README.md, 'Writing a lab'"
LABS_DIR = Path(__file__).resolve().parents[2] / "labs"     # a source checkout's labs/ (absent when installed)
_EXERCISE_DECORATOR = re.compile(r"""^\s*@exercise\(\s*["'](\d+\.\d+)["']""", re.M)


def find_stubs(labs_dir: Path = LABS_DIR) -> dict[str, ast.FunctionDef]:
    """{exercise id: the stub's ``def``} for every ``@exercise("N.k")`` stub cell in ``labs_dir``'s notebooks."""
    stubs: dict[str, ast.FunctionDef] = {}
    for path in sorted(Path(labs_dir).glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            if cell.get("cell_type") != "code" or not _EXERCISE_DECORATOR.search(src):
                continue
            try:
                tree = ast.parse(src)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    for dec in node.decorator_list:
                        if (isinstance(dec, ast.Call) and getattr(dec.func, "id", "") == "exercise" and dec.args
                                and isinstance(dec.args[0], ast.Constant)):
                            stubs[str(dec.args[0].value)] = node
    return stubs


def reference_problems(ex: Exercise) -> list[str]:
    report = run_check(ex.id, ex.reference_function())
    return [] if report.ok else [f"exercise {ex.id}: the library's reference fails its own check:\n{report.render()}"]


def mistake_problems(ex: Exercise) -> list[str]:
    """What is wrong with the exercise's battery of plausible wrong answers (empty: nothing)."""
    problems = []
    if len(ex.bad) < MIN_MISTAKES:
        problems.append(
            f"exercise {ex.id} registers {len(ex.bad)} plausible wrong answer(s); every exercise needs at least "
            f"{MIN_MISTAKES}, the mistakes a learner really makes (an ignored attribute such as dim/stride/padding, "
            f"a non-commutative op treated as commutative, an off-by-one, a missing broadcast, a wrong sign "
            f"convention), each as bad=[Mistake('module:attr', says='words its FAIL report shows'), ...] ({_HOW})")
    for m in ex.bad:
        problems += _one_mistake(ex, m)
    return problems


def _one_mistake(ex: Exercise, m: Mistake) -> list[str]:
    report = run_check(ex.id, m.function(ex.id))
    text = report.render()
    if report.ok:
        return [f"exercise {ex.id}: the wrong answer {m.name} PASSES the check; make the check catch it "
                f"(a golden value or property it breaks):\n{text}"]
    if report.not_implemented is not None:
        return [f"exercise {ex.id}: the wrong answer {m.name} raised NotImplementedError; give it a real body"]
    if report.error is not None:
        return [f"exercise {ex.id}: the wrong answer {m.name} crashes the check instead of being diagnosed "
                f"({type(report.error).__name__}: {report.error}); run the learner's code through "
                f"aisys.labkit.learner.call and turn what goes wrong into a mismatch with a hint"]
    if not m.says.strip():
        return [f"exercise {ex.id}: the wrong answer {m.name} declares no says=...: name the words of its FAIL "
                f"report that point the learner at the mistake. Its report today:\n{text}"]
    if not m.pointed_at(text):
        return [f"exercise {ex.id}: the wrong answer {m.name} FAILs, but its report does not say {m.says!r} "
                f"(the words meant to point at the mistake); sharpen the hint or the says= text:\n{text}"]
    return []


def _differs(value, default) -> bool:
    try:
        same = value == default
        if isinstance(same, np.ndarray):
            return not bool(same.all()) if same.shape == np.shape(default) else True
        return not bool(same)
    except Exception:          # incomparable values differ
        return True


def argument_problems(ex: Exercise, stub: ast.FunctionDef | None = None) -> list[str]:
    """Parameters with a default that the check never sets to another value (run on the reference).

    Only the parameters the learner's stub declares count (``stub``: its ``def``; by default the stub
    found in the labs of a source checkout, else every parameter of the reference)."""
    ref = ex.reference_function()
    try:
        sig = inspect.signature(ref)
    except (TypeError, ValueError):
        return []
    if stub is None:
        stub = find_stubs().get(ex.id)
    promised = None if stub is None else {a.arg for a in stub.args.args + stub.args.kwonlyargs}
    optional = {name: p.default for name, p in sig.parameters.items()
                if p.default is not inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and (promised is None or name in promised)}
    if not optional:
        return []
    seen: dict[str, bool] = {name: False for name in optional}

    @functools.wraps(ref)
    def recording(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:
            bound = None
        if bound is not None:
            for name, default in optional.items():
                if name in bound.arguments and _differs(bound.arguments[name], default):
                    seen[name] = True
        return ref(*args, **kwargs)

    run_check(ex.id, recording)
    missing = [name for name, hit in seen.items() if not hit]
    return [f"exercise {ex.id}: the check never calls the function with {name}= other than its default "
            f"{optional[name]!r}; the stub promises that argument, so test it (a wrong answer that ignores it "
            f"must fail) or drop the parameter" for name in missing]


def audit(ex: Exercise, stub: ast.FunctionDef | None = None) -> list[str]:
    """Every problem with one exercise (empty list: the check is honest, strict and thorough)."""
    return reference_problems(ex) + mistake_problems(ex) + argument_problems(ex, stub)
