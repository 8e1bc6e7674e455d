"""Scheduling policies: one interface, each a short readable rule.

A policy decides *which* waiting jobs start (and, if it preempts, which running jobs stop); the
placement rule decides *where*. Every policy is called at each event instant with the simulator and
acts through ``sim.start(job, pool)`` / ``sim.preempt(job)``:

* ``fifo``     — first come, first served; the head of the queue blocks everyone behind it.
* ``backfill`` — EASY backfilling (Lifka, "The ANL/IBM SP scheduling system", JSSPP 1995): FIFO, but when
  the head does not fit it gets a *reservation* at the earliest time enough GPUs will be free (by the
  running jobs' estimates); a later job may jump ahead if it fits now and does not delay that reservation.
* ``srtf``     — shortest remaining time first, preemptive, with oracle knowledge of durations: a bound,
  not a real scheduler (SRPT minimises mean completion time on one machine, Schrage 1968).
* ``tiresias`` — Tiresias's discretized two-dimensional least-attained-service (Gu et al., NSDI 2019):
  no duration knowledge; a job's service is GPUs x time it has held; jobs sit in priority queues by
  service thresholds, FIFO inside a queue; a waiting job in a higher queue preempts running jobs of
  lower queues; a job starved longer than ``promote_knob`` x its run time goes back to the top queue.
* ``drf``      — Dominant Resource Fairness over GPUs, CPUs and memory (Ghodsi et al., NSDI 2011) with
  optional weights and hard quotas: the next job comes from the tenant with the smallest weighted
  dominant share; a tenant at its quota waits even if GPUs are idle.
* ``gavel``    — heterogeneity-aware (after Narayanan et al., "Gavel", OSDI 2020): Tiresias's order, but
  each job goes to the GPU type where it runs fastest, and when jobs start together the fast GPUs go
  first to the jobs that lose most on their second-best type (Gavel solves an LP; this is its greedy core).

Heterogeneity-blind policies take the first GPU type (in cluster order) with room.
"""
from __future__ import annotations

import math
from bisect import bisect_left, insort
from itertools import islice

from .fairness import dominant_share

__all__ = ["Policy", "FIFO", "Backfill", "SRTF", "Tiresias", "DRF", "Gavel", "POLICIES", "make_policy",
           "easy_backfill", "reservation"]


class Policy:
    """Base class: hooks the simulator calls. Subclasses override ``schedule`` and what they need."""
    name = "policy"
    preemptive = False

    def attach(self, sim) -> None:
        """Reset per-run state (a policy object may be used for several runs)."""

    def on_arrival(self, sim, js) -> None: ...

    def on_start(self, sim, js) -> None: ...

    def on_stop(self, sim, js, why: str) -> None: ...

    def on_timer(self, sim, js, tag: str) -> None: ...

    def schedule(self, sim) -> None:
        raise NotImplementedError

    def entitlements(self, tenants: list[str]) -> dict[str, float] | None:
        """Each tenant's entitled fraction of the cluster, when the policy defines one."""
        return None

    def stuck_hint(self, sim, js) -> str:
        return "A policy must start some job whenever GPUs are free and every job's gang fits the cluster."

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<policy {self.describe()}>"


# ---- FIFO ---------------------------------------------------------------------------------------------

class FIFO(Policy):
    """Start jobs in arrival order; stop at the first one that does not fit (head-of-line blocking)."""
    name = "fifo"

    def schedule(self, sim) -> None:
        waiting = sim.waiting
        while waiting:
            js = next(iter(waiting.values()))
            pool = sim.pool_with_room(js)
            if pool is None:
                return
            sim.start(js, pool)


# ---- EASY backfilling ---------------------------------------------------------------------------------

