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

import ctypes.util
import os
import sys


def _want_simulator() -> bool:
    env = os.environ.get("NUMBA_ENABLE_CUDASIM")
    if env is not None:
        return env not in ("", "0")
    return not (os.path.exists("/dev/nvidiactl") or ctypes.util.find_library("cuda"))


def _load_numba_cuda():
    from numba.core import config
    if "numba.cuda" not in sys.modules and _want_simulator():
        config.ENABLE_CUDASIM = True
    from numba import cuda
    return cuda


numba_cuda = _load_numba_cuda()
SIMULATOR = numba_cuda.jit.__module__.startswith("numba.cuda.simulator")   #: running under the simulator

from .device import DEVICES, DeviceSpec, LaunchError, check_launch  # noqa: E402
from .trace import TrafficReport, profile, current_device, launch, to_device  # noqa: E402
from .kernels import (vector_add, reduce_sum, matmul, softmax_rows, conv2d, KERNELS,  # noqa: E402
                      tiled_matmul_kernel)

__all__ = ["numba_cuda", "SIMULATOR", "DEVICES", "DeviceSpec", "LaunchError", "check_launch", "TrafficReport",
           "profile", "current_device", "launch", "to_device", "tiled_matmul_kernel", "vector_add", "reduce_sum",
           "matmul", "softmax_rows", "conv2d", "KERNELS"]
