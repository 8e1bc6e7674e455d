"""Post-training quantization (训练后量化, PTQ) of a model: calibrate, then run it as int8.

``quantize(model, calibration_batches)`` returns a :class:`QuantizedModel`, a copy of ``model`` in which every
``nn.Linear`` / ``nn.Conv2d`` becomes a quantized layer. Its forward is the *simulation* of integer-only
inference with quantize/dequantize ops (the "QDQ" form of ONNX and TensorRT), computed in float64:

    q_x  = quantize(x, s_x, z_x)                         int8 codes of the layer input
    x̂    = dequantize(q_x);  ŵ = dequantize(q_w)          exact in float64 (8-bit codes × a scale)
    y    = linear(x̂, ŵ, b̂)                               b̂ = s_x·s_w·q_b, the int32 bias
    acc  = quantize(y, s_x·s_w, 0, int32)                 the int32 accumulator (y is a multiple of s_x·s_w
                                                           up to float64 rounding, far below half a step)
    q_y  = requantize(acc, M0, n, z_y)                    fixed-point multiplier M0·2⁻³¹·2⁻ⁿ ≈ s_x·s_w/s_y
    ŷ    = dequantize(q_y, s_y, z_y)

Tracing it (``aisys.trace(qmodel, x)``) gives the graph with those ops; the compiler's ``fold_quantization``
pass folds each dequantize → matmul/conv → quantize(int32) into ``matmul_integer``/``conv2d_integer`` with an
int32 bias, ReLU into the requantization clamp, max pooling and reshapes onto the int8 codes — integer-only
inference that gives these very codes, bit for bit (Jacob et al., CVPR 2018; gemmlowp).

Scales: weights symmetric (zero point 0), per output channel by default; activations affine int8 with a
calibrated range (observers from :mod:`.calibrate`) at the input of every matrix layer and at the model's
output. A layer's output is requantized straight to the *next* layer's input parameters, so a ReLU or pooling
in between runs on codes. Models must be chains of layers (MLP, LeNet, ``nn.Sequential`` …): an op with no
quantized form, or a branch, is refused with an error naming the layer, and the original is never changed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .. import dtypes as _dt
from ..nn import functional as F
from ..nn.layers import Conv2d, Linear
from ..nn.module import Module
from ..ops.quant import dequantize as _dq, quantize as _q
from ..registry import OPS
from ..tensor import Tensor, _Mode, apply, no_grad
from .calibration import MinMaxObserver, OBSERVERS, make_observer
from .quant import QParams, qrange, qtype, quantize_multiplier, quantize_tensor

__all__ = ["quantize", "QuantizedModel", "QuantLinear", "QuantConv2d", "LayerQuantization", "matrix_layer_order",
           "check_quantizable", "calibration_inputs"]

MATRIX_LAYERS = (Linear, Conv2d)
WEIGHT_DTYPES = ("int8", "int4")
_INT32 = (-(1 << 31), (1 << 31) - 1)


# ---------------------------------------------------------------------------------------------------
# quantized layers: the float64 simulation of integer-only inference
# ---------------------------------------------------------------------------------------------------

@dataclass
class LayerQuantization:
    """What quantizing one matrix layer chose: input, weight and output parameters, and the requantization."""
    name: str
    kind: str
    input: QParams
    weight: QParams
    output: QParams
    multiplier: np.ndarray
    shift: np.ndarray

    def summary(self) -> str:
        m = np.atleast_1d(self.multiplier).astype(np.float64) * np.exp2(-31.0 - np.atleast_1d(self.shift))
        return (f"{self.name:<10} {self.kind:<6} in s={float(np.asarray(self.input.scale)):.4g} "
                f"z={int(np.asarray(self.input.zero_point))} | w {self.weight.dtype} "
                f"{'per-channel' if self.weight.axis is not None else 'per-tensor'} | out "
                f"s={float(np.asarray(self.output.scale)):.4g} z={int(np.asarray(self.output.zero_point))} | "
                f"M in [{m.min():.3g}, {m.max():.3g}], shift {int(np.min(self.shift))}..{int(np.max(self.shift))}")


def _t(a, dtype) -> Tensor:
    return Tensor._wrap(np.ascontiguousarray(np.asarray(a, dtype=dtype)))


class _QuantMatrix(Module):
    """Shared by QuantLinear and QuantConv2d: the quantized weights, int32 bias and requantization."""

    axis_out = 1                       # the channel dim of the layer's output (N, C) / (N, C, H, W)

    def __init__(self, layer: Module, q: LayerQuantization):
        super().__init__()
        self.quantization = q
        w = layer.weight._data
        wq = q.weight
        per_channel = wq.axis is not None
        s_w = np.asarray(wq.scale, np.float64)
        s_in, z_in = float(np.asarray(q.input.scale)), int(np.asarray(q.input.zero_point))
        s_acc = s_in * s_w                                   # exact in float64 (two float scales)
        self.register_buffer("weight_q", _t(quantize_tensor(w, s_w, 0, wq.dtype, 0 if per_channel else None), np.int8))
        self.register_buffer("weight_scale", _t(s_w, np.float64))
        self.register_buffer("weight_zero_point", _t(np.zeros_like(s_w), np.int32))
        self.register_buffer("acc_scale", _t(s_acc, np.float64))
        self.register_buffer("acc_zero_point", _t(np.zeros_like(s_acc), np.int32))
        if layer.bias is not None:
            b = layer.bias._data.astype(np.float64) / np.broadcast_to(s_acc, layer.bias.shape)
            if np.abs(b).max(initial=0) >= 2 ** 31:
                raise ValueError(f"quantize: the bias of {q.name!r} does not fit int32 at scale s_in·s_w "
                                 f"({np.abs(b).max():.3g} steps); the input or weight scale is far too small")
            self.register_buffer("bias_q", _t(np.round(b), np.int32))
        else:
            self.register_buffer("bias_q", None)
        self.register_buffer("input_scale", _t(s_in, np.float64))
        self.register_buffer("input_zero_point", _t(z_in, np.int32))
        self.register_buffer("multiplier", _t(q.multiplier, np.int32))
        self.register_buffer("shift", _t(q.shift, np.int32))
        self.register_buffer("output_scale", _t(np.asarray(q.output.scale), np.float64))
        self.register_buffer("output_zero_point", _t(np.asarray(q.output.zero_point), np.int32))
        self.qmin, self.qmax = qrange(q.output.dtype)
        self.in_qmin, self.in_qmax = qrange(q.input.dtype)
        self.per_channel = per_channel

    def _product(self, x_hat: Tensor, w_hat: Tensor, b_hat: Tensor | None) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        pc_out = self.axis_out if self.per_channel else None
        pc_w = 0 if self.per_channel else None
        qx = _q(x, self.input_scale, self.input_zero_point, qmin=self.in_qmin, qmax=self.in_qmax)
        x_hat = _dq(qx, self.input_scale, self.input_zero_point, dtype=_dt.float64)
        w_hat = _dq(self.weight_q, self.weight_scale, self.weight_zero_point, axis=pc_w, dtype=_dt.float64)
        b_hat = None
        if self.bias_q is not None:
            b_hat = _dq(self.bias_q, self.acc_scale, self.acc_zero_point, axis=pc_w, dtype=_dt.float64)
        y = self._product(x_hat, w_hat, b_hat)
        acc = _q(y, self.acc_scale, self.acc_zero_point, qmin=_INT32[0], qmax=_INT32[1], axis=pc_out,
                 dtype=_dt.int32)
        qy = apply("requantize", acc, self.multiplier, self.shift, self.output_zero_point, qmin=self.qmin,
                   qmax=self.qmax, axis=pc_out, dtype=_dt.int8)
        return _dq(qy, self.output_scale, self.output_zero_point, dtype=_dt.float64)

    def extra_repr(self) -> str:
        q = self.quantization
        return (f"{q.weight.dtype} weights {'per-channel' if self.per_channel else 'per-tensor'}, "
                f"{q.input.dtype} activations")


class QuantLinear(_QuantMatrix):
    """nn.Linear, quantized: see the module docstring for what its forward computes."""

    def _product(self, x_hat, w_hat, b_hat):
        return F.linear(x_hat, w_hat, b_hat)


class QuantConv2d(_QuantMatrix):
    """nn.Conv2d, quantized (its stride, padding, dilation and groups are kept)."""

    def __init__(self, layer: Conv2d, q: LayerQuantization):
        super().__init__(layer, q)
        self.stride, self.padding, self.dilation, self.groups = layer.stride, layer.padding, layer.dilation, layer.groups

    def _product(self, x_hat, w_hat, b_hat):
        return F.conv2d(x_hat, w_hat, b_hat, self.stride, self.padding, self.dilation, self.groups)


class QuantizedModel(Module):
    """A model whose matrix layers run quantized (the float64 simulation of integer-only inference).

    ``layers``: one :class:`LayerQuantization` per matrix layer, in execution order. ``aisys.trace(qmodel, x)``
    gives the graph with quantize/dequantize ops; ``aisys.compile(qmodel, x, passes=["fold_quantization",
    "dce"], backend="reference")`` runs it integer-only."""

    def __init__(self, model: Module, layers: list, scheme: dict):
        super().__init__()
        self.model = model
        self.layers = list(layers)
        self.scheme = dict(scheme)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def summary(self) -> str:
        s = self.scheme
        lines = [f"QuantizedModel: {len(self.layers)} matrix layers, {s['weight_dtype']} weights "
                 f"({s['weights']}), {s['activation_dtype']} activations calibrated by {s['activations']}"]
        lines += ["  " + q.summary() for q in self.layers]
        return "\n".join(lines)

    def extra_repr(self) -> str:
        return f"{len(self.layers)} quantized layers"


# ---------------------------------------------------------------------------------------------------
# finding the matrix layers and checking that every op has a quantized form
# ---------------------------------------------------------------------------------------------------

def calibration_inputs(calibration_batches, what: str = "quantize") -> list:
    """The input tensors of ``calibration_batches``: tensors, arrays, (x, y) pairs or a DataLoader."""
    if calibration_batches is None:
        raise ValueError(f"{what}: calibration_batches is None; pass a few batches of real inputs "
                         f"(a DataLoader, a list of tensors or of (x, y) pairs)")
    if isinstance(calibration_batches, (Tensor, np.ndarray)):
        calibration_batches = [calibration_batches]
    out = []
    for b in calibration_batches:
        x = b[0] if isinstance(b, (tuple, list)) else b
        if isinstance(x, np.ndarray):
            x = Tensor(x.astype(np.float32) if x.dtype == np.float64 else x)
        if not isinstance(x, Tensor):
            raise TypeError(f"{what}: a calibration batch is a {type(x).__name__}; expected a Tensor, an array "
                            f"or an (x, y) pair")
        if x.numel() == 0:
            continue
        out.append(x)
    if not out:
        raise ValueError(f"{what}: the calibration set is empty; calibration needs at least one batch of real "
                         f"inputs (a few hundred samples is typical)")
    return out


class _Recorder:
    """Runs a model once and writes down, for every op, which module ran it and which tensors it read; each
    Linear/Conv2d is recorded as one step. Leaves the model exactly as it found it."""

    def __init__(self, model: Module):
        self.model = model
        self.events: list = []           # ("op", path, module type, op name, input ids, output id) | ("matrix", ...)
        self.keep: list = []             # every tensor seen, so ids stay unique
        self._stack: list = []

    def __call__(self, op, inputs, attrs, out) -> None:      # the observer protocol of framework.tensor.apply
        if self._stack and self._stack[-1][2]:
            return                                          # inside a Linear/Conv2d: recorded as one step
        path, kind = (self._stack[-1][0], self._stack[-1][1]) if self._stack else ("", type(self.model).__name__)
        self.keep.extend(inputs)
        self.keep.append(out)
        self.events.append(("op", path, kind, op.name, [id(t) for t in inputs], id(out)))

    def run(self, x: Tensor):
        wrapped = []
        try:
            for path, m in self.model.named_modules():
                if m is self.model:
                    continue
                wrapped.append(m)
                m.forward = self._wrap(path, m, type(m).forward.__get__(m))
            _Mode.observers.append(self)
            try:
                with no_grad():
                    out = self.model(x)
            finally:
                _Mode.observers.remove(self)
        finally:
            for m in wrapped:
                m.__dict__.pop("forward", None)
        self.keep.extend([x, out])
        return out

    def _wrap(self, path, module, forward):
        matrix = isinstance(module, MATRIX_LAYERS)

        def run(*args, **kwargs):
            self._stack.append((path, type(module).__name__, matrix))
            try:
                out = forward(*args, **kwargs)
            finally:
                self._stack.pop()
            if matrix and not (self._stack and self._stack[-1][2]):
                self.keep.extend([args[0], out])
                self.events.append(("matrix", path, type(module).__name__, type(module).__name__.lower(),
                                    [id(args[0])], id(out)))
            return out
        return run


def _where(path: str, kind: str) -> str:
    return f"layer {path!r} ({kind})" if path else f"the model's own forward ({kind})"


def matrix_layer_order(model: Module, example: Tensor) -> list:
    """[(dotted name, module)] of the Linear/Conv2d layers in the order one forward pass runs them, after
    checking that the model is a chain of them joined by ops with a quantized form. Raises ValueError naming
    the layer and the op otherwise."""
    was_training = model.training
    model.eval()
    try:
        rec = _Recorder(model)
        out = rec.run(example)
    finally:
        model.train(was_training)
    mods = dict(model.named_modules())
    frontier = id(example)
    activations = {id(example)}
    order, seen = [], set()
    for kind_, path, mtype, opname, ins, out_id in rec.events:
        acts = [i for i in ins if i in activations]
        if kind_ == "matrix":
            if path in seen:
                raise ValueError(f"quantize: {_where(path, mtype)} runs twice in one forward pass; a shared layer "
                                 f"needs one set of quantization parameters per use, which is not supported")
            if ins[0] != frontier:
                raise ValueError(f"quantize: {_where(path, mtype)} reads a tensor other than the previous layer's "
                                 f"output (a branch or skip connection); PTQ here handles chains of layers")
            seen.add(path)
            order.append((path, mods[path]))
        else:
            form = OPS[opname].quantized
            if form is None or form.kind == "integer":
                why = ("has no quantized form" if form is None else
                       "is a matrix op outside an nn.Linear/nn.Conv2d (its weights are not a layer's parameters)")
                raise ValueError(f"quantize: {_where(path, mtype)} runs the op {opname!r}, which {why}; integer-only "
                                 f"inference supports Linear, Conv2d, ReLU, max pooling and reshapes between them "
                                 f"(keep e.g. softmax outside the model, or replace {mtype} with ReLU)")
            if len(acts) != 1 or acts[0] != frontier:
                raise ValueError(f"quantize: {_where(path, mtype)} runs {opname!r} on "
                                 f"{'several activations' if len(acts) > 1 else 'a tensor that is not the previous result'}"
                                 f" (a branch or skip connection); PTQ here handles chains of layers")
        activations.add(out_id)
        frontier = out_id
    if not order:
        raise ValueError("quantize: the model has no nn.Linear or nn.Conv2d layer to quantize")
    if id(out) != frontier:
        raise ValueError("quantize: the model's output is not the last layer's result (it returns an earlier tensor "
                         "or a tuple); PTQ here handles chains of layers with one output")
    return order


def check_quantizable(model: Module, example: Tensor) -> list:
    """The matrix layers' names in execution order, or a ValueError naming what cannot be quantized."""
    return [name for name, _ in matrix_layer_order(model, example)]


