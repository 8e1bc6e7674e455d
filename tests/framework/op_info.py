"""The op-info table: one row per registered op, read by tests/framework/test_ops.py.

Each row says how to call the op (sample inputs and attrs, float64 and small, including broadcasting
cases and non-contiguous numpy views), what the answer must be (an *independent* reference — Python
scalar math over our own broadcasting rule, explicit loops, or a different numpy route; never the
registry's own ``ref``), where the op is differentiable (domain constraints keep samples away from
kinks, ties and poles), and which dtypes it supports.

Adding an op to the registry means adding one row here; ``test_every_op_has_a_row`` enforces it.
"""
from __future__ import annotations

import math
import operator
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# ---------------------------------------------------------------------------------------------
# Value domains: every generator returns float64 data of the requested shape
# ---------------------------------------------------------------------------------------------


def normal(rng, *shape):
    return rng.standard_normal(shape)


def positive(rng, *shape, lo=0.5, hi=2.0):
    """For log, sqrt, pow's base, variances: well inside the domain so x ± eps stays valid."""
    return rng.uniform(lo, hi, shape)


def away_from_zero(rng, *shape, lo=0.2, hi=1.5):
    """For relu, abs, sign and denominators: |x| ≥ 0.2, far from the kink/pole at 0."""
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(rng, *shape, gap=0.25):
    """All values different by at least ``gap`` (max/min/max-pool have no ties, so no kinks)."""
    n = math.prod(shape)
    return (rng.permutation(n) * gap - n * gap / 2).reshape(shape).astype(np.float64)


def integers(rng, *shape, lo=-3, hi=4):
    return rng.integers(lo, hi, shape).astype(np.float64)


DOMAINS = {"normal": normal, "positive": positive, "away0": away_from_zero, "distinct": distinct}


# ---------------------------------------------------------------------------------------------
# Non-contiguous views holding given values (the op must read strides, not assume row-major)
# ---------------------------------------------------------------------------------------------


def transposed_view(a: np.ndarray) -> np.ndarray:
    """Same values as ``a`` but stored column-major: a transposed view of a row-major buffer."""
    if a.ndim < 2:
        return strided_view(a)
    return np.ascontiguousarray(a.T).T


def strided_view(a: np.ndarray) -> np.ndarray:
    """Same values as ``a`` as every other element of a larger NaN-filled buffer (step 2 in each dim):
    an op that ignores strides reads a NaN."""
    if a.ndim == 0:
        return a
    big = np.full(tuple(2 * s for s in a.shape), np.nan if a.dtype.kind == "f" else 0, a.dtype)
    key = tuple(slice(None, None, 2) for _ in a.shape)
    big[key] = a
    return big[key]


VIEWS = {"contiguous": lambda a: a, "transposed": transposed_view, "strided": strided_view}


# ---------------------------------------------------------------------------------------------
# Independent references: our own broadcasting rule + Python scalar math
# ---------------------------------------------------------------------------------------------


def broadcast_shape(*shapes) -> tuple:
    """Right-aligned broadcasting written out (not np.broadcast_shapes)."""
    n = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(n):
        sizes = {s[len(s) - n + i] for s in shapes if len(s) - n + i >= 0} - {1}
        if len(sizes) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def source_index(out_index: tuple, shape: tuple) -> tuple:
    """Which element of an operand of ``shape`` feeds output position ``out_index`` under broadcasting."""
    tail = out_index[len(out_index) - len(shape):] if shape else ()
    return tuple(i if s != 1 else 0 for i, s in zip(tail, shape))


def expand(a: np.ndarray, shape: tuple) -> np.ndarray:
    out = np.empty(shape, a.dtype)
    for idx in np.ndindex(*shape):
        out[idx] = a[source_index(idx, a.shape)]
    return out


def elementwise(fn: Callable, *arrays, dtype=np.float64) -> np.ndarray:
    """Apply a Python scalar function position by position after broadcasting."""
    shape = broadcast_shape(*[a.shape for a in arrays])
    out = np.empty(shape, dtype)
    for idx in np.ndindex(*shape):
        out[idx] = fn(*[a[source_index(idx, a.shape)].item() for a in arrays])
    return out


def _same_kind(*arrays):
    """Output dtype of an arithmetic reference: float64 if any operand is float, else int64."""
    return np.float64 if any(a.dtype.kind == "f" for a in arrays) else np.int64


def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


GELU_C, GELU_A = math.sqrt(2.0 / math.pi), 0.044715


def _gelu(v):
    return 0.5 * v * (1.0 + math.tanh(GELU_C * (v + GELU_A * v ** 3)))


def gelu_exact(v):
    """GELU(x) = x·Φ(x), PyTorch's default (approximate='none')."""
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


# ---- reductions by explicit gathering ----------------------------------------------------------
def _dims(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted(d % max(ndim, 1) for d in dims))


def reduce_ref(fn: Callable, x: np.ndarray, dim=None, keepdim=False, dtype=None) -> np.ndarray:
    """fn(list of the reduced values in row-major order) for every kept position."""
    dims = _dims(dim, x.ndim)
    kept = [i for i in range(x.ndim) if i not in dims]
    kshape = tuple(x.shape[i] for i in kept)
    rshape = tuple(x.shape[i] for i in dims)
    out = np.empty(kshape, dtype or x.dtype)
    for k in np.ndindex(*kshape):
        vals = []
        for r in np.ndindex(*rshape):
            full = [0] * x.ndim
            for i, v in zip(kept, k):
                full[i] = v
            for i, v in zip(dims, r):
                full[i] = v
            vals.append(x[tuple(full)].item())
        out[k] = fn(vals)
    if keepdim:
        out = out.reshape(tuple(1 if i in dims else s for i, s in enumerate(x.shape)))
    return out


def _var(correction):
    def f(vals):
        m = math.fsum(vals) / len(vals)
        return math.fsum((v - m) ** 2 for v in vals) / (len(vals) - correction)
    return f


def _first_arg(better):
    def f(vals):
        best = 0
        for i, v in enumerate(vals):
            if better(v, vals[best]):
                best = i
        return best
    return f


def argext_ref(better, x, dim=None, keepdim=False):
    if dim is None:
        r = np.array(_first_arg(better)(x.reshape(-1).tolist()), np.int64)
        return r.reshape((1,) * x.ndim) if keepdim else r
    return reduce_ref(_first_arg(better), x, dim, keepdim, dtype=np.int64)


def sum_to_ref(x, shape):
    shape = tuple(shape)
    out = np.zeros(shape, x.dtype)
    lead = x.ndim - len(shape)
    for idx in np.ndindex(*x.shape):
        out[source_index(idx[lead:], shape) if shape else ()] += x[idx]
    return out


# ---- data movement ------------------------------------------------------------------------------
def reshape_ref(x, shape):
    flat = [x[i] for i in np.ndindex(*x.shape)]               # row-major reading order
    out = np.empty(tuple(shape), x.dtype)
    for k, j in enumerate(np.ndindex(*out.shape)):
        out[j] = flat[k]
    return out


def permute_ref(x, dims):
    out = np.empty(tuple(x.shape[d] for d in dims), x.dtype)
    for j in np.ndindex(*out.shape):
        i = [0] * x.ndim
        for k, d in enumerate(dims):
            i[d] = j[k]
        out[j] = x[tuple(i)]
    return out


def index_ref(x, key):
    """numpy's indexing rules *are* the spec of aisys.index; applied to a fresh row-major copy, so what
    is tested is how aisys routes keys, views and gradients, not numpy."""
    return np.array(np.ascontiguousarray(x)[key])


