"""Stage 3b of scripting: lowering the syntax tree to a graph. Python-valued code runs at compile time
(constant folding, loop unrolling); tensor code runs on placeholder tensors under a tracer; a tensor-valued
``if``/``while`` becomes a ``cond``/``while_loop`` op holding its subgraphs."""
from __future__ import annotations

import ast
import builtins
import operator
import re
from typing import Any, Callable

import numpy as np

from ...framework import dtypes as _dt
from ...framework.errors import ShapeError, user_location
from ...framework.graph import Graph
from ...framework.registry import Spec
from ...framework.tensor import Tensor, _Mode, apply, no_grad
from ..control_flow import CaptureTracer, align_inputs, prune_to_output
from ..trace import Tracer, find_modules, named_state
from .names import _HINTS, NameInfo, _outer_scope, _resolve, _stored_names
from .source import ScriptError, Scripted, Source, _parse_source, get_source
from .specs import SemanticReport, TypeRecord, _type_str, parse_spec


# ---- stage 3b: lowering ----------------------------------------------------------------------------------------
class _Undefined:
    """A name that may not hold a value here (assigned on one path only)."""

    def __init__(self, reason: str):
        self.reason = reason


_VALUE_READERS = {"item", "tolist", "numpy", "any", "all", "__bool__", "__float__", "__int__", "__index__",
                  "backward", "assign_", "copy_", "zero_", "requires_grad_"}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.MatMult: operator.matmul}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
           ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_SAFE_BUILTINS = {"range", "len", "abs", "min", "max", "float", "int", "bool", "tuple", "list", "isinstance",
                  "zip", "enumerate", "reversed", "round", "print"}


class _OpCounter:
    """An observer counting the ops (and in-place updates) a statement records."""

    def __init__(self):
        self.ops = 0

    def __call__(self, op, inputs, attrs, out):
        self.ops += 1

    def on_inplace(self, t, new):
        self.ops += 1


