"""What a simulation reports, and a policy comparison table.

Per job: completion time (JCT = finish − submit), queueing delay (JCT minus the time it held GPUs),
run time, checkpoint-restart overhead, preemptions, resizes. Over the run: mean/median/p95 JCT and
queueing delay, makespan, GPU utilization (busy GPU-seconds ÷ GPU-seconds available from the first
submission to the last completion) and its curve, *fragmentation* (the time-average share of GPUs
that are free while jobs wait but no waiting gang fits in them), *blocked* GPUs (free while a waiting
job would fit: the policy chose to leave them idle — FIFO's head-of-line blocking, a quota, a
reservation). Per tenant: its entitlement, its share of the GPUs over the run and while it had jobs
waiting, its mean JCT and finish-time fairness; Jain's index over (share while waiting ÷ entitlement).

``rep.trace`` is the run as a :class:`aisys.framework.events.Trace` (one lane per GPU, one event per
job segment, counters for busy GPUs and waiting jobs): ``rep.trace.save("run.json")`` opens in Perfetto.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..framework.events import Trace
from .fairness import jain_index

__all__ = ["JobResult", "TenantResult", "Report", "Comparison"]


@dataclass(frozen=True)
class JobResult:
    id: int
    tenant: str
    model: str
    num_gpus: int
    duration: float
    submit: float
    start: float
    finish: float
    run_time: float          # seconds holding GPUs (overheads included)
    overhead: float          # seconds of checkpoint-restart
    preemptions: int
    resizes: int
    gpu_types: tuple[str, ...]

    @property
    def jct(self) -> float:
        return self.finish - self.submit

    @property
    def queue_delay(self) -> float:
        return self.jct - self.run_time

    @property
    def slowdown(self) -> float:
        return self.jct / self.duration


@dataclass(frozen=True)
class TenantResult:
    name: str
    jobs: int
    entitlement: float       # fraction of the cluster's GPUs
    share: float             # time-average fraction of the GPUs it held over the run
    share_backlogged: float  # ... while it had jobs waiting (nan if it never waited)
    gpu_hours: float
    jct_mean: float
    ftf: float               # mean finish-time fairness ρ of its jobs


def _hours(s: float) -> str:
    return f"{s / 3600:.3g} h" if s >= 360 else f"{s:.3g} s"


class Report:
    """The result of :func:`aisys.cluster.simulate` (see the module docstring for each figure)."""

    def __init__(self, *, policy: str, placement: str, cluster, results: list[JobResult], segments, samples,
                 span: tuple[float, float], busy_gpu_seconds: float, frag_gpu_seconds: float,
                 blocked_gpu_seconds: float, tenants: dict[str, TenantResult], interrupted: bool, unfinished: int,
                 pools: dict[int, str]):
        self.policy, self.placement, self.cluster = policy, placement, cluster
        self.jobs = results
        self.segments = segments            # (job id, pool, gpus, start, end, overhead end, rate)
        self.samples = samples              # (t, busy GPUs, waiting jobs) after each event instant
        self.t0, self.t1 = span
        self.interrupted, self.unfinished = interrupted, unfinished
        self.tenants = tenants
        self._pools = pools
        self._trace: Trace | None = None
        jct = np.array([r.jct for r in results]) if results else np.zeros(0)
        qd = np.array([r.queue_delay for r in results]) if results else np.zeros(0)
        self.jct_mean = float(jct.mean()) if jct.size else math.nan
        self.jct_median = float(np.median(jct)) if jct.size else math.nan
        self.jct_p95 = float(np.percentile(jct, 95)) if jct.size else math.nan
        self.queue_delay_mean = float(qd.mean()) if qd.size else math.nan
        self.queue_delay_p95 = float(np.percentile(qd, 95)) if qd.size else math.nan
        self.makespan = self.t1 - self.t0
        capacity = cluster.num_gpus * self.makespan
        self.gpu_seconds = busy_gpu_seconds
        self.utilization = busy_gpu_seconds / capacity if capacity else 0.0
        self.fragmentation = frag_gpu_seconds / capacity if capacity else 0.0
        self.blocked = blocked_gpu_seconds / capacity if capacity else 0.0
        self.overhead_gpu_seconds = sum(len(g) * (oe - s) for _, _, g, s, _, oe, _ in segments)
        self.preemptions = sum(r.preemptions for r in results)
        backlogged = [t for t in tenants.values() if not math.isnan(t.share_backlogged) and t.entitlement > 0]
        self.fairness = jain_index([t.share_backlogged / t.entitlement for t in backlogged])
        ftf = [t.ftf for t in tenants.values() if not math.isnan(t.ftf)]
        self.ftf_max = max(ftf) if ftf else math.nan

    # ---- construction --------------------------------------------------------------------------------
    @classmethod
    def from_simulation(cls, sim) -> "Report":
        cluster = sim.cluster
        finished = [js for js in sim.order if js.status == "done"]
        pools = {p.index: p.gpu for p in sim.pools}
        types_used: dict[int, set] = {}
        for jid, pool, *_ in sim.segments:
            types_used.setdefault(jid, set()).add(pools[pool])
        results = [JobResult(js.id, js.tenant, js.job.model, js.num_gpus, js.job.duration, js.submit,
                             js.first_start, js.finish, js.executed, js.overhead_s, js.preemptions, js.resizes,
                             tuple(sorted(types_used.get(js.id, ())))) for js in finished]
        t0 = sim.order[0].submit
        t1 = max((js.finish for js in finished), default=t0) if not sim.interrupted else sim.now
        span = max(t1 - t0, 0.0)
        entitled = sim.policy.entitlements(sim.tenants) or {t: 1 / len(sim.tenants) for t in sim.tenants}
        tenants = {}
        for t in sim.tenants:
            mine = [r for r in results if r.tenant == t]
            ent = entitled.get(t, 0.0)
            fair_gpus = max(ent * cluster.num_gpus, 1e-9)
            rho = [r.jct / (r.duration * max(1.0, r.num_gpus / fair_gpus)) for r in mine]
            back = sim.backlog_time[t]
            tenants[t] = TenantResult(
                t, sum(1 for js in sim.order if js.tenant == t), ent,
                sim.held_integral[t] / (cluster.num_gpus * span) if span else 0.0,
                sim.backlog_held[t] / (cluster.num_gpus * back) if back > 0 else math.nan,
                sim.held_integral[t] / 3600,
                float(np.mean([r.jct for r in mine])) if mine else math.nan,
                float(np.mean(rho)) if rho else math.nan)
        return cls(policy=sim.policy.describe(), placement=sim.placement_name, cluster=cluster, results=results,
                   segments=list(sim.segments), samples=list(sim.samples), span=(t0, t1),
                   busy_gpu_seconds=sim.busy_integral, frag_gpu_seconds=sim.frag_integral,
                   blocked_gpu_seconds=sim.blocked_integral, tenants=tenants, interrupted=sim.interrupted,
                   unfinished=len(sim.order) - len(finished), pools=pools)

    # ---- series --------------------------------------------------------------------------------------
    def utilization_over_time(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, fraction of GPUs busy from each time on): a step function."""
        t = np.array([s[0] for s in self.samples])
        busy = np.array([s[1] for s in self.samples], dtype=float)
        return t, busy / self.cluster.num_gpus

    def queue_over_time(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, waiting jobs from each time on)."""
        return np.array([s[0] for s in self.samples]), np.array([s[2] for s in self.samples])

    def jcts(self) -> np.ndarray:
        return np.array([r.jct for r in self.jobs])

    def job(self, job_id: int) -> JobResult:
        for r in self.jobs:
            if r.id == job_id:
                return r
        raise KeyError(f"job {job_id} did not finish in this run (or does not exist)")

    @property
    def trace(self) -> Trace:
        """The run as a Perfetto-compatible Trace: one lane per GPU, counters for busy GPUs and the queue."""
        if self._trace is None:
            self._trace = self._make_trace()
        return self._trace

    def _make_trace(self) -> Trace:
        tenant_of = {r.id: r.tenant for r in self.jobs}
        tr = Trace(f"{self.policy} / {self.placement} on {self.cluster.name}", unit="s")
        by_gpu: dict[int, list] = {}
        for seg in self.segments:
            for g in seg[2]:
                by_gpu.setdefault(g, []).append(seg)
        for g in sorted(by_gpu):
            lane = self.cluster.gpu_label(g)
            for jid, _, gpus, start, end, ovh_end, _ in sorted(by_gpu[g], key=lambda s: s[3]):
                tenant = tenant_of.get(jid, "?")
                if ovh_end > start:
                    tr.add_event(lane, f"restart job {jid}", start, ovh_end, job=jid, tenant=tenant,
                                 kind="checkpoint-restart")
                if end > ovh_end:
                    tr.add_event(lane, f"job {jid}", ovh_end, end, job=jid, tenant=tenant, gpus=len(gpus),
                                 kind="run")
        for t, busy, waiting in self.samples:
            tr.add_counter("GPUs busy", t, busy)
            tr.add_counter("jobs waiting", t, waiting)
        return tr

    # ---- text ----------------------------------------------------------------------------------------
    def summary(self) -> str:
        head = (f"{self.policy} / {self.placement} on {self.cluster.name}: {len(self.jobs)} jobs"
                + (f" ({self.unfinished} unfinished: INTERRUPTED)" if self.interrupted else ""))
        lines = [head,
                 f"  JCT mean {_hours(self.jct_mean)}, median {_hours(self.jct_median)}, p95 {_hours(self.jct_p95)}; "
                 f"queueing delay mean {_hours(self.queue_delay_mean)}, p95 {_hours(self.queue_delay_p95)}",
                 f"  makespan {_hours(self.makespan)}; utilization {self.utilization:.1%}; fragmentation "
                 f"{self.fragmentation:.1%}; blocked {self.blocked:.1%}; preemptions {self.preemptions}; "
                 f"restart overhead {self.overhead_gpu_seconds / 3600:.3g} GPU-h",
                 f"  fairness: Jain {self.fairness:.3f} (share while waiting / entitlement), "
                 f"max finish-time fairness {self.ftf_max:.3g}"]
        lines.append(f"  {'tenant':<10} {'jobs':>5} {'entitled':>9} {'share':>7} {'share|wait':>11} "
                     f"{'GPU-h':>8} {'mean JCT':>10} {'FTF':>6}")
        for t in self.tenants.values():
            sb = "-" if math.isnan(t.share_backlogged) else f"{t.share_backlogged:.1%}"
            lines.append(f"  {t.name:<10} {t.jobs:>5} {t.entitlement:>9.1%} {t.share:>7.1%} {sb:>11} "
                         f"{t.gpu_hours:>8.4g} {_hours(t.jct_mean):>10} {t.ftf:>6.3g}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


class Comparison:
    """Several policies (or placements) on the same cluster and trace: ``cmp.reports[name]``, ``cmp.table()``."""

    COLUMNS = [("JCT mean", "jct_mean", _hours), ("JCT p95", "jct_p95", _hours),
               ("queue mean", "queue_delay_mean", _hours), ("makespan", "makespan", _hours),
               ("util", "utilization", lambda v: f"{v:.1%}"), ("frag", "fragmentation", lambda v: f"{v:.1%}"),
               ("blocked", "blocked", lambda v: f"{v:.1%}"), ("preempt", "preemptions", str),
               ("Jain", "fairness", lambda v: f"{v:.3f}"), ("FTF max", "ftf_max", lambda v: f"{v:.3g}")]

    def __init__(self, reports: dict[str, Report]):
        self.reports = dict(reports)

    def __getitem__(self, name: str) -> Report:
        return self.reports[name]

    def __iter__(self):
        return iter(self.reports)

    def metric(self, attr: str) -> dict[str, float]:
        return {k: getattr(r, attr) for k, r in self.reports.items()}

    def table(self) -> str:
        first = next(iter(self.reports.values()))
        rows = [[name] + [fmt(getattr(r, attr)) for _, attr, fmt in self.COLUMNS] for name, r in self.reports.items()]
        head = ["policy"] + [c for c, _, _ in self.COLUMNS]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        out = [f"{len(first.jobs)} jobs on {first.cluster.name} ({first.cluster.num_gpus} GPUs), "
               f"placement {first.placement}"]
        out.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))))
        for row in rows:
            out.append("  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(row, widths))))
        return "\n".join(out)

    def __repr__(self) -> str:
        return self.table()
