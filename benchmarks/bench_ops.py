"""Per-op overhead of eager aisys on tiny tensors: what `apply` (inference, dispatch, tape record) costs
on top of the numpy work it wraps.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ops.py [--repeat 7] [--number 2000]

On 10×10 float32 tensors the numpy work is ~1 µs, so the table shows almost pure framework overhead:
overhead = aisys time − numpy time (µs per call, best of ``repeat`` runs), with and without
requires_grad (which adds the tape record). Run by hand; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np

import aisys


def cases(requires_grad: bool):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((10, 10)).astype(np.float32)
    b = rng.standard_normal((10, 10)).astype(np.float32)
    x = aisys.tensor(a, requires_grad=requires_grad)
    y = aisys.tensor(b, requires_grad=requires_grad)
    zero = np.zeros((), np.float32)
    return [
        ("add", lambda: x + y, lambda: np.add(a, b)),
        ("mul", lambda: x * y, lambda: np.multiply(a, b)),
        ("relu", lambda: aisys.relu(x), lambda: np.maximum(a, zero)),
        ("matmul", lambda: x @ y, lambda: np.matmul(a, b)),
        ("sum", lambda: x.sum(), lambda: np.sum(a)),
        ("mul scalar", lambda: x * 2.0, lambda: np.multiply(a, np.float32(2.0))),
    ]


def best_us(fn, repeat: int, number: int) -> float:
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number * 1e6


def measure(repeat: int = 7, number: int = 2000) -> list[dict]:
    rows = []
    for rg in (False, True):
        for name, ours, ref in cases(rg):      # warm up first: caches, lazy imports, CPU clocks
            timeit.timeit(ours, number=number)
            timeit.timeit(ref, number=number)
        for name, ours, ref in cases(rg):
            t_ours, t_np = best_us(ours, repeat, number), best_us(ref, repeat, number)
            rows.append(dict(op=name, requires_grad=rg, aisys_us=t_ours, numpy_us=t_np, overhead_us=t_ours - t_np))
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'op':<11} {'requires_grad':>13} {'aisys µs':>9} {'numpy µs':>9} {'overhead µs':>12} {'ratio':>6}"]
    for r in rows:
        lines.append(f"{r['op']:<11} {str(r['requires_grad']):>13} {r['aisys_us']:9.2f} {r['numpy_us']:9.2f} "
                     f"{r['overhead_us']:12.2f} {r['aisys_us'] / r['numpy_us']:6.1f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--number", type=int, default=2000)
    args = p.parse_args()
    print("per-op overhead on 10×10 float32 tensors (best of", args.repeat, "runs of", args.number, "calls)")
    print(table(measure(args.repeat, args.number)))


if __name__ == "__main__":
    main()
