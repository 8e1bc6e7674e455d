"""Strides, views and data layouts: the lecture's NZ example, round trips, and teaching errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aisys.framework import layout as L

# 05LayoutAlgo: a 4×4 matrix stored in NZ with 2×2 fractals
LECTURE_NZ_ORDER = [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]


# ---- views ------------------------------------------------------------------------------------

def test_view_info_of_transpose_and_slice():
    a = np.arange(12, dtype=np.float32).reshape(3, 4).copy()  # owns its memory
    info = L.view_info(a)
    assert (info.shape, info.strides, info.byte_strides, info.offset) == ((3, 4), (4, 1), (16, 4), 0)
    assert info.contiguous and not info.is_view and info.buffer_size == 12

    t = L.view_info(a.T)
    assert (t.shape, t.strides, t.offset, t.contiguous, t.f_contiguous, t.is_view) == ((4, 3), (1, 4), 0, False, True, True)

    s = L.view_info(a[1:, ::2])
    assert (s.shape, s.strides, s.offset, s.byte_offset, s.contiguous) == ((2, 2), (4, 2), 4, 16, False)
    # the address formula reproduces what numpy reads
    for i in range(2):
        for j in range(2):
            assert a.reshape(-1)[s.address((i, j))] == a[1:, ::2][i, j]
    assert "non-contiguous" in str(s) and "offset 4 elements = 16 bytes" in str(s)


def test_view_info_through_a_chain_of_views_and_negative_strides():
    buf = np.arange(24)
    v = buf.reshape(2, 3, 4)[:, ::-1, 1:]
    info = L.view_info(v)
    assert info.strides == (12, -4, 1)
    assert info.offset == 9  # element (0, 0, 0) of the view is buf[0*12 + 2*4 + 1]
    assert buf[info.address((1, 2, 2))] == v[1, 2, 2]


def test_view_info_reads_aisys_like_tensors_through_numpy():
    class FakeTensor:  # anything with .numpy() returning the shared array, like aisys.Tensor
        def __init__(self, arr):
            self._arr = arr

        def numpy(self):
            return self._arr

    info = L.view_info(FakeTensor(np.arange(6).reshape(2, 3).T))
    assert info.strides == (1, 3) and not info.contiguous


def test_as_strided_view_builds_overlapping_windows():
    buf = np.arange(10)
    windows = L.as_strided_view(buf, (3, 4), (2, 1), offset=1)
    assert windows.tolist() == [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8]]
    assert not windows.flags.writeable
    assert np.shares_memory(windows, buf)
    transposed = L.as_strided_view(np.arange(6), (3, 2), (1, 3))
    assert transposed.tolist() == np.arange(6).reshape(2, 3).T.tolist()
    backwards = L.as_strided_view(buf, (5,), (-2,), offset=9)
    assert backwards.tolist() == [9, 7, 5, 3, 1]
    assert L.as_strided_view(buf, (0, 4), (4, 1), offset=10).shape == (0, 4)


def test_as_strided_view_names_the_index_that_reads_outside():
    buf = np.arange(10)
    with pytest.raises(ValueError, match=r"index \(1, 3\) would read element 13 = 3 \+ 1·4 \+ 3·2, past the end.*last valid address 9"):
        L.as_strided_view(buf, (2, 4), (4, 2), offset=3)
    with pytest.raises(ValueError, match=r"index \(1, 0\) would read element -1"):
        L.as_strided_view(buf, (2, 4), (-4, 1), offset=3)
    with pytest.raises(ValueError, match="2 dims but strides"):
        L.as_strided_view(buf, (2, 4), (1,))
    with pytest.raises(ValueError, match="C-contiguous"):
        L.as_strided_view(np.arange(12).reshape(3, 4).T, (2,), (1,))
    with pytest.raises(TypeError, match="integers"):
        L.as_strided_view(buf, (2.0,), (1,))


@settings(max_examples=50, deadline=None)
@given(
    size=st.integers(1, 30),
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
    data=st.data(),
)
def test_as_strided_view_is_checked_exactly(size, shape, data):
    strides = data.draw(st.lists(st.integers(-6, 6), min_size=len(shape), max_size=len(shape)))
    offset = data.draw(st.integers(0, size))
    buf = np.arange(size)
    addresses = [offset]
    for n, s in zip(shape, strides):
        addresses = [a + i * s for a in addresses for i in range(n)]
    inside = all(0 <= a < size for a in addresses)
    if inside:
        view = L.as_strided_view(buf, tuple(shape), tuple(strides), offset)
        assert sorted(view.reshape(-1).tolist()) == sorted(addresses)
    else:
        with pytest.raises(ValueError):
            L.as_strided_view(buf, tuple(shape), tuple(strides), offset)


# ---- address order -------------------------------------------------------------------------------

def test_nz_order_matches_the_lecture():
    assert L.address_order((4, 4), "NZ", h0=2, w0=2).tolist() == LECTURE_NZ_ORDER
    assert L.address_order((4, 4), "zN", h0=2, w0=2).tolist() == LECTURE_NZ_ORDER
    assert L.to_nz(np.arange(16).reshape(4, 4), 2, 2).reshape(-1).tolist() == LECTURE_NZ_ORDER


def test_other_matrix_layouts_on_the_4x4_example():
    order = lambda name: L.address_order((4, 4), name, h0=2, w0=2).tolist()  # noqa: E731
    assert order("ND") == list(range(16))
    assert order("ColMajor") == [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]
    assert order("zZ") == [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    assert order("nZ") == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]


def test_feature_map_layouts():
    shape = (1, 3, 2, 2)
    assert L.address_order(shape, "NCHW").tolist() == list(range(12))
    # NHWC: the three channels of a pixel are neighbours (0, 4, 8 = pixel (0,0) of channels 0,1,2)
    assert L.address_order(shape, "NHWC").tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    # NC1HWC0 with C0 = 2: block 0 holds channels 0-1 per pixel, block 1 channel 2 plus one pad slot
    assert L.address_order(shape, "NC1HWC0", c0=2).tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, -1, 9, -1, 10, -1, 11, -1]
    assert len(L.address_order((1, 5, 1, 1), "NC4HW4")) == 8  # C padded 5 → 8
    assert len(L.address_order((1, 5, 1, 1), "NC1HWC0")) == 16  # default C0 = 16


@pytest.mark.parametrize("layout", L.LAYOUTS)
def test_memory_address_inverts_address_order(layout):
    shape = (5, 7) if layout in L.MATRIX_LAYOUTS else (2, 5, 3, 2)
    order = L.address_order(shape, layout, c0=4, h0=2, w0=4)
    where = L.memory_address(shape, layout, c0=4, h0=2, w0=4).reshape(-1)
    real = order[order >= 0]
    assert sorted(real.tolist()) == list(range(int(np.prod(shape))))  # every element exactly once
    assert np.array_equal(order[where], np.arange(where.size))


def test_address_order_matches_the_conversions():
    A = np.arange(35).reshape(5, 7)
    order = L.address_order(A.shape, "NZ", h0=2, w0=4)
    nz = L._to_nz(A, 2, 4, -1).reshape(-1)
    assert np.array_equal(order, nz)
    x = np.arange(2 * 5 * 3 * 2).reshape(2, 5, 3, 2)
    y = L._nc1hwc0(x, 4, -1).reshape(-1)
    assert np.array_equal(L.address_order(x.shape, "NC1HWC0", c0=4), y)
    assert np.array_equal(L.address_order(x.shape, "NHWC"), L.nchw_to_nhwc(x).reshape(-1))


def test_address_order_errors():
    with pytest.raises(ValueError, match=r"matrix, shape \(H, W\)"):
        L.address_order((1, 3, 4, 4), "NZ")
    with pytest.raises(ValueError, match=r"feature map, shape \(N, C, H, W\)"):
        L.address_order((4, 4), "NHWC")
    with pytest.raises(ValueError, match="ambiguous"):
        L.address_order((4, 4), "nz")
    with pytest.raises(ValueError, match="unknown layout 'CHWN'"):
        L.address_order((1, 1, 1, 1), "CHWN")
    with pytest.raises(ValueError, match="c0 must be a positive integer, got 0"):
        L.address_order((1, 3, 2, 2), "NC1HWC0", c0=0)


# ---- conversions ----------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(
    batch=st.lists(st.integers(1, 3), max_size=2),
    H=st.integers(1, 9), W=st.integers(1, 9), h0=st.integers(1, 5), w0=st.integers(1, 5),
)
def test_nz_round_trip_on_padded_shapes(batch, H, W, h0, w0):
    A = np.random.default_rng(H * 10 + W).standard_normal(tuple(batch) + (H, W)).astype(np.float32)
    Z = L.to_nz(A, h0, w0)
    W1, H1 = -(-W // w0), -(-H // h0)
    assert Z.shape == tuple(batch) + (W1, H1, h0, w0)
    assert Z.dtype == A.dtype and Z.flags["C_CONTIGUOUS"]
    assert np.array_equal(L.from_nz(Z, H, W), A)
    assert np.count_nonzero(Z) == np.count_nonzero(A)  # the padding is zeros
    # element (i, j) sits in fractal (j // w0, i // h0) at (i % h0, j % w0)
    i, j = H - 1, W - 1
    assert Z[(..., j // w0, i // h0, i % h0, j % w0)].tolist() == A[..., i, j].tolist()


def test_nz_errors():
    with pytest.raises(ValueError, match=r"shape \(4,\) with 1 dims"):
        L.to_nz(np.zeros(4), 2, 2)
    with pytest.raises(ValueError, match="h0 must be a positive integer, got 0"):
        L.to_nz(np.zeros((4, 4)), 0, 2)
    with pytest.raises(TypeError, match="w0 must be a positive integer"):
        L.to_nz(np.zeros((4, 4)), 2, 2.5)
    Z = L.to_nz(np.zeros((5, 7)), 2, 4)
    with pytest.raises(ValueError, match=r"W1 = ⌈W/w0⌉ = 1"):
        L.from_nz(Z, 5, 3)
    with pytest.raises(ValueError, match="4-D|dims"):
        L.from_nz(np.zeros((2, 2)), 2, 2)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 2), C=st.integers(1, 20), H=st.integers(1, 4), W=st.integers(1, 4), c0=st.integers(1, 16))
def test_nc1hwc0_round_trip_with_padding(N, C, H, W, c0):
    x = np.random.default_rng(C).standard_normal((N, C, H, W))
    y = L.nchw_to_nc1hwc0(x, c0)
    C1 = -(-C // c0)
    assert y.shape == (N, C1, H, W, c0)
    n, c, h, w = N - 1, C - 1, H - 1, W - 1
    assert y[n, c // c0, h, w, c % c0] == x[n, c, h, w]
    assert np.all(y.reshape(N, C1, H, W, c0).transpose(0, 1, 4, 2, 3).reshape(N, C1 * c0, H, W)[:, C:] == 0)
    assert np.array_equal(L.nc1hwc0_to_nchw(y, C), x)


def test_nc1hwc0_matches_the_lecture_reshape_recipe_when_aligned():
    # 05LayoutAlgo: NCHW → reshape (N, C1, C0, H, W) → transpose (0, 1, 3, 4, 2)
    x = np.arange(2 * 32 * 3 * 3).reshape(2, 32, 3, 3)
    assert np.array_equal(L.nchw_to_nc1hwc0(x), x.reshape(2, 2, 16, 3, 3).transpose(0, 1, 3, 4, 2))


def test_nchw_nhwc_round_trip_and_errors():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    y = L.nchw_to_nhwc(x)
    assert y.shape == (2, 4, 5, 3) and y.flags["C_CONTIGUOUS"] and y[1, 2, 3, 0] == x[1, 0, 2, 3]
    assert np.array_equal(L.nhwc_to_nchw(y), x)
    with pytest.raises(ValueError, match=r"4-D NCHW tensor, got shape \(3, 4\)"):
        L.nchw_to_nhwc(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="4-D NHWC"):
        L.nhwc_to_nchw(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="c0 must be a positive integer, got -4"):
        L.nchw_to_nc1hwc0(x, -4)
    with pytest.raises(ValueError, match="5-D NC1HWC0"):
        L.nc1hwc0_to_nchw(x, 3)
    with pytest.raises(ValueError, match=r"C = 40 does not match C1 = 1 blocks of C0 = 16"):
        L.nc1hwc0_to_nchw(L.nchw_to_nc1hwc0(x), 40)


def test_conversions_accept_aisys_tensors():
    import aisys                     # a broken package must fail here, not skip (it once was importorskip)
    t = aisys.tensor(np.arange(16, dtype=np.float32).reshape(4, 4))
    assert L.to_nz(t, 2, 2).reshape(-1).tolist() == LECTURE_NZ_ORDER
    assert L.view_info(t).strides == (4, 1)
