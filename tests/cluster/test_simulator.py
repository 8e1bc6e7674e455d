"""The simulator's invariants on hypothesis-drawn traces, closed forms, and each policy's decisions by hand."""
from __future__ import annotations

import io
import math

import pytest
from hypothesis import given, settings, strategies as st

from aisys import cluster as cl
from aisys.cluster import Cluster, Job, Node

NO_COST = cl.CheckpointCost(restart_s=0.0, storage_gbs=0.0)


def two_types() -> Cluster:
    """One 4-GPU V100 node and two 2-GPU A100 nodes in another rack: small enough to reason about."""
    return Cluster([Node("v0", "V100", 4, 32, 256.0, rack="r0"), Node("a0", "A100", 2, 32, 256.0, rack="r1"),
                    Node("a1", "A100", 2, 32, 256.0, rack="r1")], name="two_types")


def check_invariants(c: Cluster, jobs, rep) -> None:
    """No GPU twice at once; gangs start whole on one compatible type; every job finishes; work conserved."""
    by_id = {j.id: j for j in jobs}
    assert not rep.interrupted and len(rep.jobs) == len(jobs), "every job finishes"
    per_gpu: dict[int, list] = {}
    work = {j.id: 0.0 for j in jobs}
    first_k: dict[int, int] = {}
    busy = 0.0
    for jid, pool, gpus, start, end, ovh_end, rate in rep.segments:
        job = by_id[jid]
        assert len(set(gpus)) == len(gpus)
        lo, hi = job.num_gpus, (job.max_gpus or job.num_gpus)
        assert lo <= len(gpus) <= hi, f"job {jid} ran on {len(gpus)} GPUs"
        first_k.setdefault(jid, len(gpus))
        types = {c.node_of_gpu(g).gpu for g in gpus}
        assert len(types) == 1, f"job {jid} mixed GPU types {types}"
        gpu = types.pop()
        assert job.gpu_types is None or gpu in job.gpu_types
        assert c.gpu_type(gpu).mem_gb >= job.model_class.mem_gb
        assert start <= ovh_end <= end
        assert rate == pytest.approx(cl.rate(c, job.model_class, gpus, job.num_gpus))
        work[jid] += rate * (end - ovh_end)
        busy += len(gpus) * (end - start)
        for g in gpus:
            per_gpu.setdefault(g, []).append((start, end, jid))
    for jid, k in first_k.items():
        assert k == by_id[jid].num_gpus, f"job {jid} started on {k} GPUs, not its gang of {by_id[jid].num_gpus}"
    for g, spans in per_gpu.items():
        spans.sort()
        for (s0, e0, j0), (s1, e1, j1) in zip(spans, spans[1:]):
            assert s1 >= e0 - 1e-9, f"GPU {g} given to job {j1} at {s1} while job {j0} holds it until {e0}"
    for j in jobs:
        assert work[j.id] == pytest.approx(j.duration, rel=1e-9, abs=1e-6), f"job {j.id} did its work exactly"
        r = rep.job(j.id)
        assert r.start >= j.submit_time and r.finish > r.start
    assert busy == pytest.approx(rep.gpu_seconds, rel=1e-9)
    assert busy == pytest.approx(sum(len(s[2]) * (s[4] - s[3]) for s in rep.segments))


jobs_strategy = st.lists(
    st.tuples(st.floats(0, 50, allow_nan=False).map(lambda x: round(x, 1)), st.integers(1, 4),
              st.integers(1, 120), st.sampled_from(["a", "b"]), st.sampled_from(["resnet50", "vgg16", "lstm_lm"]),
              st.booleans()),
    min_size=1, max_size=12)


def make_jobs(raw, elastic_ok: bool) -> list[Job]:
    return [Job(id=i, submit_time=t, num_gpus=n, duration=float(d), tenant=ten, model=m,
                max_gpus=min(2 * n, 4) if (el and elastic_ok) else None)
            for i, (t, n, d, ten, m, el) in enumerate(raw)]


