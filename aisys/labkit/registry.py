"""The exercise registry: one entry per exercise id, filled by the check modules in ``aisys.labkit.checks``.

Check modules (one per lab, ``checks/labNN.py``) are imported lazily, the first time someone asks for
an exercise, so ``import aisys.labkit`` stays cheap and a notebook only pays for the labs it uses.
References and bad variants are named as ``"module:attr"`` strings and imported only when needed,
so registering an exercise never imports heavy library code.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Callable, Union

from .checker import Checker

__all__ = ["Exercise", "Mistake", "UnknownExerciseError", "register", "get_exercise", "list_exercises", "resolve"]

Target = Union[str, Callable]
CheckFunction = Callable[[Callable, Checker], None]

_ID_PATTERN = re.compile(r"^\d+\.\d+$")
MIN_MISTAKES = 5          # every exercise's check must reject at least this many plausible wrong answers
_REGISTRY: dict[str, "Exercise"] = {}
_discovered = False


class UnknownExerciseError(LookupError):
    """An exercise id that no check module registered."""


def _id_key(exercise_id: str) -> tuple[int, int]:
    major, minor = exercise_id.split(".")
    return int(major), int(minor)


def resolve(target: Target, *, for_what: str = "") -> Callable:
    """Turn ``"package.module:attr.sub"`` (or a callable) into the callable it names."""
    if callable(target):
        return target
    if not isinstance(target, str) or ":" not in target:
        raise ValueError(f"{for_what}: expected 'module:attr' (e.g. 'aisys.chip.systolic:os_compute_cycles') "
                         f"or a callable, got {target!r}")
    module_name, _, attr_path = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"{for_what}: cannot import module {module_name!r} named in {target!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{for_what}: module {module_name!r} has no attribute {attr_path!r} "
                                 f"(named in {target!r})") from None
    if not callable(obj):
        raise TypeError(f"{for_what}: {target!r} names a {type(obj).__name__}, not a function")
    return obj


def describe(target: Target) -> str:
    """``"module:attr"`` for display, whether the target is a string or a callable."""
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer to an exercise, and what the check's FAIL report must say about it.

    ``target`` is the wrong implementation (``"module:attr"`` or a callable); ``says`` is a piece of text
    (compared case-insensitively) that the report of the failed check must contain — the words that
    point the learner at this mistake, e.g. ``"ties"`` for a rounding that ignores ties to even.
    """

    target: Target
    says: str

    def __post_init__(self):
        if not callable(self.target) and not (isinstance(self.target, str) and ":" in self.target):
            raise ValueError(f"Mistake({self.target!r}, ...): the target must be 'module:attr' or a callable")
        if not isinstance(self.says, str):
            raise TypeError(f"Mistake({describe(self.target)}): says= is the text the FAIL report shows for this "
                            f"mistake, got {self.says!r}")

    @property
    def name(self) -> str:
        return describe(self.target)

    def function(self, exercise_id: str) -> Callable:
        return resolve(self.target, for_what=f"exercise {exercise_id} wrong answer")

    def pointed_at(self, report_text: str) -> bool:
        """True when the FAIL report contains ``says`` (case and spacing ignored; empty ``says`` never is)."""
        norm = lambda t: " ".join(t.lower().split())
        return bool(self.says.strip()) and norm(self.says) in norm(report_text)


def _as_mistake(entry) -> Mistake:
    if isinstance(entry, Mistake):
        return entry
    if isinstance(entry, tuple) and len(entry) == 2:
        return Mistake(*entry)
    return Mistake(entry, "")   # says nothing yet: tests/labs/test_exercises.py asks the author to fill it in


@dataclass(frozen=True)
class Exercise:
    """One self-checking exercise: the check, the library's own solution, and mistakes it must catch."""

    id: str
    title: str
    lab: str
    reference: Target
    check: CheckFunction
    bad: tuple[Mistake, ...] = field(default=())

    @property
    def label(self) -> str:
        """``exercise N.k — title``: how reports and errors name the exercise."""
        return f"exercise {self.id} — {self.title}"

    def reference_function(self) -> Callable:
        return resolve(self.reference, for_what=f"exercise {self.id} reference")

    def bad_variants(self) -> list[tuple[str, Callable]]:
        """(name, function) for every plausible-mistake implementation that the check must reject."""
        return [(m.name, m.function(self.id)) for m in self.bad]


