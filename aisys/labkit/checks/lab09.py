"""Checks for lab 09 — compression: quantization, calibration, pruning.

9.1 ``quantize_tensor(x, scale, zero_point=0, dtype="int8", axis=None)``: the one stated convention
    q = clamp(round(x/s) + z, qmin, qmax). Checked: |x − x̂| ≤ s/2 inside the range and clamping outside,
    the code range of int8, uint8 and int4, per-channel scales along an axis — and the course's other sign
    (04PTQ's −z) and the wrong scale direction are caught by name.
9.2 ``kl_threshold(x, bins=2048, levels=128)``: TensorRT's entropy calibration from the 04PTQ pseudocode.
    Checked: within ±2 bins of the library's threshold on a seeded heavy-tailed sample (≈0.065·max|x|), on a
    long-tailed one, and with other bins/levels.
9.3 ``magnitude_mask(weight, sparsity, dim=None)``: the weights to keep for an exact target sparsity, by |w|
    or (dim=0) by whole channels' L1 norms. Checked: the exact count, the smallest go first, ties by
    position; then on the dense systolic preset, removing the channels your mask drops lowers the cycles and
    zeroing single weights does not.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject.
"""
from __future__ import annotations

import copy

import numpy as np

from aisys.framework.compress import calibration as _cal
from aisys.framework.compress import pruning as _pruning
from aisys.framework.compress import quant as _quant
from aisys.labkit import Checker, register
from aisys.labkit.checker import telltale
from aisys.labkit.learner import call as _call_raw


def _call(fn, *args, **kwargs):
    value, problem = _call_raw(fn, *args, **kwargs)
    return (None, problem) if problem else (np.asarray(value), None)


# ---------------------------------------------------------------------------------------------
# 9.1 quantize_tensor
# ---------------------------------------------------------------------------------------------

_QHINT = ("q = clamp(round(x / s) + z, qmin, qmax): divide by the scale (s is the real value of one step), "
          "round to nearest, add the zero point (+z, as 02Quant writes it), then clamp to the type's codes")


@register("9.1", title="Affine quantization with one stated convention", lab="09_compression",
          reference="aisys.framework.compress.quant:quantize_tensor",
          bad=[("aisys.labkit.checks.lab09:_quantize_minus_zero_point", 'subtracted the zero point'),
               ("aisys.labkit.checks.lab09:_quantize_times_scale", 'multiplied by the scale instead of dividing'),
               ("aisys.labkit.checks.lab09:_quantize_floor", 's·(q − z)'),
               ("aisys.labkit.checks.lab09:_quantize_no_clamp", 'clamp after adding z'),
               ("aisys.labkit.checks.lab09:_quantize_clamp_before_zero_point", 'aisys adds it'),
               ("aisys.labkit.checks.lab09:_quantize_int8_range_always", 'its own code range'),
               ("aisys.labkit.checks.lab09:_quantize_ignores_axis", 'with axis set')])
