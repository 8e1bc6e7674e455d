"""Run an optimized graph: fused nodes through their generated kernels, everything else through the
registry's numpy references (the same executable spec ``interpret`` uses).

Intermediate arrays are dropped after their last reader, so a long chain does not keep every
temporary alive. ``backend="reference"`` interprets fused nodes through their bodies instead of
compiling them — the ground truth the numba kernels are tested against.
"""
from __future__ import annotations

import numpy as np

from ..framework import dtypes
from ..framework.graph import Graph
from ..framework.interpreter import Interpreter, evaluate_node
from .codegen import build_kernel

BACKENDS = ("numba", "reference")


class Executable(Interpreter):
    """A graph bound to its kernels. ``run(*inputs) -> list of output arrays``."""

    what = "compiled graph"
    shape_hint = ("; a compiled function is specialized to its example inputs' shapes — compile again for "
                  "new shapes")

    def __init__(self, graph: Graph, backend: str = "numba"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        super().__init__(graph)
        self.backend = backend
        self.kernels = {}
        if backend == "numba":
            self.kernels = {n.id: build_kernel(n) for n in graph.nodes.values() if n.op == "fused"}
        steps = self.schedule()
        last: dict[int, int] = {}
        for k, n in enumerate(steps):
            for i in n.inputs:
                last[i] = k
        keep = set(graph.outputs)
        self._free_after: dict[int, list[int]] = {}
        for i, k in last.items():
            if i not in keep and graph.nodes[i].op not in ("param", "const"):
                self._free_after.setdefault(k, []).append(i)

    def sources(self) -> dict[int, str]:
        """node id -> generated source, for every fused node."""
        if self.kernels:
            return {i: k.source for i, k in self.kernels.items()}
        return {n.id: build_kernel(n).source for n in self.graph.nodes.values() if n.op == "fused"}

    def input_value(self, node, x):
        """An input of the compiled shape must have the compiled dtype too: the kernels are typed, and a silent
        cast would hide that the caller's values are not what the function was compiled for."""
        arr = np.asarray(x._data if hasattr(x, "_data") else x)
        if tuple(arr.shape) == tuple(node.shape) and arr.dtype != node.dtype.np:
            given = next((d.name for d in dtypes.ALL if d.np == arr.dtype), str(arr.dtype))
            raise TypeError(f"input {node.name!r} was compiled for {node.dtype.name}, got {given}; a compiled "
                            f"function is specialized to its example inputs' dtypes (its kernels are typed) — "
                            f"convert the input (x.to(aisys.{node.dtype.name})) or compile again with this dtype")
        return super().input_value(node, arr)

    def execute(self, node, args):
        kern = self.kernels.get(node.id)
        return kern(*args) if kern is not None else evaluate_node(node, args)

    def after(self, step: int, node) -> None:
        for i in self._free_after.get(step, ()):          # intermediates die after their last reader
            self.values.pop(i, None)

    def warmup(self) -> None:
        """Compile (or load from the cache) every kernel now, by running it once on zeros."""
        for i, kern in self.kernels.items():
            n = self.graph.nodes[i]
            kern(*[np.zeros(self.graph.nodes[j].shape, self.graph.nodes[j].dtype.np) for j in n.inputs])
