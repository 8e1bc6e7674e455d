"""``aisys.onnx.Backend``: ONNX's backend interface over the importer and the graph interpreter, so ONNX's
own conformance tests (``onnx.backend.test``, shipped inside the ``onnx`` wheel) run against aisys.

    rep = aisys.onnx.Backend.prepare(model)          # import once
    outputs = rep.run([x])                           # run as often as you like

``prepare(model, device, runner=f)`` runs each graph through ``f(graph)`` (a callable taking the input
arrays) instead of the interpreter; the front door ``aisys.onnx.Backend`` uses that for ``compile=True``
(``aisys.compile``: passes and fused kernels), so this layer never imports the compiler.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx.backend.base import Backend as _OnnxBackend, BackendRep as _OnnxBackendRep, Device, DeviceType, namedtupledict

from ...framework.graph import Graph, interpret
from .importer import load, read_model
from .types import NeedsValue


def run(graph: Graph, inputs: dict | None = None, **named) -> dict:
    """Run an imported (or any) graph by the interpreter: ``{input name: array}`` in, ``{output name: array}``
    out (outputs are named as in the ONNX file, or ``output0``, ``output1``... for other graphs)."""
    feeds = dict(inputs or {}, **named)
    names = [graph.nodes[i].name for i in graph.inputs]
    missing = [n for n in names if n not in feeds]
    extra = sorted(set(feeds) - set(names))
    if missing or extra:
        raise ValueError(f"aisys.onnx.run: graph {graph.name!r} takes inputs {names}"
                         + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else ""))
    outs = interpret(graph, *[np.asarray(feeds[n]) for n in names])
    return dict(zip(output_names(graph), outs))


def output_names(graph: Graph) -> list[str]:
    names = list(getattr(graph, "output_names", []) or [])
    return names if len(names) == len(graph.outputs) else [f"output{k}" for k in range(len(graph.outputs))]


class BackendRep(_OnnxBackendRep):
    """A prepared model: the imported graph (``.graph``) and how it runs (interpreter or compiled).

    A model whose shape-determining values (Reshape's target, Slice's bounds, reduction axes) arrive as
    graph inputs cannot be one static graph: it is specialized at ``run()`` on those inputs' values, one
    graph per distinct value (cached), the way static-shape compilers treat shape arguments."""

    def __init__(self, model, graph: Graph | None, runner=None, bound: tuple = ()):
        self.model, self.graph, self.runner, self.bound = model, graph, runner, tuple(bound)
        self.run_arrays = runner(graph) if runner is not None and graph is not None else None
        self._specialized: dict = {}

    def _inputs(self, inputs) -> dict:
        names = [vi.name for vi in self.model.graph.input
                 if vi.name not in {t.name for t in self.model.graph.initializer}]
        if isinstance(inputs, dict):
            return dict(inputs)
        arrays = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(arrays) != len(names):
            raise ValueError(f"the model takes {len(names)} inputs ({names}), got {len(arrays)}")
        return dict(zip(names, arrays))

    def _specialize(self, feeds: dict) -> "BackendRep":
        bound: dict = {name: np.asarray(feeds[name]) for name in self.bound}
        key = tuple((n, v.dtype.str, v.shape, v.tobytes()) for n, v in sorted(bound.items()))
        if key not in self._specialized:
            while True:
                try:
                    graph = load(self.model, input_values=bound)
                    break
                except NeedsValue as exc:
                    if exc.input_name in bound or exc.input_name not in feeds:
                        raise
                    bound[exc.input_name] = np.asarray(feeds[exc.input_name])
            self.bound = tuple(bound)
            key = tuple((n, v.dtype.str, v.shape, v.tobytes()) for n, v in sorted(bound.items()))
            self._specialized[key] = BackendRep(self.model, graph, self.runner)
        return self._specialized[key]

    def run(self, inputs, **kwargs):
        feeds = self._inputs(inputs)
        rep = self if self.graph is not None else self._specialize(feeds)
        g = rep.graph
        arrays = [np.asarray(feeds[g.nodes[i].name]) for i in g.inputs]
        outs = rep.run_arrays(*arrays) if rep.run_arrays is not None else interpret(g, *arrays)
        outs = [np.asarray(o) for o in outs]
        return namedtupledict("Outputs", output_names(g))(*outs)


class Backend(_OnnxBackend):
    """onnx.backend.base.Backend for aisys: CPU only, the graph interpreter (the registry's numpy references)."""

    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model, device: str = "CPU", runner=None, **kwargs) -> BackendRep:
        # (not onnx.checker, as the base class does: the importer checks the model itself and names the node)
        if not cls.supports_device(device):
            raise ValueError(f"aisys runs on the CPU only, not {device!r}")
        model = read_model(model)
        try:
            graph = load(model)
        except NeedsValue:                 # shapes arrive as inputs: specialize at run()
            graph = None
        return BackendRep(model, graph, runner)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device: str = "CPU", outputs_info=None, **kwargs):
        """Run one NodeProto on inputs (given in the order of node.input): wrapped in a one-node model."""
        from onnx import helper
        from .types import onnx_type
        from ...framework import dtypes as _dt
        ins = [helper.make_tensor_value_info(name, onnx_type(_dt.from_numpy(np.asarray(a).dtype)), np.shape(a))
               for name, a in zip(node.input, inputs) if name]
        outs = [helper.make_tensor_value_info(name, 0, None) for name in node.output if name]
        g = helper.make_graph([node], "node", ins, outs)
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", kwargs.pop("opset_version", 17))])
        return cls.run_model(model, [a for name, a in zip(node.input, inputs) if name], device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU


prepare = Backend.prepare
run_model = Backend.run_model
supports_device = Backend.supports_device

__all__ = ["Backend", "BackendRep", "run", "prepare", "run_model", "supports_device", "output_names", "onnx"]
