"""The compiler at scale (issue 13): compile time as graphs grow, and what compiled code gains at run time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_compile.py            # everything (~1 min)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_compile.py --quick    # fewer sizes and repeats
    ... --profile                    # and where the compiled MLP step spends its time, node by node

1. Compile time. One traced SGD training step of nn.Sequential of L × (Linear(32, 32), ReLU), batch 64
   (``aisys.compiler.memory.workloads.sgd_training_graph``: 76 ops at L = 4 … 4,360 at L = 256): the default
   pass pipeline, then memory planning (greedy by size) of the optimized graph, in CPU seconds of this
   process (what other jobs on a shared machine do not inflate; wall seconds beside them). Targets: passes
   + planning of the largest graph ≤ 1.0 s, and the log-log slope of that time from the smallest to the
   largest graph ≤ 1.2 (linear is 1.0, quadratic 2.0).
2. The fused chain relu(x·w + b)·s over n float32 elements (n = 1e6, 1e7): the generated kernel writing into
   a preallocated array (bare), the compiled call returning arena views (``output_views=True``: the kernel
   writes its planned slot), the compiled call by default (the kernel writes an output buffer the caller
   then owns, reused once the caller dropped it: result dropped at once, and ``y = f(x)`` in a loop, which
   holds the last result during the next call), and np.copyto. GB/s counts the chain's minimal 16·n bytes
   (the copy's 8·n). Target: the compiled call, default and views, ≥ 0.85 of copy bandwidth.
3. One training step of an MLP 784-256-128-10 (batch 64, cross-entropy, SGD; the models and weights of
   benchmarks/bench_train.py): aisys eager, aisys compiled, PyTorch eager (when importable). Targets:
   compiled ≤ 0.80 × PyTorch, ≤ 0.85 × aisys eager.
4. The depth-256 narrow MLP of part 1 (4,360 ops): eager step vs compiled step. Target: compiled ≤ eager.
5. ``import aisys`` over ``import numpy`` (fresh interpreters, median), with the installed ml_dtypes version,
   with Python's bytecode cache (every import after the first) and without (compiled from source: the first
   import after an install or edit). Target ≤ 0.15 s (cached).

Times are the best of several repeats (the least-disturbed run; the implementations of one row are
interleaved so machine load hits them alike), one thread. Nothing is asserted: the table says met/missed.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import aisys  # noqa: E402
from aisys.compiler import PassManager, default_pipeline  # noqa: E402
from aisys.compiler.memory import plan_memory  # noqa: E402
from aisys.compiler.memory.workloads import sgd_mlp_step, sgd_training_graph  # noqa: E402


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def best(fns: dict, repeats: int, inner: int = 1) -> dict:
    """Best per-call seconds of each function, the functions interleaved round by round."""
    for f in fns.values():
        f()
    out = {k: math.inf for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            out[k] = min(out[k], (time.perf_counter() - t0) / inner)
    return out


# ---- 1. compile time --------------------------------------------------------------------------------
def compile_time(layers, repeats: int) -> list[tuple]:
    rows = []
    for n_layers in layers:
        g = sgd_training_graph(n_layers)
        tp = tm = wall = math.inf
        for _ in range(repeats):
            w0, t0 = time.perf_counter(), time.process_time()
            log = PassManager(default_pipeline()).run(g)
            t1 = time.process_time()
            plan_memory(log.graph)
            t2, w2 = time.process_time(), time.perf_counter()
            tp, tm, wall = min(tp, t1 - t0), min(tm, t2 - t1), min(wall, w2 - w0)
        rows.append((len(g.op_nodes), len(log.graph.op_nodes), tp, tm, wall))
    return rows


def print_compile_time(rows) -> None:
    print("1. Compile time: SGD training step of L x (Linear(32,32), ReLU), batch 64 (CPU seconds of this process)")
    print(f"{'ops':>6} {'after':>6} {'passes s':>9} {'planning s':>11} {'total s':>8} {'wall s':>7}")
    for n, after, tp, tm, wall in rows:
        print(f"{n:>6} {after:>6} {tp:>9.3f} {tm:>11.3f} {tp + tm:>8.3f} {wall:>7.3f}")
    (n0, _, a, b, _), (n1, _, c, d, _) = rows[0], rows[-1]
    slope = math.log((c + d) / (a + b)) / math.log(n1 / n0)
    print(f"   largest graph: {c + d:.3f} s for passes + planning (target <= 1.0 s: {verdict(c + d <= 1.0)}); "
          f"log-log slope {n0} -> {n1} ops: {slope:.2f} (target <= 1.2: {verdict(slope <= 1.2)})\n")


# ---- 2. the fused chain -----------------------------------------------------------------------------
def chain(n: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    s = np.float32(0.5)

    def f(x, w, b, s):
        return (x * w + b).relu() * s

    args = [aisys.tensor(a) for a in (x, w, b)] + [aisys.tensor(s)]
    views = aisys.compile(f, *args, output_views=True)
    copies = aisys.compile(f, *args)
    (nid,) = [k for k in views.executable.kernels]
    kern, out = views.executable.kernels[nid], np.empty(n, np.float32)
    src = rng.standard_normal(n).astype(np.float32)
    dst = np.empty_like(src)
    held = [None]

    def loop():                                  # y = f(x): the last result is held while the next is computed
        held[0] = copies.run_arrays(x, w, b, s)

    t = best({"bare kernel, out=": lambda: kern(x, w, b, s, out=out),
              "compiled (views)": lambda: views.run_arrays(x, w, b, s),
              "compiled (default)": lambda: copies.run_arrays(x, w, b, s),
              "compiled (y = f(x))": loop,
              "copy": lambda: np.copyto(dst, src)}, repeats)
    np.testing.assert_allclose(views.run_arrays(x, w, b, s)[0], np.maximum(x * w + b, 0) * s, rtol=1e-6)
    return {k: (v, (8 if k == "copy" else 16) * n / v / 1e9) for k, v in t.items()}


def print_chain(n: int, rows: dict) -> None:
    copy_gbs = rows["copy"][1]
    print(f"2. relu(x*w + b)*s, n = {n:.0e} float32")
    print(f"{'':<22} {'ms':>8} {'GB/s':>7} {'of copy':>8}")
    for k, (t, gbs) in rows.items():
        print(f"{k:<22} {t * 1e3:>8.3f} {gbs:>7.1f} {gbs / copy_gbs:>8.2f}")
    r = min(rows[k][1] for k in ("compiled (views)", "compiled (default)", "compiled (y = f(x))")) / copy_gbs
    print(f"   compiled call (slowest of views, default, y = f(x)) {r:.2f} of copy bandwidth "
          f"(target >= 0.85: {verdict(r >= 0.85)})\n")


# ---- 3. the MLP training step -----------------------------------------------------------------------
def mlp_step(repeats: int, profile: bool = False) -> tuple:
    import bench_train as bt
    from aisys.framework import optim

    weights = bt.init_weights(bt.mlp_shapes(bt.SIZES["mlp"]))
    x, y = bt.make_inputs("mlp", 64)
    fns = {"aisys eager": bt.aisys_step_fn("mlp", weights, x, y)}
    model = bt.AisysMLP(bt.SIZES["mlp"])
    model.load_state_dict(dict(zip(model.state_dict(), weights.values())))
    opt = optim.SGD(model.parameters(), lr=bt.LR)

    def step(X, Y):
        loss = aisys.nn.functional.cross_entropy(model(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    X, Y = aisys.tensor(x), aisys.tensor(y)
    compiled = aisys.compile(step, X, Y, params=model)
    first = float(compiled(X, Y).item()), fns["aisys eager"]()
    if abs(first[0] - first[1]) > 1e-4 * max(1.0, abs(first[1])):
        raise AssertionError(f"compiled and eager first-step losses differ: {first}")
    fns["aisys compiled"] = lambda: compiled(X, Y)
    rows = compiled.executable.node_times(X, Y, params=compiled._live_params(), calls=20) if profile else None
    if bt.torch is not None:
        fns["torch eager"] = bt.torch_step_fn("mlp", weights, x, y)
    return best(fns, repeats, inner=10), rows


def print_node_times(rows, top: int = 12) -> None:
    """``--profile``: where one compiled call spends its time, node by node (Executable.node_times)."""
    total = sum(t for _, t in rows)
    print(f"   per node (of {total * 1e3:.3f} ms per call; every node timed, so the call is a little slower):")
    for n, t in rows[:top] + [r for r in rows[top:] if isinstance(r[0], str)]:
        what = n if isinstance(n, str) else f"%{n.id} {n.op}" + (f" {'+'.join(n.attrs['ops'])}" if n.op == "fused" else "") + \
            f" {tuple(n.shape)}"
        print(f"   {what:<44} {t * 1e6:9.1f} us {t / total:6.1%}")


def print_mlp(result) -> None:
    t, rows = result
    print("3. MLP 784-256-128-10 training step, batch 64")
    for k, v in t.items():
        print(f"{k:<16} {v * 1e3:8.3f} ms")
    if rows:
        print_node_times(rows)
    r_eager = t["aisys compiled"] / t["aisys eager"]
    line = f"   compiled / aisys eager {r_eager:.2f} (target <= 0.85: {verdict(r_eager <= 0.85)})"
    if "torch eager" in t:
        r_torch = t["aisys compiled"] / t["torch eager"]
        line += f"; compiled / PyTorch eager {r_torch:.2f} (target <= 0.80: {verdict(r_torch <= 0.80)})"
    else:
        line += "; (torch is not installed: no PyTorch column)"
    print(line + "\n")


# ---- 4. the deep narrow MLP -------------------------------------------------------------------------
def deep_mlp(layers: int, repeats: int) -> dict:
    eager, x, y, _ = sgd_mlp_step(layers)
    step, _, _, model = sgd_mlp_step(layers)                 # the same weights, a model of its own
    compiled = aisys.compile(step, x, y, params=model)
    return best({"eager": lambda: eager(x, y), "compiled": lambda: compiled(x, y)}, repeats, inner=3)


def print_deep(layers: int, t: dict) -> None:
    r = t["compiled"] / t["eager"]
    print(f"4. Depth-{layers} narrow MLP training step (Linear(32,32)+ReLU, batch 64): eager {t['eager'] * 1e3:.2f} ms, "
          f"compiled {t['compiled'] * 1e3:.2f} ms, ratio {r:.2f} (target <= 1.0: {verdict(r <= 1.0)})\n")


# ---- 5. import time ---------------------------------------------------------------------------------
def import_time(runs: int = 7) -> dict:
    """Seconds ``import aisys`` takes after ``import numpy`` in a fresh interpreter, median of ``runs``:
    "cached" with Python's bytecode cache in place (what a user sees on every import after the first: pip
    and an editable install write it), and "from source" with no bytecode cache (the first import after an
    install or an edit: Python compiles every module). A private PYTHONPYCACHEPREFIX keeps both apart from
    the tree's own caches (and works where PYTHONDONTWRITEBYTECODE is set)."""
    import statistics
    import tempfile
    code = ("import time; t0 = time.perf_counter(); import numpy; t1 = time.perf_counter(); import aisys; "
            "t2 = time.perf_counter(); import sys; print(t2 - t1, t1 - t0, 'ml_dtypes' in sys.modules)")
    out = {}
    with tempfile.TemporaryDirectory() as cached, tempfile.TemporaryDirectory() as empty:
        for label, prefix, write in (("cached", cached, True), ("from source", empty, False)):
            env = dict(os.environ, PYTHONPYCACHEPREFIX=prefix)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if write:
                subprocess.run([sys.executable, "-c", "import aisys"], env=env, check=True)   # writes the cache
            else:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            over, numpy_s = [], []
            for _ in range(runs):
                res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout.split()
                if res[2] != "False":
                    raise AssertionError("import aisys imported ml_dtypes")
                over.append(float(res[0]))
                numpy_s.append(float(res[1]))
            out[label] = (statistics.median(over), statistics.median(numpy_s))
    return out


