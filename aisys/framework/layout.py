"""Where each element of a tensor lives in memory: strides, views and data layouts.

Two ideas, as in the lectures of ZOMI's AISystem course that this module follows:

1. **Strides and views** (张量数据布局, 非连续张量 — lecture ``03Compiler/03Frontend/04LayoutPrinc``).
   Memory is one line of elements. A tensor is a *view* of it: element (i0, i1, …) lives at
   ``offset + Σ i_k · stride_k``. Transposing or slicing changes only shape, strides and offset —
   no data moves — which is why a transposed tensor is "non-contiguous" and ``contiguous()`` copies.
   :func:`view_info` reports these numbers, :func:`as_strided_view` builds any view by hand and
   refuses one that would read outside its buffer.

2. **Data layouts** (数据排布 — lectures ``03Frontend/05LayoutAlgo`` and ``04Inference/06Kernel/07Nc4hw4``;
   Huawei Ascend CANN documentation, "数据排布格式 / Data Formats": ND, NCHW, NHWC, NC1HWC0,
   FRACTAL_NZ). The same logical tensor can be stored in several orders:

   - NCHW: each channel is a contiguous H×W plane (PyTorch, Caffe default).
   - NHWC: the C values of one pixel sit side by side (TensorFlow default, good for 1×1 conv on CPU).
   - NC1HWC0: C split into C1 = ⌈C/C0⌉ blocks of C0 channels, each block stored as H×W×C0;
     C is zero-padded to C1·C0. Ascend uses C0 = 16 for fp16 (its cube unit multiplies 16×16
     tiles) and 32 for int8. MNN's NC4HW4 (lecture 07Nc4hw4, whose text is still a placeholder in
     the course) is the same idea with C0 = 4 for 4-wide SIMD.
   - NZ ("zN", FRACTAL_NZ) for matrices: the H×W matrix is cut into h0×w0 fractals; *inside* a
     fractal elements go row by row (a small "z"), the fractals themselves go column by column
     (a big "N"). ND → NZ is pad → reshape (H1, h0, W1, w0) → transpose to (W1, H1, h0, w0).
     The lecture's 4×4 matrix with 2×2 fractals is stored as
     [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15].
   - zZ (blocks row by row, rows inside) and nZ (blocks row by row, columns inside — used for
     weights) complete the lecture's picture of fractal formats.

Everything takes numpy arrays or aisys Tensors (read through ``.numpy()``) and returns numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "ViewInfo",
    "view_info",
    "as_strided_view",
    "MATRIX_LAYOUTS",
    "TENSOR_LAYOUTS",
    "LAYOUTS",
    "address_order",
    "memory_address",
    "to_nz",
    "from_nz",
    "nchw_to_nhwc",
    "nhwc_to_nchw",
    "nchw_to_nc1hwc0",
    "nc1hwc0_to_nchw",
]

#: Layouts of a 2-D matrix (logical shape (H, W)).
MATRIX_LAYOUTS = ("ND", "ColMajor", "zZ", "nZ", "NZ")
#: Layouts of a 4-D feature map (logical shape (N, C, H, W)).
TENSOR_LAYOUTS = ("NCHW", "NHWC", "NC1HWC0", "NC4HW4")
LAYOUTS = MATRIX_LAYOUTS + TENSOR_LAYOUTS

PAD = -1  #: marks a padding slot in :func:`address_order`


def _as_array(a, who: str) -> np.ndarray:
    """numpy arrays pass through (views kept); aisys Tensors give their array via ``.numpy()``."""
    if isinstance(a, np.ndarray):
        return a
    numpy_method = getattr(a, "numpy", None)
    if callable(numpy_method):
        arr = numpy_method()
        if isinstance(arr, np.ndarray):
            return arr
    try:
        return np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy's own message is kept
        raise TypeError(f"{who}: cannot read {type(a).__name__} as an array ({exc})") from exc


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _positive_int(value, name: str, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who}: {name} must be a positive integer, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# strides and views
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ViewInfo:
    """How a view maps indices to its buffer: address(i) = offset + Σ i_k · strides_k (in elements)."""

    shape: tuple[int, ...]
    strides: tuple[int, ...]
    byte_strides: tuple[int, ...]
    itemsize: int
    offset: int
    byte_offset: int
    buffer_size: int
    c_contiguous: bool
    f_contiguous: bool
    is_view: bool

    @property
    def contiguous(self) -> bool:
        """Row-major contiguous, what torch's ``is_contiguous()`` means."""
        return self.c_contiguous

    def address(self, index: Sequence[int]) -> int:
        """Element address in the buffer of the logical element at ``index``."""
        if len(index) != len(self.shape):
            raise ValueError(f"index {tuple(index)} has {len(index)} entries, the view has {len(self.shape)} dims")
        return self.offset + sum(int(i) * s for i, s in zip(index, self.strides))

    def __str__(self) -> str:
        kind = "view" if self.is_view else "owner"
        contiguity = "C-contiguous" if self.c_contiguous else ("F-contiguous" if self.f_contiguous else "non-contiguous")
        return (
            f"shape {self.shape}, strides {self.strides} elements = {self.byte_strides} bytes "
            f"(itemsize {self.itemsize}), offset {self.offset} elements = {self.byte_offset} bytes, "
            f"{contiguity}, {kind} of a {self.buffer_size}-element buffer"
        )


