"""Fusion benchmark: one generated kernel vs numpy, and a compiled training step vs eager.

    .venv/bin/python benchmarks/bench_fusion.py            # 1e6 and 1e7 elements
    .venv/bin/python benchmarks/bench_fusion.py --quick    # 1e6 only, fewer repeats
    .venv/bin/python benchmarks/bench_fusion.py --templates --rounds 60   # only part 2, more rounds

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

Part 2 — the loop back end against the templates it replaced: six fused groups (a flat chain, a row bias +
GELU, ReLU's backward select, a row sum of exp, a column mean of squares, a row max of a difference) through the kernels aisys.compile
now builds from the loop IR, and through the kernels the earlier templated generator (aisys.compiler.codegen's
elementwise_source/reduce_source, removed when the loop IR took over) emitted for the same groups, kept below as
frozen text with their calling code. Both write into a preallocated buffer, as the runtime's arena does. Timed
interleaved (one call of each variant per round, alternating which goes first and which of two output
buffers each writes; fastest of N rounds); ratio = template time / loop-IR time
(target ≥ 0.95: the loop IR no slower).

Part 3 — one SGD step of a 2-layer MLP (batch 256, 784 → 256 → 10, MSE loss): eager autograd vs the
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


# ---- part 2: loop-IR kernels vs the templated generator they replaced ---------------------------------------
_CHAIN_SRC = """\
import numpy as np
from numba import njit

_C0 = np.float32(0.0)

@njit(cache=True, error_model="numpy")
def kernel(in0, in1, in2, in3, out):
    n0 = out.shape[0]
    x3 = in3[0]
    for i0 in range(n0):
        x0 = in0[i0]
        x1 = in1[i0]
        x2 = in2[i0]
        t0 = np.float32(x0 * x1)
        t1 = np.float32(t0 + x2)
        t2 = np.float32(t1 if (t1 >= _C0 or t1 != t1) else _C0)
        t3 = np.float32(t2 * x3)
        out[i0] = t3
"""
_BIAS_GELU_SRC = """\
import math
import numpy as np
from numba import njit

_C0 = np.float64(0.5)
_C1 = np.float64(0.7071067811865476)

@njit(cache=True, error_model="numpy")
def kernel(in0, in1, out):
    n0 = out.shape[0]
    n1 = out.shape[1]
    for i0 in range(n0):
        for i1 in range(n1):
            x0 = in0[i0, i1]
            x1 = in1[0, i1]
            t0 = np.float32(x0 + x1)
            t1 = np.float32(_C0 * np.float64(t0) * math.erfc(-np.float64(t0) * _C1))
            out[i0, i1] = t1
"""
_RELU_GRAD_SRC = """\
import numpy as np
from numba import njit

@njit(cache=True, error_model="numpy")
def kernel(in0, in1, in2, out):
    n0 = out.shape[0]
    x1 = in1[0]
    for i0 in range(n0):
        x0 = in0[i0]
        x2 = in2[i0]
        t0 = x0 > x1
        t1 = np.float32(x2 if t0 else x1)
        out[i0] = t1
"""
_SUM_EXP_SRC = """\
import numpy as np
from numba import njit

@njit(cache=True, error_model="numpy")
def kernel(in0, acc, shape):
    n0 = shape[0]
    n1 = shape[1]
    for i0 in range(n0):
        a = acc[i0, 0]
        for i1 in range(n1):
            x0 = in0[i0, i1]
            t0 = np.float32(np.exp(x0))
            a += np.float64(t0)
        acc[i0, 0] = a
"""
_MEAN_SQ_SRC = """\
import numpy as np
from numba import njit

@njit(cache=True, error_model="numpy")
def kernel(in0, acc, shape):
    n0 = shape[0]
    n1 = shape[1]
    for i0 in range(n0):
        for i1 in range(n1):
            x0 = in0[i0, i1]
            t0 = np.float32(x0 * x0)
            acc[0, i1] += np.float64(t0)
"""
_MAX_SRC = """\
import numpy as np
from numba import njit

@njit(cache=True, error_model="numpy")
def kernel(in0, in1, acc, shape):
    n0 = shape[0]
    n1 = shape[1]
    for i0 in range(n0):
        a = acc[i0, 0]
        for i1 in range(n1):
            x0 = in0[i0, i1]
            x1 = in1[i0, 0]
            t0 = np.float32(x0 - x1)
            a = t0 if (t0 > a or t0 != t0) else a
        acc[i0, 0] = a
