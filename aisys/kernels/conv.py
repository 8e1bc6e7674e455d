"""Convolution on the CPU, seven ways (ZOMI's lectures 06Kernel/02Conv–05Winograd): which one is fastest
depends on the layer, and each trades multiplications, workspace and accuracy differently.

    algorithm       what it does                                                   supports
    direct          the seven nested loops (numba), NCHW; NHWC with layout="NHWC"  everything
    im2col          copy every receptive field into a row, then one GEMM (BLAS),   everything
                    over cache-sized chunks of the batch
    winograd_2x2    F(2×2,3×3): Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 4×4 input tile     3×3, stride 1, dilation 1, groups 1
    winograd_4x4    F(4×4,3×3) on 6×6 tiles: fewer multiplications, more rounding   3×3, stride 1, dilation 1, groups 1
    depthwise       one filter per channel: KH·KW multiply-adds of whole planes     groups = in_channels
    gemm_1x1        a 1×1 convolution *is* a GEMM: no copy at stride 1              1×1, padding 0

Every algorithm can fill an :class:`OpCounter` as it runs (``counter=``): the multiplications it performed
(for Winograd, the elementwise products it actually computed: 16 per 2×2 output tile and (input, output)
channel pair, against 36 for the direct loops), additions, the bytes of extra workspace it allocated
(im2col's column matrix is ≈KH·KW times the input — of one chunk of the batch) and the bytes it moved. :func:`op_count` gives the same
figures in closed form, without running anything; tests hold the two equal.

:func:`select_kernel` is the dispatch rule (with its reason; Winograd-eligible layers take F(4×4,3×3) or
F(2×2,3×3) when they have enough output tiles for Winograd to beat BLAS's im2col GEMM, as measured by
benchmarks/bench_conv.py); ``mode="autotune"`` times the eligible algorithms once per shape and remembers the
winner. The eager ``conv2d`` op and its two backward ops run the selected kernel: this module registers them
with :func:`aisys.framework.dispatch.register_kernel` (``aisys`` imports it at start-up; numba loads only when
a numba kernel first runs). The fast float32/float64 forms live beside it: :mod:`aisys.kernels.winograd`
(numba transforms + batched GEMMs), :mod:`aisys.kernels.columns` (numba im2col into reused memory).

Layouts: NCHW input, (O, C/groups, KH, KW) weights, as the registry's conv2d. ``layout="NHWC"`` takes and
returns channels-last activations (weights unchanged), for ``direct`` and ``im2col``: the im2col matrix of an
NHWC image is (N·OH·OW) × (KH·KW·IC), each row one output pixel's receptive field, channels fastest. (The
lecture 06Kernel/03Im2col writes (OH·OW) × (N·KH·KW·IC): the batch belongs to the rows.)
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..framework.dispatch import register_kernel
from ..framework.registry import get as get_op
from ..framework.shapes import conv_output_size

__all__ = ["ALGORITHMS", "ConvGeometry", "OpCounter", "conv2d", "im2col", "winograd_matrices", "winograd_1d",
           "winograd_tile", "Im2colRecord", "im2col_record", "AlgorithmComparison", "compare_algorithms",
           "op_count", "numerical_error", "select_kernel", "autotuned", "autotune_cache", "supports",
           "conv2d_reference"]

ALGORITHMS = ("direct", "im2col", "winograd_2x2", "winograd_4x4", "depthwise", "gemm_1x1")
LAYOUTS = ("NCHW", "NHWC")


# ---------------------------------------------------------------------------------------------------
# Geometry and what each algorithm supports
# ---------------------------------------------------------------------------------------------------

def _pair(name, v, minimum):
    t = (v, v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else tuple(v)
    if len(t) != 2 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in t):
        raise TypeError(f"kernels.conv2d: {name} must be an int or a pair of ints, got {v!r}")
    if any(a < minimum for a in t):
        raise ValueError(f"kernels.conv2d: {name}={v!r} is invalid; each value must be ≥ {minimum}")
    return int(t[0]), int(t[1])


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution's shapes and attributes (NCHW view), with its output size."""
    N: int
    C: int
    H: int
    W: int
    O: int
    KH: int
    KW: int
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    OH: int
    OW: int

    @classmethod
    def of(cls, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, layout="NCHW"):
        if layout not in LAYOUTS:
            raise ValueError(f"kernels.conv2d: layout={layout!r}; use 'NCHW' or 'NHWC'")
        if len(x_shape) != 4 or len(w_shape) != 4:
            raise ValueError(f"kernels.conv2d: input and weight must be 4-D ({layout} and (O, C/groups, KH, KW)), "
                             f"got {tuple(x_shape)} and {tuple(w_shape)}")
        N, C, H, W = x_shape if layout == "NCHW" else (x_shape[0], x_shape[3], x_shape[1], x_shape[2])
        O, Cg, KH, KW = w_shape
        s, p, d = _pair("stride", stride, 1), _pair("padding", padding, 0), _pair("dilation", dilation, 1)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"kernels.conv2d: groups={groups!r} must be a positive int")
        if C % groups or O % groups or Cg * groups != C:
            raise ValueError(f"kernels.conv2d: weight {tuple(w_shape)} with groups={groups} needs "
                             f"in_channels = {Cg}·{groups}, divisible by groups like out_channels={O}; "
                             f"the input has {C} channels")
        OH = conv_output_size(H, KH, s[0], p[0], d[0], op="kernels.conv2d", dim="H")
        OW = conv_output_size(W, KW, s[1], p[1], d[1], op="kernels.conv2d", dim="W")
        return cls(int(N), int(C), int(H), int(W), int(O), int(KH), int(KW), s, p, d, int(groups), OH, OW)

    @property
    def Cg(self) -> int:
        return self.C // self.groups

    @property
    def macs(self) -> int:
        """Multiply-adds of the direct definition (padded taps included, as every GEMM form does them)."""
        return self.N * self.O * self.OH * self.OW * self.Cg * self.KH * self.KW

    def attrs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)


def _why_not(algorithm: str, g: ConvGeometry) -> str | None:
    """None when ``algorithm`` supports the convolution, else the attribute it does not support."""
    if algorithm in ("direct", "im2col"):
        return None
    if algorithm.startswith("winograd"):
        if (g.KH, g.KW) != (3, 3):
            return f"kernel {g.KH}×{g.KW} (Winograd F(m×m,3×3) needs 3×3)"
        if g.stride != (1, 1):
            return f"stride={g.stride} (Winograd needs stride 1)"
        if g.dilation != (1, 1):
            return f"dilation={g.dilation} (Winograd needs dilation 1)"
        if g.groups != 1:
            return f"groups={g.groups} (Winograd here needs groups=1)"
        return None
    if algorithm == "depthwise":
        if g.groups != g.C:
            return f"groups={g.groups} (depthwise needs groups = in_channels = {g.C})"
        return None
    if algorithm == "gemm_1x1":
        if (g.KH, g.KW) != (1, 1):
            return f"kernel {g.KH}×{g.KW} (gemm_1x1 needs 1×1)"
        if g.padding != (0, 0):
            return f"padding={g.padding} (gemm_1x1 needs padding 0)"
        return None
    raise ValueError(f"kernels: unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)} or 'auto'")


