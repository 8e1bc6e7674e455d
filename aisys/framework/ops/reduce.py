"""Reductions over dims (``dim``/``keepdim`` as in PyTorch) and ``sum_to``, broadcasting's adjoint."""
from __future__ import annotations

import builtins

import numpy as np

from .. import scalar as S
from ..dtypes import int64
from ..errors import ShapeError
from ..registry import (Cost, FusionKind as K, Reduction, Spec, defop, extreme_identity, reduce_dims,
                        same_accumulator, sum_accumulator, vector)
from ..tensor import Tensor, apply, as_tensor
from ._common import norm_dims, reduced_shape, need_float, prod, sum_to_array

R = K.REDUCE


def _reduce_cost(in_specs, out_spec, **attrs):
    return Cost(flops=in_specs[0].numel, bytes=in_specs[0].nbytes + out_spec.nbytes)


def _reduce_infer(op, float_only=False, out_dtype=None):
    def infer(x, dim=None, keepdim=False, **attrs):
        if float_only:
            need_float(op, x)
        dims = norm_dims(op, dim, len(x.shape), x.shape)
        if op in ("max", "min", "argmax", "argmin"):
            for d in dims:
                if x.shape[d] == 0:
                    raise ShapeError(op, f"cannot reduce an empty dimension {d} of shape {tuple(x.shape)}")
        return Spec(reduced_shape(tuple(x.shape), dims, keepdim), out_dtype or x.dtype)
    return infer


def _keep(g, x, dim, keepdim):
    """Reshape a reduced gradient so it broadcasts against ``x`` again."""
    if keepdim or dim is None and g.ndim == 0:
        return g if keepdim else g.reshape((1,) * x.ndim) if x.ndim else g
    dims = norm_dims("sum", dim, x.ndim, x.shape)
    return g.reshape(reduced_shape(tuple(x.shape), dims, True))


def _count(x, dim):
    dims = norm_dims("mean", dim, x.ndim, x.shape)
    return prod(x.shape[d] for d in dims)


def _axis(x_ndim, dim):
    return None if dim is None else norm_dims("reduce", dim, x_ndim)


_sum_shape_infer = _reduce_infer("sum")


def _sum_infer(x, dim=None, keepdim=False):
    """As torch.sum: integer and bool tensors sum into int64 (a count of Trues, no int8 overflow)."""
    if dim is None and not keepdim and x.dtype.is_floating:     # the common loss.sum(): no dims to check
        return Spec((), x.dtype)
    spec = _sum_shape_infer(x, dim, keepdim)
    return spec if spec.dtype.is_floating else Spec(spec.shape, int64)


def _sum_np(g, out, x, dim=None, keepdim=False):
    return (np.broadcast_to(_keep(g, x, dim, keepdim), x._data.shape),)


def _mean_np(g, out, x, dim=None, keepdim=False):
    return (np.divide(np.broadcast_to(_keep(g, x, dim, keepdim), x._data.shape), float(_count(x, dim))),)


SUM = Reduction(combine=lambda acc, x: acc + x, identity=lambda acc_dtype: 0, accumulate=sum_accumulator,
                dims=reduce_dims)

defop("sum", infer=_sum_infer, fusion=R, cost=_reduce_cost, reduction=SUM, chip=vector("add"), vjp_np=_sum_np,
      ref=lambda x, dim=None, keepdim=False: np.add.reduce(x, axis=_axis(x.ndim, dim), keepdims=keepdim,
                                                          dtype=x.dtype if x.dtype.kind not in "biu" else np.int64),
      vjp=lambda g, out, x, dim=None, keepdim=False: (_keep(g, x, dim, keepdim).broadcast_to(x.shape),),
      jvp=lambda t, out, x, dim=None, keepdim=False: t[0].sum(dim, keepdim), torch_name="torch.sum", saved=())

