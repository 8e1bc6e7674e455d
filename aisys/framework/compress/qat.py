"""Quantization-aware training (量化感知训练, QAT): train with the rounding in the forward pass.

``prepare_qat(model)`` returns a copy of ``model`` whose Linear/Conv2d layers fake-quantize their weights and
their input in every forward (``fake_quant``: the values int8/int4 codes can represent, as floats), so the
loss sees the quantization error and the optimizer learns weights that survive it. round() has derivative
zero almost everywhere; the gradient flows through it by the straight-through estimator (STE, Bengio et al.
2013), zero where a value was clipped (clipped STE). Two ways to set the weights' scale:

  method="ste"   from the weights' current per-channel range (max|w| / qmax), every step
  method="lsq"   learned by gradient descent (Esser et al., "Learned Step Size Quantization", ICLR 2020):
                 ∂x̂/∂s = round(x/s) − x/s inside the range, qmin/qmax outside, scaled by 1/√(N·qmax)

Activations are observed (moving-average min/max, PyTorch's default). ``convert(qat_model, batches)`` turns the
trained model into a :class:`~aisys.framework.compress.ptq.QuantizedModel` with the scales it trained with,
ready for integer-only inference.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from ..nn import functional as F
from ..nn.layers import Conv2d, Linear
from ..nn.module import Module, Parameter
from ..ops.quant import fake_quant
from ..tensor import Tensor, no_grad
from .calibration import MinMaxObserver, MovingAverageMinMaxObserver
from .ptq import (QuantizedModel, _set_submodule, build_quantized, calibration_inputs, make_observer,
                  matrix_layer_order)
from .quant import QParams, qrange, qtype

__all__ = ["FakeQuantize", "QATLinear", "QATConv2d", "prepare_qat", "convert"]


class FakeQuantize(Module):
    """Fake quantization of one tensor: an observer sets its scale (``learn_scale=False``) or the scale is a
    Parameter learned by LSQ. Weights: symmetric, per output channel (``axis=0``); activations: affine."""

    def __init__(self, dtype: str = "int8", symmetric: bool = False, axis: int | None = None,
                 learn_scale: bool = False, ste: str = "clipped", averaging_constant: float = 0.01):
        super().__init__()
        self.qtype = qtype(dtype)
        if self.qtype.is_float:
            raise ValueError(f"FakeQuantize: dtype={dtype!r} is a float format; QAT here trains integer codes "
                             f"('int8' or 'int4')")
        self.dtype, self.symmetric, self.axis, self.ste = self.qtype.name, symmetric, axis, ste
        self.learn_scale = learn_scale
        self.qmin, self.qmax = qrange(self.dtype)
        if symmetric:
            self.observer = MinMaxObserver(self.dtype, True, axis)
        else:
            self.observer = MovingAverageMinMaxObserver(self.dtype, False, axis, averaging_constant)
        self.register_buffer("zero_point", None)
        if learn_scale:
            self.register_parameter("scale", None)
        else:
            self.register_buffer("scale", None)

    def _init_lsq(self, x: np.ndarray) -> None:
        """LSQ's initial step: 2·mean|x| / √qmax (per channel along ``axis``)."""
        qp = self.qtype.symmetric_max
        if self.axis is None:
            s = np.array([2 * np.abs(x).mean() / math.sqrt(qp)])      # shape (1,): a 1-element parameter
        else:
            dims = tuple(d for d in range(x.ndim) if d != self.axis % x.ndim)
            s = 2 * np.abs(x).mean(axis=dims) / math.sqrt(qp)
        s = np.where(s > 0, s, 1.0).astype(x.dtype)
        self.scale = Parameter(s)
        self.zero_point = Tensor(np.zeros(np.shape(s), np.int32))

    def forward(self, x: Tensor) -> Tensor:
        if self.learn_scale:
            if self.scale is None:
                self._init_lsq(x._data)
            per = x._data.size // max(1, self.scale._data.size)
            grad_scale = 1.0 / math.sqrt(per * self.qtype.symmetric_max)
        else:
            if self.training or self.scale is None:
                if self.symmetric:
                    self.observer.reset()            # a weight's scale follows its current range, step by step
                self.observer.observe(x._data)
                qp = self.observer.qparams()
                self.scale = Tensor(np.asarray(qp.scale, dtype=x._data.dtype))
                self.zero_point = Tensor(np.asarray(qp.zero_point, dtype=np.int32))
            grad_scale = 1.0
        return fake_quant(x, self.scale, self.zero_point, qmin=self.qmin, qmax=self.qmax, axis=self.axis,
                          ste=self.ste, grad_scale=grad_scale)

    def qparams(self) -> QParams:
        if self.scale is None:
            raise ValueError("FakeQuantize: no scale yet; run a forward pass (training) first")
        if self.axis is None:
            return QParams(float(self.scale._data.reshape(-1)[0]), int(self.zero_point._data.reshape(-1)[0]),
                           self.dtype, None, self.symmetric)
        return QParams(self.scale._data.astype(np.float64), self.zero_point._data, self.dtype, self.axis,
                       self.symmetric)

    def extra_repr(self) -> str:
        how = "learned scale (LSQ)" if self.learn_scale else f"{type(self.observer).__name__}"
        return f"{self.dtype}, {'symmetric' if self.symmetric else 'affine'}, axis={self.axis}, {how}"


