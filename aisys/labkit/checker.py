"""The vocabulary a check function uses to compare a learner's answer with the truth.

Every comparison either records one line the learner will read ("what was checked") or stops the
check with a :class:`Mismatch` that says what was compared, what was expected, what came back and a
hint. Stopping at the first mismatch keeps the report short and avoids cascades of follow-on errors.
Values are rendered by :func:`show`, which is deterministic, because nbval compares the printed report.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Checker", "ExerciseFailed", "Mismatch", "CheckMismatch", "show", "telltale"]


class ExerciseFailed(AssertionError):
    """A self-check did not pass. The message always contains ``exercise N.k``.

    It subclasses AssertionError so test runners and nbval treat it as a failed assertion.
    """

    def __init__(self, message: str, *, exercise_id: str, report: "object | None" = None):
        super().__init__(message)
        self.exercise_id = exercise_id
        self.report = report


@dataclass(frozen=True)
class Mismatch:
    """What a failed comparison tells the learner."""

    what: str
    expected: str
    got: str
    hint: str = ""


class CheckMismatch(Exception):
    """Raised inside a check function to stop it at the first wrong answer."""

    def __init__(self, mismatch: Mismatch):
        super().__init__(f"{mismatch.what}: expected {mismatch.expected}, got {mismatch.got}")
        self.mismatch = mismatch


_MAX_SHOWN = 400  # characters of one rendered value in a report


def show(value: Any) -> str:
    """Render a value for a report: short, deterministic, with shape/dtype for arrays."""
    if isinstance(value, np.ndarray):
        body = np.array2string(value, threshold=64, edgeitems=3, separator=", ", max_line_width=100)
        text = f"array(shape={value.shape}, dtype={value.dtype}) {body}"
    elif isinstance(value, (np.generic,)):
        text = f"{value.item()!r} ({type(value).__name__})"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, type):
        text = f"<class {value.__qualname__}>"
    elif callable(value) and hasattr(value, "__qualname__"):
        text = f"<function {value.__qualname__}>"
    else:
        text = repr(value)
    text = " ".join(text.split()) if "\n" in text and not isinstance(value, np.ndarray) else text
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return text


def telltale(got: Any, known: "list[tuple[Any, str]]", otherwise: str, *, args: tuple = (), rtol: float = 1e-9,
             atol: float = 0.0) -> str:
    """The hint for a wrong value: the words of the classic mistake(s) that produce exactly ``got``.

    ``known`` pairs each classic mistake — the value it gives on this very case, or a function that computes it
    from ``args`` — with the words that name it; a value no known mistake explains gets ``otherwise`` (the rule
    in full), and a value two mistakes explain gets both. So one case can tell "you left out the all-gather"
    from "you sent whole vectors" instead of printing the formula again."""
    found = []
    for value, words in known:
        try:
            if callable(value):
                value = value(*args)
            g, v = np.asarray(got, dtype=float), np.asarray(value, dtype=float)
            if g.shape == v.shape and np.allclose(g, v, rtol=rtol, atol=atol, equal_nan=True):
                found.append(words)
        except Exception:          # a mistake that cannot run on this case explains nothing here
            continue
    if len(found) > 1:
        return "this value is what each of these mistakes would give: " + "; or ".join(found)
    return found[0] if found else otherwise


def _is_arraylike(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic))


def _values_equal(got: Any, expected: Any) -> tuple[bool, str]:
    """Structural equality that treats list/tuple alike, NaN as equal to NaN, arrays by shape+values.

    Returns (equal, detail) where detail explains *where* they differ (empty when equal).
    """
    if _is_arraylike(got) or _is_arraylike(expected):
        try:
            g, e = np.asarray(got), np.asarray(expected)
        except Exception as exc:  # ragged lists etc.
            return False, f"cannot compare as arrays ({type(exc).__name__}: {exc})"
        if g.shape != e.shape:
            return False, f"shape {g.shape} instead of {e.shape}"
        nan_ok = g.dtype.kind in "fc" and e.dtype.kind in "fc"
        try:
            differs = np.asarray(g != e)
            if nan_ok:
                differs &= ~(np.isnan(g) & np.isnan(e))
        except TypeError as exc:
            return False, f"cannot compare elementwise ({exc})"
        if not differs.any():
            return True, ""
        if differs.ndim == 0:
            return False, ""
        idx = tuple(int(i) for i in np.argwhere(differs)[0])
        return False, f"first difference at index {idx}: {show(g[idx])} vs {show(e[idx])}"
        return False, ""
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        if len(got) != len(expected):
            return False, f"length {len(got)} instead of {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            ok, detail = _values_equal(g, e)
            if not ok:
                return False, f"item [{i}] differs" + (f" ({detail})" if detail else "")
        return True, ""
    if isinstance(got, float) and isinstance(expected, float) and math.isnan(got) and math.isnan(expected):
        return True, ""
    try:
        same = got == expected
        return (bool(same), "") if isinstance(same, (bool, np.bool_)) else (False, "not comparable")
    except Exception as exc:
        return False, f"cannot compare ({type(exc).__name__}: {exc})"


class Checker:
    """Passed to every check function as ``c``; records what was checked, stops at the first mismatch.

    ``c.rng`` is a numpy Generator seeded from the exercise id, so random test data is the same on
    every run (reports are compared by nbval) yet differs between exercises.
    """

    def __init__(self, exercise_id: str):
        self.exercise_id = exercise_id
        self.passed: list[str] = []
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(zlib.crc32(self.exercise_id.encode()))
        return self._rng

    def _what(self, what: str) -> str:
        return what or f"check #{len(self.passed) + 1}"

    def _ok(self, what: str) -> None:
        self.passed.append(self._what(what))

    def fail(self, what: str = "", *, expected: Any = "", got: Any = "", hint: str = "") -> None:
        """Stop the check with a mismatch (for conditions the other helpers don't express)."""
        raise CheckMismatch(Mismatch(self._what(what), str(expected), str(got), hint))

    def equal(self, got: Any, expected: Any, what: str = "", *, hint: str = "") -> None:
        """Exact equality (arrays: same shape and values; list and tuple compare alike; NaN == NaN)."""
        same, detail = _values_equal(got, expected)
        if not same:
            shown = show(got) + (f"  [{detail}]" if detail else "")
            self.fail(what, expected=show(expected), got=shown, hint=hint)
        self._ok(what)

    def close(self, got: Any, expected: Any, what: str = "", *, rtol: float = 1e-7, atol: float = 0.0,
              hint: str = "") -> None:
        """|got − expected| ≤ atol + rtol·|expected| elementwise, with equal shapes (NaN matches NaN)."""
        try:
            g = np.asarray(got)
        except (TypeError, ValueError):  # ragged nested lists
            g = np.asarray(None)
        if got is None or g.dtype.kind not in "biufc":
            self.fail(what, expected=f"a number or array close to {show(expected)}",
                      got=f"{show(got)} ({type(got).__name__})", hint=hint)
        e = np.asarray(expected)
        if g.shape != e.shape:
            self.fail(what, expected=f"shape {e.shape}: {show(expected)}",
                      got=f"shape {g.shape}: {show(got)}", hint=hint)
        if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
            common = np.result_type(g.dtype, e.dtype, np.float64)
            err = np.abs(g.astype(common) - e.astype(common))
            err = np.where(np.isnan(err), np.inf, err)
            worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
            where = f" at index {tuple(int(i) for i in worst)}" if err.ndim else ""
            self.fail(what, expected=f"{show(expected)} (rtol={rtol:g}, atol={atol:g})",
                      got=f"{show(got)}  [largest error {float(err[worst]):.6g}{where}]", hint=hint)
        self._ok(what)

    def true(self, condition: Any, what: str = "", *, expected: Any = "true", got: Any = "false",
             hint: str = "") -> None:
        """A property that must hold; give ``expected``/``got`` to make a failure readable."""
        if not bool(condition):
            self.fail(what, expected=expected, got=got, hint=hint)
        self._ok(what)

    def raises(self, exc_type: type[BaseException] | tuple[type[BaseException], ...], fn: Callable, *args: Any,
               what: str = "", hint: str = "", **kwargs: Any) -> BaseException:
        """``fn(*args, **kwargs)`` must raise ``exc_type`` (e.g. bad input must be refused)."""
        names = (exc_type.__name__ if isinstance(exc_type, type)
                 else " or ".join(t.__name__ for t in exc_type))
        try:
            result = fn(*args, **kwargs)
        except exc_type as exc:
            self._ok(what)
            return exc
        except NotImplementedError:
            raise
        except Exception as exc:
            self.fail(what, expected=f"raises {names}", got=f"raised {type(exc).__name__}: {exc}", hint=hint)
        self.fail(what, expected=f"raises {names}", got=f"returned {show(result)}", hint=hint)
        raise AssertionError("unreachable")  # pragma: no cover
