"""Job traces: a seeded generator shaped like published cluster analyses, and CSV in and out.

The generator draws each job's gang size, duration, tenant and model from a *profile*, then its submit
time from a diurnal (day/night) arrival rate scaled so the trace offers the cluster a chosen load.
The profiles follow what three published analyses of production GPU clusters report; their parameters
are ours (fitted by eye to those findings, not to the traces themselves), and ``trace_stats`` prints
what a generated trace actually contains so you can hold it against them:

* ``philly`` — Microsoft Philly (Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU Clusters for DNN
  Training Workloads", USENIX ATC 2019; public trace: 117,325 jobs, Aug–Dec 2017): most jobs ask for one
  GPU, a few are large gangs (tens of GPUs) that must be gang-scheduled; run times are heavy-tailed,
  from minutes to days, and larger jobs run longer; tenants are virtual clusters of unequal size.
* ``helios`` — SenseTime Helios (Hu et al., "Characterization and Prediction of Deep Learning Workloads in
  Large-Scale GPU Datacenters", SC 2021; public trace: 3.36 M jobs, 1.58 M on GPUs, in 4 clusters over
  6 months of 2020): more large jobs than Philly, many short debugging runs, a strong diurnal pattern in
  submissions; large jobs are few but take most of the GPU time.
* ``pai`` — Alibaba PAI (Weng et al., "MLaaS in the Wild", NSDI 2022; public trace: over 6,500 GPUs on
  ~1,800 machines, July–August 2020): the great majority of jobs need one GPU or less (we round up to
  one: GPU sharing is not simulated), the fleet mixes GPU generations (T4, P100, V100 ...) and some
  jobs demand a specific type.

The arrival rate is λ(t) = λ̄·(1 + a·cos(2π(t − peak)/1 day)), λ̄ chosen so the trace's work (GPU-seconds
on the reference GPU) divided by its span is ``load`` x the cluster's GPUs.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from .hardware import Cluster
from .jobs import MODELS, Job

__all__ = ["TraceProfile", "PROFILES", "synthetic_trace", "load_trace", "save_trace", "TraceStats", "trace_stats"]

DAY = 86400.0


@dataclass(frozen=True)
class TraceProfile:
    name: str
    gpu_counts: dict            # gang size -> probability
    duration_median_s: float    # median run time of a 1-GPU job on the reference GPU
    duration_sigma: float       # lognormal shape: the heavy tail
    size_growth: float          # median duration multiplier per doubling of the gang
    max_duration_s: float
    diurnal: float              # a in λ(t) = λ̄(1 + a cos(...)), 0 <= a < 1
    peak_hour: float
    tenants: dict               # tenant -> share of jobs
    models: dict                # model class -> share of jobs
    typed_fraction: float = 0.0  # share of jobs that demand one GPU type (on clusters with several)
    source: str = ""


PROFILES: dict[str, TraceProfile] = {
    "philly": TraceProfile(
        "philly", {1: 0.692, 2: 0.10, 4: 0.09, 8: 0.07, 16: 0.03, 32: 0.01, 64: 0.006, 128: 0.002}, 900.0, 1.8, 1.4, 3 * DAY, 0.3, 15.0,
        {"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1},
        {"resnet50": 0.3, "vgg16": 0.1, "bert_base": 0.2, "bert_large": 0.1, "lstm_lm": 0.25, "gpt_1p3b": 0.05},
        source="Jeon et al., USENIX ATC 2019"),
    "helios": TraceProfile(
        "helios", {1: 0.59, 2: 0.08, 4: 0.10, 8: 0.14, 16: 0.05, 32: 0.03, 64: 0.007, 128: 0.003}, 300.0, 2.2, 1.5, 3 * DAY, 0.6, 16.0,
        {"a": 0.3, "b": 0.25, "c": 0.2, "d": 0.15, "e": 0.1},
        {"resnet50": 0.35, "vgg16": 0.1, "bert_base": 0.15, "bert_large": 0.15, "lstm_lm": 0.15, "gpt_1p3b": 0.1},
        source="Hu et al., SC 2021"),
    "pai": TraceProfile(
        "pai", {1: 0.85, 2: 0.05, 4: 0.05, 8: 0.04, 16: 0.01}, 600.0, 2.0, 1.3, 2 * DAY, 0.4, 14.0,
        {"a": 0.5, "b": 0.2, "c": 0.2, "d": 0.1},
        {"resnet50": 0.3, "vgg16": 0.05, "bert_base": 0.3, "bert_large": 0.05, "lstm_lm": 0.3},
        typed_fraction=0.15, source="Weng et al., NSDI 2022"),
}


def _arrival_times(n: int, span: float, diurnal: float, peak_hour: float, rng: np.random.Generator) -> np.ndarray:
    """n sorted arrival times of a Poisson process with a daily cycle, over [0, span) (inverse of Λ)."""
    grid = np.linspace(0.0, span, max(2, int(span / 60) + 2))
    rate = 1.0 + diurnal * np.cos(2 * np.pi * (grid - peak_hour * 3600) / DAY)
    cum = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2 * np.diff(grid))])
    u = np.sort(rng.uniform(0.0, cum[-1], n))
    return np.interp(u, cum, grid)


def synthetic_trace(n: int = 2000, profile: str = "philly", seed: int = 0, *, cluster: Cluster | int | None = None,
                    load: float = 0.8, elastic: float = 0.0) -> list[Job]:
    """``n`` jobs shaped like ``profile`` (``philly``, ``helios`` or ``pai``), reproducible from ``seed``.

    ``cluster`` (a Cluster or a GPU count; default 64 GPUs) sets the arrival rate for ``load`` and caps
    gang sizes at the largest group of one GPU type; on a Cluster, models that fit no GPU type are left
    out of the mix. ``elastic``: the share of multi-GPU jobs that may grow to twice their gang.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"synthetic_trace: n must be a positive number of jobs, got {n!r}")
    if profile not in PROFILES:
        raise ValueError(f"unknown trace profile {profile!r}; use one of {', '.join(PROFILES)}")
    if not (isinstance(load, (int, float)) and 0 < load <= 2):
        raise ValueError(f"synthetic_trace: load is busy GPU-time / GPU-time available; use 0 < load <= 2, got {load!r}")
    if not 0 <= elastic <= 1:
        raise ValueError(f"synthetic_trace: elastic is a share of jobs in [0, 1], got {elastic!r}")
    prof = PROFILES[profile]
    rng = np.random.default_rng(seed)
    types: list[str] = []
    if isinstance(cluster, Cluster):
        gpus = cluster.num_gpus
        largest = max(cluster.gpus_of_type(t) for t in cluster.gpu_types)
        mem = max(cluster.gpu_type(t).mem_gb for t in cluster.gpu_types)
        models = {m: w for m, w in prof.models.items() if MODELS[m].mem_gb <= mem}
        types = list(cluster.gpu_types)
    else:
        gpus = 64 if cluster is None else int(cluster)
        if gpus < 1:
            raise ValueError(f"synthetic_trace: cluster must be a Cluster or a positive GPU count, got {cluster!r}")
        largest, models = gpus, dict(prof.models)
    sizes_p = {g: p for g, p in prof.gpu_counts.items() if g <= largest}
    sizes = np.array(list(sizes_p))
    size = rng.choice(sizes, n, p=np.array(list(sizes_p.values())) / sum(sizes_p.values()))
    median = prof.duration_median_s * prof.size_growth ** np.log2(size)
    duration = np.clip(median * np.exp(prof.duration_sigma * rng.standard_normal(n)), 30.0, prof.max_duration_s)
    duration = np.round(duration)
    tenant_names = list(prof.tenants)
    tenant = rng.choice(len(tenant_names), n, p=np.array(list(prof.tenants.values())))
    model_names = list(models)
    model = rng.choice(len(model_names), n, p=np.array(list(models.values())) / sum(models.values()))
    cpus = rng.choice([2.0, 4.0, 5.0], n, p=[0.3, 0.5, 0.2])
    mem = rng.choice([16.0, 32.0, 48.0], n, p=[0.4, 0.4, 0.2])
    typed = rng.uniform(size=n) < (prof.typed_fraction if len(types) > 1 else 0.0)
    grow = (rng.uniform(size=n) < elastic) & (size > 1)
    span = float((size * duration).sum()) / (load * gpus)
    submit = np.round(_arrival_times(n, span, prof.diurnal, prof.peak_hour, rng), 1)
    jobs = []
    for i in range(n):
        m = model_names[model[i]]
        gpu_types = None
        if typed[i]:
            fitting = [t for t in types if cluster.gpu_type(t).mem_gb >= MODELS[m].mem_gb
                       and cluster.gpus_of_type(t) >= size[i]]
            gpu_types = (fitting[int(rng.integers(len(fitting)))],) if fitting else None
        jobs.append(Job(id=i, submit_time=float(submit[i]), num_gpus=int(size[i]), duration=float(duration[i]),
                        tenant=tenant_names[tenant[i]], model=m, gpu_types=gpu_types,
                        max_gpus=int(2 * size[i]) if grow[i] else None, cpus_per_gpu=float(cpus[i]),
                        mem_gb_per_gpu=float(mem[i])))
    return jobs


