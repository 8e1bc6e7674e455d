"""L4 — compiler & runtime: the pass manager and graph passes, fusion with generated numba kernels,
layout transformation, and ``aisys.compile``.

    import aisys
    f = aisys.compile(fn, x)          # trace → passes → fused kernels
    print(f.pass_log.summary())

Importing this package registers the compiler's own ops (``fused``, ``conv2d_nhwc``); it never imports
numba (kernels compile on first call).
"""
from . import ops as _ops  # noqa: F401  (registers fused, conv2d_nhwc)
from .api import CompiledFunction, compile
from .manager import Fixpoint, Pass, PassError, PassLog, PassManager, PassResult, run_pass, run_passes
from .metrics import Metrics, graph_metrics
from .passes import (PASSES, SIMPLIFY_RULES, cse, dce, default_pipeline, fold_constants, fold_conv_bn,
                     fold_conv_bn_weights, fuse, make_fold_conv_bn, simplify, to_nhwc, fold_quantization,
                     float_ops_between)
from .rewriter import Decision, Rewrite, Rewriter
from .runtime import Executable
from .memory import plan_memory  # noqa: F401  (memory planning lives in aisys.compiler.memory)

__all__ = ["compile", "CompiledFunction", "PassManager", "PassResult", "PassLog", "Pass", "Fixpoint", "PassError",
           "run_pass", "run_passes", "Rewriter", "Rewrite", "Decision", "Metrics", "graph_metrics", "Executable",
           "PASSES", "default_pipeline", "fold_constants", "dce", "cse", "simplify", "SIMPLIFY_RULES",
           "fold_conv_bn", "fold_conv_bn_weights", "make_fold_conv_bn", "fuse", "to_nhwc", "fold_quantization",
           "float_ops_between"]
