"""The numpy references of convolution and max pooling (aisys/framework/ops/nn.py) against slow,
obviously-correct loops written here: one Python iteration per output position and kernel tap.

The references take shortcuts for speed (two-stage im2col, per-kernel-row GEMMs with 1-D adds for the
input gradient, gathered tap-major pooling masks, a write-instead-of-add path for disjoint pooling
windows); the attributes drawn below (groups, dilation, stride larger than the kernel, padding,
overlapping and exactly tiling pool windows, ties, NaNs, -inf next to padding) reach every one of them.
"""
from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aisys.framework.ops import nn as N

SETTINGS = settings(max_examples=40, deadline=None)


# ---- slow loops -------------------------------------------------------------------------------------
def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_terms(xshape, wshape, stride, padding, dilation, groups):
    """Yield (n, o, i, j, ci, c, kh, kw, ih, iw) for every multiply of the convolution that reads a real
    (not padding) input element."""
    Nb, C, H, W = xshape
    O, Cg, KH, KW = wshape
    OH = _out_size(H, KH, stride[0], padding[0], dilation[0])
    OW = _out_size(W, KW, stride[1], padding[1], dilation[1])
    Og = O // groups
    for n, o, i, j in itertools.product(range(Nb), range(O), range(OH), range(OW)):
        for c, kh, kw in itertools.product(range(Cg), range(KH), range(KW)):
            ih = i * stride[0] - padding[0] + kh * dilation[0]
            iw = j * stride[1] - padding[1] + kw * dilation[1]
            if 0 <= ih < H and 0 <= iw < W:
                yield n, o, i, j, (o // Og) * Cg + c, c, kh, kw, ih, iw


def conv_loop(x, w, b, *, stride, padding, dilation, groups):
    Nb, O = x.shape[0], w.shape[0]
    OH = _out_size(x.shape[2], w.shape[2], stride[0], padding[0], dilation[0])
    OW = _out_size(x.shape[3], w.shape[3], stride[1], padding[1], dilation[1])
    out = np.zeros((Nb, O, OH, OW))
    for n, o, i, j, ci, c, kh, kw, ih, iw in _conv_terms(x.shape, w.shape, stride, padding, dilation, groups):
        out[n, o, i, j] += float(x[n, ci, ih, iw]) * float(w[o, c, kh, kw])
    if b is not None:
        out += np.asarray(b, np.float64).reshape(1, O, 1, 1)
    return out


def conv_bwd_input_loop(g, w, *, input_shape, stride, padding, dilation, groups):
    gx = np.zeros(input_shape)
    for n, o, i, j, ci, c, kh, kw, ih, iw in _conv_terms(input_shape, w.shape, stride, padding, dilation, groups):
        gx[n, ci, ih, iw] += float(g[n, o, i, j]) * float(w[o, c, kh, kw])
    return gx


def conv_bwd_weight_loop(g, x, *, weight_shape, stride, padding, dilation, groups):
    gw = np.zeros(weight_shape)
    for n, o, i, j, ci, c, kh, kw, ih, iw in _conv_terms(x.shape, weight_shape, stride, padding, dilation, groups):
        gw[o, c, kh, kw] += float(g[n, o, i, j]) * float(x[n, ci, ih, iw])
    return gw


def _windows(shape, kernel_size, stride, padding, dilation):
    """Yield (n, c, i, j, taps) with taps the window's [(ih, iw) or None for padding] in row-major order."""
    Nb, C, H, W = shape
    OH = _out_size(H, kernel_size[0], stride[0], padding[0], dilation[0])
    OW = _out_size(W, kernel_size[1], stride[1], padding[1], dilation[1])
    for n, c, i, j in itertools.product(range(Nb), range(C), range(OH), range(OW)):
        taps = []
        for kh, kw in itertools.product(range(kernel_size[0]), range(kernel_size[1])):
            ih = i * stride[0] - padding[0] + kh * dilation[0]
            iw = j * stride[1] - padding[1] + kw * dilation[1]
            taps.append((ih, iw) if 0 <= ih < H and 0 <= iw < W else None)
        yield n, c, i, j, taps


def _first_max(x, n, c, taps):
    """The window's winning tap: the first NaN if there is one, else the first tap equal to the maximum;
    padding reads as -inf (so it can win only a window whose real values are all -inf)."""
    vals = [float(x[n, c, t[0], t[1]]) if t is not None else -np.inf for t in taps]
    nans = [k for k, v in enumerate(vals) if np.isnan(v)]
    if nans:
        return nans[0], np.nan
    top = max(vals)
    return vals.index(top), top


def maxpool_loop(x, **a):
    Nb, C, H, W = x.shape
    OH = _out_size(H, a["kernel_size"][0], a["stride"][0], a["padding"][0], a["dilation"][0])
    OW = _out_size(W, a["kernel_size"][1], a["stride"][1], a["padding"][1], a["dilation"][1])
    out = np.zeros((Nb, C, OH, OW))
    for n, c, i, j, taps in _windows(x.shape, **a):
        out[n, c, i, j] = _first_max(x, n, c, taps)[1]
    return out


def maxpool_backward_loop(g, x, **a):
    gx = np.zeros(x.shape)
    for n, c, i, j, taps in _windows(x.shape, **a):
        t = taps[_first_max(x, n, c, taps)[0]]
        if t is not None:                          # a padding winner's gradient falls off the input
            gx[n, c, t[0], t[1]] += float(g[n, c, i, j])
    return gx


def maxpool_select_loop(h, x, **a):
    Nb, C, H, W = x.shape
    OH = _out_size(H, a["kernel_size"][0], a["stride"][0], a["padding"][0], a["dilation"][0])
    OW = _out_size(W, a["kernel_size"][1], a["stride"][1], a["padding"][1], a["dilation"][1])
    out = np.zeros((Nb, C, OH, OW), h.dtype)
    for n, c, i, j, taps in _windows(x.shape, **a):
        t = taps[_first_max(x, n, c, taps)[0]]
        if t is not None:
            out[n, c, i, j] = h[n, c, t[0], t[1]]
    return out


# ---- drawn problems ----------------------------------------------------------------------------------
@st.composite
def conv_problems(draw):
    groups = draw(st.integers(1, 3))
    Cg, Og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    KH, KW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    H = draw(st.integers(max(1, dilation[0] * (KH - 1) + 1 - 2 * padding[0]), 7))
    W = draw(st.integers(max(1, dilation[1] * (KW - 1) + 1 - 2 * padding[1]), 7))
    Nb = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    transposed = draw(st.booleans())                # a non-contiguous input view
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((Nb, Cg * groups, H, W))
    if transposed:
        x = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    w = rng.standard_normal((Og * groups, Cg, KH, KW))
    b = rng.standard_normal(Og * groups)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = rng.standard_normal(conv_loop(x, w, b, **attrs).shape)
    return x, w, b, g, attrs


POOL_VALUES = [-1.0, 0.0, 1.0, 2.0, -0.0, np.nan, -np.inf]      # few values: ties everywhere


@st.composite
def pool_problems(draw):
    kind = draw(st.sampled_from(["any", "tiled", "disjoint"]))
    if kind == "tiled":                              # windows tile the input exactly (LeNet's 2×2 / 2)
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        attrs = dict(kernel_size=k, stride=k, padding=(0, 0), dilation=(1, 1))
        H, W = k[0] * draw(st.integers(1, 3)), k[1] * draw(st.integers(1, 3))
    else:
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        span = tuple(d * (kk - 1) + 1 for kk, d in zip(k, dilation))
        if kind == "disjoint":                       # stride ≥ span: no element in two windows, maybe gaps
            stride = (draw(st.integers(span[0], span[0] + 2)), draw(st.integers(span[1], span[1] + 2)))
        else:                                        # overlapping windows when stride < span
            stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
        attrs = dict(kernel_size=k, stride=stride, padding=padding, dilation=dilation)
        H = draw(st.integers(max(1, span[0] - 2 * padding[0]), 7))
        W = draw(st.integers(max(1, span[1] - 2 * padding[1]), 7))
    Nb, C = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    values = draw(st.lists(st.sampled_from(POOL_VALUES), min_size=Nb * C * H * W, max_size=Nb * C * H * W))
    x = np.array(values, np.float64).reshape(Nb, C, H, W)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    OH = _out_size(H, k[0], attrs["stride"][0], attrs["padding"][0], attrs["dilation"][0])
    OW = _out_size(W, k[1], attrs["stride"][1], attrs["padding"][1], attrs["dilation"][1])
    g = rng.integers(-8, 9, (Nb, C, OH, OW)).astype(np.float64)   # small integers: sums are exact in any order
    h = rng.standard_normal(x.shape)
    h[rng.random(x.shape) < 0.2] = -0.0
    return x, g, h, attrs


def _bits_equal(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(f"u{a.itemsize}"),
                                                                            b.view(f"u{b.itemsize}"))


# ---- convolution ---------------------------------------------------------------------------------------
@SETTINGS
@given(conv_problems(), st.sampled_from([np.float64, np.float32]))
def test_conv_refs_match_loops(problem, dtype):
    x, w, b, g, attrs = problem
    x, w, b, g = (a.astype(dtype) for a in (x, w, b, g))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    out = N._conv_ref(x, w, b, **attrs)
    assert out.dtype == dtype and out.flags.c_contiguous
    np.testing.assert_allclose(out, conv_loop(x, w, b, **attrs), **tol)
    gx = N._conv_bwd_input_ref(g, w, input_shape=x.shape, **attrs)
    assert gx.dtype == dtype and gx.shape == x.shape
    np.testing.assert_allclose(gx, conv_bwd_input_loop(g, w, input_shape=x.shape, **attrs), **tol)
    gw = N._conv_bwd_weight_ref(g, x, weight_shape=w.shape, **attrs)
    assert gw.dtype == dtype and gw.shape == w.shape
    np.testing.assert_allclose(gw, conv_bwd_weight_loop(g, x, weight_shape=w.shape, **attrs), **tol)


@SETTINGS
@given(conv_problems())
def test_conv_backward_refs_are_adjoints(problem):
    """⟨conv(x, w), g⟩ = ⟨x, bwd_input(g, w)⟩ = ⟨w, bwd_weight(g, x)⟩ (float64, no bias)."""
    x, w, _, g, attrs = problem
    lhs = np.vdot(N._conv_ref(x, w, None, **attrs), g)
    assert np.isclose(lhs, np.vdot(x, N._conv_bwd_input_ref(g, w, input_shape=x.shape, **attrs)), rtol=1e-10)
    assert np.isclose(lhs, np.vdot(w, N._conv_bwd_weight_ref(g, x, weight_shape=w.shape, **attrs)), rtol=1e-10)


LENET = [((4, 1, 28, 28), (6, 1, 5, 5), 2), ((4, 6, 14, 14), (16, 6, 5, 5), 0)]


@pytest.mark.parametrize("xs, ws, pad", LENET, ids=["conv1", "conv2"])
def test_conv_refs_at_lenet_shapes(xs, ws, pad):
    """The benchmarked shapes (batch cut to 4), against the loops in float64."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    attrs = dict(stride=(1, 1), padding=(pad, pad), dilation=(1, 1), groups=1)
    out = N._conv_ref(x, w, b, **attrs)
    np.testing.assert_allclose(out, conv_loop(x, w, b, **attrs), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(N._conv_bwd_input_ref(g, w, input_shape=xs, **attrs),
                               conv_bwd_input_loop(g, w, input_shape=xs, **attrs), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(N._conv_bwd_weight_ref(g, x, weight_shape=ws, **attrs),
                               conv_bwd_weight_loop(g, x, weight_shape=ws, **attrs), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("low", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
def test_conv_refs_low_precision_dtypes(low):
    """Result dtypes follow the inputs (forward: promotion of x and w; gradients: g's dtype) and the
    values stay within the format's rounding of the float64 loops (products summed in float32)."""
    rng = np.random.default_rng(2)
    attrs = dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2)
    x, w = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((4, 2, 2, 3))
    g = rng.standard_normal(conv_loop(x, w, None, **attrs).shape)
    xl, wl, gl = x.astype(low), w.astype(low), g.astype(low)
    tol = dict(rtol=0.05, atol=0.05)
    out = N._conv_ref(xl, wl, None, **attrs)
    assert out.dtype == low
    np.testing.assert_allclose(out.astype(np.float64), conv_loop(xl, wl, None, **attrs), **tol)
    assert N._conv_ref(xl, wl.astype(np.float32), None, **attrs).dtype == np.float32
    gx = N._conv_bwd_input_ref(gl, wl, input_shape=x.shape, **attrs)
    assert gx.dtype == low
    np.testing.assert_allclose(gx.astype(np.float64), conv_bwd_input_loop(gl, wl, input_shape=x.shape, **attrs), **tol)
    gw = N._conv_bwd_weight_ref(gl, xl, weight_shape=w.shape, **attrs)
    assert gw.dtype == low
    np.testing.assert_allclose(gw.astype(np.float64), conv_bwd_weight_loop(gl, xl, weight_shape=w.shape, **attrs),
                               **tol)


def test_conv_bwd_weight_rounds_low_precision_once():
    """float16 dw sums the per-image products in float32 and rounds once, as one matmul over the whole
    batch does: image 0 contributes 1024 + 0.5 and image 1 contributes 0.5, so dw = 1025 (representable).
    Rounding each image's partial sum to float16 first would give f16(1024.5) + 0.5 -> 1024."""
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    x = np.array([[[[1024.0, 0.5]]], [[[0.5, 0.0]]]], np.float16)
    g = np.ones((2, 1, 1, 2), np.float16)
    assert N._conv_bwd_weight_ref(g, x, weight_shape=(1, 1, 1, 1), **attrs)[0, 0, 0, 0] == 1025


def test_conv_bwd_input_keeps_a_non_finite_weight_local():
    """An inf weight poisons exactly the positions its tap reaches (inf·g), nothing the zero tails of the
    row buffers touch."""
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 1, 1] = np.inf                                   # tap (1, 1) reaches x[1:, 1:]
    g = np.ones((1, 1, 3, 3))
    gx = N._conv_bwd_input_ref(g, w, input_shape=(1, 1, 4, 4), **attrs)
    expected = np.zeros((4, 4))
    expected[1:, 1:] = np.inf
    np.testing.assert_array_equal(gx[0, 0], expected)


