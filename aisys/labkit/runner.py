"""Running a check and talking to the learner: ``@exercise``, ``check()`` and the solutions switch.

``run_check`` is the quiet core (returns a :class:`CheckReport`, never prints, never raises for a wrong
answer); ``check`` prints the report in a notebook and raises :class:`ExerciseFailed` on failure so
the cell turns red and "Run All" stops there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from .checker import Checker, CheckMismatch, ExerciseFailed, Mismatch
from .registry import Exercise, get_exercise

__all__ = ["CheckReport", "check", "exercise", "run_check", "solutions_enabled", "SOLUTIONS_ENV"]

SOLUTIONS_ENV = "AISYS_LAB_SOLUTIONS"
F = TypeVar("F", bound=Callable)


def solutions_enabled() -> bool:
    """True when ``AISYS_LAB_SOLUTIONS`` is 1/true/yes/on: exercises then use the library's own code.

    Read on every call (not at import) so a test or a notebook can flip it.
    """
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def exercise(exercise_id: str) -> Callable[[F], F]:
    """Mark a learner's stub as the answer to exercise ``N.k``.

    Normally returns the stub itself (tagged with the id); with ``AISYS_LAB_SOLUTIONS=1`` returns the
    library's reference implementation instead, so the whole lab runs solved.
    """
    ex = get_exercise(exercise_id)  # fails early, in the stub's own cell, on a mistyped id

    def decorate(stub: F) -> F:
        if not callable(stub):
            raise TypeError(f"@exercise({exercise_id!r}) decorates a function, got {stub!r}")
        if solutions_enabled():
            return ex.reference_function()  # type: ignore[return-value]
        try:
            stub.__aisys_exercise__ = ex.id  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass  # builtins/partials can't carry attributes; the tag is only a courtesy
        return stub

    return decorate


@dataclass
class CheckReport:
    """The outcome of one check: which items passed and, if it failed, why."""

    exercise: Exercise
    passed: list[str] = field(default_factory=list)
    mismatch: Mismatch | None = None
    not_implemented: str | None = None  # the stub's NotImplementedError message
    error: BaseException | None = None  # anything else the learner's function raised

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.not_implemented is None and self.error is None

    def reason(self) -> str:
        """One line: why it failed (empty when it passed)."""
        if self.not_implemented is not None:
            return "not implemented yet" + (f" ({self.not_implemented})" if self.not_implemented else "")
        if self.error is not None:
            return f"your function raised {type(self.error).__name__}: {self.error}"
        if self.mismatch is not None:
            m = self.mismatch
            return f"{m.what}: expected {m.expected}, got {m.got}" + (f" — hint: {m.hint}" if m.hint else "")
        return ""

    def render(self) -> str:
        """The text printed under a check cell; deterministic for the same answer."""
        lines = [f"{'PASS' if self.ok else 'FAIL'} {self.exercise.label}"]
        lines += [f"  ✓ {what}" for what in self.passed]
        if self.not_implemented is not None:
            lines.append("  ✗ not implemented yet" + (f": {self.not_implemented}" if self.not_implemented else ""))
            lines.append("    replace the `raise NotImplementedError(...)` line with your code, then re-run both cells")
        elif self.error is not None:
            lines.append(f"  ✗ your function raised {type(self.error).__name__}: {self.error}")
            lines.append("    the traceback below shows the line where it happened")
        elif self.mismatch is not None:
            m = self.mismatch
            lines.append(f"  ✗ {m.what}")
            lines.append(f"    expected: {m.expected}")
            lines.append(f"    got:      {m.got}")
            if m.hint:
                lines.append(f"    hint:     {m.hint}")
        return "\n".join(lines)


def run_check(exercise_id: str, fn: Callable) -> CheckReport:
    """Run exercise ``exercise_id``'s check on ``fn`` and return the report (no printing, no raising)."""
    ex = get_exercise(exercise_id)
    if not callable(fn):
        raise TypeError(f"check({exercise_id!r}, fn): fn must be the function you wrote, got {fn!r}")
    tagged = getattr(fn, "__aisys_exercise__", None)
    if tagged is not None and tagged != ex.id:
        raise ValueError(f"check({ex.id!r}, {getattr(fn, '__name__', fn)}) was given the function written for "
                         f"exercise {tagged}; pass the function of exercise {ex.id}")
    c = Checker(ex.id)
    report = CheckReport(ex, passed=c.passed)
    try:
        ex.check(fn, c)
    except CheckMismatch as exc:
        report.mismatch = exc.mismatch
    except NotImplementedError as exc:
        report.not_implemented = str(exc)
    except Exception as exc:  # the learner's code (or its output) broke the check: report it
        report.error = exc
    else:
        if not c.passed:
            raise RuntimeError(f"the check of exercise {ex.id} compared nothing; a check must call "
                               f"c.equal / c.close / c.true / c.raises at least once")
    return report


def check(exercise_id: str, fn: Callable) -> None:
    """Check the learner's ``fn`` for exercise ``N.k``: print PASS and what was checked, or FAIL and why.

    On failure raises :class:`ExerciseFailed` (an AssertionError) whose message names the exercise.
    """
    __tracebackhide__ = True  # IPython/pytest: show the learner's cell, not this frame
    report = run_check(exercise_id, fn)
    print(report.render(), flush=True)
    if report.ok:
        return
    failure = ExerciseFailed(f"{report.exercise.label}: {report.reason()}", exercise_id=report.exercise.id,
                             report=report)
    if report.error is not None:
        raise failure from report.error  # keep the traceback into the learner's code
    raise failure from None