def index_backward_ref(g, key, shape):
    """Scatter-add through an id array: position j of x[key] reads flat element ids[key][j]."""
    ids = np.arange(math.prod(shape)).reshape(shape)[key]
    z = np.zeros(math.prod(shape), g.dtype)
    for j in np.ndindex(*ids.shape):
        z[ids[j]] += g[j]
    return z.reshape(shape)


def concat_ref(*xs, dim=0):
    d = dim % xs[0].ndim
    shape = list(xs[0].shape)
    shape[d] = sum(x.shape[d] for x in xs)
    out = np.empty(shape, np.result_type(*xs))
    start = 0
    for x in xs:
        for i in np.ndindex(*x.shape):
            j = list(i)
            j[d] += start
            out[tuple(j)] = x[i]
        start += x.shape[d]
    return out


def pad_ref(x, pad, value=0.0):
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):                             # torch order: last dim first
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    out = np.full(tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, widths)), value, x.dtype)
    for i in np.ndindex(*x.shape):
        out[tuple(a + lo for a, (lo, _) in zip(i, widths))] = x[i]
    return out


def gather_ref(x, index, dim):
    out = np.empty(index.shape, x.dtype)
    for i in np.ndindex(*index.shape):
        j = list(i)
        j[dim] = index[i]
        out[i] = x[tuple(j)]
    return out


def scatter_add_ref(g, index, dim, shape):
    out = np.zeros(shape, g.dtype)
    for i in np.ndindex(*index.shape):
        j = list(i)
        j[dim] = index[i]
        out[tuple(j)] += g[i]
    return out


def matmul_ref(x, y):
    batch = broadcast_shape(x.shape[:-2], y.shape[:-2])
    xb = expand(x, batch + x.shape[-2:])
    yb = expand(y, batch + y.shape[-2:])
    return np.einsum("...ik,...kj->...ij", xb, yb)


# ---- convolution and pooling by direct loops ----------------------------------------------------
def conv2d_ref(x, w, b=None, *, stride, padding, dilation, groups):
    """out[n,o,i,j] = Σ_{c,kh,kw} x[n, g·Cg+c, i·s−p+kh·d, j·s−p+kw·d] · w[o,c,kh,kw] (+ b[o])."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    OH = (H + 2 * padding[0] - dilation[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (W + 2 * padding[1] - dilation[1] * (KW - 1) - 1) // stride[1] + 1
    Og = O // groups
    out = np.zeros((N, O, OH, OW), np.result_type(x, w))
    for n, o, i, j in np.ndindex(N, O, OH, OW):
        g0 = (o // Og) * Cg
        acc = 0.0
        for c, kh, kw in np.ndindex(Cg, KH, KW):
            ih = i * stride[0] - padding[0] + kh * dilation[0]
            iw = j * stride[1] - padding[1] + kw * dilation[1]
            if 0 <= ih < H and 0 <= iw < W:
                acc += x[n, g0 + c, ih, iw] * w[o, c, kh, kw]
        out[n, o, i, j] = acc + (b[o] if b is not None else 0.0)
    return out


def _conv_taps(xshape, wshape, stride, padding, dilation, groups, OH, OW):
    """Yield (n, o, i, j, ci, c, kh, kw, ih, iw) for every in-bounds multiply of the convolution."""
    N, C, H, W = xshape
    O, Cg, KH, KW = wshape
    Og = O // groups
    for n, o, i, j in np.ndindex(N, O, OH, OW):
        for c, kh, kw in np.ndindex(Cg, KH, KW):
            ih = i * stride[0] - padding[0] + kh * dilation[0]
            iw = j * stride[1] - padding[1] + kw * dilation[1]
            if 0 <= ih < H and 0 <= iw < W:
                yield n, o, i, j, (o // Og) * Cg + c, c, kh, kw, ih, iw


def conv2d_backward_input_ref(g, w, *, input_shape, stride, padding, dilation, groups):
    gx = np.zeros(input_shape, g.dtype)
    for n, o, i, j, ci, c, kh, kw, ih, iw in _conv_taps(input_shape, w.shape, stride, padding, dilation, groups,
                                                         *g.shape[2:]):
        gx[n, ci, ih, iw] += g[n, o, i, j] * w[o, c, kh, kw]
    return gx


def conv2d_backward_weight_ref(g, x, *, weight_shape, stride, padding, dilation, groups):
    gw = np.zeros(weight_shape, g.dtype)
    for n, o, i, j, ci, c, kh, kw, ih, iw in _conv_taps(x.shape, weight_shape, stride, padding, dilation, groups,
                                                         *g.shape[2:]):
        gw[o, c, kh, kw] += g[n, o, i, j] * x[n, ci, ih, iw]
    return gw


def _pool_windows(shape, kernel_size, stride, padding, dilation):
    """Yield (n, c, i, j, [(ih, iw) in-bounds window positions in row-major tap order])."""
    N, C, H, W = shape
    KH, KW = kernel_size
    OH = (H + 2 * padding[0] - dilation[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (W + 2 * padding[1] - dilation[1] * (KW - 1) - 1) // stride[1] + 1
    for n, c, i, j in np.ndindex(N, C, OH, OW):
        taps = []
        for kh, kw in np.ndindex(KH, KW):
            ih = i * stride[0] - padding[0] + kh * dilation[0]
            iw = j * stride[1] - padding[1] + kw * dilation[1]
            taps.append((ih, iw) if 0 <= ih < H and 0 <= iw < W else None)
        yield n, c, i, j, taps, (OH, OW)


def _pool_out(shape, **a):
    N, C = shape[:2]
    *_, (OH, OW) = next(_pool_windows(shape, **a))
    return (N, C, OH, OW)


def _argmax_tap(x, n, c, taps):
    best = None
    for t in taps:
        if t is not None and (best is None or x[n, c, t[0], t[1]] > x[n, c, best[0], best[1]]):
            best = t
    return best


def max_pool2d_ref(x, **a):
    out = np.empty(_pool_out(x.shape, **a), x.dtype)
    for n, c, i, j, taps, _ in _pool_windows(x.shape, **a):
        t = _argmax_tap(x, n, c, taps)
        out[n, c, i, j] = -np.inf if t is None else x[n, c, t[0], t[1]]    # all padding (dilated): -inf, as torch
    return out


def max_pool2d_backward_ref(g, x, **a):
    gx = np.zeros(x.shape, g.dtype)
    for n, c, i, j, taps, _ in _pool_windows(x.shape, **a):
        t = _argmax_tap(x, n, c, taps)
        gx[n, c, t[0], t[1]] += g[n, c, i, j]
    return gx


def max_pool2d_select_ref(h, x, **a):
    out = np.empty(_pool_out(x.shape, **a), h.dtype)
    for n, c, i, j, taps, _ in _pool_windows(x.shape, **a):
        t = _argmax_tap(x, n, c, taps)
        out[n, c, i, j] = h[n, c, t[0], t[1]]
    return out


def avg_pool2d_ref(x, **a):
    KH, KW = a["kernel_size"]
    out = np.empty(_pool_out(x.shape, **a), x.dtype)
    for n, c, i, j, taps, _ in _pool_windows(x.shape, **a):      # padding counts as zeros
        out[n, c, i, j] = sum(x[n, c, t[0], t[1]] for t in taps if t is not None) / (KH * KW)
    return out


def avg_pool2d_backward_ref(g, *, input_shape, **a):
    KH, KW = a["kernel_size"]
    gx = np.zeros(input_shape, g.dtype)
    for n, c, i, j, taps, _ in _pool_windows(input_shape, **a):
        for t in taps:
            if t is not None:
                gx[n, c, t[0], t[1]] += g[n, c, i, j] / (KH * KW)
    return gx


# ---- softmax, norms, losses -----------------------------------------------------------------------
def softmax_ref(x, dim):
    e = np.vectorize(math.exp)(x)
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax_ref(x, dim):
    return x - np.log(np.vectorize(math.exp)(x).sum(axis=dim, keepdims=True))


def layer_norm_ref(x, normalized_shape, eps):
    k = len(normalized_shape)
    lead = x.shape[:x.ndim - k]
    out = np.empty(x.shape, x.dtype)
    for i in np.ndindex(*lead):
        v = x[i].reshape(-1)
        m = math.fsum(v) / v.size
        var = math.fsum((t - m) ** 2 for t in v) / v.size
        out[i] = ((x[i] - m) / math.sqrt(var + eps))
    return out


def batch_norm_ref(x, mean, var, weight, bias, eps):
    out = np.empty(x.shape, x.dtype)
    for idx in np.ndindex(*x.shape):
        c = idx[1]
        out[idx] = (x[idx] - mean[c]) / math.sqrt(var[c] + eps) * weight[c] + bias[c]
    return out


def one_hot_ref(idx, num_classes):
    out = np.zeros(idx.shape + (num_classes,), np.int64)
    for i in np.ndindex(*idx.shape):
        out[i + (int(idx[i]),)] = 1
    return out


def embedding_ref(idx, weight):
    return one_hot_ref(idx, weight.shape[0]).astype(weight.dtype) @ weight


def embedding_backward_ref(g, idx, num_embeddings):
    oh = one_hot_ref(idx, num_embeddings).reshape(-1, num_embeddings).astype(g.dtype)
    return oh.T @ g.reshape(-1, g.shape[-1])


def dropout_ref(x, p, seed):
    """Inverted dropout: keep with probability 1−p (mask drawn from ``seed``), scale kept values by 1/(1−p)."""
    if p == 0.0:
        return x.copy()
    keep = np.random.default_rng(seed).random(x.shape) >= p
    return np.where(keep, x / (1.0 - p), 0.0).astype(x.dtype)


def _reduce(v, reduction):
    return {"mean": np.asarray(v.mean()), "sum": np.asarray(v.sum()), "none": v}[reduction]


def cross_entropy_ref(x, target, reduction, ignore_index=None):
    """PyTorch's definition: ignored rows add 0, and the mean divides by the rows kept."""
    kept = [(row, int(t)) for row, t in zip(x, target) if t != ignore_index]
    nll = np.array([math.log(sum(math.exp(v) for v in row)) - row[t] if t != ignore_index else 0.0
                    for row, t in zip(x, target)])
    if reduction == "mean":
        return np.asarray(nll.sum() / len(kept))
    return _reduce(nll, reduction)