def _root_buffer(arr: np.ndarray) -> np.ndarray:
    """Follow ``.base`` to the array that owns the memory (stops at a non-array base)."""
    root = arr
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root


def view_info(a) -> ViewInfo:
    """Shape, strides (elements and bytes), offset into the owning buffer, and contiguity of ``a``.

    >>> str(view_info(np.arange(12).reshape(3, 4).T))
    'shape (4, 3), strides (1, 4) elements = (8, 32) bytes (itemsize 8), offset 0 elements = 0 bytes, F-contiguous, view of a 12-element buffer'
    """
    arr = _as_array(a, "view_info")
    itemsize = arr.itemsize
    root = _root_buffer(arr)
    byte_offset = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    if any(s % itemsize for s in arr.strides) or byte_offset % itemsize:
        raise ValueError(
            f"view_info: strides {arr.strides} bytes or offset {byte_offset} bytes are not whole "
            f"elements of {itemsize} bytes (a view across a dtype change); view it with its own dtype"
        )
    return ViewInfo(
        shape=tuple(arr.shape),
        strides=tuple(s // itemsize for s in arr.strides),
        byte_strides=tuple(arr.strides),
        itemsize=itemsize,
        offset=byte_offset // itemsize,
        byte_offset=byte_offset,
        buffer_size=root.nbytes // itemsize,
        c_contiguous=bool(arr.flags["C_CONTIGUOUS"]),
        f_contiguous=bool(arr.flags["F_CONTIGUOUS"]),
        is_view=root is not arr,
    )


def as_strided_view(base, shape: Sequence[int], strides: Sequence[int], offset: int = 0, *, writeable: bool = False) -> np.ndarray:
    """A view of ``base``'s memory with the given shape, strides and offset (all in elements).

    ``base`` must be contiguous (its memory is read as one flat line). Unlike
    ``numpy.lib.stride_tricks.as_strided``, the view is checked first: if any index would land
    outside the buffer, a ValueError names that index and the address it would read. Views are
    read-only unless ``writeable=True`` (overlapping views make writes surprising).
    """
    arr = _as_array(base, "as_strided_view")
    if not arr.flags["C_CONTIGUOUS"]:
        raise ValueError(
            f"as_strided_view: base must be C-contiguous (one flat line of memory), got a view with "
            f"strides {view_info(arr).strides}; pass np.ascontiguousarray(base) or its .base"
        )
    flat = arr.reshape(-1)
    shape = tuple(shape)
    strides = tuple(strides)
    if len(shape) != len(strides):
        raise ValueError(f"as_strided_view: shape {shape} has {len(shape)} dims but strides {strides} has {len(strides)}")
    for name, seq in (("shape", shape), ("strides", strides)):
        for v in seq:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"as_strided_view: {name} {seq} must hold integers, found {v!r}")
    if any(n < 0 for n in shape):
        raise ValueError(f"as_strided_view: shape {shape} has a negative size")
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)):
        raise TypeError(f"as_strided_view: offset must be an integer, got {offset!r}")
    size = flat.size
    where = f"(shape {shape}, strides {strides}, offset {offset}, buffer of {size} elements)"
    if 0 not in shape:
        # The extreme addresses are reached at corners: last index for positive strides, 0 otherwise.
        high_index = tuple(n - 1 if s > 0 else 0 for n, s in zip(shape, strides))
        low_index = tuple(n - 1 if s < 0 else 0 for n, s in zip(shape, strides))
        high = offset + sum(i * s for i, s in zip(high_index, strides))
        low = offset + sum(i * s for i, s in zip(low_index, strides))
        if high >= size:
            raise ValueError(
                f"as_strided_view: index {high_index} would read element {high} = {offset} + "
                f"{' + '.join(f'{i}·{s}' for i, s in zip(high_index, strides)) or '0'}, past the end of the "
                f"buffer (last valid address {size - 1}) {where}; make the shape, strides or offset smaller"
            )
        if low < 0:
            raise ValueError(
                f"as_strided_view: index {low_index} would read element {low} (before the buffer starts) {where}; "
                f"raise the offset or use non-negative strides"
            )
    elif not 0 <= offset <= size:
        raise ValueError(f"as_strided_view: offset {offset} lies outside the buffer {where}")
    itemsize = flat.itemsize
    start = flat[offset:] if 0 <= offset < size else flat[size:]
    return np.lib.stride_tricks.as_strided(
        start, shape=shape, strides=tuple(s * itemsize for s in strides), writeable=writeable
    )


