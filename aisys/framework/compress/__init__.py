"""aisys.framework.compress — model compression (模型压缩): quantization, pruning, distillation.

    from aisys.framework import compress
    q = compress.quantize_tensor(x, scale, zero_point, dtype="int8")        # q = clamp(round(x/s) + z)
    scale, zp = compress.calibrate(x, method="kl", dtype="int8")            # minmax | percentile | mse | kl
    qmodel = compress.quantize(model, batches, weights="per_channel", activations="kl")   # PTQ
    compress.prune(model, sparsity=0.5, structured=True)                    # removes channels
    loss = compress.distillation_loss(student_logits, teacher_logits, labels, temperature=4.0)

One convention everywhere (``quant``): q = clamp(round(x/s) + z, qmin, qmax), x̂ = s·(q − z). The pieces:
``quant`` (numbers), ``calibration`` (observers), ``ptq`` (post-training quantization of a model: a float64
fake-quant simulation whose traced graph the compiler's ``fold_quantization`` pass turns into integer-only
inference), ``qat`` (fake-quant training, STE and LSQ), ``pruning`` (magnitude and L1-channel pruning,
schedules, sensitivity scans), ``distillation`` (Hinton's knowledge-distillation loss). The registry ops they use
live in ``aisys/framework/ops/quant.py``. Modules other than ``quant`` load on first use.
"""
from __future__ import annotations

import importlib

from .quant import (QParams, QTYPES, QType, dequantize, fake_quantize, qparams_from_range, qrange, qtype,
                    rounding_divide_by_pot, rounding_doubling_high_mul,
                    quantize_multiplier, quantize_tensor, real_multiplier, requantize)

_WHERE = {
    # calibration.py — observers / calibrators
    "calibrate": "calibration", "kl_threshold": "calibration", "Observer": "calibration",
    "MinMaxObserver": "calibration", "MovingAverageMinMaxObserver": "calibration", "PercentileObserver": "calibration",
    "MSEObserver": "calibration", "KLObserver": "calibration", "make_observer": "calibration",
    "OBSERVERS": "calibration", "threshold_report": "calibration", "clip_error": "calibration",
    "kl_divergences": "calibration",
    # ptq.py — post-training quantization of a model
    "quantize": "ptq", "QuantizedModel": "ptq", "QuantLinear": "ptq", "QuantConv2d": "ptq",
    "check_quantizable": "ptq",
    # qat.py — quantization-aware training
    "FakeQuantize": "qat", "prepare_qat": "qat", "QATLinear": "qat", "QATConv2d": "qat", "convert": "qat",
    # pruning.py — pruning
    "prune": "pruning", "Pruning": "pruning", "magnitude_mask": "pruning", "channel_l1_norms": "pruning",
    "remove_channels": "pruning", "iterative_prune": "pruning", "sensitivity_scan": "pruning",
    "Sensitivity": "pruning", "sparsity_report": "pruning",
    # distillation.py — knowledge distillation
    "distillation_loss": "distillation", "distill": "distillation",
}

__all__ = ["QParams", "QTYPES", "QType", "dequantize", "fake_quantize", "qparams_from_range", "qrange", "qtype",
           "rounding_divide_by_pot", "rounding_doubling_high_mul",
           "quantize_multiplier", "quantize_tensor", "real_multiplier", "requantize"] + sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aisys.framework.compress' has no attribute {name!r}")


def __dir__():
    return __all__