"""


class TemplateKernel:
    """A kernel of the removed templated generator with its calling code: inputs viewed as ``views``; an
    elementwise kernel writes ``out`` viewed as ``out_view``; a reduce kernel (``acc`` = (shape, identity,
    dtype), ``count`` for a mean) fills a fresh accumulator, which is finished in numpy and copied out."""

    def __init__(self, source, views, out_view=None, acc=None, in_shape=None, count=None):
        from aisys.kernels import load_kernel
        self.fn = load_kernel(source)
        self.views, self.out_view, self.acc, self.in_shape, self.count = views, out_view, acc, in_shape, count

    def bind(self, out):
        fn, views = self.fn, self.views
        if self.acc is None:
            view = out.reshape(self.out_view)
            return lambda arrays: fn(*[a.reshape(v) for a, v in zip(arrays, views)], view)
        shape, identity, dtype = self.acc
        in_shape, count = np.asarray(self.in_shape), self.count

        def call(arrays):
            acc = np.full(shape, identity, dtype)
            fn(*[np.ascontiguousarray(a).reshape(v) for a, v in zip(arrays, views)], acc, in_shape)
            if count is not None:
                acc = acc / np.asarray(count)
            np.copyto(out, acc.astype(out.dtype, copy=False).reshape(out.shape))
        return call


def template_cases(scale: int = 1):
    """(name, graph builder, input shapes, frozen template kernel) for part 2."""
    n = 10 ** 6 * scale
    return [
        ("chain relu(x·w+b)·s", lambda g, x, w, b, s: g.add("mul", (g.add("relu", (g.add("add", (
            g.add("mul", (x, w)).id, b)).id,)).id, s)).id, [(n,), (n,), (n,), ()],
         TemplateKernel(_CHAIN_SRC, [(n,), (n,), (n,), (1,)], (n,))),
        ("row bias + gelu", lambda g, x, b: g.add("gelu", (g.add("add", (x, b)).id,)).id, [(256, 1024), (1024,)],
         TemplateKernel(_BIAS_GELU_SRC, [(256, 1024), (1, 1024)], (256, 1024))),
        ("where(x > 0, g, 0)", lambda g, x, gr, z: g.add("where", (g.add("gt", (x, z)).id, gr, z)).id,
         [(512, 512), (512, 512), ()], TemplateKernel(_RELU_GRAD_SRC, [(512 * 512,), (1,), (512 * 512,)],
                                                      (512 * 512,))),
        ("row sum of exp", lambda g, x: g.add("sum", (g.add("exp", (x,)).id,), {"dim": -1, "keepdim": True}).id,
         [(512, 1024)], TemplateKernel(_SUM_EXP_SRC, [(512, 1024)], acc=((512, 1), 0.0, np.float64),
                                       in_shape=(512, 1024))),
        ("column mean of x²", lambda g, x: g.add("mean", (g.add("mul", (x, x)).id,), {"dim": 0, "keepdim": False}).id,
         [(1024, 512)], TemplateKernel(_MEAN_SQ_SRC, [(1024, 512)], acc=((1, 512), 0.0, np.float64),
                                       in_shape=(1024, 512), count=1024)),
        ("row max of x − y", lambda g, x, y: g.add("max", (g.add("sub", (x, y)).id,), {"dim": -1, "keepdim": True}).id,
         [(512, 1024), (512, 1)], TemplateKernel(_MAX_SRC, [(512, 1024), (512, 1)],
                                                 acc=((512, 1), -np.inf, np.float32), in_shape=(512, 1024))),
    ]


def template_rows(rounds: int) -> list[tuple[str, float, float]]:
    """(case, template time, loop-IR time): both bound to a preallocated output, timed interleaved."""
    from aisys.compiler import fuse, run_pass
    from aisys.compiler.codegen import build_kernel
    from aisys.framework.graph import Graph, interpret
    rng = np.random.default_rng(0)
    rows = []
    for name, build, shapes, old in template_cases():
        g = Graph("bench")
        ids = [g.add_input(f"x{k}", s).id for k, s in enumerate(shapes)]
        g.set_outputs([build(g, *ids)])
        (node,) = [m for m in run_pass(fuse, g).graph.nodes.values() if m.op == "fused"]
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        want = interpret(g, *arrays)[0]
        arrays = [arrays[g.inputs.index(i)] for i in node.inputs]          # in the fused node's operand order
        outs = [np.empty(want.shape, want.dtype) for _ in range(2)]
        new = build_kernel(node)
        calls = [[old.bind(o) for o in outs], [new.bind(o) for o in outs]]   # each into either buffer
        best = [float("inf")] * 2
        for k in (0, 1):                              # compile / load, fault in pages, check
            for c, out in zip(calls[k], outs):
                out.fill(np.nan)
                c(arrays)
                np.testing.assert_allclose(out, want, rtol=2e-6, atol=1e-6, err_msg=name)
        for r in range(rounds):
            for k in ((0, 1) if r % 2 == 0 else (1, 0)):      # alternate who goes first (caches, clocks) and
                call = calls[k][(r // 2 + k) % 2]             # which buffer each writes (its alignment)
                t0 = time.perf_counter()
                call(arrays)
                best[k] = min(best[k], time.perf_counter() - t0)
        rows.append((name, best[0], best[1]))
    return rows


def print_template_rows(rows) -> None:
    print("\nloop-IR kernels vs the templates they replaced (bound to a preallocated output; fastest of the "
          "interleaved rounds)")
    print(f"{'group':<22} {'template':>10} {'loop IR':>10} {'ratio':>7}")
    for name, t_old, t_new in rows:
        print(f"{name:<22} {t_old * 1e3:>8.3f}ms {t_new * 1e3:>8.3f}ms {t_old / t_new:>7.3f}")
    ratios = [t_old / t_new for _, t_old, t_new in rows]
    print(f"geometric mean {float(np.exp(np.mean(np.log(ratios)))):.3f}, worst {min(ratios):.3f} "
          f"(target ≥ 0.95: the loop IR no slower)")


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
    ap.add_argument("--templates", action="store_true", help="only part 2 (loop IR vs the old templates)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds of part 2 (default 30, quick 10)")
    args = ap.parse_args()
    print(f"aisys fusion benchmark — {platform.processor() or platform.machine()}, numpy {np.__version__}, "
          f"one thread")
    rounds = args.rounds or (10 if args.quick else 30)
    if args.templates:
        print_template_rows(template_rows(rounds))
        return
    sizes = [10 ** 6] if args.quick else [10 ** 6, 10 ** 7]
    summary = []
    for n in sizes:
        res = print_chain(n, chain_rows(n, 5 if args.quick else (30 if n <= 10 ** 6 else 10)))
        unfused = res["numpy unfused"][0]
        fused_t, fused_gbs = res["aisys fused, out="]
        summary.append((n, unfused / fused_t, 100 * fused_gbs / res["copy"][1], unfused / res["aisys fused"][0]))
    print_template_rows(template_rows(rounds))
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