def _check_9_1(fn, c: Checker):
    rng = c.rng
    x = rng.uniform(-1.0, 3.0, 200)
    s, z = _quant.qparams_from_range(-1.0, 3.0, "int8")                   # s = 4/255, z = -64
    got, error = _call(fn, x, s, z)
    what = f"int8 codes of 200 values in [-1, 3] with s = 4/255, z = {z}"
    if error:
        c.fail(what, expected="an array of int8 codes", got=error, hint=_QHINT)
    c.equal(tuple(got.shape), x.shape, what=f"{what}: shape")
    c.true(np.issubdtype(got.dtype, np.integer), what=f"{what}: integer codes", expected="an integer array",
           got=str(got.dtype), hint="cast the clamped codes with .astype(np.int8)")
    c.true(got.min() >= -128 and got.max() <= 127, what=f"{what}: int8 bounds", expected="codes in [-128, 127]",
           got=f"[{got.min()}, {got.max()}]", hint=_QHINT)
    x_hat = s * (got.astype(np.float64) - z)
    err = float(np.abs(x - x_hat).max())
    c.true(err <= s / 2 * (1 + 1e-9), what=f"{what}: |x − s·(q − z)| ≤ s/2 inside the range",
           expected=f"at most s/2 = {s / 2:.6f}", got=f"{err:.6f}",
           hint="if the error is about 2·|z|·s you subtracted the zero point (04PTQ's −z); aisys adds it, "
                "and dequantizes with s·(q − z). If it is huge, you multiplied by the scale instead of dividing")
    c.equal(got.tolist(), _quant.quantize_tensor(x, s, z).tolist(), what=f"{what}: the codes",
            hint="round to nearest before adding the zero point (not floor, not truncation)")
    beyond = np.array([-5.0, 3.2, 40.0, -1.2])
    got, error = _call(fn, beyond, s, z)
    c.equal(None if error else got.tolist(), [-128, 127, 127, -128], what="values beyond [-1, 3] clamp",
            hint="clamp after adding z, to [qmin, qmax] = [-128, 127]: out-of-range values saturate")
    for dtype, lo, hi in (("uint8", 0.0, 6.0), ("int4", -2.0, 1.5)):
        qmin, qmax = _quant.qrange(dtype)
        s2, z2 = _quant.qparams_from_range(lo, hi, dtype)
        xs = np.concatenate([rng.uniform(lo, hi, 50), [lo - 3, hi + 3]])
        got, error = _call(fn, xs, s2, z2, dtype)
        what = f"dtype={dtype!r}: codes in [{qmin}, {qmax}] (s={s2:.4g}, z={z2})"
        c.equal(None if error else got.tolist(), _quant.quantize_tensor(xs, s2, z2, dtype).tolist(), what=what,
                hint=f"each type has its own code range: {dtype} is [{qmin}, {qmax}] (compress.qrange(dtype))")
    w = rng.standard_normal((4, 6)) * np.array([0.1, 1.0, 5.0, 0.5])[:, None]
    amax = np.abs(w).max(axis=1)
    sc, zc = _quant.qparams_from_range(-amax, amax, "int8", symmetric=True)
    got, error = _call(fn, w, sc, zc, "int8", 0)
    c.equal(None if error else got.tolist(), _quant.quantize_tensor(w, sc, zc, "int8", 0).tolist(),
            what="per-channel: one scale per row of a 4×6 weight (axis=0)",
            hint="with axis set, scale[c] and zero_point[c] apply to the slice c along that axis: reshape them "
                 "to broadcast (e.g. scale.reshape(-1, 1) for axis=0)")


def _codes(x, s, z, dtype, axis):
    x = np.asarray(x, np.float64)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        s, z = np.asarray(s).reshape(shape), np.asarray(z).reshape(shape)
    return x, s, z, _quant.qrange(dtype)


def _quantize_minus_zero_point(x, scale, zero_point=0, dtype="int8", axis=None):
    x, s, z, (qmin, qmax) = _codes(x, scale, zero_point, dtype, axis)
    return np.clip(np.round(x / s) - z, qmin, qmax).astype(np.int64)           # 04PTQ's sign


def _quantize_times_scale(x, scale, zero_point=0, dtype="int8", axis=None):
    x, s, z, (qmin, qmax) = _codes(x, scale, zero_point, dtype, axis)
    return np.clip(np.round(x * s) + z, qmin, qmax).astype(np.int64)           # the scale's direction (#306)


def _quantize_floor(x, scale, zero_point=0, dtype="int8", axis=None):
    x, s, z, (qmin, qmax) = _codes(x, scale, zero_point, dtype, axis)
    return np.clip(np.floor(x / s) + z, qmin, qmax).astype(np.int64)


def _quantize_no_clamp(x, scale, zero_point=0, dtype="int8", axis=None):
    x, s, z, _ = _codes(x, scale, zero_point, dtype, axis)
    return (np.round(x / s) + z).astype(np.int64)


def _quantize_clamp_before_zero_point(x, scale, zero_point=0, dtype="int8", axis=None):
    x, s, z, (qmin, qmax) = _codes(x, scale, zero_point, dtype, axis)
    return (np.clip(np.round(x / s), qmin, qmax) + z).astype(np.int64)


def _quantize_int8_range_always(x, scale, zero_point=0, dtype="int8", axis=None):
    x, s, z, _ = _codes(x, scale, zero_point, dtype, axis)
    return np.clip(np.round(x / s) + z, -128, 127).astype(np.int64)


