"""Checks for lab 07 — loop optimization, caches, auto-tuning.

7.1 ``tiled_matmul(C, tile_i, tile_j)``: a schedule of the matmul compute ``C`` that tiles (i, j) by the
    given sizes and orders the loops so the tiles stay in the cache; checked for the result (interpreted,
    with tiles that do not divide the shape), the tile sizes used, and simulated L1 misses ≤ ¼ of the
    unscheduled nest's on a Zen 4 L1 (two shapes, two tile sizes).
7.2 ``predict_misses(n, m, W, T, b, lines)``: a closed form for the misses of the lecture's tiled
    ``A[i] += B[j]``; within 10 % of the simulator for A and B in four regimes (A fits the cache or not).
    The lecture's formula (B: m/b) fails.
7.3 ``tune(space, cost, trials=50, seed=0)``: a random or evolutionary search; checked for valid knobs, the
    trial budget, reproducibility, and ≥ 3× fewer simulated cycles than the default schedule (and within
    1.5× of the best point of the space) for two seeds.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject.
"""
from __future__ import annotations

import itertools
import random

from aisys.labkit import Checker, Mistake, register
from aisys.labkit.learner import call as _call

# ---------------------------------------------------------------------------------------------
# 7.1 a tiled matmul schedule
# ---------------------------------------------------------------------------------------------

_MISSES: dict = {}


def _l1_misses(s) -> int:
    from aisys.compiler import loops
    key = str(loops.lower(s))
    if key not in _MISSES:
        _MISSES[key] = loops.CacheSim.preset("zen4").run(loops.trace_addresses(s)).misses(0)
    return _MISSES[key]


def _splits(s, C):
    from aisys.compiler.loops.schedule import Split
    st = s[C]
    return {r.parent.name: r.factor for r in st.relations if isinstance(r, Split)}


@register("7.1", title="A tiled, reordered matmul schedule", lab="07_loops",
          reference="aisys.compiler.loops.recipes:tile_matmul",
          bad=[Mistake("aisys.labkit.checks.lab07:_tile_nothing", says="split i by tile_i"),
               Mistake("aisys.labkit.checks.lab07:_tile_split_only", says="a split alone"),
               Mistake("aisys.labkit.checks.lab07:_tile_k_outermost", says="k outermost"),
               Mistake("aisys.labkit.checks.lab07:_tile_fixed_sizes", says="tile sizes passed in"),
               Mistake("aisys.labkit.checks.lab07:_tile_swapped", says="tile_i splits i"),
               Mistake("aisys.labkit.checks.lab07:_tile_wrong_compute", says="schedule of C")])
