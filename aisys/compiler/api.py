"""``aisys.compile``: trace a function, optimize its graph with the pass pipeline, run it with fused kernels.

    step = aisys.compile(f, x_example)
    y = step(x)                  # runs the optimized graph
    step.graph                   # the optimized Graph
    step.pass_log                # what every pass did (PassLog) — widgets.PassStepper(step) plays it
    step.kernels                 # {"%12": generated source, ...} for every fused group

A compiled function is specialized to the example inputs' shapes and dtypes (like ``torch.jit.trace``);
called with inputs of other shapes, a compiled *function* traces and compiles itself again for them
(kept, so switching back costs nothing), while a compiled Graph raises. Parameters (module weights) are
read live at every call, so a compiled training step sees the updates it makes: its in-place updates
(``p.assign_``) are written back to the module's tensors. Parameters that a pass *derived* (BN-folded or
transposed weights) are frozen at compile time: compile again after changing the weights they came from.

Memory: every specialization runs from the function's one :class:`~aisys.compiler.runtime.Arena`
(allocated at compile time, grown when a larger specialization appears, reused by every call). A result
is written straight into an array the caller owns (one of two per output, reused only once the caller
holds neither it nor any view of it), or copied out of the arena, so what a call returned is never
overwritten by a later call; ``aisys.compile(..., output_views=True)`` returns views into the arena
instead (no copy), valid only until the next call.
"""
from __future__ import annotations

import numpy as np

from ..framework.graph import Graph, interpret
from ..framework.inplace import bump
from ..framework.tensor import Tensor
from .manager import PassLog, PassManager
from .passes import default_pipeline, resolve
from .runtime import Arena, Executable


def _shapes(arrays) -> tuple:
    return tuple(tuple(np.shape(a)) for a in arrays)


class CompiledFunction:
    """The result of :func:`compile`: call it like the original function."""

    def __init__(self, original: Graph, pass_log: PassLog, backend: str, state: dict | None = None, fn=None, *,
                 pipeline=None, params=None, output_views: bool = False):
        self.backend = backend
        self.fn = fn
        self.output_views = output_views
        self.arena = Arena()
        self._state = dict(state or {})                 # param name -> live Tensor
        self._pipeline, self._params = pipeline, params
        self._specializations: dict[tuple, tuple] = {}
        self._use(self._specialize(original, pass_log))

    def _specialize(self, original: Graph, pass_log: PassLog) -> tuple:
        key = tuple(tuple(original.nodes[i].shape) for i in original.inputs)
        spec = (original, pass_log, Executable(pass_log.graph, self.backend, arena=self.arena))
        self._specializations[key] = spec
        return spec

    def _use(self, spec) -> None:
        self.original, self.pass_log, self.executable = spec
        self.graph: Graph = self.pass_log.graph
        self._returns = len(getattr(self.original, "returns", self.original.outputs))
        self._updates = list(getattr(self.original, "updates", {}) or {})
        self._updating = f"the compiled {self.original.name!r} updating its state"
        self._shape_key = tuple(tuple(self.original.nodes[i].shape) for i in self.original.inputs)
        self.warnings = list(getattr(self.original, "warnings", []))

    def _for_shapes(self, arrays) -> None:
        """Switch to (or trace and compile) the specialization for these input shapes (functions only)."""
        key = tuple(a.shape for a in arrays) if all(isinstance(a, (Tensor, np.ndarray)) for a in arrays) \
            else _shapes(arrays)
        if self.fn is None or len(arrays) != len(self._shape_key) or key == self._shape_key:
            return                                      # same shapes, or a Graph: the executable checks them
        spec = self._specializations.get(key)
        if spec is None:
            from ..frontend import trace
            graph = trace(self.fn, *[x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in arrays],
                          params=self._params)
            spec = self._specialize(graph, PassManager(self._pipeline).run(graph))
        self._use(spec)

    # ---- what the widgets and the lab read --------------------------------------------------------
    @property
    def kernels(self) -> dict[str, str]:
        """Generated source of every fused group, keyed by node ("%12")."""
        return {f"%{i}": src for i, src in self.executable.sources().items()}

    @property
    def memory_plan(self):
        """The memory plan of the optimized graph (greedy by size over its program order, one buffer per op
        result), computed once: the textbook plan the memory lab draws. The arena the compiled code runs from
        follows ``compiled.executable.plan``, the same planner with views sharing their source's slot
        (``aisys.compiler.runtime.runtime_plan``). Plan another way with
        ``aisys.compiler.plan_memory(compiled.graph, planner=..., schedule=...)``."""
        if getattr(self, "_memory_plan", None) is None or self._memory_plan_graph is not self.graph:
            from .memory import plan_memory
            self._memory_plan = plan_memory(self.graph, planner="greedy_by_size")
            self._memory_plan_graph = self.graph
        return self._memory_plan

    def kernel_source(self, node_id: int) -> str:
        src = self.executable.sources()
        if node_id not in src:
            fused = ", ".join(f"%{i}" for i in src) or "none"
            raise KeyError(f"%{node_id} is not a fused node of the compiled graph (fused nodes: {fused})")
        return src[node_id]

    def summary(self) -> str:
        lines = [f"compiled {self.original.name!r} ({self.backend} backend)",
                 "before: " + self.original.summary(),
                 "after:  " + self.graph.summary(),
                 self.pass_log.summary()]
        if self.kernels:
            lines.append("fused kernels: " + ", ".join(
                f"{k} ({self.graph.nodes[int(k[1:])].attrs['kind']}: {'+'.join(self.graph.nodes[int(k[1:])].attrs['ops'])})"
                for k in self.kernels))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<CompiledFunction {self.original.name!r}: {len(self.original.op_nodes)} → {len(self.graph.op_nodes)} ops, "
                f"{len(self.kernels)} fused kernels, backend={self.backend}>")

    # ---- running ------------------------------------------------------------------------------------
    def _live_params(self) -> dict[str, np.ndarray]:
        return {name: t._data for name, t in self._state.items()}

    def run_arrays(self, *inputs) -> list[np.ndarray]:
        """Run the optimized graph on arrays; returns every graph output (returns, then state updates) —
        copies, or arena views when compiled with ``output_views=True``."""
        self._for_shapes(inputs)
        return self.executable.run(*inputs, params=self._live_params(), views=self.output_views)

    def reference(self, *inputs) -> list[np.ndarray]:
        """The unoptimized graph through the numpy references — what the compiled result must equal."""
        return interpret(self.original, *inputs, params=self._live_params())

    def __call__(self, *inputs):
        arrays = [x for x in inputs if isinstance(x, (Tensor, np.ndarray))]
        self._for_shapes(arrays)
        outs = self.executable.run(*arrays, params=self._live_params(), views=self.output_views, keep=self._returns)
        for j, name in enumerate(self._updates):         # state updates: arena views, copied into the state
            t = self._state.get(name)
            if t is not None:
                t._data[...] = outs[self._returns + j]
                bump(t._data, self._updating)
        res = [Tensor._wrap(np.asarray(o)) for o in outs[:self._returns]]
        if not res:
            return None
        return res[0] if len(res) == 1 else tuple(res)


