"""aisys.labkit on throwaway exercises registered here: reports, errors, the solutions switch, the CLI."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from aisys import labkit
from aisys.labkit import Checker, ExerciseFailed, Mistake, UnknownExerciseError, check, exercise, register, run_check
from aisys.labkit.registry import resolve, unregister


def reference_square(x):
    """The 'library' solution of throwaway exercise 99.1."""
    return x * x


def bad_square_plus_one(x):
    return x * x + 1


def reference_scale(v, k):
    return np.asarray(v, dtype=np.float64) * k


@pytest.fixture
def square_exercise():
    @register("99.1", title="Square a number", lab="99_selftest", reference=reference_square,
              bad=[Mistake(bad_square_plus_one, says="multiply x by itself")])
    def _check(fn, c: Checker):
        c.equal(fn(3), 9, what="square of 3", hint="multiply x by itself")
        c.equal(fn(-2), 4, what="square of -2")

    yield "99.1"
    unregister("99.1")


@pytest.fixture
def scale_exercise():
    @register("99.2", title="Scale a vector", lab="99_selftest", reference=reference_scale,
              bad=[(lambda v, k: np.asarray(v) * (k + 1e-3), "elementwise")])
    def _check(fn, c: Checker):
        c.close(fn([1.0, 2.0], 0.5), np.array([0.5, 1.0]), what="[1, 2] × 0.5", rtol=1e-9, hint="elementwise")
        c.true(fn([1.0], 2.0).shape == (1,), what="keeps the shape", expected="(1,)", got="another shape")

    yield "99.2"
    unregister("99.2")


def test_pass_prints_every_checked_item(square_exercise, capsys):
    check("99.1", reference_square)
    out = capsys.readouterr().out
    assert out == "PASS exercise 99.1 — Square a number\n  ✓ square of 3\n  ✓ square of -2\n"


def test_wrong_answer_reports_what_expected_got_hint_and_raises(square_exercise, capsys):
    with pytest.raises(ExerciseFailed, match=r"exercise 99\.1") as info:
        check("99.1", bad_square_plus_one)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "FAIL exercise 99.1 — Square a number",
        "  ✗ square of 3",
        "    expected: 9",
        "    got:      10",
        "    hint:     multiply x by itself",
    ]
    assert isinstance(info.value, AssertionError)
    assert info.value.exercise_id == "99.1"
    assert "expected 9, got 10" in str(info.value)


def test_stub_raising_not_implemented_fails_as_not_implemented(square_exercise, capsys):
    @exercise("99.1")
    def square(x):
        raise NotImplementedError("exercise 99.1: square x")

    with pytest.raises(ExerciseFailed, match=r"exercise 99\.1.*not implemented yet"):
        check("99.1", square)
    out = capsys.readouterr().out
    assert out.startswith("FAIL exercise 99.1 — Square a number\n  ✗ not implemented yet: exercise 99.1: square x")


def test_learner_exception_is_reported_and_chained(square_exercise, capsys):
    def broken(x):
        return x.upper()

    with pytest.raises(ExerciseFailed, match="raised AttributeError") as info:
        check("99.1", broken)
    assert isinstance(info.value.__cause__, AttributeError)
    assert "✗ your function raised AttributeError" in capsys.readouterr().out


def test_items_passed_before_the_failure_are_listed(square_exercise):
    report = run_check("99.1", lambda x: 9 if x == 3 else 0)
    assert not report.ok
    assert report.passed == ["square of 3"]
    assert report.mismatch.what == "square of -2"
    assert report.render().splitlines()[1] == "  ✓ square of 3"


def test_close_reports_largest_error_and_shape(scale_exercise):
    report = run_check("99.2", lambda v, k: np.asarray(v) * k + np.array([0.0, 0.25]))
    assert "largest error 0.25 at index (1,)" in report.mismatch.got
    report = run_check("99.2", lambda v, k: np.asarray([0.5, 1.0, 0.0]))
    assert "shape (3,)" in report.mismatch.got and "shape (2,)" in report.mismatch.expected
    report = run_check("99.2", lambda v, k: None)
    assert "NoneType" in report.mismatch.got
    assert run_check("99.2", reference_scale).ok


def test_unknown_id_lists_known_ids(square_exercise):
    with pytest.raises(UnknownExerciseError, match=r"unknown exercise '99\.9'.*known exercises: .*99\.1"):
        check("99.9", reference_square)
    with pytest.raises(UnknownExerciseError, match=r"99\.1"):
        exercise("99.9")
    with pytest.raises(TypeError, match="ids are strings"):
        check(99.1, reference_square)


def test_exercise_returns_stub_or_reference_by_environment(square_exercise, monkeypatch):
    def stub(x):
        raise NotImplementedError

    monkeypatch.delenv("AISYS_LAB_SOLUTIONS", raising=False)
    assert not labkit.solutions_enabled()
    assert exercise("99.1")(stub) is stub
    assert stub.__aisys_exercise__ == "99.1"
    monkeypatch.setenv("AISYS_LAB_SOLUTIONS", "1")
    assert labkit.solutions_enabled()
    solved = exercise("99.1")(stub)
    assert solved is not stub and solved(4) == 16
    monkeypatch.setenv("AISYS_LAB_SOLUTIONS", "0")
    assert not labkit.solutions_enabled()


def test_check_refuses_the_function_of_another_exercise(square_exercise, scale_exercise, monkeypatch):
    monkeypatch.delenv("AISYS_LAB_SOLUTIONS", raising=False)

    @exercise("99.2")
    def scale(v, k):
        raise NotImplementedError

    with pytest.raises(ValueError, match="written for exercise 99.2"):
        check("99.1", scale)


def test_output_is_deterministic(square_exercise, capsys):
    outs = []
    for _ in range(2):
        with pytest.raises(ExerciseFailed):
            check("99.1", bad_square_plus_one)
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_checker_helpers():
    c = Checker("99.7")
    c.equal((1, 2), [1, 2], what="tuple equals list")
    c.equal(np.array([1.0, np.nan]), np.array([1.0, np.nan]), what="nan equals nan")
    c.equal(np.uint32(7), 7, what="numpy scalar")
    c.raises(ValueError, int, "x", what="int('x') refuses")
    assert c.passed == ["tuple equals list", "nan equals nan", "numpy scalar", "int('x') refuses"]
    with pytest.raises(labkit.checker.CheckMismatch, match="first difference at index \\(1, 0\\)"):
        c.equal(np.array([[1, 2], [3, 4]]), np.array([[1, 2], [0, 4]]), what="arrays")
    with pytest.raises(labkit.checker.CheckMismatch, match="returned 1"):
        c.raises(ValueError, int, "1", what="int('1') refuses")
    with pytest.raises(labkit.checker.CheckMismatch, match="raised TypeError"):
        c.raises(ValueError, int, None, what="int(None) refuses")
    # same id, same random data: reports built from c.rng are reproducible
    assert np.array_equal(Checker("1.1").rng.integers(0, 100, 5), Checker("1.1").rng.integers(0, 100, 5))


def test_register_validates_its_arguments():
    with pytest.raises(ValueError, match="'N.k'"):
        register("8", title="t", lab="08_chips", reference="m:f")
    with pytest.raises(ValueError, match="title"):
        register("99.3", title=" ", lab="08_chips", reference="m:f")
    with pytest.raises(ValueError, match="module:attr"):
        register("99.3", title="t", lab="08_chips", reference="no_colon")
    with pytest.raises(TypeError, match="list"):
        register("99.3", title="t", lab="08_chips", reference="m:f", bad="m:g")
    with pytest.raises(ValueError, match="module:attr"):
        register("99.3", title="t", lab="08_chips", reference="m:f", bad=[("no_colon", "words")])
    with pytest.raises(TypeError, match="says="):
        Mistake("m:g", says=None)


def test_duplicate_id_from_another_check_is_refused(square_exercise):
    with pytest.raises(ValueError, match="registered twice"):
        @register("99.1", title="again", lab="99_selftest", reference=reference_square)
        def _other_check(fn, c):
            c.true(True)


def test_check_that_compares_nothing_is_a_bug():
    @register("99.4", title="Empty", lab="99_selftest", reference=reference_square)
    def _check(fn, c):
        fn(1)

    try:
        with pytest.raises(RuntimeError, match="compared nothing"):
            run_check("99.4", reference_square)
    finally:
        unregister("99.4")


def test_resolve_names_what_is_missing():
    assert resolve("aisys.labkit:check") is check
    with pytest.raises(ImportError, match="no_such_module"):
        resolve("no_such_module:f", for_what="exercise 99.5 reference")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        resolve("aisys.labkit:nope")


def test_list_exercises_is_sorted_numerically(square_exercise):
    @register("99.10", title="Ten", lab="99_selftest", reference=reference_square)
    def _check(fn, c):
        c.equal(fn(1), 1)

    try:
        ids = [ex.id for ex in labkit.list_exercises("99_selftest")]
        assert ids == ["99.1", "99.10"]
        all_ids = [tuple(map(int, ex.id.split("."))) for ex in labkit.list_exercises()]
        assert all_ids == sorted(all_ids)
    finally:
        unregister("99.10")


def test_cli_list_and_check():
    out = subprocess.run([sys.executable, "-m", "aisys.labkit", "list"], capture_output=True, text=True,
                         check=True).stdout
    header = out.splitlines()[0]
    assert re.match(r"id\s+title\s+lab\s+reference", header)
    for ex in labkit.list_exercises():
        assert re.search(rf"^{re.escape(ex.id)}\s", out, re.M), out
    res = subprocess.run([sys.executable, "-m", "aisys.labkit", "check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith("0 problems")


def test_audit_names_what_a_battery_lacks(square_exercise):
    from aisys.labkit import get_exercise
    from aisys.labkit.audit import argument_problems, mistake_problems

    ex = get_exercise("99.1")
    problems = mistake_problems(ex)
    assert len(problems) == 1 and "needs at least 5" in problems[0]        # one mistake registered, not five

    def lenient(x):                                # right for every real x: a "mistake" the check cannot catch
        return abs(x) * abs(x)

    @register("99.6", title="Square, strictly", lab="99_selftest", reference=reference_square,
              bad=[Mistake(bad_square_plus_one, says="the words the hint does not say"),
                   Mistake(lenient, says="anything"), ("tests.labs.test_labkit:bad_square_plus_one", "")])
    def _check(fn, c):
        c.equal(fn(3), 9, what="square of 3", hint="multiply x by itself")

    try:
        problems = "\n".join(mistake_problems(get_exercise("99.6")))
        assert "does not say 'the words the hint does not say'" in problems
        assert "lenient PASSES the check" in problems
        assert "declares no says=" in problems
    finally:
        unregister("99.6")


def reference_power(x, n=2):
    return x ** n


def test_audit_wants_every_optional_argument_tried():
    from aisys.labkit import get_exercise
    from aisys.labkit.audit import argument_problems

    @register("99.8", title="Power", lab="99_selftest", reference=reference_power)
    def _check(fn, c):
        c.equal(fn(3), 9, what="3 squared")

    try:
        (problem,) = argument_problems(get_exercise("99.8"))
        assert "never calls the function with n= other than its default 2" in problem
    finally:
        unregister("99.8")


def test_telltale_names_the_mistake_whose_value_the_answer_equals():
    from aisys.labkit.checker import telltale
    known = [(lambda n: n / 2, "keys only"), (lambda n: n * 8, "bits"), (lambda n: 1 / 0, "crashes: never named"),
             (np.zeros(2), "wrong shape: never matched against a scalar")]
    assert telltale(50.0, known, "the rule", args=(100,)) == "keys only"
    assert telltale(800, known, "the rule", args=(100,)) == "bits"
    assert telltale(0.0, known, "the rule", args=(100,)) == "the rule"         # shapes differ: no match
    assert telltale(99.0, known, "the rule", args=(100,)) == "the rule"
    both = telltale(50.0, known + [(50.0, "one layer")], "the rule", args=(100,))
    assert "keys only" in both and "one layer" in both
    assert telltale(float("nan"), [(float("nan"), "overflow")], "the rule") == "overflow"
