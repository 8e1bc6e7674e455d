"""Control flow as graph ops: ``cond`` (if/else) and ``while_loop``, each carrying its subgraphs.

A static graph cannot hold a Python ``if``; it holds an op whose attributes are the two branch
graphs and whose first input is the predicate (ZOMI's lecture 03DataFlow/05ControlFlow calls this
the "graph-expressed" control flow of TensorFlow's ``tf.cond``/``tf.while_loop``; ``torch.cond`` and
``jax.lax.cond`` are the same idea). Both branches are *in* the graph, so the graph stays right for
inputs that take either branch — unlike a trace, which keeps only the branch its example took.

- ``cond(pred, *operands, then_graph, else_graph)``: runs one branch graph on the operands. Branch
  graphs take the same operands (a branch that ignores one simply does not read it) and produce one
  value of the same shape and dtype (several results are several ``cond`` nodes, one per output).
- ``while_loop(*carried, *captured, cond_graph, body_graph, n_carried, index)``: repeats ``body_graph``
  on the carried values while ``cond_graph`` says so, and returns carried value ``index``.

Their ``ref`` runs subgraphs with :func:`aisys.framework.graph.interpret`; their fusion kind is OPAQUE.
The VJP of ``cond`` is another ``cond`` whose branches are the branches' VJP graphs (built by tracing
reverse-mode autodiff through each branch), so a traced training step through a ``cond`` keeps both
branches in its backward half too.

The functional forms :func:`cond` and :func:`while_loop` build the subgraphs from Python functions by
tracing them; tensors a branch reads from outside become extra operands ("captures").
"""
from __future__ import annotations

import numpy as np

from ..framework import autograd as _autograd
from ..framework.errors import ShapeError, user_location
from ..framework.graph import Graph, interpret
from ..framework.interpreter import TensorInterpreter
from ..framework.registry import Cost, FusionKind, Spec, defop, get as get_op, not_lowerable

_CONTROL_FLOW = not_lowerable("data-dependent control flow: the chip runs one static instruction stream; lower each "
                              "branch or the loop body as its own graph")
from ..framework.tensor import Tensor, _Mode, apply, as_tensor, enable_grad
from .trace import Tracer

__all__ = ["cond", "while_loop", "set_max_while_iterations", "run_graph", "capture_graph", "capture_branches",
           "CaptureTracer", "prune_to_output", "align_inputs"]


# ---- executing a graph with tensor ops ---------------------------------------------------------------
def run_graph(graph: Graph, *inputs, params: dict | None = None) -> list[Tensor]:
    """Run ``graph`` by calling :func:`apply` node by node, so autodiff and observers see every op
    (interpret() does the same on bare numpy arrays). ``params`` maps param names to live tensors."""
    return TensorInterpreter(graph).run(*inputs, params=params)


# ---- recording subgraphs -----------------------------------------------------------------------------
class CaptureTracer(Tracer):
    """Records a branch or loop body into its own graph. A tensor the body reads from outside becomes
    an extra graph input (a *capture*) when it belongs to the enclosing program — it is tagged by
    another tracer, or it is a trainable leaf; any other outside tensor is a constant snapshot."""

    def __init__(self, graph: Graph, location=None, state_names=None, namer=None):
        super().__init__(graph, state_names)
        self.captures: list[Tensor] = []
        self.namer = namer              # tensor -> a readable name for its capture input (or None)
        if location is not None:
            self.location = location

    def node_of(self, t: Tensor) -> int:
        nid = self.lookup(t)
        if nid is not None:
            return nid
        outer = isinstance(t._trace, dict) and bool(t._trace)
        if outer or id(t) in self.state_names or (t.requires_grad and t._ctx is None):
            name = self.state_names.get(id(t)) or (self.namer(t) if self.namer else None) or f"c{len(self.captures)}"
            node = self.graph.add_input(name, t.shape, t.dtype, source=self.location())
            self._dynamic.add(node.id)
            self.captures.append(t)
            self.bind(t, node.id)
            return node.id
        node = self.graph.add_const(np.array(t._data), source=self.location())
        self.bind(t, node.id)
        return node.id

    def on_bool(self, t: Tensor) -> None:
        if self.lookup(t) is not None and self.lookup(t) in self._dynamic:
            raise ValueError(f"a tensor was used as a Python bool inside a branch or loop body (at "
                             f"{self.location()}); nested data-dependent control flow must use cond / while_loop "
                             f"too (or aisys.script)")


