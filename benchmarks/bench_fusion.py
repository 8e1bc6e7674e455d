"""Fusion benchmark: one generated kernel vs numpy, and a compiled training step vs eager.

    .venv/bin/python benchmarks/bench_fusion.py            # 1e6 and 1e7 elements
    .venv/bin/python benchmarks/bench_fusion.py --quick    # 1e6 only, fewer repeats

Part 1 — the chain y = relu(x·w + b)·s. x, w, b are float32 vectors of n elements and s is a float32
scalar (so every operand is either full-size or broadcast everywhere: the kernel is one flat loop).
It moves 4 arrays (3 read + 1 written) = 16·n bytes at minimum. Compared:

  numpy unfused       np.maximum(x*w + b, 0)*s — four ops, each a full pass over memory, three temporaries
  numpy out=          the same four ops writing into one preallocated buffer (no allocations)
  aisys fused         the numba kernel aisys.compile generated for the chain (fresh output array per call)
  aisys fused, out=   the same kernel writing into a preallocated buffer
  copy                np.copyto(dst, src): 2·4·n bytes — the bandwidth a streaming kernel can hope for

GB/s counts the minimal bytes of each kernel (16·n for the chain, 8·n for the copy); "% copy" compares
with the copy's GB/s. Targets: ≥ 5× over unfused numpy, ≥ 80 % of copy bandwidth.

Part 2 — one SGD step of a 2-layer MLP (batch 256, 784 → 256 → 10, MSE loss): eager autograd vs the
step traced and compiled by aisys.compile (forward, backward and update in one optimized graph).

Everything runs on one thread (NUMBA_NUM_THREADS=OMP_NUM_THREADS=1, set before numpy loads). Times are
the best of several repeats (the least-disturbed run) after one warm-up call.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import aisys  # noqa: E402


def best_time(fn, repeats: int) -> float:
    fn()                                    # warm-up: compile / load kernels, fault in pages
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def chain_rows(n: int, repeats: int) -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    s = np.float32(0.5)

    def chain(x, w, b, s):
        return (x * w + b).relu() * s

    compiled = aisys.compile(chain, x, w, b, s)      # s, a numpy scalar, is baked in as a constant
    (fused_id,) = [n_.id for n_ in compiled.graph.nodes.values() if n_.op == "fused"]
    kernel = compiled.executable.kernels[fused_id]
    expected = np.maximum(x * w + b, 0) * s
    assert np.allclose(compiled(x, w, b, s).numpy(), expected, rtol=1e-6), "fused result differs from numpy"
    buf = np.empty(n, np.float32)
    src, dst = rng.standard_normal(n).astype(np.float32), np.empty(n, np.float32)

    def numpy_out():
        np.multiply(x, w, out=buf)
        np.add(buf, b, out=buf)
        np.maximum(buf, np.float32(0), out=buf)
        np.multiply(buf, s, out=buf)

    arr_s = np.asarray(s)
    rows = [("numpy unfused", best_time(lambda: np.maximum(x * w + b, np.float32(0)) * s, repeats), 16 * n),
            ("numpy out=", best_time(numpy_out, repeats), 16 * n),
            ("aisys fused", best_time(lambda: kernel(x, w, b, arr_s), repeats), 16 * n),
            ("aisys fused, out=", best_time(lambda: kernel(x, w, b, arr_s, out=buf), repeats), 16 * n),
            ("aisys.compile call", best_time(lambda: compiled.run_arrays(x, w, b), repeats), 16 * n),
            ("copy", best_time(lambda: np.copyto(dst, src), repeats), 8 * n)]
    np.testing.assert_allclose(buf, expected, rtol=1e-6)
    return rows


def print_chain(n: int, rows) -> dict:
    copy_gbs = next(nbytes / t for name, t, nbytes in rows if name == "copy") / 1e9
    unfused = next(t for name, t, _ in rows if name == "numpy unfused")
    print(f"\nrelu(x·w + b)·s, n = {n:.0e} float32 ({16 * n / 1e6:.0f} MB minimal traffic)")
    print(f"{'variant':<20} {'time':>10} {'GB/s':>8} {'vs unfused':>11} {'% copy':>8}")
    out = {}
    for name, t, nbytes in rows:
        gbs = nbytes / t / 1e9
        print(f"{name:<20} {t * 1e3:>8.2f}ms {gbs:>8.2f} {unfused / t:>10.2f}× {100 * gbs / copy_gbs:>7.0f}%")
        out[name] = (t, gbs)
    return out


def mlp_step_rows(repeats: int):
    aisys.manual_seed(0)
    B, D, H, O = 256, 784, 256, 10
    params = {"w1": aisys.randn(D, H) * 0.05, "b1": aisys.zeros(H), "w2": aisys.randn(H, O) * 0.05, "b2": aisys.zeros(O)}
    for p in params.values():
        p.requires_grad_()
    x, y = aisys.randn(B, D), aisys.randn(B, O)

    def step(x, y):
        out = (x @ params["w1"] + params["b1"]).relu() @ params["w2"] + params["b2"]
        loss = ((out - y) ** 2).mean()
        loss.backward()
        with aisys.no_grad():
            for p in params.values():
                p.assign_(p - 0.01 * p.grad)
                p.grad = None
        return loss

    compiled = aisys.compile(step, x, y, params=params)
    t_eager = best_time(lambda: step(x, y), repeats)
    t_comp = best_time(lambda: compiled(x, y), repeats)
    return compiled, t_eager, t_comp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1e6 elements only, fewer repeats")
    args = ap.parse_args()
    print(f"aisys fusion benchmark — {platform.processor() or platform.machine()}, numpy {np.__version__}, "
          f"one thread")
    sizes = [10 ** 6] if args.quick else [10 ** 6, 10 ** 7]
    summary = []
    for n in sizes:
        res = print_chain(n, chain_rows(n, 5 if args.quick else (30 if n <= 10 ** 6 else 10)))
        unfused = res["numpy unfused"][0]
        fused_t, fused_gbs = res["aisys fused, out="]
        summary.append((n, unfused / fused_t, 100 * fused_gbs / res["copy"][1], unfused / res["aisys fused"][0]))
    compiled, t_eager, t_comp = mlp_step_rows(5 if args.quick else 20)
    print(f"\nMLP SGD step (256×784 → 256 → 10, MSE): eager {t_eager * 1e3:.2f}ms, compiled {t_comp * 1e3:.2f}ms "
          f"({t_eager / t_comp:.2f}× faster); graph {len(compiled.original.op_nodes)} → "
          f"{len(compiled.graph.op_nodes)} ops, {len(compiled.kernels)} fused kernels")
    print("\nsummary (targets: ≥ 5× over unfused numpy, ≥ 80 % of copy bandwidth)")
    for n, speedup, pct, speedup_alloc in summary:
        print(f"  n = {n:.0e}: fused out= {speedup:.1f}× unfused numpy at {pct:.0f}% of copy bandwidth "
              f"(with a fresh output array: {speedup_alloc:.1f}×)")


if __name__ == "__main__":
    main()
