"""Loop back-end benchmark: GEMM schedules from the loop IR vs numpy's BLAS, the cache simulator's speed, tuning.

    .venv/bin/python benchmarks/bench_loops.py            # n = 512 and 1024
    .venv/bin/python benchmarks/bench_loops.py --quick    # n = 512 only, fewer repeats
    .venv/bin/python benchmarks/bench_loops.py --tuning   # part 3 only: model-guided vs random search

Part 1 — float32 C = A·B, n×n×n, one thread. Compared, each measured in this run:

  numpy (BLAS)     a @ b (OpenBLAS on a standard numpy wheel)
  tuned            aisys.compiler.loops.gemm(n, n, n, "tuned"): B packed per 32-column panel, a 4×32 block of C
                   in registers (cache_write + unroll + vectorize), compiled by numba with LLVM's SLP vectorizer
  tuned 8×32       the same recipe with an 8×32 register block (16 of AVX-512's 32 vector registers)
  blocked          32×32 tiles, k outside the tile's 16-wide vectorized columns
  naive            the unscheduled i, j, k nest (n = 512 only: it takes seconds)

"× BLAS" is the time ratio (≥ 0.9 is the issue's target); "% peak" divides GFLOP/s by this core's fp32 peak,
flops/cycle × clock: flops/cycle = 2 (FMA) × SIMD lanes × FMA pipes from /proc/cpuinfo's flags and a table of
cores (an assumption, printed), the clock measured by a chain of dependent FMAs (4-cycle latency).

Part 2 — the cache simulator (Zen 4 preset, three levels) on a 256³ blocked GEMM's address stream: accesses
per second (target ≥ 2e7); and 50 annealing trials of tile sizes and loop order for a 256³ GEMM on the
simulator (target < 30 s).

Part 3 — the learned cost model: for a 256³ GEMM (gemm_template: 288 knob settings — an mr×nr tile of C with
mr ≤ 4 and nr ≤ 32, k split, loop order, the tile in registers, B packed), the best cost found after N measured trials by model-guided search
(Tuner.model_search: a CostModel ranks every candidate, the best few are measured) and by random search, same
seeds; "model / random" < 1 means the model found the better schedule. Measured on the simulator (cycles,
Zen 4 preset) and in real time (the numba kernel, median of 3, one thread). Then the model's rank correlation
(Spearman) on held-out trials: fitted on 16 random trials, it ranks 24 others, next to the analytic estimate
alone (the model unfitted). Part 3 takes about 15 minutes (a 256³ trial simulates 67 M accesses).

Times are the best CPU time of this one-threaded process over several repeats after a warm-up call (which
compiles): time spent descheduled on a shared machine does not count.
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

from aisys.compiler import loops  # noqa: E402


def best_time(fn, repeats: int) -> float:
    """Best CPU time of this (single-threaded) process over ``repeats`` calls after a warm-up: on a machine
    shared with other work, time spent descheduled does not count."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def measured_clock_ghz() -> float:
    """The core's clock while busy: a chain of dependent fused multiply-adds, 4 cycles each (the FMA latency
    of Zen 2-4 and of Intel cores since Skylake)."""
    import numba

    @numba.njit(fastmath={"contract"})
    def chain(n, a, b):
        x = 1.0
        for _ in range(n):
            x = x * a + b
        return x
    chain(10, 0.5, 0.25)
    n = 50_000_000
    t = best_time(lambda: chain(n, 0.999999, 1e-9), 3)
    return 4 * n / t / 1e9


