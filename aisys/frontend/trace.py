"""Graph capture by tracing: run the program once on real values and write down every op it performs.

``aisys.trace(fn, *example_inputs)`` runs ``fn`` eagerly on *tracer tensors* — ordinary tensors holding
the example values whose ``_trace`` slot also names the graph node that computes them. Every op goes
through :func:`aisys.framework.tensor.apply`, which calls the observers in ``_Mode.observers``; the
:class:`Tracer` is such an observer and appends one node per op. This is the "trace-based" conversion of
ZOMI's lecture 03DataFlow/06StaticGraph (and of ``torch.jit.trace`` / ``torch.fx`` symbolic tracing):
cheap and exact for straight-line code, blind to Python control flow — a tensor used as a Python
``bool`` picks one branch, and the graph silently keeps only that branch. The tracer notices the
``bool`` (``on_bool``) and attaches a warning ("branch baked at file:line") to the graph.

Because backward VJPs and optimizer updates are ops too, tracing a whole training step (forward,
``loss.backward()``, ``p.assign_(p - lr * p.grad)``) yields one *joint* graph: the backward half is
written by autodiff and each parameter update becomes a graph output (``graph.updates``).
"""
from __future__ import annotations

import inspect
import traceback
import warnings
from typing import Any, Callable, Iterable

import numpy as np

from ..framework.errors import user_location
from ..framework.graph import Graph
from ..framework.inplace import bump
from ..framework.tensor import Tensor, _Generator, _Mode, observe_ops

__all__ = ["trace", "record_ops", "Tracer", "TracerWarning", "named_state", "find_modules", "referenced_tensors"]


class TracerWarning(UserWarning):
    """``aisys.trace`` recorded something that holds only for the example input: a branch taken on a tensor's
    value, or a value that left the graph as a Python number or numpy array (as ``torch.jit.TracerWarning``)."""


_SHOWN: dict = {}       # the warnings registry: each distinct warning once per line, as Python's default filter does


def _warn(message: str, where: str) -> None:
    """A TracerWarning attributed to the user's line ``where`` ("file:line"); ``message`` without the place
    (Python's warning line shows it)."""
    filename, _, line = where.rpartition(":")
    try:
        lineno = int(line)
    except ValueError:
        filename, lineno = where, 0
    warnings.warn_explicit(message, TracerWarning, filename or where, lineno, registry=_SHOWN)