@settings(max_examples=60, deadline=None)
@given(raw=jobs_strategy, policy=st.sampled_from(list(cl.POLICIES)), placement=st.sampled_from(list(cl.PLACEMENTS)),
       hetero=st.booleans(), elastic=st.booleans())
def test_invariants_on_random_traces(raw, policy, placement, hetero, elastic):
    c = two_types() if hetero else Cluster.uniform(nodes=2, gpus_per_node=2, racks=2)
    jobs = make_jobs(raw, elastic)
    rep = cl.simulate(c, jobs, policy, placement, elastic=elastic)
    check_invariants(c, jobs, rep)
    assert rep.overhead_gpu_seconds == pytest.approx(
        sum(len(s[2]) * (s[5] - s[3]) for s in rep.segments))


@settings(max_examples=25, deadline=None)
@given(raw=jobs_strategy, policy=st.sampled_from(list(cl.POLICIES)))
def test_gpu_seconds_equal_work_plus_overheads_when_packed_on_the_reference(raw, policy):
    """On one node every gang is packed as on the reference: each job runs exactly its duration (+ restarts)."""
    c = Cluster.uniform(nodes=1, gpus_per_node=8)
    jobs = make_jobs(raw, elastic_ok=False)
    rep = cl.simulate(c, jobs, policy, "pack")
    work = sum(j.num_gpus * j.duration for j in jobs)
    assert rep.gpu_seconds == pytest.approx(work + rep.overhead_gpu_seconds, rel=1e-9)
    for j in jobs:
        r = rep.job(j.id)
        assert r.run_time == pytest.approx(j.duration + r.overhead, rel=1e-9)


def srpt_mean_completion(jobs) -> float:
    """Shortest remaining processing time on one machine, stepped by hand in unit time (durations integral)."""
    remaining = {j.id: j.duration for j in jobs}
    finish = {}
    t = 0.0
    while remaining:
        ready = [j for j in jobs if j.id in remaining and j.submit_time <= t]
        if not ready:
            t = min(j.submit_time for j in jobs if j.id in remaining)
            continue
        j = min(ready, key=lambda x: (remaining[x.id], x.submit_time, x.id))
        nxt = min([x.submit_time for x in jobs if x.id in remaining and x.submit_time > t] + [t + remaining[j.id]])
        remaining[j.id] -= nxt - t
        t = nxt
        if remaining[j.id] <= 1e-12:
            del remaining[j.id]
            finish[j.id] = t
    return sum(finish[j.id] - j.submit_time for j in jobs) / len(jobs)


def test_srtf_on_one_gpu_is_the_srpt_optimum_computed_by_hand():
    c = Cluster.uniform(nodes=1, gpus_per_node=1)
    jobs = [Job(0, 0.0, 1, 10.0), Job(1, 1.0, 1, 2.0), Job(2, 2.0, 1, 5.0), Job(3, 3.0, 1, 1.0)]
    rep = cl.simulate(c, jobs, "srtf", checkpoint=NO_COST)
    # by hand: J0 0-1, J1 1-3, J3 3-4, J2 4-9, J0 9-18 -> completion times 18, 2, 7, 1
    assert [rep.job(i).finish for i in range(4)] == [18.0, 3.0, 9.0, 4.0]
    assert rep.jct_mean == 7.0 == srpt_mean_completion(jobs)
    assert rep.job(0).preemptions == 1
    fifo = cl.simulate(c, jobs, "fifo", checkpoint=NO_COST)
    assert fifo.jct_mean == (10 + 11 + 15 + 15) / 4 > rep.jct_mean


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 15)), min_size=1, max_size=8))
def test_srtf_matches_srpt_on_random_single_gpu_traces(raw):
    jobs = [Job(i, float(t), 1, float(d)) for i, (t, d) in enumerate(raw)]
    rep = cl.simulate(Cluster.uniform(nodes=1, gpus_per_node=1), jobs, "srtf", checkpoint=NO_COST)
    assert rep.jct_mean == pytest.approx(srpt_mean_completion(jobs))
    assert rep.jct_mean <= cl.simulate(Cluster.uniform(), jobs, "fifo", checkpoint=NO_COST).jct_mean + 1e-9