def _origin(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def register(exercise_id: str, *, title: str, lab: str, reference: Target,
             bad: "list[Mistake | tuple[Target, str]]" = ()) -> Callable[[CheckFunction], CheckFunction]:
    """Decorator for a check function ``check(fn, c: Checker)``; returns it unchanged.

    ``reference`` is the library's implementation (``"module:attr"``), handed to the learner when
    ``AISYS_LAB_SOLUTIONS=1``; every entry of ``bad`` is a plausible mistake — a :class:`Mistake` or a
    ``("module:attr", "words its FAIL report shows")`` pair — that the check must fail, saying those words
    (tests/labs/test_exercises.py requires at least ``MIN_MISTAKES`` of them).
    """
    if not isinstance(exercise_id, str) or not _ID_PATTERN.match(exercise_id):
        raise ValueError(f"register: exercise id must look like 'N.k' (lab number . exercise number), "
                         f"e.g. '8.2'; got {exercise_id!r}")
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"register({exercise_id!r}): title must be a non-empty string, got {title!r}")
    if not isinstance(lab, str) or not lab.strip():
        raise ValueError(f"register({exercise_id!r}): lab must name the notebook, e.g. '08_chips'; got {lab!r}")
    if isinstance(bad, (str,)) or not isinstance(bad, (list, tuple)):
        raise TypeError(f"register({exercise_id!r}): bad must be a list of Mistake('module:attr', says=...) "
                        f"entries, got {bad!r}")
    if not callable(reference) and not (isinstance(reference, str) and ":" in reference):
        raise ValueError(f"register({exercise_id!r}): {reference!r} is not 'module:attr' or a callable")
    try:
        mistakes = tuple(_as_mistake(b) for b in bad)
    except ValueError as exc:
        raise ValueError(f"register({exercise_id!r}): {exc}") from None

    def decorate(check_fn: CheckFunction) -> CheckFunction:
        if not callable(check_fn):
            raise TypeError(f"register({exercise_id!r}) decorates a check function, got {check_fn!r}")
        previous = _REGISTRY.get(exercise_id)
        if previous is not None and _origin(previous.check) != _origin(check_fn):
            raise ValueError(f"exercise {exercise_id} is registered twice: by {_origin(previous.check)} "
                             f"and by {_origin(check_fn)}; give one of them another id")
        # Same origin (a module reloaded, a notebook cell re-run): the newer definition wins.
        _REGISTRY[exercise_id] = Exercise(exercise_id, title.strip(), lab.strip(), reference, check_fn, mistakes)
        return check_fn

    return decorate


def _discover() -> None:
    """Import every check module once (aisys/labkit/checks/*.py); they register on import."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    from . import checks

    for info in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        name = f"{checks.__name__}.{info.name}"
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ImportError(f"the exercise check module {name} failed to import "
                              f"({type(exc).__name__}: {exc}); fix it or its exercises cannot be checked") from exc


def list_exercises(lab: str | None = None) -> list[Exercise]:
    """Every registered exercise (optionally only one lab's), in id order (1.2 before 1.10)."""
    _discover()
    found = [ex for ex in _REGISTRY.values() if lab is None or ex.lab == lab]
    return sorted(found, key=lambda ex: _id_key(ex.id))


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise with this id, or an error that lists the ids that exist."""
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise ids are strings such as '8.2' (a float would turn '1.10' into 1.1); "
                        f"got {exercise_id!r} of type {type(exercise_id).__name__}")
    _discover()
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(ex.id for ex in list_exercises()) or "none registered yet"
        raise UnknownExerciseError(f"unknown exercise {exercise_id!r}; known exercises: {known}") from None


def unregister(exercise_id: str) -> None:
    """Forget an exercise (tests register throwaway exercises and clean up after themselves)."""
    _REGISTRY.pop(exercise_id, None)