def capture_graph(fn, args: list[Tensor], name: str, arg_names: list[str] | None = None,
                  location=None, state_names=None) -> tuple[Graph, list[Tensor], object]:
    """Trace ``fn(*args)`` into a fresh graph whose inputs are ``args`` then the captures.

    Returns (graph, captures, raw result). Other observers are paused meanwhile: the enclosing program
    records the control-flow op, not the ops inside its branches.
    """
    graph = Graph(name)
    tracer = CaptureTracer(graph, location, state_names)
    placeholders = []
    for k, a in enumerate(args):
        p = Tensor._wrap(np.array(a._data))
        p.requires_grad = a.requires_grad
        node = graph.add_input(arg_names[k] if arg_names else f"a{k}", p.shape, p.dtype, source=tracer.location())
        tracer._dynamic.add(node.id)
        tracer.bind(p, node.id)
        placeholders.append(p)
    saved = _Mode.observers
    _Mode.observers = [tracer]
    try:
        with np.errstate(all="ignore"):
            result = fn(*placeholders)
        outs = result if isinstance(result, (tuple, list)) else [result]
        ids = []
        for r in outs:
            if not isinstance(r, Tensor):
                r = as_tensor(r)
            ids.append(tracer.node_of(r))
        graph.set_outputs(ids)
    finally:
        _Mode.observers = saved
        tracer.release(restore_state=True)
    return graph, tracer.captures, result


def prune_to_output(graph: Graph, k: int, name: str | None = None) -> Graph:
    """A copy of ``graph`` returning only output ``k``, without the nodes it does not need (inputs stay)."""
    g = graph.copy()
    g.name = name or graph.name
    g.set_outputs([graph.outputs[k]])
    live = g.live_ids() | set(g.inputs)
    for i in [i for i in g.nodes if i not in live]:
        g.remove(i)
    return g


def align_inputs(parts: list[tuple[Graph, int, list[Tensor]]]) -> list[Tensor]:
    """Give several subgraphs one shared input list: their ``n_fixed`` leading inputs, then the union of
    their captures (a graph that does not read a capture gets an unused input for it).
    ``parts`` holds (graph, n_fixed, captures); returns the union of captures in order."""
    union: list[Tensor] = []
    names: dict[int, str] = {}
    for graph, n_fixed, caps in parts:
        for j, c in enumerate(caps):
            if id(c) not in names:
                names[id(c)] = graph.nodes[graph.inputs[n_fixed + j]].name
                union.append(c)
    for graph, n_fixed, caps in parts:
        fixed = graph.inputs[:n_fixed]
        have = {id(c): graph.inputs[n_fixed + j] for j, c in enumerate(caps)}
        order = []
        for j, c in enumerate(union):
            if id(c) in have:
                order.append(have[id(c)])
            else:
                node = graph.add_input(names[id(c)], c.shape, c.dtype)
                order.append(node.id)
        graph.inputs = fixed + order
        # keep the inputs first in node order (new inputs were appended at the end)
        graph.nodes = {**{i: graph.nodes[i] for i in graph.inputs},
                       **{i: n for i, n in graph.nodes.items() if i not in set(graph.inputs)}}
    return union


# ---- the cond op ------------------------------------------------------------------------------------
def _check_operands(op: str, graph: Graph, operands, what: str) -> None:
    if len(operands) != len(graph.inputs):
        raise ShapeError(op, f"{what} takes {len(graph.inputs)} operands but {len(operands)} were given",
                         rule="every branch graph takes the same operands as the op")
    for k, (x, i) in enumerate(zip(operands, graph.inputs)):
        n = graph.nodes[i]
        if tuple(x.shape) != tuple(n.shape) or x.dtype is not n.dtype:
            raise ShapeError(op, f"operand {k} is {x.dtype.short}{list(x.shape)} but {what} input "
                             f"{n.name!r} is {n.type_str()}", shapes=(tuple(x.shape), tuple(n.shape)),
                             rule="operands must match the subgraph's inputs in shape and dtype")


