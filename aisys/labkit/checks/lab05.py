"""Checks for lab 05 — memory planning and the executor.

5.1 ``liveness(graph, schedule)``: live intervals {node id: (first step, last step)} of every op
    result; golden intervals on small graphs, then agreement with the library on random graphs.
5.2 ``plan_offsets(buffers)``: a greedy best-fit offset planner; no two buffers alive at the same
    step may share bytes (property test), and the peak must stay within 1.25× of the lower bound on
    20 seeded sets — stacking everything (the naive sum) fails.
5.3 ``checkpoint_cost(L, k)``: peak activations and recomputed layers when every k-th of L layers
    is checkpointed; golden values, the simulator on every (L, k) up to 30, and k ≈ √L.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject, with the words
its report shows for each.
"""
from __future__ import annotations

from aisys.labkit import Checker, Mistake, register
from aisys.labkit.learner import call as _call, first_failure as _first_failure
from aisys.labkit.learner import hypothesis_settings as _hypothesis_settings


# ---------------------------------------------------------------------------------------------
# 5.1 liveness
# ---------------------------------------------------------------------------------------------

def residual_graph():
    """x → a=relu(x) → b=tanh(a) → c=add(b, a) → d=sum(c); e=neg(a) is never used.

    Outputs: d and b. Node ids: x=%0, a=%1, b=%2, c=%3, e=%4, d=%5.
    """
    import aisys.framework.ops  # noqa: F401
    from aisys.framework.graph import Graph

    g = Graph("residual")
    x = g.add_input("x", (4, 8))
    a = g.add("relu", [x.id])
    b = g.add("tanh", [a.id])
    c = g.add("add", [b.id, a.id])
    g.add("neg", [a.id])
    d = g.add("sum", [c.id], {"dim": 1, "keepdim": True})
    g.set_outputs([d.id, b.id])
    return g


def two_branch_graph():
    """x → a1=tanh(x), b1=sigmoid(x), a2=sum(a1), b2=sum(b1), out=add(a2, b2)  (ids 1..5)."""
    import aisys.framework.ops  # noqa: F401
    from aisys.framework.graph import Graph

    g = Graph("two_branch")
    x = g.add_input("x", (64, 64))
    a1 = g.add("tanh", [x.id])
    b1 = g.add("sigmoid", [x.id])
    a2 = g.add("sum", [a1.id], {"dim": 1, "keepdim": True})
    b2 = g.add("sum", [b1.id], {"dim": 1, "keepdim": True})
    g.set_outputs([g.add("add", [a2.id, b2.id]).id])
    return g


def _as_intervals(got):
    """The learner's answer as {int: (int, int)}, or None when it has another shape."""
    if not isinstance(got, dict):
        return None
    try:
        return {int(k): (int(v[0]), int(v[1])) for k, v in got.items()}
    except (TypeError, ValueError, IndexError):
        return None


def _liveness_hint(got, expected, graph, schedule) -> str:
    """What the difference between the learner's intervals and the right ones says about the mistake."""
    if got is None:
        return "return a dict {node id: (first step, last step)} with one entry per scheduled op node"
    last = len(schedule) - 1
    extra, missing = set(got) - set(expected), set(expected) - set(got)
    if extra:
        return (f"only the op nodes in the schedule get an interval: graph inputs (%0) are not planned "
                f"(extra keys {sorted(extra)})")
    if missing:
        return (f"every scheduled node gets an interval, even {sorted(missing)}: a value nobody reads still "
                f"occupies memory at the step that writes it: (s, s)")
    for n in schedule:
        if got[n][0] != expected[n][0]:
            return (f"%{n} starts at step {got[n][0]}, not {expected[n][0]}: steps are positions in the schedule, "
                    f"not node ids (schedule[s] runs at step s)")
    for n in schedule:
        (gs, ge), (es, ee) = got[n], expected[n]
        if ge != ee:
            if n in graph.outputs:
                return (f"%{n} is a graph output: a graph output must survive until the caller reads it, "
                        f"to the last step ({last})")
            if ge == ee + 1:
                return (f"%{n} ends at {ge}, one step late: the interval is a closed interval [start, end] ending at "
                        f"the step of the last reader")
            return f"%{n} ends at {ge}, not {ee}: end = the step of the last reader (the last one, not the first)"
    return "compare your intervals with the expected ones above"


