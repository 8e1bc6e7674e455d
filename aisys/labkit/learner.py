"""Helpers the exercise checks share: run the learner's code without letting a traceback hide the check.

``call`` turns an exception into a readable problem (a NotImplementedError still propagates, so an
unsolved stub reports "not implemented yet"); ``first_failure`` runs a derandomized hypothesis property
and returns the minimal failing example it found.
"""
from __future__ import annotations


def call(fn, *args, **kwargs):
    """(fn(*args, **kwargs), None), or (None, "raised TypeError: ...") when the learner's code raises."""
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError:
        raise
    except Exception as exc:  # the message names the input that broke it
        return None, f"raised {type(exc).__name__}: {exc}"


def first_failure(prop_test):
    """Run a hypothesis property that appends a description to its ``failures`` list on each failing example;
    return the shrunk failure (hypothesis replays the minimal example last) or None."""
    failures: list[str] = []
    try:
        prop_test(failures)
    except NotImplementedError:
        raise
    except Exception:
        pass
    return failures[-1] if failures else None


def hypothesis_settings(examples: int):
    """Settings for properties inside checks: the same examples on every run, no database, no health checks."""
    from hypothesis import HealthCheck, settings

    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    print_blob=False, suppress_health_check=list(HealthCheck))
