"""Self-checking exercises for the labs.

In a notebook::

    from aisys.labkit import exercise, check

    @exercise("8.2")
    def os_compute_cycles(M, N, K, rows, cols):
        raise NotImplementedError("exercise 8.2: count the cycles of the output-stationary array")

    check("8.2", os_compute_cycles)   # PASS + what was checked, or FAIL with expected/got/hint

Check modules (``aisys/labkit/checks/labNN.py``) declare exercises with :func:`register`. With
``AISYS_LAB_SOLUTIONS=1`` the ``@exercise`` decorator hands back the library's reference, which is how
the labs are validated. ``python -m aisys.labkit list`` shows every exercise.
"""
from .checker import Checker, ExerciseFailed, Mismatch
from .registry import Exercise, Mistake, UnknownExerciseError, get_exercise, list_exercises, register
from .runner import CheckReport, check, exercise, run_check, solutions_enabled

__all__ = ["Checker", "CheckReport", "Exercise", "ExerciseFailed", "Mismatch", "Mistake", "UnknownExerciseError", "check",
           "exercise", "get_exercise", "list_exercises", "register", "run_check", "solutions_enabled"]