def mse_loss_ref(x, y, reduction):
    return _reduce((x - y) * (x - y), reduction)


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------
FLOATS = ("float32", "float64", "float16", "bfloat16")


@dataclass
class Sample:
    """One call: positional tensor inputs (numpy arrays), attrs, and which inputs get gradients."""
    args: tuple
    attrs: dict = field(default_factory=dict)
    grad: tuple | None = None      # indices of differentiable inputs; None: every float64 input; (): none
    note: str = ""

    def grad_indices(self) -> tuple:
        if self.grad is not None:
            return self.grad
        return tuple(i for i, a in enumerate(self.args) if a.dtype == np.float64)

    def __repr__(self):
        shapes = ", ".join(f"{a.dtype.name}{list(a.shape)}{'' if a.flags['C_CONTIGUOUS'] else '(view)'}"
                           for a in self.args)
        return f"Sample({shapes}; {self.attrs}{'; ' + self.note if self.note else ''})"


@dataclass
class OpInfo:
    name: str
    samples: Callable[[np.random.Generator], list]
    reference: Callable
    differentiable: bool = True
    not_differentiable_because: str = ""
    domain: str = "normal"            # value domain for property tests (DOMAINS)
    kind: str = "other"               # unary | binary | reduce | other (which property tests apply)
    dtypes: tuple = FLOATS            # float dtypes the op accepts
    int_dtypes: tuple = ()            # integer/bool dtypes where the op is meaningful
    lowp_tol: float = 1.0             # multiplies the float16/bfloat16 tolerance (long reductions need more)
    # straight-through estimators: the op's VJP is by design not its true derivative (zero almost everywhere);
    # surrogate(*sample args, **attrs) returns the smooth aisys function whose derivative at the sample the VJP
    # must equal, so gradient tests differentiate that instead of the op
    surrogate: Callable | None = None

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32(self.name.encode()))


def _unary_samples(domain):
    def samples(rng):
        d = DOMAINS[domain]
        return [Sample((d(rng, 3, 4),), note="matrix"),
                Sample((transposed_view(d(rng, 4, 3)),), note="transposed view"),
                Sample((strided_view(d(rng, 2, 3)),), note="strided view"),
                Sample((d(rng),), note="0-d")]
    return samples


def _binary_samples(dx, dy, gap=False):
    """Same shape, broadcasting both ways, a 0-d operand, and non-contiguous views.
    ``gap``: x and y are drawn together from well-spaced distinct values, so maximum/minimum never tie."""
    def pair(rng, sx, sy):
        if gap:
            n, m = math.prod(sx), math.prod(sy)
            v = distinct(rng, n + m)
            return v[:n].reshape(sx), v[n:].reshape(sy)
        return DOMAINS[dx](rng, *sx), DOMAINS[dy](rng, *sy)

    def samples(rng):
        out = []
        for sx, sy, note in [((3, 4), (3, 4), "same shape"), ((3, 1), (4,), "broadcast (3,1)·(4,)"),
                             ((2, 1, 4), (3, 1), "broadcast (2,1,4)·(3,1)"), ((), (2, 3), "0-d · matrix")]:
            x, y = pair(rng, sx, sy)
            out.append(Sample((x, y), note=note))
        x, y = pair(rng, (3, 4), (3, 4))
        out.append(Sample((transposed_view(x), strided_view(y)), note="transposed · strided views"))
        return out
    return samples


def _cmp_samples(rng):
    x = integers(rng, 3, 4)
    y = integers(rng, 4)                                        # small integers: plenty of exact ties
    return [Sample((x, y), grad=(), note="broadcast with ties"),
            Sample((transposed_view(integers(rng, 3, 2)), strided_view(integers(rng, 3, 2))), grad=(), note="views")]


OPS_TABLE: list[OpInfo] = []


def row(*args, **kw):
    OPS_TABLE.append(OpInfo(*args, **kw))


_INTS = ("int8", "int32", "int64")

# ---- binary arithmetic ----
row("add", _binary_samples("normal", "normal"), lambda x, y: elementwise(operator.add, x, y, dtype=_same_kind(x, y)),
    kind="binary", int_dtypes=_INTS + ("bool",))
row("sub", _binary_samples("normal", "normal"), lambda x, y: elementwise(operator.sub, x, y, dtype=_same_kind(x, y)),
    kind="binary", int_dtypes=_INTS)
row("mul", _binary_samples("normal", "normal"), lambda x, y: elementwise(operator.mul, x, y, dtype=_same_kind(x, y)),
    kind="binary", int_dtypes=_INTS + ("bool",))
row("div", _binary_samples("normal", "away0"), lambda x, y: elementwise(operator.truediv, x, y), kind="binary",
    domain="away0")
row("pow", _binary_samples("positive", "normal"), lambda x, y: elementwise(lambda a, b: math.exp(b * math.log(a)), x, y),
    kind="binary", domain="positive")
row("maximum", _binary_samples("normal", "normal", gap=True),
    lambda x, y: elementwise(lambda a, b: a if a >= b else b, x, y, dtype=_same_kind(x, y)), kind="binary",
    int_dtypes=_INTS)
