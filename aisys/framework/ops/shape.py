"""Shape and data-movement ops: views (reshape, permute, broadcast), indexing, concat, pad, gather.

Most are *injective* for fusion: every output element reads exactly one input element.
"""
from __future__ import annotations

import builtins
import functools

import numpy as np

from ..dtypes import from_numpy, promote
from ..errors import ShapeError
from ..registry import FusionKind as K, QuantizedForm, Spec, addressing, defop, not_lowerable, vector
from ..tensor import Tensor, apply, as_tensor
from ._common import (broadcast_shapes, inverse_permutation, movement_cost, norm_dims, prod, sum_to_array,
                      zero_cost)

_VIEW = addressing("a view: the compiler turns it into addresses, no data moves")
_BACKWARD = ("a training (backward) op: the chip model lowers inference graphs; lower the forward graph "
             "(aisys.trace of the model, not of a training step)")

INJ = K.INJECTIVE


# ---- reshape ------------------------------------------------------------------------------------
def _resolve_shape(op, src, shape):
    for s in shape:
        if type(s) is not builtins.int and (isinstance(s, (builtins.bool, builtins.float))
                                            or not hasattr(s, "__index__")):
            raise TypeError(f"{op}: a shape must be whole numbers, got {s!r} ({type(s).__name__}) in {tuple(shape)}; "
                            f"a size computed by division needs int(...) or //")
    shape = tuple(builtins.int(s) for s in shape)
    n = prod(src)
    if shape.count(-1) > 1:
        raise ShapeError(op, f"only one dimension can be -1, got {shape}", shapes=(src, shape))
    if -1 in shape:
        known = prod(s for s in shape if s != -1)
        if known == 0 or n % known:
            raise ShapeError(op, f"cannot infer -1 in {shape} for {n} elements of shape {tuple(src)}",
                             shapes=(src, shape), rule="the product of the known sizes must divide the element count")
        shape = tuple(n // known if s == -1 else s for s in shape)
    if prod(shape) != n:
        raise ShapeError(op, f"cannot reshape {tuple(src)} ({n} elements) into {shape} ({prod(shape)} elements)",
                         shapes=(src, shape), rule="reshape keeps the number of elements")
    return shape


def _unravel(flat, shape) -> tuple:
    """Row-major position of flat element ``flat`` in ``shape`` (index arithmetic, any consumer's)."""
    idx, stride = [], 1
    for d in range(len(shape) - 1, -1, -1):
        n = shape[d]
        q = flat if stride == 1 else flat // stride
        idx.append(0 if n == 1 else q if d == 0 else q % n)
        stride *= n
    return tuple(reversed(idx))


def _ravel(index, shape):
    flat, stride = 0, 1
    for i, n in zip(reversed(index), reversed(shape)):
        if n != 1:
            flat = flat + i * stride
        stride *= n
    return flat


def _reshape_index(at, x, shape):
    """Output element k in row-major order is input element k: ravel the output position, unravel it in x."""
    return x[_unravel(_ravel(at.index, at.shape), x.shape)]


def _same_index(at, x):
    return x[at.index]


defop("reshape", infer=lambda x, shape: Spec(_resolve_shape("reshape", tuple(x.shape), shape), x.dtype),
      ref=lambda x, shape: np.reshape(x, shape), fusion=INJ, index=_reshape_index, cost=zero_cost, chip=_VIEW,
      vjp=lambda g, out, x, shape: (g.reshape(x.shape),),
      vjp_np=lambda g, out, x, shape: (np.reshape(g, x._data.shape),),
      jvp=lambda t, out, x, shape: t[0].reshape(out.shape), torch_name="torch.reshape", saved=(),
      quantized=QuantizedForm("same"))


# ---- permute ------------------------------------------------------------------------------------
def _permute_infer(x, dims):
    nd = len(x.shape)
    if len(dims) != nd or (dims != (1, 0) and sorted(d % max(nd, 1) for d in dims) != list(range(nd))):
        raise ShapeError("permute", f"dims {tuple(dims)} is not a permutation of 0..{nd - 1} for shape {tuple(x.shape)}",
                         shapes=(x.shape,), rule="give every dimension exactly once")
    return Spec(tuple(x.shape[d] for d in dims), x.dtype)


def _permute_index(at, x, dims):
    """Output axis k is input axis dims[k]."""
    src = [0] * x.ndim
    for k, d in enumerate(dims):
        src[d % x.ndim] = at.index[k]
    return x[tuple(src)]


defop("permute", infer=_permute_infer, ref=lambda x, dims: np.transpose(x, dims), fusion=INJ, index=_permute_index,
      cost=movement_cost, doc="Returns a strided view (like torch); bytes counted as if materialized.",
      chip=addressing("a transpose the compiler folds into the consumer's addressing (strides)"),
      vjp=lambda g, out, x, dims: (g.permute(*np.argsort(dims).tolist()),),
      vjp_np=lambda g, out, x, dims: (np.transpose(g, inverse_permutation(dims)),),
      jvp=lambda t, out, x, dims: t[0].permute(*dims), saved=(), quantized=QuantizedForm("same"))


# ---- broadcast_to ------------------------------------------------------------------------------
def _bcast_infer(x, shape):
    shape = tuple(shape)
    if broadcast_shapes("broadcast_to", tuple(x.shape), shape) != shape:
        raise ShapeError("broadcast_to", f"cannot broadcast {tuple(x.shape)} to {shape}", shapes=(x.shape, shape),
                         rule="sizes must match or be 1 in the source, aligned from the right")
    return Spec(shape, x.dtype)


def _broadcast_index(at, x, shape):
    """Right-aligned; a size-1 input dimension reads index 0 (stride 0)."""
    lead = len(at.shape) - x.ndim
    return x[tuple(0 if s == 1 else at.index[lead + d] for d, s in enumerate(x.shape))]


defop("broadcast_to", infer=_bcast_infer, ref=lambda x, shape: np.broadcast_to(x, shape), fusion=K.BROADCAST,
      index=_broadcast_index,
      cost=movement_cost, scalar=lambda x, shape: x,
      chip=addressing("a broadcast reads the same element again: an address with stride 0"),
      vjp=lambda g, out, x, shape: (g.sum_to(x.shape),),
      vjp_np=lambda g, out, x, shape: (sum_to_array(g, x._data.shape),),
      jvp=lambda t, out, x, shape: t[0].broadcast_to(shape), torch_name="torch.broadcast_to", saved=())

defop("contiguous", infer=lambda x: Spec(tuple(x.shape), x.dtype), ref=np.ascontiguousarray, fusion=INJ,
      index=_same_index,
      cost=movement_cost, vjp=lambda g, out, x: (g,), jvp=lambda t, out, x: t[0], vjp_np=lambda g, out, x: (g,),
      chip=addressing("the chip's DMA writes tiles in the layout the next layer reads"),
      doc="Copy a strided view into row-major order (a no-op when already contiguous).", saved=(),
      quantized=QuantizedForm("same"))


defop("clone", infer=lambda x: Spec(tuple(x.shape), x.dtype), ref=lambda x: np.array(x, order="C"), fusion=INJ,
      index=_same_index,
      cost=movement_cost, vjp=lambda g, out, x: (g,), jvp=lambda t, out, x: t[0], vjp_np=lambda g, out, x: (g,),
      chip=vector("copy"), saved=(), torch_name="torch.clone",
      doc="A copy with its own storage (what x.clone() and an in-place op's result record).")


# ---- indexing ------------------------------------------------------------------------------------
def _norm_key(key):
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
        elif isinstance(k, list):
            k = np.asarray(k)
        if isinstance(k, np.ndarray) and not (k.dtype == np.bool_ or np.issubdtype(k.dtype, np.integer)):
            raise TypeError(f"index: index arrays must be integer or bool, got {k.dtype}")
        out.append(k)
    return tuple(out)


def _index_infer(x, key):
    probe = np.broadcast_to(np.zeros((), np.bool_), tuple(x.shape))
    try:
        shape = probe[key].shape
    except IndexError as e:
        raise ShapeError("index", f"{e} (tensor of shape {tuple(x.shape)})", shapes=(x.shape,),
                         rule="indices must lie in [-size, size) for each dimension") from None
    return Spec(tuple(shape), x.dtype)


def _has_array(key):
    return any(isinstance(k, np.ndarray) for k in key)


def _index_cost(in_specs, out_spec, key):
    return zero_cost(in_specs, out_spec) if not _has_array(key) else movement_cost(in_specs, out_spec)


def _index_index(at, x, key):
    """numpy's indexing as an index map. Ints and slices are affine in the output position; None adds a size-1
    axis; integer (and boolean, through nonzero) arrays are advanced indices: broadcast together, their
    axes go where they stand if they are adjacent in the key, else first, and ints among them count as
    0-d arrays (numpy's rules)."""
    entries = []
    key = key if isinstance(key, tuple) else (key,)
    n_used = builtins.sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 0 if k is None or
                          k is Ellipsis else 1 for k in key)
    for k in key:
        if k is Ellipsis:
            entries += [slice(None)] * (x.ndim - n_used)
        elif isinstance(k, np.ndarray) and k.dtype == np.bool_:
            entries += list(np.nonzero(k))
        else:
            entries.append(k)
    entries += [slice(None)] * (x.ndim - builtins.sum(e is not None for e in entries))
    arrays = any(isinstance(e, np.ndarray) for e in entries)
    adv = [p for p, e in enumerate(entries) if isinstance(e, np.ndarray) or (arrays and not isinstance(e, slice)
                                                                              and e is not None)]
    bshape = np.broadcast_shapes(*[np.shape(entries[p]) for p in adv]) if adv else ()
    adjacent = bool(adv) and adv == list(range(adv[0], adv[-1] + 1))
    out = list(at.index)
    pos = iter(out[len(bshape):] if adv and not adjacent else out)
    b_index = tuple(out[:len(bshape)]) if adv and not adjacent else None
    src, dim = [], 0
    for p, e in enumerate(entries):
        if p in adv:
            if b_index is None:                         # adjacent: the broadcast axes stand at the first one
                b_index = tuple(next(pos) for _ in bshape)
            n = x.shape[dim]
            v = at.table(np.ascontiguousarray(np.broadcast_to(np.asarray(e, np.int64), bshape)))[b_index]
            src.append(at.where(v < 0, v + n, v))
            dim += 1
        elif e is None:
            next(pos)
        elif isinstance(e, slice):
            start, _, step = e.indices(x.shape[dim])
            src.append(start + next(pos) * step)
            dim += 1
        else:
            src.append(builtins.int(e) % x.shape[dim])
            dim += 1
    return x[tuple(src)]


