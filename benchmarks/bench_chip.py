"""Chip simulator benchmarks: how fast each level of the model answers.

Run:  .venv/bin/python benchmarks/bench_chip.py [--quick]

Tables printed:
  1. Analytic model: every conv/GEMM layer of ResNet-18 (224x224, batch 1; 20 convs + the FC) through
     ``systolic_gemm`` on 32x32 and 128x128 arrays, for each dataflow; time per network and per layer.
     Target: the whole network in under 50 ms.
  2. Cycle-level array (``run_systolic``, numba): PE-cycles simulated per second on 8x8 and 16x16
     arrays, per dataflow, without recording activity (and with, for animation-sized runs).
     Target: at least 1e7 PE-cycles/s.
  3. Event-driven program simulation: LeNet-5 lowered to tile programs and simulated on each preset
     (lowering and simulation time, instructions, simulated cycles); plus ResNet-18 on tpu_v1.
Everything runs on one thread; times are the best of several repeats after a warm-up run.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import aisys.chip as chip  # noqa: E402
from aisys.models import lenet_layers  # noqa: E402


def best_of(fn, repeats: int) -> float:
    fn()                                   # warm-up (numba compile or cache load, imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def analytic_table(repeats: int) -> None:
    layers = chip.resnet18_layers()
    gemms = [layer.gemm for layer in layers]
    print(f"1. Analytic systolic model: ResNet-18, {len(gemms)} GEMM-shaped layers "
          f"({sum(M * N * K for M, N, K in gemms) / 1e9:.3f} GMAC)")
    print(f"   {'array':<8} {'dataflow':<8} {'mode':<9} {'network':>10} {'per layer':>10} {'cycles':>14} "
          f"{'util':>6}  target < 50 ms")
    for rows in (32, 128):
        for df in ("os", "ws", "is"):
            for mode in ("scalesim", "tpu"):
                def run():
                    return [chip.systolic_gemm(M, N, K, rows, rows, df, mode) for M, N, K in gemms]
                t = best_of(run, repeats)
                reps = run()
                cycles = sum(r.compute_cycles for r in reps)
                util = sum(r.macs for r in reps) / (cycles * rows * rows)
                ok = "ok" if t < 0.05 else "SLOW"
                print(f"   {f'{rows}x{rows}':<8} {df:<8} {mode:<9} {1e3 * t:>8.3f} ms {1e6 * t / len(gemms):>7.1f} us "
                      f"{cycles:>14,} {100 * util:>5.1f}%  {ok}")
    print()


def functional_table(quick: bool) -> None:
    print("2. Cycle-level array (numba): PE-cycles per second   target >= 1e7")
    print(f"   {'array':<7} {'dataflow':<8} {'mode':<10} {'GEMM':<12} {'record':<6} {'cycles':>9} "
          f"{'PE-cycles':>12} {'wall':>9} {'PE-cycles/s':>12}")
    rng = np.random.default_rng(0)
    sizes = [(8, 64), (16, 128)] if quick else [(8, 64), (16, 128), (16, 256)]
    for R, n in sizes:
        A = rng.integers(-8, 8, (n, n))
        B = rng.integers(-8, 8, (n, n))
        for df in ("os", "ws", "is"):
            for mode in ("scalesim", "tpu"):
                chip.run_systolic(A[:4, :4], B[:4, :4], R, R, df, mode, record=False)   # compile / load cache
                runs = [chip.run_systolic(A, B, R, R, df, mode, record=False) for _ in range(3)]
                run = min(runs, key=lambda r: r.wall_seconds)
                assert np.array_equal(run.result, A @ B)
                ok = "ok" if run.pe_cycles_per_second >= 1e7 else "SLOW"
                print(f"   {R}x{R:<4} {df:<8} {mode:<10} {f'{n}x{n}x{n}':<12} {'no':<6} {run.elapsed_cycles:>9,} "
                      f"{run.pe_cycles:>12,} {1e3 * run.wall_seconds:>7.1f} ms {run.pe_cycles_per_second:>12.3g}  {ok}")
    A = rng.integers(-8, 8, (24, 24))
    B = rng.integers(-8, 8, (24, 24))
    chip.run_systolic(A, B, 8, 8, "ws", "tpu", record=True)
    run = min((chip.run_systolic(A, B, 8, 8, "ws", "tpu", record=True) for _ in range(3)),
              key=lambda r: r.wall_seconds)
    print(f"   {'8x8':<7} {'ws':<8} {'tpu':<10} {'24x24x24':<12} {'yes':<6} {run.elapsed_cycles:>9,} "
          f"{run.pe_cycles:>12,} {1e3 * run.wall_seconds:>7.2f} ms {run.pe_cycles_per_second:>12.3g}  (animation size)")
    print()


def program_table(repeats: int) -> None:
    print("3. Event-driven program simulation")
    print(f"   {'network':<10} {'chip':<11} {'instr':>6} {'lower':>9} {'simulate':>9} {'sim. cycles':>12} "
          f"{'time at clock':>14} {'achieved':>10} {'util':>6}")
    cases = [("LeNet-5", lenet_layers(), name) for name in ("davinci", "tiny", "scalesim32", "tpu_v1")]
    cases.append(("ResNet-18", chip.resnet18_layers(), "tpu_v1"))
    for label, layers, name in cases:
        t_lower = best_of(lambda: chip.lower_layers(layers, name), repeats)
        prog = chip.lower_layers(layers, name)
        t_sim = best_of(lambda: chip.simulate(prog), repeats)
        res = chip.simulate(prog)
        print(f"   {label:<10} {name:<11} {len(prog.instructions):>6} {1e3 * t_lower:>7.2f} ms {1e3 * t_sim:>7.2f} ms "
              f"{res.cycles:>12,} {1e6 * res.time_s:>11.2f} us {res.achieved_tops:>6.3g} TOPS "
              f"{100 * res.utilization:>5.1f}%")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    print(f"aisys chip benchmarks — Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, one thread\n")
    analytic_table(repeats)
    functional_table(args.quick)
    program_table(repeats)


if __name__ == "__main__":
    main()