def test_srtf_compares_work_left_so_a_slow_placement_cannot_make_two_jobs_swap_forever():
    # found by hypothesis: spread over two racks, job 0 (rate < 1, restarting) looked longer in wall time than
    # job 1's remaining work, and job 1 (restarting) longer than job 0's: they preempted each other forever
    c = Cluster.uniform(nodes=2, gpus_per_node=2, racks=2)
    jobs = [Job(0, 0.0, 2, 38.0, tenant="b", model="lstm_lm"), Job(1, 2.0, 4, 40.0, tenant="a", model="resnet50"),
            Job(2, 16.0, 4, 9.0, tenant="a", model="vgg16"), Job(3, 30.0, 1, 36.0, tenant="b", model="lstm_lm")]
    rep = cl.simulate(c, jobs, "srtf", "spread")
    check_invariants(c, jobs, rep)
    assert rep.preemptions <= 4


def blocked_gang_trace():
    """4 GPUs: a 2-GPU job runs; a 4-GPU gang arrives and waits; then two 1-GPU jobs (short, long)."""
    return [Job(0, 0.0, 2, 100.0), Job(1, 1.0, 4, 50.0), Job(2, 2.0, 1, 10.0), Job(3, 3.0, 1, 200.0)]


def test_fifo_leaves_gpus_idle_behind_a_waiting_gang_and_backfill_does_not():
    c = Cluster.uniform(nodes=1, gpus_per_node=4)
    jobs = blocked_gang_trace()
    fifo = cl.simulate(c, jobs, "fifo")
    assert [fifo.job(i).start for i in range(4)] == [0.0, 100.0, 150.0, 150.0]
    capacity = 4 * fifo.makespan
    # 1 s (t=1..2) only the gang waits and the 2 free GPUs cannot hold it: fragmentation; from t=2 to 100 a
    # 1-GPU job waits too and would fit: FIFO *chose* to leave the 2 GPUs idle (blocked)
    assert fifo.fragmentation * capacity == pytest.approx(2 * 1.0)
    assert fifo.blocked * capacity == pytest.approx(2 * 98.0)
    easy = cl.simulate(c, jobs, "backfill")
    # job 2 ends at 12 s, before the gang's reservation at 100 s: it jumps ahead; job 3 would delay the gang
    assert [easy.job(i).start for i in range(4)] == [0.0, 100.0, 2.0, 150.0]
    assert easy.job(1).start == fifo.job(1).start           # the reservation held
    assert easy.blocked < fifo.blocked and easy.jct_mean < fifo.jct_mean


def test_tiresias_runs_small_jobs_around_the_gang_which_then_waits():
    c = Cluster.uniform(nodes=1, gpus_per_node=4)
    rep = cl.simulate(c, blocked_gang_trace(), "tiresias")
    # same queue: no preemption; the 1-GPU jobs start at once, the gang waits until 3 GPUs... and the long job end
    assert [rep.job(i).start for i in range(4)] == [0.0, 203.0, 2.0, 3.0]
    assert rep.preemptions == 0


def test_tiresias_demotes_a_long_job_and_lets_a_new_one_preempt_it():
    c = Cluster.uniform(nodes=1, gpus_per_node=1)
    jobs = [Job(0, 0.0, 1, 5000.0), Job(1, 4000.0, 1, 100.0)]
    rep = cl.simulate(c, jobs, cl.Tiresias(thresholds=(3600.0,)), checkpoint=NO_COST)
    assert rep.job(1).start == 4000.0 and rep.job(1).finish == 4100.0   # job 0 fell to queue 1 at 3600 GPU-s
    assert rep.job(0).preemptions == 1 and rep.job(0).finish == 5100.0
    fifo = cl.simulate(c, jobs, "fifo")
    assert fifo.job(1).finish == 5100.0


