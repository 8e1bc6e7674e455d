"""Layers as Modules: each owns its parameters and calls ``aisys.nn.functional`` in ``forward``.

Constructors, parameter names, shapes and default initializations follow PyTorch, so a state dict
exported from ``torch.nn.Linear``/``Conv2d``/... (converted to numpy) loads into the aisys layer.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .. import dtypes as _dt
from ..errors import ShapeError
from ..inplace import bump
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Identity", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d",
           "LayerNorm",
           "Embedding", "Dropout", "ReLU", "GELU", "Tanh", "Sigmoid", "SiLU", "LeakyReLU", "Softmax", "LogSoftmax",
           "Flatten", "Sequential", "ModuleList", "ModuleDict"]


def _dtype(dtype):
    return (_dt.as_dtype(dtype) if dtype is not None else _dt.default_float).np


def _empty(shape, dtype) -> Parameter:
    return Parameter(np.zeros(shape, _dtype(dtype)))


def _positive(layer: str, **values) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{layer}: {name}={v!r} must be a positive int")


class Identity(Module):
    """Returns its input (a placeholder layer, e.g. where a norm is switched off)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


def _fan_in_parameters(layer: Module, weight_shape: tuple, bias: bool, dtype) -> None:
    """A weight of ``weight_shape`` and (optionally) a bias of weight_shape[0] outputs, initialized the way
    torch initializes Linear and Conv2d (U(±1/√fan_in), see init.default_fan_in_init_)."""
    layer.weight = _empty(weight_shape, dtype)
    if bias:
        layer.bias = _empty((weight_shape[0],), dtype)
    else:
        layer.register_parameter("bias", None)
    layer.reset_parameters()


