"""Checks for lab 13 — cluster scheduling and multi-tenancy.

13.1 ``easy_backfill(now, free, running, queue)``: EASY backfilling's reservation rule; golden cases by
     hand (the gang behind which FIFO idles, extra GPUs, a job ending exactly at the shadow time, estimates
     vs true durations, jobs started at the head), a hypothesis property (the head's reserved start never
     moves later, the answer equals EASY's), and a golden trace whose utilization must beat FIFO's.
13.2 ``drf_allocate(capacity, demands, weights=None)``: Dominant Resource Fairness by progressive filling;
     the DRF paper's example (dominant shares equalise at 2/3), GPU+CPU+memory, weights, a tenant that
     drops out while the other keeps filling, 30 seeded cases.
13.3 ``place(free, n, cluster)``: a topology-aware placement rule; validity on random free lists, best fit,
     one rack when one rack can hold the gang, and — by the α-β cost model — a communication-heavy gang
     placed by the rule runs faster than spread, also inside the simulator.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject.
"""
from __future__ import annotations

from dataclasses import dataclass

from aisys.labkit import Checker, register
from aisys.labkit.learner import call as _call, first_failure as _first_failure
from aisys.labkit.learner import hypothesis_settings as _hypothesis_settings


# ---------------------------------------------------------------------------------------------
# 13.1 EASY backfilling
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Queued:
    """A waiting job as the rule sees it; ``duration`` is the true run time, which a scheduler cannot know."""
    name: str
    num_gpus: int
    estimate: float
    duration: float | None = None

    def __repr__(self) -> str:
        return f"{self.name}({self.num_gpus} GPUs, est {self.estimate:g} s)"


def _names(got):
    if not isinstance(got, (list, tuple)) or not all(isinstance(j, Queued) for j in got):
        return f"not a list of queued jobs: {got!r}"
    return [j.name for j in got]


def _head_start(now, free, running, started, head):
    """When the head could start if ``started`` began now (by estimates): EASY's shadow time for it."""
    from aisys.cluster.policies import reservation
    return reservation(now, free - sum(j.num_gpus for j in started), running, started, head)[0]


BACKFILL_CASES = [
    # (now, free, running, queue, expected names, what, hint)
    (0.0, 4, [], [Queued("A", 2, 10), Queued("B", 1, 5)], ["A", "B"],
     "everything fits: start from the head in order",
     "jobs at the head of the queue start while they fit, before any reservation"),
    (2.0, 2, [(100.0, 2)], [Queued("G", 4, 50), Queued("S", 1, 10), Queued("L", 1, 200)], ["S"],
     "the lab's gang G waits for the 2 GPUs that free at t=100: S (ends at 12) jumps ahead, L (ends at 202) "
     "would delay G",
     lambda got: ("that is plain FIFO, which stops at the head: backfilling lets S start now, as it ends (t=12) "
                  "before the head's reservation at the shadow time (t=100)" if "S" not in got else
                  "L ends at t=202, after G's reservation at the shadow time (t=100), on a GPU G needs: a later job "
                  "may start only if it ends by then or uses GPUs the head will not need")),
    (0.0, 3, [(100.0, 4)], [Queued("G", 5, 50), Queued("A", 1, 500), Queued("B", 1, 500), Queued("C", 1, 500)],
     ["A", "B"], "at the shadow time 7 GPUs are free and G needs 5: 2 extra GPUs, so A and B may run long, C not",
     "long jobs may use only the *extra* GPUs (free at the shadow time beyond the head's need), and each one "
     "uses them up"),
    (0.0, 1, [(50.0, 3)], [Queued("G", 4, 10), Queued("X", 1, 50)], ["X"],
     "X ends exactly at the shadow time t=50: it does not delay G",
     "a job that ends *at* the shadow time is fine: now + estimate <= shadow"),
    (0.0, 1, [(30.0, 1)], [Queued("G", 2, 10), Queued("Y", 1, 40, duration=20)], [],
     "Y's estimate (40 s) runs past the shadow time t=30, though its true duration (20 s) would not",
     "the scheduler knows only the user's estimate (.estimate); the true duration is not known in advance"),
    (0.0, 4, [(100.0, 4)], [Queued("A", 2, 10), Queued("G", 4, 50), Queued("S", 2, 30)], ["A"],
     "A starts at the head and ends at t=10, when G can start: S (to t=30) would delay G",
     "jobs started at the head this very moment also end (now + their estimate): count them when you look "
     "for the shadow time"),
]


