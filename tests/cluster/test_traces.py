"""Trace generator shapes, CSV in and out (errors name the line), and the fairness helpers."""
from __future__ import annotations

import io

import pytest

from aisys import cluster as cl
from aisys.cluster import Cluster, Job


def test_generator_is_seeded_and_shaped_like_its_profile():
    a = cl.synthetic_trace(3000, "philly", seed=7)
    assert a == cl.synthetic_trace(3000, "philly", seed=7)
    assert a != cl.synthetic_trace(3000, "philly", seed=8)
    s = cl.trace_stats(a)
    prof = cl.PROFILES["philly"]
    assert s.single_gpu_share == pytest.approx(prof.gpu_counts[1], abs=0.03)   # most jobs: one GPU
    assert s.large_gang_gpu_time > 0.5                                          # a few gangs take most GPU time
    assert s.duration_median_s == pytest.approx(prof.duration_median_s * 1.1, rel=0.25)
    assert s.duration_p99_s / s.duration_median_s > 30                          # heavy tail
    assert 1.5 < s.peak_to_trough < 4                                           # diurnal arrivals (a = 0.3)
    assert max(j.num_gpus for j in a) <= 64                                     # capped by the default 64 GPUs
    work = sum(j.num_gpus * j.duration for j in a)
    assert work / (64 * s.span_s) == pytest.approx(0.8, rel=0.05)               # the offered load
    helios = cl.trace_stats(cl.synthetic_trace(3000, "helios", seed=7))
    assert helios.peak_to_trough > s.peak_to_trough and helios.duration_median_s < s.duration_median_s
    assert "jobs by gang size" in s.summary()


def test_generator_respects_the_cluster():
    v100_only = Cluster.preset("one_dgx1_v100")
    jobs = cl.synthetic_trace(500, "philly", seed=1, cluster=v100_only)
    assert max(j.num_gpus for j in jobs) <= 8 and all(j.model != "gpt_1p3b" for j in jobs)
    mixed = Cluster.preset("v100_t4")
    pai = cl.synthetic_trace(800, "pai", seed=1, cluster=mixed)
    typed = [j for j in pai if j.gpu_types]
    assert 0.08 < len(typed) / len(pai) < 0.25 and {t for j in typed for t in j.gpu_types} == {"V100", "T4"}
    cl.simulate(mixed, pai[:200], "gavel")                     # every job fits somewhere
    elastic = cl.synthetic_trace(400, "philly", seed=2, elastic=0.5)
    assert any(j.elastic for j in elastic) and all(j.max_gpus == 2 * j.num_gpus for j in elastic if j.elastic)
    with pytest.raises(ValueError, match="unknown trace profile 'google'"):
        cl.synthetic_trace(10, "google")
    with pytest.raises(ValueError, match="load"):
        cl.synthetic_trace(10, load=0)


def test_csv_round_trip(tmp_path):
    jobs = cl.synthetic_trace(50, "pai", seed=3, cluster=Cluster.preset("v100_t4"), elastic=0.3)
    jobs.append(Job(999, 5.5, 2, 60.0, tenant="z", estimate=120.0))
    path = tmp_path / "jobs.csv"
    cl.save_trace(jobs, path)
    assert cl.load_trace(path) == jobs
    buf = io.StringIO()
    cl.save_trace(jobs, buf)
    assert cl.load_trace(io.StringIO(buf.getvalue())) == jobs


def test_csv_reads_minimal_and_helios_style_files():
    minimal = cl.load_trace(io.StringIO("submit_time,num_gpus,duration\n0,1,60\n10,4,3600\n"))
    assert [(j.id, j.num_gpus, j.tenant, j.model) for j in minimal] == [(0, 1, "default", "resnet50"),
                                                                      (1, 4, "default", "resnet50")]
    helios = io.StringIO("job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,duration\n"
                         "7,u1,vcA,8,48,1,COMPLETED,2020-04-01 08:00:00,7200\n"
                         "8,u2,vcB,0,4,1,COMPLETED,2020-04-01 08:00:30,60\n"
                         "9,u2,vcB,1,4,1,FAILED,2020-04-01 09:00:00,30\n")
    jobs = cl.load_trace(helios, skip_zero_gpu=True)
    assert [(j.id, j.tenant, j.num_gpus, j.submit_time) for j in jobs] == [(7, "vcA", 8, 0.0), (9, "vcB", 1, 3600.0)]


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("submit,gpus\n0,1\n", r"line 1: the header has no column for duration \(or runtime, run_time\)"),
    ("submit_time,num_gpus,duration\n0,1,60\n5,two,60\n", r"line 3: num_gpus 'two' is not a number"),
    ("submit_time,num_gpus,duration\n0,1,60\n\n5,1,-3\n", r"line 4: Job\(id=1\): duration .* must be > 0"),
    ("submit_time,num_gpus,duration\n0,0,60\n", r"line 2: num_gpus '0' must be a positive whole number .*skip_zero_gpu"),
    ("submit_time,num_gpus,duration\n-4,1,60\n", r"line 2: .*submit_time .* must be >= 0"),
    ("submit_time,num_gpus,duration,model\n0,1,60,gpt9\n", r"line 2: .*unknown model 'gpt9'"),
    ("id,submit_time,num_gpus,duration\n1,0,1,60\n1,3,1,60\n", r"line 3: job id 1 appears twice"),
    ("submit_time,num_gpus,duration\n0,1\n", r"line 2: 2 fields, but the header has 3"),
    ("submit_time,num_gpus,duration\nyesterday,1,60\n", r"line 2: submit_time 'yesterday' is neither seconds"),
])
def test_malformed_csv_rows_are_named_by_line(text, message):
    with pytest.raises(ValueError, match=message):
        cl.load_trace(io.StringIO(text))


def test_drf_reproduces_the_papers_example():
    # Ghodsi et al. 2011, section 4: <9 CPUs, 18 GB>; A's tasks <1 CPU, 4 GB>, B's <3 CPUs, 1 GB>
    cap = {"cpu": 9, "mem": 18}
    got = cl.drf_allocate(cap, {"A": {"cpu": 1, "mem": 4}, "B": {"cpu": 3, "mem": 1}})
    assert got == {"A": 3, "B": 2}
    assert cl.dominant_share({"cpu": 3, "mem": 12}, cap) == cl.dominant_share({"cpu": 6, "mem": 2}, cap) == 2 / 3
    # weights: B counts double, so it may reach twice A's dominant share
    weighted = cl.drf_allocate({"gpu": 12}, {"A": {"gpu": 1}, "B": {"gpu": 1}}, weights={"B": 2})
    assert weighted == {"A": 4, "B": 8}
    # a tenant whose task no longer fits drops out; the other keeps filling (Pareto efficiency)
    assert cl.drf_allocate({"gpu": 8, "cpu": 16}, {"big": {"gpu": 4, "cpu": 1}, "small": {"gpu": 1, "cpu": 1}}) == \
        {"big": 1, "small": 4}
    with pytest.raises(ValueError, match="'A' asks for \\['disk'\\]"):
        cl.drf_allocate(cap, {"A": {"disk": 1}})
    with pytest.raises(ValueError, match="weight"):
        cl.drf_allocate(cap, {"A": {"cpu": 1}}, weights={"A": 0})


def test_jain_index_closed_forms():
    assert cl.jain_index([1, 1, 1, 1]) == 1.0
    assert cl.jain_index([1, 0, 0, 0]) == 0.25
    assert cl.jain_index([1, 2]) == pytest.approx(9 / 10)
    assert cl.jain_index([]) == 1.0
    with pytest.raises(ValueError):
        cl.jain_index([-1, 2])