class Tracer:
    """An observer that records every op it sees into ``self.graph``.

    A tensor's graph node is kept in its ``_trace`` slot as a small dict ``{tracer: node id}`` (a new
    dict on every change, so a copy of the slot never aliases), which lets tracers nest. Tensors first
    met that the tracer did not produce become leaves: ``param`` nodes when they are named state (a
    module's parameters and buffers) or trainable leaves (``requires_grad``), ``const`` nodes otherwise,
    holding a snapshot of their value at that moment.
    """

    def __init__(self, graph: Graph, state_names: dict[int, str] | None = None):
        self.graph = graph
        self.state_names = {} if state_names is None else state_names   # id(tensor) -> dotted name (shared)
        self.updates: dict[str, int] = {}               # state name -> node id of its new value
        self.warnings: list[str] = []
        self.baked_branches: list[tuple[str, int, bool]] = []   # (file:line, predicate node, value taken)
        self._bound: dict[int, Tensor] = {}             # every tensor we tagged (kept alive: ids stay unique)
        self._dynamic: set[int] = set()                 # nodes whose value depends on inputs or state
        self._state_of_node: dict[int, str] = {}        # node id -> state name it currently stands for
        self._saved_data: dict[int, tuple[Tensor, np.ndarray]] = {}
        self._saved_grad: dict[int, tuple[Tensor, Any]] = {}
        self._unnamed = 0
        self.location = user_location                  # where a node came from (scripting overrides it)
        self.state_namer = None                        # tensor -> name for state first met at an assign_

    # ---- the tensor <-> node map ------------------------------------------------------------------
    def bind(self, t: Tensor, node_id: int) -> None:
        """Say that tensor ``t`` now holds the value of node ``node_id``."""
        slot = t._trace if isinstance(t._trace, dict) else {}
        t._trace = {**slot, self: node_id}
        self._bound[id(t)] = t

    def lookup(self, t: Tensor) -> int | None:
        slot = t._trace
        return slot.get(self) if isinstance(slot, dict) else None

    def node_of(self, t: Tensor) -> int:
        """The node computing ``t``; a tensor seen for the first time becomes a leaf."""
        nid = self.lookup(t)
        if nid is not None:
            return nid
        src = self.location()
        name = self.state_names.get(id(t))
        if name is None and t.requires_grad and t._ctx is None:
            name = f"p{self._unnamed}"
            self._unnamed += 1
        if name is not None:
            node = self.graph.add_param(name, np.array(t._data), source=src)
            self._dynamic.add(node.id)
            self._state_of_node[node.id] = name
            self._saved_grad.setdefault(id(t), (t, t.grad))
        else:
            node = self.graph.add_const(np.array(t._data), source=src)
        self.bind(t, node.id)
        return node.id

    # ---- observer protocol (see aisys.framework.tensor.apply) --------------------------------------
    def __call__(self, op, inputs, attrs, out) -> None:
        ids = [self.node_of(t) for t in inputs]
        node = self.graph.add(op.name, ids, attrs, source=self.location(), shape=tuple(out.shape), dtype=out.dtype)
        if any(i in self._dynamic for i in ids):
            self._dynamic.add(node.id)
        self.bind(out, node.id)

    def on_bool(self, t: Tensor) -> None:
        """A tensor decided a Python ``if``/``while``: the graph keeps only the branch taken now."""
        nid = self.node_of(t)
        if nid not in self._dynamic:
            return                          # a constant predicate: baking it is exact
        value = bool(t._data.reshape(()))
        where = self.location()
        self.baked_branches.append((where, nid, value))
        what = (f"the tensor %{nid} was used as a Python bool (it was {value} for the example input), so the graph "
                f"keeps only that branch and will silently take it for every input; use aisys.script or aisys.cond "
                f"for control flow that depends on tensor values")
        self.warnings.append(f"branch baked at {where}: {what}")
        _warn(f"branch baked: {what}", where)

    def on_item(self, t: Tensor) -> None:
        """A tensor became a Python number (``.item()``, ``float(t)``, ``int(t)``): the graph keeps that number."""
        self._baked(t, lambda nid: f"the tensor %{nid} was turned into a Python number ({t._data.reshape(-1)[0]!r} "
                                   f"for the example input), so any computation with that number is a constant in "
                                   f"the graph; keep it a tensor to make it part of the graph")

    def on_escape(self, t: Tensor, how: str) -> None:
        """A tensor left the graph as plain data (``.numpy()``, ``.tolist()``): whatever is computed from it
        outside aisys ops comes back as a constant."""
        self._baked(t, lambda nid: f"{how} turned the tensor %{nid} into plain data, so anything computed from it "
                                   f"outside aisys ops (numpy, Python) enters the graph as a constant computed from "
                                   f"the example input; compute it with aisys ops instead")

    def _baked(self, t: Tensor, describe) -> None:
        nid = self.node_of(t)
        if nid not in self._dynamic:
            return                          # made from constants only: baking it is exact
        where, what = self.location(), describe(nid)
        self.warnings.append(f"value baked at {where}: {what}")
        _warn(f"value baked: {what}", where)

    def on_inplace(self, t: Tensor, new: Tensor) -> None:
        """``t`` was changed in place to ``new`` (``x += y``, ``copy_`` ...): later reads of ``t`` read ``new``.
        State (a parameter, buffer or captured constant) gets an update output, as with ``assign_``."""
        old = self.node_of(t)
        if self.graph.nodes[old].op in ("param", "const") or old in self._state_of_node \
                or id(t) in self.state_names:
            self.on_assign(t, new)
            return
        self._saved_data.setdefault(id(t), (t, t._data.copy()))
        self.bind(t, self.node_of(new))

    def on_assign(self, t: Tensor, value) -> None:
        """``t.assign_(value)`` updates state in place: the new value becomes a graph output."""
        old = self.node_of(t)                          # snapshot the value *before* the update
        name = self._state_of_node.get(old)
        if name is None:
            name = self.state_names.get(id(t))
        node = self.graph.nodes[old]
        if name is None and self.state_namer is not None:
            name = self.state_namer(t)
        if name is None and node.op == "const":        # unnamed state (e.g. a running average): promote it
            name = f"state{self._unnamed}"
            self._unnamed += 1
        if node.op == "const":
            node.op, node.name = "param", name
            self._dynamic.add(old)
        if name is None:
            name = f"state{self._unnamed}"
            self._unnamed += 1
        if isinstance(value, Tensor):
            vid = self.node_of(value)
            if value.dtype is not t.dtype:
                vid = self.graph.add("cast", [vid], {"dtype": t.dtype}, source=self.location()).id
        else:
            vid = self.graph.add_const(np.asarray(value, dtype=t._data.dtype), source=self.location()).id
        self._saved_data.setdefault(id(t), (t, t._data.copy()))
        self.updates[name] = vid
        self._state_of_node[vid] = name
        self.bind(t, vid)

    # ---- leaving no trace ---------------------------------------------------------------------------
    def release(self, restore_state: bool) -> None:
        """Untag every tensor; with ``restore_state`` also undo in-place updates and new ``.grad``s."""
        for t in self._bound.values():
            slot = t._trace
            if isinstance(slot, dict) and self in slot:
                rest = {k: v for k, v in slot.items() if k is not self}
                t._trace = rest or None
        if restore_state:
            for t, data in self._saved_data.values():
                t._data[...] = data
                bump(t._data, "aisys.trace restoring the state it changed")
            for t, g in self._saved_grad.values():
                t.grad = g
        self._bound.clear()