@register("5.1", title="Liveness: first definition, last use", lab="05_memory",
          reference="aisys.compiler.memory.liveness:liveness",
          bad=[Mistake("aisys.labkit.checks.lab05:_liveness_outputs_die_at_last_use", says="graph output must survive"),
               Mistake("aisys.labkit.checks.lab05:_liveness_with_inputs", says="graph inputs (%0) are not planned"),
               Mistake("aisys.labkit.checks.lab05:_liveness_first_use", says="the step of the last reader"),
               Mistake("aisys.labkit.checks.lab05:_liveness_skips_dead_values", says="a value nobody reads"),
               Mistake("aisys.labkit.checks.lab05:_liveness_node_ids_as_steps", says="positions in the schedule"),
               Mistake("aisys.labkit.checks.lab05:_liveness_half_open", says="closed interval")])
def _check_5_1(fn, c: Checker):
    from aisys.compiler.memory.liveness import default_schedule, liveness as reference
    from aisys.compiler.memory.workloads import random_graph

    g = residual_graph()
    golden = [
        ([1, 2, 3, 5], {1: (0, 2), 2: (1, 3), 3: (2, 3), 5: (3, 3)},
         "residual graph, schedule a b c d: a is read by b and c; b is an output, so it lives to the last step",
         "end = the step of the last reader (a closed interval: the reader still needs the value at its own "
         "step); a graph output must survive until the caller reads it (last step)"),
        ([1, 2, 3, 4, 5], {1: (0, 3), 2: (1, 4), 3: (2, 4), 4: (3, 3), 5: (4, 4)},
         "residual graph, schedule a b c e d: e has no reader, it lives only at its own step",
         "a value nobody reads still occupies memory at the step that writes it: (s, s)"),
    ]
    for schedule, expected, what, hint in golden:
        got, error = _call(fn, g, schedule)
        c.true(error is None, what=f"liveness(graph, {schedule}) runs", expected="a dict", got=error)
        got = _as_intervals(got)
        c.equal(got, expected, what=what, hint=_liveness_hint(got, expected, g, schedule) + "; " + hint)

    t = two_branch_graph()
    for schedule, expected, name in [
        ([1, 2, 3, 4, 5], {1: (0, 2), 2: (1, 3), 3: (2, 4), 4: (3, 4), 5: (4, 4)}, "breadth first"),
        ([1, 3, 2, 4, 5], {1: (0, 1), 3: (1, 4), 2: (2, 3), 4: (3, 4), 5: (4, 4)}, "depth first"),
    ]:
        got, error = _call(fn, t, schedule)
        got = _as_intervals(got) if error is None else None
        c.equal(got if error is None else error, expected, what=f"two-branch graph, {name} schedule {schedule}",
                hint=_liveness_hint(got, expected, t, schedule))

    for seed in range(12):
        r = random_graph(seed, n_ops=20)
        order = default_schedule(r)
        got, error = _call(fn, r, order)
        want = reference(r, order)
        got = _as_intervals(got) if error is None else None
        if error is not None or got != want:
            c.equal(got if error is None else error, want,
                    what=f"random graph #{seed} ({len(order)} ops, outputs {r.outputs})",
                    hint=_liveness_hint(got, want, r, order))
    c.true(True, what="12 random graphs (branches, broadcasts, reductions, several outputs) agree with the library")


def _liveness_outputs_die_at_last_use(graph, schedule):
    """Mistake: outputs are freed after their last reader, before the caller could read them."""
    step = {n: s for s, n in enumerate(schedule)}
    out = {}
    for n in schedule:
        uses = [step[u] for u in schedule if n in graph.nodes[u].inputs]
        out[n] = (step[n], max(uses, default=step[n]))
    return out


def _liveness_with_inputs(graph, schedule):
    """Mistake: the caller's inputs and parameters are planned too."""
    from aisys.compiler.memory.liveness import liveness
    return liveness(graph, schedule, include_inputs=True)


