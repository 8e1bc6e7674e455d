"""``aisys.nn.functional`` (import as ``F``): layers as plain functions, with PyTorch's signatures.

Every function is a few registry ops (see ``aisys.ops_registry``), so autodiff, tracing and the
compiler see exactly what runs. Where a torch option has no counterpart here the function says so
and raises instead of silently doing something else.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..errors import ShapeError
from ..ops import new_dropout_seed
from ..ops.nn import _conv_attrs, _pool_attrs
from ..registry import OPS as _OPS
from ..tensor import Tensor, _Mode, apply, as_tensor, no_grad

__all__ = ["linear", "conv2d", "max_pool2d", "avg_pool2d", "relu", "gelu", "sigmoid", "tanh", "silu", "leaky_relu",
           "softplus", "softmax", "log_softmax", "layer_norm", "batch_norm", "embedding", "dropout", "cross_entropy",
           "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "adaptive_avg_pool2d", "one_hot", "pad",
           "scaled_dot_product_attention", "causal_mask"]

_MATMUL, _ADD, _PERMUTE, _RESHAPE, _LINEAR = (_OPS["matmul"], _OPS["add"], _OPS["permute"], _OPS["reshape"],
                                              _OPS["linear"])
_REDUCTIONS = ("mean", "sum", "none")


def _tensor(op: str, name: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be an aisys Tensor, got {type(x).__name__}; wrap it with aisys.tensor(...)")
    return x


def _reduction(op: str, reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction={reduction!r} is not one of 'mean', 'sum', 'none'")
    return reduction


def _reduce(v: Tensor, reduction: str) -> Tensor:
    return v.mean() if reduction == "mean" else v.sum() if reduction == "sum" else v


# ---- linear and convolution ------------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x·Wᵀ + b with W of shape (out_features, in_features), as torch. Inputs with more than two
    dims are flattened to 2-D first, so the weight gradient is one matrix multiply."""
    _tensor("linear", "input", input)
    _tensor("linear", "weight", weight)
    xd, wd = input._data, weight._data
    if wd.ndim != 2:
        raise ShapeError("linear", f"weight must be 2-D (out_features, in_features), got {tuple(weight.shape)}")
    if xd.ndim == 0 or xd.shape[-1] != wd.shape[1]:
        raise ShapeError("linear", f"input has {input.shape[-1] if input.ndim else 0} features in its last dim "
                         f"(shape {tuple(input.shape)}) but the weight {tuple(weight.shape)} expects "
                         f"in_features={weight.shape[1]}", shapes=(input.shape, weight.shape),
                         rule="input.shape[-1] == weight.shape[1]; reshape/flatten the input or fix in_features")
    if bias is not None and bias._data.shape != (wd.shape[0],):
        raise ShapeError("linear", f"bias shape {tuple(bias.shape)} must be ({weight.shape[0]},)",
                         shapes=(bias.shape, weight.shape))
    dt = xd.dtype
    if not _Mode.observers and wd.dtype is dt and (bias is None or bias._data.dtype is dt):
        # eager: one `linear` op on the tape (one record, one backward step); a tracer instead records the
        # decomposition below, which the compiler fuses and the chip lowers. Both give the same bits.
        if xd.ndim == 2:
            return apply(_LINEAR, input, weight) if bias is None else apply(_LINEAR, input, weight, bias)
        lead = xd.shape[:-1]
        x = apply(_RESHAPE, input, shape=(math.prod(lead), xd.shape[-1]))
        out = apply(_LINEAR, x, weight) if bias is None else apply(_LINEAR, x, weight, bias)
        return apply(_RESHAPE, out, shape=lead + (wd.shape[0],))
    lead = tuple(input.shape[:-1])
    x = input
    if input.ndim != 2:
        x = apply(_RESHAPE, input, shape=(math.prod(lead), input.shape[-1]))
    out = apply(_MATMUL, x, apply(_PERMUTE, weight, dims=(1, 0)))
    if bias is not None:
        out = apply(_ADD, out, bias)
    if input.ndim != 2:
        out = apply(_RESHAPE, out, shape=lead + (weight.shape[0],))
    return out