class Linear(Module):
    """y = x·Wᵀ + b with weight (out_features, in_features) and torch's default init (U(±1/√in))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        _positive("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        _fan_in_parameters(self, (out_features, in_features), bias, dtype)

    def reset_parameters(self) -> None:
        init.default_fan_in_init_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{self!r}: input must be an aisys Tensor, got {type(input).__name__}")
        shape = input._data.shape
        if not shape or shape[-1] != self.in_features:
            raise ShapeError("linear", f"{self!r} got an input with {input.shape[-1] if input.ndim else 0} features "
                             f"in its last dim (shape {tuple(input.shape)}) but expects in_features="
                             f"{self.in_features}", shapes=(input.shape,),
                             rule="flatten the input (nn.Flatten) or build the layer with the input's feature count")
        params = self._parameters                # (direct: the attribute fallback costs more than the op's checks)
        return F.linear(input, params["weight"], params["bias"])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


class Conv2d(Module):
    """2-D convolution (NCHW) with weight (out, in/groups, kH, kW) and torch's default init."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, dtype=None):
        super().__init__()
        _positive("Conv2d", in_channels=in_channels, out_channels=out_channels, groups=groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.groups = int(groups)
        for name, v, lo in (("kernel_size", self.kernel_size, 1), ("stride", self.stride, 1),
                            ("dilation", self.dilation, 1)) + ((("padding", self.padding, 0),)
                                                               if not isinstance(padding, str) else ()):
            if len(v) != 2 or min(v) < lo:
                raise ValueError(f"Conv2d: {name}={v} is invalid; each value must be ≥ {lo}")
        _fan_in_parameters(self, (out_channels, in_channels // groups) + self.kernel_size, bias, dtype)

    def reset_parameters(self) -> None:
        init.default_fan_in_init_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{self!r}: input must be an aisys Tensor, got {type(input).__name__}")
        if input.ndim != 4 or input.shape[1] != self.in_channels:
            got = f"{input.shape[1]} channels" if input.ndim == 4 else f"a {input.ndim}-D input"
            raise ShapeError("conv2d", f"{self!r} got {got} (shape {tuple(input.shape)}) but expects (N, "
                             f"{self.in_channels}, H, W)", shapes=(input.shape,),
                             rule="input is NCHW with in_channels at dim 1 (unsqueeze a missing batch/channel dim)")
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.ceil_mode = ceil_mode
        F._pool_attrs("MaxPool2d", kernel_size, stride, padding, dilation)     # fail at construction, not first call
        F._no_ceil("MaxPool2d", ceil_mode)

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        F._pool_attrs("AvgPool2d", kernel_size, stride, padding, 1)
        F._no_ceil("AvgPool2d", ceil_mode)
        if not count_include_pad:
            raise ValueError("AvgPool2d: count_include_pad=False is not supported")

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (e.g. (1, 1): global average pooling), as torch."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: γ, β parameters and running mean/var buffers, torch's names."""

    _ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None):
        super().__init__()
        _positive(type(self).__name__, num_features=num_features)
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dt = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dt))
            self.bias = Parameter(np.zeros(num_features, dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dt)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dt)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def forward(self, input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be an aisys Tensor, got {type(input).__name__}")
        if input.ndim not in self._ndims or input.shape[1] != self.num_features:
            raise ShapeError("batch_norm", f"{self!r} expects input of {' or '.join(f'{d}-D' for d in self._ndims)} "
                             f"with {self.num_features} channels at dim 1, got {tuple(input.shape)}",
                             shapes=(input.shape,), rule=self._rule)
        use_batch = self.training or not self.track_running_stats
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data[...] += 1           # a counter: tracers need not see it
            bump(self.num_batches_tracked._data, "BatchNorm counting batches")
            if momentum is None:                   # cumulative moving average, as torch
                momentum = 1.0 / float(self.num_batches_tracked._data)
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                            training=use_batch, momentum=momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs."""
    _ndims = (2, 3)
    _rule = "BatchNorm1d takes (N, C) or (N, C, L); use BatchNorm2d for images"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs: one mean/variance per channel over N·H·W values."""
    _ndims = (4,)
    _rule = "BatchNorm2d takes (N, C, H, W); use BatchNorm1d for (N, C) features"


class LayerNorm(Module):
    """Normalize each sample over its last dims, then scale by ``weight`` and shift by ``bias``."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=None):
        super().__init__()
        shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(
            int(s) for s in normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, float(eps), elementwise_affine
        dt = _dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dt))
            if bias:
                self.bias = Parameter(np.zeros(shape, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim`` (init N(0, 1), as torch)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=None):
        super().__init__()
        _positive("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.weight = _empty((num_embeddings, embedding_dim), dtype)
        init.normal_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return F.embedding(input, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """Inverted dropout while training; the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p={p} must be a probability in [0, 1]")
        self.p = float(p)

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# ---- activations ------------------------------------------------------------------------------------
class ReLU(Module):
    def forward(self, input):
        return F.relu(input)


class GELU(Module):
    """GELU, x·Φ(x): exact (erf) by default, ``approximate='tanh'`` for the tanh form, as torch.nn.GELU."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        from ..ops.elementwise import GELU_FORMS
        if approximate not in GELU_FORMS:
            raise ValueError(f"GELU: approximate={approximate!r} is not one of {', '.join(map(repr, GELU_FORMS))}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}" if self.approximate != "none" else ""


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class SiLU(Module):
    def forward(self, input):
        return F.silu(input)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)


class Softmax(Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Flatten(Module):
    """Flatten dims start_dim..end_dim (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# ---- containers -------------------------------------------------------------------------------------
class Sequential(Module):
    """Modules applied in order; built from arguments or an OrderedDict of named modules."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(str(name), m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module "
                                    f"(wrap functions in a Module, e.g. nn.ReLU() instead of F.relu)")
                self.add_module(str(i), m)

    def forward(self, input):
        for m in self._modules.values():
            input = m(input)
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"Sequential index {idx} is out of range for {n} modules")
        return list(self._modules.values())[idx % n]

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them)."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"ModuleList index {idx} is out of range for {n} modules")
        return self._modules[str(idx % n)]


class ModuleDict(Module):
    """A dict of modules whose parameters are registered."""

    def __init__(self, modules=None):
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