def _check_7_1(fn, c: Checker):
    import numpy as np

    from aisys.compiler import loops

    small = loops.gemm_compute(13, 20, 9)
    s, error = _call(fn, small, 4, 8)
    if error is not None or not isinstance(s, loops.Schedule) or s.outputs != [small]:
        c.fail("tiled_matmul(C, 4, 8) on a 13×20×9 matmul", expected="a loops.Schedule of C",
               got=error or repr(s), hint="return loops.Schedule(C) after your steps: a schedule of C itself")
    a = c.rng.standard_normal((13, 9)).astype(np.float32)
    b = c.rng.standard_normal((9, 20)).astype(np.float32)
    c.close(loops.interpret(s, a, b), a @ b, "13×20×9 with 4×8 tiles (neither divides: guards), interpreted",
            rtol=1e-4, atol=1e-4, hint="reorder and split only; the result must stay A @ B")
    sp = _splits(s, small)
    c.true(sp.get("i") == 4 and sp.get("j") == 8, "the tiles are 4 rows (i) by 8 columns (j)",
           expected="i split by 4, j split by 8", got=f"splits {sp or 'none'}",
           hint="tile_i splits i (rows), tile_j splits j (columns)" if (sp.get("i"), sp.get("j")) == (8, 4)
           else "split i by tile_i and j by tile_j (s.tile does both and orders the loops)" if not sp
           else "use the tile sizes passed in (tile_i, tile_j), not sizes of your own")
    for (M, N, K), (ti, tj) in [((128, 96, 112), (16, 32)), ((96, 128, 80), (32, 16))]:
        C = loops.gemm_compute(M, N, K)
        s, error = _call(fn, C, ti, tj)
        if error is not None:
            c.fail(f"tiled_matmul on {M}×{N}×{K}", expected="a schedule", got=error)
        order = [v.name for v in s[C].leaves]
        naive = _l1_misses(loops.Schedule(C))
        mine = _l1_misses(s)
        if order.index("jo") > order.index("ii") if "jo" in order and "ii" in order else False:
            hint = ("a split alone changes nothing about the order memory is touched in: move the tile loops "
                    "(io, jo) outside the point loops (ii, ji)")
        elif order and order[0] == "k":
            hint = "with k outermost every k sweeps all of C: keep k inside the tile loops"
        else:
            hint = "tile i and j, with the tile loops (io, jo) outermost and k inside them"
        c.true(mine * 4 <= naive, f"{M}×{N}×{K}, tiles {ti}×{tj}, loops {', '.join(order)}: L1 misses "
                                  f"(Zen 4, 32 KiB 8-way) ≤ ¼ of the unscheduled nest's {naive}",
               expected=f"≤ {naive // 4}", got=str(mine), hint=hint)


def _tile_nothing(C, tile_i, tile_j):
    from aisys.compiler import loops
    return loops.Schedule(C)


def _tile_split_only(C, tile_i, tile_j):
    from aisys.compiler import loops
    s = loops.Schedule(C)
    s.split("i", tile_i)
    s.split("j", tile_j)
    return s


def _tile_k_outermost(C, tile_i, tile_j):
    from aisys.compiler import loops
    s = loops.Schedule(C)
    io, jo, ii, ji = s.tile("i", "j", tile_i, tile_j)
    s.reorder("k", io, jo, ii, ji)
    return s


def _tile_fixed_sizes(C, tile_i, tile_j):
    from aisys.compiler.loops.recipes import tile_matmul
    return tile_matmul(C, 16, 16)


def _tile_swapped(C, tile_i, tile_j):
    from aisys.compiler.loops.recipes import tile_matmul
    return tile_matmul(C, tile_j, tile_i)


def _tile_wrong_compute(C, tile_i, tile_j):
    from aisys.compiler import loops
    from aisys.compiler.loops.recipes import tile_matmul
    return tile_matmul(loops.gemm_compute(*C.shape, C.reduce_axis[0].extent), tile_i, tile_j)


# ---------------------------------------------------------------------------------------------
# 7.2 a closed-form miss predictor for the lecture's tiled A[i] += B[j]
# ---------------------------------------------------------------------------------------------

REGIMES = [  # (n, m, W, T, b, lines): A does not fit first, then A fits
    (2048, 512, 64, 128, 8, 64),
    (1024, 1024, 32, 128, 16, 48),
    (256, 4096, 64, 256, 8, 128),
    (512, 2048, 32, 128, 16, 64),
]
_SIMULATED: dict = {}


def simulate_tiled_sum(n, m, W, T, b, lines) -> dict:
    """The simulator's count for the lecture's tiled A[i] += B[j] (float32, lines of b elements)."""
    key = (n, m, W, T, b, lines)
    if key not in _SIMULATED:
        from aisys.compiler import loops
        s = loops.lecture_tiling(n, m, W, T)
        rep = loops.CacheSim([dict(size=lines * 4 * b, ways=lines, line=4 * b)]).run(loops.trace_addresses(s))
        _SIMULATED[key] = {"A": rep.misses(0, "A"), "B": rep.misses(0, "B")}
    return _SIMULATED[key]