@register("13.1", title="EASY backfilling's reservation rule", lab="13_cluster",
          reference="aisys.cluster.policies:easy_backfill",
          bad=[("aisys.labkit.checks.lab13:_backfill_none", 'plain FIFO'),
               ("aisys.labkit.checks.lab13:_backfill_no_reservation", 'a later job may start only if'),
               ("aisys.labkit.checks.lab13:_backfill_extra_not_used_up", 'each one uses them up'),
               ("aisys.labkit.checks.lab13:_backfill_strictly_before_shadow", 'now + estimate <= shadow'),
               ("aisys.labkit.checks.lab13:_backfill_true_duration", "only the user's estimate"),
               ("aisys.labkit.checks.lab13:_backfill_forgets_started", 'jobs started at the head')])
def _check_13_1(fn, c: Checker):
    from hypothesis import given, strategies as st

    from aisys import cluster as cl
    from aisys.cluster.policies import easy_backfill as reference

    for now, free, running, queue, expected, what, hint in BACKFILL_CASES:
        got, error = _call(fn, now, free, list(running), list(queue))
        named = _names(got) if error is None else error
        c.equal(named, expected, what=f"{what}  [now={now:g}, free={free}, running={running}, queue={queue}]",
                hint=hint(named) if callable(hint) else hint)

    jobs = st.builds(lambda i, n, e: Queued(f"J{i}", n, float(e)), st.integers(0, 99), st.integers(1, 8),
                     st.integers(1, 120))

    @_hypothesis_settings(60)
    @given(free=st.integers(0, 8), running=st.lists(st.tuples(st.integers(1, 100).map(float), st.integers(1, 4)),
                                                    max_size=4),
           queue=st.lists(jobs, min_size=1, max_size=6, unique_by=lambda j: j.name))
    def same_as_easy(failures, free, running, queue):
        got, error = _call(fn, 0.0, free, list(running), list(queue))
        want = reference(0.0, free, list(running), list(queue))
        state = f"free={free}, running={running}, queue={queue}"
        if error is not None or _names(got) != _names(want):
            failures.append(f"{state}: returned {error or _names(got)}, EASY starts {_names(want)}")
            raise AssertionError
        fifo = []
        room = free
        for j in queue:
            if j.num_gpus > room:
                break
            fifo.append(j)
            room -= j.num_gpus
        if len(fifo) < len(queue):
            head = queue[len(fifo)]
            if _head_start(0.0, free, running, got, head) > _head_start(0.0, free, running, fifo, head):
                failures.append(f"{state}: starting {_names(got)} delays the head {head!r}")
                raise AssertionError

    failure = _first_failure(same_as_easy)
    c.true(failure is None, what="hypothesis: 60 random states — the same jobs as EASY, and the head's reserved "
                                 "start never moves later", expected="EASY's choice", got=failure,
           hint="start the head jobs that fit; reserve for the first that does not; backfill only jobs that fit now "
                "and end by the shadow time or fit in the extra GPUs")

    cluster = cl.Cluster.uniform(nodes=2, gpus_per_node=4)
    trace = cl.synthetic_trace(200, "philly", seed=5, cluster=cluster, load=0.9)
    fifo = cl.simulate(cluster, trace, "fifo")
    easy = cl.simulate(cluster, trace, "backfill")
    try:
        mine = cl.simulate(cluster, trace, cl.Backfill(rule=fn))
    except NotImplementedError:
        raise
    except Exception as exc:
        c.fail("a golden trace (200 Philly-shaped jobs on 8 GPUs) with your rule in the simulator",
               expected="a report", got=f"{type(exc).__name__}: {exc}")
        return
    c.true(mine.utilization > fifo.utilization and abs(mine.utilization - easy.utilization) < 1e-9
           and abs(mine.jct_mean - easy.jct_mean) < 1e-6,
           what=f"a golden trace (200 Philly-shaped jobs on 8 GPUs): utilization {mine.utilization:.1%} with your "
                f"rule vs FIFO {fifo.utilization:.1%}",
           expected=f"EASY's {easy.utilization:.1%} and mean JCT {easy.jct_mean:.0f} s",
           got=f"{mine.utilization:.1%}, mean JCT {mine.jct_mean:.0f} s")


