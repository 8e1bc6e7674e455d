"""Automatic differentiation: reverse mode over the tape, forward mode with tangents, and checks.

The tape is implicit: each tensor made by a recorded op keeps ``_ctx = (op, inputs, attrs)``.
``backward`` visits those records in reverse topological order and calls each op's VJP — which is
written with ops, so with ``create_graph=True`` the backward pass is itself recorded and can be
differentiated again (grad-of-grad), or traced into a joint forward+backward graph.
"""
from __future__ import annotations

import itertools

import numpy as np

from .inplace import check_saved, resolve_rebased
from .walk import postorder
from .tensor import Tensor, _Mode, _ops as _tensor_methods, enable_grad, no_grad, set_grad_enabled


def _recorded_inputs(t):
    """The recorded inputs of ``t``'s op. An input that an in-place op rebased after this op ran is replaced,
    once, by the shadow of its old history."""
    ctx = t._ctx
    if ctx[1] is _FREED:
        raise RuntimeError("backward through a graph a second time: its saved intermediates were freed "
                           "after the first backward(); pass retain_graph=True to the first call")
    if _Mode.rebases:
        ins = resolve_rebased(ctx[1], t._epoch)
        if ins is not ctx[1]:
            t._ctx = ctx = (ctx[0], ins, ctx[2])
    return [x for x in ctx[1] if x._ctx is not None]


def _topo(roots):
    """Tensors reachable from ``roots`` through recorded ops, inputs before outputs."""
    return postorder([r for r in roots if r._ctx is not None], _recorded_inputs)


_FREED = ("freed",)     # replaces a record's inputs once backward() has released them (the op name stays)


def _accumulate(op, inputs, in_grads, grads: dict, keep: dict, arrays: bool) -> None:
    """Add one VJP's results into ``grads`` by input (an input used twice gets the sum), checking that the
    VJP returned one gradient per input, each of its input's shape. ``arrays``: the numpy sweep's values."""
    if len(in_grads) != len(inputs):
        raise RuntimeError(f"VJP of {op.name} returned {len(in_grads)} gradients for {len(inputs)} inputs")
    for x, gx in zip(inputs, in_grads):
        if gx is None or not x.requires_grad:
            continue
        if arrays and type(gx) is not np.ndarray:             # numpy returns scalars from 0-d arithmetic
            gx = np.asarray(gx, dtype=x._data.dtype)
        if tuple(gx.shape) != x._data.shape:
            raise RuntimeError(f"VJP of {op.name} returned a gradient of shape {tuple(gx.shape)} for an "
                               f"input of shape {x._data.shape} (defined at {op.source})")
        k = id(x)
        if k in grads:
            grads[k] = grads[k] + gx
        else:
            grads[k] = gx
            keep[k] = x


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _fast_path_ok(create_graph: bool) -> bool:
    """A plain first-order backward that nobody watches op by op can run on numpy arrays (each op's vjp_np twin)."""
    return not (create_graph or _Mode.observers or _Mode.anomaly or _Mode.forward_ad)


def _owner(a: np.ndarray):
    return a if a.base is None else a.base


def _own_leaf_grads(grads, keep, order, roots_data) -> None:
    """Make every leaf's gradient an array that only this leaf holds, row-major: optimizers and users read
    ``.grad`` and may scale it in place. A gradient that is a buffer made during this sweep (a twin's fresh
    result, or the whole of one seen through a view, like a weight gradient fresh out of a matmul) is kept
    as is; anything else is copied. Buffers that may be shared — the given root gradients, every value and
    input on the tape, a buffer already handed to another leaf — are never kept."""
    shared = None
    for k, g in grads.items():
        if keep[k]._ctx is not None:
            continue
        if g.size >= 4096 and g.flags.c_contiguous and g.flags.writeable:   # small: a copy is cheaper than checking
            if shared is None:
                shared = set()
                for d in roots_data:
                    shared.add(id(d))
                    shared.add(id(_owner(d)))
                for t in order:
                    for d in (t._data, *[x._data for x in t._ctx[1]]):
                        shared.add(id(d))
                        shared.add(id(_owner(d)))
            o = g if g.base is None else g.base
            if type(o) is np.ndarray and o.size == g.size and id(o) not in shared and id(g) not in shared:
                shared.add(id(o))
                shared.add(id(g))
                continue
        grads[k] = np.array(g, order="C")


