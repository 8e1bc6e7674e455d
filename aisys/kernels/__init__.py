"""L5 real kernels: numba CPU kernels (generated fused groups today).

``import aisys.kernels`` never imports numba; numba loads when the first kernel is compiled.
"""
from .jit import cache_dir, load_kernel, loaded_kernels

__all__ = ["cache_dir", "load_kernel", "loaded_kernels"]