def supports(algorithm: str, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1) -> bool:
    """Whether ``algorithm`` can run this convolution."""
    return _why_not(algorithm, ConvGeometry.of(x_shape, w_shape, stride, padding, dilation, groups)) is None


def _require(algorithm: str, g: ConvGeometry, layout: str = "NCHW") -> None:
    why = _why_not(algorithm, g)
    if why is not None:
        ok = [a for a in ALGORITHMS if _why_not(a, g) is None]
        raise ValueError(f"kernels.conv2d: algorithm {algorithm!r} does not support {why}; for this convolution "
                         f"use one of {', '.join(ok)} (or algorithm='auto')")
    if layout == "NHWC" and algorithm not in ("direct", "im2col"):
        raise ValueError(f"kernels.conv2d: algorithm {algorithm!r} takes NCHW input; with layout='NHWC' use "
                         f"'direct' or 'im2col'")


# ---------------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------------

@dataclass
class OpCounter:
    """What one algorithm did for one convolution: general multiplications, additions, transform operations
    (Winograd's multiplications by the constant matrices, as the dense products this code computes), extra
    workspace bytes it allocated, and bytes moved (inputs, weights and outputs once, plus every workspace
    array written once and read once)."""
    algorithm: str = ""
    mults: int = 0
    adds: int = 0
    transform_ops: int = 0
    workspace_bytes: int = 0
    bytes_moved: int = 0

    def add(self, **counts) -> None:
        for k, v in counts.items():
            setattr(self, k, getattr(self, k) + int(v))

    def as_dict(self) -> dict:
        return dict(mults=self.mults, adds=self.adds, transform_ops=self.transform_ops,
                    workspace_bytes=self.workspace_bytes, bytes_moved=self.bytes_moved)


def _io_bytes(g: ConvGeometry, itemsize: int, bias: bool) -> int:
    return itemsize * (g.N * g.C * g.H * g.W + g.O * g.Cg * g.KH * g.KW + g.N * g.O * g.OH * g.OW
                       + (g.O if bias else 0))