def _run_backward_numpy(roots, grad_roots, retain_graph, targets=None, own_leaves=False):
    """The reverse sweep of ``_run_backward`` on numpy arrays: each op's ``vjp_np`` twin where it has one
    and the gradient's dtype is the op's (float32/float64 throughout), else its ``vjp`` on wrapped arrays.
    Nothing is recorded. Returns ({id(tensor): ndarray}, {id(tensor): tensor}); with ``own_leaves`` the
    leaves' arrays are theirs alone (see ``_own_leaf_grads``)."""
    grads: dict[int, np.ndarray] = {}
    keep: dict[int, Tensor] = {}
    for r, g in zip(roots, grad_roots):
        gd = g._data
        grads[id(r)] = gd if id(r) not in grads else grads[id(r)] + gd
        keep[id(r)] = r
    target_ids = None if targets is None else {id(t) for t in targets}
    order = _topo(roots)
    epoch = _Mode.epoch
    prev, _Mode.grad_enabled = _Mode.grad_enabled, False
    try:
        for t in reversed(order):
            tid = id(t)
            g = grads.get(tid)
            if g is None:
                continue
            if t._epoch < epoch:                        # an in-place write happened since this op ran
                check_saved(t)
            op, inputs, attrs = t._ctx
            twin = op.vjp_np
            if twin is not None:
                dt = t._data.dtype
                if g.dtype is not dt or dt not in _FAST_DTYPES:
                    twin = None
                else:
                    for x in inputs:                    # numpy and aisys promote mixed dtypes differently
                        xd = x._data.dtype
                        if xd is not dt and xd != np.bool_ and (not op.takes_indices or xd.kind not in "iu"):
                            twin = None
                            break
            if twin is not None:
                in_grads = twin(g, t, *inputs, **attrs)
            else:
                in_grads = [None if r is None else r._data
                            for r in op.vjp(Tensor._wrap(g), t, *inputs, **attrs)]
            _accumulate(op, inputs, in_grads, grads, keep, arrays=True)
            if target_ids is None or tid not in target_ids:
                del grads[tid]
    finally:
        _Mode.grad_enabled = prev
    if own_leaves:
        _own_leaf_grads(grads, keep, order, [g._data for g in grad_roots])
    if not retain_graph:
        for t in order:
            t._ctx = (t._ctx[0], _FREED, {})
    return grads, keep


def _run_backward(roots, grad_roots, create_graph, retain_graph, targets=None):
    """Core reverse sweep. Returns {id(tensor): grad} for leaves (or for ``targets`` when given)."""
    if _fast_path_ok(create_graph):
        grads, keep = _run_backward_numpy(roots, grad_roots, retain_graph, targets)
        return {k: Tensor._wrap(g) for k, g in grads.items()}, keep
    grads: dict[int, Tensor] = {}
    keep: dict[int, Tensor] = {}
    for r, g in zip(roots, grad_roots):
        grads[id(r)] = g if id(r) not in grads else grads[id(r)] + g
        keep[id(r)] = r
    target_ids = None if targets is None else {id(t) for t in targets}
    order = _topo(roots)
    epoch = _Mode.epoch
    with set_grad_enabled(create_graph):
        for t in reversed(order):
            g = grads.get(id(t))
            if g is None:
                continue
            if t._epoch < epoch:
                check_saved(t)
            op, inputs, attrs = t._ctx
            prev = getattr(_Mode, "backward_of", None)
            _Mode.backward_of = op.name
            try:
                in_grads = op.vjp(g, t, *inputs, **attrs)
            finally:
                _Mode.backward_of = prev
            _accumulate(op, inputs, in_grads, grads, keep, arrays=False)
            if target_ids is None or id(t) not in target_ids:
                if not create_graph:
                    del grads[id(t)]
        if not retain_graph:
            for t in order:
                t._ctx = (t._ctx[0], _FREED, {})
    return grads, keep