defop("index", infer=_index_infer, ref=lambda x, key: x[key], fusion=INJ, cost=_index_cost, chip=vector("copy"),
      index=_index_index,
      takes_indices=True,
      vjp=lambda g, out, x, key: (apply("index_backward", g, key=key, shape=tuple(x.shape)),),
      jvp=lambda t, out, x, key: apply("index", t[0], key=key),
      doc="x[key] for ints, slices, None, Ellipsis, integer and bool arrays (numpy semantics).", saved=(),
      quantized=QuantizedForm("same"))


def _index_backward_ref(g, key, shape):
    z = np.zeros(shape, g.dtype)
    if _has_array(key):
        np.add.at(z, key, g)          # repeated indices accumulate
    else:
        z[key] = g
    return z


defop("index_backward", infer=lambda g, key, shape: Spec(tuple(shape), g.dtype), ref=_index_backward_ref,
      fusion=K.OPAQUE, cost=movement_cost, chip=not_lowerable(_BACKWARD),
      vjp=lambda h, out, g, key, shape: (apply("index", h, key=key),),
      jvp=lambda t, out, g, key, shape: apply("index_backward", t[0], key=key, shape=shape),
      doc="Scatter-add a gradient into zeros of the indexed tensor's shape.", saved=())


# ---- concat --------------------------------------------------------------------------------------
def _concat_infer(*xs, dim=0):
    if not xs:
        raise ShapeError("concat", "needs at least one tensor")
    nd = len(xs[0].shape)
    d = norm_dims("concat", dim, nd, xs[0].shape)[0]
    dt = xs[0].dtype
    for i, x in enumerate(xs[1:], 1):
        if len(x.shape) != nd or any(a != b for j, (a, b) in enumerate(zip(x.shape, xs[0].shape)) if j != d):
            raise ShapeError("concat", f"tensor {i} has shape {tuple(x.shape)} but tensor 0 has {tuple(xs[0].shape)}",
                             shapes=[tuple(x.shape) for x in xs],
                             rule=f"all sizes must match except along dim {dim}")
        dt = promote(dt, x.dtype)
    shape = list(xs[0].shape)
    shape[d] = builtins.sum(x.shape[d] for x in xs)
    return Spec(tuple(shape), dt)