def _backfill_none(now, free, running, queue):
    """Mistake: plain FIFO — stop at the first job that does not fit."""
    started = []
    for j in queue:
        if j.num_gpus > free:
            break
        started.append(j)
        free -= j.num_gpus
    return started


def _backfill_no_reservation(now, free, running, queue):
    """Mistake: start every job that fits (first fit), with no reservation for the head."""
    started = []
    for j in queue:
        if j.num_gpus <= free:
            started.append(j)
            free -= j.num_gpus
    return started


def _backfill_extra_not_used_up(now, free, running, queue):
    """Mistake: long jobs use the extra GPUs but do not use them up, so several take the same ones."""
    from aisys.cluster.policies import easy_backfill
    head_jobs = _backfill_none(now, free, running, queue)
    if len(head_jobs) == len(queue):
        return head_jobs
    head, left = queue[len(head_jobs)], free - sum(j.num_gpus for j in head_jobs)
    started = list(head_jobs)
    for job in queue[len(head_jobs) + 1:]:      # each later job judged alone against the same reservation
        if job.num_gpus <= left and job in easy_backfill(now, free, running, head_jobs + [head, job]):
            started.append(job)
            left -= job.num_gpus
    return started


def _backfill_strictly_before_shadow(now, free, running, queue):
    """Mistake: a job must end strictly before the shadow time (``<``), though ending at it is harmless."""
    from dataclasses import replace

    from aisys.cluster.policies import easy_backfill
    later = [replace(j, estimate=j.estimate + 1e-6) for j in queue]     # ending at the shadow now counts as after
    return [queue[later.index(j)] for j in easy_backfill(now, free, running, later)]


def _backfill_true_duration(now, free, running, queue):
    """Mistake: uses the job's true duration, which a real scheduler does not know."""
    from dataclasses import replace

    from aisys.cluster.policies import easy_backfill
    known = [replace(j, estimate=j.duration) if j.duration is not None else j for j in queue]
    return [queue[known.index(j)] for j in easy_backfill(now, free, running, known)]


def _backfill_forgets_started(now, free, running, queue):
    """Mistake: the jobs just started at the head are left out when finding the shadow time."""
    from aisys.cluster.policies import easy_backfill
    head_jobs = _backfill_none(now, free, running, queue)
    rest = queue[len(head_jobs):]
    return head_jobs + easy_backfill(now, free - sum(j.num_gpus for j in head_jobs), running, rest)


# ---------------------------------------------------------------------------------------------
# 13.2 DRF
# ---------------------------------------------------------------------------------------------

def _tasks(got):
    if not isinstance(got, dict):
        return f"not a dict: {got!r}"
    try:
        return {k: int(v) for k, v in got.items()}
    except (TypeError, ValueError):
        return f"not {{tenant: number of tasks}}: {got!r}"