# ---------------------------------------------------------------------------------------------
# address order of layouts
# ---------------------------------------------------------------------------------------------

def _canonical_layout(layout: str) -> str:
    """Exact names first ('NZ' and 'nZ' differ only in case), then aliases, then unique case-folds."""
    if not isinstance(layout, str):
        raise TypeError(f"layout must be a name such as 'NZ' or 'NHWC', got {type(layout).__name__}")
    if layout in LAYOUTS:
        return layout
    aliases = {"zn": "NZ", "fractal_nz": "NZ", "row-major": "ND", "rowmajor": "ND", "col-major": "ColMajor",
               "colmajor": "ColMajor", "column-major": "ColMajor"}
    if layout.lower() in aliases:
        return aliases[layout.lower()]
    folded = [name for name in LAYOUTS if name.lower() == layout.lower()]
    if len(folded) == 1:
        return folded[0]
    if folded:
        raise ValueError(f"layout {layout!r} is ambiguous: {' or '.join(folded)}? (names are case-sensitive)")
    raise ValueError(
        f"unknown layout {layout!r}; matrix layouts (shape (H, W)): {', '.join(MATRIX_LAYOUTS)}; "
        f"feature-map layouts (shape (N, C, H, W)): {', '.join(TENSOR_LAYOUTS)}"
    )


def _fractal_order(index: np.ndarray, h0: int, w0: int, blocks: str, inside: str) -> np.ndarray:
    """Memory order of a padded matrix of logical indices cut into h0×w0 fractals.

    ``blocks``: "row" (fractals row by row, a big Z) or "col" (column by column, a big N);
    ``inside``: "row" (row by row inside a fractal, small z) or "col" (small n).
    """
    lead, (H, W) = index.shape[:-2], index.shape[-2:]
    H1, W1 = _ceil_div(H, h0), _ceil_div(W, w0)
    padded = np.full(lead + (H1 * h0, W1 * w0), PAD, dtype=np.int64)
    padded[..., :H, :W] = index
    tiles = padded.reshape(lead + (H1, h0, W1, w0))
    k = len(lead)
    block_axes = (k + 0, k + 2) if blocks == "row" else (k + 2, k + 0)  # (H1, W1) or (W1, H1)
    inner_axes = (k + 1, k + 3) if inside == "row" else (k + 3, k + 1)  # (h0, w0) or (w0, h0)
    return tiles.transpose(tuple(range(k)) + block_axes + inner_axes).reshape(-1)


