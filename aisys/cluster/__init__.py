"""The cluster around the stack: GPU-cluster scheduling and multi-tenancy, simulated on real-shaped traces.

    from aisys import cluster
    c = cluster.Cluster.preset("two_racks_v100_a100")            # or Cluster.uniform(nodes=1, gpus_per_node=1)
    jobs = cluster.synthetic_trace(2000, profile="philly", seed=0, cluster=c)   # or cluster.load_trace("jobs.csv")
    rep = cluster.simulate(c, jobs, policy="tiresias", placement="pack")
    rep.jct_mean, rep.jct_p95, rep.utilization, rep.fairness, rep.trace.save("run.json")
    cluster.compare(c, jobs, policies=["fifo", "backfill", "srtf", "tiresias", "drf", "gavel"])

Modules: ``hardware`` (GPU types, links, nodes, presets), ``jobs`` (Job, model classes), ``cost`` (roofline
compute + α-β all-reduce: what placement costs), ``placement`` (pack / spread / topology), ``policies``
(FIFO, EASY backfilling, SRTF, Tiresias, DRF, Gavel), ``fairness`` (DRF, Jain, finish-time fairness),
``simulator`` (the event loop), ``report`` (Report, Comparison), ``traces`` (generator, CSV).
"""
from __future__ import annotations

from .cost import allreduce_time, rate, reference_step_time, ring_allreduce_time, step_time
from .fairness import dominant_share, drf_allocate, jain_index
from .hardware import GPU_TYPES, LINKS, PRESETS, Cluster, GPUType, Link, Node
from .jobs import MODELS, Job, ModelClass
from .placement import PLACEMENTS, pack, spread, topology_aware
from .policies import DRF, FIFO, POLICIES, SRTF, Backfill, Gavel, Policy, Tiresias, easy_backfill, make_policy
from .report import Comparison, JobResult, Report, TenantResult
from .simulator import CheckpointCost, Simulator
from .traces import PROFILES, load_trace, save_trace, synthetic_trace, trace_stats

__all__ = ["Cluster", "Node", "GPUType", "Link", "GPU_TYPES", "LINKS", "PRESETS", "Job", "ModelClass", "MODELS",
           "ring_allreduce_time", "allreduce_time", "step_time", "reference_step_time", "rate", "pack", "spread",
           "topology_aware", "PLACEMENTS", "Policy", "FIFO", "Backfill", "SRTF", "Tiresias", "DRF", "Gavel",
           "POLICIES", "easy_backfill", "make_policy", "dominant_share", "drf_allocate", "jain_index",
           "CheckpointCost", "Simulator", "Report", "Comparison", "JobResult", "TenantResult", "PROFILES",
           "synthetic_trace", "load_trace", "save_trace", "trace_stats", "simulate", "compare"]


def simulate(cluster: Cluster, jobs, policy="fifo", placement="pack", *, elastic: bool = False,
             checkpoint: CheckpointCost | None = None, progress: bool | None = None) -> Report:
    """Run ``jobs`` on ``cluster`` under ``policy`` (a name in POLICIES or a Policy) and ``placement``
    (``pack``, ``spread``, ``topology`` or a function ``rule(free, n, cluster)``).

    ``elastic``: jobs with ``max_gpus`` grow into idle GPUs and shrink back when others wait;
    ``checkpoint``: the cost of a preemption or resize; ``progress``: a progress bar (default: for
    5,000 jobs or more). Ctrl-C (a notebook's interrupt) stops the run and returns a partial report.
    """
    return Simulator(cluster, jobs, make_policy(policy), placement, elastic=elastic, checkpoint=checkpoint,
                     progress=progress).run()


def compare(cluster: Cluster, jobs, policies=("fifo", "backfill", "srtf", "tiresias", "drf", "gavel"),
            placement="pack", **kwargs) -> Comparison:
    """The same trace under several policies: a :class:`Comparison` (print it for the table)."""
    jobs = list(jobs)
    reports = {}
    for policy in policies:
        p = make_policy(policy)
        name = policy if isinstance(policy, str) else p.describe()
        reports[name] = rep = simulate(cluster, jobs, p, placement, **kwargs)
        if rep.interrupted:
            break
    return Comparison(reports)