def _liveness_skips_dead_values(graph, schedule):
    """Mistake: a value nobody reads (and that is not an output) gets no interval at all."""
    from aisys.compiler.memory.liveness import liveness
    read = {i for n in schedule for i in graph.nodes[n].inputs} | set(graph.outputs)
    return {n: iv for n, iv in liveness(graph, schedule).items() if n in read}


def _liveness_node_ids_as_steps(graph, schedule):
    """Mistake: uses node ids as time steps, so the schedule's order is ignored."""
    first = min(schedule)
    out = {}
    for n in schedule:
        users = [u for u in schedule if n in graph.nodes[u].inputs]
        end = max(schedule) if n in graph.outputs else max(users, default=n)
        out[n] = (n - first, end - first)
    return out


def _liveness_half_open(graph, schedule):
    """Mistake: end = one past the last reader's step ([start, end) thinking)."""
    from aisys.compiler.memory.liveness import liveness
    last = len(schedule) - 1
    return {n: (s, e if n in graph.outputs else min(e + 1, last)) for n, (s, e) in liveness(graph, schedule).items()}


def _liveness_first_use(graph, schedule):
    """Mistake: a value is freed after its *first* reader instead of its last."""
    step = {n: s for s, n in enumerate(schedule)}
    last = len(schedule) - 1
    out = {}
    for n in schedule:
        uses = [step[u] for u in schedule if n in graph.nodes[u].inputs]
        out[n] = (step[n], last if n in graph.outputs else min(uses, default=step[n]))
    return out


# ---------------------------------------------------------------------------------------------
# 5.2 plan_offsets
# ---------------------------------------------------------------------------------------------

PEAK_TOLERANCE = 1.25
RANDOM_SETS = 20          # random_buffers(30, seed) for seed in range(RANDOM_SETS)


def _plan_or_problem(fn, buffers, alignment=1):
    """(MemoryPlan, None) for a valid answer, else (None, what is wrong)."""
    from aisys.compiler.memory import plan_buffers
    try:
        return plan_buffers(buffers, fn, alignment=alignment), None
    except NotImplementedError:
        raise
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


@register("5.2", title="Greedy best-fit offsets", lab="05_memory",
          reference="aisys.compiler.memory.offset_planners:greedy_by_size_offsets",
          bad=[Mistake("aisys.labkit.checks.lab05:_plan_offsets_naive", says="reuse the bytes"),
               Mistake("aisys.labkit.checks.lab05:_plan_offsets_half_open_lifetimes", says="lifetimes are inclusive"),
               Mistake("aisys.compiler.memory.offset_planners:linear_scan_offsets", says="place the largest buffers first"),
               Mistake("aisys.labkit.checks.lab05:_plan_offsets_smallest_first", says="place the largest buffers first"),
               Mistake("aisys.labkit.checks.lab05:_plan_offsets_always_on_top", says="fit each smaller one into the")])
