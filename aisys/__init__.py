"""aisys — a small, real AI system to learn from, layer by layer.

    import aisys
    x = aisys.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x @ x.T).sum(); y.backward(); x.grad

Layers (ZOMI's AISystem course, "AI 系统组成&生态"): models (application) → frontend (trace, script) →
framework (Tensor, ops, autodiff, nn) → compiler & runtime → chip (simulated accelerator) and kernels.
Heavy pieces (numba, the compiler, the chip, widgets) load on first use, so ``import aisys`` stays fast.
"""
from __future__ import annotations

import importlib

from .framework import dtypes as _dtypes
from .framework.dtypes import (DType, bool_, int8, int32, int64, float16, bfloat16, float32, float64)
from .framework.registry import OPS as ops_registry, FusionKind, get as get_op
from .framework.errors import ShapeError, AnomalyError
from .framework.tensor import (Tensor, tensor, as_tensor, zeros, ones, full, zeros_like, ones_like, arange, eye,
                               randn, rand, randint, manual_seed, no_grad, enable_grad, set_grad_enabled,
                               is_grad_enabled, detect_anomaly)
from .framework.tensor import observe_ops
from .framework.ops import (add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, logical_not, neg,
                            exp, log, sqrt, sin, cos, tanh, sign, abs, sigmoid, relu, gelu, where, cast, clamp,
                            square, rsqrt, sum, mean, var, std, max, min, argmax, argmin, sum_to, reshape, permute,
                            transpose, broadcast_to, expand, squeeze, unsqueeze, flatten, contiguous, index, cat,
                            concat, stack, pad, gather, matmul, softmax, log_softmax, one_hot)
from .framework.ops import index_select
from .framework.autograd import gradcheck, gradgradcheck, vjp, jvp, grad_fn as grad
from .framework import autograd
from .framework import nn, optim, data     # light (pure Python); nn aliases itself as aisys.nn
from .kernels import conv as _conv_kernels  # noqa: F401  (registers the conv2d kernels with the dispatcher; no numba)
import sys as _sys
_sys.modules.setdefault("aisys.optim", optim)      # so `import aisys.optim` and `import aisys.data` work too
_sys.modules.setdefault("aisys.data", data)

bool = bool_  # noqa: A001  (aisys.bool, as torch.bool)

_LAZY = {
    "models": "aisys.models",
    "frontend": "aisys.frontend",
    "compiler": "aisys.compiler",
    "chip": "aisys.chip",
    "kernels": "aisys.kernels",
    "inference": "aisys.inference",
    "labkit": "aisys.labkit",
    "cluster": "aisys.cluster",
    "graph": "aisys.framework.graph",
    "onnx": "aisys.onnx",
    "dist": "aisys.dist",
}
_LAZY_ATTRS = {
    "trace": ("aisys.frontend", "trace"),
    "script": ("aisys.frontend", "script"),
    "compile": ("aisys.compiler", "compile"),
    "Graph": ("aisys.framework.graph", "Graph"),
}


def __getattr__(name):
    if name in _LAZY:
        mod = importlib.import_module(_LAZY[name])
        globals()[name] = mod
        return mod
    if name in _LAZY_ATTRS:
        mod_name, attr = _LAZY_ATTRS[name]
        val = getattr(importlib.import_module(mod_name), attr)
        globals()[name] = val
        return val
    raise AttributeError(f"module 'aisys' has no attribute {name!r}")


__version__ = "0.1.0"