def _concat_vjp(g, out, *xs, dim=0):
    d = dim % g.ndim
    grads, start = [], 0
    for x in xs:
        n = x.shape[d]
        key = (slice(None),) * d + (slice(start, start + n),)
        grads.append(apply("index", g, key=key))
        start += n
    return tuple(grads)


def _concat_ref(*xs, dim=0):
    if len({x.dtype for x in xs}) > 1:   # numpy cannot promote float16/ints with bfloat16: use aisys's lattice
        dt = functools.reduce(promote, [from_numpy(x.dtype) for x in xs]).np
        xs = [x.astype(dt, copy=False) for x in xs]
    return np.concatenate(xs, axis=dim)


def _concat_index(at, *xs, dim=0):
    """Piece k covers [start_k, start_k + n_k) along dim: the last piece, else the one before where the
    position is below its start, and so on (each read clamped into its piece)."""
    d = dim % len(at.shape)
    i = at.index[d]
    starts = [0]
    for x in xs[:-1]:
        starts.append(starts[-1] + x.shape[d])

    def read(k):
        idx = list(at.index)
        idx[d] = (i - starts[k]) % xs[k].shape[d] if len(xs) > 1 else i
        return xs[k][tuple(idx)]
    value = read(len(xs) - 1)
    for k in range(len(xs) - 2, -1, -1):
        value = at.where(i < starts[k + 1], read(k), value)
    return value