def _raise_site(e: BaseException) -> str:
    """file:line of the innermost frame of ``e``'s traceback outside aisys (the user's line that raised)."""
    from ..framework.errors import _PKG_DIR
    site = "<unknown>"
    for fs in traceback.extract_tb(e.__traceback__):
        if not fs.filename.startswith(_PKG_DIR):
            site = f"{fs.filename}:{fs.lineno}"
    return site


def _is_module(obj) -> bool:
    return callable(getattr(obj, "named_parameters", None)) and not isinstance(obj, type)


def _is_optimizer(obj) -> bool:
    return isinstance(getattr(obj, "state", None), dict) and isinstance(getattr(obj, "param_groups", None), list)


def find_modules(fn, is_module=_is_module) -> dict[str, Any]:
    """Modules (anything with ``named_parameters``) that ``fn`` can reach: itself, its ``self``, its
    closure cells and the globals it names. Used to give parameters their dotted names."""
    found: dict[str, Any] = {}

    if is_module(fn):
        return {"": fn}
    owner = getattr(fn, "__self__", None)
    if is_module(owner):
        found["self"] = owner
    code = getattr(fn, "__code__", None)
    if code is not None:
        for var, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
            try:
                obj = cell.cell_contents
            except ValueError:
                continue
            if is_module(obj):
                found[var] = obj
        globs = getattr(fn, "__globals__", {})
        for var in code.co_names:
            obj = globs.get(var)
            if is_module(obj) and var not in found:
                found[var] = obj
    return found


def referenced_tensors(fn) -> dict[str, Tensor]:
    """Tensors ``fn`` reads by name from its closure or its module's globals (e.g. ``W_h`` in an RNN
    cell): state of the program, so tracing names them as params instead of baking them as constants."""
    found: dict[str, Tensor] = {}
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return found
    for var, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            obj = cell.cell_contents
        except ValueError:
            continue
        if isinstance(obj, Tensor):
            found[var] = obj
    globs = getattr(fn, "__globals__", {})
    for var in code.co_names:
        if isinstance(globs.get(var), Tensor) and var not in found:
            found[var] = globs[var]
    return found


def optimizer_state_namer(optimizers, state_names: dict[int, str]):
    """A function naming an optimizer's state tensor ("fc.weight.momentum_buffer"), looked up when it
    is assigned (optimizers create their state lazily, during the traced step)."""
    def name(t: Tensor) -> str | None:
        for opt in optimizers:
            for p, st in opt.state.items():
                for key, v in (st.items() if isinstance(st, dict) else ()):
                    if v is t:
                        return f"{state_names.get(id(p), 'param')}.{key}"
        return None
    return name