# ---- max pooling ------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(pool_problems(), st.sampled_from([np.float64, np.float32]))
def test_maxpool_refs_match_loops(problem, dtype):
    x, g, h, attrs = problem
    x, g, h = x.astype(dtype), g.astype(dtype), h.astype(dtype)
    np.testing.assert_array_equal(N._maxpool_ref(x, **attrs), maxpool_loop(x, **attrs))
    gx = N._maxpool_backward_ref(g, x, **attrs)
    assert gx.dtype == dtype and gx.shape == x.shape
    np.testing.assert_array_equal(gx, maxpool_backward_loop(g, x, **attrs))     # routing exact
    sel = N._maxpool_select_ref(h, x, **attrs)
    assert _bits_equal(sel, maxpool_select_loop(h, x, **attrs))                  # bit for bit, -0.0 kept


@pytest.mark.parametrize("attrs", [
    dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)),   # tiled (LeNet)
    dict(kernel_size=(2, 2), stride=(3, 3), padding=(0, 0), dilation=(1, 1)),   # disjoint with gaps
    dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1)),   # overlapping, padded
    dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(2, 2)),   # stride = kernel, yet overlapping
], ids=["tiled", "gaps", "overlap", "dilated-overlap"])
def test_maxpool_backward_routes_ties_to_the_first_tap(attrs):
    """A window of equal values sends its whole gradient to its first tap in row-major order; a NaN
    anywhere in it wins over the equal values (the first NaN). x[2, 2] is the maximum of every window
    holding it: overlapping windows add their (distinct) gradients there."""
    x = np.zeros((1, 1, 6, 6), np.float32)
    x[0, 0, 3, 4] = np.nan
    x[0, 0, 2, 2] = 5.0
    OH = _out_size(6, attrs["kernel_size"][0], attrs["stride"][0], attrs["padding"][0], attrs["dilation"][0])
    g = np.arange(1, OH * OH + 1, dtype=np.float32).reshape(1, 1, OH, OH)
    np.testing.assert_array_equal(N._maxpool_backward_ref(g, x, **attrs), maxpool_backward_loop(g, x, **attrs))


