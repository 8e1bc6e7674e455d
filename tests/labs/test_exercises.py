"""Every registered exercise is honest, strict and thorough (aisys.labkit.audit):

- the library's reference PASSES, an unsolved stub FAILS with the exercise id in the message;
- a battery of at least five plausible wrong answers (``bad=[Mistake(...)]``) each FAILS with a diagnosis
  whose report says the words that point the learner at that mistake;
- the check gives every optional parameter of the function a non-default value at least once.

Without this, a check could pass vacuously (a learner would see PASS for a stub), be so loose that a
classic mistake slips through, or fail it with a message that does not help. It covers every exercise
that a check module in aisys/labkit/checks/ registers, so a new lab is held to it automatically.
"""
from __future__ import annotations

import pytest

from aisys.labkit import ExerciseFailed, check, list_exercises, run_check
from aisys.labkit.audit import argument_problems, mistake_problems

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
def test_battery_of_mistakes_fails_with_its_hints(exercise):
    problems = mistake_problems(exercise)
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_check_tries_every_optional_argument(exercise):
    problems = argument_problems(exercise)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_report_is_deterministic(exercise):
    """nbval compares the printed report, so two runs must print the same text."""
    fn = exercise.reference_function()
    assert run_check(exercise.id, fn).render() == run_check(exercise.id, fn).render()