row("minimum", _binary_samples("normal", "normal", gap=True),
    lambda x, y: elementwise(lambda a, b: a if a <= b else b, x, y, dtype=_same_kind(x, y)), kind="binary",
    int_dtypes=_INTS)


def _where_samples(rng):
    return [Sample((rng.random((3, 1)) > 0.5, normal(rng, 3, 4), normal(rng, 4)), note="broadcast all three"),
            Sample((rng.random((3, 4)) > 0.5, transposed_view(normal(rng, 3, 4)), strided_view(normal(rng, 3, 4))),
                   note="views")]


row("where", _where_samples, lambda c, x, y: elementwise(lambda a, b, d: b if a else d, c, x, y, dtype=_same_kind(x, y)),
    kind="other", int_dtypes=_INTS)

for _name, _fn in [("eq", operator.eq), ("ne", operator.ne), ("lt", operator.lt), ("le", operator.le),
                   ("gt", operator.gt), ("ge", operator.ge)]:
    row(_name, _cmp_samples, (lambda f: lambda x, y: elementwise(f, x, y, dtype=np.bool_))(_fn), differentiable=False,
        not_differentiable_because="a comparison: bool output, piecewise constant", kind="binary",
        int_dtypes=_INTS + ("bool",))

row("logical_not",
    lambda rng: [Sample((rng.random((3, 4)) > 0.5,), grad=()), Sample((strided_view(rng.random((2, 3)) > 0.5),), grad=())],
    lambda x: elementwise(lambda a: not a, x, dtype=np.bool_), differentiable=False,
    not_differentiable_because="boolean in, boolean out", dtypes=(), int_dtypes=("bool",))

# ---- unary ----
row("neg", _unary_samples("normal"), lambda x: elementwise(lambda a: 0 - a, x, dtype=_same_kind(x)), kind="unary",
    int_dtypes=_INTS)
row("exp", _unary_samples("normal"), lambda x: elementwise(math.exp, x), kind="unary")
row("log", _unary_samples("positive"), lambda x: elementwise(math.log, x), kind="unary", domain="positive")
row("sqrt", _unary_samples("positive"), lambda x: elementwise(math.sqrt, x), kind="unary", domain="positive")
row("sin", _unary_samples("normal"), lambda x: elementwise(math.sin, x), kind="unary")
row("cos", _unary_samples("normal"), lambda x: elementwise(math.cos, x), kind="unary")
row("tanh", _unary_samples("normal"), lambda x: elementwise(math.tanh, x), kind="unary")
row("sign", _unary_samples("away0"), lambda x: elementwise(lambda a: (a > 0) - (a < 0), x, dtype=_same_kind(x)),
    kind="unary", domain="away0", int_dtypes=_INTS)
row("abs", _unary_samples("away0"), lambda x: elementwise(lambda a: a if a >= 0 else -a, x, dtype=_same_kind(x)),
    kind="unary", domain="away0", int_dtypes=_INTS)
row("sigmoid", _unary_samples("normal"), lambda x: elementwise(_sigmoid, x), kind="unary")
row("relu", _unary_samples("away0"), lambda x: elementwise(lambda a: a if a > 0 else 0 * a, x, dtype=_same_kind(x)),
    kind="unary", domain="away0", int_dtypes=_INTS)
row("gelu", lambda rng: _unary_samples("normal")(rng) + [
        Sample((normal(rng, 3, 4),), {"approximate": "tanh"}, note="tanh form"),
        Sample((transposed_view(normal(rng, 4, 3)),), {"approximate": "tanh"}, note="tanh form, view"),
        Sample((normal(rng, 2, 3) * 4,), {"approximate": "none"}, note="exact, wide range")],
    lambda x, approximate="none": elementwise(_gelu if approximate == "tanh" else gelu_exact, x), kind="unary")
row("erf", lambda rng: _unary_samples("normal")(rng) + [Sample((normal(rng, 3, 4) * 3,), note="tails")],
    lambda x: elementwise(math.erf, x), kind="unary")


def _cast_samples(rng):
    import aisys
    return [Sample((normal(rng, 3, 4),), {"dtype": aisys.float64}, note="float64 -> float64 (gradcheckable)"),
            Sample((transposed_view(normal(rng, 3, 4)),), {"dtype": aisys.float32}, grad=(), note="to float32"),
            Sample((normal(rng, 3, 4) * 3,), {"dtype": aisys.int32}, grad=(), note="to int32 truncates")]


row("cast", _cast_samples, lambda x, dtype: x.astype(dtype.np),
    int_dtypes=_INTS)


# ---- reductions ----
def _reduce_samples(domain, dims=((None, False), (1, False), (-1, True), ((0, 2), False), ((0, 2), True))):
    def samples(rng):
        d = DOMAINS[domain]
        out = [Sample((d(rng, 2, 3, 4),), {"dim": dim, "keepdim": kd}, note=f"dim={dim} keepdim={kd}")
               for dim, kd in dims]
        out.append(Sample((transposed_view(d(rng, 3, 4)),), {"dim": 0, "keepdim": False}, note="transposed view"))
        out.append(Sample((d(rng),), {"dim": None, "keepdim": False}, note="0-d"))
        return out
    return samples


row("sum", _reduce_samples("normal"),
    lambda x, dim=None, keepdim=False: reduce_ref(math.fsum if x.dtype.kind == "f" else sum, x, dim, keepdim,
                                                  dtype=x.dtype if x.dtype.kind == "f" else np.int64),
    kind="reduce", int_dtypes=_INTS + ("bool",), lowp_tol=4)
row("mean", _reduce_samples("normal"),
    lambda x, dim=None, keepdim=False: reduce_ref(lambda v: math.fsum(v) / len(v), x, dim, keepdim), kind="reduce",
    lowp_tol=2)


def _var_samples(rng):
    return [Sample((normal(rng, 2, 3, 4),), {"dim": 1, "keepdim": False, "correction": 1}),
            Sample((normal(rng, 2, 3, 4),), {"dim": (0, 2), "keepdim": True, "correction": 0}),
            Sample((transposed_view(normal(rng, 3, 4)),), {"dim": None, "keepdim": False, "correction": 1},
                   note="transposed view")]


row("var", _var_samples, lambda x, dim=None, keepdim=False, correction=1: reduce_ref(_var(correction), x, dim, keepdim),
    kind="reduce", lowp_tol=4)
row("max", _reduce_samples("distinct"), lambda x, dim=None, keepdim=False: reduce_ref(max, x, dim, keepdim),
    kind="reduce", domain="distinct", int_dtypes=_INTS)
row("min", _reduce_samples("distinct"), lambda x, dim=None, keepdim=False: reduce_ref(min, x, dim, keepdim),
    kind="reduce", domain="distinct", int_dtypes=_INTS)


def _arg_samples(rng):
    return [Sample((integers(rng, 3, 4),), {"dim": None, "keepdim": False}, grad=(), note="ties: first wins"),
            Sample((integers(rng, 3, 4),), {"dim": None, "keepdim": True}, grad=()),
            Sample((integers(rng, 2, 3, 4),), {"dim": 1, "keepdim": False}, grad=()),
            Sample((transposed_view(integers(rng, 3, 4)),), {"dim": -1, "keepdim": True}, grad=())]


row("argmax", _arg_samples, lambda x, dim=None, keepdim=False: argext_ref(operator.gt, x, dim, keepdim),
    differentiable=False, not_differentiable_because="an index: integer output", int_dtypes=_INTS)
row("argmin", _arg_samples, lambda x, dim=None, keepdim=False: argext_ref(operator.lt, x, dim, keepdim),
    differentiable=False, not_differentiable_because="an index: integer output", int_dtypes=_INTS)


