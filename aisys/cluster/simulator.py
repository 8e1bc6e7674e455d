"""The discrete-event simulator: a trace of jobs, a cluster, a policy and a placement rule in; a Report out.

A small heap-based event loop, not SimPy: the only events are arrivals, completions and policy timers
(Tiresias's queue demotions and starvation promotions), and between two events nothing changes —
every running job progresses at a constant rate. So a job's completion time is computed, not stepped,
and 10,000 jobs on 1,024 GPUs take a few seconds in pure Python. SimPy's processes and resources would
add a generator switch per event and hide the one thing a learner should see: the scheduling decision.

At every instant with events the loop (1) accounts the interval since the last event (busy GPUs,
fragmentation, per-tenant shares), (2) applies the events, (3) asks the policy to schedule, (4) lets
elastic jobs grow into GPUs nobody waits for. Policies act through :meth:`Simulator.start` and
:meth:`Simulator.preempt`; placement rules choose the nodes; the cost model says how fast the job runs
there. Preemption and elastic resizing cost a checkpoint-restart (:class:`CheckpointCost`), charged on
the GPUs the job resumes on, before it makes progress again.
"""
from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections import Counter
from dataclasses import dataclass
from types import MappingProxyType

from ..framework.progress import ProgressBar, progress_enabled
from . import cost
from .hardware import Cluster
from .jobs import MODELS, Job
from .placement import PLACEMENTS, check_placement, resolve_placement

__all__ = ["CheckpointCost", "JobState", "Pool", "Simulator"]

WAITING, RUNNING, DONE, PENDING = "waiting", "running", "done", "pending"
_FINISH, _TIMER = 0, 1


@dataclass(frozen=True)
class CheckpointCost:
    """What a preemption or a resize costs the job: ``restart_s`` to relaunch (containers, framework,
    data loaders) plus writing and reading its checkpoint (``ModelClass.checkpoint_bytes``) at
    ``storage_gbs`` GB/s. Both figures are assumptions; set them to 0 to see scheduling without overheads."""
    restart_s: float = 20.0
    storage_gbs: float = 1.0

    def seconds(self, model) -> float:
        io = 0.0 if self.storage_gbs <= 0 else 2 * model.checkpoint_bytes / (self.storage_gbs * 1e9)
        return self.restart_s + io


class JobState:
    """A job inside one simulation: where it runs, how much work is left, what happened to it."""
    __slots__ = ("job", "id", "num_gpus", "tenant", "submit", "pools", "status", "k", "gpus", "pool", "rate",
                 "seg_start", "busy_from", "remaining", "finish_at", "version", "needs_restart", "service",
                 "queue", "first_start", "finish", "preemptions", "resizes", "executed", "expected_end",
                 "overhead_s", "placements", "pool_rates", "alloc", "ranked_pools", "last_resize")

    def __init__(self, job: Job):
        self.job = job
        self.id, self.num_gpus, self.tenant, self.submit = job.id, job.num_gpus, job.tenant, job.submit_time
        self.pools: list[Pool] = []
        self.status, self.k, self.gpus, self.pool, self.rate = PENDING, 0, (), None, 0.0
        self.seg_start = self.busy_from = self.finish_at = self.expected_end = 0.0
        self.remaining = job.duration          # reference seconds of work left (as of seg_start when running)
        self.version = 0
        self.needs_restart = False
        self.service = 0.0                      # GPU-seconds attained (Tiresias's 2D service), as of seg_start
        self.queue = 0
        self.first_start = self.finish = None
        self.preemptions = self.resizes = 0
        self.executed = 0.0                     # wall seconds holding GPUs, as of seg_start
        self.overhead_s = 0.0
        self.placements: list[tuple[int, ...]] = []
        self.pool_rates: dict[int, float] | None = None
        self.ranked_pools: list | None = None
        self.last_resize = -math.inf
        self.alloc: list[tuple[int, list[int]]] = []   # (node index, its GPU ids) of the current segment

    @property
    def estimate(self) -> float:
        """The user's runtime estimate less the work done (reference seconds; never below a millisecond)."""
        done = self.job.duration - self.remaining
        return max(self.job.runtime_estimate - done, 1e-3)

    def service_at(self, now: float) -> float:
        return self.service + (self.k * (now - self.seg_start) if self.status == RUNNING else 0.0)

    def __repr__(self) -> str:
        return f"<job {self.id} {self.status} {self.num_gpus} GPUs tenant {self.tenant}>"