def reservation(now, free, running, started, head) -> tuple[float, int]:
    """EASY's reservation for ``head``: (shadow time, extra GPUs).

    The shadow time is when, by the running jobs' expected ends (and those of the jobs in ``started``, which
    begin now), enough GPUs will be free for the head; the extra GPUs are those free then beyond its need.
    ``free`` counts the GPUs free once ``started`` have begun. A head that can never fit gets no protection
    (shadow time infinity).
    """
    if free >= head.num_gpus:
        return now, free - head.num_gpus
    avail = free
    for end, gpus in sorted(list(running) + [(now + j.estimate, j.num_gpus) for j in started]):
        avail += gpus
        if avail >= head.num_gpus:
            return end, avail - head.num_gpus
    return math.inf, free - head.num_gpus


def easy_backfill(now, free, running, queue):
    """EASY backfilling on one group of identical GPUs: which queued jobs start now, in order.

    ``free``: GPUs free now; ``running``: (expected end time, GPUs) of each running job;
    ``queue``: waiting jobs in arrival order, each with ``.num_gpus`` and ``.estimate`` (seconds).
    Jobs start from the head while they fit. The first that does not fit (the head) gets a reservation
    at the *shadow time*, when enough running jobs will have ended; the GPUs free then beyond its need
    are the *extra* GPUs. A later job may start now if it fits in the free GPUs and either ends by the
    shadow time or uses only extra GPUs (which it then takes from the extra).
    """
    started = []
    i = 0
    while i < len(queue) and queue[i].num_gpus <= free:
        started.append(queue[i])
        free -= queue[i].num_gpus
        i += 1
    if i == len(queue):
        return started
    shadow, extra = reservation(now, free, running, started, queue[i])
    for job in queue[i + 1:]:
        if job.num_gpus > free:
            continue
        if now + job.estimate <= shadow:
            started.append(job)
            free -= job.num_gpus
        elif job.num_gpus <= extra:
            started.append(job)
            free -= job.num_gpus
            extra -= job.num_gpus
    return started


class Backfill(Policy):
    """EASY backfilling per GPU type; ``rule(now, free, running, queue)`` decides (default
    :func:`easy_backfill`); ``depth`` caps how far down the queue it looks (Slurm's bf_max_job_test)."""
    name = "backfill"

    def __init__(self, rule=None, depth: int = 200):
        self.rule = rule or easy_backfill
        self.depth = int(depth)
        if self.rule is not easy_backfill:
            self.name = f"backfill({getattr(self.rule, '__name__', 'rule')})"

    def schedule(self, sim) -> None:
        for pool in sim.pools:
            if not pool.waiting or pool.free_total < pool.min_demand():
                continue
            queue = list(islice(pool.waiting.values(), self.depth))
            chosen = self.rule(sim.now, pool.free_total, list(pool.ends), queue)
            self._check(chosen, queue, pool)
            for js in chosen:
                if pool.host_room(js.job, js.num_gpus):
                    sim.start(js, pool)

    def _check(self, chosen, queue, pool) -> None:
        name = getattr(self.rule, "__name__", "rule")
        if not isinstance(chosen, (list, tuple)):
            raise TypeError(f"backfilling rule {name!r} returned a {type(chosen).__name__}; it must return a list "
                            f"of jobs from the queue")
        ids = {id(j) for j in queue}
        seen = set()
        total = 0
        for j in chosen:
            if id(j) not in ids or id(j) in seen:
                raise ValueError(f"backfilling rule {name!r} returned {j!r}, which is not a (distinct) job of the "
                                 f"queue it was given")
            seen.add(id(j))
            total += j.num_gpus
        if total > pool.free_total:
            raise ValueError(f"backfilling rule {name!r} started jobs needing {total} GPUs with only "
                             f"{pool.free_total} free")


# ---- preemptive priority policies ---------------------------------------------------------------------

class _SortedIndex:
    """Jobs sorted by a key: (key, id) pairs in a list kept sorted with bisect."""
    __slots__ = ("items", "key_of")

    def __init__(self):
        self.items: list[tuple] = []
        self.key_of: dict[int, tuple] = {}

    def add(self, key, jid) -> None:
        self.key_of[jid] = key
        insort(self.items, (key, jid))

    def remove(self, jid) -> None:
        key = self.key_of.pop(jid)
        del self.items[bisect_left(self.items, (key, jid))]

    def __len__(self) -> int:
        return len(self.items)


