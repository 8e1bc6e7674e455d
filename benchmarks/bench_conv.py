"""Per-call time of the numpy references of convolution and max pooling at LeNet-5's training shapes
(batch 32, float32, one thread): the ops a LeNet training step spends most of its numpy time in.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_conv.py [--repeat 7] [--number 40]
                                                                [--baseline path/to/old_nn_refs.py]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_conv.py --kernels [--repeat 5] [--batch 1 32] [--only 3×3]

Columns: µs per call (best of ``repeat`` runs of ``number`` calls; ``--kernels``: CPU time, see _interleaved_s); GFLOP/s = 2·MACs / time for the
convolutions (MACs of the direct convolution; the pools have none, so their column shows GB/s of input
plus output read and written); "matmul µs", for the convolutions, the time of just the batched matmul
the reference performs (operands already built), the floor an im2col-style numpy reference can reach,
so ref − matmul is what building columns / scattering them back costs.
``--kernels`` instead times the *selected* kernel of ``aisys.kernels`` (what eager conv2d runs: the dispatcher,
then the kernel the selection rule picks) at LeNet-5's and
ResNet-18's 3×3 layer shapes (stride 1, and the stride-2 first layers of stages 2-4), batch 1 and 32, against
PyTorch's CPU conv2d (one thread, when installed) and the numpy reference, all in the same run — with, as a
floor, the one BLAS GEMM an im2col convolution of the layer performs (operands prebuilt): where that GEMM alone
is slower than PyTorch's whole convolution, only fewer multiplications (Winograd) can reach it; prints Winograd F(2×2,3×3)'s counted multiplications per 2×2 output tile
(against the direct loops') and its float32 error; and times a LeNet-5 training step (bench_train.py's) with the
kernels registered and without them (the dispatcher falls back to the references).

``--baseline`` takes a Python file defining the same functions (_conv_ref, _conv_bwd_input_ref,
_conv_bwd_weight_ref, _maxpool_ref, _maxpool_backward_ref; e.g. an older copy of the references) and
adds its time and the speedup, the two timed in the same run, alternately, so machine load hits both
alike. Run by hand; nothing is asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
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


# ---- the selected kernels against PyTorch and the reference ---------------------------------------------------

LAYERS = [("LeNet conv1 5×5", (1, 28, 28), (6, 1, 5, 5), 1, 2), ("LeNet conv2 5×5", (6, 14, 14), (16, 6, 5, 5), 1, 0),
          ("ResNet 3×3 64ch 56²", (64, 56, 56), (64, 64, 3, 3), 1, 1),
          ("ResNet 3×3 128ch 28²", (128, 28, 28), (128, 128, 3, 3), 1, 1),
          ("ResNet 3×3 256ch 14²", (256, 14, 14), (256, 256, 3, 3), 1, 1),
          ("ResNet 3×3 512ch 7²", (512, 7, 7), (512, 512, 3, 3), 1, 1),
          # the first 3×3 of stages 2-4: stride 2, channels doubling
          ("ResNet 3×3/2 64→128", (64, 56, 56), (128, 64, 3, 3), 2, 1),
          ("ResNet 3×3/2 128→256", (128, 28, 28), (256, 128, 3, 3), 2, 1),
          ("ResNet 3×3/2 256→512", (256, 14, 14), (512, 256, 3, 3), 2, 1)]


def _interleaved_s(fns: dict, repeat: int, budget_s: float = 0.2) -> dict:
    """Best CPU seconds per call of each function, timed in alternation. CPU time (``time.process_time``), not
    wall time: every timed function runs on one thread, and on a shared machine wall time also counts the
    time other processes hold the core (measured here: wall-time ratios moved 2× between runs, CPU-time ratios
    a few %)."""
    numbers = {}
    for name, fn in fns.items():
        fn()                                               # warm up (numba compiles, BLAS buffers)
        t0 = time.process_time()
        fn()
        numbers[name] = max(1, int(budget_s / max(time.process_time() - t0, 1e-6)))
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            timer = timeit.Timer(fn, timer=time.process_time)
            best[name] = min(best[name], timer.timeit(number=numbers[name]) / numbers[name])
    return best


def measure_kernels(repeat: int, batches=(1, 32), only=None) -> list[dict]:
    """Per layer: the selected kernel (through eager's dispatcher), the numpy reference, PyTorch (one thread) and,
    as a floor, the one BLAS GEMM an im2col convolution of that layer performs (operands prebuilt) — all timed in
    alternation in one run."""
    from aisys import kernels
    from aisys.framework.registry import get as get_op
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        for name, chw, ws, stride, pad in LAYERS:
            if only and only not in name:
                continue
            x = rng.standard_normal((batch, *chw)).astype(np.float32)
            w = rng.standard_normal(ws).astype(np.float32)
            a = dict(stride=(stride, stride), padding=(pad, pad), dilation=(1, 1), groups=1)
            alg, _ = kernels.select_kernel(x.shape, w.shape, **a)
            geo = kernels.ConvGeometry.of(x.shape, w.shape, **a)
            K, P = geo.C * geo.KH * geo.KW, geo.OH * geo.OW
            w2, cols = w.reshape(geo.O, K), rng.standard_normal((batch, K, P)).astype(np.float32)
            out = np.empty((batch, geo.O, P), np.float32)
            eager = get_op("conv2d").eager                 # what eager conv2d runs: the dispatcher -> the kernel
            fns = {"selected": lambda: eager(x, w, **a),
                   "reference": lambda: refs._conv_ref(x, w, None, **a),
                   "gemm": lambda: np.matmul(w2, cols, out=out)}
            if torch is not None:
                xt, wt = torch.from_numpy(x), torch.from_numpy(w)
                fns["torch"] = lambda: torch.nn.functional.conv2d(xt, wt, stride=stride, padding=pad)
            with (torch.no_grad() if torch is not None else contextlib.nullcontext()):
                t = _interleaved_s(fns, repeat)
            rows.append(dict(name=name, batch=batch, algorithm=alg, selected_s=t["selected"],
                             reference_s=t["reference"], torch_s=t.get("torch"), gemm_s=t["gemm"]))
    return rows


def kernels_table(rows) -> str:
    lines = [f"{'layer':<22} {'batch':>5} {'selected':<13} {'ms':>8} {'÷ torch (1 thr)':>16} {'÷ numpy ref':>12} "
             f"{'im2col GEMM alone ÷ torch':>26}"]
    for r in rows:
        vs_t = f"{r['selected_s'] / r['torch_s']:16.2f}" if r["torch_s"] else f"{'-':>16}"
        gemm = f"{r['gemm_s'] / r['torch_s']:26.2f}" if r["torch_s"] else f"{'-':>26}"
        lines.append(f"{r['name']:<22} {r['batch']:5d} {r['algorithm']:<13} {r['selected_s'] * 1e3:8.2f} {vs_t} "
                     f"{r['selected_s'] / r['reference_s']:12.2f} {gemm}")
    return "\n".join(lines)


def winograd_counts() -> str:
    from aisys import kernels
    xs, ws = (1, 64, 56, 56), (64, 64, 3, 3)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    pairs_tiles = 64 * 64 * 28 * 28                       # (input, output) channel pairs × 2×2 output tiles
    counted = {}
    for alg in ("direct", "winograd_2x2"):
        c = kernels.OpCounter()
        kernels.conv2d(x, w, padding=1, algorithm=alg, counter=c)
        counted[alg] = c.mults / pairs_tiles
    err = kernels.numerical_error("winograd_2x2", xs, ws, padding=1, dtype="float32")
    return (f"Winograd F(2×2,3×3) on {xs} * {ws}: {counted['winograd_2x2']:g} multiplications per 2×2 output tile "
            f"and channel pair (counted) vs {counted['direct']:g} direct; float32 relative error {err:.1e} "
            f"(target ≤ 1e-5)")


def lenet_step_with_and_without(repeat: int) -> str:
    """bench_train.py's LeNet-5 step (batch 32) with the conv kernels registered, then with the references."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_train as bt
    return bt.lenet_with_and_without_conv_kernels(repeat)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--number", type=int, default=40)
    p.add_argument("--baseline", help="a .py file defining the same reference functions, timed alongside")
    p.add_argument("--kernels", action="store_true", help="the selected kernels vs PyTorch and the reference")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32], help="--kernels: batch sizes (default 1 32)")
    p.add_argument("--only", help="--kernels: only the layers whose name contains this text")
    args = p.parse_args(argv)
    if args.kernels:
        print(f"numpy {np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, float32, one thread")
        print(kernels_table(measure_kernels(min(args.repeat, 5), args.batch, args.only)))
        print(winograd_counts())
        print(lenet_step_with_and_without(min(args.repeat, 5)))
        return
    baseline = load_baseline(args.baseline) if args.baseline else None
    print(f"numpy {np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, float32, batch 32")
    print(table(measure(args.repeat, args.number, baseline)))


if __name__ == "__main__":
    main()
