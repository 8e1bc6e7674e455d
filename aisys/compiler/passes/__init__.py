"""The graph passes (图优化 passes) and the default pipeline.

Every pass is a function ``pass_fn(rw: Rewriter, **options)``; see :mod:`aisys.compiler.manager`.
``PASSES`` maps names to passes so pipelines can be written as strings.
"""
from __future__ import annotations

from ..pipeline import Fixpoint, Pass
from .conv_bn import fold_conv_bn, fold_conv_bn_weights, make_fold_conv_bn
from .cse import cse
from .dce import dce
from .fold_constants import fold_constants
from .fusion import fuse
from .layout import to_nhwc
from .quantization import float_ops_between, fold_quantization
from .simplify import SIMPLIFY_RULES, Rule, simplify

PASSES = {
    "fold_constants": fold_constants,
    "dce": dce,
    "cse": cse,
    "simplify": simplify,
    "fold_conv_bn": fold_conv_bn,
    "fuse": fuse,
    "to_nhwc": to_nhwc,
    "fold_quantization": fold_quantization,
}


def default_pipeline(layout: bool = False, fusion: bool = True) -> list:
    """BN folding, then cleanup to a fixpoint (fold constants, simplify, CSE, DCE), optionally the NHWC
    layout pass (and another cleanup), then fusion. Fusion comes last: it hides ops inside fused bodies,
    where the other passes no longer see them (the pass-ordering lesson of 03Frontend/11)."""
    cleanup = Fixpoint([fold_constants, simplify, cse, dce], name="cleanup")
    pipeline: list = [fold_conv_bn, cleanup]
    if layout:
        pipeline += [to_nhwc, Fixpoint([fold_constants, simplify, cse, dce], name="cleanup")]
    if fusion:
        pipeline += [fuse, dce]
    return pipeline


def resolve(passes) -> list:
    """Turn names into pass functions (a list may mix names, functions, Pass and Fixpoint objects)."""
    out = []
    for p in passes:
        if isinstance(p, str):
            if p not in PASSES:
                raise ValueError(f"unknown pass {p!r}; known passes: {', '.join(PASSES)}")
            out.append(PASSES[p])
        elif isinstance(p, Fixpoint):
            out.append(Fixpoint(resolve(p.passes), p.max_rounds, p.name))
        else:
            out.append(p)
    return out


__all__ = ["PASSES", "default_pipeline", "resolve", "fold_constants", "dce", "cse", "simplify", "SIMPLIFY_RULES",
           "Rule", "fold_conv_bn", "fold_conv_bn_weights", "make_fold_conv_bn", "fuse", "to_nhwc", "Pass", "Fixpoint",
           "fold_quantization", "float_ops_between"]
