"""Every registered op and its public function (``aisys.<op>``). Importing this fills the registry."""
from __future__ import annotations

import builtins

from ..tensor import Tensor, apply, as_tensor, _Generator, _ops as _tensor_methods
from .elementwise import (add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, logical_not,
                          neg, exp, log, sqrt, sin, cos, tanh, sign, abs, sigmoid, relu, gelu, where, cast,
                          clamp, square, rsqrt)
from .reduce import sum, mean, var, std, max, min, amax, amin, argmax, argmin, sum_to
from .sorting import argsort, sort, topk, kthvalue, median, mode
from .shape import (reshape, permute, transpose, broadcast_to, expand, squeeze, unsqueeze, flatten, contiguous,
                    index, cat, concat, stack, pad, gather, index_select, split, chunk, tril, triu)
from .linalg import matmul
from .special import erf
from . import nn as _nn_ops  # noqa: F401  (registers conv2d, pooling, norms, losses)
from . import quant as _quant_ops  # noqa: F401  (registers quantize, dequantize, fake_quant, integer kernels)


def softmax(input, dim):
    return apply("softmax", as_tensor(input), dim=builtins.int(dim))


def log_softmax(input, dim):
    return apply("log_softmax", as_tensor(input), dim=builtins.int(dim))


def one_hot(idx, num_classes: int):
    return apply("one_hot", as_tensor(idx), num_classes=builtins.int(num_classes))


def new_dropout_seed() -> int:
    """A fresh seed for one dropout call, drawn from the global generator (aisys.manual_seed)."""
    return builtins.int(_Generator.rng.integers(0, 2**31 - 1))


vars(_tensor_methods).update({k: v for k, v in globals().items() if not k.startswith("_")})   # Tensor's methods