def _tiles(g: ConvGeometry, m: int) -> tuple[int, int]:
    return -(-g.OH // m), -(-g.OW // m)


def op_count(algorithm: str, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, *, bias: bool = False,
             dtype="float32") -> dict:
    """Closed-form counts of ``algorithm`` on this convolution: dict(mults, adds, transform_ops,
    workspace_bytes, bytes_moved) — what :class:`OpCounter` records when the kernel runs."""
    g = ConvGeometry.of(x_shape, w_shape, stride, padding, dilation, groups)
    _require(algorithm, g)
    isz = np.dtype(dtype).itemsize
    outputs = g.N * g.O * g.OH * g.OW
    red = g.Cg * g.KH * g.KW                                    # products summed into each output
    mults, adds, transform, work = g.macs, outputs * (red - 1), 0, 0
    if algorithm == "im2col":                                   # the column matrix of one chunk of the batch
        work = min(_images_per_chunk(g, isz), g.N) * g.OH * g.OW * red * g.groups * isz
    elif algorithm == "depthwise":
        work = g.N * g.C * (g.H + 2 * g.padding[0]) * (g.W + 2 * g.padding[1]) * isz   # the padded input
    elif algorithm == "gemm_1x1" and g.stride != (1, 1):
        work = g.N * g.C * g.OH * g.OW * isz                    # the strided pixels, gathered
    elif algorithm.startswith("winograd"):
        m = 2 if algorithm == "winograd_2x2" else 4
        a = m + 2
        th, tw = _tiles(g, m)
        P = g.N * th * tw                                       # tiles per channel
        mults = a * a * g.O * g.C * P                           # the elementwise products
        adds = a * a * g.O * (g.C - 1) * P                      # summing them over input channels
        transform = _winograd_transform_ops(g, m)
        if _fast_winograd(np.dtype(dtype)):
            work = _winograd_fast().workspace_bytes(g.N, g.C, g.O, g.OH, g.OW, m, isz)
        else:
            padded = g.N * g.C * (th * m + 2) * (tw * m + 2)
            work = (padded + a * g.N * g.C * th * (tw * m + 2) + a * a * g.C * P + a * g.O * g.C * 3
                    + a * a * g.O * g.C + a * a * g.O * P + m * a * g.O * P + g.N * g.O * th * m * tw * m) * isz
    if bias:
        adds += outputs
    return dict(mults=int(mults), adds=int(adds), transform_ops=int(transform), workspace_bytes=int(work),
                bytes_moved=int(_io_bytes(g, isz, bias) + 2 * work))


def _count(counter, algorithm, g, dtype, bias, **measured):
    """Record what a kernel did: ``measured`` are the figures the kernel read off the arrays it actually
    multiplied or allocated; the rest follows from the geometry."""
    if counter is None:
        return
    isz = np.dtype(dtype).itemsize
    outputs = g.N * g.O * g.OH * g.OW
    mults = measured.pop("mults")
    adds = measured.pop("adds", mults - outputs)
    work = measured.pop("workspace_bytes", 0)
    counter.algorithm = algorithm
    counter.add(mults=mults, adds=adds + (outputs if bias else 0), workspace_bytes=work,
                bytes_moved=_io_bytes(g, isz, bias) + 2 * work, **measured)


# ---------------------------------------------------------------------------------------------------
# The algorithms (NCHW numpy arrays in, NCHW out; NHWC where said)
# ---------------------------------------------------------------------------------------------------

def _direct_nchw(x, w, out, sh, sw, ph, pw, dh, dw, groups):
    """out[n, o, oh, ow] = Σ_c Σ_kh Σ_kw x[n, c, oh·s − p + kh·d, …] · w[o, c, kh, kw]: the definition, with
    out-of-image taps skipped (they would multiply padding zeros)."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    OH, OW = out.shape[2], out.shape[3]
    Og = O // groups
    for n in range(N):
        for o in range(O):
            c0 = (o // Og) * Cg
            for oh in range(OH):
                for ow in range(OW):
                    acc = 0.0
                    for c in range(Cg):
                        for kh in range(KH):
                            ih = oh * sh - ph + kh * dh
                            if ih < 0 or ih >= H:
                                continue
                            for kw in range(KW):
                                iw = ow * sw - pw + kw * dw
                                if iw >= 0 and iw < W:
                                    acc += x[n, c0 + c, ih, iw] * w[o, c, kh, kw]
                    out[n, o, oh, ow] = acc


def _direct_nhwc(x, w_hwio, out, sh, sw, ph, pw, dh, dw, groups):
    """Channels-last loops: for each output pixel and tap, one input pixel's channels (contiguous) times the
    (C/groups, O/groups) weight slice, accumulated into the pixel's O outputs (contiguous: it vectorizes)."""
    N, H, W, C = x.shape
    KH, KW, Cg, O = w_hwio.shape
    OH, OW = out.shape[1], out.shape[2]
    Og = O // groups
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for o in range(O):
                    out[n, oh, ow, o] = 0.0
                for kh in range(KH):
                    ih = oh * sh - ph + kh * dh
                    if ih < 0 or ih >= H:
                        continue
                    for kw in range(KW):
                        iw = ow * sw - pw + kw * dw
                        if iw < 0 or iw >= W:
                            continue
                        for gi in range(groups):
                            for c in range(Cg):
                                v = x[n, ih, iw, gi * Cg + c]
                                for j in range(Og):
                                    out[n, oh, ow, gi * Og + j] += v * w_hwio[kh, kw, c, gi * Og + j]


_COMPILED: dict = {}


def _jit(fn):
    if fn.__name__ not in _COMPILED:
        from numba import njit                     # numba loads on the first direct convolution
        _COMPILED[fn.__name__] = njit(cache=True, boundscheck=False, error_model="numpy")(fn)
    return _COMPILED[fn.__name__]


def _compute_dtype(dt):
    """numba and BLAS compute in float32 or float64; float16 inputs compute in float32 and round once."""
    return np.float64 if dt == np.float64 else np.float32


def _run_direct(x, w, g: ConvGeometry, layout: str):
    ct = _compute_dtype(x.dtype)
    xc, wc = np.ascontiguousarray(x, ct), np.ascontiguousarray(w, ct)
    if layout == "NCHW":
        out = np.empty((g.N, g.O, g.OH, g.OW), ct)
        _jit(_direct_nchw)(xc, wc, out, *g.stride, *g.padding, *g.dilation, g.groups)
    else:
        out = np.empty((g.N, g.OH, g.OW, g.O), ct)
        w_hwio = np.ascontiguousarray(wc.transpose(2, 3, 1, 0))
        _jit(_direct_nhwc)(xc, w_hwio, out, *g.stride, *g.padding, *g.dilation, g.groups)
    return out


def _window(k, stride, dilation, n_out):
    start = k * dilation
    return slice(start, start + stride * (n_out - 1) + 1, stride)


def _pad_nhwc(x, padding):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, H, W, C = x.shape
    xp = np.zeros((N, H + 2 * ph, W + 2 * pw, C), x.dtype)
    xp[:, ph:ph + H, pw:pw + W] = x
    return xp


def im2col(x_nhwc, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The lecture's im2col for an NHWC batch: a (N·OH·OW) × (KH·KW·C) matrix, one row per output pixel
    (batch-major, then oh, then ow) holding its receptive field in (kh, kw, c) order, padding as zeros.

    A convolution is then ``im2col(x) @ w.transpose(2, 3, 1, 0).reshape(KH·KW·C, O)`` (groups=1)."""
    x = np.asarray(x_nhwc)
    if x.ndim != 4:
        raise ValueError(f"im2col: x must be an NHWC batch (4-D), got shape {x.shape}")
    KH, KW = _pair("kernel_size", kernel_size, 1)
    g = ConvGeometry.of(x.shape, (1, x.shape[3], KH, KW), stride, padding, dilation, 1, layout="NHWC")
    xp = _pad_nhwc(x, g.padding)
    cols = np.empty((g.N, g.OH, g.OW, KH, KW, g.C), x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            cols[:, :, :, kh, kw] = xp[:, _window(kh, g.stride[0], g.dilation[0], g.OH),
                                       _window(kw, g.stride[1], g.dilation[1], g.OW)]
    return cols.reshape(g.N * g.OH * g.OW, KH * KW * g.C)


#: im2col runs the batch in chunks whose column matrix stays about this size (instead of one matrix KH·KW times
#: the whole batch): when the columns were fresh numpy arrays, 2 MiB chunks measured 0.74-0.79x the one-matrix
#: time on ResNet-18 layers at batch 32; in reused memory (aisys.kernels.columns) 1-32 MiB measured alike
#: within noise, and 8 MiB keeps each LeNet-5 layer at batch 32 in one chunk (one call instead of two)
COLUMN_BLOCK_BYTES = 8 * 2**20


def _images_per_chunk(g: ConvGeometry, itemsize: int) -> int:
    per_image = g.C * g.KH * g.KW * g.OH * g.OW * itemsize
    return max(1, COLUMN_BLOCK_BYTES // max(per_image, 1))


def _by_chunks(n: int, step: int, fn, out):
    """out[i:i+step] = fn(i, i+step) over the batch (one call, no copy, when one chunk holds it all)."""
    if step >= n:
        return fn(0, n)
    for i in range(0, n, step):
        out[i:i + step] = fn(i, min(i + step, n))
    return out


def _im2col_nchw(x, w, b, g: ConvGeometry):
    """im2col + GEMM in the layout that suits NCHW: per image and group, W (O/groups × C/groups·KH·KW) @
    cols (C/groups·KH·KW × OH·OW) written straight into the NCHW result, over cache-sized chunks of the batch.
    float32/float64 build the columns with :mod:`aisys.kernels.im2col` (numba, one pass, reused memory);
    other dtypes run the registry's reference (the same product on numpy-built columns) chunk by chunk."""
    if not (_native(x, w) and x.dtype == w.dtype):
        ref, attrs = _REFERENCE["conv2d"], g.attrs()
        step = _images_per_chunk(g, x.dtype.itemsize)
        out = None if step >= g.N else np.empty((g.N, g.O, g.OH, g.OW), np.result_type(x.dtype, w.dtype))
        return _by_chunks(g.N, step, lambda i, j: ref(x[i:j], w, b, **attrs), out)
    from .columns import im2col_nchw
    G, Og, K, P = g.groups, g.O // g.groups, g.Cg * g.KH * g.KW, g.OH * g.OW
    x = np.ascontiguousarray(x)
    wk = w.reshape(G, Og, K)
    out = np.empty((g.N, g.O, P), x.dtype)
    step = _images_per_chunk(g, x.dtype.itemsize)
    for i in range(0, g.N, step):
        j = min(i + step, g.N)
        cols = im2col_nchw(x[i:j], g.KH, g.KW, g.stride, g.padding, g.dilation, g.OH, g.OW)
        np.matmul(wk, cols.reshape(j - i, G, K, P), out=out[i:j].reshape(j - i, G, Og, P))
    if b is not None:
        out += b.reshape(1, g.O, 1).astype(x.dtype, copy=False)
    return out.reshape(g.N, g.O, g.OH, g.OW)


def _weight_grad_im2col(gy, x, g: ConvGeometry):
    """dw[group] = Σₙ cols[n, group] (K × OH·OW) @ gy[n, group]ᵀ: the reference's per-image products (many rows
    first: BLAS runs them far faster than one GEMM with the batch as its inner dimension), on numba-built
    columns in reused memory, chunk by chunk, summed."""
    from .columns import im2col_nchw
    G, Og, K, P = g.groups, g.O // g.groups, g.Cg * g.KH * g.KW, g.OH * g.OW
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    acc = np.zeros((G, K, Og), x.dtype)
    step = _images_per_chunk(g, x.dtype.itemsize)
    for i in range(0, g.N, step):
        j = min(i + step, g.N)
        cols = im2col_nchw(x[i:j], g.KH, g.KW, g.stride, g.padding, g.dilation, g.OH, g.OW)
        per = np.matmul(cols.reshape(j - i, G, K, P), gy[i:j].reshape(j - i, G, Og, P).transpose(0, 1, 3, 2))
        acc += per.sum(0)
    return np.ascontiguousarray(acc.transpose(0, 2, 1)).reshape(g.O, g.Cg, g.KH, g.KW)


def _run_im2col(x, w, g: ConvGeometry, layout: str):
    if layout == "NCHW":
        out = _im2col_nchw(x, w, None, g)
        step = min(_images_per_chunk(g, x.dtype.itemsize), g.N)
        work = step * g.OH * g.OW * g.Cg * g.KH * g.KW * g.groups * x.dtype.itemsize
        return out, g.N * g.OH * g.OW * g.O * g.Cg * g.KH * g.KW, work
    G, Og, Cg = g.groups, g.O // g.groups, g.Cg
    out = np.empty((g.N * g.OH * g.OW, g.O), np.result_type(x.dtype, w.dtype))
    mults = work = 0
    for gi in range(G):
        cols = im2col(x[..., gi * Cg:(gi + 1) * Cg], (g.KH, g.KW), g.stride, g.padding, g.dilation)
        wg = w[gi * Og:(gi + 1) * Og].transpose(2, 3, 1, 0).reshape(g.KH * g.KW * Cg, Og)
        np.matmul(cols, wg, out=out[:, gi * Og:(gi + 1) * Og])
        mults += cols.shape[0] * cols.shape[1] * Og
        work += cols.nbytes
    return out.reshape(g.N, g.OH, g.OW, g.O), mults, work


def winograd_matrices(m: int, r: int = 3):
    """(Bᵀ, G, Aᵀ) of Winograd's minimal filtering F(m, r) (Lavin & Gray 2016), as float64 arrays:
    Bᵀ is (m+r−1)×(m+r−1), G is (m+r−1)×r, Aᵀ is m×(m+r−1) — the lecture 04Winograd writes Aᵀ as
    (m+r−1)×m, but its own F(2,3) matrix is 2×4. 1-D: y = Aᵀ[(G g) ⊙ (Bᵀ d)]; 2-D: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A."""
    if r != 3 or m not in (2, 4):
        raise ValueError(f"winograd_matrices: F({m},{r}) is not provided; use F(2,3) or F(4,3)")
    if m == 2:
        BT = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        AT = [[1, 1, 1, 0], [0, 1, -1, -1]]
    else:   # interpolation points 0, ±1, ±2, ∞
        BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
             [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
        AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    return np.array(BT, np.float64), np.array(G, np.float64), np.array(AT, np.float64)


def winograd_1d(d, g, m: int = 2):
    """F(m, 3) on one tile: the m outputs of correlating the m+2 inputs ``d`` with the 3 taps ``g``, with
    m+2 multiplications (the direct form takes 3m). Returns (y, multiplications performed)."""
    BT, G, AT = winograd_matrices(m, 3)
    d, g = np.asarray(d, np.float64), np.asarray(g, np.float64)
    if d.shape != (m + 2,) or g.shape != (3,):
        raise ValueError(f"winograd_1d: F({m},3) takes {m + 2} inputs and 3 taps, got {d.shape} and {g.shape}")
    u, v = G @ g, BT @ d
    prod = u * v
    return AT @ prod, prod.size


def _combine(row, parts, out):
    """out = Σ_j row[j]·parts(j) over the nonzero coefficients (±1 as adds/subtracts); returns the operations
    done (one per nonzero coefficient and element)."""
    first = True
    for j, c in enumerate(row):
        if c == 0:
            continue
        p = parts(j)
        if first:
            if c == 1:
                out[...] = p
            elif c == -1:
                np.negative(p, out=out)
            else:
                np.multiply(p, c, out=out)
            first = False
        elif c == 1:
            out += p
        elif c == -1:
            out -= p
        else:
            out += c * p
    if first:
        out[...] = 0


def _fast_winograd(dtype) -> bool:
    """float32 and float64 run aisys.kernels.winograd (numba transforms, blocked); float16 runs the numpy form
    below, which computes *in* float16 — how the lab shows Winograd's rounding error growing with the tile."""
    return dtype == np.float32 or dtype == np.float64


def _winograd_fast():
    from . import winograd
    return winograd


def _run_winograd(x, w, b, g: ConvGeometry, m: int):
    """(y, mults, adds, transform ops, workspace bytes, bias added?) of F(m×m, 3×3)."""
    if _fast_winograd(x.dtype) and w.dtype == x.dtype:
        P = g.N * _tiles(g, m)[0] * _tiles(g, m)[1]
        y, arrays = _winograd_fast().winograd_conv(np.ascontiguousarray(x), w, b, g.padding, m,
                                                   winograd_matrices(m, 3), g.OH, g.OW)
        a = m + 2
        return (y, a * a * g.O * g.C * P, a * a * g.O * (g.C - 1) * P, _winograd_transform_ops(g, m),
                sum(arr.nbytes for arr in arrays), True)
    return _run_winograd_numpy(x, w, g, m) + (False,)


def _run_winograd_numpy(x, w, g: ConvGeometry, m: int):
    """F(m×m, 3×3) over the whole batch: tiles of (m+2)² inputs overlapping by 2, transformed V = Bᵀ d B;
    filters U = G g Gᵀ; per tile position (ξ, ν) one GEMM U[ξν] (O×C) @ V[ξν] (C×tiles) — the only general
    multiplications; then Y = Aᵀ M A per tile. The transforms are sums over the constant matrices' nonzero
    entries, taken on strided views of the padded input (no tile copies)."""
    ct = x.dtype if x.dtype in (np.float16, np.float32, np.float64) else np.dtype(np.float32)
    BT, G, AT = (mat.astype(ct) for mat in winograd_matrices(m, 3))
    a = m + 2
    th, tw = _tiles(g, m)
    ph, pw = g.padding
    N, C, O = g.N, g.C, g.O
    Hp, Wp = th * m + 2, tw * m + 2
    xp = np.zeros((N, C, Hp, Wp), ct)
    hh, ww = min(g.H, Hp - ph), min(g.W, Wp - pw)
    xp[:, :, ph:ph + hh, pw:pw + ww] = x[:, :, :hh, :ww]
    # rows: R[ξ] = Σ_j Bᵀ[ξ, j] · (row j of every tile)   (N, C, th, Wp)
    R = np.empty((a, N, C, th, Wp), ct)
    for xi in range(a):
        _combine(BT[xi], lambda j: xp[:, :, j:j + m * th:m], R[xi])
    # columns: V[ξ, ν] = Σ_k Bᵀ[ν, k] · R[ξ][…, col k of every tile], stored (a, a, C, N, th, tw)
    V = np.empty((a, a, C, N, th, tw), ct)
    for xi in range(a):
        for nu in range(a):
            _combine(BT[nu], lambda k: R[xi][..., k:k + m * tw:m].transpose(1, 0, 2, 3), V[xi, nu])
    wc = w.astype(ct, copy=False)
    Gw = np.empty((a, O, C, 3), ct)
    for xi in range(a):
        _combine(G[xi], lambda k: wc[:, :, k, :], Gw[xi])
    U = np.empty((a, a, O, C), ct)
    for xi in range(a):
        for nu in range(a):
            _combine(G[nu], lambda k: Gw[xi][..., k], U[xi, nu])
    P = N * th * tw
    M = np.matmul(U.reshape(a * a, O, C), V.reshape(a * a, C, P))      # the elementwise products, summed over C
    mults = a * a * O * C * P
    M = M.reshape(a, a, O, N, th, tw)
    T = np.empty((m, a, O, N, th, tw), ct)
    for i in range(m):
        _combine(AT[i], lambda xi: M[xi], T[i])
    y = np.empty((N, O, th * m, tw * m), ct)
    for i in range(m):
        for j in range(m):
            _combine(AT[j], lambda nu: T[i][nu].transpose(1, 0, 2, 3), y[:, :, i::m, j::m])
    work = xp.nbytes + R.nbytes + V.nbytes + Gw.nbytes + U.nbytes + M.nbytes + T.nbytes + y.nbytes
    return y[:, :, :g.OH, :g.OW], mults, a * a * O * (C - 1) * P, _winograd_transform_ops(g, m), work


def _winograd_transform_ops(g: ConvGeometry, m: int) -> int:
    """One operation per nonzero coefficient and element in each transform stage of :func:`_run_winograd`."""
    BT, G, AT = winograd_matrices(m, 3)
    a = m + 2
    th, tw = _tiles(g, m)
    nzB, nzG, nzA = (int(np.count_nonzero(M)) for M in (BT, G, AT))
    P = g.N * th * tw
    return (nzB * g.N * g.C * th * (tw * m + 2) + a * nzB * g.C * P      # input: rows, then columns
            + nzG * g.O * g.C * 3 + a * nzG * g.O * g.C                  # filters
            + nzA * a * g.O * P + m * nzA * g.O * P)                     # output: rows, then columns


def _run_depthwise(x, w, g: ConvGeometry):
    """groups = channels: each output channel is KH·KW scaled, shifted copies of its own input plane, summed
    — no GEMM (each would have an inner dimension of KH·KW), just whole-plane multiply-adds."""
    mult = g.O // g.C                                         # channel multiplier
    ct = _compute_dtype(x.dtype)
    ph, pw = g.padding
    xp = np.zeros((g.N, g.C, g.H + 2 * ph, g.W + 2 * pw), ct)
    xp[:, :, ph:ph + g.H, pw:pw + g.W] = x
    wt = w.reshape(g.C, mult, g.KH, g.KW).astype(ct)
    out = np.zeros((g.N, g.C, mult, g.OH, g.OW), ct)
    tmp = np.empty((g.N, g.C, g.OH, g.OW), ct)
    for kh in range(g.KH):
        for kw in range(g.KW):
            win = xp[:, :, _window(kh, g.stride[0], g.dilation[0], g.OH), _window(kw, g.stride[1], g.dilation[1], g.OW)]
            for j in range(mult):
                np.multiply(win, wt[:, j, kh, kw].reshape(1, g.C, 1, 1), out=tmp)
                out[:, :, j] += tmp
    return out.reshape(g.N, g.O, g.OH, g.OW), g.macs, xp.nbytes


def _run_gemm_1x1(x, w, g: ConvGeometry):
    """A 1×1 convolution is out[n] = W (O×C) @ x[n] (C×H·W): the image is already the GEMM's right operand
    (no copy at stride 1; with a stride, only the sampled pixels are gathered)."""
    xs = x if g.stride == (1, 1) else np.ascontiguousarray(x[:, :, ::g.stride[0], ::g.stride[1]])
    G, Og, Cg, P = g.groups, g.O // g.groups, g.Cg, g.OH * g.OW
    out = np.empty((g.N, g.O, P), np.result_type(x.dtype, w.dtype))
    np.matmul(w.reshape(G, Og, Cg), xs.reshape(g.N, G, Cg, P), out=out.reshape(g.N, G, Og, P))
    return out.reshape(g.N, g.O, g.OH, g.OW), g.macs, 0 if xs is x else xs.nbytes


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, algorithm: str = "auto", *,
           layout: str = "NCHW", counter: OpCounter | None = None) -> np.ndarray:
    """The convolution ``algorithm`` computes (cross-correlation, as PyTorch's conv2d): NCHW input (NHWC with
    ``layout="NHWC"``), (O, C/groups, KH, KW) weights, optional (O,) bias. ``algorithm="auto"`` asks
    :func:`select_kernel` (NHWC: im2col). ``counter`` (an :class:`OpCounter`) receives what the kernel did."""
    x = np.asarray(getattr(x, "_data", x))
    w = np.asarray(getattr(w, "_data", w))
    b = None if bias is None else np.asarray(getattr(bias, "_data", bias))
    if x.dtype.kind != "f" or w.dtype.kind != "f":
        raise TypeError(f"kernels.conv2d: input and weight must be floating point, got {x.dtype} and {w.dtype}")
    g = ConvGeometry.of(x.shape, w.shape, stride, padding, dilation, groups, layout)
    if b is not None and b.shape != (g.O,):
        raise ValueError(f"kernels.conv2d: bias shape {b.shape} must be ({g.O},)")
    if algorithm == "auto":
        if layout == "NHWC":
            algorithm = "im2col"                  # the lecture's (N·OH·OW) × (KH·KW·C) matrix and one BLAS GEMM
        else:
            algorithm, _ = select_kernel(x.shape, w.shape, g.stride, g.padding, g.dilation, g.groups,
                                         dtype=x.dtype.name)
    _require(algorithm, g, layout)
    out_dtype = np.result_type(x.dtype, w.dtype)
    extra = {}
    if algorithm == "direct":
        y = _run_direct(x, w, g, layout)
        mults, work = g.macs, 0
    elif algorithm == "im2col":
        y, mults, work = _run_im2col(x, w, g, layout)
    elif algorithm.startswith("winograd"):
        y, mults, adds, transform, work, biased = _run_winograd(x, w, b, g, 2 if algorithm == "winograd_2x2" else 4)
        extra = dict(adds=adds, transform_ops=transform)
        if biased:
            _count(counter, algorithm, g, out_dtype, b is not None, mults=mults, workspace_bytes=work, **extra)
            return y.astype(out_dtype, copy=False)
    elif algorithm == "depthwise":
        y, mults, work = _run_depthwise(x, w, g)
    else:
        y, mults, work = _run_gemm_1x1(x, w, g)
    if b is not None:
        y = y + (b.reshape(1, g.O, 1, 1) if layout == "NCHW" else b)
    _count(counter, algorithm, g, out_dtype, b is not None, mults=mults, workspace_bytes=work, **extra)
    return y.astype(out_dtype, copy=False)


def conv2d_reference(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """The float64 ground truth: the registry's reference run on float64 copies (NCHW)."""
    x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
    g = ConvGeometry.of(x64.shape, w64.shape, stride, padding, dilation, groups)
    b64 = None if bias is None else np.asarray(bias, np.float64)
    return get_op("conv2d").ref(x64, w64, b64, **g.attrs())


def numerical_error(algorithm: str, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, *,
                    dtype="float32", seed: int = 0) -> float:
    """max |y − y₆₄| / max |y₆₄| of ``algorithm`` run in ``dtype`` on unit-scale normal data (seeded), against the
    float64 direct result on the same (rounded) inputs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    y = conv2d(x, w, None, stride, padding, dilation, groups, algorithm).astype(np.float64)
    ref = conv2d_reference(x, w, None, stride, padding, dilation, groups)
    return float(np.max(np.abs(y - ref)) / max(np.max(np.abs(ref)), 1e-300))


# ---------------------------------------------------------------------------------------------------
# Choosing one
# ---------------------------------------------------------------------------------------------------

#: below this many (input × output) channels Winograd's tile transforms cost more than the multiplications saved
WINOGRAD_MIN_CHANNELS = 64 * 64
#: Winograd needs at least this many 2×2 output tiles (over the batch) to pay: each of its 16 GEMMs reads its
#: whole transformed filter U[ξν] (C×O; 16/9 of the weights in all) however few tiles it multiplies, so on
#: small images with many channels (ResNet-18's 7×7 layer at batch 1: 16 tiles) that traffic, not the
#: multiplications, sets the time, and BLAS's im2col GEMM (which reads the weights once) wins. Measured with
#: benchmarks/bench_conv.py --kernels (one thread): 49 tiles (256 channels, 14×14, batch 1) already pay.
WINOGRAD_MIN_TILES = 48
#: Why the rule never picks F(4×4,3×3) although it is faster still (4× fewer multiplications than direct): its
#: float32 error is ≈20× im2col's (measured on unit-scale data: ≈1e-5 of the output's largest value at 256
#: channels, against ≈5e-7 for im2col and F(2×2,3×3)), so at ResNet-18's channel counts ~1-4 % of its outputs
#: miss the op-info float32 tolerance (3e-5 absolute + relative) that im2col and F(2×2,3×3) meet. It stays
#: available by name (algorithm="winograd_4x4"), and autotune times it but chooses among the accurate ones.
ACCURATE = ("direct", "im2col", "winograd_2x2", "depthwise", "gemm_1x1")
#: None: the measured rule above; True: F(2×2,3×3) for every eligible layer (below the tile count too);
#: False: never Winograd in "rules" mode (im2col instead).
PREFER_WINOGRAD: bool | None = None
_AUTOTUNED: dict = {}
_MODE = {"mode": "rules"}


def select_kernel(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, dtype="float32", *,
                  mode: str | None = None, prefer_winograd: bool | None = None) -> tuple[str, str]:
    """(algorithm, reason) for this convolution.

    ``mode="rules"`` (the default): depthwise when groups = in_channels; a 1×1, padding-0 convolution as one
    GEMM; for a 3×3, stride-1, dilation-1, ungrouped float32/float64 convolution with enough channels
    (:data:`WINOGRAD_MIN_CHANNELS`) and enough 2×2 output tiles over the batch (:data:`WINOGRAD_MIN_TILES`),
    Winograd F(2×2,3×3) (``prefer_winograd``, default :data:`PREFER_WINOGRAD`: True takes it below the tile count
    too, False never); im2col + GEMM otherwise. Never F(4×4,3×3): faster, but its float32 error is ≈20×
    im2col's (see :data:`ACCURATE`); float16 never takes Winograd either.
    ``mode="autotune"`` times every algorithm that supports the shape once (on seeded data of that shape) and
    remembers the fastest *accurate* one (:data:`ACCURATE`) per (shapes, attributes, dtype); ``autotuned()``
    makes it the eager default."""
    g = ConvGeometry.of(x_shape, w_shape, stride, padding, dilation, groups)
    mode = mode or _MODE["mode"]
    if mode not in ("rules", "autotune"):
        raise ValueError(f"select_kernel: mode={mode!r}; use 'rules' or 'autotune'")
    dtype = np.dtype(dtype).name
    if mode == "autotune":
        key = (tuple(x_shape), tuple(w_shape), g.stride, g.padding, g.dilation, g.groups, dtype)
        if key not in _AUTOTUNED:
            _AUTOTUNED[key] = _autotune(g, dtype)
        best, times = _AUTOTUNED[key]
        shown = ", ".join(f"{a} {t * 1e3:.2f} ms" for a, t in sorted(times.items(), key=lambda kv: kv[1]))
        return best, f"autotuned: fastest accurate algorithm measured for this shape ({shown})"
    if g.groups == g.C and g.C > 1:
        return "depthwise", (f"groups = in_channels = {g.C}: depthwise, {g.KH}·{g.KW} whole-plane multiply-adds "
                             f"per channel (a GEMM would have an inner dimension of only {g.KH * g.KW})")
    if (g.KH, g.KW) == (1, 1) and g.padding == (0, 0):
        return "gemm_1x1", "1×1 kernel: the convolution is one GEMM on the image itself (no im2col copy)"
    if _why_not("winograd_2x2", g) is None:
        if dtype not in ("float32", "float64"):
            return "im2col", f"3×3 stride 1, but {dtype}: Winograd's transforms lose too much precision"
        if g.C * g.O < WINOGRAD_MIN_CHANNELS:
            return "im2col", (f"3×3 stride 1, but only {g.C}×{g.O} channels: Winograd's tile transforms cost "
                              f"more than its 16-vs-36 multiplications save; im2col + GEMM")
        prefer = PREFER_WINOGRAD if prefer_winograd is None else prefer_winograd
        if prefer is False:
            return "im2col", ("3×3 stride 1: Winograd-eligible, but prefer_winograd=False: im2col + GEMM")
        tiles = g.N * _tiles(g, 2)[0] * _tiles(g, 2)[1]
        if tiles >= WINOGRAD_MIN_TILES or prefer is True:
            return "winograd_2x2", (f"3×3 stride 1, {tiles} output tiles of 2×2: Winograd F(2×2,3×3), 16 "
                                    f"multiplications per 2×2 output tile instead of 36 (its float32 error is "
                                    f"im2col's; F(4×4,3×3) would do 4× fewer but err ≈20× more: asked for only)")
        return "im2col", (f"3×3 stride 1, but only {tiles} output tiles of 2×2 (< {WINOGRAD_MIN_TILES}): "
                          f"Winograd's transformed filters (16/9 × the weights) would be read for too few "
                          f"tiles — measured slower than im2col + one GEMM (BLAS) here")
    why = _why_not("winograd_2x2", g)
    return "im2col", f"general convolution ({why.split(' (')[0]}): im2col + one GEMM per image (BLAS)"


def _autotune(g: ConvGeometry, dtype: str):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((g.N, g.C, g.H, g.W)).astype(dtype)
    w = rng.standard_normal((g.O, g.Cg, g.KH, g.KW)).astype(dtype)
    times = {}
    for alg in ALGORITHMS:
        if _why_not(alg, g) is not None:
            continue
        conv2d(x, w, None, algorithm=alg, **g.attrs())         # warm up (numba compiles here)
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            conv2d(x, w, None, algorithm=alg, **g.attrs())
            best = min(best, time.perf_counter() - t0)
        times[alg] = best
    return min((a for a in times if a in ACCURATE), key=times.get), times


@contextlib.contextmanager
def autotuned():
    """Inside the block, ``select_kernel`` (and so every eager conv2d) uses ``mode="autotune"``."""
    prev, _MODE["mode"] = _MODE["mode"], "autotune"
    try:
        yield
    finally:
        _MODE["mode"] = prev


def autotune_cache() -> dict:
    """{(x_shape, w_shape, stride, padding, dilation, groups, dtype): (winner, {algorithm: seconds})}."""
    return dict(_AUTOTUNED)


# ---------------------------------------------------------------------------------------------------
# Eager: the conv2d op and its two backward ops run the selected kernel
# ---------------------------------------------------------------------------------------------------

_SELECTED: dict = {}


def _selected(op: str, x_shape, w_shape, attrs, dtype) -> str:
    """The algorithm for one eager call, remembered per (op, shapes, attributes, dtype, mode)."""
    key = (op, x_shape, w_shape, attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"], dtype.str,
           _MODE["mode"], PREFER_WINOGRAD)
    alg = _SELECTED.get(key)
    if alg is None:
        alg = _SELECTED[key] = select_kernel(x_shape, w_shape, **attrs, dtype=dtype)[0]
    return alg


def _native(*arrays) -> bool:
    return all(a.dtype == np.float32 or a.dtype == np.float64 for a in arrays if a is not None)


@register_kernel("conv2d", device="cpu", layout="contiguous", name="aisys.kernels.conv2d")
def _eager_conv2d(x, w, b=None, *, stride, padding, dilation, groups):
    """float32/float64: the selected algorithm (im2col is the registry's reference itself); other dtypes
    (float16, bfloat16) keep the reference."""
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if not _native(x, w, b) or x.dtype != w.dtype:
        return _REFERENCE["conv2d"](x, w, b, **attrs)
    alg = _selected("conv2d", x.shape, w.shape, attrs, x.dtype)
    if alg == "im2col":
        return _im2col_nchw(x, w, b, _geometry(x.shape, w.shape, attrs))
    return conv2d(x, w, b, algorithm=alg, **attrs)


_GEOMETRIES: dict = {}


def _geometry(x_shape, w_shape, attrs) -> ConvGeometry:
    key = (x_shape, w_shape, attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"])
    geo = _GEOMETRIES.get(key)
    if geo is None:
        geo = _GEOMETRIES[key] = ConvGeometry.of(x_shape, w_shape, **attrs)
    return geo


@register_kernel("conv2d_backward_input", device="cpu", layout="contiguous", name="aisys.kernels.conv2d_backward_input")
def _eager_conv2d_backward_input(g, w, *, input_shape, stride, padding, dilation, groups):
    """At stride 1 the input gradient is itself a convolution: g, padded by dilation·(K−1) − padding, correlated
    with the filters flipped in space and transposed (in ↔ out channels, per group) — so when the selected
    algorithm for *that* convolution is not im2col (Winograd, depthwise, a 1×1 GEMM) it runs it. Otherwise,
    and for strided layers, the reference: im2col's own adjoint (col2im)."""
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    (KH, KW), (ph, pw), (dh, dw) = w.shape[2:], padding, dilation
    fph, fpw = dh * (KH - 1) - ph, dw * (KW - 1) - pw
    if stride == (1, 1) and fph >= 0 and fpw >= 0 and _native(g, w) and g.dtype == w.dtype:
        O, Cg = w.shape[:2]
        wt_shape = (groups * Cg, O // groups, KH, KW)
        flipped = dict(stride=(1, 1), padding=(fph, fpw), dilation=dilation, groups=groups)
        alg = _selected("conv2d_backward_input", g.shape, wt_shape, flipped, g.dtype)
        if alg != "im2col":
            wt = w.reshape(groups, O // groups, Cg, KH, KW).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
            return conv2d(g, np.ascontiguousarray(wt).reshape(wt_shape), None, algorithm=alg, **flipped)
    ref = _REFERENCE["conv2d_backward_input"]
    if not _native(g, w):
        return ref(g, w, input_shape=input_shape, **attrs)
    geo = _geometry(tuple(input_shape), w.shape, attrs)          # col2im, over cache-sized chunks of the batch
    step = _images_per_chunk(geo, g.dtype.itemsize)
    out = None if step >= geo.N else np.empty(tuple(input_shape), g.dtype)
    return _by_chunks(geo.N, step, lambda i, j: ref(g[i:j], w, input_shape=(j - i,) + tuple(input_shape[1:]),
                                                    **attrs), out)


@register_kernel("conv2d_backward_weight", device="cpu", layout="contiguous",
                 name="aisys.kernels.conv2d_backward_weight")
def _eager_conv2d_backward_weight(g, x, *, weight_shape, stride, padding, dilation, groups):
    """The weight gradient is a reduction over the batch and the output pixels: depthwise layers reduce each
    tap's shifted plane against g (no columns), 1×1 layers are one GEMM per image on the image itself; the
    rest use the reference's im2col + GEMM."""
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if _native(g, x) and g.dtype == x.dtype:
        alg = _selected("conv2d", x.shape, tuple(weight_shape), attrs, x.dtype)
        if alg == "depthwise":
            return _depthwise_weight_grad(g, x, ConvGeometry.of(x.shape, weight_shape, **attrs))
        if alg == "gemm_1x1":
            geo = ConvGeometry.of(x.shape, weight_shape, **attrs)
            xs = x if geo.stride == (1, 1) else x[:, :, ::geo.stride[0], ::geo.stride[1]]
            G, Og, Cg, P = geo.groups, geo.O // geo.groups, geo.Cg, geo.OH * geo.OW
            per = np.matmul(g.reshape(geo.N, G, Og, P), xs.reshape(geo.N, G, Cg, P).transpose(0, 1, 3, 2))
            return per.sum(0).reshape(weight_shape).astype(g.dtype, copy=False)
    if not (_native(g, x) and g.dtype == x.dtype):
        return _REFERENCE["conv2d_backward_weight"](g, x, weight_shape=weight_shape, **attrs)
    return _weight_grad_im2col(g, x, _geometry(x.shape, tuple(weight_shape), attrs))


_REFERENCE = {op: get_op(op).ref for op in ("conv2d", "conv2d_backward_input", "conv2d_backward_weight")}


def _depthwise_weight_grad(g, x, geo: ConvGeometry):
    mult = geo.O // geo.C
    ph, pw = geo.padding
    xp = np.zeros((geo.N, geo.C, geo.H + 2 * ph, geo.W + 2 * pw), x.dtype)
    xp[:, :, ph:ph + geo.H, pw:pw + geo.W] = x
    g5 = g.reshape(geo.N, geo.C, mult, geo.OH, geo.OW)
    dw = np.empty((geo.C, mult, geo.KH, geo.KW), g.dtype)
    for kh in range(geo.KH):
        for kw in range(geo.KW):
            win = xp[:, :, _window(kh, geo.stride[0], geo.dilation[0], geo.OH),
                     _window(kw, geo.stride[1], geo.dilation[1], geo.OW)]
            dw[:, :, kh, kw] = np.einsum("ncmhw,nchw->cm", g5, win)
    return dw.reshape(geo.O, 1, geo.KH, geo.KW)


# ---------------------------------------------------------------------------------------------------
# Records the widgets draw
# ---------------------------------------------------------------------------------------------------

def winograd_tile(d, g, m: int = 2):
    """F(m×m, 3×3) on one (m+2)×(m+2) input tile ``d`` and a 3×3 filter ``g``: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A,
    the m×m outputs of correlating d with g. Returns (Y, multiplications in the elementwise product)."""
    BT, G, AT = winograd_matrices(m, 3)
    d, g = np.asarray(d, np.float64), np.asarray(g, np.float64)
    if d.shape != (m + 2, m + 2) or g.shape != (3, 3):
        raise ValueError(f"winograd_tile: F({m}×{m},3×3) takes a {m + 2}×{m + 2} tile and a 3×3 filter, got "
                         f"{d.shape} and {g.shape}")
    U, V = G @ g @ G.T, BT @ d @ BT.T
    M = U * V
    return AT @ M @ AT.T, M.size


@dataclass
class Im2colRecord:
    """An NHWC batch, a kernel geometry and the im2col matrix some function made of it (Im2colView draws it):
    for an output pixel, :meth:`row` is its row in the matrix and :meth:`patch` the input positions it reads."""
    x: np.ndarray
    geometry: ConvGeometry
    cols: np.ndarray

    def row(self, n: int, oh: int, ow: int) -> int:
        g = self.geometry
        return (n * g.OH + oh) * g.OW + ow

    def patch(self, oh: int, ow: int) -> list[tuple[int, int, int, int, bool]]:
        """(kh, kw, ih, iw, inside the image) for each tap, in the row's (kh, kw) order (channels innermost)."""
        g = self.geometry
        out = []
        for kh in range(g.KH):
            for kw in range(g.KW):
                ih = oh * g.stride[0] - g.padding[0] + kh * g.dilation[0]
                iw = ow * g.stride[1] - g.padding[1] + kw * g.dilation[1]
                out.append((kh, kw, ih, iw, 0 <= ih < g.H and 0 <= iw < g.W))
        return out

    @property
    def expansion(self) -> float:
        """Bytes of the im2col matrix over bytes of the input (≈ KH·KW)."""
        return self.cols.size / self.x.size


def im2col_record(x_nhwc, kernel_size, stride=1, padding=0, dilation=1, *, im2col_fn=None) -> Im2colRecord:
    """The record for Im2colView; ``im2col_fn`` (default :func:`im2col`) makes the matrix — a learner's own."""
    x = np.asarray(x_nhwc)
    KH, KW = _pair("kernel_size", kernel_size, 1)
    geo = ConvGeometry.of(x.shape, (1, x.shape[3], KH, KW), stride, padding, dilation, 1, layout="NHWC")
    cols = np.asarray((im2col_fn or im2col)(x, (KH, KW), stride, padding, dilation))
    want = (geo.N * geo.OH * geo.OW, KH * KW * geo.C)
    if cols.shape != want:
        raise ValueError(f"im2col_record: the im2col matrix is {cols.shape}; for this batch it must be {want} "
                         f"= (N·OH·OW, KH·KW·C)")
    return Im2colRecord(x, geo, cols)


@dataclass
class AlgorithmComparison:
    """Every algorithm that supports one convolution, side by side (KernelCompare draws it): counts, the best
    of ``repeat`` timed runs, and the error against float64 in each dtype."""
    x_shape: tuple
    w_shape: tuple
    attrs: dict
    selected: str
    reason: str
    rows: list = field(default_factory=list)      # dicts: algorithm, mults, workspace_bytes, bytes_moved, seconds, error_<dtype>

    def summary(self) -> str:
        errs = [k for k in self.rows[0] if k.startswith("error_")] if self.rows else []
        head = f"{'algorithm':13s} {'mults':>13s} {'workspace':>11s} {'time':>9s} " + " ".join(f"{e:>15s}" for e in errs)
        lines = [f"conv {self.x_shape} * {self.w_shape} {self.attrs}: selected {self.selected} ({self.reason})", head]
        for r in self.rows:
            lines.append(f"{r['algorithm']:13s} {r['mults']:13,d} {r['workspace_bytes'] / 1024:9.1f}KB "
                         f"{r['seconds'] * 1e3:7.2f}ms " + " ".join(f"{r[e]:15.2e}" for e in errs))
        return "\n".join(lines)

    __str__ = summary


def compare_algorithms(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, *,
                       dtypes=("float32", "float16"), repeat: int = 3, seed: int = 0) -> AlgorithmComparison:
    """Run every algorithm that supports this convolution: op counts, best-of-``repeat`` time (float32), and
    the error against float64 in each of ``dtypes``."""
    g = ConvGeometry.of(x_shape, w_shape, stride, padding, dilation, groups)
    sel, why = select_kernel(x_shape, w_shape, g.stride, g.padding, g.dilation, g.groups, mode="rules")
    rec = AlgorithmComparison(tuple(x_shape), tuple(w_shape), g.attrs(), sel, why)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    for alg in ALGORITHMS:
        if _why_not(alg, g) is not None:
            continue
        row = dict(algorithm=alg, **op_count(alg, x_shape, w_shape, **g.attrs()))
        conv2d(x, w, algorithm=alg, **g.attrs())                          # warm up (numba compiles)
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            conv2d(x, w, algorithm=alg, **g.attrs())
            best = min(best, time.perf_counter() - t0)
        row["seconds"] = best
        for dt in dtypes:
            row[f"error_{np.dtype(dt).name}"] = numerical_error(alg, x_shape, w_shape, **g.attrs(), dtype=dt, seed=seed)
        rec.rows.append(row)
    return rec