class _Preemptive(Policy):
    """Priority order over waiting and running jobs; a waiting job that *outranks* running ones may
    preempt them. Subclasses give the keys (lower = more urgent) and the outrank test."""
    preemptive = True
    ordered_victims = True           # the running index's order is the outrank order (victim search may stop early)

    def attach(self, sim) -> None:
        self.wait, self.run = _SortedIndex(), _SortedIndex()

    def waiting_key(self, sim, js) -> tuple:
        raise NotImplementedError

    def running_key(self, sim, js) -> tuple:
        return self.waiting_key(sim, js)

    def outranks(self, sim, h, v) -> bool:
        raise NotImplementedError

    def candidate_pools(self, sim, js) -> list:
        return js.pools

    def on_arrival(self, sim, js) -> None:
        self.wait.add(self.waiting_key(sim, js), js.id)

    def on_start(self, sim, js) -> None:
        if js.id in self.wait.key_of:
            self.wait.remove(js.id)
        self.run.add(self.running_key(sim, js), js.id)

    def on_stop(self, sim, js, why: str) -> None:
        self.run.remove(js.id)
        if why == "preempted":
            self.wait.add(self.waiting_key(sim, js), js.id)

    def _victims(self, sim, h, pool, room) -> list | None:
        """Running jobs on ``pool`` that ``h`` outranks, least urgent first, enough to make room; else None."""
        need_gpus = h.num_gpus - room[pool.index]
        victims = []
        for _, vid in reversed(self.run.items):
            v = sim.jobs[vid]
            if not self.outranks(sim, h, v):
                if self.ordered_victims:
                    break                # the index is in priority order: nobody further up is outranked
                continue
            if v.pool is pool:
                victims.append(v)
                need_gpus -= v.k
                if need_gpus <= 0:
                    break
        if need_gpus > 0:
            return None
        return victims

    def _worst_running(self, sim):
        return sim.jobs[self.run.items[-1][1]] if self.run.items else None

    def may_preempt(self, sim, h, worst) -> bool:
        """Whether ``h`` outranks some running job (here: the least urgent one)."""
        return worst is not None and self.outranks(sim, h, worst)

    def schedule(self, sim) -> None:
        if not self.wait.items:
            return
        room = {p.index: p.free_total for p in sim.pools}
        plan: list[tuple] = []          # (job, pool, GPUs, started by preempting?) in priority order
        planned: set[int] = set()
        min_need = min(p.min_demand() for p in sim.pools)   # the smallest waiting gang
        worst = self._worst_running(sim)
        items = self.wait.items
        i = 0
        while i < len(items):
            key, jid = items[i]
            i += 1
            if jid in planned:
                continue
            h = sim.jobs[jid]
            can_preempt = self.may_preempt(sim, h, worst)
            if not can_preempt:
                max_room = max(room.values())
                if max_room < min_need:
                    break                # nobody further down fits, and outranks nobody (keys only grow)
                if h.num_gpus > max_room:
                    continue
            pools = self.candidate_pools(sim, h)
            pool = next((p for p in pools if room[p.index] >= h.num_gpus and p.host_room(h.job, h.num_gpus)
                         and not _planned_host_clash(plan, p, h)), None)
            preempting = False
            if pool is None and can_preempt:
                for p in pools:
                    victims = self._victims(sim, h, p, room)
                    if victims is None:
                        continue
                    for v in victims:
                        sim.preempt(v)          # v waits again, behind h (it has a lower priority)
                        min_need = min(min_need, v.num_gpus)
                    room[p.index] = p.free_total - sum(k for _, q, k, _ in plan if q is p)
                    if room[p.index] >= h.num_gpus and p.host_room(h.job, h.num_gpus):
                        pool, preempting = p, True
                    i = bisect_left(items, (key, jid)) + 1   # victims re-entered the index: find h again
                    worst = self._worst_running(sim)
                    break
            if pool is not None:
                plan.append((h, pool, h.num_gpus, preempting))
                planned.add(jid)
                room[pool.index] -= h.num_gpus
        for js, pool, k, _ in self.assign(sim, plan, room):
            sim.start(js, pool, k)

    def assign(self, sim, plan, room):
        """The planned starts; Gavel re-assigns GPU types here."""
        return plan


