"""tools/run_labs.py: lab name resolution and the kernel environment it runs labs in."""
from __future__ import annotations

import importlib.util

import pytest

from tests.labs.notebooks import LABS_DIR, RUN_LABS


@pytest.fixture(scope="module")
def run_labs():
    spec = importlib.util.spec_from_file_location("run_labs", RUN_LABS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lab_names_resolve_by_number_stem_or_path(run_labs, tmp_path):
    labs = sorted(LABS_DIR.glob("*.ipynb"))
    assert run_labs.lab_paths([]) == labs
    if labs:
        first = labs[0]
        number = first.stem.split("_")[0]
        assert run_labs.lab_paths([number]) == [first]
        assert run_labs.lab_paths([str(int(number))]) == [first]
        assert run_labs.lab_paths([first.stem]) == [first]
    other = tmp_path / "x.ipynb"
    other.write_text("{}")
    assert run_labs.lab_paths([str(other)]) == [other.resolve()]
    with pytest.raises(SystemExit, match="no lab matches 'no_such_lab'"):
        run_labs.lab_paths(["no_such_lab"])


def test_kernel_env_pins_threads_and_switches_solutions(run_labs, monkeypatch):
    monkeypatch.setenv("AISYS_LAB_SOLUTIONS", "1")
    stubs = run_labs.kernel_env(solutions=False)
    assert "AISYS_LAB_SOLUTIONS" not in stubs
    solved = run_labs.kernel_env(solutions=True, numba_cache_dir="/tmp/cold")
    assert solved["AISYS_LAB_SOLUTIONS"] == "1"
    assert solved["OMP_NUM_THREADS"] == solved["NUMBA_NUM_THREADS"] == "1"
    assert solved["PYTHONHASHSEED"] == "0" and solved["NUMBA_CACHE_DIR"] == "/tmp/cold"


def test_stubs_mode_refuses_to_overwrite_the_committed_labs(run_labs):
    with pytest.raises(SystemExit):
        run_labs.main(["--stubs"])
