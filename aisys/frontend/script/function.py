"""The user-facing object: :func:`script` and the :class:`ScriptFunction` it returns."""
from __future__ import annotations


import numpy as np

from ...framework.graph import Graph
from ...framework.registry import Spec
from ...framework.tensor import Tensor
from ..control_flow import run_graph
from .lowering import _lower, check, lower
from .names import _resolve, resolve
from .source import Scripted, Token, _parse_source, dump, format_tokens, get_source, parse, tokens
from .specs import SemanticReport, TypeRecord, parse_spec


# ---- the user-facing object ----------------------------------------------------------------------------
class ScriptFunction(Scripted):
    """A compiled function: call it like the original; ``.graph`` is its graph for the example specs.

    Calling it runs the graph op by op (so autodiff and tracers see a ``cond`` as one op), compiled
    once per distinct input spec (a small JIT cache). Parameters are read live, by name.
    """

    def __init__(self, fn, example_inputs=()):
        self.fn = fn
        self.src = get_source(fn)
        self.ast = _parse_source(self.src)
        self.names = _resolve(self.src, self.ast)     # fail early: unknown names, unsupported constructs
        self.name = self.ast.name
        self._cache: dict[tuple, tuple[Graph, list[TypeRecord]]] = {}
        self._default = tuple(parse_spec(x) for x in example_inputs) if example_inputs else None
        if self._default is not None:
            self.specialize(*self._default)

    def __repr__(self) -> str:
        return f"<ScriptFunction {self.name} ({len(self._cache)} compiled specializations)>"

    @staticmethod
    def _key(specs) -> tuple:
        return tuple(("T", s.shape, s.dtype.name) if isinstance(s, Spec) else ("py", repr(s)) for s in specs)

    def specialize(self, *specs) -> Graph:
        specs = tuple(parse_spec(s) for s in specs)
        key = self._key(specs)
        if key not in self._cache:
            self._cache[key] = _lower(self.src, self.ast, self.names, specs)
        return self._cache[key][0]

    @property
    def graph(self) -> Graph:
        if self._default is not None:
            return self.specialize(*self._default)
        if self._cache:
            return next(iter(self._cache.values()))[0]
        return self.specialize()        # annotations, or a ScriptError naming the missing spec

    def tokens(self) -> list[Token]:
        return tokens(self.fn)

    def dump(self) -> str:
        return dump(self.fn)

    def report(self, *specs) -> SemanticReport:
        specs = specs or self._default or ()
        self.specialize(*specs)
        return SemanticReport(self.names, self._cache[self._key(tuple(parse_spec(s) for s in specs))][1])

    def __call__(self, *args):
        graph = self.specialize(*args)
        tensors = [a for a in args if isinstance(a, (Tensor, np.ndarray))]
        outs = run_graph(graph, *tensors, params=getattr(graph, "param_tensors", None))
        return outs[0] if len(outs) == 1 else tuple(outs)


def script(fn=None, *example_inputs):
    """Compile a Python function to a graph by parsing its source (use as ``@aisys.script`` or
    ``aisys.script(fn, *example_inputs)``). Returns a :class:`ScriptFunction`; its ``.graph`` needs
    example inputs, annotations like ``x: "f32[1,4]"``, or one call. Stages: ``script.tokens``,
    ``script.parse``, ``script.dump``, ``script.resolve``, ``script.check``, ``script.lower``."""
    if fn is None:
        return lambda f: ScriptFunction(f)
    return ScriptFunction(fn, example_inputs)


script.tokens = tokens
script.parse = parse
script.dump = dump
script.resolve = resolve
script.check = check
script.lower = lower
script.format_tokens = format_tokens
