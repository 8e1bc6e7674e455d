"""Computes of data-movement ops, read from the registry's index maps.

A reshape, permute, pad, concat, gather or indexing computes nothing: each output element is one input
element, found by index arithmetic on its position. The op's definition says which, once, as an *index map*
(``defop(..., index=...)``, see ``aisys.framework.indexmap``); :func:`injective` hands it the compute's axes
and the input tensors and gets the element expression — affine loads for permute and slices, ``//`` and ``%``
for reshape, a ``where`` guard for pad and concat, and loads whose index is another load for gather,
embedding and index_select. Nothing here names an op.

Integer arrays that sit in an op's attributes (``x[np.array([2, 0, 2])]``) become extra placeholders, the
compute's *tables*: ``t.tables`` lists (placeholder, array) pairs to pass after the inputs
(:func:`kernel_args` gives the argument order). Tensor expressions have no 0-d tensors, so a 0-d input or
output is refused with a message.
"""
from __future__ import annotations

import functools

import numpy as np

from ...framework import registry as _reg
from .te import LoopsError, Node, Tensor, compute, dtype_of, is_index, lift, placeholder, where


class _Position:
    """The output position of a compute, as an index map sees it (``aisys.framework.indexmap``)."""

    def __init__(self, op: str, shape: tuple, axes: tuple):
        self.op, self.shape, self.index = op, shape, tuple(a.var for a in axes)
        self.tables: list[tuple[Tensor, np.ndarray]] = []

    @staticmethod
    def where(cond, a, b):
        return where(cond, a, b)

    @staticmethod
    def eq(a, b):
        return Node("eq", (lift(a), lift(b)))

    @staticmethod
    def all(*conds):
        return functools.reduce(lambda a, b: Node("and", (lift(a), lift(b))), conds) if conds else lift(True)

    def table(self, array):
        a = np.ascontiguousarray(array, dtype=np.int64)
        if a.ndim == 0:
            raise LoopsError(f"loops.injective({self.op!r}): a 0-d index array in the attributes; tensor "
                             f"expressions have no 0-d tensors (index with an int instead)")
        t = placeholder(a.shape, "int64", name=f"{self.op}_table{len(self.tables)}")
        self.tables.append((t, a))
        return _Read(t, self.op)


class _Read:
    """An input as an index map reads it: ``x[i, j]`` is a load; an index may be integer arithmetic over
    axes or an integer element (a data-dependent read, as gather's)."""

    def __init__(self, t: Tensor, op: str):
        self.t, self.op = t, op
        self.shape, self.ndim = t.shape, t.ndim

    def __getitem__(self, idx):
        nodes = tuple(lift(i) for i in (idx if isinstance(idx, tuple) else (idx,)))
        if all(is_index(n) for n in nodes) or len(nodes) != self.ndim:
            return self.t[nodes]                      # te checks the rank and the index arithmetic
        bad = [n for n in nodes if not is_index(n) and not _is_integer(dtype_of(n))]
        if bad:
            raise LoopsError(f"loops.injective({self.op!r}): an index of {self.t.name} is {bad[0]!r}, neither "
                             f"index arithmetic nor an integer element")
        return Node("load", nodes, self.t)        # a data-dependent read: an index is an integer element


def injective(op: str, *inputs: Tensor, name: str | None = None, **attrs) -> Tensor:
    """The compute of a registry op with an index map (fusion kind injective, and broadcast_to) over
    tensors: ``loops.injective("permute", X, dims=(1, 0))``. Integer arrays among the attributes become the
    compute's ``tables`` (extra inputs, see :func:`kernel_args`)."""
    d = _reg.get(op)
    if d.index is None:
        raise LoopsError(f"loops.injective({op!r}): {op} has no index map (its fusion kind is {d.fusion.value}); "
                         f"data-movement ops declare one with defop(..., index=...) — for elementwise ops use "
                         f"loops.elementwise, for reductions loops.reduce_op")
    for t in inputs:
        if not isinstance(t, Tensor):
            raise LoopsError(f"loops.injective({op!r}): inputs must be tensors (loops.placeholder or a compute), "
                             f"got {type(t).__name__}")
    spec = d.infer(*[_reg.Spec(t.shape, t.dtype) for t in inputs], **attrs)
    if not spec.shape:
        raise LoopsError(f"loops.injective({op!r}): the result is 0-d; tensor expressions have no 0-d tensors "
                         f"(reshape to (1,) instead)")
    if 0 in spec.shape:
        raise LoopsError(f"loops.injective({op!r}): the result {spec.shape} is empty; a loop nest needs ≥ 1 element")
    tables: list = []

    def element(*axes):
        at = _Position(op, spec.shape, axes)
        value = lift(d.index(at, *[_Read(t, op) for t in inputs], **attrs))
        tables[:] = at.tables
        return value
    params = ", ".join("ijlmnpqr"[:len(spec.shape)])    # the loops print as i, j, …
    fn = eval(f"lambda {params}: element({params})", {"element": element})  # noqa: S307  (a fixed template)
    out = compute(spec.shape, fn, name=name or op, dtype=spec.dtype)
    out.tables = list(tables)
    return out


def kernel_args(t: Tensor, inputs) -> list[Tensor]:
    """The placeholders of ``t`` in argument order: ``inputs`` (as given to :func:`injective`), then its
    tables — pass as ``loops.lower(s, args=...)`` / ``loops.build(s, args=...)``."""
    return list(inputs) + [p for p, _ in getattr(t, "tables", [])]


def table_arrays(t: Tensor) -> list[np.ndarray]:
    """The arrays to pass for ``t``'s tables, after the inputs."""
    return [a for _, a in getattr(t, "tables", [])]





def _is_integer(dt) -> bool:
    return dt is not None and np.dtype(dt.np).kind in "iu"