def _planned_host_clash(plan, pool, js) -> bool:
    """Whether host CPU/memory already promised to planned starts on ``pool`` leaves no room for ``js``."""
    cpu = sum(it[2] * it[0].job.cpus_per_gpu for it in plan if it[1] is pool)
    mem = sum(it[2] * it[0].job.mem_gb_per_gpu for it in plan if it[1] is pool)
    if not cpu and not mem:
        return False
    n = js.num_gpus
    return (pool.cpu_used + cpu + n * js.job.cpus_per_gpu > pool.cpus + 1e-9
            or pool.mem_used + mem + n * js.job.mem_gb_per_gpu > pool.mem + 1e-9)


class SRTF(_Preemptive):
    """Shortest remaining time first, preemptive, knowing every job's duration (an oracle bound).

    Priority is the remaining *work* (reference seconds), waiting or running, as in SRPT: restart overheads and
    a slow placement do not make a running job look longer, so a job never preempts the one that just
    preempted it (comparing work with wall time made such pairs swap places forever, never progressing).
    """
    name = "srtf"
    ordered_victims = False          # running jobs are kept in finish-time order, not remaining-work order

    def waiting_key(self, sim, js):
        return (js.remaining, js.submit, js.id)

    def running_key(self, sim, js):
        return (js.finish_at, js.submit, js.id)

    def outranks(self, sim, h, v) -> bool:
        work_left = v.remaining - v.rate * max(0.0, sim.now - v.busy_from)
        return h.remaining < work_left - 1e-9

    def attach(self, sim) -> None:
        super().attach(sim)
        self.by_work = _SortedIndex()    # running jobs by their work left when they (re)started: an upper bound

    def on_start(self, sim, js) -> None:
        super().on_start(sim, js)
        self.by_work.add((js.remaining,), js.id)

    def on_stop(self, sim, js, why: str) -> None:
        self.by_work.remove(js.id)
        super().on_stop(sim, js, why)

    def may_preempt(self, sim, h, worst) -> bool:
        # nobody has more work left than when it started: if h is not shorter than that, it outranks no one
        return bool(self.by_work.items) and h.remaining < self.by_work.items[-1][0][0] - 1e-9


class Tiresias(_Preemptive):
    """Discretized 2D least-attained-service: queues by GPU-seconds attained, FIFO inside a queue.

    ``thresholds``: service (GPU-seconds) at which a job drops to the next queue (default: 1 and 10
    GPU-hours); ``promote_knob``: a job waiting longer than this many times its run so far returns to
    the top queue (starvation guard; None turns it off).
    """
    name = "tiresias"

    def __init__(self, thresholds=(3600.0, 36000.0), promote_knob: float | None = 8.0):
        self.thresholds = tuple(float(t) for t in thresholds)
        if list(self.thresholds) != sorted(self.thresholds) or any(t <= 0 for t in self.thresholds):
            raise ValueError(f"Tiresias thresholds must be positive and increasing GPU-seconds, got {thresholds!r}")
        self.promote_knob = promote_knob

    def waiting_key(self, sim, js):
        return (js.queue, js.submit, js.id)

    def outranks(self, sim, h, v) -> bool:
        return h.queue < v.queue

    def on_start(self, sim, js) -> None:
        super().on_start(sim, js)
        self._arm_demotion(sim, js)

    def _arm_demotion(self, sim, js) -> None:
        if js.queue < len(self.thresholds):
            need = self.thresholds[js.queue] - js.service_at(sim.now)
            sim.set_timer(js, sim.now + max(need, 0.0) / js.k, "demote")

    def on_stop(self, sim, js, why: str) -> None:
        super().on_stop(sim, js, why)
        if why == "preempted" and self.promote_knob is not None and js.executed > 0:
            sim.set_timer(js, sim.now + self.promote_knob * js.executed, "promote")

    def on_timer(self, sim, js, tag: str) -> None:
        if tag == "demote" and js.status == "running":
            self.run.remove(js.id)
            js.queue += 1
            self.run.add(self.running_key(sim, js), js.id)
            self._arm_demotion(sim, js)
        elif tag == "promote" and js.status == "waiting" and js.queue > 0:
            self.wait.remove(js.id)
            js.queue, js.service = 0, 0.0
            self.wait.add(self.waiting_key(sim, js), js.id)

    def describe(self) -> str:
        return f"tiresias(thresholds={[t / 3600 for t in self.thresholds]} GPU-h)"