defop("concat", infer=_concat_infer, ref=_concat_ref, fusion=INJ, chip=vector("copy"), index=_concat_index,
      cost=lambda ins, out, dim=0: movement_cost([out], out), vjp=_concat_vjp,
      jvp=lambda t, out, *xs, dim=0: apply("concat", *[ti if ti is not None else x * 0.0 for ti, x in zip(t, xs)], dim=dim),
      torch_name="torch.cat", saved=())


# ---- pad -----------------------------------------------------------------------------------------
def _pad_widths(ndim, pad):
    """torch.nn.functional.pad order: (last_lo, last_hi, second_last_lo, ...)."""
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ShapeError("pad", f"pad {tuple(pad)} must have an even length of at most 2×{ndim}")
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        lo, hi = builtins.int(pad[2 * i]), builtins.int(pad[2 * i + 1])
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: negative padding {tuple(pad)} is not supported; slice the tensor instead")
        widths[ndim - 1 - i] = (lo, hi)
    return widths


def _pad_infer(x, pad, value=0.0):
    w = _pad_widths(len(x.shape), pad)
    return Spec(tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, w)), x.dtype)


def _pad_vjp(g, out, x, pad, value=0.0):
    w = _pad_widths(x.ndim, pad)
    key = tuple(slice(lo, lo + s) for s, (lo, hi) in zip(x.shape, w))
    return (apply("index", g, key=key),)


def _pad_index(at, x, pad, value=0.0):
    """Inside the original box, read x (the read clamped into range); outside, the fill value."""
    inside, src = [], []
    for i, n, (lo, hi) in zip(at.index, x.shape, _pad_widths(x.ndim, pad)):
        if lo == 0 and hi == 0:
            src.append(i)
            continue
        j = i - lo
        inside += [j >= 0, j < n]
        src.append(j % n)
    return at.where(at.all(*inside), x[tuple(src)], value) if inside else x[tuple(src)]