class _QATMatrix(Module):
    def __init__(self, layer: Module, weight_dtype: str, activation_dtype: str, method: str, per_channel: bool):
        super().__init__()
        self.weight = layer.weight
        if layer.bias is not None:
            self.bias = layer.bias
        else:
            self.register_parameter("bias", None)
        self.weight_fake_quant = FakeQuantize(weight_dtype, symmetric=True, axis=0 if per_channel else None,
                                              learn_scale=method == "lsq")
        if method == "lsq":                          # a Parameter now, so the optimizer made next sees it
            self.weight_fake_quant._init_lsq(self.weight._data)
        self.input_fake_quant = FakeQuantize(activation_dtype, symmetric=False)

    def float_layer(self) -> Module:
        raise NotImplementedError


class QATLinear(_QATMatrix):
    """nn.Linear that trains through fake-quantized weights and inputs."""

    def __init__(self, layer: Linear, weight_dtype="int8", activation_dtype="int8", method="ste", per_channel=True):
        super().__init__(layer, weight_dtype, activation_dtype, method, per_channel)
        self.in_features, self.out_features = layer.in_features, layer.out_features

    def forward(self, x):
        return F.linear(self.input_fake_quant(x), self.weight_fake_quant(self.weight), self.bias)

    def float_layer(self) -> Linear:
        out = Linear(self.in_features, self.out_features, bias=self.bias is not None)
        out.weight, out.bias = Parameter(self.weight._data.copy()), (
            Parameter(self.bias._data.copy()) if self.bias is not None else None)
        return out


class QATConv2d(_QATMatrix):
    """nn.Conv2d that trains through fake-quantized weights and inputs."""

    def __init__(self, layer: Conv2d, weight_dtype="int8", activation_dtype="int8", method="ste", per_channel=True):
        super().__init__(layer, weight_dtype, activation_dtype, method, per_channel)
        self.conv_args = dict(in_channels=layer.in_channels, out_channels=layer.out_channels,
                              kernel_size=layer.kernel_size, stride=layer.stride, padding=layer.padding,
                              dilation=layer.dilation, groups=layer.groups)

    def forward(self, x):
        a = self.conv_args
        return F.conv2d(self.input_fake_quant(x), self.weight_fake_quant(self.weight), self.bias, a["stride"],
                        a["padding"], a["dilation"], a["groups"])

    def float_layer(self) -> Conv2d:
        out = Conv2d(**self.conv_args, bias=self.bias is not None)
        out.weight = Parameter(self.weight._data.copy())
        if self.bias is not None:
            out.bias = Parameter(self.bias._data.copy())
        return out


def prepare_qat(model: Module, weight_dtype: str = "int8", activation_dtype: str = "int8", method: str = "ste",
                per_channel: bool = True) -> Module:
    """A copy of ``model`` in which every Linear/Conv2d trains through fake quantization (``model`` is not
    changed). ``weight_dtype``: 'int8' or 'int4'; ``method``: 'ste' (observed weight scale) or 'lsq' (learned)."""
    if method not in ("ste", "lsq"):
        raise ValueError(f"prepare_qat: method={method!r} must be 'ste' or 'lsq'")
    for name, dt in (("weight_dtype", weight_dtype), ("activation_dtype", activation_dtype)):
        if qtype(dt).name not in ("int8", "int4"):
            raise ValueError(f"prepare_qat: {name}={dt!r}: QAT trains int8 or int4 codes")
    clone = copy.deepcopy(model)
    targets = [(n, m) for n, m in clone.named_modules() if isinstance(m, (Linear, Conv2d))]
    if not targets:
        raise ValueError("prepare_qat: the model has no nn.Linear or nn.Conv2d layer to train quantized")
    for name, layer in targets:
        cls = QATLinear if isinstance(layer, Linear) else QATConv2d
        _set_submodule(clone, name, cls(layer, weight_dtype, activation_dtype, method, per_channel))
    clone.train(model.training)
    return clone


def convert(qat_model: Module, calibration_batches, output_activations: str = "minmax") -> QuantizedModel:
    """The trained QAT model as a QuantizedModel: weights quantized with the scales they trained with, each
    layer's input with its observed parameters; the model's output range is calibrated on
    ``calibration_batches`` with ``output_activations``."""
    qat_layers = {n: m for n, m in qat_model.named_modules() if isinstance(m, _QATMatrix)}
    if not qat_layers:
        raise ValueError("convert: the model has no QAT layers; make one with prepare_qat(model)")
    batches = calibration_inputs(calibration_batches, "convert")
    plain = copy.deepcopy(qat_model)
    for name, layer in [(n, m) for n, m in plain.named_modules() if isinstance(m, _QATMatrix)]:
        _set_submodule(plain, name, layer.float_layer())
    plain.eval()
    order = matrix_layer_order(plain, batches[0])
    in_qps, w_qps = [], []
    for name, layer in order:
        q = qat_layers[name]
        in_qps.append(q.input_fake_quant.qparams())
        w_qps.append(q.weight_fake_quant.qparams())
    out_ob = make_observer(output_activations, in_qps[0].dtype)
    with no_grad():
        for x in batches:
            out_ob.observe(plain(x)._data)
    first = next(iter(qat_layers.values()))
    scheme = {"weights": "per_channel" if first.weight_fake_quant.axis is not None else "per_tensor",
              "activations": "QAT (moving-average min/max)", "input_activations": "QAT",
              "weight_dtype": first.weight_fake_quant.dtype, "activation_dtype": "int8",
              "calibration_batches": len(batches)}
    return build_quantized(plain, order, in_qps, out_ob.qparams(), w_qps, scheme)