def _check_pred(op: str, pred) -> None:
    if int(np.prod(pred.shape)) != 1:
        raise ShapeError(op, f"the predicate must hold one value, got shape {tuple(pred.shape)}",
                         shapes=(tuple(pred.shape),),
                         rule="reduce the condition to a single value first, e.g. (x.sum() > 0)")


def _cond_infer(pred, *operands, then_graph: Graph, else_graph: Graph, **attrs):
    _check_pred("cond", pred)
    _check_operands("cond", then_graph, operands, "the then-branch")
    _check_operands("cond", else_graph, operands, "the else-branch")
    if len(then_graph.outputs) != 1 or len(else_graph.outputs) != 1:
        raise ShapeError("cond", f"each branch must return one value, got {len(then_graph.outputs)} and "
                         f"{len(else_graph.outputs)}", rule="use one cond per result")
    a, b = then_graph.nodes[then_graph.outputs[0]], else_graph.nodes[else_graph.outputs[0]]
    if tuple(a.shape) != tuple(b.shape) or a.dtype is not b.dtype:
        var = attrs.get("var")
        what = f" for {var!r}" if var else ""
        raise ShapeError("cond", f"the branches disagree{what}: then gives {a.type_str()}, else gives {b.type_str()}",
                         shapes=(tuple(a.shape), tuple(b.shape)),
                         rule="both branches of a tensor-dependent if must produce the same shape and dtype")
    return Spec(tuple(a.shape), a.dtype)


def _truth(pred: np.ndarray) -> bool:
    return bool(np.asarray(pred).reshape(()))


def _cond_ref(pred, *operands, then_graph: Graph, else_graph: Graph, **attrs):
    branch = then_graph if _truth(pred) else else_graph
    with np.errstate(all="ignore"):
        return interpret(branch, *operands)[0]


def graph_cost(graph: Graph) -> Cost:
    """FLOPs and bytes of running every op node of ``graph`` once (nested control flow included)."""
    flops = byts = 0
    for n in graph.op_nodes:
        c = get_op(n.op).cost([graph.nodes[i].spec for i in n.inputs], n.spec, **n.attrs)
        flops += c.flops
        byts += c.bytes
    return Cost(flops, byts)


def _cond_cost(in_specs, out_spec, then_graph: Graph, else_graph: Graph, **attrs) -> Cost:
    """The costlier branch (a static estimate cannot know which one runs)."""
    a, b = graph_cost(then_graph), graph_cost(else_graph)
    return a if (a.flops, a.bytes) >= (b.flops, b.bytes) else b


_VJP_CACHE: dict[tuple, tuple[Graph, Graph]] = {}   # (id(branch), wrt) -> (branch, its VJP graph)


def branch_vjp_graph(branch: Graph, wrt: int) -> Graph:
    """A graph (*operands, g) -> d(branch output)/d(operand ``wrt``)·g, written by tracing reverse-mode
    autodiff through the branch (so it is made of ordinary ops, and can be drawn and compiled)."""
    key = (id(branch), wrt)
    if key in _VJP_CACHE:
        return _VJP_CACHE[key][1]
    out = branch.nodes[branch.outputs[0]]
    args = [Tensor._wrap(np.zeros(branch.nodes[i].shape, branch.nodes[i].dtype.np)) for i in branch.inputs]
    args.append(Tensor._wrap(np.zeros(out.shape, out.dtype.np)))

    def vjp_of_branch(*xs):
        ins, g = list(xs[:-1]), xs[-1]
        target = Tensor._wrap(ins[wrt]._data)
        target.requires_grad = True
        target._trace = ins[wrt]._trace
        ins[wrt] = target
        with enable_grad():
            (y,) = run_graph(branch, *ins)
            if not y.requires_grad:
                return Tensor._wrap(np.zeros(target.shape, target._data.dtype))
            (gx,) = _autograd.grad(y, [target], g, allow_unused=True)
        return gx if gx is not None else Tensor._wrap(np.zeros(target.shape, target._data.dtype))

    names = [branch.nodes[i].name for i in branch.inputs] + ["grad_out"]
    g, caps, _ = capture_graph(vjp_of_branch, args, f"{branch.name}_vjp{wrt}", names)
    if caps:      # cannot happen: the branch is closed over its inputs
        raise RuntimeError("internal: branch VJP graph captured outside tensors")
    if len(_VJP_CACHE) > 512:
        _VJP_CACHE.clear()
    _VJP_CACHE[key] = (branch, g)        # keep the branch alive so its id is not reused
    return g


