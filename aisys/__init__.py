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
from .framework.tensor import (Tensor, manual_seed, no_grad, enable_grad, set_grad_enabled, is_grad_enabled,
                               detect_anomaly)
from .framework.factories import (tensor, as_tensor, from_numpy, zeros, ones, empty, full, zeros_like, ones_like,
                                  empty_like, full_like, rand_like, randn_like, randint_like, arange, linspace,
                                  logspace, eye, randn, rand, randint, randperm, multinomial, Generator)
from .framework.device import (device, cuda, backends, accelerator, set_default_device, get_default_device)
from .framework.serialization import save, load
from .framework.tensor import observe_ops
from .framework.ops import (add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, logical_not, neg,
                            exp, log, sqrt, sin, cos, tanh, sign, abs, sigmoid, relu, gelu, where, cast, clamp,
                            square, rsqrt, sum, mean, var, std, max, min, argmax, argmin, sum_to, reshape, permute,
                            amax, amin, argsort, sort, topk, kthvalue, median, mode,
                            transpose, broadcast_to, expand, squeeze, unsqueeze, flatten, contiguous, index, cat,
                            concat, stack, pad, gather, matmul, softmax, log_softmax, one_hot, erf, split, chunk,
                            tril, triu)
from .framework.ops import index_select
from .framework.autograd import gradcheck, gradgradcheck, vjp, jvp, grad_fn as grad
from .framework import autograd
from .framework import nn, optim, data     # light (pure Python); nn aliases itself as aisys.nn
import sys as _sys
_sys.modules.setdefault("aisys.optim", optim)      # so `import aisys.optim` and `import aisys.data` work too
_sys.modules.setdefault("aisys.data", data)
_sys.modules.setdefault("aisys.optim.lr_scheduler", optim.lr_scheduler)

bool = bool_  # noqa: A001  (aisys.bool, as torch.bool)
# PyTorch's other dtype names (torch.float is float32, torch.long is int64, ...)
float, double, half, long, int = float32, float64, float16, int64, int32  # noqa: A001
_sys.modules.setdefault("aisys.cuda", cuda)
inference_mode = no_grad
mm = bmm = matmul


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input) -> int:
    return input.numel()


def masked_fill(input, mask, value):
    return input.masked_fill(mask, value)

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


# PyTorch names aisys does not have, and what to use instead (an AttributeError says so)
_INSTEAD = {
    "uint8": "aisys.int8 or aisys.int32 (aisys has no unsigned types)", "int16": "aisys.int32",
    "short": "aisys.int32", "uint16": "aisys.int32", "uint32": "aisys.int64", "uint64": "aisys.int64",
    "cfloat": "none: aisys has no complex dtypes", "complex64": "none: aisys has no complex dtypes",
    "complex128": "none: aisys has no complex dtypes", "float8_e4m3fn": "aisys.framework.bits (FP8 as bit formats)",
    "float8_e5m2": "aisys.framework.bits (FP8 as bit formats)", "jit": "aisys.trace / aisys.script (graph capture)",
    "fx": "aisys.trace (it records a Graph, like torch.fx symbolic tracing)", "nn.functional": "aisys.nn.functional",
    "vmap": "a batch dimension (aisys has no vmap)", "einsum": "aisys.matmul with reshape/permute",
    "distributions": "aisys.multinomial / aisys.randn (no distributions package)",
    "utils": "aisys.data (Dataset, DataLoader, TensorDataset, random_split)",
}


def __getattr__(name):
    if name in _INSTEAD:
        raise AttributeError(f"module 'aisys' has no attribute {name!r}; use {_INSTEAD[name]}")
    if name in _LAZY:
        mod = importlib.import_module(_LAZY[name])
        globals()[name] = mod
        return mod
    if name in _LAZY_ATTRS:
        mod_name, attr = _LAZY_ATTRS[name]
        val = getattr(importlib.import_module(mod_name), attr)
        globals()[name] = val
        return val
    raise AttributeError(f"module 'aisys' has no attribute {name!r}{_closest(name)}")


def _closest(name: str) -> str:
    """'; did you mean aisys.X?' for a near miss among aisys's public names (a typo of a PyTorch name)."""
    if name.startswith("_"):          # introspection (hasattr(module, "__file__")...), not a user's typo
        return ""
    import difflib
    public = [n for n in (*globals(), *_LAZY, *_LAZY_ATTRS) if not n.startswith("_")]
    match = difflib.get_close_matches(name, public, n=1, cutoff=0.75)
    return f"; did you mean aisys.{match[0]}?" if match else ""


__version__ = "0.1.0"