def address_order(shape: Sequence[int], layout: str, *, c0: int = 16, h0: int = 16, w0: int = 16) -> np.ndarray:
    """Which logical element sits at each memory address, in address order.

    Logical elements are numbered row-major in the *logical* shape: (H, W) for matrix layouts,
    (N, C, H, W) for feature-map layouts. Padding slots (NC1HWC0's extra channels, NZ's partial
    fractals) are ``-1``. So ``address_order((4, 4), "NZ", h0=2, w0=2)`` is the lecture's
    [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15].
    """
    name = _canonical_layout(layout)
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"address_order: shape {shape} has a negative size")
    index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    if name in MATRIX_LAYOUTS:
        if len(shape) != 2:
            raise ValueError(
                f"address_order: layout {name} is for a matrix, shape (H, W); got shape {shape} with "
                f"{len(shape)} dims (feature-map layouts: {', '.join(TENSOR_LAYOUTS)})"
            )
        h0 = _positive_int(h0, "h0", "address_order")
        w0 = _positive_int(w0, "w0", "address_order")
        if name == "ND":
            return index.reshape(-1)
        if name == "ColMajor":
            return index.T.reshape(-1)
        blocks, inside = {"zZ": ("row", "row"), "nZ": ("row", "col"), "NZ": ("col", "row")}[name]
        return _fractal_order(index, h0, w0, blocks, inside)
    if len(shape) != 4:
        raise ValueError(
            f"address_order: layout {name} is for a feature map, shape (N, C, H, W); got shape {shape} "
            f"with {len(shape)} dims (matrix layouts: {', '.join(MATRIX_LAYOUTS)})"
        )
    if name == "NCHW":
        return index.reshape(-1)
    if name == "NHWC":
        return index.transpose(0, 2, 3, 1).reshape(-1)
    block = 4 if name == "NC4HW4" else _positive_int(c0, "c0", "address_order")
    return _nc1hwc0(index, block, PAD).reshape(-1)


def memory_address(shape: Sequence[int], layout: str, *, c0: int = 16, h0: int = 16, w0: int = 16) -> np.ndarray:
    """The memory address of every logical element (an int array of the logical ``shape``).

    The inverse of :func:`address_order`: ``memory_address(s, L).ravel()[address_order(s, L)[a]] == a``
    for every non-padding address ``a``. This is what a picture colours each cell by.
    """
    order = address_order(shape, layout, c0=c0, h0=h0, w0=w0)
    addresses = np.empty(int(np.prod(tuple(shape))), dtype=np.int64)
    real = order != PAD
    addresses[order[real]] = np.nonzero(real)[0]
    return addresses.reshape(tuple(shape))


# ---------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------

def to_nz(A, h0: int = 16, w0: int = 16) -> np.ndarray:
    """Store a matrix (or a batch of matrices, shape (..., H, W)) in Ascend's NZ fractal format.

    Zero-pads H up to H1·h0 and W up to W1·w0, cuts (H1, h0, W1, w0), and returns the array of
    shape (..., W1, H1, h0, w0): its row-major order *is* the NZ memory order — fractals column by
    column, each fractal row by row (Ascend CANN "FRACTAL_NZ"; lecture 05LayoutAlgo).
    """
    arr = _as_array(A, "to_nz")
    if arr.ndim < 2:
        raise ValueError(f"to_nz: expected a matrix of shape (..., H, W), got shape {arr.shape} with {arr.ndim} dims")
    h0 = _positive_int(h0, "h0", "to_nz")
    w0 = _positive_int(w0, "w0", "to_nz")
    return _to_nz(arr, h0, w0, 0)


def _to_nz(arr: np.ndarray, h0: int, w0: int, pad_value) -> np.ndarray:
    lead, (H, W) = arr.shape[:-2], arr.shape[-2:]
    H1, W1 = _ceil_div(H, h0), _ceil_div(W, w0)
    padded = np.full(lead + (H1 * h0, W1 * w0), pad_value, dtype=arr.dtype)
    padded[..., :H, :W] = arr
    k = len(lead)
    tiles = padded.reshape(lead + (H1, h0, W1, w0))
    return np.ascontiguousarray(tiles.transpose(tuple(range(k)) + (k + 2, k + 0, k + 1, k + 3)))


