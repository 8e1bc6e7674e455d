"""L5 real kernels: numba CPU kernels (generated fused groups, and attention).

``import aisys.kernels`` never imports numba; numba loads when the first kernel is compiled.

- ``attention(q, k, v, causal=True)``: tiled attention with FlashAttention's online softmax (batches,
  GQA/MQA head groupings, causal masks); ``attention_naive`` is the standard algorithm it replaces;
  ``paged_attention`` is the decode step over a paged KV pool (block tables, vLLM's kernel).
"""
from .jit import cache_dir, load_kernel, loaded_kernels
from .attention import AttentionStats, attention, attention_naive, paged_attention, tiled_attention_reference

__all__ = ["cache_dir", "load_kernel", "loaded_kernels", "AttentionStats", "attention", "attention_naive",
           "paged_attention", "tiled_attention_reference"]