def _conv_padding(padding, weight, dilation, stride):
    if not isinstance(padding, str):
        return padding
    if padding == "valid":
        return 0
    if padding == "same":
        st = (stride, stride) if isinstance(stride, int) else tuple(stride)
        dl = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
        if st != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride=1, got stride={stride!r}")
        total = [d * (k - 1) for d, k in zip(dl, weight.shape[2:])]
        if any(t % 2 for t in total):
            raise ValueError(f"conv2d: padding='same' with kernel {tuple(weight.shape[2:])} and dilation {dl} "
                             f"needs uneven padding, which aisys does not do; use an odd kernel size or F.pad first")
        return (total[0] // 2, total[1] // 2)
    raise ValueError(f"conv2d: padding={padding!r}: use an int, a pair, 'valid' or 'same'")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution over NCHW input with an (out, in/groups, kH, kW) weight (torch's layout)."""
    _tensor("conv2d", "input", input)
    _tensor("conv2d", "weight", weight)
    if weight.ndim != 4:
        raise ShapeError("conv2d", f"weight must be 4-D (out_channels, in_channels/groups, kH, kW), "
                         f"got {tuple(weight.shape)}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv2d: groups={groups!r} must be a positive int (groups=1 is a plain convolution)")
    attrs = _conv_attrs(stride, _conv_padding(padding, weight, dilation, stride), dilation, groups)
    if bias is None:
        return apply("conv2d", input, weight, **attrs)
    return apply("conv2d", input, weight, bias, **attrs)


def _no_ceil(op, ceil_mode):
    if ceil_mode:
        raise ValueError(f"{op}: ceil_mode=True is not supported (aisys pools use floor); pad the input with F.pad "
                         f"to cover the last partial window")


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Max over each window; ``stride`` defaults to ``kernel_size``. Ties: the first maximum gets the gradient."""
    _tensor("max_pool2d", "input", input)
    _no_ceil("max_pool2d", ceil_mode)
    if return_indices:
        raise ValueError("max_pool2d: return_indices=True is not supported; the backward recomputes the argmax")
    return apply("max_pool2d", input, **_pool_attrs("max_pool2d", kernel_size, stride, padding, dilation))


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over each window (padding counts as zeros, torch's default count_include_pad=True)."""
    _tensor("avg_pool2d", "input", input)
    _no_ceil("avg_pool2d", ceil_mode)
    if not count_include_pad:
        raise ValueError("avg_pool2d: count_include_pad=False is not supported; aisys divides by the full window")
    return apply("avg_pool2d", input, **_pool_attrs("avg_pool2d", kernel_size, stride, padding, 1))


# ---- activations ------------------------------------------------------------------------------------
_RELU = _OPS["relu"]


def relu(input: Tensor) -> Tensor:
    return apply(_RELU, _tensor("relu", "input", input))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU, x·Φ(x), as torch: exact (with erf) by default; ``approximate='tanh'`` for the tanh form."""
    from ..ops import gelu as _gelu
    return _gelu(_tensor("gelu", "input", input), approximate)


def sigmoid(input: Tensor) -> Tensor:
    return apply("sigmoid", _tensor("sigmoid", "input", input))


def tanh(input: Tensor) -> Tensor:
    return apply("tanh", _tensor("tanh", "input", input))


def silu(input: Tensor) -> Tensor:
    """x·σ(x) (a.k.a. swish)."""
    return input * sigmoid(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    from ..ops import where
    return where(input > 0, input, input * negative_slope)


def softplus(input: Tensor, beta: float = 1.0) -> Tensor:
    """log(1 + exp(βx))/β, computed stably as relu(x) + log(1 + exp(−|x|)) (no overflow for large x)."""
    x = input * beta if beta != 1.0 else input
    out = x.relu() + ((-x.abs()).exp() + 1.0).log()
    return out / beta if beta != 1.0 else out


def softmax(input: Tensor, dim: int) -> Tensor:
    if dim is None:
        raise TypeError("softmax: pass dim= (which axis sums to 1), e.g. dim=-1 for class scores")
    return apply("softmax", _tensor("softmax", "input", input), dim=int(dim))


def log_softmax(input: Tensor, dim: int) -> Tensor:
    if dim is None:
        raise TypeError("log_softmax: pass dim= (which axis is normalized), e.g. dim=-1")
    return apply("log_softmax", _tensor("log_softmax", "input", input), dim=int(dim))


# ---- normalization -----------------------------------------------------------------------------------
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dims, then the affine ``·weight + bias`` as
    separate ops (so the fusion pass sees an elementwise epilogue)."""
    _tensor("layer_norm", "input", input)
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    y = apply("layer_norm", input, normalized_shape=shape, eps=float(eps))
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float | None = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Per-channel (dim 1) normalization. Training: the batch's own mean and biased variance, computed with
    ops so gradients flow through them; running stats (if given) move toward the batch's mean and
    *unbiased* variance by ``momentum`` (torch's convention). Eval: the running stats.

    aisys extra: ``momentum=None`` is not a cumulative average here (that needs a batch counter, which the
    BatchNorm modules keep); the modules handle it and pass the effective factor.
    """
    _tensor("batch_norm", "input", input)
    if input.ndim < 2:
        raise ShapeError("batch_norm", f"expects (N, C, ...) input, got {tuple(input.shape)}", shapes=(input.shape,))
    C = input.shape[1]
    dt = input._data.dtype
    w = weight if weight is not None else Tensor._wrap(np.ones(C, dt))
    b = bias if bias is not None else Tensor._wrap(np.zeros(C, dt))
    if training:
        dims = (0,) + tuple(range(2, input.ndim))
        n = input.numel() // C
        if n <= 1:
            raise ValueError(f"batch_norm: training needs more than one value per channel to estimate a variance, "
                             f"got input {tuple(input.shape)}; use a batch of 2 or more, or call .eval()")
        mean = input.mean(dims)
        var = input.var(dims, correction=0)
        out = apply("batch_norm", input, mean, var, w, b, eps=float(eps))
        if running_mean is not None and running_var is not None:
            m = 0.1 if momentum is None else float(momentum)
            with no_grad():
                running_mean.assign_(running_mean * (1.0 - m) + mean.detach() * m)
                running_var.assign_(running_var * (1.0 - m) + var.detach() * (m * n / (n - 1)))
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var; "
                         "pass them or use training=True")
    return apply("batch_norm", input, running_mean, running_var, w, b, eps=float(eps))


# ---- embedding, dropout, one_hot, pad --------------------------------------------------------------
def embedding(input: Tensor, weight: Tensor) -> Tensor:
    """Rows of ``weight`` picked by integer ``input`` (any shape); the result has one more dim."""
    return apply("embedding", _tensor("embedding", "input", input), _tensor("embedding", "weight", weight))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1−p) (inverted dropout). The mask
    comes from a seed drawn from aisys's generator, so ``aisys.manual_seed`` makes it reproducible."""
    _tensor("dropout", "input", input)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p={p} must be a probability in [0, 1]")
    if inplace:
        raise ValueError("dropout: inplace=True is not supported (it would break the tape); drop the argument")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return apply("dropout", input, p=float(p), seed=new_dropout_seed())


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot vectors; num_classes=-1 uses max(tensor)+1 as torch does."""
    _tensor("one_hot", "tensor", tensor)
    if num_classes == -1:
        num_classes = int(tensor._data.max()) + 1 if tensor.numel() else 0
    return apply("one_hot", tensor, num_classes=int(num_classes))


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Constant padding; ``pad`` lists (last-dim low, last-dim high, second-last low, ...) as torch."""
    if mode != "constant":
        raise ValueError(f"pad: mode={mode!r} is not supported; aisys pads with a constant only")
    return apply("pad", _tensor("pad", "input", input), pad=tuple(int(p) for p in pad), value=float(value))


# ---- losses ------------------------------------------------------------------------------------------
def _no_legacy(op: str, weight=None, size_average=None, reduce=None) -> None:
    if weight is not None:
        raise ValueError(f"{op}: per-class weight= is not supported by aisys; weight the per-sample losses "
                         f"(reduction='none') yourself")
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average= and reduce= are deprecated in torch; use reduction='mean'/'sum'/'none'")


def _ignore(target: Tensor, ignore_index: int):
    """The ignore_index attr to record: only when a target uses it (PyTorch's default -100 then costs nothing
    in the graph). A trace keeps that choice: a later target of -100 raises rather than being misread."""
    if ignore_index is None or not (target._data == ignore_index).any():
        return {}
    return {"ignore_index": int(ignore_index)}


def cross_entropy(input: Tensor, target: Tensor, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits against class indices (or class probabilities of the same shape).

    Shapes as torch: (N, C) with (N,), (C,) with (), or (N, C, d1, ...) with (N, d1, ...). The common
    case is one fused registry op whose gradient is (softmax − one_hot)/N. Targets equal to
    ``ignore_index`` (default -100, as torch) add nothing and the mean is over the others. No ``weight``.
    """
    _tensor("cross_entropy", "input", input)
    _no_legacy("cross_entropy", weight, size_average, reduce)
    target = as_tensor(target)
    _reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing={label_smoothing} must lie in [0, 1]")
    if target.dtype.is_floating:
        if tuple(target.shape) != tuple(input.shape):
            raise TypeError(f"cross_entropy: a floating-point target must hold class probabilities with the input's "
                            f"shape {tuple(input.shape)}, got {tuple(target.shape)} ({target.dtype.name}); class "
                            f"indices must be an integer tensor: use target.long()")
        cdim = 1 if input.ndim > 1 else 0
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + label_smoothing / input.shape[cdim]
        return _reduce(-(target * log_softmax(input, cdim)).sum(cdim), reduction)
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    if input.ndim == 1:
        out = cross_entropy(input.unsqueeze(0), target.reshape(1), **kw)
        return out.reshape(()) if reduction == "none" else out
    if input.ndim > 2:
        C = input.shape[1]
        if tuple(target.shape) != (input.shape[0],) + tuple(input.shape[2:]):
            raise ShapeError("cross_entropy", f"target {tuple(target.shape)} must be the input {tuple(input.shape)} "
                             f"without its class dim 1", shapes=(input.shape, target.shape))
        perm = (0,) + tuple(range(2, input.ndim)) + (1,)
        flat = input.permute(*perm).reshape(-1, C)
        out = cross_entropy(flat, target.reshape(-1), **kw)
        return out.reshape(tuple(target.shape)) if reduction == "none" else out
    attrs = _ignore(target, ignore_index)
    loss = apply("cross_entropy", input, target, reduction=reduction, **attrs)
    if label_smoothing:
        per_row = -log_softmax(input, 1).mean(1)
        if attrs:                                         # ignored rows smooth nothing either
            keep = (target != ignore_index).to(input.dtype)
            per_row = per_row * keep
            smooth = per_row.sum() / keep.sum() if reduction == "mean" else _reduce(per_row, reduction)
        else:
            smooth = _reduce(per_row, reduction)
        loss = loss * (1.0 - label_smoothing) + smooth * label_smoothing
    return loss


def nll_loss(input: Tensor, target: Tensor, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) at integer targets (N,); targets equal to
    ``ignore_index`` are skipped (the mean is over the others), as torch."""
    _tensor("nll_loss", "input", input)
    _no_legacy("nll_loss", weight, size_average, reduce)
    _reduction("nll_loss", reduction)
    target = as_tensor(target)
    if target.dtype.is_floating:
        raise TypeError(f"nll_loss: target must be class indices (an integer tensor), got {target.dtype.name}; "
                        f"use target.long()")
    if input.ndim != 2 or tuple(target.shape) != (input.shape[0],):
        raise ShapeError("nll_loss", f"expects log-probabilities (N, C) and targets (N,), got {tuple(input.shape)} and "
                         f"{tuple(target.shape)}", shapes=(input.shape, target.shape))
    from ..ops.nn import check_targets
    check_targets("nll_loss", target._data, input.shape[1], ignore_index)
    if not _ignore(target, ignore_index):
        picked = input.gather(1, target.reshape(-1, 1)).reshape(-1)
        return _reduce(-picked, reduction)
    from ..ops import where
    keep = target != ignore_index
    picked = input.gather(1, where(keep, target, 0).reshape(-1, 1)).reshape(-1)
    losses = where(keep, -picked, 0.0)
    if reduction == "mean":
        return losses.sum() / keep.to(input.dtype).sum()
    return _reduce(losses, reduction)


def _same_shape(op: str, input: Tensor, target: Tensor) -> Tensor:
    target = as_tensor(target, like=input)
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(op, f"input {tuple(input.shape)} and target {tuple(target.shape)} must have the same shape",
                         shapes=(input.shape, target.shape), rule="aisys does not broadcast inside losses (torch "
                         "warns and broadcasts, a common silent bug): reshape the target, e.g. y.view_as(pred)")
    return target


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Mean squared error. Differs from torch: shapes must match exactly (no silent broadcasting)."""
    _tensor("mse_loss", "input", input)
    _no_legacy("mse_loss", None, size_average, reduce)
    _reduction("mse_loss", reduction)
    return apply("mse_loss", input, as_tensor(target, like=input), reduction=reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Mean absolute error |input − target| (the gradient at 0 is 0, as torch's sign)."""
    _tensor("l1_loss", "input", input)
    _no_legacy("l1_loss", None, size_average, reduce)
    _reduction("l1_loss", reduction)
    return _reduce((input - _same_shape("l1_loss", input, target)).abs(), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5·d²/β where |d| < β, else |d| − 0.5·β (d = input − target; β = 0 is the L1 loss), as torch."""
    _tensor("smooth_l1_loss", "input", input)
    _no_legacy("smooth_l1_loss", None, size_average, reduce)
    _reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta={beta} must be ≥ 0")
    d = (input - _same_shape("smooth_l1_loss", input, target)).abs()
    if beta == 0:
        return _reduce(d, reduction)
    from ..ops import where
    return _reduce(where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """−[y·log p + (1−y)·log(1−p)] for probabilities p in [0, 1]; each log is clamped at −100, as torch, so
    p = 0 or 1 gives a finite loss. Prefer binary_cross_entropy_with_logits on logits (more stable)."""
    _tensor("binary_cross_entropy", "input", input)
    _no_legacy("binary_cross_entropy", weight, size_average, reduce)
    _reduction("binary_cross_entropy", reduction)
    target = _same_shape("binary_cross_entropy", input, target)
    d = input._data
    if d.size and (np.nanmin(d) < 0 or np.nanmax(d) > 1):
        raise ValueError(f"binary_cross_entropy: input values must be probabilities in [0, 1], got a range "
                         f"[{np.nanmin(d):.4g}, {np.nanmax(d):.4g}]; apply sigmoid first, or use "
                         f"binary_cross_entropy_with_logits on the logits")
    log_p = input.log().clamp(min=-100.0)
    log_q = (1.0 - input).log().clamp(min=-100.0)
    return _reduce(-(target * log_p + (1.0 - target) * log_q), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """−[y·log σ(x) + (1−y)·log(1−σ(x))], computed stably as relu(x) − x·y + log(1 + exp(−|x|))."""
    _tensor("binary_cross_entropy_with_logits", "input", input)
    _no_legacy("binary_cross_entropy_with_logits", weight, size_average, reduce)
    if pos_weight is not None:
        raise ValueError("binary_cross_entropy_with_logits: pos_weight= is not supported by aisys")
    _reduction("binary_cross_entropy_with_logits", reduction)
    target = _same_shape("binary_cross_entropy_with_logits", input, target)
    loss = input.relu() - input * target + ((-input.abs()).exp() + 1.0).log()
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target ‖ exp(input)) pointwise, target·(log target − input), with ``input`` log-probabilities, as
    torch. reduction='batchmean' divides the sum by the batch size (the true KL divergence); 'mean'
    averages over every element (torch's default, which it warns about)."""
    _tensor("kl_div", "input", input)
    _no_legacy("kl_div", None, size_average, reduce)
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"kl_div: reduction={reduction!r} is not one of 'mean', 'batchmean', 'sum', 'none'")
    target = _same_shape("kl_div", input, target)
    if log_target:
        point = target.exp() * (target - input)
    else:
        from ..ops import where
        safe = where(target > 0, target, 1.0)                  # 0·log 0 = 0, as torch's xlogy
        point = where(target > 0, target * (safe.log() - input), 0.0)
    if reduction == "batchmean":
        return point.sum() / float(input.shape[0] if input.ndim else 1)
    return _reduce(point, reduction)


# ---- adaptive pooling ---------------------------------------------------------------------------------
def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a given output size, as torch: output cell i covers rows ⌊i·H/oh⌋ .. ⌈(i+1)·H/oh⌉ − 1
    (likewise for columns); ``None`` keeps a size. When the sizes divide evenly it is one avg_pool2d."""
    _tensor("adaptive_avg_pool2d", "input", input)
    if input.ndim != 4:
        raise ShapeError("adaptive_avg_pool2d", f"expects a 4-D input (N, C, H, W), got {tuple(input.shape)}",
                         shapes=(input.shape,))
    H, W = input.shape[2:]
    oh, ow = (output_size, output_size) if isinstance(output_size, (int, np.integer)) else tuple(output_size)
    oh, ow = H if oh is None else int(oh), W if ow is None else int(ow)
    if oh < 1 or ow < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size {output_size!r} must be positive")
    if H % oh == 0 and W % ow == 0:
        if (oh, ow) == (1, 1):
            return input.mean((2, 3), keepdim=True)
        return avg_pool2d(input, (H // oh, W // ow))
    from ..ops import cat
    rows = []
    for i in range(oh):
        h0, h1 = (i * H) // oh, -(-((i + 1) * H) // oh)
        cells = [input[:, :, h0:h1, (j * W) // ow:-(-((j + 1) * W) // ow)].mean((2, 3), keepdim=True)
                 for j in range(ow)]
        rows.append(cat(cells, 3))
    return cat(rows, 2)


# ---- attention ----------------------------------------------------------------------------------------
def causal_mask(L: int, S: int | None = None) -> Tensor:
    """Bool (L, S) mask, True where query i may attend to key j ≤ i (top-left aligned, as torch's is_causal)."""
    S = L if S is None else S
    return Tensor._wrap(np.tril(np.ones((L, S), np.bool_)))


def _attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """(output, probabilities) of softmax(q·kᵀ·scale + mask)·v over the last two dims."""
    for nm, t in (("query", query), ("key", key), ("value", value)):
        _tensor("scaled_dot_product_attention", nm, t)
    if query.ndim < 2 or query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError("scaled_dot_product_attention",
                         f"query {tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}: need "
                         f"(..., L, E), (..., S, E), (..., S, Ev)", shapes=(query.shape, key.shape, value.shape),
                         rule="query and key share the feature size E; key and value share the length S")
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = (query @ key.mT) * scale
    allowed = None
    if is_causal:
        allowed = causal_mask(L, S)
    if attn_mask is not None:
        attn_mask = as_tensor(attn_mask)
        if attn_mask.dtype is _dt.bool_:
            allowed = attn_mask if allowed is None else Tensor._wrap(allowed._data & attn_mask._data)
        else:
            scores = scores + attn_mask
    if allowed is not None:
        from ..ops import where
        scores = where(allowed, scores, float(np.finfo(scores._data.dtype).min))
    probs = softmax(scores, -1)
    if dropout_p > 0.0:
        probs = dropout(probs, dropout_p, training=True)
    return probs @ value, probs


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(q·kᵀ/√E + mask)·v. A bool ``attn_mask`` is True where attention is *allowed* (torch's SDPA
    convention); a float mask is added to the scores. Masked scores use the dtype's most negative finite
    value rather than −inf, so ``aisys.detect_anomaly()`` stays quiet."""
    return _attention(query, key, value, attn_mask, dropout_p, is_causal, scale)[0]
