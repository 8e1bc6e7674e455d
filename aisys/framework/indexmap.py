"""Index maps: where each output element of a data-movement op comes from, written once as data.

An injective op (reshape, permute, pad, concat, gather, indexing…) computes nothing: every output element
*is* one input element (or a fill value). Its definition carries ``index=``, a function of the output
position and the inputs that returns that element as a read::

    defop("permute", ..., index=lambda at, x, dims: x[tuple(at.index[dims.index(d)] for d in range(x.ndim))])
    defop("pad", ..., index=_pad_index)        # at.where(inside, x[(i - lo) % n, ...], value)

``at.index`` is the output position (one index per output dimension, arithmetic over integers: + − ×, //
and %), ``at.shape`` the output shape; an input ``x`` has ``x.shape``/``x.ndim`` and ``x[i, j, ...]`` reads
one element — an index may itself be an element read from an integer input (gather's ``index[...]``).
``at.where(cond, a, b)``, ``at.eq(a, b)`` and ``at.all(*conds)`` build guards (``<``, ``>=`` … work as
operators); ``at.table(array)`` turns an integer array held in the attributes (indexing with an array key)
into an input read the same way. A read must stay in bounds even where a guard discards it: clamp it
(``% n``), as pad and concat do.

Every consumer passes its own ``at`` and inputs and so reads the same definition: the loop back end
(``aisys.compiler.loops.injective``) passes tensor-expression axes and placeholders and gets a compute;
:func:`evaluate` here passes numpy index grids and arrays and gets the op's result, which a test holds
equal to the op's ``ref`` on every op-info sample.
"""
from __future__ import annotations

import functools

import numpy as np


class NumpyPosition:
    """Every output position at once: ``index`` are broadcastable integer grids (``np.ix_``-style)."""

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)
        self.index = tuple(np.arange(s).reshape((1,) * d + (s,) + (1,) * (len(self.shape) - d - 1))
                           for d, s in enumerate(self.shape))

    @staticmethod
    def where(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def eq(a, b):
        return np.equal(a, b)

    @staticmethod
    def all(*conds):
        return functools.reduce(np.logical_and, conds) if conds else np.True_

    @staticmethod
    def table(array):
        return NumpyInput(np.asarray(array))


class NumpyInput:
    """An input array read at (broadcast) index grids."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape, self.ndim = array.shape, array.ndim

    def __getitem__(self, idx):
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) != self.ndim:
            raise IndexError(f"index map: an input of shape {self.shape} read with {len(idx)} indices")
        if not idx:
            return self.array[()]
        return self.array[tuple(np.asarray(i, dtype=np.int64) for i in idx)]


def evaluate(op, arrays, **attrs) -> np.ndarray:
    """The op's result computed from its index map with numpy (the map's executable meaning)."""
    from . import registry
    from .dtypes import from_numpy
    d = registry.get(op) if isinstance(op, str) else op
    if d.index is None:
        raise ValueError(f"indexmap.evaluate: op {d.name!r} has no index map (defop(..., index=...) at {d.source})")
    arrays = [np.asarray(a) for a in arrays]
    spec = d.infer(*[registry.Spec(a.shape, from_numpy(a.dtype)) for a in arrays], **attrs)
    at = NumpyPosition(spec.shape)
    out = d.index(at, *[NumpyInput(a) for a in arrays], **attrs)
    return np.array(np.broadcast_to(np.asarray(out), spec.shape), dtype=spec.dtype.np, order="C")