def _check_5_2(fn, c: Checker):
    from hypothesis import given, strategies as st

    from aisys.compiler.memory import Buffer
    from aisys.compiler.memory.workloads import random_buffers

    example = [Buffer("A", 4, 0, 1), Buffer("B", 2, 1, 2), Buffer("C", 4, 2, 3), Buffer("D", 2, 3, 4),
               Buffer("E", 1, 0, 4)]
    plan, problem = _plan_or_problem(fn, example)
    c.true(problem is None, what="the lab's 5-buffer example is placed safely", expected="a valid placement",
           got=problem, hint="return {buffer name: offset}; buffers alive at a common step need disjoint bytes "
                             "[offset, offset + size); lifetimes are inclusive: a buffer that ends at step s and "
                             "one that starts at step s are both alive at s")
    c.equal(plan.peak_bytes, 7, what="5-buffer example: arena size equals the lower bound (7 bytes live at steps 1-3)",
            hint="reuse the bytes of buffers whose lifetimes have ended")

    online_trap = [Buffer("a", 2, 0, 0), Buffer("b", 2, 0, 2), Buffer("c", 4, 1, 2)]
    plan, problem = _plan_or_problem(fn, online_trap)
    c.equal(plan.peak_bytes if plan else problem, 6,
            what="a dies after step 0 leaving a 2-byte hole the 4-byte c cannot use: lower bound 6",
            hint="place the largest buffers first (greedy by size), then fit each smaller one into the "
                 "smallest gap among already-placed buffers that live at the same time")

    @_hypothesis_settings(40)
    @given(raw=st.lists(st.tuples(st.integers(1, 64), st.integers(0, 20), st.integers(0, 6)), min_size=1,
                        max_size=25))
    def no_overlap(failures, raw):
        bufs = [Buffer(f"t{i}", 64 * size, s, s + d) for i, (size, s, d) in enumerate(raw)]
        _, problem = _plan_or_problem(fn, bufs, alignment=64)
        if problem:
            failures.append(f"{[(b.name, b.size, b.start, b.end) for b in bufs]}: {problem}")
            raise AssertionError(problem)

    failure = _first_failure(no_overlap)
    c.true(failure is None, what="hypothesis: 40 random interval sets, no two live-together buffers share bytes",
           expected="every placement valid", got=f"smallest failing set: {failure}",
           hint="lifetimes are inclusive: [start, end] and [end, later] overlap at step end")

    worst = (0.0, -1)
    for seed in range(RANDOM_SETS):
        plan, problem = _plan_or_problem(fn, random_buffers(30, seed), alignment=64)
        if problem:
            c.fail(f"seeded set #{seed} (30 buffers)", expected="a valid placement", got=problem)
        ratio = plan.peak_bytes / plan.lower_bound_bytes
        worst = max(worst, (ratio, seed))
    c.true(worst[0] <= PEAK_TOLERANCE,
           what=f"{RANDOM_SETS} seeded sets of 30 buffers: peak ≤ {PEAK_TOLERANCE}× the lower bound on every set",
           expected=f"peak / lower bound ≤ {PEAK_TOLERANCE}", got=f"{worst[0]:.3f} on set #{worst[1]}",
           hint="stacking every buffer needs the sum of sizes (≈3× here); going through the program in order "
                "leaves holes too small for later buffers — place the largest buffers first, then fit each "
                "smaller one into the smallest gap between placed buffers that live at the same time (stacking "
                "it on top of them all wastes those gaps)")


def _plan_offsets_naive(buffers):
    """Mistake: no reuse at all; the arena is the sum of all sizes."""
    out, top = {}, 0
    for b in buffers:
        out[b.name], top = top, top + b.size
    return out


def _plan_offsets_smallest_first(buffers):
    """Mistake: best fit, but in increasing size: the big buffers arrive last and find no gap."""
    from aisys.compiler.memory.offset_planners import _best_fit_in_order
    order = sorted(range(len(buffers)), key=lambda i: (buffers[i].size, buffers[i].start))
    return {b.name: int(o) for b, o in zip(buffers, _best_fit_in_order(buffers, order))}


def _plan_offsets_always_on_top(buffers):
    """Mistake: largest first, but always on top of every overlapping buffer (gaps never reused)."""
    out, placed = {}, []
    for b in sorted(buffers, key=lambda b: (-b.size, b.start)):
        out[b.name] = max((out[p.name] + p.size for p in placed if not (p.end < b.start or b.end < p.start)),
                          default=0)
        placed.append(b)
    return out


def _plan_offsets_half_open_lifetimes(buffers):
    """Mistake: treats [start, end] as half-open, so a buffer born at step s reuses one that dies at s."""
    import dataclasses

    from aisys.compiler.memory.offset_planners import greedy_by_size_offsets
    shrunk = [dataclasses.replace(b, end=max(b.start, b.end - 1)) for b in buffers]
    return greedy_by_size_offsets(shrunk)


# ---------------------------------------------------------------------------------------------
# 5.3 checkpoint_cost
# ---------------------------------------------------------------------------------------------