def _quantize_ignores_axis(x, scale, zero_point=0, dtype="int8", axis=None):
    x, s, z, (qmin, qmax) = _codes(x, np.asarray(scale).reshape(-1)[0], np.asarray(zero_point).reshape(-1)[0],
                                   dtype, None)
    return np.clip(np.round(x / s) + z, qmin, qmax).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# 9.2 kl_threshold
# ---------------------------------------------------------------------------------------------

_KHINT = ("histogram |x| into `bins` bins over [0, max|x|]; for i = levels … bins−1: P = the first i bins with "
          "every count beyond them added to bin i−1; Q = the same i bins (without the outliers) merged into "
          "`levels` groups and spread back evenly over each group's non-empty bins; keep the i with the smallest "
          "KL(P‖Q) and return (i + 0.5)·bin width")


def _kl_case(c: Checker, fn, x, what: str, bins: int = 2048, levels: int = 128):
    width = np.abs(x).max() / bins
    want = _cal.kl_threshold(x, bins, levels)
    args = (x,) if (bins, levels) == (2048, 128) else (x, bins, levels)
    got, error = _call(fn, *args)
    if error:
        c.fail(what, expected=f"{want:.6g} (bin {want / width:.1f})", got=error, hint=_KHINT)
    got = float(got)
    ok = abs(got - want) <= 2 * width
    c.true(ok, what=f"{what}: within ±2 bins of the library's threshold",
           expected=f"{want:.6g} = bin {want / width:.1f} of {bins}", got=f"{got:.6g} = bin {got / width:.1f}",
           hint=_KHINT if ok else telltale(got, _KL_MISTAKES, _KHINT, args=(x, bins, levels), rtol=0, atol=width))


@register("9.2", title="KL (entropy) calibration from the 04PTQ pseudocode", lab="09_compression",
          reference="aisys.framework.compress.calibration:kl_threshold",
          bad=[("aisys.labkit.checks.lab09:_kl_drops_outliers", 'P lost its outliers'),
               ("aisys.labkit.checks.lab09:_kl_signed_histogram", 'histogram |x| over [0, max|x|]'),
               ("aisys.labkit.checks.lab09:_kl_picks_the_largest_divergence", 'the largest divergence is the worst candidate'),
               ("aisys.labkit.checks.lab09:_kl_returns_bins", 'not a threshold in x'),
               ("aisys.labkit.checks.lab09:_kl_reversed_divergence", 'KL(Q‖P) is a different'),
               ("aisys.labkit.checks.lab09:_kl_ignores_bins_and_levels", 'use the bins and levels you are given')])
def _check_9_2(fn, c: Checker):
    x = np.random.default_rng(0).standard_t(1.5, 50_000)
    _kl_case(c, fn, x, "Student t (1.5 degrees of freedom), 50 000 samples, seed 0: ≈0.065·max|x|")
    y = np.random.default_rng(1).lognormal(0.0, 1.0, 100_000)
    _kl_case(c, fn, y, "log-normal, 100 000 samples, seed 1 (a threshold far from the first candidate)")
    z = c.rng.laplace(size=30_000) ** 3
    _kl_case(c, fn, z, "cubed Laplace, bins=512, levels=64", bins=512, levels=64)


def _hist(x, bins):
    a = np.abs(np.asarray(x, np.float64)).ravel()
    return np.histogram(a, bins=bins, range=(0, a.max()))[0].astype(np.float64), a.max() / bins


def _kl_loop(hist, levels, with_outliers=True, reverse=False):
    n = hist.size
    div = np.full(n, np.inf)
    for i in range(levels, n):
        p = hist[:i].copy()
        if with_outliers:
            p[i - 1] += hist[i:].sum()
        group = (np.arange(i) * levels) // i
        nz = hist[:i] > 0
        sums = np.bincount(group, weights=hist[:i], minlength=levels)
        cnt = np.bincount(group, weights=nz, minlength=levels)
        q = np.where(nz, sums[group] / np.maximum(cnt[group], 1), 0.0)
        if p.sum() == 0 or q.sum() == 0:
            continue
        p, q = p / p.sum(), q / q.sum()
        a, b = (q, p) if reverse else (p, q)
        on = a > 0
        if np.any(b[on] == 0):
            continue
        div[i] = np.sum(a[on] * np.log(a[on] / b[on]))
    return div