DRF_CASES = [
    # (capacity, demands, weights, expected, what, hint)
    ({"cpu": 9, "mem": 18}, {"A": {"cpu": 1, "mem": 4}, "B": {"cpu": 3, "mem": 1}}, None, {"A": 3, "B": 2},
     "the DRF paper's example: 9 CPUs, 18 GB; A's tasks <1 CPU, 4 GB>, B's <3 CPUs, 1 GB> — both end at dominant "
     "share 2/3",
     "a tenant's dominant share is its LARGEST share over the resources, each divided by the capacity; always "
     "serve the tenant whose dominant share is smallest"),
    ({"gpu": 16, "cpu": 64, "mem": 256}, {"vision": {"gpu": 1, "cpu": 8, "mem": 16},
                                          "nlp": {"gpu": 2, "cpu": 2, "mem": 32}}, None,
     {"vision": 6, "nlp": 5},
     "GPU, CPU and memory: vision's tasks are CPU-heavy (dominant: CPU), nlp's GPU- and memory-heavy",
     "compare dominant shares, not GPU counts: one vision task costs 1/8 of the CPUs, one nlp task 1/8 of the GPUs"),
    ({"gpu": 12}, {"A": {"gpu": 1}, "B": {"gpu": 1}}, {"B": 2}, {"A": 4, "B": 8},
     "weights: B's weight 2 lets it reach twice A's share",
     "divide each tenant's dominant share by its weight before comparing"),
    ({"gpu": 10, "cpu": 16}, {"big": {"gpu": 4, "cpu": 1}, "small": {"gpu": 1, "cpu": 1}}, None,
     {"big": 1, "small": 6},
     "big's second task no longer fits: big drops out and small keeps filling the GPUs it can use",
     "skip a tenant whose next task does not fit, and go on with the others until nobody's task fits "
     "(DRF is Pareto-efficient: nothing usable is left idle)"),
]


@register("13.2", title="DRF: dominant-share allocation", lab="13_cluster",
          reference="aisys.cluster.fairness:drf_allocate",
          bad=[("aisys.labkit.checks.lab13:_drf_gpu_only", 'LARGEST share'),
               ("aisys.labkit.checks.lab13:_drf_sum_of_shares", 'progressive filling'),
               ("aisys.labkit.checks.lab13:_drf_raw_amounts", 'compare dominant shares'),
               ("aisys.labkit.checks.lab13:_drf_round_robin", 'by its weight'),
               ("aisys.labkit.checks.lab13:_drf_stops_at_first_misfit", 'skip a tenant whose next task does not fit'),
               ("aisys.labkit.checks.lab13:_drf_ignores_weights", 'by its weight')])
def _check_13_2(fn, c: Checker):
    from aisys.cluster.fairness import dominant_share, drf_allocate as reference

    for capacity, demands, weights, expected, what, hint in DRF_CASES:
        args = (capacity, demands) if weights is None else (capacity, demands, weights)
        got, error = _call(fn, *args)
        c.equal(_tasks(got) if error is None else error, expected, what=what, hint=hint)
    a = dominant_share({"cpu": 3, "mem": 12}, DRF_CASES[0][0])
    b = dominant_share({"cpu": 6, "mem": 2}, DRF_CASES[0][0])
    c.close(a, b, what="the paper's example: A's dominant share 12/18 (memory) equals B's 6/9 (CPU) = 2/3", rtol=1e-12)

    rng = c.rng
    resources = ["gpu", "cpu", "mem"]
    for case in range(30):
        capacity = {r: float(rng.integers(8, 65)) for r in resources}
        tenants = [f"t{i}" for i in range(int(rng.integers(2, 5)))]
        demands = {t: {r: float(rng.integers(0, 9)) for r in resources} for t in tenants}
        for t in tenants:
            demands[t]["gpu"] = max(demands[t]["gpu"], 1.0)
        weights = {t: float(rng.integers(1, 4)) for t in tenants} if case % 2 else None
        args = (capacity, demands) if weights is None else (capacity, demands, weights)
        got, error = _call(fn, *args)
        want = reference(*args)
        if error is not None or _tasks(got) != want:
            c.equal(_tasks(got) if error is None else error, want,
                    what=f"seeded case {case}: capacity {capacity}, tasks {demands}, weights {weights}",
                    hint="progressive filling: repeat — the smallest weighted dominant share among tenants whose next "
                         "task still fits (ties: the tenant listed first) gets one more task")
    c.true(True, what="30 seeded cases with 2-4 tenants, three resources, with and without weights")


