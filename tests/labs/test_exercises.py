"""Every registered exercise is honest: the library's reference PASSES, an unsolved stub FAILS with the
exercise id in the message, and every registered plausible mistake ("bad variant") FAILS.

Without this, a check could pass vacuously (a learner would see PASS for a stub) or be so loose
that a classic mistake slips through.
"""
from __future__ import annotations

import pytest

from aisys.labkit import ExerciseFailed, check, list_exercises, run_check

EXERCISES = list_exercises()
IDS = [ex.id for ex in EXERCISES]


def _not_implemented_stub(*args, **kwargs):
    raise NotImplementedError("exercise stub: write your code here")


def test_registry_ids_are_unique_and_labs_named():
    assert len(IDS) == len(set(IDS))
    for ex in EXERCISES:
        assert ex.lab.split("_")[0].isdigit(), f"exercise {ex.id}: lab {ex.lab!r} should be like '08_chips'"
        assert int(ex.lab.split("_")[0]) == int(ex.id.split(".")[0]), (
            f"exercise {ex.id} belongs to lab {int(ex.id.split('.')[0]):02d}, but is registered for {ex.lab!r}")


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_reference_passes(exercise, capsys):
    report = run_check(exercise.id, exercise.reference_function())
    assert report.ok, f"the reference of exercise {exercise.id} fails its own check:\n{report.render()}"
    check(exercise.id, exercise.reference_function())  # the notebook path prints PASS and does not raise
    assert capsys.readouterr().out.startswith(f"PASS exercise {exercise.id} — ")


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_unsolved_stub_fails_naming_the_exercise(exercise, capsys):
    with pytest.raises(ExerciseFailed) as info:
        check(exercise.id, _not_implemented_stub)
    assert f"exercise {exercise.id}" in str(info.value)
    assert "not implemented yet" in str(info.value)
    assert capsys.readouterr().out.startswith(f"FAIL exercise {exercise.id} — ")


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_bad_variant_fails(exercise):
    assert exercise.bad, (f"exercise {exercise.id} registers no bad variant: add at least one plausible "
                          f"mistake (bad=['module:attr']) that its check must reject")
    for name, bad_fn in exercise.bad_variants():
        report = run_check(exercise.id, bad_fn)
        assert not report.ok, f"exercise {exercise.id}: the bad variant {name} PASSES the check:\n{report.render()}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_report_is_deterministic(exercise):
    """nbval compares the printed report, so two runs must print the same text."""
    fn = exercise.reference_function()
    assert run_check(exercise.id, fn).render() == run_check(exercise.id, fn).render()
