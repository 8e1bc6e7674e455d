"""Jupyter widgets that draw aisys's plain data records (graphs, pass logs, memory plans, traces, chip reports).

``widgets`` imports ``aisys``; ``aisys`` never imports ``widgets``. Each name loads its module on first
use, so ``import widgets`` is cheap and a missing optional piece fails only where it is used.
"""
from __future__ import annotations

import importlib

_WHERE = {
    # widgets/graph.py — computation graphs
    "GraphView": "graph", "graph_to_dot": "graph", "dot_to_svg": "graph", "GraphPanes": "graph",
    "CaptureCompare": "graph",
    # widgets/autodiff.py — the tape
    "TapePlayer": "autodiff",
    # widgets/layout.py — layouts and bit formats
    "LayoutView": "layout", "BitView": "layout",
    # widgets/passes.py — compiler passes
    "PassStepper": "passes",
    # widgets/memory.py — memory plans
    "MemoryTimeline": "memory",
    # widgets/chip.py — the simulated chip
    "UtilizationView": "chip", "RooflinePlot": "chip", "SystolicAnimator": "chip",
    # widgets/compress.py — quantization, pruning, and what they buy on the chip
    "QuantHistogram": "compress", "SensitivityScan": "compress", "PruningView": "compress", "ChipPayoff": "compress",
    # widgets/dist.py — interconnects, collectives, parallel training
    "CollectiveAnimator": "dist", "TopologyView": "dist", "TimelineView": "dist", "MemoryStack": "dist",
    # widgets/inference.py — the inference engine and the capstone
    "KVCacheView": "inference", "BatchTimeline": "inference", "StackView": "inference",
    # widgets/cluster.py — cluster scheduling
    "ClusterTimeline": "cluster", "PolicyCompare": "cluster", "PlacementView": "cluster",
    # widgets/kernels.py — convolution algorithms and the CUDA thread hierarchy
    "Im2colView": "kernels", "KernelCompare": "kernels", "ThreadGridView": "kernels",
    # widgets/loops.py — loop schedules, caches, tuning
    "LoopNestView": "loops", "CacheHeatmap": "loops", "ScheduleExplorer": "loops", "TuningCurve": "loops",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'widgets' has no attribute {name!r}; available: {', '.join(__all__)}")


def __dir__():
    return __all__