class Pool:
    """The GPUs of one type: free GPUs per node, host CPU/memory left, and the jobs that wait for them."""

    def __init__(self, index: int, gpu: str, cluster: Cluster):
        self.index, self.gpu = index, gpu
        self.nodes = [i for i, n in enumerate(cluster.nodes) if n.gpu == gpu]
        self.size = sum(cluster.nodes[i].num_gpus for i in self.nodes)
        self.cpus = float(sum(cluster.nodes[i].cpus for i in self.nodes))
        self.mem = float(sum(cluster.nodes[i].mem_gb for i in self.nodes))
        self.cpu_used = self.mem_used = 0.0
        self.free_total = self.size
        self.free: dict[str, int] = {cluster.nodes[i].name: cluster.nodes[i].num_gpus for i in self.nodes}
        self.free_view = MappingProxyType(self.free)
        self.free_ids: dict[int, list[int]] = {
            i: list(range(cluster.node_first_gpu[i], cluster.node_first_gpu[i] + cluster.nodes[i].num_gpus))
            for i in self.nodes}
        self.waiting: dict[int, JobState] = {}
        self.demand: Counter = Counter()       # gang sizes of the jobs waiting for this pool
        self.ends: list[tuple[float, int]] = []  # (expected end, GPUs) of running jobs, sorted (EASY backfilling)
        specs = {(cluster.nodes[i].intra, cluster.nodes[i].nic_bandwidth, cluster.nodes[i].nic.alpha,
                  cluster.nodes[i].num_gpus) for i in self.nodes}
        self.uniform = len(specs) == 1

    def min_demand(self) -> float:
        return min(self.demand) if self.demand else math.inf

    def host_room(self, job: Job, k: int) -> bool:
        return (self.cpu_used + k * job.cpus_per_gpu <= self.cpus + 1e-9
                and self.mem_used + k * job.mem_gb_per_gpu <= self.mem + 1e-9)

    def fits(self, js: JobState, k: int | None = None) -> bool:
        k = js.num_gpus if k is None else k
        return self.free_total >= k and self.host_room(js.job, k)

    def __repr__(self) -> str:
        return f"<pool {self.gpu}: {self.free_total}/{self.size} free>"


