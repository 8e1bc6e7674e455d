"""``aisys.nn``: layers, containers, initializers and the functional API, with PyTorch's names.

    import aisys
    from aisys import nn
    import aisys.nn.functional as F          # also: from aisys.nn import functional as F

    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    loss = F.cross_entropy(model(x), y); loss.backward()
    model.save("digits_mlp.npz"); model.load("digits_mlp.npz")      # .npz, never pickle
"""
from __future__ import annotations

import sys as _sys

from . import functional, init, utils
from .attention import MultiheadAttention
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten,
                     GELU, Identity,
                     LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool2d, ModuleDict, ModuleList, ReLU, Sequential,
                     SiLU, Sigmoid, Softmax, Tanh)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .module import Module, Parameter, RemovableHandle, load_state_dict, save_state_dict
from .rnn import LSTM, LSTMCell, RNN, RNNCell

# ``import aisys.nn.functional as F`` works like torch's: aisys.nn is an alias of this package.
_sys.modules.setdefault("aisys.nn", _sys.modules[__name__])
_sys.modules.setdefault("aisys.nn.functional", functional)
_sys.modules.setdefault("aisys.nn.init", init)
_sys.modules.setdefault("aisys.nn.utils", utils)

__all__ = ["Module", "Parameter", "RemovableHandle", "save_state_dict", "load_state_dict", "functional", "init", "utils",
           "Identity", "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
           "Embedding", "Dropout", "ReLU", "GELU", "Tanh", "Sigmoid", "SiLU", "LeakyReLU", "Softmax", "LogSoftmax",
           "Flatten", "Sequential", "ModuleList", "ModuleDict", "RNNCell", "LSTMCell", "RNN", "LSTM",
           "MultiheadAttention", "AdaptiveAvgPool2d", "MSELoss", "L1Loss", "SmoothL1Loss", "CrossEntropyLoss",
           "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"]
