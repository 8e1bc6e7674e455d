"""Calibration (校准): choosing the range a tensor is quantized over, from the values it takes.

Every observer watches batches (``observe``) and then proposes (scale, zero point) (``qparams``):

  minmax          the smallest and largest value seen: nothing is clipped, but one outlier stretches the step
  moving_average  min and max as exponential moving averages over batches (PyTorch's averaging constant 0.01)
  percentile      clip |x| at the p-th percentile (99.99 by default) — the outliers beyond it saturate
  mse             the clip threshold that minimizes the mean squared quantization error (clipping + rounding)
  kl              TensorRT's entropy calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017, and the
                  course's 04PTQ): the threshold whose 128-level quantized distribution is closest in KL
                  divergence to the observed one — see :func:`kl_threshold`

The histogram calibrators (percentile, mse, kl) choose a threshold T on |x| (as TensorRT does): the range is
[0, T] for a tensor that never goes negative (after a ReLU), so an affine int8 code spends all 256 levels on
what it can be; a tensor of both signs gets one threshold per side, [−T₋, T₊] (``symmetric=True``: ±T). Observers keep the values they saw (up to ``cap``
numbers; beyond that an even subsample), so the histogram is built over the exact maximum, as TensorRT does.
"""
from __future__ import annotations

import numpy as np

from .quant import QParams, channel_shape, qparams_from_range, qtype

__all__ = ["Observer", "MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver", "MSEObserver",
           "KLObserver", "OBSERVERS", "make_observer", "calibrate", "kl_threshold", "mse_threshold",
           "percentile_threshold", "clip_error", "threshold_report", "kl_divergences"]


def _array(x, what: str) -> np.ndarray:
    a = np.asarray(x._data if hasattr(x, "_data") else x)
    if a.dtype.kind not in "fiu" and a.dtype.kind != "V":
        raise TypeError(f"{what}: expects a numeric tensor, got numpy dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.size == 0:
        raise ValueError(f"{what}: got an empty tensor (shape {a.shape}); calibration needs values")
    if not np.all(np.isfinite(a)):
        kind = "NaN" if np.isnan(a).any() else "inf"
        raise ValueError(f"{what}: the data contain {int((~np.isfinite(a)).sum())} {kind} value(s); calibrate on "
                         f"finite activations (aisys.detect_anomaly() finds where they appear)")
    return a


class Observer:
    """Base class: watches tensors, proposes quantization parameters. ``axis`` makes it per-channel."""

    method = ""

    def __init__(self, dtype: str = "int8", symmetric: bool = False, axis: int | None = None):
        self.qtype = qtype(dtype)
        self.dtype = self.qtype.name
        self.symmetric = bool(symmetric) or self.qtype.is_float
        self.axis = axis
        self.batches = 0
        self.reset()

    def reset(self) -> None:
        self.batches = 0

    def observe(self, x) -> "Observer":
        a = _array(x, f"{type(self).__name__}.observe")
        if self.axis is not None:
            channel_shape(a.ndim, self.axis, type(self).__name__)
        self._observe(a)
        self.batches += 1
        return self

    __call__ = observe

    def _observe(self, a: np.ndarray) -> None:
        raise NotImplementedError

    def range(self) -> tuple:
        """(lo, hi) the codes will cover (before zero is added to the range)."""
        raise NotImplementedError

    def qparams(self) -> QParams:
        if self.batches == 0:
            raise ValueError(f"{type(self).__name__}: no data observed yet; call observe(batch) first")
        lo, hi = self.range()
        s, z = qparams_from_range(lo, hi, self.dtype, self.symmetric)
        return QParams(s, z, self.dtype, self.axis, self.symmetric)

    def __repr__(self) -> str:
        if self.batches == 0:
            return f"{type(self).__name__}({self.dtype}, nothing observed)"
        lo, hi = self.range()
        return f"{type(self).__name__}({self.dtype}, {self.batches} batches, range [{np.min(lo):.4g}, {np.max(hi):.4g}])"


class MinMaxObserver(Observer):
    """The running minimum and maximum (per channel along ``axis`` when set)."""
    method = "minmax"

    def reset(self) -> None:
        super().reset()
        self.lo = self.hi = None

    def _reduce(self, a: np.ndarray):
        if self.axis is None:
            return a.min(), a.max()
        ax = self.axis % a.ndim
        dims = tuple(d for d in range(a.ndim) if d != ax)
        return a.min(axis=dims), a.max(axis=dims)

    def _observe(self, a):
        lo, hi = self._reduce(a)
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            if np.shape(lo) != np.shape(self.lo):
                raise ValueError(f"{type(self).__name__}: a batch with {np.size(lo)} channels after batches with "
                                 f"{np.size(self.lo)}; one observer watches one tensor")
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)

    def range(self):
        return self.lo, self.hi


