"""Constant folding (常量折叠, 03Frontend/07ConstantFold; 04Inference/05Optimize/02Basic).

If every input of an op is a constant, run the op now — through the registry's numpy reference, the
same code eager execution uses — and replace it by a ``const`` holding the result. Sweeping in
topological order folds whole constant chains in one pass.

Not folded (each logged as a rejected candidate): impure ops (dropout draws a fresh mask), and
results larger than ``max_elements`` — folding ``broadcast_to(0.0, (4096, 4096))`` would store 64 MiB
in the model instead of one number. Parameters are not constants unless ``fold_params=True`` (a
training graph must still see their updates).
"""
from __future__ import annotations

import numpy as np

from ...framework.graph import evaluate_node
from ...framework.registry import get as get_op
from ..rewriter import Rewriter, Worklist

DEFAULT_MAX_ELEMENTS = 65536


def fold_constants(rw: Rewriter, max_elements: int = DEFAULT_MAX_ELEMENTS, fold_params: bool = False) -> None:
    """Replace every op whose inputs are all constants by a constant.

    A worklist in topological order (whole constant chains fold in one run; in a fixpoint group only the
    nodes changed since the last run and their readers are looked at): O(n log n) plus the folding."""
    g = rw.graph
    foldable = ("const", "param") if fold_params else ("const",)
    work = Worklist(rw, lambda i: not g.nodes[i].is_leaf and bool(g.nodes[i].inputs))
    for i in work:
        n = g.nodes[i]
        ins = [g.nodes[j] for j in n.inputs]
        if not all(x.op in foldable for x in ins):
            continue
        candidate = f"fold %{n.id} = {n.op}"
        if not get_op(n.op).pure:
            rw.reject(candidate, f"{n.op} is impure: its value must be produced at run time", rule="fold_constants",
                      nodes=(n.id,))
            continue
        if n.numel > max_elements:
            rw.reject(candidate, f"the result {n.type_str()} has {n.numel} elements, over the cap of {max_elements}; "
                                 f"storing it would bloat the model more than computing it costs",
                      rule="fold_constants", nodes=(n.id,))
            continue
        try:
            value = evaluate_node(n, [x.value for x in ins])
        except Exception as e:          # the op itself rejects these values: leave it for run time
            rw.reject(candidate, f"evaluating it raised {type(e).__name__}: {e}", rule="fold_constants", nodes=(n.id,))
            continue
        c = rw.add_const(np.array(value, copy=True), provenance=n.provenance)
        work.push(*rw.users()[n.id])
        rw.replace(n.id, c.id, rule="fold_constants", note=f"%{n.id} = {n.op}(" +
                   ", ".join(f"%{i}" for i in n.inputs) + f") → const %{c.id}")
