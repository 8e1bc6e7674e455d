"""Write labs/13_cluster.ipynb (lab 13 — cluster scheduling and multi-tenancy) with nbformat.

Usage:  .venv/bin/python tools/make_labs/lab13.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):  make run-labs ONLY=13
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "13_cluster.ipynb"


def _a100_only_gb() -> float:
    """The memory of the model that fits only the A100 (the text names it)."""
    import aisys.cluster as cl
    v100 = cl.Cluster.preset("two_racks_v100_a100").gpu_type("V100")
    return next(m.mem_gb for m in cl.MODELS.values() if m.mem_gb > v100.mem_gb)


# Quantities the text states that no cell prints (tests/labs/test_lab_content.py checks them).
QUOTED = {"36 GB": _a100_only_gb,
          "40 %": "a setting of this lab, not a result: busy=0.4 in the PlacementView cell that follows"}


CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 13 — Cluster scheduling and multi-tenancy (集群调度与多租户)

Every lab so far ran one model on one device. A real training job lands in a **shared cluster**: racks
of GPUs, often of several generations (异构集群), used by many teams at once (多租户). Before a job
computes anything, a **scheduler** (调度器) decides *when* it starts — it may wait in a queue for hours —
and *where* — which GPUs, on which nodes, behind which links. Those two decisions can change a job's
completion time more than any kernel optimisation in the earlier labs.

**Lectures followed** (ZOMI's *AISystem* course and its *AIInfra* sequel, Apache-2.0):
`06Foundation/02AICluster` (AI 集群: why training needs clusters, data parallelism and its all-reduce),
`AIInfra:01AICluster` (集群的组成: nodes, interconnects, heterogeneous GPUs) and `AIInfra:03DockCloud`
(容器与云原生调度: queues, quotas, gang scheduling). Published work used: job traces of Microsoft
Philly (Jeon et al., ATC 2019), SenseTime Helios (Hu et al., SC 2021) and Alibaba PAI (Weng et al., NSDI
2022); EASY backfilling (Lifka, 1995); Tiresias (Gu et al., NSDI 2019); Dominant Resource Fairness (Ghodsi
et al., NSDI 2011); Gavel (Narayanan et al., OSDI 2020); finish-time fairness from Themis (Mahajan et al.,
NSDI 2020); the ring all-reduce and its α-β cost (Patarasuk & Yuan, 2009).

**Goals.** After this lab you can
- read a cluster as racks, nodes, GPUs and links, and a job as a *gang* (成组调度) of GPUs training a model;
- explain why first-come-first-served leaves GPUs idle while a large gang waits, and fix it with EASY
  backfilling (回填) without delaying that gang;
- see how a policy that knows nothing about durations (Tiresias's least attained service) gets close to one
  that knows them all (shortest remaining time first);
- share a cluster between tenants with Dominant Resource Fairness and quotas (配额), and measure fairness;
- place a gang so that its gradients' all-reduce stays on fast links, and predict what that is worth;
- match jobs to GPU generations (heterogeneity-aware scheduling).

**Exercises.** 13.1 `easy_backfill` · 13.2 `drf_allocate` · 13.3 `place`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or what
went wrong."""),
    (CODE, """\
import io

from aisys import cluster as cl
from aisys.cluster import Cluster, Job
from aisys.labkit import check, exercise
from widgets.cluster import ClusterTimeline, PlacementView, PolicyCompare

print("ready")"""),
    (MD, """\
## 1. A cluster of two GPU generations

Our cluster is two racks: four DGX-1 servers with 8 V100 each, and four DGX A100 servers with 8 A100 each.
Inside a server the GPUs talk over NVLink; servers talk through their InfiniBand NICs; racks through a spine
switch. Every figure comes from the vendors' datasheets (the module docstring of `aisys.cluster.hardware`
lists them)."""),
    (CODE, """\
c = Cluster.preset("two_racks_v100_a100")
print(c)"""),
    (MD, """\
How fast does a model train on each generation? The **roofline** of lab 08 answers it: a training step does
a number of FLOPs at some arithmetic intensity, so on a GPU it is bound either by the FLOP rate or by memory
bandwidth. A compute-bound model gains the A100's FLOP ratio over the V100; a memory-bound one (the small-batch
LSTM) gains only the bandwidth ratio. (One model needs 36 GB per GPU: it fits only the A100.)"""),
    (CODE, """\
v100, a100 = c.gpu_type("V100"), c.gpu_type("A100")
print(f"{'model':11s} {'V100 step':>10s} {'A100 step':>10s}  A100 speed-up")
for name, m in cl.MODELS.items():
    tv, ta = cl.cost.compute_time(m, v100), cl.cost.compute_time(m, a100)
    note = "   fits only the A100" if m.mem_gb > v100.mem_gb else ""
    print(f"{name:11s} {tv * 1e3:7.1f} ms {ta * 1e3:7.1f} ms  {tv / ta:5.2f}x{note}")"""),
    (MD, """\
## 2. A trace shaped like a production cluster

Published analyses of real GPU clusters agree on a few shapes: **most jobs ask for one GPU, yet a few large
gangs take most of the GPU time**; run times are **heavy-tailed** (minutes to days); submissions follow the
**working day** (日夜周期). `synthetic_trace` draws jobs with those shapes (profiles `philly`, `helios` and
`pai`), from a seed, with an arrival rate that offers the cluster a chosen load. A job's `duration` is its run
time with the gang packed on the reference GPU (here the V100); the cost model derives every other speed."""),
    (CODE, """\
jobs = cl.synthetic_trace(2000, "philly", seed=0, cluster=c)
print(cl.trace_stats(jobs))
print()
print(jobs[0])"""),
    (MD, """\
Your own cluster's log replays the same way: `cl.load_trace("jobs.csv")` reads a CSV with at least
`submit_time, num_gpus, duration` (Helios's column names work too), and a bad row is named by its line:"""),
    (CODE, """\
mine = cl.load_trace(io.StringIO("submit_time,num_gpus,duration,tenant,model\\n0,4,3600,a,bert_base\\n"
                                 "60,1,600,b,resnet50\\n"))
print(mine)
try:
    cl.load_trace(io.StringIO("submit_time,num_gpus,duration\\n0,1,60\\n30,four,60\\n"))
except ValueError as err:
    print("ValueError:", err)"""),
    (MD, """\
## 3. First come, first served — and the GPUs it leaves idle

A data-parallel job is a **gang**: all its GPUs must start together, because every step ends with an
all-reduce among all of them. Gangs make first-come-first-served (FIFO) wasteful. Take a 4-GPU server: job 0
holds 2 GPUs for 100 s; job 1, a 4-GPU gang, arrives and must wait for them; jobs 2 and 3 need one GPU each
and arrive just after. FIFO keeps them behind the gang — **head-of-line blocking** (队头阻塞) — while two GPUs
sit idle."""),
    (CODE, """\
small = Cluster.uniform(nodes=1, gpus_per_node=4)
scenario = [Job(0, 0.0, 2, 100.0), Job(1, 1.0, 4, 50.0), Job(2, 2.0, 1, 10.0), Job(3, 3.0, 1, 200.0)]
fifo = cl.simulate(small, scenario, "fifo")
for r in fifo.jobs:
    print(f"job {r.id}: {r.num_gpus} GPU(s), submitted at {r.submit:g} s, started {r.start:g} s, done {r.finish:g} s")
idle = fifo.blocked * small.num_gpus * fifo.makespan
print(f"GPU-seconds left idle while a job that would have fitted was waiting: {idle:.0f}")"""),
    (MD, """\
**EASY backfilling** (Lifka, 1995) keeps FIFO's promise to the gang and still uses the hole. When the head of
the queue does not fit, it gets a **reservation**: the *shadow time* at which, by the running jobs' estimated
end times, enough GPUs will be free for it. GPUs free at the shadow time beyond the head's need are **extra**.
A later job may start now if it fits in the free GPUs and either **ends by the shadow time** or uses **only
extra GPUs** (and then uses them up). Schedulers know only the estimate users give (`.estimate`), not the true
duration.

### Exercise 13.1 — EASY's reservation rule

Write `easy_backfill(now, free, running, queue)`: `free` GPUs are free now; `running` lists `(expected end
time, GPUs)` of the running jobs; `queue` lists the waiting jobs in arrival order, each with `.num_gpus` and
`.estimate` (seconds). Return the jobs to start now, in order. The check tries hand-made cases, 60 random
states (the head's reserved start must never move later), and a golden trace in the simulator whose
utilization must beat FIFO's."""),
    (CODE, """\
@exercise("13.1")
def easy_backfill(now, free, running, queue):
    \"\"\"Jobs to start now: the head jobs that fit, then backfill without delaying the first that does not.\"\"\"
    raise NotImplementedError("exercise 13.1: start the head jobs that fit; reserve for the first that does not; "
                              "backfill around the reservation")"""),
    (EXERCISE_DEPENDENT, """\
check("13.1", easy_backfill)"""),
    (MD, """\
Your rule plugs into the simulator as a policy, `cl.Backfill(rule=easy_backfill)`. On the small scenario,
job 2 now runs in the hole; job 3 would have delayed the gang, so it waits:"""),
    (EXERCISE_DEPENDENT, """\
easy = cl.simulate(small, scenario, cl.Backfill(rule=easy_backfill))
for r in easy.jobs:
    print(f"job {r.id}: started {r.start:g} s (FIFO: {fifo.job(r.id).start:g} s)")
print(f"the gang started at {easy.job(1).start:g} s both times; mean JCT {fifo.jct_mean:.1f} s -> {easy.jct_mean:.1f} s")"""),
    (MD, """\
The timeline shows it: each row is a GPU, each bar a job; below, the queue length and the GPUs idle while
jobs wait. Pick `backfill` in the next section's comparison to see the same effect on 2,000 jobs."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
ClusterTimeline(cl.compare(small, scenario, policies=["fifo", "backfill"]), colour_by="job")"""),
    (MD, """\
## 4. Not knowing how long jobs run: SRTF and Tiresias

To cut the *mean* job completion time (JCT), run short jobs first. **Shortest remaining time first** (SRTF),
preempting longer jobs, is optimal on one machine (SRPT, Schrage 1968) — but it needs every job's duration,
which no real scheduler has. Here it serves as a bound.

**Tiresias** (Gu et al., NSDI 2019) needs no duration: it ranks jobs by the service they have *already*
received — GPUs × time, its **two-dimensional attained service** (二维已获得服务) — so a large gang counts as
used up sooner. Jobs sit in a few priority queues separated by service thresholds (1 and 10 GPU-hours here),
FIFO inside a queue; a job crossing a threshold drops a queue and can be **preempted** by jobs above it
(抢占: its state is checkpointed and restored later, which costs it seconds of restart, charged in the
simulation). A job starved for too long returns to the top queue."""),
    (CODE, """\
runs = {p: cl.simulate(c, jobs, p) for p in ["fifo", "srtf", "tiresias"]}
for p, r in runs.items():
    print(f"{p:9s} mean JCT {r.jct_mean / 3600:6.2f} h   p95 {r.jct_p95 / 3600:6.2f} h   "
          f"preemptions {r.preemptions:4d}   restart overhead {r.overhead_gpu_seconds / 3600:5.1f} GPU-h")
print(f"\\nTiresias cuts FIFO's mean JCT {runs['fifo'].jct_mean / runs['tiresias'].jct_mean:.1f}x without knowing "
      f"any duration; the SRTF oracle does {runs['fifo'].jct_mean / runs['srtf'].jct_mean:.1f}x")"""),
    (MD, """\
**Elastic jobs** (弹性训练) can change their gang size while they run: grow into GPUs nobody is waiting for,
give them back when a queue forms — each resize a checkpoint-restart. `simulate(..., elastic=True)` lets jobs
with a `max_gpus` do that:"""),
    (CODE, """\
stretchy = cl.synthetic_trace(2000, "philly", seed=0, cluster=c, elastic=0.5)
for elastic in (False, True):
    r = cl.simulate(c, stretchy, "tiresias", elastic=elastic)
    resizes = sum(j.resizes for j in r.jobs)
    print(f"elastic={elastic!s:5}  mean JCT {r.jct_mean / 3600:.2f} h  utilization {r.utilization:.1%}  "
          f"resizes {resizes}")"""),
    (MD, """\
## 5. Many tenants: Dominant Resource Fairness and quotas

Tenants want a fair share — but a share of *what*? A job needs GPUs, CPUs (data loading) and memory, and
tenants differ in which one they need most. **Dominant Resource Fairness** (Ghodsi et al., NSDI 2011) takes
each tenant's *dominant share* — its largest share of any one resource — and equalises those by
**progressive filling**: the next task goes to the tenant with the smallest dominant share (divided by its
weight); a tenant whose next task no longer fits drops out and the others keep filling.

The paper's example: 9 CPUs and 18 GB; A's tasks need ⟨1 CPU, 4 GB⟩ (memory is A's dominant resource), B's
need ⟨3 CPUs, 1 GB⟩ (CPU is B's)."""),
    (MD, """\
### Exercise 13.2 — DRF by progressive filling

Write `drf_allocate(capacity, demands, weights=None)`: `capacity` is `{resource: amount}`, `demands` is
`{tenant: {resource: amount per task}}`, `weights` is `{tenant: weight}` (default 1). Return `{tenant: number of
tasks}`. Break ties in favour of the tenant listed first."""),
    (CODE, """\
@exercise("13.2")
def drf_allocate(capacity, demands, weights=None):
    \"\"\"Tasks per tenant under Dominant Resource Fairness (progressive filling).\"\"\"
    raise NotImplementedError("exercise 13.2: give the next task to the smallest weighted dominant share, "
                              "until no tenant's task fits")"""),
    (EXERCISE_DEPENDENT, """\
check("13.2", drf_allocate)"""),
    (EXERCISE_DEPENDENT, """\
cap = {"cpu": 9, "mem": 18}
demands = {"A": {"cpu": 1, "mem": 4}, "B": {"cpu": 3, "mem": 1}}
for tenant, n in drf_allocate(cap, demands).items():
    usage = {r: n * amount for r, amount in demands[tenant].items()}
    print(f"{tenant}: {n} tasks using {usage}: dominant share {cl.dominant_share(usage, cap):.3f}")"""),
    (MD, """\
The `drf` policy applies the same rule online: whenever GPUs free up, the tenant with the smallest weighted
dominant share (over GPUs, CPUs and memory) starts its oldest job that fits. A **quota** caps a tenant's GPUs;
a tenant at its quota waits even when GPUs are idle (unless `lend_idle=True`). Each report prints per tenant
its entitlement (its weight's share), its share of the GPUs over the run and while it had jobs waiting, and its
**finish-time fairness** ρ: JCT divided by the time its jobs would take alone on the tenant's fair slice of the
cluster (ρ ≤ 1: sharing cost the tenant nothing). Jain's index over (share while waiting ÷ entitlement) sums it
up: 1 is perfectly even."""),
    (CODE, """\
for policy in [cl.DRF(), cl.DRF(quotas={"a": 0.5})]:
    print(cl.simulate(c, jobs, policy).summary())
    print()"""),
    (MD, """\
## 6. Two generations: heterogeneity-aware scheduling

A heterogeneity-blind scheduler takes the first GPU type with room. **Gavel** (Narayanan et al., OSDI 2020)
knows each job's throughput on each type, and gives every job the type where it runs fastest; when fast GPUs
are scarce they go to the jobs that lose most elsewhere (Gavel solves a linear program; the `gavel` policy here
keeps its greedy core on top of Tiresias's order)."""),
    (CODE, """\
for p in ["tiresias", "gavel"]:
    r = cl.simulate(c, jobs, p)
    on_a100 = {m: sum(1 for j in r.jobs if j.model == m and j.gpu_types == ("A100",)) /
               max(1, sum(1 for j in r.jobs if j.model == m)) for m in ["vgg16", "lstm_lm"]}
    print(f"{p:9s} mean JCT {r.jct_mean / 3600:.2f} h; share of jobs run on A100: vgg16 {on_a100['vgg16']:.0%}, "
          f"lstm_lm {on_a100['lstm_lm']:.0%}")"""),
    (MD, """\
## 7. Where a gang runs: placement and the α-β model

Every step of a data-parallel job ends with a **ring all-reduce** of its gradients: p GPUs in a ring each
send 2(p−1) chunks of N/p bytes. With the α-β model a message of n bytes costs α + n/β over a link (α the
latency, β the bandwidth), all hops send at once, so a step lasts as long as the *slowest* hop:

$$T_{\\text{all-reduce}} = 2(p-1)\\,\\max_{\\text{hops}}\\Big(\\alpha + \\frac{N/p}{\\beta}\\Big)
\\quad\\text{and, on identical links,}\\quad 2(p-1)\\alpha + \\frac{2(p-1)}{p}\\,\\frac{N}{\\beta}.$$

**Placement** decides which links the ring crosses: NVLink inside a node, the NICs between nodes of a rack,
the oversubscribed spine between racks. Here is a busier cluster — four racks of DGX-1, 40 % of the GPUs taken
by other jobs — and a gang of VGG-16, whose large gradients (printed below) make it communication-heavy. Move the slider
and switch the rule: `pack` fills the roomiest nodes wherever they are, `spread` puts one GPU per node (the
load-balancing instinct), `topology` packs and stays inside one rack."""),
    (CODE, """\
racks = Cluster.preset("four_racks_v100")
print(racks)
vgg = cl.MODELS["vgg16"]
print(f"\\nVGG-16: {vgg.params / 1e6:.0f} M parameters -> {vgg.grad_bytes / 1e6:.0f} MB of fp32 gradients to "
      f"all-reduce every step")"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
view = PlacementView(racks, model="vgg16", n=8, busy=0.4, seed=0)
view"""),
    (CODE, """\
print(view.summary())"""),
    (MD, """\
### Exercise 13.3 — a placement rule that beats spreading

Write `place(free, n, cluster)`: `free` maps each node (of the job's GPU type) with free GPUs to how many it
has, `n` is the gang size; return `{node name: GPUs taken}` — exactly `n` in all, never more than a node has.
`cluster.rack_of(name)` tells a node's rack, `cluster.node_index[name]` its position (use it to break ties
towards the node listed first). Aim for: a single node whenever one can hold the gang — the one with the
*fewest* free GPUs that still does (best fit keeps empty nodes whole for big gangs); else one rack, the one
that needs the fewest nodes (then the fewest free GPUs), taking its roomiest nodes first; else as few racks as
possible (the roomiest first) and as few nodes inside them."""),
    (CODE, """\
@exercise("13.3")
def place(free, n, cluster):
    \"\"\"{node name: GPUs} for a gang of n: one node if possible, else one rack, else the fewest racks.\"\"\"
    raise NotImplementedError("exercise 13.3: best-fit node, else the rack needing the fewest nodes, "
                              "else the fewest racks")"""),
    (EXERCISE_DEPENDENT, """\
check("13.3", place)"""),
    (MD, """\
Your rule joins the picture (its button is `yours`), and the simulator takes it as a placement:"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
yours = PlacementView(racks, model="vgg16", n=12, busy=0.4, seed=0, rules={"yours": place}, rule="yours")
yours"""),
    (EXERCISE_DEPENDENT, """\
print(yours.summary())
heavy = [Job(i, 600.0 * i, [8, 12, 16, 4][i % 4], 3600.0, model=["vgg16", "bert_large"][i % 2]) for i in range(24)]
for name, rule in [("yours", place), ("pack", "pack"), ("spread", "spread")]:
    r = cl.simulate(racks, heavy, "fifo", rule)
    print(f"{name:7s} mean JCT {r.jct_mean / 3600:.2f} h for 24 communication-heavy 1-hour gangs")"""),
    (MD, """\
## 8. The visual moment: one trace, six policies

The same 2,000 jobs on the same 64 GPUs under six policies — FIFO, EASY backfilling, the SRTF oracle,
Tiresias, DRF with tenant `a` capped at half the cluster, and Gavel. On the left, the distribution of job
completion times (further left is better); on the right, how busy the GPUs were over the days of the trace;
below, the metric you pick. Then the timeline: choose a policy and watch FIFO's idle GPUs pile up behind a
waiting gang (red, bottom panel) while Tiresias and Gavel keep the queue short."""),
    (CODE, """\
six = cl.compare(c, jobs, policies=["fifo", "backfill", "srtf", "tiresias", cl.DRF(quotas={"a": 0.5}), "gavel"])
print(six)"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
compare_view = PolicyCompare(six)
compare_view"""),
    (CODE, """\
print(compare_view.summary().splitlines()[0])"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
timeline = ClusterTimeline(six)
timeline"""),
    (CODE, """\
print(timeline.summary().splitlines()[0])
fifo6, tir6, drf6 = six["fifo"], six["tiresias"], six["drf(quotas={'a': 0.5})"]
t, waiting = fifo6.queue_over_time()
print(f"FIFO: utilization {fifo6.utilization:.1%}, {fifo6.blocked:.1%} of the GPU-time idle while a job that "
      f"fitted waited; backfilling: {six['backfill'].utilization:.1%}")
print(f"Tiresias: mean JCT {fifo6.jct_mean / tir6.jct_mean:.1f}x lower than FIFO's")
print(f"DRF with a quota: tenant a held {drf6.tenants['a'].share_backlogged:.1%} of the GPUs while it had jobs "
      f"waiting (cap 50%); {drf6.blocked:.1%} of the GPU-time was idle because of the cap")"""),
    (MD, """\
Every run is also a Perfetto trace — one lane per GPU, a counter for the queue — that you can open at
ui.perfetto.dev:"""),
    (CODE, """\
trace = tir6.trace
print(f"{len(trace.events)} events on {len(trace.lanes)} GPU lanes; counters: {trace.counter_names()}")
# trace.save("tiresias.json")   # then open it in ui.perfetto.dev"""),
    (MD, """\
## What to take away

- A job's completion time is mostly *waiting* in a busy cluster: the scheduling policy decides it.
- Gangs make FIFO leave GPUs idle behind a large job; EASY backfilling fills the hole without delaying that
  job, by reserving its start.
- Ranking by attained service (Tiresias) gets most of the way to the shortest-job-first oracle without
  knowing durations — at the price of preemptions, each a checkpoint-restart.
- Fairness among tenants is about their *dominant* resource; quotas protect a cluster from one tenant, and
  cost idle GPUs when nobody else needs them.
- Where a gang runs matters as much as when: keep its all-reduce on NVLink and inside a rack, and give fast
  GPUs to the jobs that gain most from them.

Lab 08 built the roofline this lab used to time each model on each GPU; lab 05's memory planner is what decides
whether a model fits a GPU's memory at all; lab 10 derives the α-β cost of collectives on real topologies, and
lab 11 the data-parallel (and ZeRO, tensor, pipeline) training steps whose gangs this lab schedules."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab13")


if __name__ == "__main__":
    labcells.main(CELLS, "lab13", DEFAULT_OUT, sys.argv)