# ---------------------------------------------------------------------------------------------------
# quantize(model, ...)
# ---------------------------------------------------------------------------------------------------

def _check_scheme(weights, activations, weight_dtype, activation_dtype, observer_options):
    if weights not in ("per_channel", "per_tensor"):
        raise ValueError(f"quantize: weights={weights!r} must be 'per_channel' or 'per_tensor'")
    if activations not in OBSERVERS:
        raise ValueError(f"quantize: activations={activations!r} must be one of {', '.join(OBSERVERS)}")
    t = qtype(weight_dtype)
    if t.name not in WEIGHT_DTYPES:
        raise ValueError(f"quantize: weight_dtype={t.name!r} has no integer-only form; use 'int8' or 'int4' "
                         f"(fp8 and uint8 tensors: compress.quantize_tensor)")
    if qtype(activation_dtype).name != "int8":
        raise ValueError(f"quantize: activation_dtype={activation_dtype!r}: integer-only inference keeps "
                         f"activations as int8 codes (affine: the zero point shifts the range as uint8 would)")
    if observer_options is not None and not isinstance(observer_options, dict):
        raise TypeError(f"quantize: observer_options must be a dict of observer keyword arguments, got "
                        f"{type(observer_options).__name__}")


def _weight_qparams(layer: Module, weights: str, dtype: str) -> QParams:
    axis = 0 if weights == "per_channel" else None
    return MinMaxObserver(dtype, symmetric=True, axis=axis).observe(layer.weight._data).qparams()