defop("mean", infer=_reduce_infer("mean", float_only=True), fusion=R, cost=_reduce_cost, chip=vector("add"),
      reduction=Reduction(combine=SUM.combine, identity=SUM.identity, accumulate=sum_accumulator, dims=reduce_dims,
                          finalize=lambda acc, count: acc / count), vjp_np=_mean_np,
      ref=lambda x, dim=None, keepdim=False: np.mean(x, axis=_axis(x.ndim, dim), keepdims=keepdim),
      vjp=lambda g, out, x, dim=None, keepdim=False: (_keep(g, x, dim, keepdim).broadcast_to(x.shape) / float(_count(x, dim)),),
      jvp=lambda t, out, x, dim=None, keepdim=False: t[0].mean(dim, keepdim), saved=())


def _var_ref(x, dim=None, keepdim=False, correction=1):
    return np.var(x, axis=_axis(x.ndim, dim), keepdims=keepdim, ddof=correction)


def _var_vjp(g, out, x, dim=None, keepdim=False, correction=1):
    n = _count(x, dim)
    centered = x - x.mean(dim, keepdim=True)
    return (_keep(g, x, dim, keepdim) * centered * (2.0 / (n - correction)),)


def _var_jvp(t, out, x, dim=None, keepdim=False, correction=1):
    n = _count(x, dim)
    return (t[0] * (x - x.mean(dim, keepdim=True))).sum(dim, keepdim) * (2.0 / (n - correction))


defop("var", infer=_reduce_infer("var", float_only=True), fusion=R, cost=_reduce_cost, ref=_var_ref, chip=vector("add"),
      vjp=_var_vjp, jvp=_var_jvp, doc="correction=1 (unbiased) by default, as torch.var.", saved=(0,))


def _extreme(name, fn, largest):
    def vjp(g, out, x, dim=None, keepdim=False):
        ok = _keep(out, x, dim, keepdim)
        mask = (x == ok).to(g.dtype)                       # ties share the gradient equally
        return (_keep(g, x, dim, keepdim) * mask / mask.sum(dim, keepdim=True),)

    def jvp(t, out, x, dim=None, keepdim=False):
        ok = _keep(out, x, dim, keepdim)
        mask = (x == ok).to(t[0].dtype)
        return (t[0] * mask).sum(dim, keepdim) / mask.sum(dim, keepdim)

    better = (lambda x, acc: x > acc) if largest else (lambda x, acc: x < acc)
    defop(name, infer=_reduce_infer(name), fusion=R, cost=_reduce_cost, chip=vector("max" if largest else "min"),
          ref=lambda x, dim=None, keepdim=False: fn(x, axis=_axis(x.ndim, dim), keepdims=keepdim),
          reduction=Reduction(combine=lambda acc, x: S.select(S.or_(better(x, acc), S.isnan(x)), x, acc),
                              identity=extreme_identity(largest), accumulate=same_accumulator, dims=reduce_dims),
          vjp=vjp, jvp=jvp, doc="Ties share the gradient equally; NaN propagates.")


_extreme("max", np.max, largest=True)
_extreme("min", np.min, largest=False)


def _arg(fn):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            r = fn(x.reshape(-1))
            return np.asarray(r).reshape((1,) * x.ndim if keepdim else ())
        return fn(x, axis=int(dim), keepdims=keepdim)
    return ref


defop("argmax", infer=_reduce_infer("argmax", out_dtype=int64), ref=_arg(np.argmax), fusion=R, cost=_reduce_cost,
      chip=vector("max"))
defop("argmin", infer=_reduce_infer("argmin", out_dtype=int64), ref=_arg(np.argmin), fusion=R, cost=_reduce_cost,
      chip=vector("max"))


# ---- sum_to: the adjoint of broadcasting ------------------------------------------------------
def _sum_to_infer(x, shape):
    shape = tuple(shape)
    xs = tuple(x.shape)
    lead = len(xs) - len(shape)
    if lead < 0 or any(s != 1 and s != xs[lead + i] for i, s in enumerate(shape)):
        raise ShapeError("sum_to", f"cannot sum shape {xs} down to {shape}", shapes=(xs, shape),
                         rule="the target must be a shape that broadcasts to the source")
    return Spec(shape, x.dtype)