def _near(x, y) -> bool:
    return abs(x - y) <= 0.1 * y


@register("7.2", title="A closed-form miss predictor for the tiled A[i] += B[j]", lab="07_loops",
          reference="aisys.compiler.loops.recipes:tiled_sum_misses",
          bad=[Mistake("aisys.labkit.checks.lab07:_pred_lecture", says="m/b"),
               Mistake("aisys.labkit.checks.lab07:_pred_T_for_W", says="n/W, not n/T"),
               Mistake("aisys.labkit.checks.lab07:_pred_untiled", says="stays in the cache"),
               Mistake("aisys.labkit.checks.lab07:_pred_no_zeroing", says="zeroing"),
               Mistake("aisys.labkit.checks.lab07:_pred_first_tile", says="first tile"),
               Mistake("aisys.labkit.checks.lab07:_pred_elements", says="W/b lines")])
def _check_7_2(fn, c: Checker):
    for n, m, W, T, b, lines in REGIMES:
        got, error = _call(fn, n, m, W, T, b, lines)
        sim = simulate_tiled_sum(n, m, W, T, b, lines)
        what = (f"n={n}, m={m}, W={W}, T={T}, b={b}, a {lines}-line cache (A {'fits' if n // b <= lines else 'does not fit'}): "
                f"simulated A {sim['A']}, B {sim['B']}")
        if error is not None or not isinstance(got, dict) or set(got) != {"A", "B"}:
            c.fail(what, expected="{'A': misses, 'B': misses}", got=error or repr(got))
        gb, ga = got["B"], got["A"]
        if not _near(gb, sim["B"]):
            hint = ("the lecture's m/b counts a single pass over B, but B is streamed again for every tile of i"
                    if _near(gb, m / b) else
                    "a new B tile is loaded for every (i_o, j_o) pair: the number of i tiles is n/W, not n/T"
                    if _near(gb, n * m / (T * b)) else
                    "a B tile stays in the cache across the W rows of an i tile: only the i tiles re-read B"
                    if _near(gb, n * m / b) else "count how often each line of B is loaded: once per tile of i")
            c.fail(what + ": B's misses within 10 %", expected=sim["B"], got=gb, hint=hint)
        if not _near(ga, sim["A"]):
            hint = ("the lowered nest runs a zeroing loop over A first (the init nest printed above): that pass "
                    "misses n/b, and the tiles are reloaded after it" if _near(ga, n / b) else
                    "when all of A fits in the cache, its first tile is still there after the zeroing pass"
                    if _near(ga, 2 * n / b) else
                    "a tile of A is W elements, i.e. W/b lines, loaded once per i tile"
                    if ga < n / b or _near(ga, n / b + n / W) else
                    "A: the zeroing pass, then one load of each i tile")
            c.fail(what + ": A's misses within 10 %", expected=sim["A"], got=ga, hint=hint)
        c.true(True, what + f": predicted A {ga}, B {gb}")


