"""aisys.onnx: ONNX's own backend node tests per operator, and the cost of bringing a ResNet-18 onto the chip.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_onnx.py [--no-suite]

1. For every operator aisys.onnx converts: how many of ONNX's backend node tests (``onnx.backend.test``,
   shipped in the onnx wheel) pass through ``aisys.onnx.Backend``, fail, or are excluded — each exclusion
   with its written reason (``aisys/frontend/onnx/conformance.py``).
2. The ResNet-18 topology (11.7 M parameters, built with onnx.helper, 1×3×224×224): aisys.onnx.load, the
   default pass pipeline and the chip lowering, each in seconds and as a ratio to the time onnxruntime takes
   to create an inference session for the same model (its own load + graph optimization), measured in the
   same run. Target: load + passes + lowering under 2 s.
"""
from __future__ import annotations

import collections
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import aisys  # noqa: E402
import aisys.onnx  # noqa: E402
from aisys.compiler import default_pipeline, run_passes  # noqa: E402
from aisys.frontend.onnx import conformance, examples  # noqa: E402


def suite_table() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = conformance.node_tests()
    counts = collections.defaultdict(lambda: [0, 0, 0])
    failures, reasons = [], collections.Counter()
    for op, case in cases:
        why = conformance.exclusion_reason(case.name)
        if why:
            counts[op][2] += 1
            reasons[why] += 1
            continue
        try:
            conformance.run_case(case)
            counts[op][0] += 1
        except Exception as exc:          # a failure is reported, not hidden
            counts[op][1] += 1
            failures.append(f"{case.name}: {type(exc).__name__}: {str(exc)[:160]}")
    print(f"ONNX backend node tests through aisys.onnx.Backend (onnx {__import__('onnx').__version__})")
    print(f"{'operator':22s} {'pass':>5s} {'fail':>5s} {'excluded':>9s}")
    for op in sorted(counts):
        p, f, e = counts[op]
        print(f"{op:22s} {p:5d} {f:5d} {e:9d}")
    tot = [sum(v[k] for v in counts.values()) for k in range(3)]
    print(f"{'total':22s} {tot[0]:5d} {tot[1]:5d} {tot[2]:9d}   ({len(counts)} operators)")
    print("\nexcluded, and why:")
    for why, n in reasons.most_common():
        print(f"  {n:4d}  {why}")
    for f in failures:
        print("FAIL", f)


def best(fn, n=3):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), out


def resnet18_table() -> None:
    model = examples.resnet18(seed=0)
    data = model.SerializeToString()
    t_load, g = best(lambda: aisys.onnx.load(data))
    t_pass, log = best(lambda: run_passes(g, default_pipeline()))
    t_lower, _ = best(lambda: aisys.chip.lower_graph(log.graph, "davinci"))
    total = t_load + t_pass + t_lower
    print(f"\nResNet-18 ({sum(p.numel for p in g.params()) / 1e6:.1f} M params, {len(model.graph.node)} ONNX nodes, "
          f"{len(data) / 1e6:.0f} MB): {len(g.op_nodes)} ops imported, {len(log.graph.op_nodes)} after the passes")
    try:
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        t_ort, _ = best(lambda: ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"]))
    except ImportError:
        t_ort = None
    print(f"{'step':34s} {'seconds':>8s} {'÷ onnxruntime session':>22s}")
    rows = [("aisys.onnx.load", t_load), ("default pass pipeline", t_pass), ("chip.lower_graph (davinci)", t_lower),
            ("total (target < 2 s)", total)]
    for name, t in rows:
        ratio = f"{t / t_ort:22.2f}" if t_ort else f"{'(onnxruntime absent)':>22s}"
        print(f"{name:34s} {t:8.3f} {ratio}")
    if t_ort:
        print(f"{'onnxruntime InferenceSession':34s} {t_ort:8.3f} {1.0:22.2f}")


if __name__ == "__main__":
    if "--no-suite" not in sys.argv:
        suite_table()
    resnet18_table()
