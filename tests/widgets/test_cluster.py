"""Cluster widgets built headless: each draws what the records say, and moving a control redraws it."""
import numpy as np
import pytest

from aisys import cluster as cl
from widgets.cluster import ClusterTimeline, PlacementView, PolicyCompare, _binned_mean


@pytest.fixture(scope="module")
def comparison():
    c = cl.Cluster.uniform(nodes=2, gpus_per_node=4)
    jobs = cl.synthetic_trace(80, "philly", seed=2, cluster=c)
    return cl.compare(c, jobs, policies=["fifo", "tiresias"])


def test_timeline_draws_every_gpu_segment_and_switches_policy(comparison):
    view = ClusterTimeline(comparison)
    rep = comparison["fifo"]
    bars = view.figure.data[:-2]
    # every GPU-second of every segment is drawn exactly once (bar thickness = GPUs in a run, length = hours)
    drawn = sum(w * x for t in bars for w, x in zip(t.width, t.x)) * 3600
    assert drawn == pytest.approx(rep.gpu_seconds)
    assert all(y - (w - 1) / 2 >= 0 for t in bars for y, w in zip(t.y, t.width))
    legend = [t.name for t in view.figure.data[:-3] if t.showlegend]
    assert legend == [f"tenant {t}" for t in sorted(rep.tenants)]
    waiting = view.figure.data[-2]
    assert max(waiting.y) == max(s[2] for s in rep.samples)
    first = view.summary()
    assert first.startswith("ClusterTimeline: fifo / pack") and "GPU-hours idle while jobs waited" in first
    view.policy_picker.value = "tiresias"
    assert view.summary() != first and "tiresias" in view.caption.value
    assert sum(len(t.x) for t in view.figure.data[-3:-2]) > 0 or comparison["tiresias"].preemptions == 0
    view.colour_picker.value = "job"
    assert not any(t.showlegend for t in view.figure.data[:-3])
    with pytest.raises(TypeError, match="Report or a Comparison"):
        ClusterTimeline("fifo")


def test_policy_compare_plots_a_cdf_per_policy_and_the_picked_metric(comparison):
    view = PolicyCompare(comparison)
    cdfs = view.figure.data[0:4:2]
    assert [t.name for t in cdfs] == ["fifo", "tiresias"]
    for t, name in zip(cdfs, ["fifo", "tiresias"]):
        assert t.y[-1] == 1.0 and np.allclose(sorted(t.x), np.sort(comparison[name].jcts()) / 3600)
    bars = view.figure.data[-1]
    assert list(bars.y) == pytest.approx([comparison[n].jct_mean / 3600 for n in ("fifo", "tiresias")])
    view.metric_picker.value = "utilization"
    assert list(view.figure.data[-1].y) == pytest.approx([comparison[n].utilization for n in ("fifo", "tiresias")])
    assert "utilization: fifo" in view.summary()
    view.log_box.value = False
    assert view.figure.layout.xaxis.type == "linear"


def test_binned_mean_of_a_step_function():
    t = np.array([0.0, 1.0, 3.0])
    y = np.array([2.0, 4.0, 0.0])
    assert _binned_mean(t, y, np.array([0.0, 1.0, 3.0, 4.0])).tolist() == [2.0, 4.0, 0.0]
    assert _binned_mean(t, y, np.array([0.0, 2.0])).tolist() == [3.0]


def test_placement_view_shows_each_rule_and_its_cost():
    c = cl.Cluster.preset("four_racks_v100")
    view = PlacementView(c, model="vgg16", n=8, busy=0.4, seed=0)
    svg = view.picture.value
    assert svg.count("class='gpu'") == 128 and svg.count("data-state='job'") == 8
    assert svg.count("data-state='busy'") == round(0.4 * 128)
    rows = {r["rule"]: r for r in view.rows()}
    assert rows["topology"]["racks"] == 1 and rows["spread"]["nodes"] == 8
    assert rows["topology"]["step"].total <= rows["spread"]["step"].total
    assert rows["spread"]["hours"] > 1.0              # a 1-hour packed job takes longer when spread
    before = view.picture.value
    view.size_slider.value = 3
    assert view.picture.value != before and view.picture.value.count("data-state='job'") == 3
    view.rule_picker.value = "spread"
    assert "rule shown: spread" in view.summary()

    def broken(free, n, cluster):
        return {}

    learner = PlacementView(c, rules=[broken])
    assert "broken     fails: ValueError" in learner.summary()
    with pytest.raises(ValueError, match="no free GPUs"):
        PlacementView(c, busy=1.0)