def test_drf_holds_back_a_tenant_over_its_quota():
    c = Cluster.uniform(nodes=1, gpus_per_node=4)
    jobs = [Job(i, 0.0, 1, 100.0, tenant="a") for i in range(4)] + [Job(4, 10.0, 1, 100.0, tenant="b")]
    rep = cl.simulate(c, jobs, cl.DRF(quotas={"a": 2}))
    assert sorted(rep.job(i).start for i in range(4)) == [0.0, 0.0, 100.0, 100.0]  # 2 GPUs idle meanwhile
    assert rep.job(4).start == 10.0
    assert rep.blocked > 0
    assert rep.tenants["a"].entitlement == 0.5          # equal weights; the quota is a cap on top
    lent = cl.simulate(c, jobs, cl.DRF(quotas={"a": 2}, lend_idle=True))
    assert sorted(lent.job(i).start for i in range(4)) == [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="quota"):
        cl.simulate(c, [Job(0, 0.0, 4, 10.0, tenant="a")], cl.DRF(quotas={"a": 2}))


def test_drf_gives_the_next_gpu_to_the_tenant_with_the_smaller_dominant_share():
    c = Cluster.uniform(nodes=1, gpus_per_node=4, cpus_per_node=32)
    # a's jobs are CPU-heavy (8 CPUs per GPU: dominant share 8/32 per job), b's light (2 CPUs: 1/4 GPU share)
    jobs = [Job(i, 0.0, 1, 100.0, tenant="a", cpus_per_gpu=8.0) for i in range(3)]
    jobs += [Job(10 + i, 0.0, 1, 100.0, tenant="b", cpus_per_gpu=2.0) for i in range(3)]
    rep = cl.simulate(c, jobs, "drf")
    started = sorted(r.id for r in rep.jobs if r.start == 0.0)
    assert started == [0, 1, 10, 11]
    fifo = cl.simulate(c, jobs, "fifo")
    assert sorted(r.id for r in fifo.jobs if r.start == 0.0) == [0, 1, 2, 10]


def test_a_job_that_fits_only_one_gpu_type_runs_there_under_every_policy():
    c = Cluster.preset("two_racks_v100_a100")
    big = Job(0, 0.0, 8, 3600.0, model="gpt_1p3b")          # 36 GB per GPU: A100 only
    typed = Job(1, 0.0, 1, 600.0, gpu_types=("V100",))
    other = Job(2, 0.0, 1, 600.0, model="vgg16")
    for policy in cl.POLICIES:
        rep = cl.simulate(c, [big, typed, other], policy)
        assert rep.job(0).gpu_types == ("A100",) and rep.job(1).gpu_types == ("V100",)
    # heterogeneity-blind FIFO takes the first type in cluster order; Gavel the fastest for the model
    assert cl.simulate(c, [other], "fifo").job(2).gpu_types == ("V100",)
    assert cl.simulate(c, [other], "gavel").job(2).gpu_types == ("A100",)


def test_gavel_gives_scarce_fast_gpus_to_the_job_that_gains_most():
    c = two_types()                               # 2 + 2 A100 on two nodes, 4 V100
    hog = Job(0, 0.0, 2, 5000.0, model="resnet50", gpu_types=("A100",))   # leaves 2 A100 free
    lstm = Job(1, 1.0, 2, 1000.0, model="lstm_lm")   # gains the HBM ratio on A100 (1.73x)
    vgg = Job(2, 1.0, 2, 1000.0, model="vgg16")      # gains the FLOP ratio (2.49x)
    rep = cl.simulate(c, [hog, lstm, vgg], "gavel")
    assert rep.job(2).gpu_types == ("A100",) and rep.job(1).gpu_types == ("V100",)
    blind = cl.simulate(c, [hog, lstm, vgg], "tiresias")
    assert blind.job(1).gpu_types == ("V100",) and blind.job(2).gpu_types == ("V100",)
    assert rep.jct_mean < blind.jct_mean


