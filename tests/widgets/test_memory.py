"""MemoryTimeline built headless: each control must change what is drawn."""
import numpy as np
import pytest

from aisys.compiler.memory import LayeredModel, checkpoint_cost, plan_memory, run_in_arena
from aisys.compiler.memory.workloads import deep_training_graph, mlp_graph
from widgets.memory import MemoryTimeline


def _bars(view):
    b = view.figure.data[0]
    return list(b.x), list(b.base), list(b.y), list(b.width)


def test_planner_buttons_repack_the_same_lifetimes():
    view = MemoryTimeline(mlp_graph(32, (784, 256, 128, 10)))
    assert list(view.planner_picker.options) == ["naive", "exact_size", "linear_scan", "greedy_by_size"]
    assert view.planner_picker.value == "greedy_by_size"
    before = _bars(view)
    assert len(before[0]) == 8 and max(view.figure.data[1].y) == 65536     # arena line = peak
    assert max(view.figure.data[3].y) == 65536                               # live-bytes curve
    hover = view.figure.data[0].hovertext[0]
    assert "%3" in hover and "from matmul" in hover and "32768 B at offset 0" in hover

    view.planner_picker.value = "naive"
    after = _bars(view)
    assert after[1] != before[1] and after[0] == before[0]                   # same lifetimes, new offsets
    assert max(view.figure.data[1].y) == 150016 and max(view.figure.data[2].y) == 65536
    assert "planner naive" in view.caption.value and "fragmentation 56.3%" in view.caption.value
    assert "planner naive, in-place off" in view.summary()
    assert "naive: <b>146.5 KiB</b>" in view.comparison.value


def test_inplace_toggle_lowers_the_peak():
    view = MemoryTimeline(mlp_graph(32, (784, 256, 128, 10)))
    view.inplace_box.value = True
    assert view.plan.peak_bytes == 49152 and max(view.figure.data[3].y) == 49152
    assert "#8b5cf6" in list(view.figure.data[0].marker.color)              # in-place buffers drawn purple
    assert "in-place on" in view.summary()


def test_checkpoint_slider_on_a_layered_model():
    view = MemoryTimeline(LayeredModel.uniform(16))
    assert view.checkpoint_slider.value == 4 and view.checkpoint_slider.max == 16
    assert view.plan.peak_bytes == checkpoint_cost(16, 4)[0] == 7
    view.checkpoint_slider.value = 1
    assert view.plan.peak_bytes == 16 and max(view.figure.data[3].y) == 16
    assert "recompute 0 layers" in view.caption.value
    assert view.summary().startswith("MemoryTimeline: planner greedy_by_size, checkpoint every 1")


def test_checkpoint_slider_on_a_training_graph():
    g = deep_training_graph(layers=8, width=16, batch=128)
    view = MemoryTimeline(g)
    assert view.checkpoint_slider.max == 8 and view.checkpoint_slider.value == 1
    full = view.plan.peak_bytes
    view.checkpoint_slider.value = 3
    assert view.plan.peak_bytes < full and "recompute" in view.caption.value
    assert "checkpoint every 3" in view.summary()


def test_a_given_plan_and_a_learners_planner_are_offered():
    def my_planner(buffers):          # stacks everything: valid, wasteful
        out, top = {}, 0
        for b in buffers:
            out[b.name], top = top, top + b.size
        return out
    g = mlp_graph(8, (32, 16, 4))
    plan = plan_memory(g, my_planner)
    view = MemoryTimeline(plan)
    assert view.planner_picker.value == "my_planner" and view.plan is plan
    view.planner_picker.value = "greedy_by_size"
    assert view.plan.peak_bytes < plan.peak_bytes
    assert view.inplace_box.disabled                 # the plan has no in-place pairs: toggle off
    both = MemoryTimeline(g, planners=["greedy_by_size", my_planner], planner="my_planner")
    assert both.plan.planner == "my_planner"


def test_trace_of_an_arena_run_is_drawn_without_controls():
    g = mlp_graph(8, (32, 16, 4))
    plan = plan_memory(g, inplace=True)
    _, trace = run_in_arena(g, np.ones((8, 32), np.float32), plan=plan, clock="steps")
    view = MemoryTimeline(trace)
    assert view.planner_picker.disabled and view.plan is None
    x, base, y, width = _bars(view)
    assert base == [b.offset for b in plan.buffers] and y == [b.size for b in plan.buffers]
    assert width[0] == plan.buffers[0].end - plan.buffers[0].start + 1
    assert max(view.figure.data[3].y) == plan.lower_bound_bytes
    assert "5 buffers" in view.summary()


def test_bad_sources_are_explained():
    with pytest.raises(TypeError, match="draws a MemoryPlan, a Graph"):
        MemoryTimeline([1, 2, 3])
    with pytest.raises(ValueError, match="unknown planner 'best'"):
        MemoryTimeline(mlp_graph(4, (8, 4)), planners=["best"])


def test_training_timeline_colours_kept_and_recomputed_activations():
    view = MemoryTimeline(deep_training_graph(layers=4, width=8, batch=64))
    colours = list(view.figure.data[0].marker.color)
    assert colours.count("#16a34a") == 4 and "#e11d48" not in colours       # k=1: every activation kept
    view.checkpoint_slider.value = 2
    colours = list(view.figure.data[0].marker.color)
    assert colours.count("#16a34a") == 2 and colours.count("#e11d48") == 4  # 2 layers × (matmul, tanh) recomputed
    assert "recomputed copy" in view.comparison.value and "kept for backward" in view.comparison.value
