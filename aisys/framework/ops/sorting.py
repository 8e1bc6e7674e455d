"""Ordering: the ``argsort`` op, and PyTorch's sort / topk / kthvalue / median / mode built on it.

Each returns PyTorch's ``(values, indices)`` named tuple. The indices come from ``argsort`` (a registry op, so
a trace keeps the ordering as a graph node instead of baking in the example's order); the values are
``gather(x, dim, indices)``, so a gradient flows to exactly the elements selected, as in PyTorch. Ties keep
their original order (a stable sort), so ``topk`` of equal values returns the first ones.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..dtypes import int64
from ..errors import ShapeError
from ..registry import Cost, FusionKind as K, Spec, defop, not_lowerable
from ..tensor import Tensor, _Mode, apply, as_tensor
from ._common import norm_dims

# PyTorch's torch.return_types: tuples whose fields are .values and .indices
max_t = namedtuple("max", ["values", "indices"])
min_t = namedtuple("min", ["values", "indices"])
sort_t = namedtuple("sort", ["values", "indices"])
topk_t = namedtuple("topk", ["values", "indices"])
kthvalue_t = namedtuple("kthvalue", ["values", "indices"])
median_t = namedtuple("median", ["values", "indices"])
mode_t = namedtuple("mode", ["values", "indices"])


def _argsort_ref(x, dim, descending=False):
    if not descending:
        return np.argsort(x, axis=dim, kind="stable")
    # stable descending: sort the reversed array ascending, then undo the reversal (NaN first, as torch)
    n = x.shape[dim]
    rev = np.flip(x, axis=dim)
    return n - 1 - np.flip(np.argsort(rev, axis=dim, kind="stable"), axis=dim)


def _argsort_infer(x, dim, descending=False):
    norm_dims("argsort", dim, len(x.shape), x.shape)
    return Spec(tuple(x.shape), int64)


def _argsort_cost(in_specs, out_spec, dim, descending=False):
    n = max(in_specs[0].shape[dim], 1) if in_specs[0].shape else 1
    return Cost(flops=int(in_specs[0].numel * max(1.0, np.log2(n))), bytes=in_specs[0].nbytes + out_spec.nbytes)


defop("argsort", infer=_argsort_infer, ref=_argsort_ref, fusion=K.OPAQUE, cost=_argsort_cost,
      chip=not_lowerable("the simulated chip has no sorting unit (a sort runs on the host)"),
      torch_name="torch.argsort", doc="Indices that sort x along dim (stable; descending=True puts the largest "
                                     "first, NaN first). Not differentiable: sort's values are a gather.")


def _dim(op, x, dim):
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}: dim must be one int, got {dim!r}")
    return norm_dims(op, dim, x.ndim, x.shape)[0] if x.ndim else 0


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    x = as_tensor(input)
    return apply("argsort", x, dim=_dim("argsort", x, dim), descending=bool(descending))


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along ``dim`` (the sort is always stable here)."""
    x = as_tensor(input)
    d = _dim("sort", x, dim)
    idx = apply("argsort", x, dim=d, descending=bool(descending))
    return sort_t(x.gather(d, idx), idx)


def _take(t: Tensor, d: int, start: int, stop: int) -> Tensor:
    return t[(slice(None),) * d + (slice(start, stop),)]


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, largest first."""
    x = as_tensor(input)
    d = _dim("topk", x, dim)
    n = x.shape[d] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ShapeError("topk", f"k={k!r} must be a whole number in 0..{n} (the size of dim {dim} of "
                         f"{tuple(x.shape)})", shapes=(x.shape,))
    idx = _take(apply("argsort", x, dim=d, descending=bool(largest)), d, 0, int(k))
    return topk_t(x.gather(d, idx), idx)


def _select(op, result, x, d, position, keepdim):
    idx = _take(apply("argsort", x, dim=d, descending=False), d, position, position + 1)
    values = x.gather(d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return result(values, idx)


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest value along ``dim`` (k counts from 1) and its index."""
    x = as_tensor(input)
    d = _dim("kthvalue", x, dim)
    n = x.shape[d] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ShapeError("kthvalue", f"k={k!r} must be a whole number in 1..{n}", shapes=(x.shape,))
    return _select("kthvalue", kthvalue_t, x, d, int(k) - 1, keepdim)


def median(input, dim: int | None = None, keepdim: bool = False):
    """The median as torch defines it: the lower of the two middle values for an even count (never their
    mean). Without ``dim``, over all elements (a tensor); with ``dim``, (values, indices)."""
    x = as_tensor(input)
    if dim is None:
        flat = x.reshape(-1)
        idx = _take(apply("argsort", flat, dim=0, descending=False), 0, (flat.shape[0] - 1) // 2,
                    (flat.shape[0] - 1) // 2 + 1)
        return flat.gather(0, idx).reshape(())
    d = _dim("median", x, dim)
    return _select("median", median_t, x, d, (x.shape[d] - 1) // 2, keepdim)


def mode(input, dim: int = -1, keepdim: bool = False):
    """The most frequent value along ``dim`` (the smallest of equally frequent ones) and the index of its last
    occurrence, as torch. Counting runs in numpy, so a tracer is told the index comes from the data."""
    x = as_tensor(input)
    d = _dim("mode", x, dim)
    if _Mode.observers:
        from ..tensor import _escaped
        _escaped(x, ".mode()")
    a = np.moveaxis(x._data, d, -1)
    flat = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
    best = np.empty(flat.shape[0], np.int64)
    for r, row in enumerate(flat):
        vals, counts = np.unique(row, return_counts=True)          # sorted: argmax picks the smallest on ties
        v = vals[np.argmax(counts)]
        best[r] = row.shape[0] - 1 - int(np.argmax((row == v)[::-1]))
    idx_shape = a.shape[:-1] + (1,)
    idx = Tensor._wrap(np.moveaxis(best.reshape(idx_shape), -1, d) if a.ndim else best.reshape(()))
    if x.ndim == 0:
        return mode_t(x, idx)
    values = x.gather(d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return mode_t(values, idx)


def extreme_with_indices(name: str, x: Tensor, dim, keepdim: bool):
    """max/min along one dim as torch returns it: (values, indices), the gradient going to the returned index."""
    d = _dim(name, x, dim)
    idx = apply("argmax" if name == "max" else "argmin", x, dim=d, keepdim=True)
    values = x.gather(d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return (max_t if name == "max" else min_t)(values, idx)


__all__ = ["argsort", "sort", "topk", "kthvalue", "median", "mode", "max_t", "min_t", "sort_t", "topk_t",
           "kthvalue_t", "median_t", "mode_t", "extreme_with_indices"]
