"""MLP: the multilayer perceptron, Linear layers with a non-linearity between them."""
from __future__ import annotations

from typing import Sequence

from ..framework import nn

__all__ = ["MLP"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}


def activation_layer(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation={name!r}: use one of {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class MLP(nn.Module):
    """``MLP([64, 128, 10])``: Linear(64→128) → ReLU → Linear(128→10). Inputs with more than two dims
    (images) are flattened from dim 1, so the same model takes (N, 1, 8, 8) or (N, 64)."""

    def __init__(self, sizes: Sequence[int] = (64, 128, 10), activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP: sizes={sizes} needs at least an input and an output size")
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(activation_layer(activation))
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.sizes = sizes
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        if x.ndim > 2:
            x = x.flatten(1)
        return self.net(x)