def argsort_ref(x, dim, descending=False):
    """Insertion order of a stable sort, one line at a time (ties keep their original order)."""
    moved = np.moveaxis(x, dim, -1)
    out = np.empty(moved.shape, np.int64)
    for idx in np.ndindex(*moved.shape[:-1]):
        line = [(v, i) for i, v in enumerate(moved[idx].tolist())]
        key = (lambda p: (-p[0], p[1])) if descending else (lambda p: (p[0], p[1]))
        out[idx] = [i for _, i in sorted(line, key=key)]
    return np.moveaxis(out, -1, dim)


def _argsort_samples(rng):
    ties = integers(rng, 3, 5)                                  # small integers: ties, kept in order
    return [Sample((ties,), {"dim": 1}, grad=()), Sample((ties,), {"dim": 0, "descending": True}, grad=()),
            Sample((transposed_view(normal(rng, 4, 3)),), {"dim": -1, "descending": True}, grad=(), note="view"),
            Sample((normal(rng, 6),), {"dim": 0}, grad=())]


row("argsort", _argsort_samples, argsort_ref, differentiable=False,
    not_differentiable_because="an index: integer output (sort's values are a gather, which is differentiable)",
    int_dtypes=_INTS)


def _sum_to_samples(rng):
    return [Sample((normal(rng, 2, 3, 4),), {"shape": (3, 1)}), Sample((normal(rng, 2, 3, 4),), {"shape": (1, 4)}),
            Sample((normal(rng, 2, 3),), {"shape": ()}),
            Sample((transposed_view(normal(rng, 3, 4)),), {"shape": (3, 1)}, note="transposed view")]


row("sum_to", _sum_to_samples, sum_to_ref, int_dtypes=_INTS, lowp_tol=4)


# ---- shape ops ----
row("reshape", lambda rng: [Sample((normal(rng, 2, 6),), {"shape": (3, 4)}),
                            Sample((transposed_view(normal(rng, 3, 4)),), {"shape": (12,)}, note="transposed view"),
                            Sample((strided_view(normal(rng, 2, 3)),), {"shape": (3, 1, 2)}, note="strided view"),
                            Sample((normal(rng, 1, 1),), {"shape": ()})],
    reshape_ref, int_dtypes=_INTS + ("bool",))
row("permute", lambda rng: [Sample((normal(rng, 2, 3, 4),), {"dims": (2, 0, 1)}),
                            Sample((transposed_view(normal(rng, 3, 4)),), {"dims": (1, 0)}, note="transposed view"),
                            Sample((strided_view(normal(rng, 2, 3, 2)),), {"dims": (1, 2, 0)}, note="strided view")],
    permute_ref, int_dtypes=_INTS + ("bool",))
row("broadcast_to", lambda rng: [Sample((normal(rng, 3, 1),), {"shape": (2, 3, 4)}),
                                 Sample((normal(rng),), {"shape": (2, 2)}),
                                 Sample((transposed_view(normal(rng, 2, 3)),), {"shape": (4, 2, 3)}, note="view")],
    lambda x, shape: expand(x, tuple(shape)), int_dtypes=_INTS + ("bool",))
row("contiguous", lambda rng: [Sample((transposed_view(normal(rng, 3, 4)),)),
                               Sample((strided_view(normal(rng, 2, 3)),))],
    lambda x: reshape_ref(x, x.shape), int_dtypes=_INTS + ("bool",))
row("clone", lambda rng: [Sample((normal(rng, 3, 4),)), Sample((transposed_view(normal(rng, 3, 4)),)),
                          Sample((strided_view(normal(rng, 2, 3)),)), Sample((normal(rng),), note="0-d")],
    lambda x: reshape_ref(x, x.shape), int_dtypes=_INTS + ("bool",))


def _index_samples(rng):
    x = normal(rng, 3, 4, 2)
    return [Sample((x,), {"key": (1,)}, note="int"),
            Sample((x,), {"key": (slice(None, None, -1), slice(1, 3))}, note="negative step"),
            Sample((x,), {"key": (-1, None, Ellipsis)}, note="negative int, None, Ellipsis"),
            Sample((x,), {"key": (np.array([2, 0, 2]),)}, note="int array with a repeat"),
            Sample((x,), {"key": (slice(None), np.array([[1, 3], [0, 0]]), 1)}, note="int array in the middle"),
            Sample((x,), {"key": (x[..., 0] > 0,)}, note="bool mask"),
            Sample((transposed_view(normal(rng, 4, 3)),), {"key": (slice(None, None, 2), np.array([0, 2]))},
                   note="transposed view")]


row("index", _index_samples, lambda x, key: index_ref(x, key), int_dtypes=_INTS + ("bool",))


def _index_backward_samples(rng):
    out = []
    for s in _index_samples(rng):
        key = s.attrs["key"]
        res = index_ref(s.args[0], key)
        g = normal(rng, *res.shape)
        out.append(Sample((transposed_view(g) if g.ndim >= 2 and g.shape[-1] > 1 else g,),
                          {"key": key, "shape": s.args[0].shape}, note=s.note))
    return out


row("index_backward", _index_backward_samples, index_backward_ref)


def _concat_samples(rng):
    return [Sample((normal(rng, 2, 3), normal(rng, 1, 3), normal(rng, 3, 3)), {"dim": 0}),
            Sample((transposed_view(normal(rng, 3, 2)), strided_view(normal(rng, 3, 1))), {"dim": -1}, note="views")]


row("concat", _concat_samples, concat_ref, int_dtypes=_INTS + ("bool",))


def _pad_samples(rng):
    return [Sample((normal(rng, 2, 3),), {"pad": (1, 2)}), Sample((normal(rng, 2, 3),), {"pad": (1, 0, 0, 2), "value": 0.5}),
            Sample((transposed_view(normal(rng, 3, 2)),), {"pad": (0, 1, 1, 1)}, note="transposed view")]


row("pad", _pad_samples, pad_ref, int_dtypes=_INTS)


def _gather_samples(rng):
    return [Sample((normal(rng, 3, 4), rng.integers(0, 4, (3, 2))), {"dim": 1}),
            Sample((transposed_view(normal(rng, 3, 4)), rng.integers(0, 3, (2, 4))), {"dim": 0}, note="view")]


row("gather", _gather_samples, gather_ref, int_dtypes=_INTS)


def index_select_ref(x, index, dim):
    """out[a, i..., b] = x[a, index[i...] (negative counts from the end), b], by explicit loops."""
    n = x.shape[dim]
    out = np.empty(x.shape[:dim] + index.shape + x.shape[dim + 1:], x.dtype)
    for o in np.ndindex(*out.shape):
        k = int(index[o[dim:dim + index.ndim]])
        out[o] = x[o[:dim] + (k + n if k < 0 else k,) + o[dim + index.ndim:]]
    return out


def _index_select_samples(rng):
    return [Sample((normal(rng, 3, 4), np.array([2, 0, 2])), {"dim": 0}, note="repeated index"),
            Sample((normal(rng, 2, 5, 3), np.array([[-1, 0], [4, -5]])), {"dim": 1}, note="2-D index, negative"),
            Sample((transposed_view(normal(rng, 3, 4)), np.array(1)), {"dim": 1}, note="0-d index, view")]


row("index_select", _index_select_samples, index_select_ref, int_dtypes=_INTS)


def _scatter_samples(rng):
    return [Sample((normal(rng, 3, 2), np.array([[0, 0], [3, 1], [2, 2]])), {"dim": 1, "shape": (3, 4)},
                   note="repeated indices accumulate"),
            Sample((strided_view(normal(rng, 2, 4)), rng.integers(0, 3, (2, 4))), {"dim": 0, "shape": (3, 4)})]