def test_placement_changes_run_time_through_the_cost_model():
    c = Cluster.preset("four_racks_v100")
    job = Job(0, 0.0, 8, 3600.0, model="vgg16")
    packed = cl.simulate(c, [job], "fifo", "pack").job(0)
    spread = cl.simulate(c, [job], "fifo", "spread").job(0)
    assert packed.run_time == 3600.0
    assert spread.run_time > 1.5 * packed.run_time


def test_elastic_jobs_grow_into_idle_gpus_and_shrink_when_others_wait():
    c = Cluster.uniform(nodes=1, gpus_per_node=4)
    jobs = [Job(0, 0.0, 2, 4000.0, max_gpus=4, model="resnet50"), Job(1, 1000.0, 2, 500.0)]
    rep = cl.simulate(c, jobs, "fifo", elastic=True)
    sizes = [len(s[2]) for s in rep.segments if s[0] == 0]
    assert sizes[:3] == [2, 4, 2]                      # grew at once, gave 2 back when job 1 arrived
    assert rep.job(1).start == 1000.0
    assert rep.job(0).resizes >= 2
    rigid = cl.simulate(c, jobs, "fifo")
    assert rep.job(0).finish < rigid.job(0).finish
    check_invariants(c, jobs, rep)


def test_elastic_jobs_do_not_thrash_on_a_busy_trace():
    c = Cluster.preset("two_racks_v100_a100")
    jobs = cl.synthetic_trace(400, "philly", seed=4, cluster=c, elastic=0.5)
    rep = cl.simulate(c, jobs, "tiresias", elastic=True)
    elastic = [j for j in jobs if j.elastic]
    assert elastic and sum(rep.job(j.id).resizes for j in elastic) <= 4 * len(elastic)
    assert all(rep.job(j.id).resizes == 0 for j in jobs if not j.elastic)
    check_invariants(c, jobs, rep)


def test_a_policy_that_never_starts_anything_is_reported_stuck():
    class Idle(cl.Policy):
        name = "idle"

        def schedule(self, sim):
            pass

    with pytest.raises(RuntimeError, match=r"simulation stuck at t=0 s under policy 'idle': 1 jobs wait"):
        cl.simulate(Cluster.uniform(), [Job(0, 0.0, 1, 10.0)], Idle())


def test_bad_inputs_get_clear_errors():
    c = Cluster.uniform(nodes=2, gpus_per_node=4)
    with pytest.raises(ValueError, match=r"job 0 asks for 16 GPUs.*largest group.*8"):
        cl.simulate(c, [Job(0, 0.0, 16, 10.0)])
    with pytest.raises(ValueError, match="submit_time"):
        Job(0, -1.0, 1, 10.0)
    with pytest.raises(ValueError, match="duration"):
        Job(0, 0.0, 1, 0.0)
    with pytest.raises(ValueError, match="num_gpus"):
        Job(0, 0.0, 2.5, 10.0)
    with pytest.raises(ValueError, match="unknown model 'gpt5'"):
        Job(0, 0.0, 1, 10.0, model="gpt5")
    with pytest.raises(ValueError, match="max_gpus 1 is below num_gpus 2"):
        Job(0, 0.0, 2, 10.0, max_gpus=1)
    with pytest.raises(ValueError, match="unknown policy 'lottery'.*fifo"):
        cl.simulate(c, [Job(0, 0.0, 1, 10.0)], "lottery")
    with pytest.raises(ValueError, match="unknown placement 'random'"):
        cl.simulate(c, [Job(0, 0.0, 1, 10.0)], "fifo", "random")
    with pytest.raises(ValueError, match="unknown cluster preset 'dgx9'.*two_racks_v100_a100"):
        Cluster.preset("dgx9")
    with pytest.raises(ValueError, match="two jobs share id 3"):
        cl.simulate(c, [Job(3, 0.0, 1, 10.0), Job(3, 1.0, 1, 10.0)])
    with pytest.raises(ValueError, match="needs 36 GB per GPU"):
        cl.simulate(c, [Job(0, 0.0, 1, 10.0, model="gpt_1p3b")])
    with pytest.raises(ValueError, match="none of which this cluster has"):
        cl.simulate(c, [Job(0, 0.0, 1, 10.0, gpu_types=("H100",))])
    with pytest.raises(ValueError, match="at least one job"):
        cl.simulate(c, [])
    with pytest.raises(TypeError, match="Cluster"):
        cl.simulate("two_racks_v100_a100", [Job(0, 0.0, 1, 10.0)])