def test_maxpool_backward_passes_non_finite_gradients_unchanged():
    """The selection goes through bit patterns, so inf, NaN and -0.0 reach the winning element as they are
    and nothing leaks into the other elements (0·inf would be NaN)."""
    attrs = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)         # each window's maximum: its last tap
    g = np.array([[[[np.inf, np.nan], [-np.inf, -0.0]]]], np.float32)
    gx = N._maxpool_backward_ref(g, x, **attrs)[0, 0]
    winners = gx[1::2, 1::2]
    assert np.isposinf(winners[0, 0]) and np.isnan(winners[0, 1]) and np.isneginf(winners[1, 0])
    assert winners[1, 1] == 0
    gx[1::2, 1::2] = 0
    assert np.array_equal(gx, np.zeros((4, 4))) and not np.signbit(gx).any()


def test_maxpool_padding_can_win_an_all_minus_inf_window():
    """Padding reads as -inf, so in a window of -inf values a padding tap that comes first wins and its
    gradient falls off the input: of the four 2×2 windows over the padded 4×4, only the last one starts
    on a real element (x[1, 1])."""
    attrs = dict(kernel_size=(2, 2), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    x = np.full((1, 1, 2, 2), -np.inf)
    g = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    expected = np.array([[[[0.0, 0.0], [0.0, 4.0]]]])
    np.testing.assert_array_equal(maxpool_backward_loop(g, x, **attrs), expected)
    np.testing.assert_array_equal(N._maxpool_backward_ref(g, x, **attrs), expected)


@pytest.mark.parametrize("low", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
def test_maxpool_refs_low_precision_dtypes(low):
    rng = np.random.default_rng(3)
    attrs = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
    x = rng.integers(-2, 3, (2, 3, 6, 4)).astype(low)
    g = rng.integers(-4, 5, (2, 3, 3, 2)).astype(low)
    out = N._maxpool_ref(x, **attrs)
    assert out.dtype == low
    np.testing.assert_array_equal(out.astype(np.float64), maxpool_loop(x, **attrs))
    gx = N._maxpool_backward_ref(g, x, **attrs)
    assert gx.dtype == low
    np.testing.assert_array_equal(gx.astype(np.float64), maxpool_backward_loop(g, x, **attrs))


def test_maxpool_at_lenet_shape():
    """LeNet's pool after a ReLU (many exact-zero ties), against the loop."""
    rng = np.random.default_rng(4)
    attrs = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
    x = np.maximum(rng.standard_normal((2, 6, 28, 28)), 0).astype(np.float32)
    g = rng.standard_normal((2, 6, 14, 14)).astype(np.float32)
    np.testing.assert_array_equal(N._maxpool_ref(x, **attrs), maxpool_loop(x, **attrs))
    np.testing.assert_array_equal(N._maxpool_backward_ref(g, x, **attrs), maxpool_backward_loop(g, x, **attrs))