def _progressive(capacity, demands, weights=None, *, share=None, skip=True):
    """Progressive filling with a pluggable share function (the bad variants change it)."""
    from aisys.cluster.fairness import dominant_share
    share = share or dominant_share
    weights = weights or {}
    used = {r: 0.0 for r in capacity}
    usage = {t: {r: 0.0 for r in capacity} for t in demands}
    tasks = {t: 0 for t in demands}
    active = list(demands)
    while active:
        t = min(active, key=lambda u: share(usage[u], capacity) / weights.get(u, 1.0))
        need = demands[t]
        if all(used[r] + need.get(r, 0) <= capacity[r] + 1e-9 for r in capacity):
            for r in capacity:
                used[r] += need.get(r, 0)
                usage[t][r] += need.get(r, 0)
            tasks[t] += 1
        elif skip:
            active.remove(t)
        else:
            break
    return tasks


def _drf_gpu_only(capacity, demands, weights=None):
    """Mistake: fair share of one resource (GPUs) only, ignoring CPUs and memory."""
    first = "gpu" if "gpu" in capacity else next(iter(capacity))
    return _progressive(capacity, demands, weights, share=lambda u, cap: u.get(first, 0) / cap[first])


def _drf_sum_of_shares(capacity, demands, weights=None):
    """Mistake: adds the shares of all resources instead of taking the largest."""
    return _progressive(capacity, demands, weights,
                        share=lambda u, cap: sum(u.get(r, 0) / cap[r] for r in cap if cap[r]))


def _drf_raw_amounts(capacity, demands, weights=None):
    """Mistake: compares raw amounts (GB against CPUs), not shares of each resource's capacity."""
    return _progressive(capacity, demands, weights, share=lambda u, cap: max(u.values(), default=0))


def _drf_round_robin(capacity, demands, weights=None):
    """Mistake: one task per tenant in turn, whatever their shares."""
    used = {r: 0.0 for r in capacity}
    tasks = {t: 0 for t in demands}
    active = list(demands)
    while active:
        for t in list(active):
            need = demands[t]
            if all(used[r] + need.get(r, 0) <= capacity[r] + 1e-9 for r in capacity):
                for r in capacity:
                    used[r] += need.get(r, 0)
                tasks[t] += 1
            else:
                active.remove(t)
    return tasks


def _drf_stops_at_first_misfit(capacity, demands, weights=None):
    """Mistake: stops as soon as the poorest tenant's task does not fit, leaving usable resources idle."""
    return _progressive(capacity, demands, weights, skip=False)


def _drf_ignores_weights(capacity, demands, weights=None):
    """Mistake: accepts weights but does not use them."""
    return _progressive(capacity, demands, None)


# ---------------------------------------------------------------------------------------------
# 13.3 a topology-aware placement rule
# ---------------------------------------------------------------------------------------------

def _placement_problem(fn, free, n, cluster):
    """(answer, None) for a valid placement, else (None, what is wrong)."""
    from aisys.cluster.placement import check_placement
    got, error = _call(fn, dict(free), n, cluster)
    if error is not None:
        return None, error
    try:
        return check_placement(got, free, n, getattr(fn, "__name__", "place")), None
    except (TypeError, ValueError) as exc:
        return None, str(exc)


