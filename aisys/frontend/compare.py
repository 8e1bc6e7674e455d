"""One function in its three forms — eager, traced, scripted — run on the same inputs and compared
(the unification lab 03 ends on, 动静统一).

The eager form builds a new graph every run (its tape, :func:`graph_of_tape`); the traced and scripted
graphs are captured once from example inputs and then run on new ones. A trace silently keeps the branch
its example took, so on an input that takes the other branch its answer differs from eager; the scripted
graph holds both branches (``cond``) and agrees. :func:`compare_captures` returns the record the
``CaptureCompare`` widget draws.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..framework.graph import Graph, interpret
from ..framework.tensor import Tensor
from .dynamic_graph import graph_of_tape
from .script import script
from .trace import referenced_tensors, trace

__all__ = ["CaptureComparison", "FormsRun", "compare_captures"]


@dataclass(frozen=True)
class FormsRun:
    """The three forms on one input: their outputs, this run's tape as a graph, and whether each captured
    graph reproduced the eager answer ("right" / "wrong")."""
    label: str
    outputs: dict                 # "eager" / "traced" / "scripted" -> ndarray
    eager_graph: Graph
    verdicts: dict                # "traced" / "scripted" -> "right" | "wrong"


@dataclass
class CaptureComparison:
    """``fn`` traced and scripted once from ``example_inputs``; :meth:`run` compares the forms on a variant."""
    fn: object
    traced: Graph
    scripted: Graph
    variants: dict
    rtol: float = 1e-5
    atol: float = 1e-6
    _runs: dict = field(default_factory=dict, repr=False)

    @property
    def warnings(self) -> list:
        return list(getattr(self.traced, "warnings", []))

    def run(self, label: str) -> FormsRun:
        if label not in self._runs:
            self._runs[label] = self._run(label)
        return self._runs[label]

    def _run(self, label: str) -> FormsRun:
        if label not in self.variants:
            raise KeyError(f"no input variant {label!r}; variants: {', '.join(self.variants)}")
        inputs = self.variants[label]
        arg_names = [self.traced.nodes[i].name for i in self.traced.inputs]
        tape_inputs = [Tensor(x.numpy().copy(), requires_grad=x.dtype.is_floating) for x in inputs]
        eager_out = self.fn(*tape_inputs)
        eager_graph = graph_of_tape(eager_out, inputs=dict(zip(arg_names, tape_inputs)),
                                    params=referenced_tensors(self.fn), name="eager")
        outs = {"eager": np.asarray(eager_out.numpy()), "traced": interpret(self.traced, *inputs)[0],
                "scripted": interpret(self.scripted, *inputs)[0]}
        verdicts = {k: "right" if np.allclose(outs[k], outs["eager"], rtol=self.rtol, atol=self.atol) else "wrong"
                    for k in ("traced", "scripted")}
        return FormsRun(label, outs, eager_graph, verdicts)

    def summary(self, label: str) -> str:
        r = self.run(label)
        lines = [f"input {label}"]
        for k in ("eager", "traced", "scripted"):
            v = r.verdicts.get(k) or "reference"
            flat = np.asarray(r.outputs[k], dtype=np.float64).reshape(-1)
            shown = ", ".join(f"{x:.3f}" for x in flat[:6]) + (", …" if flat.size > 6 else "")
            lines.append(f"  {k:<8} {v:<9} out = [{shown}]")
        for w in self.warnings:
            lines.append(f"  traced warning: {w.split(': ', 1)[0]}")
        return "\n".join(lines)


def compare_captures(fn, example_inputs, variants) -> CaptureComparison:
    """Trace and script ``fn`` from ``example_inputs``; ``variants`` maps a label to a list of inputs to
    compare the three forms on (e.g. {"prev_h": [x, h], "−prev_h": [x, -h]})."""
    return CaptureComparison(fn, trace(fn, *example_inputs), script(fn, *example_inputs).graph,
                             {k: list(v) for k, v in variants.items()})