def _kl_drops_outliers(x, bins=2048, levels=128):
    h, w = _hist(x, bins)
    return (np.argmin(_kl_loop(h, levels, with_outliers=False)) + 0.5) * w


def _kl_signed_histogram(x, bins=2048, levels=128):
    a = np.asarray(x, np.float64).ravel()
    h = np.histogram(a, bins=bins, range=(a.min(), a.max()))[0].astype(np.float64)
    return (np.argmin(_kl_loop(h, levels)) + 0.5) * (a.max() - a.min()) / bins


def _kl_picks_the_largest_divergence(x, bins=2048, levels=128):
    h, w = _hist(x, bins)
    d = _kl_loop(h, levels)
    d[~np.isfinite(d)] = -np.inf
    return (np.argmax(d) + 0.5) * w


def _kl_returns_bins(x, bins=2048, levels=128):
    h, _ = _hist(x, bins)
    return np.argmin(_kl_loop(h, levels)) + 0.5


def _kl_reversed_divergence(x, bins=2048, levels=128):
    h, w = _hist(x, bins)
    return (np.argmin(_kl_loop(h, levels, reverse=True)) + 0.5) * w


def _kl_ignores_bins_and_levels(x, bins=2048, levels=128):
    return _cal.kl_threshold(x)


_KL_MISTAKES = [
    (_kl_drops_outliers, "P lost its outliers: P is the first i bins WITH every count beyond them added to bin i−1 "
                         "(clipping maps them to the largest code), so cutting early costs divergence"),
    (_kl_signed_histogram, "histogram |x| over [0, max|x|]: a symmetric int8 range needs the magnitude, and a "
                           "signed histogram puts the threshold's bins in the wrong place"),
    (_kl_picks_the_largest_divergence, "the largest divergence is the worst candidate, not the best: keep the i "
                                       "with the smallest KL(P‖Q)"),
    (_kl_returns_bins, "that is a bin index, not a threshold in x's units: multiply (i + 0.5) by the bin width "
                       "max|x| / bins"),
    (_kl_reversed_divergence, "KL(P‖Q) sums P·log(P/Q), with P the clipped reference and Q its quantized version; "
                              "KL(Q‖P) is a different, asymmetric measure"),
    (_kl_ignores_bins_and_levels, "use the bins and levels you are given: histogram into `bins` bins and merge into "
                                  "`levels` groups (the defaults 2048 and 128 are only defaults)"),
]


# ---------------------------------------------------------------------------------------------
# 9.3 magnitude_mask
# ---------------------------------------------------------------------------------------------

_PHINT = ("keep = a boolean mask of weight's shape; prune exactly k = round(sparsity·n) entries, the smallest |w| "
          "first (ties: the earlier position first — np.argsort(..., kind='stable')); with dim=0 rank whole "
          "output channels by their L1 norm Σ|w| and prune round(sparsity·C) channels")


def _mask_case(c: Checker, fn, w, sparsity, dim, what):
    want = _pruning.magnitude_mask(w, sparsity, dim)
    got, error = _call(fn, w, sparsity) if dim is None else _call(fn, w, sparsity, dim)
    if error:
        c.fail(what, expected=f"a mask pruning {int((~want).sum())} entries", got=error, hint=_PHINT)
    c.equal(tuple(got.shape), w.shape, what=f"{what}: the mask has the weight's shape", hint=_PHINT)
    c.true(got.dtype == np.bool_, what=f"{what}: a boolean mask (True = keep)", expected="bool",
           got=str(got.dtype), hint="return a boolean array, True for the weights that stay")
    pruned, k = int((~got).sum()), int((~want).sum())
    args = (w, sparsity) if dim is None else (w, sparsity, dim)
    if dim is not None:
        count_hint = telltale(pruned, [(lambda *a, m=m: int((~np.asarray(m(*a))).sum()), words)
                                       for m, words in _MASK_MISTAKES], "dim=0 prunes round(sparsity·C) whole output "
                              "channels: every entry of each pruned channel", args=args)
    elif pruned < k:
        count_hint = "k = round(sparsity · number of entries), not int(...) (that rounds 0.7 down to 0)"
    else:
        count_hint = ("prune exactly k: weights tied with the k-th smallest |w| are not all pruned (a threshold test "
                      "|w| <= t takes every tie); break ties by position, np.argsort(..., kind='stable')")
    c.equal(pruned, k, what=f"{what}: exactly round(sparsity·n) pruned", hint=count_hint)
    if got.tolist() != want.tolist():
        c.equal(got.tolist(), want.tolist(), what=f"{what}: which ones",
                hint=telltale(got.astype(float), _MASK_MISTAKES, _PHINT, args=args))
    c.equal(got.tolist(), want.tolist(), what=f"{what}: which ones")


