"""The models as workloads for the layers below: LeNet traced once and lowered to the chip's layer records.

The chip's reference networks are not typed by hand where aisys has the model: ``lenet_layers`` traces
:class:`~aisys.models.LeNet` (28×28 digits, the modern max-pool/ReLU variant) and maps the graph with
``aisys.chip.graph_to_layers``, so the chip simulates exactly the network the framework trains — with the
op registry's FLOPs and bytes on every layer, and names taken from the modules (``conv1``, ``fc2.relu``).
"""
from __future__ import annotations

import numpy as np

from .lenet import LeNet


def lenet_graph(batch: int = 1):
    """The forward graph of ``LeNet()`` on a batch of 1×28×28 images (the global random generator is left as
    it was: building the model draws its initial weights)."""
    from ..framework.tensor import _Generator
    from ..frontend import trace
    state = _Generator.rng.bit_generator.state
    try:
        model = LeNet()
    finally:
        _Generator.rng.bit_generator.state = state
    return trace(model, np.zeros((batch, 1, 28, 28), np.float32), name="lenet")


def lenet_layers(batch: int = 1) -> list:
    """LeNet-5 on 28×28 digits as chip layer records: conv-relu-pool twice, then three fully connected layers
    (the ReLUs after conv and fc layers are fused into them when lowered)."""
    from ..chip import graph_to_layers
    return graph_to_layers(lenet_graph(batch))


__all__ = ["lenet_graph", "lenet_layers"]