class _Lowering:
    def __init__(self, src: Source, node: ast.FunctionDef, names: dict[str, NameInfo], specs: list):
        self.src, self.node, self.names = src, node, names
        self.scope = _outer_scope(src.fn)
        self.graph = Graph(node.name)
        self.line = node.lineno
        self.types: list[TypeRecord] = []
        state = named_state(find_modules(src.callable if src.owner is not None else src.fn))
        for nm, info in names.items():
            v = self.scope.get(nm)
            if info.kind == "global tensor" and isinstance(v, Tensor):
                state.setdefault(id(v), nm)
        self.state_names = state
        self.tracers: list[Tracer] = []
        self.root = self.new_tracer(Tracer, self.graph)
        self.tracer: Tracer = self.root            # the recorder of the block being lowered now
        self.loop_depth = 0
        params = [p.arg for p in node.args.posonlyargs + node.args.args]
        defaults = [None] * (len(params) - len(node.args.defaults)) + list(node.args.defaults)
        self.env: dict[str, Any] = {}
        if src.owner is not None:                  # a bound method: self is a compile-time object
            self.env[params[0]] = src.owner
            params, defaults = params[1:], defaults[1:]
        if len(specs) > len(params):
            raise ScriptError("type", f"{node.name} takes {len(params)} parameters but {len(specs)} input specs "
                              f"were given", self.where(), src.line(node.lineno))
        ann = getattr(src.fn, "__annotations__", {})
        for k, p in enumerate(params):
            if k < len(specs):
                spec = specs[k]
            elif p in ann and isinstance(ann[p], (str, Spec)):
                spec = parse_spec(ann[p])
            elif defaults[k] is not None:
                spec = ast.literal_eval(defaults[k])
            else:
                raise ScriptError("type", f"no input spec for parameter {p!r}: pass an example input, a spec "
                                  f"like \"f32[1,4]\", or annotate it (def {node.name}({p}: \"f32[1,4]\"))",
                                  self.where(), src.line(node.lineno))
            if isinstance(spec, Spec):
                t = Tensor._wrap(np.zeros(spec.shape, spec.dtype.np))
                n = self.graph.add_input(p, spec.shape, spec.dtype, source=self.where())
                self.root._dynamic.add(n.id)
                self.root.bind(t, n.id)
                self.env[p] = t
                self.types.append(TypeRecord(node.lineno, p, _type_str(t) + " (input)"))
            else:
                self.env[p] = spec
                self.types.append(TypeRecord(node.lineno, p, _type_str(spec) + " (compile-time constant)"))

    # ---- helpers ------------------------------------------------------------------------------------
    def new_tracer(self, cls, graph: Graph):
        """A recorder for ``graph`` whose nodes carry the script's lines. The syntax tree handles every
        if/while of the scripted function, so a tensor used as a bool means a *called* function branched."""
        tracer = cls(graph, state_names=self.state_names)
        self.tracers.append(tracer)                # all released when lowering ends, however it ends
        tracer.location = self.where
        if isinstance(tracer, CaptureTracer):
            tracer.namer = self.name_of

        def on_bool(t):
            raise self.error("control flow", f"a tensor was used as a Python bool at {user_location()}, inside a "
                             f"function called from the scripted code, so that branch cannot be compiled",
                             "write the helper's logic in the scripted function itself (its if/while become "
                             "graph ops), or use aisys.frontend.cond in the helper")
        tracer.on_bool = on_bool
        return tracer

    def name_of(self, t: Tensor) -> str | None:
        """The variable currently holding ``t`` (names a subgraph's capture input)."""
        for k, v in self.env.items():
            if v is t:
                return k
        return None

    def where(self, line: int | None = None) -> str:
        return self.src.where(self.line if line is None else line)

    def error(self, kind: str, message: str, hint: str = "", node: ast.AST | None = None):
        line = getattr(node, "lineno", None) or self.line
        return ScriptError(kind, message, self.src.where(line), self.src.line(line), hint)

    def _guard(self, fn, *args, **kwargs):
        """Run library code on placeholders, turning its errors into errors at the user's line."""
        try:
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
        except ScriptError:
            raise
        except ShapeError as e:
            msg = re.sub(r" \(at [^()]*\)$", "", str(e))
            raise self.error("shape", msg) from None
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as e:
            raise self.error("type", f"{type(e).__name__}: {e}") from None

    # ---- statements ----------------------------------------------------------------------------------
    def run(self) -> Graph:
        saved, anomaly = _Mode.observers, _Mode.anomaly
        _Mode.observers, _Mode.anomaly = [self.root], 0
        try:
            with no_grad():
                result = self.block(self.node.body)
            if result is None:
                raise self.error("type", f"{self.node.name} returns nothing: a scripted function must return "
                                 f"its results", node=self.node.body[-1])
            value = result[0]
            outs = list(value) if isinstance(value, (tuple, list)) else [value]
            ids = []
            for v in outs:
                if not isinstance(v, Tensor):
                    raise self.error("type", f"the function returns a Python {type(v).__name__} ({v!r}); a graph "
                                     f"returns tensors", "wrap it: aisys.tensor(value)", node=result[1])
                ids.append(self.root.node_of(v))
            self.graph.set_outputs(ids)
            self.graph.output_names = [f"out{k}" for k in range(len(ids))] if len(ids) > 1 else ["out"]
            self.graph.warnings = []
            self.graph.param_tensors = {n: t for t in self.root._bound.values()
                                        for n in [self.state_names.get(id(t))] if n is not None}
        finally:
            _Mode.observers, _Mode.anomaly = saved, anomaly
            for tracer in self.tracers:
                tracer.release(restore_state=True)
        return self.graph

    def block(self, stmts: list[ast.stmt]):
        """Lower statements in order; returns (value, node) at a return, else None."""
        for k, stmt in enumerate(stmts):
            self.line = stmt.lineno
            if isinstance(stmt, ast.If):
                test = self.expr(stmt.test)
                if isinstance(test, Tensor):
                    if _contains_return(stmt):
                        if self.loop_depth:
                            raise self.error("control flow", "return inside a tensor-dependent if inside a loop",
                                             "assign the result to a variable and return after the loop", stmt)
                        return self.cond_return(stmt, test, stmts[k + 1:])
                    self.cond_assign(stmt, test)
                    continue
                res = self.block(stmt.body if test else stmt.orelse)
                if res is not None:
                    return res
            elif isinstance(stmt, ast.While):
                res = self.while_stmt(stmt)
                if res is not None:
                    return res
            elif isinstance(stmt, ast.For):
                res = self.for_stmt(stmt)
                if res is not None:
                    return res
            elif isinstance(stmt, ast.Return):
                if stmt.value is None:
                    return None
                return self.expr(stmt.value), stmt
            else:
                self.simple(stmt)
        return None

    def simple(self, stmt):
        if isinstance(stmt, ast.Assign):
            value = self.expr(stmt.value)
            for target in stmt.targets:
                self.assign(target, value)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self.assign(stmt.target, self.expr(stmt.value))
        elif isinstance(stmt, ast.AugAssign):
            if not isinstance(stmt.target, ast.Name):
                raise self.error("unsupported", "in-place update of a subscript or attribute",
                                 "build a new value and assign it to a name", stmt)
            old = self.load(stmt.target.id, stmt.target)
            self.assign(stmt.target, self._guard(_BINOPS[type(stmt.op)], old, self.expr(stmt.value)))
        elif isinstance(stmt, ast.Expr):
            if not isinstance(stmt.value, ast.Constant):       # docstrings are skipped
                self.effect(stmt)
        elif isinstance(stmt, ast.Pass):
            pass
        else:
            raise self.error("unsupported", f"the {type(stmt).__name__} statement", "", stmt)

    def effect(self, stmt: ast.Expr) -> None:
        """A call made for its effect (its value is dropped). If it computed no tensor op and returned nothing,
        what it did happens once, while compiling, and would silently be missing from every compiled call: say so
        instead. (Mutating a Python list or dict of the scripted function is compile-time bookkeeping: allowed.)"""
        counter = _OpCounter()
        _Mode.observers.append(counter)
        try:
            value = self.expr(stmt.value)
        finally:
            _Mode.observers.remove(counter)
        call = stmt.value
        if not isinstance(call, ast.Call) or value is not None or counter.ops:
            return
        if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
                and isinstance(self.env.get(call.func.value.id), (list, dict, set)):
            return
        what = ast.unparse(call.func)
        raise self.error("side effect", f"{what}(...) computes no graph value and returns nothing: it would run once, "
                         f"while compiling, and never when the compiled function runs",
                         "move it outside the scripted function, or make it return the value the graph needs", stmt)

    def assign(self, target, value):
        if isinstance(target, ast.Name):
            self.env[target.id] = value
            self.types.append(TypeRecord(target.lineno, target.id, _type_str(value)))
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, Tensor):
                value = [value[i] for i in range(value.shape[0])] if value.ndim else None
            if value is None or len(value) != len(target.elts):
                raise self.error("type", f"cannot unpack into {len(target.elts)} names", node=target)
            for t, v in zip(target.elts, value):
                self.assign(t, v)
        else:
            raise self.error("unsupported", f"assignment to a {type(target).__name__}",
                             "tensors in a graph are values: build a new one (e.g. with aisys.where) and "
                             "assign it to a name", target)

    def load(self, name: str, node):
        if name in self.env:
            v = self.env[name]
            if isinstance(v, _Undefined):
                raise self.error("control flow", f"{name!r} may be undefined here: {v.reason}",
                                 "give it a value before the if/while", node)
            return v
        info = self.names.get(name)
        if info is not None and info.kind in ("local", "parameter"):
            raise self.error("unknown name", f"local variable {name!r} is used before it is assigned", "", node)
        return self.scope[name]

    # ---- expressions -----------------------------------------------------------------------------------------
    def expr(self, node):
        line = getattr(node, "lineno", None)
        if line:
            self.line = line
        m = getattr(self, "expr_" + type(node).__name__, None)
        if m is None:
            raise self.error("unsupported", f"the {type(node).__name__} expression",
                             _HINTS.get(type(node).__name__, ""), node)
        return m(node)

    def expr_Constant(self, node):
        return node.value

    def expr_Name(self, node):
        return self.load(node.id, node)

    def expr_Tuple(self, node):
        return tuple(self.expr(e) for e in node.elts)

    def expr_List(self, node):
        return [self.expr(e) for e in node.elts]

    def expr_BinOp(self, node):
        a, b = self.expr(node.left), self.expr(node.right)
        self.line = node.lineno
        return self._guard(_BINOPS[type(node.op)], a, b)

    def expr_UnaryOp(self, node):
        v = self.expr(node.operand)
        if isinstance(node.op, ast.Not):
            if isinstance(v, Tensor):
                from ...framework.ops import logical_not
                return self._guard(logical_not, v if v.dtype is _dt.bool_ else v != 0)
            return not v
        if isinstance(node.op, ast.Invert) and isinstance(v, Tensor):
            raise self.error("unsupported", "~ on a tensor", "use aisys.logical_not", node)
        ops = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
        return self._guard(ops[type(node.op)], v)

    def expr_Compare(self, node):
        left = self.expr(node.left)
        rights = [self.expr(c) for c in node.comparators]
        if len(rights) > 1 and any(isinstance(v, Tensor) for v in [left, *rights]):
            raise self.error("unsupported", "a chained comparison on tensors (a < b < c)",
                             "compare twice and combine: (a < b) * (b < c) on bool tensors, or nest two ifs", node)
        result = True
        for op, right in zip(node.ops, rights):
            result = self._guard(_CMPOPS[type(op)], left, right)
            if not isinstance(result, Tensor) and not result:
                return False
            left = right
        return result

    def expr_BoolOp(self, node):
        is_and = isinstance(node.op, ast.And)
        v = None
        for e in node.values:
            v = self.expr(e)
            if isinstance(v, Tensor):
                raise self.error("unsupported", f"`{'and' if is_and else 'or'}` on a tensor (Python would read its "
                                 f"value to decide)", "nest two if statements, or combine bool tensors with "
                                 "aisys.minimum / aisys.maximum", node)
            if is_and and not v:
                return v
            if not is_and and v:
                return v
        return v

    def expr_IfExp(self, node):
        test = self.expr(node.test)
        if not isinstance(test, Tensor):
            return self.expr(node.body if test else node.orelse)
        env_before = dict(self.env)
        parts = []
        for branch in (node.body, node.orelse):
            self.env = dict(env_before)
            parts.append(self.record(lambda b=branch: {"_": self.expr(b)}, ["_"], "ifexp"))
        self.env = env_before
        return self._defined(self.emit_cond(test, parts, ["_"], node)["_"], node)

    def expr_Attribute(self, node):
        obj = self.expr(node.value)
        if isinstance(obj, Tensor) and node.attr in _VALUE_READERS:
            raise self.error("unsupported", f".{node.attr}() reads a tensor's value (or changes it in place) "
                             f"while compiling, when no value exists yet", "keep computing with tensors; "
                             "use an if on a tensor condition for data-dependent decisions", node)
        return self._guard(getattr, obj, node.attr)

    def expr_Subscript(self, node):
        obj = self.expr(node.value)
        key = self.expr(node.slice)
        keys = key if isinstance(key, tuple) else (key,)
        if isinstance(obj, Tensor) and any(isinstance(k, Tensor) for k in keys):
            raise self.error("unsupported", "indexing with a tensor (the index values are data)",
                             "use aisys.gather(x, dim, index), or index with Python ints and slices", node)
        return self._guard(operator.getitem, obj, key)

    def expr_Slice(self, node):
        part = lambda e: None if e is None else self.expr(e)
        return slice(part(node.lower), part(node.upper), part(node.step))

    def expr_Call(self, node):
        fn = self.expr(node.func)
        args = [self.expr(a) for a in node.args]
        kwargs = {k.arg: self.expr(k.value) for k in node.keywords}
        self.line = node.lineno
        name = getattr(fn, "__name__", "")
        if any(fn is f for f in (float, int, bool)) and args and isinstance(args[0], Tensor):
            raise self.error("unsupported", f"{name}() of a tensor reads its value while compiling",
                             "keep it a tensor (e.g. x.sum() instead of float(x.sum()))", node)
        if fn is print:
            raise self.error("side effect", "print(...) would run once, while compiling, and never when the compiled "
                             "function runs", "return the value and print it outside the scripted function (or "
                             "debug the plain Python function first)", node)
        if getattr(builtins, name, None) is fn and name not in _SAFE_BUILTINS:
            raise self.error("unsupported", f"the builtin {name}() is not available in compiled code",
                             f"compiled code may call {', '.join(sorted(_SAFE_BUILTINS))}", node)
        if isinstance(fn, Scripted):
            return self.inline(fn, args, kwargs, node)
        return self._guard(fn, *args, **kwargs)

    def inline(self, callee: "ScriptFunction", args, kwargs, node):
        """A call of another scripted function: copy its graph (compiled for these argument specs) in place."""
        if kwargs:
            raise self.error("unsupported", f"keyword arguments in a call of the scripted {callee.name}",
                             "pass the arguments by position", node)
        try:
            g = callee.specialize(*args)
        except ScriptError as e:
            raise self.error(e.kind, f"in the scripted function {callee.name} called here: {e}", "", node) from None
        tensors = [a for a in args if isinstance(a, (Tensor, np.ndarray))]
        env = dict(zip(g.inputs, tensors))
        live = getattr(g, "param_tensors", {})
        for n in g.nodes.values():
            if n.op == "input":
                continue
            if n.op == "param":
                t = live.get(n.name)
                if t is None:
                    t = Tensor._wrap(n.value)
                self.state_names.setdefault(id(t), n.name)
                env[n.id] = t
            elif n.op == "const":
                env[n.id] = Tensor._wrap(n.value)
            elif n.op in ("cond", "while_loop"):
                env[n.id] = self.emit(n.op, [env[i] for i in n.inputs], n.attrs, node)
            else:
                env[n.id] = self._guard(apply, n.op, *[env[i] for i in n.inputs], **n.attrs)
        outs = [env[i] for i in g.outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    # ---- control flow ----------------------------------------------------------------------------------------
    def record(self, body: Callable[[], dict], outputs: list[str], name: str):
        """Lower ``body()`` into its own graph under a capture tracer. Returns (graph, captures, values)."""
        g = Graph(name)
        tracer = self.new_tracer(CaptureTracer, g)
        outer, saved = self.tracer, _Mode.observers
        self.tracer, _Mode.observers = tracer, [tracer]
        try:
            values = body()
            for k in outputs:
                v = values.get(k)
                if isinstance(v, Tensor):
                    tracer.node_of(v)          # make sure outputs from outside are captured now
        except BaseException:
            tracer.release(restore_state=True)
            raise
        finally:
            self.tracer, _Mode.observers = outer, saved
        return g, tracer, values

    def _finish_branch(self, g: Graph, tracer, values: dict, outputs: list[str]):
        ids = []
        for k in outputs:
            v = values[k]
            ids.append(tracer.lookup(v) if isinstance(v, Tensor) else g.add_const(np.asarray(v)).id)
        g.set_outputs(ids)
        tracer.release(restore_state=True)

    def emit_cond(self, pred: Tensor, parts, outputs: list[str], node) -> dict:
        """One cond op per output from two recorded branches; checks the branches agree."""
        pred = self._predicate(pred, node)
        (tg, tt, tv), (eg, et, ev) = parts
        for k in outputs:
            a, b = tv[k], ev[k]
            if not isinstance(a, Tensor) and not isinstance(b, Tensor):
                continue
            if not isinstance(a, Tensor) or not isinstance(b, Tensor):
                t = a if isinstance(a, Tensor) else b
                py = b if isinstance(a, Tensor) else a
                if not isinstance(py, (int, float, bool)):
                    raise self.error("type", f"{k!r} is a tensor in one branch and a {type(py).__name__} in the "
                                     f"other", "", node)
                arr = np.asarray(py, dtype=t._data.dtype).reshape(())
                fill = np.broadcast_to(arr, t.shape).copy()
                holder = (tv if not isinstance(a, Tensor) else ev)
                holder[k] = fill                                   # becomes a const in that branch
                continue
            if tuple(a.shape) != tuple(b.shape) or a.dtype is not b.dtype:
                raise self.error("shape", f"the branches of the if disagree on {k!r}: then gives {_type_str(a)}, "
                                 f"else gives {_type_str(b)}", "both branches must give each variable the same "
                                 "shape and dtype (a static graph has one type per value)", node)
        tensor_outs = [k for k in outputs if isinstance(tv[k], (Tensor, np.ndarray)) or
                       isinstance(ev[k], (Tensor, np.ndarray))]
        self._finish_branch(tg, tt, tv, tensor_outs)
        self._finish_branch(eg, et, ev, tensor_outs)
        caps = align_inputs([(tg, 0, tt.captures), (eg, 0, et.captures)])
        result = {}
        for j, k in enumerate(tensor_outs):
            attrs = {"then_graph": prune_to_output(tg, j, f"then_{k}"),
                     "else_graph": prune_to_output(eg, j, f"else_{k}"), "var": k}
            result[k] = self.emit("cond", [pred, *caps], attrs, node)
        for k in outputs:
            if k not in result:
                a, b = tv[k], ev[k]
                if a is b or (type(a) is type(b) and a == b):
                    result[k] = a
                else:              # fine unless it is read later: then say why it has no single value
                    result[k] = _Undefined(f"it gets different Python values in the two branches ({a!r} and "
                                           f"{b!r}) of the if on a tensor at line {node.lineno}; make it a tensor "
                                           f"if the graph needs it")
        return result

    def _defined(self, value, node):
        if isinstance(value, _Undefined):
            raise self.error("control flow", f"this value has no single compile-time value: {value.reason}",
                             "make the branches give tensors, e.g. aisys.tensor(2.0)", node)
        return value

    def emit(self, op: str, inputs: list[Tensor], attrs: dict, node) -> Tensor:
        """Add a control-flow node directly (its ref is not run on placeholders, which could loop forever)."""
        ids = [self.tracer.node_of(t) for t in inputs]
        try:
            n = self.tracer.graph.add(op, ids, attrs, source=self.where(node.lineno))
        except ShapeError as e:
            raise self.error("shape", re.sub(r" \(at [^()]*\)$", "", str(e)), node=node) from None
        out = Tensor._wrap(np.zeros(n.shape, n.dtype.np))
        self.tracer._dynamic.add(n.id)
        self.tracer.bind(out, n.id)
        return out

    def _predicate(self, pred: Tensor, node) -> Tensor:
        if pred.numel() != 1:
            raise self.error("shape", f"the condition is a tensor of shape {tuple(pred.shape)}; an if/while needs "
                             f"one value", "reduce it first, e.g. (x.sum() > 0) or (x > 0).all() written as "
                             "(x <= 0).sum() == 0", node)
        if pred.dtype is not _dt.bool_:
            pred = self._guard(operator.ne, pred, 0)
        return pred

    def cond_assign(self, stmt: ast.If, test: Tensor):
        assigned = _stored_names(stmt.body + stmt.orelse)
        env_before = dict(self.env)
        parts = []
        for body in (stmt.body, stmt.orelse):
            self.env = dict(env_before)

            def run(body=body):
                self.block(body)
                return {k: self.env.get(k, _Undefined("")) for k in assigned}
            parts.append(self.record(run, [k for k in assigned], "branch"))
        self.env = env_before
        outs = []
        for k in assigned:
            in_then, in_else = (not isinstance(parts[0][2][k], _Undefined), not isinstance(parts[1][2][k], _Undefined))
            if in_then and in_else:
                outs.append(k)
            else:
                side = "then" if in_then else "else"
                self.env[k] = _Undefined(f"it is assigned only in the {side}-branch of the if at line {stmt.lineno}")
        self.line = stmt.lineno
        result = self.emit_cond(test, parts, outs, stmt)
        for k, v in result.items():
            self.env[k] = v
            if isinstance(v, Tensor):
                self.types.append(TypeRecord(stmt.lineno, f"{k} (cond)", _type_str(v)))

    def cond_return(self, stmt: ast.If, test: Tensor, rest: list[ast.stmt]):
        """`if t: ... return a` — the statements after the if belong to the path that did not return."""
        env_before = dict(self.env)
        parts = []
        for body in (stmt.body + rest, stmt.orelse + rest):
            self.env = dict(env_before)

            def run(body=body):
                res = self.block(body)
                if res is None:
                    raise self.error("control flow", "one path through the tensor-dependent if does not return a "
                                     "value", "make every path end in return", stmt)
                return {"return": res[0]}
            g, tr, vals = self.record(run, ["return"], "branch")
            ret = vals["return"]
            if isinstance(ret, (tuple, list)):
                raise self.error("unsupported", "returning a tuple from inside a tensor-dependent if",
                                 "assign to variables in both branches and return after the if", stmt)
            parts.append((g, tr, vals))
        self.env = env_before
        self.line = stmt.lineno
        out = self._defined(self.emit_cond(test, parts, ["return"], stmt)["return"], stmt)
        self.types.append(TypeRecord(stmt.lineno, "return (cond)", _type_str(out)))
        return out, stmt

    def while_stmt(self, stmt: ast.While):
        if stmt.orelse:
            raise self.error("unsupported", "while ... else", "", stmt)
        probe_g = Graph("probe")
        probe = self.new_tracer(CaptureTracer, probe_g)
        saved_obs, saved_tracer = _Mode.observers, self.tracer
        _Mode.observers, self.tracer = [probe], probe
        try:
            test = self.expr(stmt.test)
        finally:
            _Mode.observers, self.tracer = saved_obs, saved_tracer
            probe.release(restore_state=True)
        if not isinstance(test, Tensor):
            return self.static_while(stmt)
        if _contains_return(stmt):
            raise self.error("control flow", "return inside a tensor-dependent while loop",
                             "assign the result to a variable and return after the loop", stmt)
        assigned = _stored_names(stmt.body)
        carried = []
        for k in assigned:
            v = self.env.get(k)
            if v is None or isinstance(v, _Undefined):
                continue
            if not isinstance(v, Tensor):
                raise self.error("control flow", f"{k!r} is a Python {type(v).__name__} changed inside a while loop "
                                 f"whose condition is a tensor, so its final value is only known at run time",
                                 f"make it a tensor before the loop, e.g. {k} = aisys.tensor({v!r})", stmt)
            carried.append(k)
        env_before = dict(self.env)
        init = [env_before[k] for k in carried]
        placeholders = [Tensor._wrap(np.zeros(t.shape, t._data.dtype)) for t in init]

        def make(body_fn, name):
            self.env = dict(env_before)
            g = Graph(name)
            tracer = self.new_tracer(CaptureTracer, g)
            for k, p in zip(carried, placeholders):
                n = g.add_input(k, p.shape, p.dtype, source=self.where(stmt.lineno))
                tracer._dynamic.add(n.id)
                tracer.bind(p, n.id)
                self.env[k] = p
            outer, saved = self.tracer, _Mode.observers
            self.tracer, _Mode.observers = tracer, [tracer]
            self.loop_depth += 1
            try:
                outs = body_fn()
                ids = [tracer.node_of(o) for o in outs]
            except BaseException:
                tracer.release(restore_state=True)
                raise
            finally:
                self.tracer, _Mode.observers = outer, saved
                self.loop_depth -= 1
            g.set_outputs(ids)
            tracer.release(restore_state=True)
            return g, tracer

        def cond_body():
            return [self._predicate(self.expr(stmt.test), stmt)]

        def loop_body():
            self.block(stmt.body)
            outs = []
            for k, t0 in zip(carried, init):
                v = self.env[k]
                if not isinstance(v, Tensor):
                    raise self.error("type", f"{k!r} becomes a Python {type(v).__name__} inside the loop", "", stmt)
                if tuple(v.shape) != tuple(t0.shape) or v.dtype is not t0.dtype:
                    raise self.error("shape", f"{k!r} enters the loop as {_type_str(t0)} but the body makes it "
                                     f"{_type_str(v)}", "a loop-carried value must keep its shape and dtype", stmt)
                outs.append(v)
            return outs
        cg, ct = make(cond_body, "while_cond")
        bg, bt = make(loop_body, "while_body")
        self.env = env_before
        for k in assigned:
            if k not in carried:
                self.env[k] = _Undefined(f"it is first assigned inside the tensor-dependent while loop at line "
                                         f"{stmt.lineno}")
        caps = align_inputs([(cg, len(carried), ct.captures), (bg, len(carried), bt.captures)])
        self.line = stmt.lineno
        for j, k in enumerate(carried):
            out = self.emit("while_loop", [*init, *caps], {"cond_graph": cg, "body_graph": bg,
                                                            "n_carried": len(carried), "index": j,
                                                            "vars": tuple(carried),
                                                            "_where": self.where(stmt.lineno)}, stmt)
            self.env[k] = out
            self.types.append(TypeRecord(stmt.lineno, f"{k} (while_loop)", _type_str(out)))
        return None

    def static_while(self, stmt: ast.While, limit: int = 10_000):
        for _ in range(limit):
            self.line = stmt.lineno
            test = self.expr(stmt.test)
            if isinstance(test, Tensor):
                raise self.error("control flow", "the loop condition became a tensor after some iterations",
                                 "make it a tensor from the start", stmt)
            if not test:
                return None
            res = self.loop_body(stmt.body)
            if res is not None:
                return res
        raise self.error("control flow", f"this while loop on Python values did not finish after {limit} "
                         f"iterations while compiling (it is unrolled into the graph)", "", stmt)

    def for_stmt(self, stmt: ast.For):
        if stmt.orelse:
            raise self.error("unsupported", "for ... else", "", stmt)
        it = self.expr(stmt.iter)
        if isinstance(it, Tensor):
            raise self.error("unsupported", "a for loop over a tensor (its length is fixed, but each element would be "
                             "a separate unrolled copy)", "loop over range(x.shape[0]) and index x[i]", stmt)
        try:
            items = list(it)
        except TypeError:
            raise self.error("type", f"cannot iterate over a {type(it).__name__}", "", stmt) from None
        if len(items) > 10_000:
            raise self.error("control flow", f"the loop would unroll into {len(items)} copies", "", stmt)
        for item in items:
            self.assign(stmt.target, item)
            res = self.loop_body(stmt.body)
            if res is not None:
                return res
        return None

    def loop_body(self, body):
        """One unrolled iteration of a Python-valued loop (``loop_depth`` counts the loops around it)."""
        self.loop_depth += 1
        try:
            return self.block(body)
        finally:
            self.loop_depth -= 1


def _contains_return(stmt) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(stmt))


def _lower(src: Source, node: ast.FunctionDef, names, specs) -> tuple[Graph, list[TypeRecord]]:
    low = _Lowering(src, node, names, [parse_spec(s) for s in specs])
    graph = low.run()
    graph.verify()
    return graph, low.types


def lower(fn, *specs) -> Graph:
    """Compile ``fn`` for inputs of the given specs (tensors, arrays, "f32[1,4]" strings or Specs;
    Python values are compile-time constants) into a Graph with ``cond``/``while_loop`` for control flow."""
    src = get_source(fn)
    node = _parse_source(src)
    return _lower(src, node, _resolve(src, node), specs)[0]


def check(fn, *specs) -> SemanticReport:
    """The semantic pass: name resolution, supported constructs, and the type of every value."""
    src = get_source(fn)
    node = _parse_source(src)
    names = _resolve(src, node)
    _, types = _lower(src, node, names, specs)
    return SemanticReport(names, types)