@register("9.3", title="Magnitude pruning to an exact sparsity, and what the chip makes of it", lab="09_compression",
          reference="aisys.framework.compress.pruning:magnitude_mask",
          bad=[("aisys.labkit.checks.lab09:_mask_prunes_the_largest", 'pruned the largest weights'),
               ("aisys.labkit.checks.lab09:_mask_signed_values", 'rank by |w|'),
               ("aisys.labkit.checks.lab09:_mask_threshold_ties", 'tied with the k-th smallest'),
               ("aisys.labkit.checks.lab09:_mask_floor_count", 'not int(...)'),
               ("aisys.labkit.checks.lab09:_mask_channels_by_max", 'not its largest weight'),
               ("aisys.labkit.checks.lab09:_mask_returns_pruned", 'the mask is inverted'),
               ("aisys.labkit.checks.lab09:_mask_channels_along_inputs", 'not the input channels')])
def _check_9_3(fn, c: Checker):
    rng = c.rng
    _mask_case(c, fn, np.array([[0.5, -3.0, 0.1], [2.0, -0.2, 1.0]]), 0.5, None, "a 2×3 weight, 50%")
    ties = np.array([1.0, -1.0, 1.0, 2.0, 0.5, -2.0, 3.0])
    _mask_case(c, fn, ties, 0.1, None, "7 weights at 10% (0.7 rounds to 1)")
    _mask_case(c, fn, ties, 0.3, None, "7 weights at 30%: three |w| = 1 tie for the second place")
    _mask_case(c, fn, rng.standard_normal((6, 4, 3, 3)), 0.9, None, "a 6×4×3×3 conv weight at 90%")
    conv = rng.standard_normal((8, 3, 3, 3)) * rng.uniform(0.1, 2.0, (8, 1, 1, 1))
    conv[2, 0, 0, 0] = 9.0                                  # a big single weight in a small-L1 channel
    _mask_case(c, fn, conv, 0.5, 0, "channels (dim=0) of an 8×3×3×3 conv weight at 50%")
    _mask_case(c, fn, rng.standard_normal((10, 7)), 0.3, 0, "rows (dim=0) of a 10×7 linear weight at 30%")
    _chip_payoff(c, fn)


def _chip_payoff(c: Checker, fn):
    """Your masks on LeNet: zeroing 90% of the weights leaves the dense array's cycles unchanged; removing the
    channels your dim=0 mask drops (half of each conv layer's) lowers them."""
    import aisys
    from aisys import chip, nn
    from aisys.models import LeNet
    aisys.manual_seed(9)
    model = LeNet(image_size=8, channels=(16, 32)).eval()
    x = aisys.randn(32, 1, 8, 8)
    sparse = copy.deepcopy(model)
    with aisys.no_grad():
        for name, m in sparse.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                keep, error = _call(fn, m.weight.numpy(), 0.9)
                if error:
                    c.fail(f"your mask on {name}", expected="a mask", got=error, hint=_PHINT)
                m.weight.numpy()[...] *= keep
    zeros = float(np.mean([(m.weight.numpy() == 0).mean() for m in sparse.modules() if isinstance(m, nn.Conv2d)]))
    keep = {}
    for name in ("conv1", "conv2"):
        mask, error = _call(fn, dict(model.named_modules())[name].weight.numpy(), 0.5, 0)
        if error:
            c.fail(f"your channel mask on {name}", expected="a mask", got=error, hint=_PHINT)
        keep[name] = np.flatnonzero(mask.reshape(mask.shape[0], -1).all(axis=1))
    slim = copy.deepcopy(model)
    _pruning.remove_channels(slim, keep=keep, example=x[:2])
    dense = chip.preset("scalesim32").with_datapath(4)
    runs = chip.compare_graphs({"dense": aisys.trace(model, x), "90% of weights zero": aisys.trace(sparse, x),
                                "half the conv channels": aisys.trace(slim, x)}, dense)
    c.true(zeros > 0.85 and runs.run("90% of weights zero").cycles == runs.baseline.cycles,
           what="fine-grained (unstructured) pruning on the dense systolic array: the same cycles",
           expected=f"{runs.baseline.cycles:,} cycles", got=f"{runs.run('90% of weights zero').cycles:,}",
           hint="a dense array multiplies zeros like any other weight")
    c.true(runs.speedup("half the conv channels") >= 1.5,
           what="channel (structured) pruning: smaller GEMMs, fewer cycles", expected="at least 1.5× fewer",
           got=f"{runs.speedup('half the conv channels'):.2f}×", hint=_PHINT)


