"""Run an optimized graph: fused nodes through their generated kernels, everything else through the
registry's numpy references (the same executable spec ``interpret`` uses).

Intermediate arrays are dropped after their last reader, so a long chain does not keep every
temporary alive. ``backend="reference"`` interprets fused nodes through their bodies instead of
compiling them — the ground truth the numba kernels are tested against.
"""
from __future__ import annotations

import numpy as np

from ..framework import dtypes
from ..framework.graph import Graph, evaluate_node
from .codegen import build_kernel

BACKENDS = ("numba", "reference")


class Executable:
    """A graph bound to its kernels. ``run(*inputs) -> list of output arrays``."""

    def __init__(self, graph: Graph, backend: str = "numba"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.graph = graph
        self.backend = backend
        self.kernels = {}
        if backend == "numba":
            self.kernels = {n.id: build_kernel(n) for n in graph.nodes.values() if n.op == "fused"}
        order = [n for n in graph.nodes.values()]
        pos = {n.id: k for k, n in enumerate(order)}
        last: dict[int, int] = {}
        for n in order:
            for i in n.inputs:
                last[i] = pos[n.id]
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

    def run(self, *inputs, params: dict | None = None) -> list[np.ndarray]:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ValueError(f"compiled graph {g.name!r} takes {len(g.inputs)} inputs "
                             f"({', '.join(repr(g.nodes[i].name) for i in g.inputs)}), got {len(inputs)}")
        env: dict[int, np.ndarray] = {}
        for i, x in zip(g.inputs, inputs):
            node = g.nodes[i]
            arr = np.asarray(x._data if hasattr(x, "_data") else x)
            if tuple(arr.shape) != tuple(node.shape):
                raise ValueError(f"input {node.name!r} expects shape {tuple(node.shape)} ({node.dtype.name}), "
                                 f"got {tuple(arr.shape)}; a compiled function is specialized to its example "
                                 f"inputs' shapes — compile again for new shapes")
            if arr.dtype != node.dtype.np:
                given = next((d.name for d in dtypes.ALL if d.np == arr.dtype), str(arr.dtype))
                raise TypeError(f"input {node.name!r} was compiled for {node.dtype.name}, got {given}; a compiled "
                                f"function is specialized to its example inputs' dtypes (its kernels are typed) — "
                                f"convert the input (x.to(aisys.{node.dtype.name})) or compile again with this dtype")
            env[i] = arr
        for k, n in enumerate(g.nodes.values()):
            if n.op == "input":
                continue
            if n.op in ("param", "const"):
                env[n.id] = params[n.name] if (params and n.op == "param" and n.name in params) else n.value
                continue
            args = [env[i] for i in n.inputs]
            kern = self.kernels.get(n.id)
            env[n.id] = kern(*args) if kern is not None else evaluate_node(n, args)
            for i in self._free_after.get(k, ()):
                env.pop(i, None)
        return [env[i] for i in g.outputs]

    def warmup(self) -> None:
        """Compile (or load from the cache) every kernel now, by running it once on zeros."""
        for i, kern in self.kernels.items():
            n = self.graph.nodes[i]
            kern(*[np.zeros(self.graph.nodes[j].shape, self.graph.nodes[j].dtype.np) for j in n.inputs])