class Gavel(Tiresias):
    """Tiresias's order, heterogeneity-aware placement: each job on the GPU type where it runs fastest."""
    name = "gavel"

    def candidate_pools(self, sim, js) -> list:
        if len(js.pools) == 1:
            return js.pools
        if js.ranked_pools is None:          # throughput per GPU type does not change: rank once per job
            js.ranked_pools = sorted(js.pools, key=lambda p: (-sim.packed_rate(js, p), p.index))
        return js.ranked_pools

    def assign(self, sim, plan, room):
        """Starts that used free GPUs are re-dealt: the job losing most on its second-best GPU type picks first."""
        movable = [it for it in plan if not it[3]]
        if len(movable) < 2 or len(sim.pools) < 2:
            return plan

        def regret(js):
            rates = sorted((sim.packed_rate(js, p) for p in js.pools), reverse=True)
            return rates[0] / rates[1] if len(rates) > 1 else 1.0

        left = {p.index: room[p.index] + sum(it[2] for it in movable if it[1] is p) for p in sim.pools}
        fixed = [it for it in plan if it[3]]
        redone = list(fixed)
        for js, _, k, _ in sorted(movable, key=lambda it: -regret(it[0])):
            pool = next((p for p in self.candidate_pools(sim, js) if left[p.index] >= k
                         and not _planned_host_clash(redone, p, js) and p.host_room(js.job, k)), None)
            if pool is None:
                return plan                  # the greedy re-deal split a gang: keep the first plan
            left[pool.index] -= k
            redone.append((js, pool, k, False))
        order = {it[0].id: n for n, it in enumerate(plan)}
        return sorted(redone, key=lambda it: order[it[0].id])

    def describe(self) -> str:
        return "gavel (Tiresias order, throughput-aware GPU types)"


# ---- DRF with quotas ----------------------------------------------------------------------------------