row("scatter_add", _scatter_samples, scatter_add_ref)


# ---- linear algebra and NN ----
def _matmul_samples(rng):
    return [Sample((normal(rng, 3, 4), normal(rng, 4, 2)), note="(3,4)@(4,2)"),
            Sample((normal(rng, 2, 1, 3, 2), normal(rng, 3, 2, 2)), note="batch broadcast (2,1)·(3,)"),
            Sample((transposed_view(normal(rng, 2, 3)), strided_view(normal(rng, 3, 2))), note="views")]


row("matmul", _matmul_samples, matmul_ref, int_dtypes=("int32", "int64"), lowp_tol=3)


def linear_ref(x, w, b=None):
    """out[n, o] = Σ_i x[n, i]·w[o, i] (+ b[o]), by explicit sums."""
    out = np.array([[sum(x[n, i] * w[o, i] for i in range(x.shape[1])) for o in range(w.shape[0])]
                    for n in range(x.shape[0])], np.result_type(x, w)).reshape(x.shape[0], w.shape[0])
    return out if b is None else out + b


def _linear_samples(rng):
    return [Sample((normal(rng, 3, 4), normal(rng, 2, 4), normal(rng, 2)), note="with bias"),
            Sample((normal(rng, 1, 3), normal(rng, 5, 3)), note="no bias"),
            Sample((transposed_view(normal(rng, 2, 3)), strided_view(normal(rng, 4, 3)), strided_view(normal(rng, 4))),
                   note="views")]


row("linear", _linear_samples, linear_ref, lowp_tol=3)

_CONV = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)


def _conv_samples(rng):
    return [Sample((normal(rng, 1, 2, 4, 4), normal(rng, 2, 2, 2, 2)), dict(_CONV, stride=(2, 2), padding=(1, 1)),
                   note="stride 2, padding 1"),
            Sample((normal(rng, 1, 2, 5, 4), normal(rng, 2, 1, 2, 2)), dict(_CONV, dilation=(2, 1), groups=2),
                   note="groups 2, dilation (2,1)"),
            Sample((transposed_view(normal(rng, 2, 1, 3, 3)), normal(rng, 2, 1, 2, 2), normal(rng, 2)), dict(_CONV),
                   note="bias, transposed input view")]


row("conv2d", _conv_samples, conv2d_ref, lowp_tol=3)


def _conv_bwd_samples(which):
    def samples(rng):
        out = []
        for s in _conv_samples(rng)[:2]:
            x, w = s.args[:2]
            o = conv2d_ref(x, w, **s.attrs)
            g = normal(rng, *o.shape) if not out else transposed_view(normal(rng, *o.shape))
            if which == "input":
                out.append(Sample((g, w), dict(s.attrs, input_shape=x.shape), note=s.note))
            else:
                out.append(Sample((g, x), dict(s.attrs, weight_shape=w.shape), note=s.note))
        return out
    return samples


row("conv2d_backward_input", _conv_bwd_samples("input"), conv2d_backward_input_ref, lowp_tol=3)
row("conv2d_backward_weight", _conv_bwd_samples("weight"), conv2d_backward_weight_ref, lowp_tol=3)

_POOL = [dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)),
         dict(kernel_size=(3, 3), stride=(1, 2), padding=(1, 1), dilation=(1, 1)),
         dict(kernel_size=(2, 2), stride=(1, 1), padding=(0, 0), dilation=(2, 1))]


def _pool_samples(rng, domain="distinct"):
    return [Sample((DOMAINS[domain](rng, 1, 2, 4, 4),), dict(a)) for a in _POOL[:2]] + \
           [Sample((transposed_view(DOMAINS[domain](rng, 2, 1, 4, 3)),), dict(_POOL[2]), note="dilation, view")]


def _pool_pair_samples(first):
    """(g, x) for max_pool2d_backward, (h, x) for max_pool2d_select."""
    def samples(rng):
        out = []
        for s in _pool_samples(rng):
            x = s.args[0]
            shape = x.shape if first == "h" else _pool_out(x.shape, **s.attrs)
            out.append(Sample((normal(rng, *shape), x), s.attrs, grad=(0,), note=s.note))
        return out
    return samples


row("max_pool2d", _pool_samples, max_pool2d_ref, domain="distinct", int_dtypes=("int8", "int32"))
row("max_pool2d_backward", _pool_pair_samples("g"), max_pool2d_backward_ref)
row("max_pool2d_select", _pool_pair_samples("h"), max_pool2d_select_ref)
row("avg_pool2d", lambda rng: _pool_samples(rng, "normal"), avg_pool2d_ref)


def _avg_bwd_samples(rng):
    out = []
    for s in _pool_samples(rng, "normal"):
        x = s.args[0]
        g = normal(rng, *_pool_out(x.shape, **s.attrs))
        out.append(Sample((strided_view(g) if out else g,), dict(s.attrs, input_shape=x.shape)))
    return out


row("avg_pool2d_backward", _avg_bwd_samples, avg_pool2d_backward_ref)


def _softmax_samples(rng):
    return [Sample((normal(rng, 3, 4),), {"dim": 1}), Sample((normal(rng, 3, 4),), {"dim": 0}),
            Sample((transposed_view(normal(rng, 2, 3)),), {"dim": -1}, note="transposed view")]


row("softmax", _softmax_samples, softmax_ref)
row("log_softmax", _softmax_samples, log_softmax_ref)
row("layer_norm", lambda rng: [Sample((normal(rng, 2, 3, 4),), {"normalized_shape": (4,), "eps": 1e-5}),
                               Sample((normal(rng, 2, 3, 4),), {"normalized_shape": (3, 4), "eps": 1e-5}),
                               Sample((transposed_view(normal(rng, 3, 4)),), {"normalized_shape": (4,), "eps": 1e-3},
                                      note="transposed view")],
    layer_norm_ref, lowp_tol=4)


def _bn_samples(rng):
    return [Sample((normal(rng, 2, 3, 2), normal(rng, 3), positive(rng, 3), normal(rng, 3), normal(rng, 3)),
                   {"eps": 1e-5}),
            Sample((transposed_view(normal(rng, 2, 2)), normal(rng, 2), positive(rng, 2), normal(rng, 2),
                    normal(rng, 2)), {"eps": 1e-3}, note="2-D input, transposed view")]


row("batch_norm", _bn_samples, batch_norm_ref, lowp_tol=2)

row("embedding", lambda rng: [Sample((rng.integers(0, 5, (2, 3)), normal(rng, 5, 4))),
                              Sample((np.array([4, 4, 0]), transposed_view(normal(rng, 5, 4))), note="repeated id, transposed view")],
    embedding_ref)
row("embedding_backward", lambda rng: [Sample((normal(rng, 2, 3, 4), rng.integers(0, 5, (2, 3))), {"num_embeddings": 5},
                                              note="repeated ids accumulate"),
                                       Sample((strided_view(normal(rng, 3, 2)), np.array([1, 1, 0])),
                                              {"num_embeddings": 2}, note="strided view")],
    embedding_backward_ref)
row("one_hot", lambda rng: [Sample((rng.integers(0, 4, (2, 3)),), {"num_classes": 4}, grad=()),
                            Sample((np.array(2),), {"num_classes": 3}, grad=()),
                            Sample((transposed_view(rng.integers(0, 3, (2, 3))),), {"num_classes": 3}, grad=())],
    one_hot_ref, differentiable=False, not_differentiable_because="integer in, integer out", dtypes=(),
    int_dtypes=_INTS)
