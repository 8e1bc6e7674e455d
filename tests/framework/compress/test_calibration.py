"""Calibrators: min-max and moving averages by hand, percentile against numpy, MSE against brute force, and
TensorRT's KL entropy calibration against a plain-Python transcription of its pseudocode (Migacz, "8-bit
Inference with TensorRT", GTC 2017) and a seeded heavy-tailed golden threshold."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aisys.framework import compress as C
from aisys.framework.compress.calibration import clip_error, kl_divergences, mse_threshold


def kl_threshold_oracle(x, bins, levels):
    """The GTC 2017 slide, line by line, in plain Python: histogram |x|; for i in levels..bins−1: P = bins[:i]
    with the outliers added to its last bin; Q = bins[:i] merged into `levels` groups (bin j in group
    ⌊j·levels/i⌋) and expanded back evenly over each group's non-empty bins; KL(P‖Q) over the non-empty P."""
    a = np.abs(np.asarray(x, np.float64)).ravel()
    hist = np.histogram(a, bins=bins, range=(0.0, a.max()))[0].tolist()
    width = a.max() / bins
    best, best_i = math.inf, None
    for i in range(levels, bins):
        p = hist[:i]
        p[i - 1] += sum(hist[i:])
        groups = [[] for _ in range(levels)]
        for j in range(i):
            groups[j * levels // i].append(j)
        q = [0.0] * i
        for g in groups:
            total = sum(hist[j] for j in g)
            nonzero = [j for j in g if hist[j] > 0]
            for j in nonzero:
                q[j] = total / len(nonzero)
        sp, sq = sum(p), sum(q)
        kl = 0.0
        for pj, qj in zip(p, q):
            if pj > 0:
                if qj == 0:
                    kl = math.inf
                    break
                kl += pj / sp * math.log((pj / sp) / (qj / sq))
        if kl < best:
            best, best_i = kl, i
    return (best_i + 0.5) * width


def heavy_tailed(n=50_000, seed=0):
    """The lab's seeded heavy-tailed sample: Student's t with 1.5 degrees of freedom."""
    return np.random.default_rng(seed).standard_t(1.5, size=n)


def test_kl_threshold_equals_the_pseudocode():
    for seed, gen in [(0, lambda r: r.standard_t(2, 20_000)), (1, lambda r: r.laplace(size=20_000) ** 3),
                      (2, lambda r: r.lognormal(0, 1, 20_000))]:
        x = gen(np.random.default_rng(seed))
        assert C.kl_threshold(x, bins=256, levels=32) == pytest.approx(kl_threshold_oracle(x, 256, 32), rel=1e-12)


def test_kl_threshold_within_two_bins_of_the_golden_value():
    """Golden: 131.5 bins = 0.0642·max|x| for t(1.5), 50 000 samples, seed 0 — the ≈0.065·absmax of the
    curriculum — from kl_threshold_oracle at 2048 bins / 128 levels (recomputed here: a few seconds of
    Python were too slow for every run, so the figure is pinned and the oracle checks the 256-bin case)."""
    x = heavy_tailed()
    width = np.abs(x).max() / 2048
    got = C.kl_threshold(x, bins=2048, levels=128)
    assert abs(got / width - 131.5) <= 2, f"threshold at bin {got / width:.1f}, golden 131.5"
    assert got / np.abs(x).max() == pytest.approx(0.0642, abs=0.002)
    # far from the first candidate (128 bins) on a longer-tailed sample
    y = np.random.default_rng(0).lognormal(0, 1, 100_000)
    assert abs(C.kl_threshold(y) / (y.max() / 2048) - 383.5) <= 2


def test_kl_divergence_candidates():
    hist = np.zeros(300)
    hist[:40] = 100
    hist[299] = 1                                       # one outlier in the last bin
    div = kl_divergences(hist, levels=32)
    assert np.all(np.isinf(div[:32])), "candidates start at `levels` bins"
    assert np.isinf(div[200]), "P holds the outlier in a bin where Q is empty: infinite divergence"
    assert np.isfinite(div[40]) and np.argmin(div) <= 40
    assert C.kl_threshold(np.zeros(10)) == 0.0


def test_minmax_and_moving_average_by_hand():
    ob = C.MinMaxObserver("int8")
    ob.observe(np.array([-1.0, 2.0])).observe(np.array([0.5, 3.0]))
    assert ob.range() == (-1.0, 3.0)
    assert ob.qparams().scale == pytest.approx(4 / 255) and ob.qparams().zero_point == -64
    ma = C.MovingAverageMinMaxObserver("int8", averaging_constant=0.5)
    ma.observe(np.array([-1.0, 2.0])).observe(np.array([-3.0, 4.0]))
    assert ma.range() == (-2.0, 3.0)                    # -1 + 0.5·(-3 − -1), 2 + 0.5·(4 − 2)
    pc = C.MinMaxObserver("int8", symmetric=True, axis=0).observe(np.array([[1.0, -2.0], [0.5, 0.25]]))
    assert np.allclose(pc.qparams().scale, [2 / 127, 0.5 / 127])


def test_percentile_and_two_sided_ranges():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-1, 0, 1000), rng.uniform(0, 4, 1000)])
    ob = C.PercentileObserver("int8", percentile=99.0).observe(x)
    lo, hi = ob.range()
    assert lo == pytest.approx(-np.percentile(np.abs(x[x < 0]), 99.0))
    assert hi == pytest.approx(np.percentile(x[x > 0], 99.0))
    relu = C.PercentileObserver("int8").observe(np.abs(x))
    assert relu.range()[0] == 0.0 and relu.qparams().zero_point == -128, "never negative: all codes on [0, T]"


def test_mse_threshold_is_the_brute_force_minimum():
    x = np.random.default_rng(2).standard_t(3, 20_000)
    t = mse_threshold(x, candidates=64)
    amax = np.abs(x).max()
    grid = amax * np.arange(1, 65) / 64
    errs = [clip_error(x, g) for g in grid]
    assert clip_error(x, t) <= min(errs) * 1.02
    y = np.random.default_rng(2).laplace(size=200_000)
    assert mse_threshold(y) < np.abs(y).max() * 0.9, "the rare extremes of a Laplace sample are clipped"


@pytest.mark.parametrize("method", ["minmax", "moving_average", "percentile", "mse", "kl"])
def test_calibrate_every_method(method):
    x = np.random.default_rng(4).standard_normal(5000)
    s, z = C.calibrate(x, method=method, dtype="int8", symmetric=True)
    assert z == 0 and 0 < s <= np.abs(x).max() / 127 * (1 + 1e-9)
    q = C.quantize_tensor(x, s, z)
    assert q.dtype == np.int8


def test_calibration_errors():
    with pytest.raises(ValueError, match="unknown calibration method 'entropy'"):
        C.calibrate(np.ones(3), method="entropy")
    with pytest.raises(ValueError, match="empty"):
        C.calibrate(np.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        C.calibrate(np.array([1.0, np.nan]), method="kl")
    with pytest.raises(ValueError, match="no data observed"):
        C.KLObserver().qparams()
    with pytest.raises(ValueError, match="per-tensor"):
        C.KLObserver(axis=0)