def from_nz(Z, H: int, W: int) -> np.ndarray:
    """Undo :func:`to_nz`: (..., W1, H1, h0, w0) → (..., H, W), dropping the padding."""
    arr = _as_array(Z, "from_nz")
    if arr.ndim < 4:
        raise ValueError(
            f"from_nz: expected NZ data of shape (..., W1, H1, h0, w0), got shape {arr.shape} with {arr.ndim} dims"
        )
    H = _positive_int(H, "H", "from_nz")
    W = _positive_int(W, "W", "from_nz")
    lead, (W1, H1, h0, w0) = arr.shape[:-4], arr.shape[-4:]
    if H > H1 * h0 or W > W1 * w0 or H <= (H1 - 1) * h0 or W <= (W1 - 1) * w0:
        raise ValueError(
            f"from_nz: a ({H}, {W}) matrix does not give NZ shape (W1, H1, h0, w0) = {(W1, H1, h0, w0)}: "
            f"expected W1 = ⌈W/w0⌉ = {_ceil_div(W, w0)} and H1 = ⌈H/h0⌉ = {_ceil_div(H, h0)}; "
            f"pass the matrix's original H and W"
        )
    k = len(lead)
    tiles = arr.transpose(tuple(range(k)) + (k + 1, k + 2, k + 0, k + 3))  # (..., H1, h0, W1, w0)
    return np.ascontiguousarray(tiles.reshape(lead + (H1 * h0, W1 * w0))[..., :H, :W])


def _check_rank4(arr: np.ndarray, who: str, names: str) -> None:
    if arr.ndim != 4:
        raise ValueError(f"{who}: expected a 4-D {names} tensor, got shape {arr.shape} with {arr.ndim} dims")


def nchw_to_nhwc(x) -> np.ndarray:
    """(N, C, H, W) → (N, H, W, C), stored contiguously (a real copy, like a CASTDATA node)."""
    arr = _as_array(x, "nchw_to_nhwc")
    _check_rank4(arr, "nchw_to_nhwc", "NCHW")
    return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))


def nhwc_to_nchw(x) -> np.ndarray:
    """(N, H, W, C) → (N, C, H, W), stored contiguously."""
    arr = _as_array(x, "nhwc_to_nchw")
    _check_rank4(arr, "nhwc_to_nchw", "NHWC")
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))


def _nc1hwc0(arr: np.ndarray, c0: int, pad_value) -> np.ndarray:
    N, C, H, W = arr.shape
    C1 = _ceil_div(C, c0)
    padded = np.full((N, C1 * c0, H, W), pad_value, dtype=arr.dtype)
    padded[:, :C] = arr
    return np.ascontiguousarray(padded.reshape(N, C1, c0, H, W).transpose(0, 1, 3, 4, 2))


def nchw_to_nc1hwc0(x, c0: int = 16) -> np.ndarray:
    """(N, C, H, W) → (N, C1, H, W, C0) with C1 = ⌈C/C0⌉; channels C … C1·C0−1 are zeros.

    The lecture's recipe (05LayoutAlgo): pad C, reshape to (N, C1, C0, H, W), then move C0 last.
    """
    arr = _as_array(x, "nchw_to_nc1hwc0")
    _check_rank4(arr, "nchw_to_nc1hwc0", "NCHW")
    c0 = _positive_int(c0, "c0", "nchw_to_nc1hwc0")
    return _nc1hwc0(arr, c0, 0)


def nc1hwc0_to_nchw(y, C: int) -> np.ndarray:
    """(N, C1, H, W, C0) → (N, C, H, W), dropping the padding channels (needs the original C)."""
    arr = _as_array(y, "nc1hwc0_to_nchw")
    if arr.ndim != 5:
        raise ValueError(f"nc1hwc0_to_nchw: expected a 5-D NC1HWC0 tensor, got shape {arr.shape} with {arr.ndim} dims")
    C = _positive_int(C, "C", "nc1hwc0_to_nchw")
    N, C1, H, W, c0 = arr.shape
    if not (C1 - 1) * c0 < C <= C1 * c0:
        raise ValueError(
            f"nc1hwc0_to_nchw: C = {C} does not match C1 = {C1} blocks of C0 = {c0} "
            f"(C must satisfy {(C1 - 1) * c0} < C ≤ {C1 * c0}); pass the original channel count"
        )
    return np.ascontiguousarray(arr.transpose(0, 1, 4, 2, 3).reshape(N, C1 * c0, H, W)[:, :C])