row("dropout", lambda rng: [Sample((normal(rng, 3, 4),), {"p": 0.5, "seed": 3}),
                            Sample((transposed_view(normal(rng, 3, 4)),), {"p": 0.25, "seed": 7}, note="view"),
                            Sample((normal(rng, 2, 2),), {"p": 0.0, "seed": 0}, note="p=0 is the identity")],
    dropout_ref)


def _ce_samples(rng):
    x, t = normal(rng, 4, 5), np.array([0, 4, 2, 4])
    skip = np.array([0, -100, 2, -100])
    return [Sample((x, t), {"reduction": "mean"}), Sample((x, t), {"reduction": "sum"}),
            Sample((transposed_view(normal(rng, 3, 5)), np.array([1, 1, 3])), {"reduction": "none"}, note="view"),
            Sample((x, skip), {"reduction": "mean", "ignore_index": -100}, note="ignored rows"),
            Sample((x, t), {"reduction": "sum", "ignore_index": 4}, note="ignore a class in use"),
            Sample((transposed_view(normal(rng, 3, 5)), np.array([1, 0, 3])), {"reduction": "none", "ignore_index": 0},
                   note="ignore, no reduction, view")]


row("cross_entropy", _ce_samples, cross_entropy_ref, lowp_tol=3)
row("mse_loss", lambda rng: [Sample((normal(rng, 3, 4), normal(rng, 3, 4)), {"reduction": r}) for r in ("mean", "sum")]
    + [Sample((transposed_view(normal(rng, 3, 4)), strided_view(normal(rng, 3, 4))), {"reduction": "none"})],
    mse_loss_ref, lowp_tol=3)

# ---- quantization (aisys/framework/ops/quant.py) ----
def _round_half_even(v: float) -> int:
    return round(v)                                               # Python's round() ties to even, as numpy


def _per(v, idx, axis):
    """The scale / zero point that applies at position ``idx``: one value, or the one of channel idx[axis]."""
    v = np.asarray(v).reshape(-1)
    return v[0].item() if axis is None or v.size == 1 else v[idx[axis]].item()


def quantize_ref(x, scale, zero_point, *, qmin, qmax, axis=None, dtype="int8"):
    out = np.empty(x.shape, np.dtype(getattr(dtype, "name", dtype)))
    for idx in np.ndindex(*x.shape):
        q = _round_half_even(x[idx].item() / _per(scale, idx, axis)) + _per(zero_point, idx, axis)
        out[idx] = min(max(q, qmin), qmax)
    return out


def dequantize_ref(q, scale, zero_point, *, axis=None, dtype="float32"):
    out = np.empty(q.shape, np.dtype(getattr(dtype, "name", dtype)))
    for idx in np.ndindex(*q.shape):
        out[idx] = _per(scale, idx, axis) * (int(q[idx]) - _per(zero_point, idx, axis))
    return out


def fake_quant_ref(x, scale, zero_point, *, qmin, qmax, axis=None, ste="clipped", grad_scale=1.0):
    out = np.empty(x.shape, x.dtype)
    for idx in np.ndindex(*x.shape):
        s, z = _per(scale, idx, axis), _per(zero_point, idx, axis)
        q = min(max(_round_half_even(x[idx].item() / s) + z, qmin), qmax)
        out[idx] = s * (q - z)
    return out


def _codes_near(rng, shape, s, z, qmin, qmax, axis=None):
    """float64 values whose codes x/s + z sit 0.2 or more from a rounding tie and, when outside [qmin, qmax],
    at least 1.7 codes beyond it: the STE's mask and round() are constant around every sample."""
    codes = rng.integers(qmin - 6, qmax + 7, shape).astype(np.float64)
    codes = np.where((codes >= qmin - 1) & (codes < qmin), qmin, codes)
    codes = np.where((codes > qmax) & (codes <= qmax + 1), qmax, codes)
    frac = rng.uniform(-0.3, 0.3, shape)
    sb = np.asarray(s, np.float64) if axis is None else np.asarray(s, np.float64).reshape(
        [-1 if d == axis % len(shape) else 1 for d in range(len(shape))])
    zb = np.asarray(z, np.float64) if np.size(z) == 1 else np.asarray(z, np.float64).reshape(sb.shape)
    return (codes + frac - zb) * sb


def fake_quant_surrogate(x0, s0, z0, *, qmin, qmax, axis=None, ste="clipped", grad_scale=1.0):
    """The smooth function whose derivative at (x0, s0) the STE/LSQ gradient is: round(x/s) replaced by
    x/s + (its rounding offset at the sample), clipped codes held constant (their x-derivative 0, their
    s-derivative qmin−z or qmax−z), and the scale entering as s·g + const (LSQ's gradient scale g)."""
    import aisys
    shape = [-1 if axis is not None and d == axis % x0.ndim else 1 for d in range(x0.ndim)]
    sb0 = np.asarray(s0, np.float64).reshape(shape if axis is not None and np.size(s0) > 1 else ())
    zb = np.asarray(z0, np.float64).reshape(sb0.shape if np.size(z0) > 1 else ())
    r = np.round(x0 / sb0)
    offset = aisys.tensor(r - x0 / sb0)
    code = r + zb
    inside = aisys.tensor((code >= qmin) & (code <= qmax))
    clipped = aisys.tensor(np.clip(code, qmin, qmax) - zb)
    rest = aisys.tensor(sb0 * (1 - grad_scale))                 # fixed now: the gradient tests perturb s0 in place
    x_at = aisys.tensor(np.array(x0, dtype=np.float64))

    def f(x, s, z):
        sb = s.reshape(*sb0.shape) if sb0.ndim else s.reshape(())
        s_eff = sb * grad_scale + rest
        inner = s_eff * (x / s_eff + offset)
        outer = s_eff * clipped + ((x - x_at) if ste == "identity" else 0.0)
        return aisys.where(inside, inner, outer)
    return f


def _fq_samples(rng):
    s4 = rng.uniform(0.05, 0.2, 4)
    x = _codes_near(rng, (3, 4), 0.1, 3, -8, 7)
    xc = _codes_near(rng, (2, 4), s4, 0, -8, 7, axis=1)
    xv = _codes_near(rng, (4, 3), 0.25, -2, -128, 127)
    return [Sample((x, np.array(0.1), np.array(3, np.int32)), {"qmin": -8, "qmax": 7}, grad=(0, 1),
                   note="int4 codes, clipped STE, LSQ scale gradient"),
            Sample((xc, s4, np.zeros(4, np.int32)), {"qmin": -8, "qmax": 7, "axis": 1, "grad_scale": 0.5},
                   grad=(0, 1), note="per-channel scales, LSQ gradient scale 0.5"),
            Sample((transposed_view(xv), np.array(0.25), np.array(-2, np.int32)),
                   {"qmin": -128, "qmax": 127, "ste": "identity"}, grad=(0,), note="plain STE, transposed view")]


row("fake_quant", _fq_samples, fake_quant_ref, surrogate=fake_quant_surrogate, dtypes=(),
    lowp_tol=1)


def _quantize_samples(rng):
    s3 = rng.uniform(0.02, 0.1, 3)
    return [Sample((_codes_near(rng, (3, 4), 0.05, -10, -128, 127), np.array(0.05), np.array(-10, np.int32)),
                   {"qmin": -128, "qmax": 127}, grad=(), note="int8, clamping both ends"),
            Sample((transposed_view(normal(rng, 4, 3)), s3, np.array([0, 5, -5], np.int32)),
                   {"qmin": -8, "qmax": 7, "axis": 1}, grad=(), note="int4, per channel along dim 1, view"),
            Sample((normal(rng, 2, 3) * 1e3, np.array(0.5), np.array(0, np.int32)),
                   {"qmin": -(1 << 31), "qmax": (1 << 31) - 1, "dtype": "int32"}, grad=(), note="int32 accumulator")]


