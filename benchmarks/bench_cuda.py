"""The CUDA kernels of aisys.kernels.cuda on a real GPU: kernel time (CUDA events), GB/s or GFLOP/s, and the share
of the device's peak. Without a GPU (or under NUMBA_ENABLE_CUDASIM=1) it says so and exits: the simulator runs one
Python thread per CUDA thread, so its times say nothing about a GPU.

    .venv/bin/python benchmarks/bench_cuda.py [--repeat 20]

Rows: vector add (n = 2^24 floats: 3 arrays moved, GB/s against the peak bandwidth), the naive and the
shared-memory tiled matmul (1024³, GFLOP/s against the FP32 peak), row softmax (4096 × 1024, GB/s). Peaks come
from the device description (``aisys.kernels.cuda.DEVICES``) whose name matches the GPU's, else none is shown.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _time_ms(cuda, launch, repeat):
    launch()                                                # compile and warm up
    cuda.synchronize()
    start, stop = cuda.event(), cuda.event()
    best = float("inf")
    for _ in range(repeat):
        start.record()
        launch()
        stop.record()
        stop.synchronize()
        best = min(best, cuda.event_elapsed_time(start, stop))
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args(argv)
    from aisys.kernels import cuda as gpu
    if gpu.SIMULATOR:
        print("no GPU (numba's CUDA simulator is active): nothing to time. The kernels' tests run under the simulator.")
        return
    cuda = gpu.numba_cuda
    dev = gpu.current_device()
    peak = next((d for name, d in gpu.DEVICES.items() if name in dev.name), None)
    print(f"{dev.name}: {dev.sm_count} SMs" + (f", peak {peak.peak_fp32_gflops:,.0f} GFLOP/s FP32, "
                                               f"{peak.peak_gbps:,.0f} GB/s" if peak else " (no peak figures)"))
    from aisys.kernels.cuda import kernels as k
    rng = np.random.default_rng(0)
    rows = []
    n = 1 << 24
    a, b = (cuda.to_device(rng.standard_normal(n).astype(np.float32)) for _ in range(2))
    out = cuda.device_array(n, np.float32)
    ms = _time_ms(cuda, lambda: k._vector_add[(n + 255) // 256, 256](a, b, out), args.repeat)
    rows.append(("vector add, 2^24 floats", ms, 3 * 4 * n / ms / 1e6, "GB/s", peak and peak.peak_gbps))
    N = 1024
    A, B = (cuda.to_device(rng.standard_normal((N, N)).astype(np.float32)) for _ in range(2))
    C = cuda.device_array((N, N), np.float32)
    ms = _time_ms(cuda, lambda: k._matmul_naive[(N // 16, N // 16), (16, 16)](A, B, C), args.repeat)
    rows.append(("matmul naive 1024³, 16×16 blocks", ms, 2 * N ** 3 / ms / 1e6, "GFLOP/s",
                 peak and peak.peak_fp32_gflops))
    for T in (16, 32):
        kern = k.tiled_matmul_kernel(T)
        ms = _time_ms(cuda, lambda: kern[(N // T, N // T), (T, T)](A, B, C), args.repeat)
        rows.append((f"matmul tiled 1024³, T={T}", ms, 2 * N ** 3 / ms / 1e6, "GFLOP/s",
                     peak and peak.peak_fp32_gflops))
    X = cuda.to_device(rng.standard_normal((4096, 1024)).astype(np.float32))
    Y = cuda.device_array((4096, 1024), np.float32)
    soft = k._softmax_kernel(128)
    ms = _time_ms(cuda, lambda: soft[4096, 128](X, Y), args.repeat)
    rows.append(("row softmax 4096×1024, 128 threads/row", ms, 2 * 4 * 4096 * 1024 / ms / 1e6, "GB/s",
                 peak and peak.peak_gbps))
    print(f"{'kernel':<40} {'ms':>8} {'rate':>16} {'of peak':>8}")
    for name, ms, rate, unit, pk in rows:
        share = f"{rate / pk:8.1%}" if pk else f"{'-':>8}"
        print(f"{name:<40} {ms:8.3f} {rate:9.1f} {unit:<6} {share}")


if __name__ == "__main__":
    main()
