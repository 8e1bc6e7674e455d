"""aisys.framework.compress — model compression (模型压缩): quantization, pruning, distillation.

    from aisys.framework import compress
    q = compress.quantize_tensor(x, scale, zero_point, dtype="int8")        # q = clamp(round(x/s) + z)
    scale, zp = compress.calibrate(x, method="kl", dtype="int8")            # minmax | percentile | mse | kl
    qmodel = compress.quantize(model, batches, weights="per_channel", activations="kl")   # PTQ
    compress.prune(model, sparsity=0.5, structured=True)                    # removes channels
    loss = compress.distillation_loss(student_logits, teacher_logits, labels, temperature=4.0)

One convention everywhere (``quant``): q = clamp(round(x/s) + z, qmin, qmax), x̂ = s·(q − z). The pieces:
``quant`` (numbers), ``calibrate`` (observers), ``ptq`` (post-training quantization of a model: a float64
fake-quant simulation whose traced graph the compiler's ``fold_quantization`` pass turns into integer-only
inference), ``qat`` (fake-quant training, STE and LSQ), ``prune`` (magnitude and L1-channel pruning,
schedules, sensitivity scans), ``distill`` (Hinton's knowledge-distillation loss). The registry ops they use
live in ``aisys/framework/ops/quant.py``. Modules other than ``quant`` load on first use.
"""
from __future__ import annotations

import importlib

from .quant import (QParams, QTYPES, QType, dequantize, fake_quantize, qparams_from_range, qrange, qtype,
                    quantize_multiplier, quantize_tensor, real_multiplier, requantize)

_WHERE = {
    # calibrate.py — observers / calibrators
    "calibrate": "calibrate", "kl_threshold": "calibrate", "Observer": "calibrate", "MinMaxObserver": "calibrate",
    "MovingAverageMinMaxObserver": "calibrate", "PercentileObserver": "calibrate", "MSEObserver": "calibrate",
    "KLObserver": "calibrate", "make_observer": "calibrate", "OBSERVERS": "calibrate", "threshold_report": "calibrate",
    # ptq.py — post-training quantization of a model
    "quantize": "ptq", "QuantizedModel": "ptq", "QuantLinear": "ptq", "QuantConv2d": "ptq",
    "evaluate_accuracy": "ptq",
    # qat.py — quantization-aware training
    "FakeQuantize": "qat", "prepare_qat": "qat", "QATLinear": "qat", "QATConv2d": "qat", "convert": "qat",
    # prune.py — pruning
    "prune": "prune", "Pruning": "prune", "magnitude_mask": "prune", "channel_l1_norms": "prune",
    "remove_channels": "prune", "iterative_prune": "prune", "sensitivity_scan": "prune", "SensitivityScan": "prune",
    "sparsity_report": "prune",
    # distill.py — knowledge distillation
    "distillation_loss": "distill", "distill": "distill",
}

__all__ = ["QParams", "QTYPES", "QType", "dequantize", "fake_quantize", "qparams_from_range", "qrange", "qtype",
           "quantize_multiplier", "quantize_tensor", "real_multiplier", "requantize"] + sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aisys.framework.compress' has no attribute {name!r}")


def __dir__():
    return __all__