def _layer_quantization(name, layer, in_qp, w_qp, out_qp) -> LayerQuantization:
    m = float(np.asarray(in_qp.scale)) * np.asarray(w_qp.scale, np.float64) / float(np.asarray(out_qp.scale))
    m0, n = quantize_multiplier(m)
    return LayerQuantization(name, "linear" if isinstance(layer, Linear) else "conv2d", in_qp, w_qp, out_qp,
                             np.asarray(m0, np.int32), np.asarray(n, np.int32))


def _set_submodule(root: Module, path: str, new: Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = dict(root.named_modules())[parent_path] if parent_path else root
    parent._modules[leaf] = new                  # in place: keeps the order a Sequential runs its children in


def build_quantized(model: Module, order: list, input_qparams: list, output_qparams: QParams,
                    weight_qparams: list, scheme: dict) -> QuantizedModel:
    """A copy of ``model`` with each matrix layer of ``order`` replaced by its quantized form. Layer k's output
    is requantized to layer k+1's input parameters (the model's output parameters for the last one)."""
    layers = []
    for k, ((name, layer), in_qp, w_qp) in enumerate(zip(order, input_qparams, weight_qparams)):
        out_qp = input_qparams[k + 1] if k + 1 < len(order) else output_qparams
        layers.append(_layer_quantization(name, layer, in_qp, w_qp, out_qp))
    clone = copy.deepcopy(model)
    clone.eval()
    originals = dict(clone.named_modules())
    for (name, _), q in zip(order, layers):
        layer = originals[name]
        _set_submodule(clone, name, QuantLinear(layer, q) if isinstance(layer, Linear) else QuantConv2d(layer, q))
    qm = QuantizedModel(clone, layers, scheme)
    qm.eval()
    return qm


def _observe_input(observer):
    def hook(module, args, out):
        observer.observe(args[0]._data)          # returns None: the layer's output is left as it is
    return hook


def quantize(model: Module, calibration_batches, weights: str = "per_channel", activations: str = "kl",
             weight_dtype: str = "int8", activation_dtype: str = "int8", observer_options: dict | None = None,
             max_batches: int | None = None, input_activations: str | None = "minmax") -> QuantizedModel:
    """Post-training quantization: calibrate ``model`` on ``calibration_batches`` and return its
    :class:`QuantizedModel` (``model`` itself is not changed).

    ``weights``: 'per_channel' (one symmetric scale per output channel) or 'per_tensor'. ``activations``: the
    calibrator of every activation range ('minmax', 'moving_average', 'percentile', 'mse', 'kl').
    ``input_activations``: the calibrator of the model's *input* ('minmax' by default, None = ``activations``):
    clipping trades rare extremes for resolution, which suits hidden activations with long tails but not raw
    data, whose extremes (the brightest pixels of a digit) carry information — KL calibration of the digits
    input costs the MLP 1.7 points, min-max none.
    ``weight_dtype``: 'int8' or 'int4' (codes in [−8, 7], stored in int8). ``observer_options``: keyword
    arguments for the activation observers (e.g. ``{"percentile": 99.9}``).
    """
    _check_scheme(weights, activations, weight_dtype, activation_dtype, observer_options)
    if input_activations is not None and input_activations not in OBSERVERS:
        raise ValueError(f"quantize: input_activations={input_activations!r} must be None or one of "
                         f"{', '.join(OBSERVERS)}")
    batches = calibration_inputs(calibration_batches)
    if max_batches is not None:
        batches = batches[:max_batches]
    order = matrix_layer_order(model, batches[0])
    opts = dict(observer_options or {})
    first = input_activations or activations
    in_obs = [make_observer(first if k == 0 else activations, activation_dtype,
                            **(opts if (first if k == 0 else activations) == activations else {}))
              for k in range(len(order))]
    out_obs = make_observer(activations, activation_dtype, **opts)
    handles = []
    was_training = model.training
    try:
        for (_, layer), ob in zip(order, in_obs):
            handles.append(layer.register_forward_hook(_observe_input(ob)))
        model.eval()
        with no_grad():
            for x in batches:
                out_obs.observe(model(x)._data)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    w_qps = [_weight_qparams(layer, weights, weight_dtype) for _, layer in order]
    scheme = {"weights": weights, "activations": activations, "input_activations": first,
              "weight_dtype": qtype(weight_dtype).name,
              "activation_dtype": "int8", "calibration_batches": len(batches)}
    return build_quantized(model, order, [ob.qparams() for ob in in_obs], out_obs.qparams(), w_qps, scheme)