@register("13.3", title="A placement rule that beats spreading", lab="13_cluster",
          reference="aisys.cluster.placement:topology_aware",
          bad=[("aisys.cluster.placement:spread", 'best fit'),
               ("aisys.cluster.placement:pack", 'oversubscribed spine'),
               ("aisys.labkit.checks.lab13:_place_first_fit", 'never split a gang'),
               ("aisys.labkit.checks.lab13:_place_worst_fit", 'best fit'),
               ("aisys.labkit.checks.lab13:_place_takes_all_free", 'at most free[node]'),
               ("aisys.labkit.checks.lab13:_place_ignores_free_counts", 'at most free[node]')])
def _check_13_3(fn, c: Checker):
    from hypothesis import given, strategies as st

    from aisys import cluster as cl

    @_hypothesis_settings(40)
    @given(free=st.lists(st.integers(0, 8), min_size=1, max_size=8), frac=st.floats(0.01, 1.0))
    def valid(failures, free, frac):
        cluster = cl.Cluster.uniform(nodes=len(free), gpus_per_node=8, racks=min(2, len(free)))
        offered = {f"n{i}": f for i, f in enumerate(free) if f}
        if not offered:
            return
        n = max(1, int(frac * sum(offered.values())))
        _, problem = _placement_problem(fn, offered, n, cluster)
        if problem:
            failures.append(f"free={offered}, n={n}: {problem}")
            raise AssertionError

    failure = _first_failure(valid)
    c.true(failure is None, what="hypothesis: 40 random free lists — exactly n GPUs, only from nodes offered, "
                                 "never more than a node has free", expected="valid placements", got=failure,
           hint="return {node name: GPUs taken}; the counts add up to n and each is at most free[node]")

    two = cl.Cluster.uniform(nodes=2, gpus_per_node=8)
    six = cl.Cluster.uniform(nodes=6, gpus_per_node=8, racks=2)      # r0: n0-n2, r1: n3-n5
    five = cl.Cluster.uniform(nodes=5, gpus_per_node=8, racks=2)     # r0: n0-n2, r1: n3-n4
    four = cl.Cluster.uniform(nodes=4, gpus_per_node=8, racks=2)     # r0: n0-n1, r1: n2-n3
    cases = [
        (two, {"n0": 2, "n1": 8}, 2, {"n0": 2}, "a 2-GPU gang: n0 has exactly 2 free, n1 is empty",
         "best fit: the node with the fewest free GPUs that still holds the gang keeps n1 whole for an 8-GPU gang"),
        (two, {"n0": 3, "n1": 5}, 4, {"n1": 4}, "a 4-GPU gang fits on n1 alone",
         "one node means the all-reduce runs on NVLink: never split a gang that one node can hold"),
        (six, {"n0": 2, "n1": 8, "n2": 3, "n3": 6, "n4": 6, "n5": 7}, 12, {"n5": 7, "n3": 5},
         "12 GPUs: no node holds them; rack r1 can (n5 + n3), while the two roomiest nodes (n1, n5) sit in "
         "different racks", "do not cross the oversubscribed spine when one rack can hold the gang"),
        (five, {"n0": 4, "n1": 4, "n2": 4, "n3": 6, "n4": 6}, 12, {"n3": 6, "n4": 6},
         "12 GPUs: rack r0 needs 3 nodes, rack r1 only 2", "inside a rack, take the nodes with the most free GPUs "
         "first, and pick the rack that needs the fewest nodes"),
        (four, {"n0": 8, "n1": 2, "n2": 6, "n3": 1}, 14, {"n0": 8, "n2": 6},
         "14 GPUs: no rack holds them; two racks are unavoidable, and two nodes suffice",
         "when the gang must cross racks, use as few racks as possible and as few nodes inside them"),
    ]
    for cluster, free, n, expected, what, hint in cases:
        got, problem = _placement_problem(fn, free, n, cluster)
        c.equal(problem or got, expected, what=f"{what}  [free={free}]", hint=hint)

    # the cost model: a communication-heavy gang on a busy 4-rack cluster
    racks = cl.Cluster.preset("four_racks_v100")
    vgg = cl.MODELS["vgg16"]
    busy = {0: 6, 1: 5, 2: 8, 3: 3, 4: 2, 5: 8, 6: 4, 7: 7, 8: 8, 9: 3, 10: 4, 11: 6, 12: 5, 13: 2, 14: 1, 15: 4}
    free = {node.name: node.num_gpus - busy[i] for i, node in enumerate(racks.nodes) if node.num_gpus - busy[i]}

    def hours(rule, n):
        taken, problem = _placement_problem(rule, free, n, racks)
        if problem:
            return None, problem
        gpus = []
        for name, k in taken.items():
            first = racks.node_first_gpu[racks.node_index[name]]
            gpus.extend(range(first + racks.nodes[racks.node_index[name]].num_gpus - free[name], first
                              + racks.nodes[racks.node_index[name]].num_gpus - free[name] + k))
        return 1.0 / cl.rate(racks, vgg, gpus, n), None

    for n in (8, 12):
        mine, problem = hours(fn, n)
        spread, _ = hours(cl.spread, n)
        best, _ = hours(cl.topology_aware, n)
        c.true(problem is None and mine <= best + 1e-9 and mine < spread,
               what=f"VGG-16 on {n} GPUs of a busy four_racks_v100 (α-β model): a 1-hour packed job takes "
                    f"{best:.2f} h placed well, {spread:.2f} h spread",
               expected=f"{best:.2f} h", got=problem or f"{mine:.2f} h",
               hint="fewer nodes and no spine crossing mean the ring all-reduce runs on faster links")

    trace = [cl.Job(i, 600.0 * i, [8, 12, 16, 4][i % 4], 3600.0, model=["vgg16", "bert_large"][i % 2])
             for i in range(24)]
    try:
        with_rule = cl.simulate(racks, trace, "fifo", fn)
    except NotImplementedError:
        raise
    except Exception as exc:
        c.fail("24 communication-heavy gangs on four_racks_v100 with your rule in the simulator",
               expected="a report", got=f"{type(exc).__name__}: {exc}")
        return
    spread = cl.simulate(racks, trace, "fifo", "spread")
    topo = cl.simulate(racks, trace, "fifo", "topology")
    c.true(with_rule.jct_mean <= topo.jct_mean + 1e-6 and with_rule.jct_mean < spread.jct_mean,
           what=f"24 communication-heavy gangs in the simulator: mean JCT {with_rule.jct_mean / 3600:.2f} h with "
                f"your rule, {spread.jct_mean / 3600:.2f} h spread",
           expected=f"{topo.jct_mean / 3600:.2f} h", got=f"{with_rule.jct_mean / 3600:.2f} h")


def _place_first_fit(free, n, cluster):
    """Mistake: takes GPUs node by node in cluster order, splitting gangs that one node could hold."""
    taken = {}
    for name in sorted(free, key=cluster.node_index.get):
        if n <= 0:
            break
        k = min(free[name], n)
        taken[name], n = k, n - k
    return taken


def _place_worst_fit(free, n, cluster):
    """Mistake: the emptiest node first (the load-balancing instinct), which breaks up whole nodes."""
    taken = {}
    for name in sorted(free, key=lambda nm: (-free[nm], cluster.node_index[nm])):
        if n <= 0:
            break
        k = min(free[name], n)
        taken[name], n = k, n - k
    return taken


def _place_takes_all_free(free, n, cluster):
    """Mistake: takes every free GPU of each node it uses, even past the gang's size."""
    from aisys.cluster.placement import topology_aware
    return {name: free[name] for name in topology_aware(free, n, cluster)}


def _place_ignores_free_counts(free, n, cluster):
    """Mistake: puts the whole gang on the roomiest node, whether or not it has n free GPUs."""
    return {max(free, key=lambda nm: (free[nm], -cluster.node_index[nm])): n}