row("quantize", _quantize_samples, quantize_ref, differentiable=False, dtypes=(),
    not_differentiable_because="its output is integer codes (quantization-aware training uses fake_quant)")


def _dequantize_samples(rng):
    return [Sample((rng.integers(-128, 128, (3, 4)).astype(np.int8), np.array(0.05), np.array(-10, np.int32)),
                   grad=()),
            Sample((transposed_view(rng.integers(-8, 8, (4, 3)).astype(np.int8)), rng.uniform(0.1, 1, 3),
                    np.array([1, 0, -1], np.int32)), {"axis": 1, "dtype": "float64"}, grad=(), note="per channel"),
            Sample((strided_view(rng.integers(-1000, 1000, (2, 3)).astype(np.int32)), np.array(1e-3),
                    np.array(0, np.int32)), {"dtype": "float64"}, grad=(), note="int32 accumulator, strided")]


row("dequantize", _dequantize_samples, dequantize_ref, differentiable=False, dtypes=(),
    not_differentiable_because="its input is integer codes")


def matmul_integer_ref(a, b, za, zb):
    zb = np.asarray(zb).reshape(-1)
    out = np.zeros((a.shape[0], b.shape[1]), np.int32)
    for m in range(a.shape[0]):
        for n in range(b.shape[1]):
            zbn = int(zb[0] if zb.size == 1 else zb[n])
            out[m, n] = sum((int(a[m, k]) - int(za)) * (int(b[k, n]) - zbn) for k in range(a.shape[1]))
    return out


def _int8(rng, *shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


row("matmul_integer", lambda rng: [
    Sample((_int8(rng, 3, 5), _int8(rng, 5, 2), np.array(-7, np.int8), np.array(0, np.int32)), grad=()),
    Sample((transposed_view(_int8(rng, 4, 3)), strided_view(_int8(rng, 3, 2)), np.array(12, np.int8),
            np.array([3, -4], np.int32)), grad=(), note="views, per-column weight zero points")],
    matmul_integer_ref, differentiable=False, dtypes=(), not_differentiable_because="integer codes in and out")


def conv2d_integer_ref(x, w, zx, zw, *bias, **attrs):
    zw = np.asarray(zw).reshape(-1)
    ws = w.astype(np.int64) - (zw.reshape(-1, 1, 1, 1) if zw.size > 1 else zw[0])
    out = conv2d_ref(x.astype(np.int64) - int(zx), ws, *[b.astype(np.int64) for b in bias], **attrs)
    return out.astype(np.int32)


row("conv2d_integer", lambda rng: [
    Sample((_int8(rng, 1, 2, 4, 4), _int8(rng, 3, 2, 2, 2), np.array(5, np.int8), np.array(0, np.int32)),
           dict(_CONV, stride=(2, 2), padding=(1, 1)), grad=(), note="padding contributes real zeros"),
    Sample((transposed_view(_int8(rng, 2, 2, 3, 3)), _int8(rng, 2, 1, 2, 2), np.array(-3, np.int8),
            np.array([1, -2], np.int32), rng.integers(-500, 500, 2).astype(np.int32)), dict(_CONV, groups=2),
           grad=(), note="groups, bias, per-channel weight zero points, view")],
    conv2d_integer_ref, differentiable=False, dtypes=(), not_differentiable_because="integer codes in and out")


def _srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on Python ints (C truncating division)."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    v = a * b + ((1 << 30) if a * b >= 0 else 1 - (1 << 30))
    return (abs(v) >> 31) * (1 if v >= 0 else -1)


def _rdbpot(x: int, e: int) -> int:
    """gemmlowp RoundingDivideByPOT: ties away from zero."""
    mask = (1 << e) - 1
    return (x >> e) + (1 if (x & mask) > (mask >> 1) + (1 if x < 0 else 0) else 0)


def requantize_ref(acc, m, n, z, *, qmin, qmax, axis=None, dtype="int8"):
    out = np.empty(acc.shape, np.dtype(getattr(dtype, "name", dtype)))
    for idx in np.ndindex(*acc.shape):
        sh = _per(n, idx, axis)
        x = int(acc[idx]) << max(-sh, 0)
        x = min(max(x, -(1 << 31)), (1 << 31) - 1)
        y = _rdbpot(_srdhm(x, _per(m, idx, axis)), max(sh, 0)) + _per(z, idx, axis)
        out[idx] = min(max(y, qmin), qmax)
    return out


def _requant_samples(rng):
    acc = rng.integers(-200_000, 200_000, (3, 4)).astype(np.int32)
    acc[0, :2] = [(1 << 20) + (1 << 9), -(1 << 20) - (1 << 9)]           # exact ties after the shift
    return [Sample((acc, np.array(1 << 30, np.int32), np.array(10, np.int32), np.array(-3, np.int32)),
                   {"qmin": -128, "qmax": 127}, grad=(), note="M = 2^-11 exactly: ties round away from zero"),
            Sample((transposed_view(rng.integers(-5000, 5000, (4, 3)).astype(np.int32)),
                    rng.integers(1 << 30, 1 << 31, 3).astype(np.int32), np.array([3, 0, -2], np.int32),
                    np.array(0, np.int32)), {"qmin": -8, "qmax": 7, "axis": 1}, grad=(),
                   note="per channel, a left shift (M > 1), int4 range, view")]


row("requantize", _requant_samples, requantize_ref, differentiable=False, dtypes=(),
    not_differentiable_because="integer codes in and out (integer-only inference)")

# ---- ops registered outside aisys/framework/ops ----
import aisys.compiler.ops  # noqa: E402,F401  (registers conv2d_nhwc and fused)


def conv2d_nhwc_ref(x, w, b=None, **attrs):
    """The NCHW reference on transposed data: channels-last in, channels-last out."""
    return conv2d_ref(x.transpose(0, 3, 1, 2), w.transpose(0, 3, 1, 2), b, **attrs).transpose(0, 2, 3, 1)


def _nhwc_samples(rng):
    return [Sample(tuple(a.transpose(0, 2, 3, 1) if a.ndim == 4 else a for a in s.args), s.attrs, grad=(), note=s.note)
            for s in _conv_samples(rng)]


row("conv2d_nhwc", _nhwc_samples, conv2d_nhwc_ref, differentiable=False, lowp_tol=3,
    not_differentiable_because="an inference layout op that the layout pass creates (no VJP by design)")

BY_NAME: dict[str, OpInfo] = {r.name: r for r in OPS_TABLE}
assert len(BY_NAME) == len(OPS_TABLE), "duplicate rows in the op-info table"

# Ops deliberately without a row. Each entry says why and where it is tested instead.
EXEMPT: dict[str, str] = {
    "fused": "a compiler-made kernel whose attrs hold its body Graph: no inputs of its own to sample; "
             "tests/compiler (test_codegen, test_differential) run fused bodies against the unfused graph",
    "cond": "control flow whose attrs hold branch graphs built by aisys.frontend; values and gradients "
            "are tested in tests/frontend/test_script.py",
    "while_loop": "control flow whose attrs hold condition/body graphs built by aisys.frontend; tested in "
                  "tests/frontend/test_script.py (its VJP refuses by design: the trip count is data)",
}


def op_registering_modules() -> list[str]:
    """Every aisys module that registers ops (calls ``defop(`` at import), so coverage does not depend on
    which tests happened to import what."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2] / "aisys"
    mods = []
    for path in sorted(root.rglob("*.py")):
        if path.name in ("registry.py", "tape.py") or "defop(" not in path.read_text(encoding="utf-8"):
            continue
        rel = path.relative_to(root.parent).with_suffix("")
        mods.append(".".join(p for p in rel.parts if p != "__init__"))
    return mods