def print_import_time(t: dict) -> None:
    try:
        from importlib.metadata import version
        mld = version("ml_dtypes")
    except Exception:                      # not installed under that name
        mld = "?"
    print(f"5. import aisys over import numpy (fresh interpreters, median; ml_dtypes {mld}, not imported)")
    for label, (over, numpy_s) in t.items():
        print(f"{label:<12} import numpy {numpy_s:.3f} s, then import aisys {over:.3f} s")
    over = t["cached"][0]
    print(f"   import aisys {over:.3f} s over numpy with the bytecode cache (target <= 0.15 s: "
          f"{verdict(over <= 0.15)}); {t['from source'][0]:.3f} s when Python compiles it from source")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    ap.add_argument("--profile", action="store_true", help="print where the compiled MLP step spends its time")
    args = ap.parse_args()
    q = args.quick
    print(f"aisys {getattr(aisys, '__version__', '')} on {os.uname().machine}, numpy {np.__version__}, one thread\n")
    print_compile_time(compile_time((4, 64, 256) if q else (4, 16, 64, 128, 256), 1 if q else 3))
    for n in ((10**6,) if q else (10**6, 10**7)):
        print_chain(n, chain(n, 5 if q else 15))
    print_mlp(mlp_step(5 if q else 15, profile=args.profile))
    print_deep(256, deep_mlp(256, 3 if q else 7))
    print_import_time(import_time(5 if q else 9))


if __name__ == "__main__":
    main()