def _sum_to_dims(in_shape, shape):
    """The axes sum_to reduces: the leading ones it drops, and those it keeps as size 1."""
    lead = len(in_shape) - len(shape)
    return tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and in_shape[lead + i] != 1)


defop("sum_to", infer=_sum_to_infer, ref=sum_to_array, fusion=R, cost=_reduce_cost, chip=vector("add"),
      reduction=Reduction(combine=SUM.combine, identity=SUM.identity, accumulate=sum_accumulator, dims=_sum_to_dims),
      vjp_np=lambda g, out, x, shape: (np.broadcast_to(g, x._data.shape),),
      vjp=lambda g, out, x, shape: (g.broadcast_to(x.shape),),
      jvp=lambda t, out, x, shape: t[0].sum_to(shape),
      doc="Sum a broadcast result back to an operand's shape (the backward of broadcasting).", saved=())


# ---- public functions ---------------------------------------------------------------------------
def _dimarg(dim):
    return tuple(dim) if isinstance(dim, list) else dim


def sum(input, dim=None, keepdim=False, *, dtype=None):
    x = as_tensor(input) if dtype is None else as_tensor(input).to(dtype)
    return apply("sum", x, dim=_dimarg(dim), keepdim=keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    x = as_tensor(input) if dtype is None else as_tensor(input).to(dtype)
    return apply("mean", x, dim=_dimarg(dim), keepdim=keepdim)


def var(input, dim=None, keepdim=False, *, correction=1, unbiased=None):
    correction = (1 if unbiased else 0) if unbiased is not None else correction
    return apply("var", as_tensor(input), dim=_dimarg(dim), keepdim=keepdim, correction=correction)


def std(input, dim=None, keepdim=False, *, correction=1, unbiased=None):
    return var(input, dim, keepdim, correction=correction, unbiased=unbiased).sqrt()
def _extreme_fn(name, pairwise):
    def fn(input, dim=None, keepdim=False):
        """torch.max/min: over everything (a tensor); with ``dim`` PyTorch's (values, indices) named tuple, the
        gradient going to the returned index; with a tensor as the second argument, elementwise. For the
        reduction over several dims with ties sharing the gradient, use amax/amin."""
        x = as_tensor(input)
        if isinstance(dim, Tensor):
            return pairwise(x, dim)
        if dim is None:
            return apply(name, x, dim=None, keepdim=False)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"{name}: dim must be one int (torch.{name} returns values and indices along one dim); "
                            f"for several dims use aisys.a{name}(x, dim={tuple(dim)})")
        from .sorting import extreme_with_indices
        return extreme_with_indices(name, x, dim, keepdim)
    fn.__name__ = name
    return fn


def _maximum(x, y):
    from .elementwise import maximum
    return maximum(x, y)


def _minimum(x, y):
    from .elementwise import minimum
    return minimum(x, y)


max = _extreme_fn("max", _maximum)
min = _extreme_fn("min", _minimum)
def amax(input, dim=None, keepdim=False): return apply("max", as_tensor(input), dim=_dimarg(dim), keepdim=keepdim)
def amin(input, dim=None, keepdim=False): return apply("min", as_tensor(input), dim=_dimarg(dim), keepdim=keepdim)
def argmax(input, dim=None, keepdim=False): return apply("argmax", as_tensor(input), dim=dim, keepdim=keepdim)
def argmin(input, dim=None, keepdim=False): return apply("argmin", as_tensor(input), dim=dim, keepdim=keepdim)


def sum_to(x, shape):
    shape = tuple(builtins.int(s) for s in shape)
    return x if tuple(x.shape) == shape else apply("sum_to", x, shape=shape)