def _cond_vjp(g, out, pred, *operands, then_graph: Graph, else_graph: Graph, **attrs):
    grads = [None]
    for k, x in enumerate(operands):
        if not (x.requires_grad and x.dtype.is_floating):
            grads.append(None)
            continue
        tg, eg = branch_vjp_graph(then_graph, k), branch_vjp_graph(else_graph, k)
        grads.append(apply("cond", pred, *operands, g, then_graph=tg, else_graph=eg))
    return tuple(grads)


COND = defop("cond", infer=_cond_infer, ref=_cond_ref, vjp=_cond_vjp, fusion=FusionKind.OPAQUE, cost=_cond_cost,
             chip=_CONTROL_FLOW,
             doc="if/else as one op: runs then_graph or else_graph on the operands, chosen by a one-element "
                 "predicate. Both branches live in the graph.", torch_name="torch.cond")


# ---- the while_loop op ---------------------------------------------------------------------------------
def _while_infer(*operands, cond_graph: Graph, body_graph: Graph, n_carried: int, index: int = 0, **attrs):
    _check_operands("while_loop", cond_graph, operands, "the condition graph")
    _check_operands("while_loop", body_graph, operands, "the body graph")
    p = cond_graph.nodes[cond_graph.outputs[0]]
    if p.numel != 1:
        raise ShapeError("while_loop", f"the loop condition must be one value, got {p.type_str()}",
                         rule="reduce the condition to a single value, e.g. (h.sum() < 10)")
    if len(body_graph.outputs) != n_carried:
        raise ShapeError("while_loop", f"the body returns {len(body_graph.outputs)} values for {n_carried} "
                         f"loop-carried values", rule="the body returns the new value of every carried value")
    for k in range(n_carried):
        a, b = operands[k], body_graph.nodes[body_graph.outputs[k]]
        if tuple(a.shape) != tuple(b.shape) or a.dtype is not b.dtype:
            var = (attrs.get("vars") or [None] * n_carried)[k]
            what = repr(var) if var else f"carried value {k}"
            raise ShapeError("while_loop", f"{what} enters the loop as {a.dtype.short}{list(a.shape)} but the body "
                             f"makes it {b.type_str()}", shapes=(tuple(a.shape), tuple(b.shape)),
                             rule="a loop-carried value must keep its shape and dtype")
    if not 0 <= index < n_carried:
        raise ShapeError("while_loop", f"index {index} is out of range for {n_carried} carried values")
    a = operands[index]
    return Spec(tuple(a.shape), a.dtype)


_LOOP_LIMIT = [1_000_000]


