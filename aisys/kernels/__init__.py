"""L5 real kernels: numba CPU kernels (generated fused groups, and attention).

``import aisys.kernels`` never imports numba; numba loads when the first kernel is compiled.

- ``conv2d(x, w, ..., algorithm="auto")``: convolution seven ways (direct NCHW/NHWC, im2col + GEMM, Winograd
  F(2×2,3×3) and F(4×4,3×3), depthwise, 1×1 as GEMM) with ``OpCounter``/``op_count``, ``numerical_error``
  against float64 and ``select_kernel`` (rules with reasons, or autotuned); eager conv2d runs them.
- ``kernels.cuda``: the CUDA programming model with numba.cuda (simulator on a CPU), loaded on first use.
- ``attention(q, k, v, causal=True)``: tiled attention with FlashAttention's online softmax (batches,
  GQA/MQA head groupings, causal masks); ``attention_naive`` is the standard algorithm it replaces;
  ``paged_attention`` is the decode step over a paged KV pool (block tables, vLLM's kernel).
"""
from .jit import cache_dir, load_kernel, loaded_kernels
from .attention import AttentionStats, attention, attention_naive, paged_attention, tiled_attention_reference
from . import conv
from .conv import (ALGORITHMS, ConvGeometry, OpCounter, conv2d, im2col, winograd_matrices, winograd_1d, op_count,
                   numerical_error, select_kernel, autotuned, autotune_cache, supports, conv2d_reference,
                   winograd_tile, Im2colRecord, im2col_record, AlgorithmComparison, compare_algorithms)

__all__ = ["cache_dir", "load_kernel", "loaded_kernels", "AttentionStats", "attention", "attention_naive",
           "paged_attention", "tiled_attention_reference", "conv", "ALGORITHMS", "ConvGeometry", "OpCounter",
           "conv2d", "im2col", "winograd_matrices", "winograd_1d", "op_count", "numerical_error", "select_kernel",
           "autotuned", "autotune_cache", "supports", "conv2d_reference", "winograd_tile", "Im2colRecord", "im2col_record",
           "AlgorithmComparison", "compare_algorithms"]          # and the lazy `cuda`


def __getattr__(name):
    if name == "cuda":                      # numba.cuda loads only when the CUDA model is asked for
        import importlib
        mod = importlib.import_module("aisys.kernels.cuda")
        globals()["cuda"] = mod
        return mod
    raise AttributeError(f"module 'aisys.kernels' has no attribute {name!r}")
