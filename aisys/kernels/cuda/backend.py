"""Which numba.cuda this process uses: the real GPU target, or numba's CUDA simulator.

``NUMBA_ENABLE_CUDASIM`` decides when set; otherwise, with no NVIDIA driver on the machine, the simulator is switched
on before ``numba.cuda`` is first imported (numba reads the flag once, at that import).
"""
from __future__ import annotations

import ctypes.util
import os
import sys

__all__ = ["numba_cuda", "SIMULATOR"]


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