defop("pad", infer=_pad_infer, ref=lambda x, pad, value=0.0: np.pad(x, _pad_widths(x.ndim, pad), constant_values=value),
      fusion=INJ, index=_pad_index, cost=movement_cost, vjp=_pad_vjp, chip=vector("copy"),
      jvp=lambda t, out, x, pad, value=0.0: apply("pad", t[0], pad=pad, value=0.0),
      doc="Constant padding with torch's pad order (last dim first).", saved=())


# ---- gather / scatter_add ----------------------------------------------------------------------------
def _gather_infer(x, index, dim):
    if np.issubdtype(index.dtype.np, np.floating) or len(index.shape) != len(x.shape):
        raise ShapeError("gather", f"index must be an integer tensor with the same rank as the input: "
                         f"input {tuple(x.shape)}, index {tuple(index.shape)} ({index.dtype.name})",
                         shapes=(x.shape, index.shape))
    for d, (i, s) in enumerate(zip(index.shape, x.shape)):
        if d != dim % builtins.max(len(x.shape), 1) and i > s:
            raise ShapeError("gather", f"index {tuple(index.shape)} is larger than the input {tuple(x.shape)} in dim {d}",
                             shapes=(x.shape, index.shape), rule="index.shape[d] <= input.shape[d] for every d != dim")
    return Spec(tuple(index.shape), x.dtype)


def _check_index(op: str, index: np.ndarray, size: int, dim: int, shape) -> None:
    """torch's rule for gather/scatter indices: 0 <= index < size (no negative indices), naming the bad one."""
    if index.size and (index.min() < 0 or index.max() >= size):
        flat = index.reshape(-1)
        k = int(np.argmax((flat < 0) | (flat >= size)))
        at = tuple(int(i) for i in np.unravel_index(k, index.shape))
        raise IndexError(f"{op}: index {int(flat[k])} (at position {at}) is out of range for dim {dim} of size "
                         f"{size} (input shape {tuple(shape)}); valid indices are 0..{size - 1}")


def _gather_ref(x, index, dim):
    """torch.gather: out[i][j] = x[index[i][j]][j] (dim 0). np.take_along_axis would broadcast index against x in
    the other dims, so first cut x down to index's extent there."""
    _check_index("gather", index, x.shape[dim], dim, x.shape)
    x = x[tuple(slice(None) if d == dim else slice(0, s) for d, s in enumerate(index.shape))]
    return np.take_along_axis(x, index, axis=dim)


def _gather_index(at, x, index, dim):
    """out[i][j] = x[index[i][j]][j] (dim 0): the index along dim is an element of ``index``."""
    d = dim % x.ndim
    return x[tuple(index[at.index] if a == d else i for a, i in enumerate(at.index))]


defop("gather", infer=_gather_infer, ref=_gather_ref, index=_gather_index,
      fusion=INJ, cost=movement_cost, chip=vector("copy"), takes_indices=True,
      vjp=lambda g, out, x, index, dim: (apply("scatter_add", g, index, dim=dim, shape=tuple(x.shape)), None),
      jvp=lambda t, out, x, index, dim: apply("gather", t[0], index, dim=dim), torch_name="torch.gather", saved=(1,))


def _index_select_infer(x, index, dim):
    if index.dtype.is_floating or index.dtype.name == "bool":
        raise TypeError(f"index_select: indices must be an integer tensor, got {index.dtype.name}")
    d = norm_dims("index_select", dim, len(x.shape), x.shape)[0]
    return Spec(tuple(x.shape[:d]) + tuple(index.shape) + tuple(x.shape[d + 1:]), x.dtype)


def _index_select_ref(x, index, dim):
    n = x.shape[dim]
    if index.size and (index.min() < -n or index.max() >= n):
        bad = index.max() if index.max() >= n else index.min()
        raise IndexError(f"index_select: index {bad} is out of range for dim {dim} of size {n} "
                         f"(valid {-n}..{n - 1}; negative indices count from the end)")
    return np.take(x, index, axis=dim)


