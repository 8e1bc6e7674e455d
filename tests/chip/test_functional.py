"""The cycle-level systolic array (aisys.chip.functional) against numpy and the closed forms."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aisys.chip import MODES, run_systolic, systolic_gemm
from aisys.chip.functional import LOAD, MAC, PASS

small = st.integers(1, 12)
arr = st.integers(1, 6)


@settings(max_examples=50, deadline=None)
@given(M=small, N=small, K=small, R=arr, C=arr, df=st.sampled_from(["os", "ws", "is"]),
       mode=st.sampled_from(list(MODES)), seed=st.integers(0, 2**31 - 1))
def test_integer_product_and_cycles_match_numpy_and_the_closed_form(M, N, K, R, C, df, mode, seed):
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, (M, K), dtype=np.int64)
    B = rng.integers(-128, 128, (K, N), dtype=np.int64)
    run = run_systolic(A, B, rows=R, cols=C, dataflow=df, mode=mode)
    assert np.array_equal(run.result, A @ B)                       # exact for integers
    rep = systolic_gemm(M, N, K, rows=R, cols=C, dataflow=df, mode=mode)
    assert run.compute_cycles == rep.compute_cycles                 # same convention as the mode reports
    assert run.elapsed_cycles == rep.elapsed_cycles
    assert run.folds == rep.folds
    assert run.macs == M * N * K
    assert run.sram_reads["ifmap"] == rep.sram_reads["ifmap"]
    assert run.sram_reads["filter"] == rep.sram_reads["filter"]
    extra = rep.folds * (R + C) if (df == "os" and mode == "scalesim") else 0   # SCALE-Sim's spurious term
    assert run.sram_writes["ofmap"] + extra == rep.sram_writes["ofmap"]
    assert (run.activity == MAC).sum() == M * N * K                # the recorded activity accounts for every MAC


@settings(max_examples=25, deadline=None)
@given(M=small, N=small, K=small, R=arr, C=arr, df=st.sampled_from(["os", "ws", "is"]), seed=st.integers(0, 99))
def test_float_product_matches_to_rounding(M, N, K, R, C, df, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    run = run_systolic(A, B, rows=R, cols=C, dataflow=df, mode="tpu")
    np.testing.assert_allclose(run.result, A @ B, rtol=1e-12, atol=1e-12)
    assert run.matches_numpy


def test_the_lectures_3x3_wavefront_takes_seven_steps():
    # ZOMI 05TPU1: a 3x3 array multiplies 3x3 matrices in T = 1..7; PE(i, j) works on step k at cycle k+i+j
    A = np.arange(9).reshape(3, 3)
    B = np.arange(9).reshape(3, 3) + 1
    run = run_systolic(A, B, 3, 3, "os")
    assert run.elapsed_cycles == 7 and run.compute_cycles == 6          # SCALE-Sim reports the last index
    busy = [(run.activity[t] == MAC).sum() for t in range(7)]
    assert busy == [1, 3, 6, 7, 6, 3, 1]
    for t in range(7):
        for i in range(3):
            for j in range(3):
                k = t - i - j
                assert run.tag[t, i, j] == (k if 0 <= k < 3 else -1)
    assert run.phases() == ["fill", "fill", "fill", "steady", "drain", "drain", "drain"]
    assert np.array_equal(run.result, A @ B)


def test_weight_stationary_shows_loading_then_overlap():
    A, B = np.ones((6, 5), dtype=int), np.ones((5, 5), dtype=int)
    ser = run_systolic(A, B, 3, 3, "ws", "scalesim")
    ov = run_systolic(A, B, 3, 3, "ws", "overlapped")
    assert ser.phases()[:3] == ["loading weights"] * 3                  # R cycles to shift the weights in
    assert (ser.activity[:3] == LOAD).any() and not (ser.activity[:3] == MAC).any()
    assert list(ser.fold_starts) == [3, 16, 29, 42]                      # one fold every 2R+C+T−2 = 13 cycles
    assert list(ov.fold_starts) == [3, 9, 15, 21]                        # one fold every max(T, R) = 6 cycles
    assert "fold boundary" in ov.phases() and "fold boundary" not in ser.phases()
    assert ov.elapsed_cycles < ser.elapsed_cycles


def test_edge_folds_leave_padding_pes_idle():
    run = run_systolic(np.ones((5, 4), dtype=int), np.ones((4, 3), dtype=int), 4, 4, "os")
    # rows 5..7 of the second fold and column 3 never hold real data: they only pass padding
    assert (run.pe_busy()[:, 3] == 0).all()
    assert (run.activity == PASS).any()
    assert run.pe_busy().sum() == 5 * 4 * 3


def test_python_engine_runs_the_same_kernel():
    rng = np.random.default_rng(1)
    A, B = rng.integers(-9, 9, (5, 6)), rng.integers(-9, 9, (6, 4))
    for df in ("os", "ws", "is"):
        fast = run_systolic(A, B, 3, 2, df, "overlapped")
        slow = run_systolic(A, B, 3, 2, df, "overlapped", engine="python")
        assert np.array_equal(fast.result, slow.result)
        assert fast.elapsed_cycles == slow.elapsed_cycles
        assert np.array_equal(fast.activity, slow.activity)


def test_larger_runs_without_recording_report_throughput():
    rng = np.random.default_rng(2)
    A, B = rng.integers(-3, 3, (64, 48)), rng.integers(-3, 3, (48, 40))
    run = run_systolic(A, B, 16, 16, "ws", "tpu", record=False)
    assert run.activity is None and np.array_equal(run.result, A @ B)
    assert run.pe_cycles == run.elapsed_cycles * 256 and run.pe_cycles_per_second > 0
    with pytest.raises(ValueError, match="record=True"):
        run.phases()
    assert "analytic model" in run.summary() and "match" in run.summary()


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((np.ones((2, 3)), np.ones((2, 3))), {}, ValueError, "inner dimensions differ"),
    ((np.ones(3), np.ones((3, 2))), {}, ValueError, "2-D"),
    ((np.ones((2, 2)), np.ones((2, 2))), {"rows": 0}, ValueError, "rows must be a positive integer"),
    ((np.ones((2, 2)), np.ones((2, 2))), {"dataflow": "xx"}, ValueError, "dataflow must be"),
    ((np.ones((2, 2)), np.ones((2, 2))), {"mode": "xx"}, ValueError, "mode must be"),
    ((np.ones((2, 2)), np.ones((2, 2))), {"engine": "gpu"}, ValueError, "engine must be"),
    ((np.array([["a"]]), np.ones((1, 1))), {}, TypeError, "integers or floats"),
    ((np.ones((0, 2)), np.ones((2, 2))), {}, ValueError, "empty"),
    ((np.ones((3000, 40)), np.ones((40, 3000))), {"rows": 16, "cols": 16, "record": True}, ValueError,
     "pass record=False"),
])
def test_bad_inputs_raise_clear_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        run_systolic(*args, **kwargs)


def test_a_huge_cycle_level_run_is_refused_with_the_closed_form():
    import time
    A = np.ones((20000, 500), np.int64)
    B = np.ones((500, 300), np.int64)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"PE-cycles to simulate, over the limit.*systolic_gemm\(20000, 300, 500"):
        run_systolic(A, B, rows=8, cols=8)
    assert time.perf_counter() - t0 < 1.0
    small = run_systolic(np.ones((3, 4), np.int64), np.ones((4, 2), np.int64), rows=2, cols=2, max_pe_cycles=10**6)
    assert (small.result == 4).all()