def _mask_prunes_the_largest(weight, sparsity, dim=None):
    w = np.abs(np.asarray(weight, np.float64))
    if dim is not None:
        return _pruning.magnitude_mask(weight, sparsity, dim)
    k = int(round(sparsity * w.size))
    keep = np.ones(w.size, bool)
    keep[np.argsort(-w.reshape(-1), kind="stable")[:k]] = False
    return keep.reshape(w.shape)


def _mask_signed_values(weight, sparsity, dim=None):
    w = np.asarray(weight, np.float64)
    if dim is not None:
        return _pruning.magnitude_mask(w, sparsity, dim)
    k = int(round(sparsity * w.size))
    keep = np.ones(w.size, bool)
    keep[np.argsort(w.reshape(-1), kind="stable")[:k]] = False
    return keep.reshape(w.shape)


def _mask_threshold_ties(weight, sparsity, dim=None):
    w = np.abs(np.asarray(weight, np.float64))
    if dim is not None:
        return _pruning.magnitude_mask(weight, sparsity, dim)
    k = int(round(sparsity * w.size))
    if k == 0:
        return np.ones(w.shape, bool)
    t = np.sort(w.reshape(-1))[k - 1]
    return w > t                                             # every weight tied with the threshold goes too


def _mask_floor_count(weight, sparsity, dim=None):
    w = np.abs(np.asarray(weight, np.float64))
    if dim is not None:
        return _pruning.magnitude_mask(weight, sparsity, dim)
    k = int(sparsity * w.size)
    keep = np.ones(w.size, bool)
    keep[np.argsort(w.reshape(-1), kind="stable")[:k]] = False
    return keep.reshape(w.shape)


def _mask_channels_by_max(weight, sparsity, dim=None):
    w = np.abs(np.asarray(weight, np.float64))
    if dim is None:
        return _pruning.magnitude_mask(weight, sparsity)
    size = w.reshape(w.shape[0], -1).max(axis=1)
    k = int(round(sparsity * size.size))
    keep = np.ones(size.size, bool)
    keep[np.argsort(size, kind="stable")[:k]] = False
    return np.broadcast_to(keep.reshape(-1, *[1] * (w.ndim - 1)), w.shape).copy()


def _mask_returns_pruned(weight, sparsity, dim=None):
    return ~_pruning.magnitude_mask(weight, sparsity, dim)


def _mask_channels_along_inputs(weight, sparsity, dim=None):
    return _pruning.magnitude_mask(weight, sparsity, None if dim is None else 1)


_MASK_MISTAKES = [
    (_mask_prunes_the_largest, "that pruned the largest weights: prune the smallest |w| and keep the rest"),
    (_mask_returns_pruned, "the mask is inverted: True means keep (the weight stays), False means pruned"),
    (_mask_signed_values, "rank by |w|: a large negative weight matters as much as a large positive one (sorting "
                          "the signed values prunes the most negative)"),
    (_mask_channels_by_max, "a channel's size is its L1 norm Σ|w| over all its inputs, not its largest weight: one "
                            "big weight does not make a channel important"),
    (_mask_channels_along_inputs, "dim=0 ranks and prunes whole output channels (weight[c] for each c), not the "
                                  "input channels along dim 1"),
]