def _index_select_vjp(g, out, x, index, dim):
    """Scatter-add written with ops: one_hot(index) (m, n)ᵀ @ g viewed as (before, m, after)."""
    d, n, m = dim, x.shape[dim], prod(index.shape)
    wrapped = apply("where", index < 0, index + n, index)
    oh = apply("one_hot", wrapped.reshape(m), num_classes=n).to(g.dtype)
    gm = g.reshape(prod(x.shape[:d]), m, prod(x.shape[d + 1:]))
    return ((oh.mT @ gm).reshape(x.shape), None)


def _index_select_index(at, x, index, dim):
    """out[a, i..., b] = x[a, index[i...], b]; a negative index counts from the end."""
    d = dim % x.ndim
    k = index[tuple(at.index[d:d + index.ndim])]
    k = at.where(k < 0, k + x.shape[d], k)
    return x[tuple(at.index[:d]) + (k,) + tuple(at.index[d + index.ndim:])]


defop("index_select", infer=_index_select_infer, ref=_index_select_ref, fusion=INJ, cost=movement_cost,
      index=_index_select_index,
      chip=vector("copy"), takes_indices=True, vjp=_index_select_vjp, jvp=lambda t, out, x, index, dim: apply("index_select", t[0], index, dim=dim),
      torch_name="torch.index_select",
      doc="Take whole slices of x along dim at integer positions: x.shape[:dim] + index.shape + "
          "x.shape[dim+1:] (numpy.take; ONNX Gather). torch.index_select with an index of any rank; "
          "negative indices count from the end, as in ONNX.")


def _scatter_add_ref(g, index, dim, shape):
    _check_index("scatter_add", index, shape[dim], dim, shape)
    z = np.zeros(shape, g.dtype)
    idx = list(np.indices(index.shape, sparse=True))
    idx[dim] = index
    np.add.at(z, tuple(idx), g)
    return z


defop("scatter_add", infer=lambda g, index, dim, shape: Spec(tuple(shape), g.dtype), ref=_scatter_add_ref,
      fusion=K.OPAQUE, cost=movement_cost, chip=not_lowerable(_BACKWARD),
      vjp=lambda h, out, g, index, dim, shape: (apply("gather", h, index, dim=dim), None),
      jvp=lambda t, out, g, index, dim, shape: apply("scatter_add", t[0], index, dim=dim, shape=shape),
      doc="Adds g into zeros(shape) at index along dim (the adjoint of gather).", saved=(1,))


# ---- public functions ---------------------------------------------------------------------------
def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(input, *shape):
    x = input
    shape = _resolve_shape("reshape", tuple(x.shape), _shape_args(shape))
    return x if shape == tuple(x.shape) else apply("reshape", x, shape=shape)


def permute(input, *dims):
    x = input
    dims = tuple(builtins.int(d) % builtins.max(x.ndim, 1) for d in _shape_args(dims))
    return x if dims == tuple(range(x.ndim)) else apply("permute", x, dims=dims)


def transpose(input, dim0, dim1):
    x = input
    nd = x.ndim
    d0, d1 = norm_dims("transpose", dim0, nd, x.shape)[0], norm_dims("transpose", dim1, nd, x.shape)[0]
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, *dims)


def broadcast_to(x, shape):
    shape = tuple(builtins.int(s) for s in shape)
    return x if tuple(x.shape) == shape else apply("broadcast_to", x, shape=shape)


def expand(x, *shape):
    """torch.expand: -1 keeps a size."""
    shape = _shape_args(shape)
    lead = len(shape) - x.ndim
    full = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return broadcast_to(x, full)


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, *[s for s in x.shape if s != 1])
    d = norm_dims("squeeze", dim, x.ndim, x.shape)
    return reshape(x, *[s for i, s in enumerate(x.shape) if not (i in d and s == 1)])


def unsqueeze(x, dim):
    nd = x.ndim + 1
    if not -nd <= dim < nd:
        raise ShapeError("unsqueeze", f"dim {dim} is out of range for a result of {nd} dims", shapes=(x.shape,))
    d = dim % nd
    shape = list(x.shape)
    shape.insert(d, 1)
    return apply("reshape", x, shape=tuple(shape))


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    shape = tuple(x.shape[:s]) + (prod(x.shape[s:e + 1]),) + tuple(x.shape[e + 1:])
    return reshape(x, *shape)