def named_state(modules: dict[str, Any]) -> dict[int, str]:
    """id(tensor) -> dotted name for every parameter and buffer; a lone module's names get no prefix."""
    names: dict[int, str] = {}
    prefix_needed = len(modules) > 1
    for var, mod in modules.items():
        items = list(mod.named_parameters())
        if callable(getattr(mod, "named_buffers", None)):
            items += list(mod.named_buffers())
        for pname, t in items:
            full = f"{var}.{pname}" if prefix_needed and var else pname
            names.setdefault(id(t), full)
    return names


def _input_names(fn, n: int) -> list[str]:
    """Names for the graph inputs: ``fn``'s positional parameter names (a module's ``forward``)."""
    target = getattr(fn, "forward", fn) if callable(getattr(fn, "named_parameters", None)) else fn
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        sig = None
    names = [] if sig is None else [p.name for p in sig.parameters.values()
                                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n]
    return names + [f"x{i}" for i in range(len(names), n)]


def _flatten(result) -> Iterable:
    if isinstance(result, (tuple, list)):
        for r in result:
            yield from _flatten(r)
    elif isinstance(result, dict):
        for k in result:
            yield from _flatten(result[k])
    else:
        yield result


def record_ops(fn: Callable, *example_inputs, name: str | None = None) -> Graph:
    """The smallest tracer: run ``fn`` once on copies of ``example_inputs`` and write down every op.

    This is the core of :func:`trace` built from public hooks only — :func:`aisys.observe_ops`,
    ``Tensor.is_leaf``, ``.requires_grad``, ``.detach()``, ``.numpy()`` — without what makes ``trace``
    a production tool (parameter names, branch-baked warnings, training-step updates, restoring state).
    It is the model answer of lab 03's exercise 3.1. Each example input becomes an ``input`` node; a
    tensor first met inside ``fn`` is a ``param`` when it is a trainable leaf (``requires_grad`` and
    ``is_leaf``), else a ``const`` holding a copy of its value; the tensors ``fn`` returns are the outputs.
    """
    graph = Graph(name or getattr(fn, "__name__", None) or type(fn).__name__)
    node_of: dict[int, int] = {}
    alive: list[Tensor] = []        # every tensor keyed by id(): kept alive so no id is reused meanwhile

    def node(t: Tensor) -> int:
        if id(t) not in node_of:
            if t.requires_grad and t.is_leaf:
                node_of[id(t)] = graph.add_param(f"p{len(graph.params())}", np.array(t.numpy())).id
            else:
                node_of[id(t)] = graph.add_const(np.array(t.numpy())).id
            alive.append(t)
        return node_of[id(t)]

    def observer(op, inputs, attrs, out) -> None:
        ids = [node(t) for t in inputs]
        node_of[id(out)] = graph.add(op.name, ids, attrs, shape=tuple(out.shape), dtype=out.dtype).id
        alive.append(out)

    copies = []
    for k, x in enumerate(example_inputs):
        t = (x if isinstance(x, Tensor) else Tensor(np.asarray(x))).detach()
        node_of[id(t)] = graph.add_input(f"x{k}", tuple(t.shape), t.dtype).id
        copies.append(t)
    with observe_ops(observer):
        result = fn(*copies)
    outs = result if isinstance(result, (tuple, list)) else [result]
    graph.set_outputs([node(t) for t in outs])
    return graph