class Simulator:
    """One run. Policies read ``now``, ``waiting`` (arrival order), ``running``, ``pools`` and call
    ``start`` / ``preempt`` / ``set_timer``; everything else is bookkeeping for the report."""

    def __init__(self, cluster: Cluster, jobs, policy, placement="pack", *, elastic: bool = False,
                 checkpoint: CheckpointCost | None = None, progress: bool | None = None):
        if not isinstance(cluster, Cluster):
            raise TypeError(f"simulate needs a Cluster (e.g. Cluster.preset('two_racks_v100_a100')), "
                            f"got {type(cluster).__name__}")
        self.cluster = cluster
        self.policy = policy
        self.placement_name, self.place = resolve_placement(placement)
        self._validate_placement = self.place not in PLACEMENTS.values()
        self.elastic = bool(elastic)
        self.checkpoint = checkpoint or CheckpointCost()
        self.pools = [Pool(i, gpu, cluster) for i, gpu in enumerate(cluster.gpu_types)]
        self._pool_by_gpu = {p.gpu: p for p in self.pools}
        self.jobs: dict[int, JobState] = {}
        jobs = list(jobs)
        if not jobs:
            raise ValueError("simulate needs at least one job")
        for job in jobs:
            if not isinstance(job, Job):
                raise TypeError(f"jobs must be aisys.cluster.Job objects; got {type(job).__name__}: {job!r}")
            if job.id in self.jobs:
                raise ValueError(f"two jobs share id {job.id}; job ids must be unique")
            js = JobState(job)
            js.pools = self._compatible_pools(job)
            self.jobs[job.id] = js
        self.order = sorted(self.jobs.values(), key=lambda s: (s.submit, s.id))
        self.now = 0.0
        self.waiting: dict[int, JobState] = {}
        self.running: dict[int, JobState] = {}
        self.done = 0
        self._heap: list = []
        self._seq = 0
        self._rate_cache: dict = {}
        # records for the report
        self.segments: list[tuple] = []        # (job id, pool index, gpus, start, end, overhead end, rate)
        self.samples: list[tuple] = []         # (t, busy GPUs, waiting jobs) after each scheduling step
        self.tenants = sorted({s.tenant for s in self.order})
        self.held = dict.fromkeys(self.tenants, 0)
        self.waiting_by_tenant = dict.fromkeys(self.tenants, 0)
        self.held_integral = dict.fromkeys(self.tenants, 0.0)
        self.backlog_time = dict.fromkeys(self.tenants, 0.0)
        self.backlog_held = dict.fromkeys(self.tenants, 0.0)
        self.busy = 0
        self.busy_integral = 0.0
        self.frag_integral = 0.0
        self.blocked_integral = 0.0
        self._last_t: float | None = None
        self.interrupted = False
        self._shrunk: set[int] = set()
        self.show_progress = progress_enabled(len(jobs) >= 5000 if progress is None else progress)

    # ---- set-up ---------------------------------------------------------------------------------------
    def _compatible_pools(self, job: Job) -> list[Pool]:
        model = MODELS[job.model]
        if job.gpu_types is not None:
            unknown = [t for t in job.gpu_types if t not in self.cluster.gpu_types]
            if len(unknown) == len(job.gpu_types):
                raise ValueError(f"job {job.id} accepts GPU types {list(job.gpu_types)}, none of which this "
                                 f"cluster has ({', '.join(self.cluster.gpu_types)})")
        pools = [p for p in self.pools if (job.gpu_types is None or p.gpu in job.gpu_types)
                 and self.cluster.gpu_type(p.gpu).mem_gb >= model.mem_gb]
        if not pools:
            have = ", ".join(f"{g} {self.cluster.gpu_type(g).mem_gb:g} GB" for g in self.cluster.gpu_types)
            raise ValueError(f"job {job.id} ({job.model}) needs {model.mem_gb:g} GB per GPU; no GPU type it accepts "
                             f"has that much ({have})")
        fitting = [p for p in pools if p.size >= job.num_gpus and p.cpus >= job.num_gpus * job.cpus_per_gpu
                   and p.mem >= job.num_gpus * job.mem_gb_per_gpu]
        if not fitting:
            best = max(pools, key=lambda p: p.size)
            if best.size < job.num_gpus:
                raise ValueError(f"job {job.id} asks for {job.num_gpus} GPUs, but the largest group of GPUs it can "
                                 f"use ({best.gpu}) has {best.size}; a gang must run on one GPU type "
                                 f"(the cluster has {self.cluster.num_gpus} GPUs in all)")
            raise ValueError(f"job {job.id} asks for {job.num_gpus} GPUs with {job.cpus_per_gpu:g} CPUs and "
                             f"{job.mem_gb_per_gpu:g} GB host memory each; the {best.gpu} nodes have "
                             f"{best.cpus:g} CPUs and {best.mem:g} GB in all")
        return fitting

    # ---- what policies call -------------------------------------------------------------------------
    def pool_with_room(self, js: JobState, pools=None) -> Pool | None:
        """The first of the job's pools (cluster order, or ``pools``) that can start it now."""
        for p in (js.pools if pools is None else pools):
            if p.free_total >= js.num_gpus and p.host_room(js.job, js.num_gpus):
                return p
        return None

    def packed_rate(self, js: JobState, pool: Pool) -> float:
        """How fast the job would run packed on this pool (reference seconds of work per second)."""
        if js.pool_rates is None:
            js.pool_rates = {}
        r = js.pool_rates.get(pool.index)
        if r is None:
            gpus: list[int] = []
            for i in pool.nodes:              # the pool's first nodes, filled in order: a packed gang
                first = self.cluster.node_first_gpu[i]
                gpus.extend(range(first, first + self.cluster.nodes[i].num_gpus))
                if len(gpus) >= js.num_gpus:
                    break
            r = js.pool_rates[pool.index] = self._rate(js, gpus[:js.num_gpus], js.num_gpus)
        return r

    def start(self, js: JobState, pool: Pool, k: int | None = None) -> None:
        """Start (or resume) a waiting job on ``k`` GPUs (default: its gang) of ``pool``, placed by the rule."""
        k = js.num_gpus if k is None else k
        if js.status != WAITING:
            raise RuntimeError(f"policy {self.policy.name!r} started job {js.id}, which is {js.status}")
        if pool not in js.pools:
            raise RuntimeError(f"policy {self.policy.name!r} started job {js.id} on {pool.gpu} GPUs, which it "
                               f"cannot use (it can use: {', '.join(p.gpu for p in js.pools)})")
        if pool.free_total < k or not pool.host_room(js.job, k):
            raise RuntimeError(f"policy {self.policy.name!r} started job {js.id} ({k} GPUs) on {pool.gpu} with "
                               f"only {pool.free_total} GPUs free (or not enough host CPUs/memory)")
        self._remove_waiting(js)
        self._place(js, pool, k)
        self.policy.on_start(self, js)

    def preempt(self, js: JobState) -> None:
        """Stop a running job now; it waits again and pays a checkpoint-restart when it resumes."""
        if js.status != RUNNING:
            raise RuntimeError(f"policy {self.policy.name!r} preempted job {js.id}, which is {js.status}")
        self._stop(js)
        js.preemptions += 1
        js.needs_restart = True
        self.policy.on_stop(self, js, "preempted")
        self._add_waiting(js)

    def set_timer(self, js: JobState, when: float, tag: str) -> None:
        """Call ``policy.on_timer(sim, js, tag)`` at ``when`` unless the job starts or stops before then."""
        self._push(max(when, self.now), _TIMER, js.id, js.version, tag)

    # ---- mechanics ----------------------------------------------------------------------------------
    def _push(self, t, kind, jid, version, tag=None):
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, jid, version, tag))

    def _add_waiting(self, js: JobState) -> None:
        js.status = WAITING
        self.waiting[js.id] = js
        self.waiting_by_tenant[js.tenant] += 1
        for p in js.pools:
            p.waiting[js.id] = js
            p.demand[js.num_gpus] += 1

    def _remove_waiting(self, js: JobState) -> None:
        del self.waiting[js.id]
        self.waiting_by_tenant[js.tenant] -= 1
        for p in js.pools:
            del p.waiting[js.id]
            c = p.demand[js.num_gpus] - 1
            if c:
                p.demand[js.num_gpus] = c
            else:
                del p.demand[js.num_gpus]

    def _rate(self, js: JobState, gpus, k: int, alloc=None) -> float:
        cluster, job = self.cluster, js.job
        pool = self._pool_by_gpu[cluster.nodes[cluster.gpu_node[gpus[0]]].gpu]
        key = None
        if pool.uniform:
            if alloc is None:
                per_node = Counter(cluster.gpu_node[g] for g in gpus)
            else:
                per_node = {idx: len(ids) for idx, ids in alloc}
            racks = {cluster.nodes[i].rack for i in per_node}
            key = (job.model, js.num_gpus, k, pool.index, max(per_node.values()) > 1, len(per_node) > 1,
                   len(racks) > 1)
            r = self._rate_cache.get(key)
            if r is not None:
                return r
        r = cost.rate(cluster, MODELS[job.model], gpus, js.num_gpus)
        if key is not None:
            self._rate_cache[key] = r
        return r

    def _place(self, js: JobState, pool: Pool, k: int) -> None:
        cluster = self.cluster
        answer = self.place(pool.free_view, k, cluster)
        if self._validate_placement:
            answer = check_placement(answer, pool.free_view, k, self.placement_name)
        gpus: list[int] = []
        alloc = []
        for name, c in answer.items():
            idx = cluster.node_index[name]
            ids = pool.free_ids[idx]
            alloc.append((idx, ids[:c]))
            gpus.extend(ids[:c])
            del ids[:c]
            left = pool.free[name] - c
            if left:
                pool.free[name] = left
            else:
                del pool.free[name]
        pool.free_total -= k
        pool.cpu_used += k * js.job.cpus_per_gpu
        pool.mem_used += k * js.job.mem_gb_per_gpu
        now = self.now
        overhead = self.checkpoint.seconds(MODELS[js.job.model]) if js.needs_restart else 0.0
        js.needs_restart = False
        js.status, js.k, js.gpus, js.pool, js.alloc = RUNNING, k, tuple(gpus), pool, alloc
        js.rate = self._rate(js, gpus, k, alloc)
        js.seg_start, js.busy_from = now, now + overhead
        js.finish_at = js.busy_from + js.remaining / js.rate
        js.expected_end = js.busy_from + js.estimate / js.rate
        js.version += 1
        js.placements.append(js.gpus)
        if js.first_start is None:
            js.first_start = now
        self.running[js.id] = js
        insort(pool.ends, (js.expected_end, k))
        self.busy += k
        self.held[js.tenant] += k
        self._push(js.finish_at, _FINISH, js.id, js.version)

    def _stop(self, js: JobState, finished: bool = False) -> None:
        now, pool, k = self.now, js.pool, js.k
        progress = max(0.0, now - js.busy_from)
        overhead_end = min(now, js.busy_from)
        js.overhead_s += overhead_end - js.seg_start
        js.remaining = 0.0 if finished else max(js.remaining - js.rate * progress, 0.0)
        js.service += k * (now - js.seg_start)
        js.executed += now - js.seg_start
        self.segments.append((js.id, pool.index, js.gpus, js.seg_start, now, overhead_end, js.rate))
        nodes = self.cluster.nodes
        for idx, ids in js.alloc:
            free_ids = pool.free_ids[idx]
            free_ids.extend(ids)
            free_ids.sort()
            name = nodes[idx].name
            pool.free[name] = pool.free.get(name, 0) + len(ids)
        pool.free_total += k
        pool.cpu_used -= k * js.job.cpus_per_gpu
        pool.mem_used -= k * js.job.mem_gb_per_gpu
        ends = pool.ends
        ends.pop(_index_of(ends, (js.expected_end, k)))
        del self.running[js.id]
        self.busy -= k
        self.held[js.tenant] -= k
        js.version += 1              # k, gpus and pool keep describing the segment that just ended

    def _resize(self, js: JobState, k: int) -> None:
        pool = js.pool
        self._stop(js)
        self.policy.on_stop(self, js, "resized")
        js.resizes += 1
        js.last_resize = self.now
        js.needs_restart = True
        js.status = WAITING
        self._place(js, pool, k)
        self.policy.on_start(self, js)

    def _elastic_shrink(self) -> None:
        """Grown jobs give GPUs back, largest extra first, when that lets the smallest waiting gang fit."""
        self._shrunk = set()
        for pool in self.pools:
            need = pool.min_demand()
            if need <= pool.free_total:
                continue
            grown = sorted((j for j in self.running.values() if j.pool is pool and j.k > j.num_gpus),
                           key=lambda j: (j.num_gpus - j.k, j.id))
            if not grown or pool.free_total + sum(j.k - j.num_gpus for j in grown) < need:
                continue
            for js in grown:
                if pool.free_total >= need:
                    break
                self._resize(js, js.num_gpus)
            self._shrunk.add(pool.index)

    def _elastic_grow(self) -> None:
        """Elastic jobs grow, all at once to ``max_gpus``, into free GPUs that no waiting gang can use — not where
        GPUs were just given back, and not sooner than ten restarts' time after the last resize (a resize is a
        checkpoint-restart: growing one GPU at a time would spend the gain on restarts)."""
        for pool in self.pools:
            if pool.free_total == 0 or pool.min_demand() <= pool.free_total or pool.index in self._shrunk:
                continue
            growable = sorted((j for j in self.running.values() if j.pool is pool and j.job.elastic
                               and j.k < j.job.max_gpus), key=lambda j: (j.first_start, j.id))
            for js in growable:
                extra = js.job.max_gpus - js.k
                settle = 10 * self.checkpoint.seconds(MODELS[js.job.model])
                if (extra > pool.free_total or js.finish_at - self.now < settle
                        or self.now - js.last_resize < settle or not pool.host_room(js.job, extra)):
                    continue
                self._resize(js, js.job.max_gpus)

    def _account(self, t: float) -> None:
        """Integrate the state held since the last event up to ``t``."""
        last = self._last_t
        self._last_t = t
        if last is None or t <= last:
            return
        dt = t - last
        self.busy_integral += self.busy * dt
        frag = blocked = 0
        for p in self.pools:
            if p.free_total and p.demand:
                if min(p.demand) > p.free_total:
                    frag += p.free_total
                else:
                    blocked += p.free_total
        self.frag_integral += frag * dt
        self.blocked_integral += blocked * dt
        for tenant, held in self.held.items():
            if held:
                self.held_integral[tenant] += held * dt
            if self.waiting_by_tenant[tenant]:
                self.backlog_time[tenant] += dt
                self.backlog_held[tenant] += held * dt

    # ---- the loop -----------------------------------------------------------------------------------
    def run(self):
        from .report import Report

        self.policy.attach(self)
        order, n, i = self.order, len(self.order), 0
        heap = self._heap
        bar = ProgressBar(n, desc=f"simulate {self.policy.name}", enabled=self.show_progress)
        try:
            while self.done < n:
                t_arrive = order[i].submit if i < n else math.inf
                t_event = heap[0][0] if heap else math.inf
                t = min(t_arrive, t_event)
                if t == math.inf:
                    stuck = next(iter(self.waiting.values()))
                    raise RuntimeError(
                        f"simulation stuck at t={self.now:g} s under policy {self.policy.name!r}: "
                        f"{len(self.waiting)} jobs wait, nothing runs and nothing else will arrive "
                        f"(e.g. job {stuck.id}: {stuck.num_gpus} GPUs, tenant {stuck.tenant!r}). "
                        f"{self.policy.stuck_hint(self, stuck)}")
                self._account(t)
                self.now = t
                while i < n and order[i].submit <= t:
                    js = order[i]
                    i += 1
                    self._add_waiting(js)
                    self.policy.on_arrival(self, js)
                while heap and heap[0][0] <= t:
                    _, _, kind, jid, version, tag = heapq.heappop(heap)
                    js = self.jobs[jid]
                    if js.version != version:
                        continue
                    if kind == _FINISH:
                        self._stop(js, finished=True)
                        js.status, js.finish = DONE, t
                        self.done += 1
                        self.policy.on_stop(self, js, "finished")
                        bar.update()
                    else:
                        self.policy.on_timer(self, js, tag)
                if self.elastic:
                    self._elastic_shrink()
                self.policy.schedule(self)
                if self.elastic:
                    self._elastic_grow()
                self.samples.append((t, self.busy, len(self.waiting)))
        except KeyboardInterrupt:
            self.interrupted = True
            for js in list(self.running.values()):     # close the open segments at the interruption
                self._stop(js)
                js.status = RUNNING
        finally:
            bar.close()
        if self.interrupted:
            print(f"interrupted at t={self.now:.0f} s: {self.done} of {n} jobs finished; the report covers "
                  f"those (rep.interrupted is True)")
        return Report.from_simulation(self)


def _index_of(items: list, item) -> int:
    """Where ``item`` sits in the sorted list ``items``."""
    i = bisect_left(items, item)
    if i < len(items) and items[i] == item:
        return i
    return items.index(item)