def test_a_placement_rule_that_breaks_the_rules_is_named():
    c = Cluster.uniform(nodes=2, gpus_per_node=4)

    def greedy(free, n, cluster):
        return {name: f for name, f in free.items()}     # takes every free GPU

    with pytest.raises(ValueError, match=r"placement rule 'greedy' for a gang of 2 took 8 GPUs"):
        cl.simulate(c, [Job(0, 0.0, 2, 10.0)], "fifo", greedy)


def test_progress_bar_and_interrupt_give_a_partial_report(capsys):
    c = Cluster.uniform(nodes=1, gpus_per_node=2)
    jobs = [Job(i, float(i), 1, 5.0) for i in range(30)]
    cl.simulate(c, jobs, "fifo", progress=True)
    assert "simulate fifo [" in capsys.readouterr().out

    class Impatient(cl.FIFO):
        calls = 0

        def schedule(self, sim):
            self.calls += 1
            if self.calls == 12:
                raise KeyboardInterrupt
            super().schedule(sim)

    rep = cl.simulate(c, jobs, Impatient(), progress=True)
    out = capsys.readouterr().out
    assert rep.interrupted and 0 < len(rep.jobs) < 30 and rep.unfinished == 30 - len(rep.jobs)
    assert "interrupted at t=" in out and "INTERRUPTED" in rep.summary()
    per_gpu = {}
    for s in rep.segments:
        for g in s[2]:
            per_gpu.setdefault(g, []).append((s[3], s[4]))
    for spans in per_gpu.values():
        spans.sort()
        assert all(b[0] >= a[1] for a, b in zip(spans, spans[1:]))


def test_report_is_deterministic_and_its_trace_opens_in_perfetto(tmp_path):
    c = Cluster.preset("two_racks_v100_a100")
    jobs = cl.synthetic_trace(150, "philly", seed=3, cluster=c)
    a, b = cl.simulate(c, jobs, "tiresias"), cl.simulate(c, jobs, "tiresias")
    assert a.summary() == b.summary()
    tr = a.trace
    assert tr.unit == "s" and tr.lanes[0] == "v100-0/gpu0"
    assert len(tr.events) >= sum(len(s[2]) for s in a.segments if s[4] > s[5])
    assert set(tr.counter_names()) == {"GPUs busy", "jobs waiting"}
    chrome = tr.to_chrome()
    assert {e["ph"] for e in chrome["traceEvents"]} == {"M", "X", "C"}
    path = tr.save(tmp_path / "run.json")
    import json
    back = cl_trace_roundtrip(json.load(open(path)))
    assert len(back.events) == len(tr.events)
    busy = sum(tr.busy_time(lane) for lane in tr.lanes)
    assert busy == pytest.approx(a.gpu_seconds)


def cl_trace_roundtrip(data):
    from aisys.framework.events import Trace
    return Trace.from_chrome(data)


def test_compare_prints_one_row_per_policy():
    c = Cluster.uniform(nodes=2, gpus_per_node=4)
    jobs = cl.synthetic_trace(60, "helios", seed=1, cluster=c)
    cmp = cl.compare(c, jobs, policies=["fifo", "tiresias", cl.DRF(weights={"a": 2})])
    text = cmp.table()
    assert list(cmp) == ["fifo", "tiresias", "drf(weights={'a': 2})"]
    assert text.count("\n") == 4 and "JCT mean" in text and "Jain" in text
    assert cmp.metric("jct_mean")["tiresias"] <= cmp.metric("jct_mean")["fifo"]
    assert math.isfinite(cmp["fifo"].fairness)
    out = io.StringIO()
    print(cmp, file=out)
    assert out.getvalue().startswith("60 jobs on 2x4 V100")