def trace(fn: Callable, *example_inputs, params=None, input_names: list[str] | None = None,
          keep_side_effects: bool = False, name: str | None = None) -> Graph:
    """Capture ``fn(*example_inputs)`` as a :class:`Graph` by running it once on tracer tensors.

    - ``fn``: a function or a module (anything callable). Tensors it returns are the graph's outputs.
    - ``example_inputs``: tensors or arrays, each becomes an ``input`` node (named after ``fn``'s
      parameters). Python numbers are passed through and baked in as constants.
    - ``params``: a module, or a dict ``{name: tensor}``, naming the state ``fn`` reads. By default the
      modules ``fn`` can reach (itself, its closure, the globals it names) are searched, and tensors it
      reads by name from its closure or globals are params named after their variable.
    - ``keep_side_effects``: tracing runs the program for real; by default every in-place update
      (``assign_``), every ``.grad`` it set and the random generator are restored afterwards, so
      tracing a training step does not take the step.

    The returned graph carries extra attributes: ``updates`` ({state name: node id of its new value},
    those nodes are also outputs), ``returns`` (ids of the values ``fn`` returned), ``output_names``,
    ``warnings`` (e.g. "branch baked at file:line") and ``baked_branches``.
    """
    if not callable(fn):
        raise TypeError(f"aisys.trace: expected a function or module to trace, got {type(fn).__name__}; "
                        f"call it as aisys.trace(fn, *example_inputs)")
    if isinstance(params, dict):
        state_names = {id(t): k for k, t in params.items()}
    elif params is not None:
        state_names = named_state({"": params})
    else:
        state_names = named_state(find_modules(fn))
        for var, t in referenced_tensors(fn).items():
            state_names.setdefault(id(t), var)
    fname = name or getattr(fn, "__name__", None) or type(fn).__name__
    graph = Graph(fname)
    tracer = Tracer(graph, state_names)
    optimizers = list(find_modules(fn, _is_optimizer).values())
    if optimizers:
        tracer.state_namer = optimizer_state_namer(optimizers, state_names)
    names = list(input_names) if input_names else _input_names(fn, len(example_inputs))
    if len(names) != len(example_inputs):
        raise ValueError(f"aisys.trace: {len(names)} input_names for {len(example_inputs)} example inputs")

    if not any(isinstance(x, (Tensor, np.ndarray)) for x in example_inputs):
        raise TypeError(f"aisys.trace: {fname} got no tensor inputs, so the graph would have no inputs and every "
                        f"value would be a constant; pass example tensors, e.g. aisys.trace(fn, aisys.randn(2, 3))")
    args = []
    src = user_location()
    for nm, x in zip(names, example_inputs):
        if isinstance(x, (Tensor, np.ndarray)):
            data = x._data if isinstance(x, Tensor) else np.asarray(x)
            t = Tensor._wrap(np.array(data))
            if isinstance(x, Tensor) and x.requires_grad:
                t.requires_grad = True
            node = graph.add_input(nm, t.shape, t.dtype, source=src)
            tracer._dynamic.add(node.id)
            tracer.bind(t, node.id)
            args.append(t)
        else:
            args.append(x)          # a Python value: the program specializes on it

    rng_state = _Generator.rng.bit_generator.state
    grad_mode = _Mode.grad_enabled
    finished = False
    _Mode.observers.append(tracer)
    try:
        result = fn(*args)
        finished = True
    except Exception as e:
        e.add_note(f"aisys.trace: {fname} raised at {_raise_site(e)} while being traced; the parameters, their "
                   f".grad, the random generator and grad mode were restored to what they were before the trace")
        raise
    finally:
        _Mode.observers.remove(tracer)
        if not finished:                    # leave nothing half-changed: undo the steps the program took
            tracer.release(restore_state=True)
            _Generator.rng.bit_generator.state = rng_state
            _Mode.grad_enabled = grad_mode
    try:
        returns, out_names = [], []
        outs = [r for r in _flatten(result) if r is not None]
        for k, r in enumerate(outs):
            if isinstance(r, Tensor):
                returns.append(tracer.node_of(r))
                out_names.append(f"out{k}" if len(outs) > 1 else "out")
            else:
                tracer.warnings.append(f"output {k} is a Python {type(r).__name__} ({r!r}), not a tensor: "
                                       f"it is not part of the graph")
        update_ids = list(tracer.updates.values())
        if not returns and not update_ids:
            raise ValueError(f"aisys.trace: {fname} returned no tensors and updated no state, so the graph has no "
                             f"outputs; return the tensors you want to compute (got {type(result).__name__})")
        graph.set_outputs(returns + update_ids)
        out_names += [f"update {k}" for k in tracer.updates]
    finally:
        tracer.release(restore_state=not keep_side_effects)
        if not keep_side_effects:
            _Generator.rng.bit_generator.state = rng_state

    graph.updates = dict(tracer.updates)
    graph.returns = returns
    graph.output_names = out_names
    graph.warnings = list(tracer.warnings)
    graph.baked_branches = list(tracer.baked_branches)
    return graph
