"""Per-call time of the numpy references of convolution and max pooling at LeNet-5's training shapes
(batch 32, float32, one thread): the ops a LeNet training step spends most of its numpy time in.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_conv.py [--repeat 7] [--number 40]
                                                                [--baseline path/to/old_nn_refs.py]

Columns: µs per call (best of ``repeat`` runs of ``number`` calls); GFLOP/s = 2·MACs / time for the
convolutions (MACs of the direct convolution; the pools have none, so their column shows GB/s of input
plus output read and written); "matmul µs", for the convolutions, the time of just the batched matmul
the reference performs (operands already built), the floor an im2col-style numpy reference can reach,
so ref − matmul is what building columns / scattering them back costs.
``--baseline`` takes a Python file defining the same functions (_conv_ref, _conv_bwd_input_ref,
_conv_bwd_weight_ref, _maxpool_ref, _maxpool_backward_ref; e.g. an older copy of the references) and
adds its time and the speedup, the two timed in the same run, alternately, so machine load hits both
alike. Run by hand; nothing is asserted.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import timeit

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from aisys.framework.ops import nn as refs  # noqa: E402

CONVS = [("conv1", (32, 1, 28, 28), (6, 1, 5, 5), 2), ("conv2", (32, 6, 14, 14), (16, 6, 5, 5), 0)]
POOLS = [("pool1", (32, 6, 28, 28)), ("pool2", (32, 16, 10, 10))]
POOL = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))


def cases():
    """(name, call(module), work, unit, matmul floor or None): `work` is FLOPs (GFLOP/s) or bytes (GB/s)."""
    rng = np.random.default_rng(0)
    out = []
    for name, xs, ws, pad in CONVS:
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        b = rng.standard_normal(ws[0]).astype(np.float32)
        a = dict(stride=(1, 1), padding=(pad, pad), dilation=(1, 1), groups=1)
        y = refs._conv_ref(x, w, b, **a)
        g = rng.standard_normal(y.shape).astype(np.float32)
        flops = 2 * y.size * ws[1] * ws[2] * ws[3]
        N, O, OH, OW = y.shape
        K = ws[1] * ws[2] * ws[3]
        cols = rng.standard_normal((N, K, OH * OW)).astype(np.float32)
        w2, g3 = w.reshape(O, K), g.reshape(N, O, OH * OW)
        forward = lambda m, x=x, w=w, b=b, a=a: m._conv_ref(x, w, b, **a)                      # noqa: E731
        grad_input = lambda m, g=g, w=w, a=a, s=xs: m._conv_bwd_input_ref(g, w, input_shape=s, **a)  # noqa: E731
        grad_weight = lambda m, g=g, x=x, a=a, s=ws: m._conv_bwd_weight_ref(g, x, weight_shape=s, **a)  # noqa: E731
        out += [
            (f"{name} forward", forward, flops, "GFLOP/s", lambda w2=w2, cols=cols: np.matmul(w2, cols)),
            (f"{name} backward_input", grad_input, flops, "GFLOP/s", lambda w2=w2, g3=g3: np.matmul(w2.T, g3)),
            (f"{name} backward_weight", grad_weight, flops, "GFLOP/s",
             lambda cols=cols, g3=g3: np.matmul(cols, g3.transpose(0, 2, 1))),
        ]
    for name, shape in POOLS:
        x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)    # after a ReLU: many zero ties
        y = refs._maxpool_ref(x, **POOL)
        g = rng.standard_normal(y.shape).astype(np.float32)
        out += [
            (f"{name} max_pool2d {shape[1]}×{shape[2]}²", lambda m, x=x: m._maxpool_ref(x, **POOL),
             x.nbytes + y.nbytes, "GB/s", None),
            (f"{name} max_pool2d_backward", lambda m, g=g, x=x: m._maxpool_backward_ref(g, x, **POOL),
             2 * x.nbytes + g.nbytes, "GB/s", None),
        ]
    return out


def best_us(fn, repeat: int, number: int) -> float:
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number * 1e6


def load_baseline(path: str):
    spec = importlib.util.spec_from_file_location("baseline_refs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(repeat: int, number: int, baseline=None) -> list[dict]:
    rows = []
    for name, call, work, unit, floor in cases():
        call(refs)                                         # warm up: allocator, BLAS buffers
        if baseline is not None:
            call(baseline)
        now, base = [], []
        for _ in range(repeat):                            # alternate, so load hits both alike
            now.append(best_us(lambda: call(refs), 1, number))
            if baseline is not None:
                base.append(best_us(lambda: call(baseline), 1, number))
        t = min(now)
        rows.append(dict(name=name, us=t, rate=work / t / 1e3, unit=unit,
                         matmul_us=best_us(floor, repeat, number) if floor else None,
                         baseline_us=min(base) if base else None))
    return rows


def table(rows: list[dict]) -> str:
    has_base = rows and rows[0]["baseline_us"] is not None
    head = f"{'reference':<36} {'µs/call':>9} {'rate':>14} {'matmul µs':>10}"
    if has_base:
        head += f" {'baseline µs':>12} {'speedup':>8}"
    lines = [head]
    for r in rows:
        mm = f"{r['matmul_us']:10.1f}" if r["matmul_us"] is not None else f"{'':>10}"
        line = f"{r['name']:<36} {r['us']:9.1f} {r['rate']:7.1f} {r['unit']:<6} {mm}"
        if has_base:
            line += f" {r['baseline_us']:12.1f} {r['baseline_us'] / r['us']:7.2f}×"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--number", type=int, default=40)
    p.add_argument("--baseline", help="a .py file defining the same reference functions, timed alongside")
    args = p.parse_args(argv)
    baseline = load_baseline(args.baseline) if args.baseline else None
    print(f"numpy {np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, float32, batch 32")
    print(table(measure(args.repeat, args.number, baseline)))


if __name__ == "__main__":
    main()
