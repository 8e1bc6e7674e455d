"""Device descriptions and launch checks: the limits a CUDA launch must respect (no numba needed).

A launch ``kernel[grid, block]`` runs grid.x·grid.y·grid.z *blocks* of block.x·block.y·block.z *threads*; the
threads of a block share its *shared memory* and synchronize at barriers, and run in *warps* of 32. The limits
below are from NVIDIA's CUDA C++ Programming Guide, "Features and Technical Specifications" (compute
capability 7.5 and 8.0), and each GPU's data sheet for the peaks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DeviceSpec", "DEVICES", "LaunchError", "check_launch", "dim3"]


@dataclass(frozen=True)
class DeviceSpec:
    """What a launch is checked against, and the peaks a benchmark compares with."""
    name: str
    max_threads_per_block: int = 1024
    max_block_dims: tuple = (1024, 1024, 64)
    max_grid_dims: tuple = (2**31 - 1, 65535, 65535)
    shared_bytes_per_block: int = 48 * 1024          # static shared memory per block (more needs an opt-in)
    warp_size: int = 32
    shared_banks: int = 32                           # 4-byte banks
    sm_count: int = 0
    peak_fp32_gflops: float = 0.0
    peak_gbps: float = 0.0


DEVICES = {
    # A100 SXM4 40 GB: 108 SMs, 19.5 TFLOP/s FP32, 1555 GB/s HBM2 (NVIDIA A100 data sheet)
    "A100": DeviceSpec("A100", sm_count=108, peak_fp32_gflops=19500.0, peak_gbps=1555.0),
    # H100 SXM5: 132 SMs, 67 TFLOP/s FP32, 3350 GB/s HBM3 (NVIDIA H100 data sheet)
    "H100": DeviceSpec("H100", sm_count=132, peak_fp32_gflops=66900.0, peak_gbps=3350.0),
    # T4: 40 SMs, 8.1 TFLOP/s FP32, 320 GB/s GDDR6; at most 1024 threads per SM (compute capability 7.5)
    "T4": DeviceSpec("T4", sm_count=40, peak_fp32_gflops=8100.0, peak_gbps=320.0),
}


class LaunchError(ValueError):
    """A grid/block shape or a shared-memory size the device cannot run."""


def dim3(v, what: str) -> tuple:
    """(x, y, z) from an int or a 1-3 tuple of positive ints."""
    t = (v,) if isinstance(v, int) and not isinstance(v, bool) else tuple(v)
    if not 1 <= len(t) <= 3 or any(isinstance(a, bool) or not isinstance(a, int) for a in t):
        raise LaunchError(f"{what} must be an int or a tuple of 1 to 3 ints, got {v!r}")
    if any(a < 1 for a in t):
        raise LaunchError(f"{what}={v!r}: every dimension must be ≥ 1")
    return t + (1,) * (3 - len(t))


def check_launch(grid, block, shared_bytes: int = 0, device: DeviceSpec | str = "A100") -> tuple:
    """Check a launch against ``device``; returns (grid, block) as (x, y, z) triples or raises LaunchError
    saying which limit was broken and how to fix it."""
    dev = DEVICES[device] if isinstance(device, str) else device
    g, b = dim3(grid, "grid"), dim3(block, "block")
    threads = math.prod(b)
    if threads > dev.max_threads_per_block:
        raise LaunchError(f"block {b} has {threads} threads; {dev.name} allows at most {dev.max_threads_per_block} "
                          f"per block: use smaller blocks and more of them")
    for axis, n, lim in zip("xyz", b, dev.max_block_dims):
        if n > lim:
            raise LaunchError(f"block.{axis}={n} exceeds {dev.name}'s limit {lim} for that dimension")
    for axis, n, lim in zip("xyz", g, dev.max_grid_dims):
        if n > lim:
            raise LaunchError(f"grid.{axis}={n} exceeds {dev.name}'s limit {lim} for that dimension")
    if shared_bytes > dev.shared_bytes_per_block:
        raise LaunchError(f"the kernel needs {shared_bytes} bytes of shared memory per block; {dev.name} gives "
                          f"{dev.shared_bytes_per_block}: use a smaller tile")
    return g, b