# ---- CSV ------------------------------------------------------------------------------------------------

COLUMNS = ["id", "submit_time", "num_gpus", "duration", "tenant", "model", "gpu_types", "max_gpus", "cpus_per_gpu",
           "mem_gb_per_gpu", "estimate"]
ALIASES = {"id": ["job_id", "jobid"], "submit_time": ["submit", "submitted"], "num_gpus": ["gpu_num", "num_gpu", "gpus"],
           "duration": ["runtime", "run_time"], "tenant": ["vc", "user", "queue"], "model": ["model_name"],
           "gpu_types": ["gpu_type"]}
REQUIRED = ("submit_time", "num_gpus", "duration")


def _columns(header: list[str], where: str) -> dict[str, str]:
    """{our column: the file's column}, matching our names first, then the aliases (Helios, Tiresias ...)."""
    lower = {h.strip().lower(): h for h in header if h}
    found = {}
    for col in COLUMNS:
        for name in [col] + ALIASES.get(col, []):
            if name in lower:
                found[col] = lower[name]
                break
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        alias = "; ".join(f"{c} (or {', '.join(ALIASES[c])})" for c in missing)
        raise ValueError(f"{where}: the header has no column for {alias}; it has {header}. Columns: "
                         f"{', '.join(COLUMNS)} (only submit_time, num_gpus and duration are required)")
    return found