class MovingAverageMinMaxObserver(MinMaxObserver):
    """min/max as moving averages: m ← m + c·(batch value − m), starting at the first batch (c = 0.01)."""
    method = "moving_average"

    def __init__(self, dtype="int8", symmetric=False, axis=None, averaging_constant: float = 0.01):
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"MovingAverageMinMaxObserver: averaging_constant={averaging_constant} must be in (0, 1]")
        self.averaging_constant = float(averaging_constant)
        super().__init__(dtype, symmetric, axis)

    def _observe(self, a):
        lo, hi = self._reduce(a)
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            c = self.averaging_constant
            self.lo, self.hi = self.lo + c * (lo - self.lo), self.hi + c * (hi - self.hi)


class _ValuesObserver(Observer):
    """Keeps the values seen (at most ``cap``; beyond that every 2nd, 4th, … value) for a histogram."""

    def __init__(self, dtype="int8", symmetric=False, axis=None, cap: int = 1 << 22):
        if axis is not None:
            raise ValueError(f"{type(self).__name__}: histogram calibration is per-tensor (axis=None); use "
                             f"MinMaxObserver(axis=...) for per-channel ranges")
        self.cap = int(cap)
        super().__init__(dtype, symmetric, None)

    def reset(self) -> None:
        super().reset()
        self._chunks: list = []
        self._kept = 0
        self._stride = 1
        self.lo = self.hi = None

    def _observe(self, a):
        flat = a.reshape(-1)
        self.lo = flat.min() if self.lo is None else min(self.lo, flat.min())
        self.hi = flat.max() if self.hi is None else max(self.hi, flat.max())
        part = flat[::self._stride].astype(np.float32)
        self._chunks.append(part)
        self._kept += part.size
        while self._kept > self.cap:               # keep memory bounded: drop every other value, everywhere
            self._stride *= 2
            self._chunks = [c[::2] for c in self._chunks]
            self._kept = sum(c.size for c in self._chunks)

    @property
    def values(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)

    def threshold(self, values: np.ndarray | None = None, signed: bool = False) -> float:
        """The clip threshold on |values| (all values seen by default); ``signed``: the codes will cover
        [−T, T] (half of them per side) rather than [0, T]."""
        raise NotImplementedError

    def range(self):
        """[−T₋, T₊]: each side's own threshold when the tensor takes both signs (an asymmetric tensor such as
        a mean-subtracted image keeps its longer side), [0, T] when it never goes negative."""
        v = self.values
        if self.symmetric or self.lo >= 0 or self.hi <= 0:
            t = self.threshold(v, signed=self.symmetric or (self.lo < 0 < self.hi))
            return (-t if self.lo < 0 else 0.0), (t if self.hi > 0 else 0.0)
        return -self.threshold(v[v < 0], signed=True), self.threshold(v[v > 0], signed=True)


class PercentileObserver(_ValuesObserver):
    """Clip |x| at its ``percentile``-th percentile (99.99 by default)."""
    method = "percentile"

    def __init__(self, dtype="int8", symmetric=False, axis=None, percentile: float = 99.99, cap: int = 1 << 22):
        if not 0 < percentile <= 100:
            raise ValueError(f"PercentileObserver: percentile={percentile} must be in (0, 100]")
        self.percentile = float(percentile)
        super().__init__(dtype, symmetric, axis, cap)

    def threshold(self, values=None, signed=False) -> float:
        return percentile_threshold(self.values if values is None else values, self.percentile)


class MSEObserver(_ValuesObserver):
    """The clip threshold with the smallest mean squared error between x and its quantized value."""
    method = "mse"

    def threshold(self, values=None, signed=False) -> float:
        v = np.abs(self.values if values is None else values)
        if signed:                                  # the grid of [−T, T]: mirror the magnitudes
            v = np.concatenate([v, -v])
        return mse_threshold(v, self.qtype.name, negative=signed)