def set_max_while_iterations(n: int) -> int:
    """How many trips a ``while_loop`` may take before it stops with an error (default 1,000,000; a loop's own
    ``max_iterations`` attr overrides it). Returns the previous limit."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_max_while_iterations: n={n!r} must be a positive int")
    prev, _LOOP_LIMIT[0] = _LOOP_LIMIT[0], n
    return prev


def _while_ref(*operands, cond_graph: Graph, body_graph: Graph, n_carried: int, index: int = 0, **attrs):
    carried, captured = list(operands[:n_carried]), list(operands[n_carried:])
    cap = attrs.get("max_iterations") or _LOOP_LIMIT[0]
    trips = 0
    with np.errstate(all="ignore"):
        while _truth(interpret(cond_graph, *carried, *captured)[0]):
            if trips >= cap:
                where = f" at {attrs['_where']}" if attrs.get("_where") else ""
                raise RuntimeError(f"while_loop{where}: the condition still holds after {cap:,} iterations, so the "
                                   f"loop was stopped (its condition may never become false). Raise the cap with "
                                   f"aisys.frontend.set_max_while_iterations(n) or the loop's max_iterations if it "
                                   f"really needs more")
            carried = interpret(body_graph, *carried, *captured)
            trips += 1
    return carried[index]


def _while_cost(in_specs, out_spec, cond_graph: Graph, body_graph: Graph, **attrs) -> Cost:
    """One trip through the condition and the body (the trip count is only known at run time)."""
    a, b = graph_cost(cond_graph), graph_cost(body_graph)
    return Cost(a.flops + b.flops, a.bytes + b.bytes)


def _while_vjp(g, out, *operands, **attrs):
    raise NotImplementedError(
        "gradients through a tensor-dependent while_loop are not supported: the trip count is data, so "
        "reverse mode would have to store every iteration. Loop a fixed number of times with a Python "
        "`for _ in range(n)` (unrolled into the graph) if you need gradients.")


WHILE = defop("while_loop", infer=_while_infer, ref=_while_ref, vjp=_while_vjp, fusion=FusionKind.OPAQUE,
              chip=_CONTROL_FLOW,
              cost=_while_cost, doc="A data-dependent loop as one op: repeats body_graph while cond_graph holds; "
                                    "returns carried value `index`.", torch_name="torch.while_loop")


# ---- functional forms -------------------------------------------------------------------------------
def capture_branches(true_fn, false_fn, operands) -> tuple[Graph, Graph, list[Tensor]]:
    """Both branches as graphs over one operand list: ``(then_graph, else_graph, captured)``.

    Each function is traced on ``operands`` into its own graph; tensors a branch reads from outside
    (a weight in its closure) are *captured*: they become extra inputs after the operands, in the order
    of ``captured``, shared by both graphs. The op is then ``cond(pred, *operands, *captured)``.
    """
    ops = [as_tensor(o) for o in operands]
    tg, tcaps, tres = capture_graph(true_fn, ops, "then")
    eg, ecaps, eres = capture_graph(false_fn, ops, "else")
    if len(tg.outputs) != len(eg.outputs):
        raise ValueError(f"cond: the true branch returns {len(tg.outputs)} values, the false branch "
                         f"{len(eg.outputs)} (at {user_location()})")
    caps = align_inputs([(tg, len(ops), tcaps), (eg, len(ops), ecaps)])
    tg.returns_tuple = isinstance(tres, (tuple, list))
    return tg, eg, caps


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``, recorded as one ``cond`` op that
    holds both branches (like ``torch.cond``). Runs eagerly; a trace of it keeps both branches.
    Branches return a tensor or a tuple of tensors with the same shapes and dtypes (one op per value)."""
    pred = as_tensor(pred)
    _check_pred("cond", pred)
    ops = [as_tensor(o) for o in operands]
    then_graph, else_graph, captured = capture_branches(true_fn, false_fn, ops)
    if len(then_graph.outputs) == 1:
        out = apply("cond", pred, *ops, *captured, then_graph=then_graph, else_graph=else_graph)
        return (out,) if then_graph.returns_tuple else out
    return tuple(apply("cond", pred, *ops, *captured, then_graph=prune_to_output(then_graph, k, "then"),
                       else_graph=prune_to_output(else_graph, k, "else"))
                 for k in range(len(then_graph.outputs)))


def while_loop(cond_fn, body_fn, carried, max_iterations: int | None = None):
    """Repeat ``carried = body_fn(*carried)`` while ``cond_fn(*carried)`` is true, recorded as
    ``while_loop`` ops (like ``torch.while_loop``). ``carried`` is a tuple of tensors; returns the
    final tuple. Not differentiable (see the op's docs). The loop stops with an error after
    ``max_iterations`` trips (default: :func:`set_max_while_iterations`)."""
    init = [as_tensor(c) for c in carried]
    cg, ccaps, _ = capture_graph(cond_fn, init, "while_cond")
    bg, bcaps, _ = capture_graph(body_fn, init, "while_body")
    if len(cg.outputs) != 1:
        raise ValueError(f"while_loop: cond_fn must return one tensor, got {len(cg.outputs)}")
    caps = align_inputs([(cg, len(init), ccaps), (bg, len(init), bcaps)])
    limit = {} if max_iterations is None else {"max_iterations": int(max_iterations)}
    return tuple(apply("while_loop", *init, *caps, cond_graph=cg, body_graph=bg, n_carried=len(init), index=k,
                       _where=user_location(), **limit) for k in range(len(init)))