def _pred_lecture(n, m, W, T, b, lines):
    return {"A": n // b, "B": m // b}


def _pred_T_for_W(n, m, W, T, b, lines):
    return {"A": 2 * n // b, "B": n * m // (T * b)}


def _pred_untiled(n, m, W, T, b, lines):
    return {"A": 2 * n // b, "B": n * m // b}


def _pred_no_zeroing(n, m, W, T, b, lines):
    return {"A": n // b, "B": n * m // (W * b)}


def _pred_first_tile(n, m, W, T, b, lines):
    return {"A": 2 * n // b, "B": n * m // (W * b)}


def _pred_elements(n, m, W, T, b, lines):
    return {"A": n // b + n // W, "B": n * m // (W * b)}


# ---------------------------------------------------------------------------------------------
# 7.3 an auto-tuner
# ---------------------------------------------------------------------------------------------

ORDERS = {"io jo ii k ji": ("io", "jo", "ii", "k", "ji"), "io jo k ii ji": ("io", "jo", "k", "ii", "ji"),
          "io jo ii ji k": ("io", "jo", "ii", "ji", "k"), "k io jo ii ji": ("k", "io", "jo", "ii", "ji")}
SPACE = {"tile_i": [1, 2, 4, 8, 16, 32, 64], "tile_j": [1, 2, 4, 8, 16, 32, 64], "order": list(ORDERS)}
DEFAULT = {"tile_i": 1, "tile_j": 1, "order": "io jo ii ji k"}       # the unscheduled i, j, k nest
_CYCLES: dict = {}


def tuning_sim():
    """A small two-level hierarchy for a 64³ matmul (1 KiB L1, 8 KiB L2): the lab's tuning target."""
    from aisys.compiler import loops
    return loops.CacheSim([dict(size=1024, ways=4, line=64, latency=4), dict(size=8192, ways=8, line=64, latency=14)],
                          memory_latency=200)


def tuning_schedule(tile_i, tile_j, order):
    from aisys.compiler import loops
    s = loops.Schedule(loops.gemm_compute(64, 64, 64))
    s.tile("i", "j", tile_i, tile_j)
    s.reorder(*ORDERS[order])
    return s


def simulated_cycles(knobs: dict) -> int:
    """The cost the lab tunes: simulated cycles of the 64³ matmul under ``knobs`` (memoized)."""
    from aisys.compiler import loops
    key = tuple(sorted(knobs.items()))
    if key not in _CYCLES:
        _CYCLES[key] = tuning_sim().run(loops.trace_addresses(tuning_schedule(**knobs))).cycles
    return _CYCLES[key]


@register("7.3", title="An auto-tuner: 50 trials, 3× fewer cycles", lab="07_loops",
          reference="aisys.compiler.loops.tune:search",
          bad=[Mistake("aisys.labkit.checks.lab07:_tune_no_compare", says="keep the knobs with the fewest"),
               Mistake("aisys.labkit.checks.lab07:_tune_argmax", says="you kept the most"),
               Mistake("aisys.labkit.checks.lab07:_tune_grid", says="at most trials"),
               Mistake("aisys.labkit.checks.lab07:_tune_unseeded", says="same seed"),
               Mistake("aisys.labkit.checks.lab07:_tune_step_values", says="one of its choices"),
               Mistake("aisys.labkit.checks.lab07:_tune_one_knob", says="every knob")])
def _check_7_3(fn, c: Checker):
    default = simulated_cycles(DEFAULT)
    toy = {"x": list(range(12)), "y": ["a", "b", "c"]}

    def toy_cost(k):
        return (k["x"] - 7) ** 2 + {"a": 3, "b": 0, "c": 5}[k["y"]] + 1
    for seed in (0, 1):
        seen: list = []
        got, error = _call(fn, toy, lambda k: seen.append(dict(k)) or toy_cost(k), trials=12, seed=seed)
        what = f"a toy space (12 × 3 points, best x=7, y='b'), trials=12, seed={seed}"
        if error is not None or not isinstance(got, dict):
            c.fail(what, expected="a dict of knobs", got=error or repr(got))
        bad = [k for k in seen + [got] if set(k) != set(toy) or any(k[n] not in toy[n] for n in toy)]
        c.true(not bad, what + ": every knob value evaluated or returned is one of its choices",
               expected="values from space", got=f"{bad[0] if bad else ''}",
               hint="every knob value must be one of its choices in space (pick from the list, don't compute it)")
        c.true(len(seen) <= 12, what + ": at most 12 cost evaluations", expected="≤ 12", got=len(seen),
               hint="the search may call cost at most trials times")
        c.true(got in seen and toy_cost(got) == min(toy_cost(k) for k in seen),
               what + ": the returned knobs are the cheapest evaluated", expected="the cheapest evaluated",
               got=f"{got} (cost {toy_cost(got)}) while {min(seen, key=toy_cost)} cost {min(map(toy_cost, seen))}"
               if seen else "nothing evaluated",
               hint="you kept the most expensive: fewest cycles wins" if seen and toy_cost(got) ==
               max(map(toy_cost, seen)) and len(set(map(toy_cost, seen))) > 1 else
               "compare the costs: keep the knobs with the fewest cycles")
        again = []
        got2, _ = _call(fn, toy, lambda k: again.append(dict(k)) or toy_cost(k), trials=12, seed=seed)
        c.true(again == seen and got2 == got, what + ": the same seed gives the same search",
               expected=f"{len(seen)} evaluations, the same ones", got=f"{len(again)} evaluations, "
               f"{'the same' if again == seen else 'different'} ones",
               hint="use the seed (random.Random(seed)): the same seed must give the same search")
    for seed in (0, 1):
        seen = []
        got, error = _call(fn, SPACE, lambda k: seen.append(dict(k)) or simulated_cycles(k), trials=50, seed=seed)
        if error is not None or not isinstance(got, dict):
            c.fail(f"tuning the 64³ matmul, seed={seed}", expected="a dict of knobs", got=error or repr(got))
        c.true(len(seen) <= 50, f"tuning the 64³ matmul, seed={seed}: at most 50 evaluations", expected="≤ 50",
               got=len(seen), hint="the search may call cost at most trials times")
        c.true(len({tuple(sorted(k.items())) for k in seen}) > 1 and len({k[n] for k in seen for n in ["tile_j"]}) > 1,
               f"seed={seed}: the search varies every knob", expected="several values of each knob",
               got=f"{len(seen)} evaluations", hint="vary every knob, not only the first")
        mine = simulated_cycles(got)
        c.true(mine * 3 <= default, f"tuning the 64³ matmul (1 KiB L1, 8 KiB L2), seed={seed}: {got} takes "
                                    f"{mine} simulated cycles, the default {DEFAULT} {default}",
               expected=f"≤ {default // 3} (3× fewer)", got=mine,
               hint="keep the knobs with the fewest simulated cycles, and vary every knob")


def _tune_no_compare(space, cost, trials=50, seed=0):
    rng = random.Random(seed)
    tried = [{n: rng.choice(v) for n, v in space.items()} for _ in range(trials)]
    for k in tried:
        cost(k)
    return tried[0]


def _tune_argmax(space, cost, trials=50, seed=0):
    rng = random.Random(seed)
    tried = [{n: rng.choice(v) for n, v in space.items()} for _ in range(trials)]
    return max(tried, key=cost)


def _tune_grid(space, cost, trials=50, seed=0):
    return min((dict(zip(space, p)) for p in itertools.product(*space.values())), key=cost)


def _tune_unseeded(space, cost, trials=50, seed=0):
    rng = random.Random()
    tried = [{n: rng.choice(v) for n, v in space.items()} for _ in range(trials)]
    return min(tried, key=cost)


def _tune_step_values(space, cost, trials=50, seed=0):
    """Anneals by stepping numbers (x ± 1, x · 2) instead of moving along the list of choices."""
    rng = random.Random(seed)
    cur = {n: v[0] for n, v in space.items()}
    best, best_cost = cur, cost(cur)
    for _ in range(trials - 1):
        nxt = {n: (v * 2 + rng.choice((0, 1)) if isinstance(v, int) else rng.choice(space[n])) for n, v in best.items()}
        cst = cost(nxt)
        if cst < best_cost:
            best, best_cost = nxt, cst
    return best


def _tune_one_knob(space, cost, trials=50, seed=0):
    rng = random.Random(seed)
    names = list(space)
    base = {n: v[0] for n, v in space.items()}
    tried = []
    for _ in range(trials):
        k = dict(base)
        k[names[0]] = rng.choice(space[names[0]])
        tried.append(k)
    return min(tried, key=cost)