class KLObserver(_ValuesObserver):
    """TensorRT's entropy calibration (:func:`kl_threshold`), with Q quantized to as many levels as the range's
    codes: 128 per side for a tensor of both signs, 256 for one that never goes negative (a ReLU output)."""
    method = "kl"

    def __init__(self, dtype="int8", symmetric=False, axis=None, bins: int = 2048, levels: int = 128,
                 cap: int = 1 << 22):
        self.bins, self.levels = int(bins), int(levels)
        super().__init__(dtype, symmetric, axis, cap)

    def threshold(self, values=None, signed=False) -> float:
        return kl_threshold(self.values if values is None else values, self.bins, self.levels)

    def range(self):
        """As TensorRT's search, but Q gets the levels the range will really have: ``levels`` (128) per side
        for a tensor of both signs, twice that for a one-sided tensor ([0, T] gets all 256 affine codes)."""
        v = self.values
        if self.symmetric or (self.lo < 0 < self.hi):
            return super().range()
        t = kl_threshold(np.abs(v), self.bins, min(2 * self.levels, self.bins))
        return (-t, 0.0) if self.hi <= 0 else (0.0, t)


OBSERVERS = {"minmax": MinMaxObserver, "moving_average": MovingAverageMinMaxObserver,
             "percentile": PercentileObserver, "mse": MSEObserver, "kl": KLObserver}


def make_observer(method: str, dtype: str = "int8", symmetric: bool = False, axis: int | None = None,
                  **options) -> Observer:
    """An observer by name: 'minmax', 'moving_average', 'percentile', 'mse' or 'kl'."""
    if method not in OBSERVERS:
        raise ValueError(f"unknown calibration method {method!r}; use one of {', '.join(OBSERVERS)}")
    return OBSERVERS[method](dtype, symmetric, axis, **options)


def calibrate(x, method: str = "minmax", dtype: str = "int8", symmetric: bool = True, axis: int | None = None,
              **options):
    """(scale, zero_point) for quantizing ``x`` with ``method`` (arrays when ``axis`` is set)."""
    qp = make_observer(method, dtype, symmetric, axis, **options).observe(x).qparams()
    return qp.scale, qp.zero_point


# ---------------------------------------------------------------------------------------------------
# thresholds on |x|
# ---------------------------------------------------------------------------------------------------

def percentile_threshold(x, percentile: float = 99.99) -> float:
    a = np.abs(_array(x, "percentile_threshold"))
    return float(np.percentile(a, percentile))


def _abs_histogram(x, bins: int, what: str):
    a = np.abs(_array(x, what)).reshape(-1)
    amax = float(a.max())
    if amax == 0:
        return None, 0.0
    hist, _ = np.histogram(a, bins=bins, range=(0.0, amax))
    return hist.astype(np.float64), amax / bins


def kl_divergences(hist: np.ndarray, levels: int = 128, start: int | None = None) -> np.ndarray:
    """KL(P‖Q) for each candidate number of kept bins i = start … len(hist)−1 (TensorRT's loop).

    P: the first i bins, with every count beyond them (the outliers) added to bin i−1, normalized.
    Q: the same i bins (without the outliers) merged into ``levels`` groups (bin j joins group ⌊j·levels/i⌋),
    each group's total spread evenly over its non-empty bins, normalized. Empty bins of P add nothing; a
    non-empty P bin where Q is empty makes the divergence infinite (that candidate is never chosen).
    Returns an array indexed by i (entries below ``start`` are inf).

    All candidates at once, from prefix sums: with P = p/ΣP and Q = q/ΣQ,
    KL = Σ p log(p/q) / Σp + log(Σq/Σp), and inside group g every non-empty bin has q = S_g/n_g (its total
    over its count of non-empty bins), so Σ_{j∈g} h_j log(h_j/q_j) = Σ_{j∈g} h_j log h_j − S_g log(S_g/n_g)."""
    h = np.asarray(hist, dtype=np.float64)
    n = h.size
    start = levels if start is None else start
    if n < start:
        raise ValueError(f"kl_divergences: {n} bins is fewer than the first candidate ({start}); use more bins")
    out = np.full(n, np.inf)
    cand = np.arange(start, n)
    if cand.size == 0:
        return out
    hlogh = np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0)
    C = np.concatenate([[0.0], np.cumsum(h)])                    # C[i] = Σ h[:i]
    NZ = np.concatenate([[0], np.cumsum(h > 0)])
    HL = np.concatenate([[0.0], np.cumsum(hlogh)])
    total = C[n]
    k = np.arange(levels + 1)
    bounds = (k[None, :] * cand[:, None] + levels - 1) // levels  # group g covers bins [b_g, b_{g+1})
    S = C[bounds[:, 1:]] - C[bounds[:, :-1]]                     # (candidates, levels) group totals
    cnt = NZ[bounds[:, 1:]] - NZ[bounds[:, :-1]]
    used = cnt > 0
    group_term = np.where(used, S * np.log(np.where(used, S, 1.0) / np.where(used, cnt, 1)), 0.0).sum(axis=1)
    last = h[cand - 1]                                           # bin i−1, in the last group
    q_last = np.where(last > 0, S[:, -1] / np.maximum(cnt[:, -1], 1), 0.0)     # an empty bin gets no share
    log_q_last = np.log(np.where(q_last > 0, q_last, 1.0))
    body = HL[cand - 1] - group_term + last * log_q_last         # Σ over j < i−1 of h log(h/q)
    p_last = last + (total - C[cand])                            # plus the outliers
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(p_last > 0, p_last * (np.log(np.where(p_last > 0, p_last, 1.0)) - log_q_last), 0.0)
        kl = (body + tail) / total + np.log(C[cand] / total)
    bad = (total == 0) | (C[cand] == 0) | ((p_last > 0) & (q_last == 0))
    out[cand] = np.where(bad, np.inf, kl)
    return out