def _default_grad(t: Tensor, gradient):
    if gradient is None:
        if t._data.size != 1:
            raise RuntimeError(f"backward() on a tensor of shape {tuple(t.shape)} needs a gradient argument "
                               f"(only a scalar output has an implicit gradient of 1); did you forget .sum() or .mean()?")
        return Tensor._wrap(np.ones(t.shape, t._data.dtype))
    g = gradient if isinstance(gradient, Tensor) else Tensor(np.asarray(gradient, t._data.dtype))
    if tuple(g.shape) != tuple(t.shape):
        raise ValueError(f"backward(): gradient shape {tuple(g.shape)} does not match the output {tuple(t.shape)}")
    return g


def backward(t: Tensor, gradient=None, retain_graph: bool | None = None, create_graph: bool = False):
    """Accumulate d(t)/d(leaf) into every leaf's ``.grad`` (like torch.Tensor.backward)."""
    if not t.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no recorded history; "
                           "create the inputs with requires_grad=True (and not under aisys.no_grad())")
    retain = create_graph if retain_graph is None else retain_graph
    if _fast_path_ok(create_graph):
        grads, keep = _run_backward_numpy([t], [_default_grad(t, gradient)], retain, own_leaves=True)
        for k, g in grads.items():
            leaf = keep[k]
            if leaf._ctx is not None:
                continue
            if leaf.grad is None:
                leaf.grad = Tensor._wrap(g)
            else:
                leaf.grad = Tensor._wrap(leaf.grad._data + g)
        return
    grads, keep = _run_backward([t], [_default_grad(t, gradient)], create_graph, retain)
    for k, g in grads.items():
        leaf = keep[k]
        if leaf._ctx is not None:          # an intermediate (or freed) tensor: only leaves get .grad
            continue
        if not create_graph:
            owned = Tensor._wrap(np.array(g._data, order="C"))   # own the memory, row-major (no broadcast or
                                                                  # transposed views in .grad: optimizers read it)
            owned._trace = g._trace                      # the same value: a tracer keeps its graph node for it
            g = owned
        if leaf.grad is None:
            leaf.grad = g
        elif create_graph or _Mode.observers:            # accumulate through an op so a tracer records it
            leaf.grad = leaf.grad + g
        else:
            leaf.grad = Tensor._wrap(leaf.grad._data + g._data)


_tensor_methods.backward = backward         # Tensor.backward calls it (tensor.py cannot import this module)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False):
    """torch.autograd.grad: gradients of ``outputs`` w.r.t. ``inputs`` returned, not accumulated."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    gos = [None] * len(outs) if grad_outputs is None else (
        [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs))
    for o in outs:
        if not o.requires_grad:
            raise RuntimeError("grad(): an output does not require grad; did you compute it under no_grad()?")
    retain = create_graph if retain_graph is None else retain_graph
    grads, _ = _run_backward(outs, [_default_grad(o, g) for o, g in zip(outs, gos)], create_graph, retain, targets=ins)
    result = []
    for i, x in enumerate(ins):
        g = grads.get(id(x))
        if g is None and not allow_unused:
            raise RuntimeError(f"grad(): input {i} (shape {tuple(x.shape)}) was not used to compute the outputs; "
                               f"pass allow_unused=True to get None for it")
        result.append(g)
    return tuple(result)


# ---- functional transforms ------------------------------------------------------------------------
def _as_inputs(args):
    return [a if isinstance(a, Tensor) else Tensor(a) for a in args]


def vjp(f, *primals):
    """Returns (f(*primals), vjp_fn) where vjp_fn(cotangent) gives one gradient per primal."""
    xs = [Tensor._wrap(p._data if isinstance(p, Tensor) else np.asarray(p)).requires_grad_(True) for p in primals]
    with enable_grad():
        out = f(*xs)

    def vjp_fn(cotangent):
        return grad(out, xs, cotangent, retain_graph=True, create_graph=True, allow_unused=True)

    return out.detach(), vjp_fn


def grad_fn(f, argnums=0):
    """aisys.grad(f): a function returning df/dx for scalar-valued f (like jax.grad). Nests: grad(grad(f))."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    def g(*args):
        args = list(args)
        xs = []
        for i in nums:
            a = args[i]
            if isinstance(a, Tensor):
                if a.requires_grad:
                    x = a
                else:
                    x = Tensor._wrap(a._data).requires_grad_(True)
                    x._tangent = a._tangent      # keep a forward-mode tangent: jvp(grad(f)) is a Hessian-vector product
            else:
                x = Tensor(np.asarray(a, dtype=np.float64 if isinstance(a, float) else None), requires_grad=True) \
                    if not isinstance(a, np.ndarray) else Tensor(a, requires_grad=True)
            args[i] = x
            xs.append(x)
        with enable_grad():
            out = f(*args)
            if out._data.size != 1:
                raise ValueError(f"aisys.grad: f must return a scalar, got shape {tuple(out.shape)}; use aisys.vjp")
            # an output with no recorded history is constant in the inputs: zero gradients (as for unused inputs)
            gs = grad(out, xs, create_graph=True, allow_unused=True) if out.requires_grad else (None,) * len(xs)
        gs = tuple(gz if gz is not None else Tensor._wrap(np.zeros(x.shape, x._data.dtype)) for gz, x in zip(gs, xs))
        return gs[0] if single else gs

    return g