def _number(text: str, what: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: {what} {text!r} is not a finite number")
    return v


def load_trace(source, *, skip_zero_gpu: bool = False) -> list[Job]:
    """Jobs from a CSV file (a path or an open text file). Columns: ``submit_time, num_gpus, duration``
    (required; seconds, or ISO date-times for submit_time, counted from the first row) and optionally
    ``id, tenant, model, gpu_types`` (``A100|V100``), ``max_gpus, cpus_per_gpu, mem_gb_per_gpu, estimate``.
    Helios- and Tiresias-style names (``gpu_num``, ``vc``, ``model_name`` ...) are understood.
    ``skip_zero_gpu``: drop CPU-only rows (``num_gpus`` 0), as in Helios's logs. Errors name the line."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        with open(name, newline="", encoding="utf-8") as f:
            return _read(f, name, skip_zero_gpu)
    if isinstance(source, io.TextIOBase) or hasattr(source, "read"):
        return _read(source, getattr(source, "name", "<csv>"), skip_zero_gpu)
    raise TypeError(f"load_trace reads a CSV path or an open text file, got {type(source).__name__}")


def _read(f, name: str, skip_zero_gpu: bool) -> list[Job]:
    reader = csv.reader(f)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{name}: the file is empty; expected a header line such as "
                         f"{','.join(COLUMNS[:4])}") from None
    cols = _columns(header, f"{name} line 1")
    pos = {c: header.index(h) for c, h in cols.items()}
    jobs: list[Job] = []
    t0 = None
    ids: set[int] = set()
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if not row or all(not x.strip() for x in row):
            continue
        if len(row) != len(header):
            raise ValueError(f"{where}: {len(row)} fields, but the header has {len(header)} ({','.join(header)})")
        get = {c: row[i].strip() for c, i in pos.items()}
        for c in REQUIRED:
            if not get[c]:
                raise ValueError(f"{where}: {c} is empty")
        gpus = _number(get["num_gpus"], "num_gpus", where)
        if gpus == 0 and skip_zero_gpu:
            continue
        if gpus < 1 or not gpus.is_integer():
            hint = " (CPU-only rows: load_trace(..., skip_zero_gpu=True))" if gpus == 0 else ""
            raise ValueError(f"{where}: num_gpus {get['num_gpus']!r} must be a positive whole number{hint}")
        try:
            submit = float(get["submit_time"])
        except ValueError:
            try:
                stamp = datetime.fromisoformat(get["submit_time"]).timestamp()
            except ValueError:
                raise ValueError(f"{where}: submit_time {get['submit_time']!r} is neither seconds nor an ISO "
                                 f"date-time like 2020-04-01 08:30:00") from None
            t0 = stamp if t0 is None else t0
            submit = stamp - t0
        kwargs = dict(submit_time=submit, num_gpus=int(gpus), duration=_number(get["duration"], "duration", where))
        if get.get("id"):
            try:
                kwargs["id"] = int(get["id"])
            except ValueError:
                raise ValueError(f"{where}: id {get['id']!r} is not a whole number (leave the id column out to "
                                 f"number jobs by row)") from None
        else:
            kwargs["id"] = len(jobs)
        if kwargs["id"] in ids:
            raise ValueError(f"{where}: job id {kwargs['id']} appears twice")
        for c in ("tenant", "model"):
            if get.get(c):
                kwargs[c] = get[c]
        if get.get("gpu_types"):
            kwargs["gpu_types"] = tuple(t.strip() for t in get["gpu_types"].split("|") if t.strip())
        for c in ("max_gpus", "cpus_per_gpu", "mem_gb_per_gpu", "estimate"):
            if get.get(c):
                v = _number(get[c], c, where)
                kwargs[c] = int(v) if c == "max_gpus" and v.is_integer() else v
        try:
            job = Job(**kwargs)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        ids.add(job.id)
        jobs.append(job)
    if not jobs:
        raise ValueError(f"{name}: no jobs after the header")
    return jobs


def save_trace(jobs, target) -> None:
    """Write jobs as CSV (a path or an open text file) in the columns :func:`load_trace` reads."""
    if isinstance(target, (str, os.PathLike)):
        with open(os.fspath(target), "w", newline="", encoding="utf-8") as f:
            return save_trace(jobs, f)
    w = csv.writer(target, lineterminator="\n")
    w.writerow(COLUMNS)
    for j in jobs:
        w.writerow([j.id, repr(j.submit_time), j.num_gpus, repr(j.duration), j.tenant, j.model,
                    "|".join(j.gpu_types) if j.gpu_types else "", j.max_gpus or "", repr(j.cpus_per_gpu),
                    repr(j.mem_gb_per_gpu), "" if j.estimate is None else repr(j.estimate)])


# ---- what a trace contains ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TraceStats:
    jobs: int
    span_s: float
    gang_share: dict            # gang size -> share of jobs
    gpu_time_share: dict        # gang size -> share of GPU-time
    duration_median_s: float
    duration_p90_s: float
    duration_p99_s: float
    hourly_arrivals: tuple      # share of submissions in each hour of the day (24 values)
    tenants: dict               # tenant -> share of jobs

    @property
    def single_gpu_share(self) -> float:
        return self.gang_share.get(1, 0.0)

    @property
    def large_gang_gpu_time(self) -> float:
        """Share of the GPU-time in gangs of 8 or more GPUs."""
        return sum(v for k, v in self.gpu_time_share.items() if k >= 8)

    @property
    def peak_to_trough(self) -> float:
        h = np.array(self.hourly_arrivals)
        return float(h.max() / max(h.min(), 1e-12))

    def summary(self) -> str:
        gangs = ", ".join(f"{k}: {v:.0%}" for k, v in self.gang_share.items())
        time = ", ".join(f"{k}: {v:.0%}" for k, v in self.gpu_time_share.items())
        return "\n".join([
            f"{self.jobs} jobs over {self.span_s / 3600:.1f} h",
            f"  jobs by gang size:     {gangs}",
            f"  GPU-time by gang size: {time}  (gangs of 8+: {self.large_gang_gpu_time:.0%})",
            f"  duration median {self.duration_median_s / 60:.1f} min, p90 {self.duration_p90_s / 3600:.2f} h, "
            f"p99 {self.duration_p99_s / 3600:.1f} h",
            f"  busiest hour / quietest hour of submissions: {self.peak_to_trough:.1f}x",
            f"  tenants: " + ", ".join(f"{k} {v:.0%}" for k, v in self.tenants.items())])

    def __repr__(self) -> str:
        return self.summary()


def trace_stats(jobs) -> TraceStats:
    """What a trace contains, in the terms the published analyses use."""
    jobs = list(jobs)
    if not jobs:
        raise ValueError("trace_stats needs at least one job")
    size = np.array([j.num_gpus for j in jobs])
    dur = np.array([j.duration for j in jobs])
    submit = np.array([j.submit_time for j in jobs])
    work = size * dur
    sizes = sorted(set(size.tolist()))
    hours = np.bincount(((submit % DAY) // 3600).astype(int), minlength=24)[:24]
    tenants: dict[str, int] = {}
    for j in jobs:
        tenants[j.tenant] = tenants.get(j.tenant, 0) + 1
    return TraceStats(len(jobs), float(submit.max() - submit.min()),
                      {s: float((size == s).mean()) for s in sizes},
                      {s: float(work[size == s].sum() / work.sum()) for s in sizes},
                      float(np.median(dur)), float(np.percentile(dur, 90)), float(np.percentile(dur, 99)),
                      tuple(float(x) for x in hours / hours.sum()),
                      {k: tenants[k] / len(jobs) for k in sorted(tenants)})