def kl_threshold(x, bins: int = 2048, levels: int = 128) -> float:
    """TensorRT's entropy-calibration threshold, in x's units.

    Histogram |x| into ``bins`` bins over [0, max|x|]; for every candidate i from ``levels`` to bins−1, compare
    the clipped distribution P with its ``levels``-level quantization Q (:func:`kl_divergences`); the winner m
    has the smallest KL(P‖Q), and the threshold is the middle of its last bin, (m + 0.5)·bin width, as in
    Migacz's GTC 2017 pseudocode. Ties go to the smallest m. An all-zero x gives 0."""
    if bins < levels or levels < 2:
        raise ValueError(f"kl_threshold: need levels >= 2 and bins >= levels, got bins={bins}, levels={levels}")
    hist, width = _abs_histogram(x, bins, "kl_threshold")
    if hist is None:
        return 0.0
    div = kl_divergences(hist, levels)
    if not np.isfinite(div).any():
        return float(bins * width)
    m = int(np.argmin(div))
    return float((m + 0.5) * width)


def clip_error(x, threshold: float, dtype: str = "int8", negative: bool | None = None) -> float:
    """Mean squared error between x and its quantized value when the range is clipped at ``threshold``
    ([−T, T] when x has negatives, else [0, T]; affine codes of ``dtype``)."""
    a = _array(x, "clip_error")
    if negative is None:
        negative = bool((a < 0).any())
    if threshold <= 0:
        return float(np.mean(a * a))
    s, z = qparams_from_range(-threshold if negative else 0.0, threshold, dtype)
    t = qtype(dtype)
    q = np.clip(np.round(a / s) + z, t.qmin, t.qmax)
    return float(np.mean((a - s * (q - z)) ** 2))


def mse_threshold(x, dtype: str = "int8", negative: bool | None = None, candidates: int = 128,
                  bins: int = 2048) -> float:
    """The clip threshold among ``candidates`` evenly spaced in (0, max|x|] with the smallest quantization
    MSE, measured on a ``bins``-bin histogram of x (each bin's values taken at its centre)."""
    a = _array(x, "mse_threshold").reshape(-1)
    amax = float(np.abs(a).max())
    if amax == 0:
        return 0.0
    if negative is None:
        negative = bool((a < 0).any())
    counts, edges = np.histogram(a, bins=bins, range=(-amax if negative else 0.0, amax))
    centres = (edges[:-1] + edges[1:]) / 2
    used = counts > 0
    centres, counts = centres[used], counts[used].astype(np.float64)
    t = qtype(dtype)
    ts = amax * np.arange(1, candidates + 1) / candidates
    errs = []
    for thr in ts:
        s, z = qparams_from_range(-thr if negative else 0.0, thr, dtype)
        q = np.clip(np.round(centres / s) + z, t.qmin, t.qmax)
        errs.append(float(np.sum(counts * (centres - s * (q - z)) ** 2)))
    return float(ts[int(np.argmin(errs))])


def threshold_report(x, dtype: str = "int8", percentile: float = 99.99) -> dict:
    """Each calibrator's threshold on |x| (minmax = max|x|), for the QuantHistogram widget and the lab."""
    a = _array(x, "threshold_report")
    neg = bool((a < 0).any())
    return {"minmax": float(np.abs(a).max()), "percentile": percentile_threshold(a, percentile),
            "mse": mse_threshold(a, dtype, neg), "kl": kl_threshold(a)}