def jvp(f, primals, tangents):
    """Forward mode: (f(*primals), J·tangents) in one sweep, each op pushing its tangent with its JVP rule."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents")
    xs = []
    for p, t in zip(primals, tangents):
        x = Tensor._wrap((p._data if isinstance(p, Tensor) else np.asarray(p)).copy())
        tt = t if isinstance(t, Tensor) else Tensor(np.asarray(t, dtype=x._data.dtype))
        if tuple(tt.shape) != tuple(x.shape):
            raise ValueError(f"jvp: tangent shape {tuple(tt.shape)} does not match primal shape {tuple(x.shape)}")
        x._tangent = tt
        xs.append(x)
    _Mode.forward_ad += 1
    try:
        out = f(*xs)
    finally:
        _Mode.forward_ad -= 1
    tan = out._tangent
    if tan is None:
        tan = Tensor._wrap(np.zeros(out.shape, out._data.dtype))
    return out, tan


# ---- numerical checks --------------------------------------------------------------------------------
def _numeric_jacobian(f, xs, eps):
    out0 = f(*xs)._data
    jac = []
    for x in xs:
        J = np.zeros((out0.size, x._data.size))
        flat = x._data.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            plus = f(*xs)._data.reshape(-1).astype(np.float64)
            flat[j] = old - eps
            minus = f(*xs)._data.reshape(-1).astype(np.float64)
            flat[j] = old
            J[:, j] = (plus - minus) / (2 * eps)
        jac.append(J)
    return jac


def _analytic_jacobian(f, xs):
    xs_g = [Tensor._wrap(x._data).requires_grad_(True) for x in xs]
    with enable_grad():
        out = f(*xs_g)
    jac = [np.zeros((out._data.size, x._data.size)) for x in xs]
    for i in range(out._data.size):
        e = np.zeros(out._data.size, out._data.dtype)
        e[i] = 1.0
        gs = grad(out, xs_g, Tensor._wrap(e.reshape(out.shape)), retain_graph=True, allow_unused=True)
        for k, gk in enumerate(gs):
            if gk is not None:
                jac[k][i] = gk._data.reshape(-1)
    return jac


def gradcheck(f, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, second_order: bool = False,
              raise_exception: bool = True) -> bool:
    """Compare the VJP-built Jacobian of ``f`` with central differences (use float64 inputs).

    With ``second_order=True`` also checks the gradient of the VJP itself (gradgradcheck): the map
    (inputs, v) -> vᵀ·J(inputs) is differentiated the same way.
    """
    xs = _as_inputs(inputs)
    for x in xs:
        if x.dtype.name != "float64":
            raise TypeError(f"gradcheck: use float64 inputs for finite differences, got {x.dtype.name}")
    with no_grad():
        num = _numeric_jacobian(f, [Tensor._wrap(x._data.copy()) for x in xs], eps)
    ana = _analytic_jacobian(f, xs)
    for k, (a, n) in enumerate(zip(ana, num)):
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            i, j = np.unravel_index(np.argmax(np.abs(a - n)), a.shape)
            msg = (f"gradcheck failed for input {k}: analytic d out[{i}] / d in[{j}] = {a[i, j]:.6g} but "
                   f"central differences give {n[i, j]:.6g} (max abs diff {np.abs(a - n).max():.3g})")
            if raise_exception:
                raise AssertionError(msg)
            return False
    if second_order:
        with no_grad():
            out = f(*[Tensor._wrap(x._data.copy()) for x in xs])
        v = Tensor._wrap(np.random.default_rng(0).standard_normal(out.shape))

        def vjp_of(*args):
            ins, cot = args[:-1], args[-1]
            ins = [a if a.requires_grad else Tensor._wrap(a._data).requires_grad_(True) for a in ins]
            with enable_grad():
                o = f(*ins)
                gs = grad(o, ins, cot, create_graph=True, allow_unused=True)
            parts = [gk.reshape(-1) for gk in gs if gk is not None]
            from .ops import cat
            return cat(parts) if len(parts) > 1 else parts[0]

        return gradcheck(vjp_of, list(xs) + [v], eps, atol, rtol, second_order=False, raise_exception=raise_exception)
    return True


def gradgradcheck(f, inputs, **kw) -> bool:
    return gradcheck(f, inputs, second_order=True, **kw)


# ---- grad_fn nodes and custom Functions (PyTorch's torch.autograd.Function) ---------------------------------
class Node:
    """What ``t.grad_fn`` returns: the recorded op that made ``t``, as a node of the backward graph.

    ``name()`` is PyTorch's spelling (``MulBackward0``); ``op`` the registry entry; ``next_functions`` one
    ``(node, 0)`` pair per input — the input's own node, an ``AccumulateGrad`` for a leaf that requires grad
    (where its gradient is summed into ``.grad``), or ``None`` for an input that needs no gradient."""

    __slots__ = ("_tensor",)

    def __init__(self, tensor: Tensor):
        self._tensor = tensor

    @property
    def op(self):
        return self._tensor._ctx[0]

    def name(self) -> str:
        op = self.op.name
        custom = getattr(self.op, "_function", None)
        return f"{custom.__name__}Backward" if custom else "".join(p.capitalize() for p in op.split("_")) + "Backward0"

    @property
    def next_functions(self) -> tuple:
        inputs = self._tensor._ctx[1]
        if inputs is _FREED:
            return ()
        out = []
        for x in inputs:
            if x._ctx is not None:
                out.append((Node(x), 0))
            elif x.requires_grad:
                out.append((AccumulateGrad(x), 0))
            else:
                out.append((None, 0))
        return tuple(out)

    def __eq__(self, other) -> bool:
        return isinstance(other, Node) and other._tensor._ctx is self._tensor._ctx

    def __hash__(self) -> int:
        return id(self._tensor._ctx)

    def __repr__(self) -> str:
        return f"<{self.name()} ({self.op.name})>"


class AccumulateGrad:
    """The end of a backward path: the gradient is added into ``variable.grad`` (a leaf)."""

    __slots__ = ("variable",)
    next_functions = ()

    def __init__(self, variable: Tensor):
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad of {self.variable.dtype.short}{list(self.variable.shape)}>"


class FunctionCtx:
    """The ``ctx`` a custom Function's forward fills and its backward reads (PyTorch's names)."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self._saved = ()
        self._versions = ()

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors for backward; their versions are checked, so an in-place change in between raises."""
        from .inplace import version
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward: only tensors (or None) can be saved, got {type(t).__name__}; "
                                f"keep other values as attributes of ctx (ctx.k = 3)")
        self._saved = tensors
        self._versions = tuple(None if t is None else version(t._data) for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        from .inplace import version
        for k, (t, v) in enumerate(zip(self._saved, self._versions)):
            if t is not None and version(t._data) != v:
                raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an "
                                   f"in-place operation: saved tensor {k} ({t.dtype.short}{list(t.shape)}) of a custom "
                                   f"Function was saved at version {v}, now version {version(t._data)}")
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)


class Function:
    """A custom differentiable operation, as ``torch.autograd.Function``::

        class Exp(aisys.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp(); ctx.save_for_backward(y); return y
            @staticmethod
            def backward(ctx, g):
                (y,) = ctx.saved_tensors; return g * y
        y = Exp.apply(x)

    ``forward`` runs without recording; its result gets one tape entry whose VJP calls ``backward`` (with
    grad mode on under ``create_graph``, so a backward written with ops is differentiable again). ``backward``
    returns one gradient (or None) per argument of ``forward``. One tensor output.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a custom Function defines forward(ctx, *args) as a @staticmethod")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a custom Function defines backward(ctx, *grads) as a @staticmethod")

    @classmethod
    def _opdef(cls):
        op = cls.__dict__.get("_op")
        if op is None:
            from .registry import FusionKind, OpDef

            def vjp(g, out, *inputs, ctx, positions, n_args):
                grads = cls.backward(ctx, g)
                grads = grads if isinstance(grads, tuple) else (grads,)
                if len(grads) != n_args:
                    raise RuntimeError(f"{cls.__name__}.backward returned {len(grads)} gradients, but forward took "
                                       f"{n_args} arguments: return one per argument (None where there is none)")
                picked = []
                for x, k in zip(inputs, positions):
                    gk = grads[k]
                    if gk is not None and not isinstance(gk, Tensor):
                        gk = Tensor(gk)
                    if gk is not None and tuple(gk.shape) != tuple(x.shape):
                        raise RuntimeError(f"{cls.__name__}.backward returned a gradient of shape {tuple(gk.shape)} "
                                           f"for argument {k} of shape {tuple(x.shape)}")
                    picked.append(gk)
                return tuple(picked)

            def not_in_graphs(*args, **kwargs):
                raise TypeError(f"{cls.__name__} is a custom autograd.Function: it runs eagerly and in backward(), "
                                f"but a graph cannot re-run it (it is not a registry op)")

            op = OpDef(name=f"{cls.__name__} (autograd.Function)", infer=not_in_graphs, ref=not_in_graphs, vjp=vjp,
                       jvp=None, fusion=FusionKind.OPAQUE, cost=not_in_graphs, pure=False, saved=(),
                       source=f"{cls.__module__}.{cls.__qualname__}")
            op._function = cls
            cls._op = op
        return op

    @classmethod
    def apply(cls, *args):
        positions = tuple(k for k, a in enumerate(args) if isinstance(a, Tensor))
        inputs = tuple(args[k] for k in positions)
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a.requires_grad for a in args))
        with no_grad():
            out = cls.forward(ctx, *args)
        if isinstance(out, (tuple, list)):
            raise TypeError(f"{cls.__name__}.forward returned {len(out)} values; aisys custom Functions return one "
                            f"tensor (split the computation into several Functions)")
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls.__name__}.forward must return a Tensor, got {type(out).__name__}")
        if any(out is x for x in inputs) or out._ctx is not None or out.requires_grad:
            out = Tensor._wrap(out._data)                 # the result gets a tape entry of its own
        op = cls._opdef()
        attrs = {"ctx": ctx, "positions": positions, "n_args": len(args)}
        if _Mode.grad_enabled and any(x.requires_grad for x in inputs):
            out.requires_grad = True
            out._ctx = (op, inputs, attrs)
            out._epoch = _Mode.epoch
        for ob in list(_Mode.observers):
            ob(op, inputs, attrs, out)
        return out


_tensor_methods.Node = Node                 # Tensor.grad_fn makes one (tensor.py cannot import this module)
