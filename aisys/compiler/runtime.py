"""Run an optimized graph: fused nodes through their generated kernels, everything else through the
registry's numpy references (the same executable spec ``interpret`` uses).

Intermediate arrays are dropped after their last reader, so a long chain does not keep every
temporary alive. ``backend="reference"`` interprets fused nodes through their bodies instead of
compiling them — the ground truth the numba kernels are tested against.
"""
from __future__ import annotations

import numpy as np

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