class DRF(Policy):
    """Weighted Dominant Resource Fairness over GPUs, CPUs and memory, with optional hard GPU quotas.

    ``weights``: {tenant: weight} (default 1 each); ``quotas``: {tenant: GPUs} or {tenant: fraction of the
    cluster's GPUs (a float <= 1)}; a tenant at its quota waits even when GPUs are idle unless
    ``lend_idle`` is set, which lets it use GPUs no under-quota tenant can use right now.
    """
    name = "drf"

    def __init__(self, weights=None, quotas=None, lend_idle: bool = False):
        self.weights = dict(weights or {})
        self.quotas = dict(quotas or {})
        for t, w in self.weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0:
                raise ValueError(f"DRF weight of tenant {t!r} must be a positive number, got {w!r}")
        for t, q in self.quotas.items():
            if isinstance(q, bool) or not isinstance(q, (int, float)) or q <= 0:
                raise ValueError(f"DRF quota of tenant {t!r} must be a positive number of GPUs (or a fraction "
                                 f"<= 1 of the cluster), got {q!r}")
        self.lend_idle = bool(lend_idle)

    def attach(self, sim) -> None:
        c = sim.cluster
        self.capacity = {"gpu": float(c.num_gpus), "cpu": float(sum(n.cpus for n in c.nodes)),
                         "mem": float(sum(n.mem_gb for n in c.nodes))}
        self.usage = {t: {"gpu": 0.0, "cpu": 0.0, "mem": 0.0} for t in sim.tenants}
        self.queues = {t: {} for t in sim.tenants}
        self.cap = {t: self._quota_gpus(t, c.num_gpus) for t in sim.tenants}
        unknown = set(self.quotas) | set(self.weights)
        for t in unknown - set(sim.tenants):
            raise ValueError(f"DRF: quota/weight given for tenant {t!r}, who submits no job in this trace "
                             f"(tenants: {', '.join(sim.tenants)})")
        for js in sim.jobs.values():
            if js.num_gpus > self.cap[js.tenant]:
                raise ValueError(f"DRF: job {js.id} of tenant {js.tenant!r} needs {js.num_gpus} GPUs but the "
                                 f"tenant's quota is {self.cap[js.tenant]:g}: it could never start")

    def _quota_gpus(self, tenant, total) -> float:
        q = self.quotas.get(tenant)
        if q is None:
            return float("inf")
        return q * total if isinstance(q, float) and q <= 1 else float(q)

    def share(self, tenant) -> float:
        return dominant_share(self.usage[tenant], self.capacity) / self.weights.get(tenant, 1.0)

    def on_arrival(self, sim, js) -> None:
        self.queues[js.tenant][js.id] = js

    def on_start(self, sim, js) -> None:
        self.queues[js.tenant].pop(js.id, None)
        self._use(js, js.k)

    def on_stop(self, sim, js, why: str) -> None:
        self._use(js, -js.k)
        if why == "preempted":
            self.queues[js.tenant][js.id] = js

    def _use(self, js, k) -> None:
        u = self.usage[js.tenant]
        u["gpu"] += k
        u["cpu"] += k * js.job.cpus_per_gpu
        u["mem"] += k * js.job.mem_gb_per_gpu

    def schedule(self, sim) -> None:
        self._fill(sim, lending=False)
        if self.lend_idle:
            self._fill(sim, lending=True)

    def _fill(self, sim, lending: bool) -> None:
        out: set[str] = set()
        order = {t: i for i, t in enumerate(sim.tenants)}
        while True:
            tenants = [t for t, q in self.queues.items() if q and t not in out]
            if not tenants:
                return
            t = min(tenants, key=lambda u: (self.share(u), order[u]))
            js, pool = self._next_job(sim, t, lending)
            if js is None:
                out.add(t)
                continue
            sim.start(js, pool)

    def _next_job(self, sim, tenant, lending):
        room = max(p.free_total for p in sim.pools)
        used = self.usage[tenant]["gpu"]
        for js in self.queues[tenant].values():
            if js.num_gpus > room:
                continue
            if not lending and used + js.num_gpus > self.cap[tenant] + 1e-9:
                continue
            pool = sim.pool_with_room(js)
            if pool is not None:
                return js, pool
        return None, None

    def entitlements(self, tenants):
        """Weighted fair shares (quotas are caps on top of them, not entitlements)."""
        w = {t: self.weights.get(t, 1.0) for t in tenants}
        s = sum(w.values())
        return {t: v / s for t, v in w.items()}

    def stuck_hint(self, sim, js) -> str:
        return f"Check the DRF quotas {self.quotas} against the jobs' gang sizes."

    def describe(self) -> str:
        parts = []
        if self.weights:
            parts.append(f"weights={self.weights}")
        if self.quotas:
            parts.append(f"quotas={self.quotas}")
        return f"drf({', '.join(parts)})" if parts else "drf"


POLICIES = {"fifo": FIFO, "backfill": Backfill, "srtf": SRTF, "tiresias": Tiresias, "drf": DRF, "gavel": Gavel}


def make_policy(policy) -> Policy:
    """A Policy instance from a name in :data:`POLICIES` or a Policy (used as given)."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, type) and issubclass(policy, Policy):
        return policy()
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)} or a Policy instance "
                         f"(e.g. aisys.cluster.DRF(quotas={{'a': 16}}))")
    return POLICIES[policy]()