@register("5.3", title="Checkpoint every k of L layers", lab="05_memory",
          reference="aisys.compiler.memory.checkpoint:checkpoint_cost",
          bad=[Mistake("aisys.labkit.checks.lab05:_cost_forgets_minus_one", says="(k − 1) recomputed"),
               Mistake("aisys.labkit.checks.lab05:_cost_recomputes_everything", says="recomputed once"),
               Mistake("aisys.labkit.checks.lab05:_cost_assumes_k_divides_L", says="the last layer is always kept"),
               Mistake("aisys.labkit.checks.lab05:_cost_counts_only_checkpoints", says="(k − 1) recomputed"),
               Mistake("aisys.labkit.checks.lab05:_cost_forgets_the_last_layer", says="the last layer is always kept")])
def _check_5_3(fn, c: Checker):
    import math

    from aisys.compiler.memory.checkpoint import simulate_checkpointing

    def ask(L, k):
        got, error = _call(fn, L, k)
        if error is not None:
            return error
        try:
            return (int(got[0]), int(got[1]))
        except (TypeError, ValueError, IndexError):
            return got

    c.equal(ask(16, 1), (16, 0), what="L=16, k=1: keep every activation, recompute nothing",
            hint="k = 1 is plain training: all L activations are alive when the backward pass starts; with "
                 "L/k checkpoints and (k − 1) recomputed activations per segment, nothing is added at k = 1")
    c.equal(ask(16, 4), (7, 12), what="L=16, k=4: 4 checkpoints + 3 recomputed in the top segment; 12 layers recomputed",
            hint="peak = L/k checkpoints + (k − 1) recomputed activations of one segment; each non-checkpoint "
                 "layer is recomputed once")
    c.equal(ask(100, 10), (19, 90), what="L=100, k=10 = √L: peak 2√L − 1 = 19 (Chen et al. 2016)")
    c.equal(ask(10, 3), (5, 6),
            what="L=10, k=3 (k does not divide L): checkpoints 3, 6, 9, 10; peak in segment (6, 9]",
            hint="the last layer is always kept; a segment (c, c'] needs the checkpoints up to c' plus its "
                 "c' − c − 1 recomputed activations — take the largest over segments")
    for L in range(1, 31):
        for k in range(1, L + 1):
            sim = simulate_checkpointing(L, k)
            want = (sim.peak_bytes, sim.recompute_count)
            got = ask(L, k)
            if got != want:
                c.equal(got, want, what=f"L={L}, k={k} against the step-by-step simulator",
                        hint="simulate: forward keeps checkpoints; backward recomputes one segment at a time")
    c.true(True, what="all 465 (L, k) pairs with L ≤ 30 match the step-by-step simulator")
    L = 64
    peaks = {k: ask(L, k)[0] for k in range(1, L + 1)}
    c.equal((min(peaks.values()), peaks[math.isqrt(L)]), (2 * math.isqrt(L) - 1, 2 * math.isqrt(L) - 1),
            what="L=64: no k beats k = √L = 8, whose peak is 2√L − 1 = 15 activations (vs 64 keeping all)")


def _cost_forgets_minus_one(L, k):
    """Mistake: counts the segment's top activation twice (L/k + k)."""
    return L // k + k, L - L // k


def _cost_recomputes_everything(L, k):
    """Mistake: says every layer is recomputed, the checkpoints too."""
    from aisys.compiler.memory.checkpoint import checkpoint_cost
    return checkpoint_cost(L, k)[0], L if k > 1 else 0


def _cost_assumes_k_divides_L(L, k):
    """Mistake: the divisible-case formula everywhere."""
    return L // k + k - 1, L - L // k


def _cost_counts_only_checkpoints(L, k):
    """Mistake: peak = the kept activations only, forgetting the segment recomputed on top of them."""
    from aisys.compiler.memory.checkpoint import checkpoint_layers
    kept = checkpoint_layers(L, k)
    return len(kept), L - len(kept)


def _cost_forgets_the_last_layer(L, k):
    """Mistake: keeps only k, 2k, …: when k does not divide L the top layers form a segment without its top."""
    kept = list(range(k, L + 1, k))
    bounds = [0] + kept + ([L] if not kept or kept[-1] != L else [])
    peak = max((sum(1 for c in kept if c <= hi) + (hi - lo - 1) for lo, hi in zip(bounds, bounds[1:])), default=L)
    return peak, L - len(kept)
