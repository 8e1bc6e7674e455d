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


# How many exercises each lab registers: an exercise that stops registering (a renamed module, a lost
# decorator) must fail here instead of silently dropping out of every parametrized test below.
EXPECTED_PER_LAB = {"01_tensors": ["1.1", "1.2", "1.3"], "02_autodiff": ["2.1", "2.2", "2.3"],
                    "06_kernels": ["6.1", "6.2", "6.3"],
                    "07_loops": ["7.1", "7.2", "7.3"],
                    "03_graph_capture": ["3.1", "3.2", "3.3"], "04_graph_passes": ["4.1", "4.2", "4.3", "4.4"],
                    "05_memory": ["5.1", "5.2", "5.3"], "08_chips": ["8.1", "8.2", "8.3"],
                    "09_compression": ["9.1", "9.2", "9.3"], "13_cluster": ["13.1", "13.2", "13.3"],
                    "10_collectives": ["10.1", "10.2", "10.3"], "11_parallel_training": ["11.1", "11.2", "11.3"],
                    "12_capstone": ["12.1", "12.2", "12.3"]}


def test_every_lab_registers_its_exercises():
    got: dict = {}
    for ex in EXERCISES:
        got.setdefault(ex.lab, []).append(ex.id)
    assert {lab: sorted(ids) for lab, ids in got.items()} == EXPECTED_PER_LAB


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