def contiguous(x):
    return x if x.is_contiguous() else apply("contiguous", x)


def index(x, key):
    return apply("index", x, key=_norm_key(key))


def index_put(x, key, value):
    """``x`` with ``x[key]`` replaced by ``value`` (broadcast to that region): the value of ``x[key] = value``
    written with ops (a scatter of the value, selected by a constant mask), so its gradient reaches both."""
    key = _norm_key(key)
    region = _index_infer(x, key).shape
    if _has_array(key):
        ids = np.arange(x.numel()).reshape(x.shape)[key]
        if np.unique(ids).size != ids.size:
            raise ValueError("setitem: the index repeats positions, and which write wins cannot be recorded for "
                             "autograd; assign under aisys.no_grad() or use unique indices")
    mask = np.zeros(tuple(x.shape), np.bool_)
    mask[key] = True
    from .elementwise import cast, where
    v = broadcast_to(cast(as_tensor(value, like=x), x.dtype), region)
    return where(Tensor._wrap(mask), apply("index_backward", v, key=key, shape=tuple(x.shape)), x)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces along ``dim``: of ``split_size_or_sections`` each (the last may be shorter), or of the sizes listed
    (they must add up to the size of ``dim``). Views through the index op, so gradients flow back (torch.split)."""
    d = norm_dims("split", dim, tensor.ndim, tensor.shape)[0]
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [builtins.int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise ShapeError("split", f"sections {sizes} must be non-negative and add up to {n}, the size of dim {dim} "
                             f"of {tuple(tensor.shape)}", shapes=(tensor.shape,))
    else:
        size = builtins.int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size={split_size_or_sections!r} must be positive")
        sizes = [builtins.min(size, n - k) for k in range(0, n, size)] or [0]
    out, start = [], 0
    for s in sizes:
        out.append(index(tensor, (slice(None),) * d + (slice(start, start + s),)))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    """``chunks`` pieces (fewer if the size does not allow), each of ceil(size / chunks) but the last (torch.chunk)."""
    if builtins.int(chunks) <= 0:
        raise ValueError(f"chunk: chunks={chunks!r} must be positive")
    d = norm_dims("chunk", dim, input.ndim, input.shape)[0]
    n = input.shape[d]
    return split(input, builtins.max(1, -(-n // builtins.int(chunks))), d)


def _triangle(op, x, diagonal, lower):
    if x.ndim < 2:
        raise ShapeError(op, f"expects a tensor of at least 2 dims, got {tuple(x.shape)}", shapes=(x.shape,))
    rows, cols = x.shape[-2:]
    keep = (np.tril if lower else np.triu)(np.ones((rows, cols), np.bool_), builtins.int(diagonal))
    from .elementwise import where
    return where(Tensor._wrap(keep), x, Tensor._wrap(np.zeros((), x._data.dtype)))


def tril(input, diagonal=0):
    """The lower triangle (j <= i + diagonal) of the last two dims, zeros elsewhere: a constant mask, so it traces."""
    return _triangle("tril", input, diagonal, True)


def triu(input, diagonal=0):
    """The upper triangle (j >= i + diagonal) of the last two dims, zeros elsewhere."""
    return _triangle("triu", input, diagonal, False)


def cat(tensors, dim=0):
    tensors = [as_tensor(t) for t in tensors]
    return tensors[0] if len(tensors) == 1 else apply("concat", *tensors, dim=dim)


concat = cat


def stack(tensors, dim=0):
    tensors = [as_tensor(t) for t in tensors]
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim)


def pad(x, pad, value=0.0):
    return apply("pad", x, pad=tuple(builtins.int(p) for p in pad), value=value)


def gather(input, dim, index):
    return apply("gather", input, as_tensor(index), dim=builtins.int(dim) % input.ndim)


def index_select(input, dim, index):
    return apply("index_select", input, as_tensor(index), dim=builtins.int(dim) % builtins.max(input.ndim, 1))
