"""Chip widgets built headless: moving a control must change what is drawn."""
import numpy as np
import pytest

from aisys.chip import (Conv, Gemm, preset, roofline_point, run_systolic, simulate_layers,
                        systolic_gemm, tpu_v1_apps, tpu_v1_paper_points)
from aisys.models import lenet_layers
from widgets.chip import RooflinePlot, SystolicAnimator, UtilizationView


def test_animator_steps_through_the_lectures_wavefront():
    run = run_systolic(np.arange(9).reshape(3, 3), np.arange(9).reshape(3, 3) + 1, 3, 3, "os")
    view = SystolicAnimator(run)
    first = view.picture.value
    assert first.startswith("<svg") and first.count('class="pe"') == 9
    assert first.count('data-state="MAC"') == 1                  # T=1: only PE(0,0)
    assert "T=1 of 7 (fill)" in view.summary()
    view.slider.value = 3                                        # T=4: the anti-diagonal is full
    assert view.picture.value != first
    assert view.picture.value.count('data-state="MAC"') == 7
    assert "T=4 of 7 (steady)" in view.summary() and "a02·b21" in view.picture.value
    view.play.value = 6                                          # the Play button drives the slider
    assert view.slider.value == 6 and "drain" in view.caption.value
    assert "MACs per cycle: 1, 3, 6, 7, 6, 3, 1" in view.summary()


def test_animator_shows_weight_loading_and_fold_boundaries():
    run = run_systolic(np.ones((6, 5), dtype=int), np.ones((5, 5), dtype=int), 3, 3, "ws", "overlapped")
    view = SystolicAnimator(run)
    assert 'data-state="loading weight"' in view.picture.value
    boundary = run.phases().index("fold boundary")
    view.slider.value = boundary
    assert "fold boundary" in view.summary() and "folds 1, 2 of 4" in view.summary()
    with pytest.raises(ValueError, match="record=True"):
        SystolicAnimator(run_systolic(np.ones((2, 2)), np.ones((2, 2)), 2, 2, record=False))
    with pytest.raises(TypeError, match="SystolicRun"):
        SystolicAnimator("not a run")


def test_utilization_view_window_changes_every_view():
    res = simulate_layers(lenet_layers(), "davinci")
    view = UtilizationView(res)
    assert [t.name for t in view.timeline.data][0] == "busy"
    assert any(t.name.startswith("stall: ") for t in view.timeline.data)
    before_bars = [tuple(t.x) for t in view.bars.data]
    before_heat, before_text = view.heatmap.value, view.summary()
    assert "matrix" in before_text and "PE array 16x16" in before_text
    view.window.value = (0, res.cycles // 3)
    assert tuple(view.timeline.layout.xaxis.range) == (0, res.cycles // 3)
    assert [tuple(t.x) for t in view.bars.data] != before_bars
    assert view.heatmap.value != before_heat and view.summary() != before_text
    stats = view.window_stats()
    for lane, st in stats.items():
        assert st["busy"] + st["stall"] + st["idle"] == pytest.approx(res.cycles // 3), lane


def test_utilization_view_reads_traces_runs_and_reports():
    res = simulate_layers([Gemm("fc", 64, 64, 256)], "scalesim32")
    from_trace = UtilizationView(res.trace())
    assert set(from_trace.lanes) >= {"matrix", "dma_in"}
    run = run_systolic(np.ones((8, 4)), np.ones((4, 8)), 4, 4, "os")
    v = UtilizationView(run)
    assert v.lanes == ["row 0", "row 1", "row 2", "row 3"]
    heat = v.pe_heat()
    assert heat.shape == (4, 4) and heat.sum() * run.elapsed_cycles == pytest.approx(8 * 8 * 4)
    v.window.value = (0, 2)
    assert v.pe_heat().sum() < heat.sum()
    rep_view = UtilizationView(systolic_gemm(10, 5, 7, 4, 4, "os"))
    assert "PE array 4x4" in rep_view.summary()
    with pytest.raises(TypeError, match="ProgramResult, Trace, SystolicRun or MatrixReport"):
        UtilizationView(42)


def test_roofline_slider_moves_the_roof_and_reclassifies():
    plot = RooflinePlot(tpu_v1_paper_points(), "tpu_v1", per="mac")
    assert "ridge 1349" in plot.summary() or "ridge 1350" in plot.summary()
    memory = [p.name for p in plot.points if plot._bound(p) == "memory"]
    assert memory == ["MLP0", "MLP1", "LSTM0", "LSTM1"]
    before_roof, before_text = list(plot.figure.data[0].y), plot.summary()
    plot.bandwidth.value = 340.0                 # 10x the weight memory: ridge ~135 MAC/B
    assert list(plot.figure.data[0].y) != before_roof and plot.summary() != before_text
    assert [p.name for p in plot.points if plot._bound(p) == "memory"] == ["LSTM0", "LSTM1"]
    assert "memory-bound: LSTM0, LSTM1" in plot.caption.value


def test_roofline_accepts_layers_and_checks_its_input():
    plot = RooflinePlot([Conv("conv", 14, 14, 32, 48, 3, padding=1), tpu_v1_apps()[0].layer], "scalesim32")
    assert len(plot.points) == 2 and plot.points[0].ceilings
    assert len(plot.figure.data[4].x) == 4                       # two ceilings per GEMM-shaped layer
    with pytest.raises(ValueError, match="per must be"):
        RooflinePlot([roofline_point("x", 1.0, 1.0, "tiny")], "tiny", per="flop")
    with pytest.raises(TypeError, match="RooflinePoints or layer records"):
        RooflinePlot(["x"], "tiny")
    with pytest.raises(ValueError, match="no points"):
        RooflinePlot([], preset("tiny"))


def test_roofline_labels_sit_off_the_roof_and_ticks_name_decades():
    plot = RooflinePlot(tpu_v1_paper_points(), "tpu_v1", per="mac")
    labels = {a.text: a for a in plot.figure.layout.annotations}
    assert set(labels) == {p.name for p in plot.points}
    assert labels["MLP1"].ay * labels["MLP0"].ay < 0               # neighbours (168, 200 MAC/B) on opposite sides
    assert labels["CNN1"].ay * labels["CNN0"].ay < 0 and labels["CNN0"].ax == 0
    assert plot.figure.layout.xaxis.dtick == 1 and plot.figure.layout.yaxis.dtick == 1   # no bare "2", "5" ticks
    plot.bandwidth.value = 300.0
    moved = {a.text: a for a in plot.figure.layout.annotations}
    assert moved["MLP0"].ax == 0 and moved["MLP0"].y != labels["MLP0"].y  # now compute-bound, on the flat roof


def test_heat_note_says_why_a_map_is_uniform_or_not():
    uniform = UtilizationView.heat_note(np.full((4, 4), 0.25))
    assert "Every PE is equally busy (25.0%" in uniform
    ragged = np.zeros((4, 4))
    ragged[:2, :3] = 0.5
    assert "2 of the 4 rows and 3 of the 4 columns reach the busiest share" in UtilizationView.heat_note(ragged)
    ragged[:, :3] = 0.5
    assert "all 4 rows and 3 of the 4 columns" in UtilizationView.heat_note(ragged)
