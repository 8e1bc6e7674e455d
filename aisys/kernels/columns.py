"""im2col for NCHW batches in numba, written in the order the GEMM reads it.

``cols[n, (c·KH + kh)·KW + kw, oh·OW + ow] = x[n, c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]`` (0 outside the
image): per image and group, W (O/groups × C/groups·KH·KW) @ cols[n, group] is then the NCHW output with no
transpose. Each tap's row is a zero prefix, a (strided) copy of the input row and a zero suffix — no padded copy
of the input, unlike the numpy form in the registry's reference — and everything is written into reused scratch
buffers (:mod:`aisys.kernels.workspace`), so no page faults either.
"""
from __future__ import annotations

import numpy as np

from .workspace import scratch


def _row_into(dst, d0, src, s0, sw, lo, hi, OW):
    """dst[d0 : d0+OW] = zeros before ``lo``, src[s0 + (ow − lo)·sw] for lo ≤ ow < hi, zeros after (unsigned
    indices: numba then skips its negative-index wraparound test, and the copy vectorizes)."""
    for ow in range(lo):
        dst[d0 + np.uintp(ow)] = 0.0
    if sw == 1:
        for ow in range(hi - lo):
            dst[d0 + np.uintp(lo + ow)] = src[s0 + np.uintp(ow)]
    else:
        for ow in range(hi - lo):
            dst[d0 + np.uintp(lo + ow)] = src[s0 + np.uintp(ow * sw)]
    for ow in range(hi, OW):
        dst[d0 + np.uintp(ow)] = 0.0


def _im2col_nchw(x, cols, stage, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW):
    """With a vertical stride of 1, in two steps as the registry's numpy reference does (why: the rows are
    short): first the KW column-shifted copies of the image's rows, ``stage[kw, r]`` = padded row r as tap
    column kw reads it; tap (kh, kw)'s whole (OH, OW) block is then rows kh·dh … kh·dh + OH − 1 of stage[kw],
    one contiguous copy. With a vertical stride, each tap's rows are copied directly."""
    N, C, H, W = x.shape
    xf = x.reshape(N, C, H * W)
    rows = stage.shape[1] // OW
    P = OH * OW
    for n in range(N):
        for c in range(C):
            src = xf[n, c]
            for kw in range(KW):
                off = kw * dw - pw                       # input column of output column ow: ow·sw + off
                lo = 0 if off >= 0 else min(OW, (-off + sw - 1) // sw)
                hi = max(lo, 0 if W - 1 - off < 0 else min(OW, (W - 1 - off) // sw + 1))
                s_col = np.uintp(max(lo * sw + off, 0))
                if sh == 1:
                    st = stage[kw]
                    for r in range(rows):
                        ih = r - ph
                        d0 = np.uintp(r * OW)
                        if ih < 0 or ih >= H:
                            for ow in range(OW):
                                st[d0 + np.uintp(ow)] = 0.0
                        elif lo == 0 and hi == OW and sw == 1:
                            s0 = np.uintp(ih * W) + s_col   # the common case: no padding on this tap's row
                            for ow in range(OW):
                                st[d0 + np.uintp(ow)] = src[s0 + np.uintp(ow)]
                        else:
                            _row_into(st, d0, src, np.uintp(ih * W) + s_col, sw, lo, hi, OW)
                    for kh in range(KH):
                        row = cols[n, (c * KH + kh) * KW + kw]
                        s0 = np.uintp(kh * dh * OW)
                        for q in range(P):
                            row[np.uintp(q)] = st[s0 + np.uintp(q)]
                else:
                    for kh in range(KH):
                        row = cols[n, (c * KH + kh) * KW + kw]
                        for oh in range(OH):
                            ih = oh * sh - ph + kh * dh
                            d0 = np.uintp(oh * OW)
                            if ih < 0 or ih >= H:
                                for ow in range(OW):
                                    row[d0 + np.uintp(ow)] = 0.0
                            else:
                                _row_into(row, d0, src, np.uintp(ih * W) + s_col, sw, lo, hi, OW)


_COMPILED: dict = {}


def _jit(fn, **options):
    """The numba-compiled ``fn``. numba resolves a called function by its global name when it compiles the
    caller, so the compiled form replaces the Python one in this module's namespace (compile callees first)."""
    if fn.__name__ not in _COMPILED:
        from numba import njit                           # numba loads on the first im2col
        _COMPILED[fn.__name__] = njit(cache=True, boundscheck=False, error_model="numpy", **options)(fn)
        globals()[fn.__name__] = _COMPILED[fn.__name__]
    return _COMPILED[fn.__name__]


def im2col_nchw(x, KH: int, KW: int, stride, padding, dilation, OH: int, OW: int, purpose: str = "im2col"):
    """The (N, C·KH·KW, OH·OW) column matrix of NCHW ``x`` (float32/float64, C-contiguous), in scratch memory
    named ``purpose`` (valid until the next call with that purpose)."""
    N, C = x.shape[:2]
    cols = scratch(purpose, (N, C * KH * KW, OH * OW), x.dtype)
    stage = scratch(purpose + ".stage", (KW, (dilation[0] * (KH - 1) + OH) * OW), x.dtype)
    _jit(_row_into, inline="always")
    _jit(_im2col_nchw)(x, cols, stage, KH, KW, *stride, *padding, *dilation, OH, OW)
    return cols