def _state_tensors(source, graph: Graph) -> dict:
    """param name -> the live tensor it was traced from (the modules reachable from ``source``)."""
    from ..frontend.trace import find_modules, named_state
    mods = find_modules(source)
    names = named_state(mods)
    wanted = {n.name for n in graph.params()}
    out = {}
    for mod in mods.values():
        items = list(mod.named_parameters())
        if callable(getattr(mod, "named_buffers", None)):
            items += list(mod.named_buffers())
        for _, t in items:
            nm = names.get(id(t))
            if nm in wanted:
                out[nm] = t
    return out


def compile(fn_or_module, *example_inputs, passes=None, backend: str = "numba", params=None,
            output_views: bool = False) -> CompiledFunction:
    """Capture ``fn_or_module(*example_inputs)`` with ``aisys.trace``, run the pass pipeline, and return a
    :class:`CompiledFunction` (fused groups compiled by numba; ``backend="reference"`` interprets them).

    ``output_views=True``: calls return views into the function's arena instead of copies — no copy per
    call, but a result is overwritten by the next call (copy what you keep).

    ``passes``: a list of passes (functions, names like ``"cse"``, ``Pass``/``Fixpoint`` objects); the
    default is :func:`aisys.compiler.passes.default_pipeline`. A :class:`Graph` may be given instead of
    a function (then ``example_inputs`` are ignored).
    """
    if isinstance(fn_or_module, Graph):
        graph, state, fn = fn_or_module, {}, None
    else:
        if not callable(fn_or_module):
            raise TypeError(f"aisys.compile: expected a function, a module or a Graph, got {type(fn_or_module).__name__}")
        if not example_inputs:
            raise TypeError("aisys.compile: give example inputs, e.g. aisys.compile(f, x); the compiled function is "
                            "specialized to their shapes and dtypes")
        from ..frontend import trace
        graph = trace(fn_or_module, *example_inputs, params=params)
        fn = fn_or_module
        if isinstance(params, dict):
            state = {k: v for k, v in params.items() if isinstance(v, Tensor)}
        else:
            state = _state_tensors(fn_or_module if params is None else params, graph)
    pipeline = default_pipeline() if passes is None else resolve(passes)
    log = PassManager(pipeline).run(graph)
    return CompiledFunction(graph, log, backend, state, fn, pipeline=pipeline, params=params,
                            output_views=output_views)
