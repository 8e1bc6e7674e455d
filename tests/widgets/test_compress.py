"""Compression widgets built headless: each draws its record, and moving its control changes what is drawn."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import aisys
from aisys import chip, nn
from aisys.framework import compress as C
from aisys.models import LeNet
from widgets.compress import ChipPayoff, PruningView, QuantHistogram, SensitivityScan


def test_quant_histogram_moves_with_its_threshold():
    x = np.random.default_rng(0).standard_t(3, 5000)
    calls = []
    view = QuantHistogram(x, evaluate=lambda t: calls.append(t) or min(1.0, t / 10), title="t(3)")
    names = [t.name.split()[0] for t in view.figure.data[1:5]]
    assert names == ["minmax", "percentile", "mse", "kl"]
    first, text = view.caption.value, view.summary()
    assert "kl" in text and "accuracy" in first
    view.slider.value = view.amax / 2
    assert view.caption.value != first and view.summary() != text
    assert view.figure.data[-1].x[0] == pytest.approx(view.amax / 2) and calls
    m_small, m_big = view.metrics(view.amax / 40), view.metrics(view.amax)
    assert m_small["mse"] != m_big["mse"]
    with pytest.raises(ValueError, match="empty"):
        QuantHistogram(np.zeros(0))


def test_sensitivity_scan_toggle_shows_the_drop():
    scan = C.Sensitivity("sparsity", [0.5, 0.9], ["fc1", "fc2"], {"fc1": [0.9, 0.5], "fc2": [0.95, 0.9]}, 0.96)
    view = SensitivityScan(scan)
    assert list(view.figure.data[0].y) == [0.9, 0.5] and "most sensitive layer: fc1" in view.caption.value
    view.mode.value = "drop from baseline"
    assert list(view.figure.data[0].y) == pytest.approx([0.06, 0.46])
    assert "drop from baseline" in view.summary() and "90%" in view.summary()
    with pytest.raises(TypeError, match="sensitivity_scan"):
        SensitivityScan("scan")


def test_pruning_view_marks_pruned_weights_and_removed_channels():
    aisys.manual_seed(0)
    model = LeNet(image_size=8)
    x = aisys.randn(2, 1, 8, 8)
    unstructured = C.prune(copy.deepcopy(model), 0.75)
    view = PruningView(unstructured)
    w, removed = view.matrix("conv2")
    assert np.isnan(w).mean() == pytest.approx(0.75, abs=0.01) and removed.size == 0
    before = view.figure.layout.title.text
    view.layer.value = "fc1"
    assert view.figure.layout.title.text != before and "fc1" in view.caption.value
    structured = C.prune(model, 0.5, structured=True, layers=nn.Conv2d, example=x)
    sview = PruningView(structured)
    w, removed = sview.matrix("conv1")
    assert len(removed) == 3 and np.all(np.isnan(w[removed])) and len(sview.figure.layout.shapes) == 3
    assert "3 of 6 channels removed" in sview.summary()


def test_chip_payoff_bars_switch_measure():
    aisys.manual_seed(0)
    model = LeNet(image_size=8).eval()
    x = aisys.randn(8, 1, 8, 8)
    sparse = copy.deepcopy(model)
    C.prune(sparse, 0.9)
    cmp = chip.compare_graphs({"fp32": aisys.trace(model, x), "90% sparse": aisys.trace(sparse, x)},
                              chip.preset("scalesim32").with_datapath(4))
    view = ChipPayoff(cmp)
    assert view.figure.data[0].text[1] == "1.00× less", "sparsity buys no cycles on the dense array"
    cycles = view.summary()
    view.measure.value = "energy (µJ)"
    assert view.summary() != cycles and view.figure.layout.yaxis.title.text == "energy (µJ)"
    with pytest.raises(TypeError, match="compare_graphs"):
        ChipPayoff({"a": 1})
