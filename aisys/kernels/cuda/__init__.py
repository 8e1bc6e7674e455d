"""The CUDA programming model, with kernels written once in ``numba.cuda``: on a CPU they run under numba's
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, one Python thread per CUDA thread), on an NVIDIA GPU for real.

Threads are organised grid → block → thread, memory global → shared → registers (lecture "AI 系统组成&生态").

    from aisys.kernels import cuda
    C = cuda.matmul(A, B)                 # naive: one thread per output, every operand read from global memory
    C = cuda.matmul(A, B, tile=16)        # shared-memory tiles: each global value read once per tile
    rep = cuda.profile(cuda.matmul, A, B, tile=16)   # loads/stores per thread and block, bank conflicts
    cuda.check_launch(grid, block, shared_bytes, "A100")

Importing this package imports ``numba.cuda``; when neither a GPU driver nor ``NUMBA_ENABLE_CUDASIM`` is
present it switches numba to the simulator first (so Binder and laptops just work). ``import aisys`` never
imports it.
"""
from __future__ import annotations

from .backend import SIMULATOR, numba_cuda
from .device import DEVICES, DeviceSpec, LaunchError, check_launch
from .trace import TrafficReport, profile, current_device, launch, to_device
from .kernels import (vector_add, reduce_sum, matmul, softmax_rows, conv2d, KERNELS,
                      tiled_matmul_kernel)

__all__ = ["numba_cuda", "SIMULATOR", "DEVICES", "DeviceSpec", "LaunchError", "check_launch", "TrafficReport",
           "profile", "current_device", "launch", "to_device", "tiled_matmul_kernel", "vector_add", "reduce_sum",
           "matmul", "softmax_rows", "conv2d", "KERNELS"]