def core_peak() -> tuple[float, str]:
    """fp32 GFLOP/s of one core, and how it was estimated."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        info = ""
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    amd = "AuthenticAMD" in info
    if "avx512f" in flags:
        per_cycle = 32 if amd else 64        # Zen 4: two 256-bit FMA pipes; Intel server cores: two 512-bit
    elif "fma" in flags and "avx2" in flags:
        per_cycle = 32                       # two 256-bit FMA pipes
    else:
        per_cycle = 8
    ghz = measured_clock_ghz()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return per_cycle * ghz, (f"{per_cycle} flop/cycle ({'AMD' if amd else 'Intel'}, {isa}: 2 FMA pipes × lanes × 2) × "
                             f"{ghz:.2f} GHz (measured: a dependent FMA chain, 4 cycles per FMA)")


def part1(sizes, repeats):
    peak, how = core_peak()
    print(f"fp32 peak of one core ≈ {peak:.0f} GFLOP/s: {how}")
    print(f"{'n':>5s} {'schedule':12s} {'ms':>9s} {'GFLOP/s':>8s} {'× BLAS':>7s} {'% peak':>7s}")
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        flop = 2 * n ** 3
        t_blas = best_time(lambda: a @ b, repeats)
        rows = [("numpy (BLAS)", t_blas)]
        variants = [("tuned", loops.gemm(n, n, n, "tuned")), ("tuned 8×32", loops.gemm(n, n, n, "tuned", mr=8, nr=32)),
                    ("blocked", loops.gemm(n, n, n, "blocked"))]
        if n <= 512:
            variants.append(("naive", loops.gemm(n, n, n, "naive")))
        for name, s in variants:
            f = loops.build(s)
            err = np.abs(f(a, b) - a @ b).max() / np.abs(a @ b).max()
            assert err < 1e-5, f"{name} at n={n}: relative error {err}"
            rows.append((name, best_time(lambda: f(a, b), repeats if name != "naive" else 1)))
        for name, t in rows:
            g = flop / t / 1e9
            print(f"{n:5d} {name:12s} {t * 1e3:9.2f} {g:8.1f} {t_blas / t:7.2f} {100 * g / peak:6.0f}%")


def part2(quick):
    sim = loops.CacheSim.preset("zen4")
    sim.run(np.arange(1000, dtype=np.int64))           # compile
    print()
    for name in ("naive", "blocked"):
        trace = loops.trace_addresses(loops.gemm(256, 256, 256, name))
        t0, c0 = time.perf_counter(), time.process_time()
        rep = sim.run(trace)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(f"cache simulator, {name} 256³ GEMM: {len(trace) / 1e6:.1f} M accesses in {dc:.2f} CPU s = "
              f"{len(trace) / dc:.2e} accesses per CPU second ({len(trace) / dt:.2e}/s wall; target ≥ 2e7); "
              f"L1 misses {rep.misses(0)}")
    if quick:
        return
    C = loops.gemm_compute(256, 256, 256)
    orders = {"io jo ii k ji": ("io", "jo", "ii", "k", "ji"), "io jo k ii ji": ("io", "jo", "k", "ii", "ji"),
              "io jo ii ji k": ("io", "jo", "ii", "ji", "k")}

    def template(ti, tj, order):
        sch = loops.Schedule(C)
        sch.tile("i", "j", ti, tj)
        sch.reorder(*orders[order])
        return sch
    tuner = loops.Tuner(template, dict(ti=[4, 8, 16, 32, 64, 128], tj=[8, 16, 32, 64, 128, 256], order=list(orders)),
                        loops.simulated_cost(sim), seed=0)
    t0, c0 = time.perf_counter(), time.process_time()
    log = tuner.anneal(50)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(f"tuning 50 trials of a 256³ GEMM on the simulator: {dc:.1f} CPU s, {dt:.1f} s wall (target < 30 s); "
          f"{log.summary()}")


def part3(quick):
    from aisys.compiler.loops.tune import CostModel, gemm_template, levels_of, spearman
    n = 256
    template, space = gemm_template(n, n, n, mr=(1, 2, 4), nr=(4, 8, 16, 32))   # register blocks ≤ the recipe's 4×32
    sim = loops.CacheSim.preset("zen4")
    levels, memory = levels_of(sim)
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    measures = {"simulated cycles": loops.simulated_cost(sim), "real time (s)": loops.real_time((a, b), repeats=3)}
    seeds = (0, 1) if quick else (0, 1, 2)
    rt_seeds = (0, 1)
    budgets = (8,) if quick else (8, 16)
    print(f"\nmodel-guided vs random search, {n}³ GEMM, {_space_size(space)} knob settings, seeds {seeds}")
    print(f"{'measure':18s} {'trials':>6s} {'seed':>4s} {'random best':>12s} {'model best':>12s} {'model / random':>14s}")
    for what, base in measures.items():
        if quick and what.startswith("real"):
            continue
        seen = {}

        def measure(s, base=base, seen=seen):      # a nest is measured once across the searches
            key = str(loops.lower(s))
            if key not in seen:
                seen[key] = base(s)
            return seen[key]
        for trials in budgets if what.startswith("sim") else budgets[:1]:
            ratios = []
            for seed in seeds if what.startswith("sim") else rt_seeds:
                r = loops.Tuner(template, space, measure, seed=seed).random(trials, progress=False).best.cost
                m = loops.Tuner(template, space, measure, seed=seed).model_search(
                    trials, model=CostModel(levels=levels, memory=memory), progress=False).best.cost
                ratios.append(m / r)
                print(f"{what:18s} {trials:6d} {seed:4d} {r:12.4g} {m:12.4g} {m / r:14.3f}")
            print(f"{what:18s} {trials:6d} {'all':>4s} {'':12s} {'geomean':>12s} {np.exp(np.mean(np.log(ratios))):14.3f}")
    seen = {}
    sim_measure = measures["simulated cycles"]

    def measure(s):
        key = str(loops.lower(s))
        if key not in seen:
            seen[key] = sim_measure(s)
        return seen[key]
    train = loops.Tuner(template, space, measure, seed=100).random(16, progress=False).trials
    held = loops.Tuner(template, space, measure, seed=101).random(24, progress=False).trials
    cm = CostModel(levels=levels, memory=memory)
    X = [cm.featurize(t.knobs, template(**t.knobs)) for t in train]
    Xh = [cm.featurize(t.knobs, template(**t.knobs)) for t in held]
    prior = spearman(cm.predict(Xh), [t.cost for t in held])
    cm.fit(X, [t.cost for t in train])
    rho = spearman(cm.predict(Xh), [t.cost for t in held])
    print(f"held-out rank correlation (simulated cycles, 24 trials): fitted model {rho:.2f}, "
          f"analytic estimate alone {prior:.2f}")


def _space_size(space) -> int:
    return int(np.prod([len(v) for v in space.values()]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tuning", action="store_true", help="only part 3 (the cost model)")
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}, one thread")
    if not args.tuning:
        part1([512] if args.quick else [512, 1024], 3 if args.quick else 5)
        part2(args.quick)
    part3(args.quick)


if __name__ == "__main__":
    main()
