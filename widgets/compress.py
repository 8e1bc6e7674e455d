"""Widgets for compression: where to clip a tensor, which layers can take pruning, what the chip gains.

- :class:`QuantHistogram` — a tensor's histogram with each calibrator's clip threshold; drag the threshold
  and read the quantization MSE, the KL divergence of TensorRT's calibration and (given ``evaluate``) the
  model's accuracy at that threshold.
- :class:`SensitivityScan` — a ``compress.sensitivity_scan`` result: per layer, the score against sparsity
  or bits; a toggle shows the drop from the unpruned baseline instead.
- :class:`PruningView` — weight heatmaps with the pruned entries blanked and removed channels marked; a
  dropdown picks the layer.
- :class:`ChipPayoff` — a ``chip.compare_graphs`` result as bars: cycles, energy or DRAM bytes per version of
  the model (fp32, int8, sparse, channel-pruned); a toggle switches the measure.

Each has ``.summary()``: deterministic text of what it shows.
"""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from aisys.chip import Comparison
from aisys.framework.compress import Pruning, Sensitivity, qparams_from_range
from aisys.framework.compress.calibration import clip_error, kl_divergences, threshold_report

__all__ = ["QuantHistogram", "SensitivityScan", "PruningView", "ChipPayoff"]

_CALIBRATOR_COLOURS = {"minmax": "#6b7280", "percentile": "#2563eb", "mse": "#16a34a", "kl": "#dc2626"}


def _array(x) -> np.ndarray:
    return np.asarray(x._data if hasattr(x, "_data") else x, dtype=np.float64).reshape(-1)


class QuantHistogram(widgets.VBox):
    """Histogram of ``x`` with the clip thresholds of each calibrator, and a slider for your own threshold.

    ``evaluate(threshold) -> float`` (optional): the model's accuracy when this tensor is clipped there;
    called on every slider move. ``bins``/``levels``: the KL divergence's histogram (TensorRT: 2048/128)."""

    def __init__(self, x, dtype: str = "int8", evaluate: Callable | None = None, title: str = "activation",
                 bins: int = 2048, levels: int = 128, height: int = 380):
        self.values = _array(x)
        if self.values.size == 0:
            raise ValueError("QuantHistogram: the tensor is empty")
        self.dtype, self.evaluate, self.title = dtype, evaluate, title
        self.negative = bool((self.values < 0).any())
        self.thresholds = threshold_report(self.values, dtype)
        self.amax = float(np.abs(self.values).max())
        hist = np.histogram(np.abs(self.values), bins=bins, range=(0.0, self.amax))[0]
        self._kl = kl_divergences(hist.astype(np.float64), levels)
        self._bin_width = self.amax / bins
        self.slider = widgets.FloatSlider(value=self.thresholds["kl"], min=self.amax / 64, max=self.amax,
                                          step=self.amax / 512, description="clip at", readout_format=".4g",
                                          continuous_update=False, layout=widgets.Layout(width="520px"))
        self.caption = widgets.HTML()
        counts, edges = np.histogram(self.values, bins=80)
        centres = (edges[:-1] + edges[1:]) / 2
        self.figure = go.Figure(layout=dict(
            title=f"{title}: {self.values.size:,} values, max |x| = {self.amax:.4g}", height=height,
            xaxis=dict(title="value"), yaxis=dict(title="count (log)", type="log"),
            margin=dict(l=60, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.25), bargap=0.02))
        self.figure.add_bar(x=centres, y=np.maximum(counts, 0.5), name="values", marker_color="#93c5fd")
        top = float(max(counts.max(), 1)) * 2
        for name, t in self.thresholds.items():
            xs = [t, t] if not self.negative else [t, t, None, -t, -t]
            ys = [0.5, top] if not self.negative else [0.5, top, None, 0.5, top]
            self.figure.add_scatter(x=xs, y=ys, mode="lines", name=f"{name} {t:.3g}",
                                    line=dict(color=_CALIBRATOR_COLOURS[name], dash="dash", width=2))
        self.figure.add_scatter(x=[], y=[], mode="lines", name="your threshold", line=dict(color="#111", width=3))
        self._top = top
        self.slider.observe(self._on_threshold, names="value")
        self._on_threshold(None)
        self.figure = go.FigureWidget(self.figure)   # drawn whole, then wrapped: an update sent before the browser
        #                                              draws a FigureWidget can be lost (empty axes)
        super().__init__([self.slider, self.caption, self.figure])
        self.add_class("aisys-quant-histogram")

    def metrics(self, threshold: float | None = None) -> dict:
        """MSE of quantizing at ``threshold``, TensorRT's KL divergence there, and the evaluate() score."""
        t = float(self.slider.value if threshold is None else threshold)
        i = min(len(self._kl) - 1, max(0, int(t / self._bin_width)))
        out = {"threshold": t, "mse": clip_error(self.values, t, self.dtype, self.negative),
               "kl": float(self._kl[i])}
        if self.evaluate is not None:
            out["accuracy"] = float(self.evaluate(t))
        return out

    def _on_threshold(self, change) -> None:
        m = self.metrics()
        t = m["threshold"]
        line = self.figure.data[-1]
        with self.figure.batch_update():
            line.x = [t, t] if not self.negative else [t, t, None, -t, -t]
            line.y = [0.5, self._top] if not self.negative else [0.5, self._top, None, 0.5, self._top]
        s, z = qparams_from_range(-t if self.negative else 0.0, t, self.dtype)
        clipped = float(np.mean(np.abs(self.values) > t))
        parts = [f"threshold {t:.4g} → scale {s:.4g}, zero point {z}", f"clipped {100 * clipped:.3f}%",
                 f"MSE {m['mse']:.3g}", f"KL {m['kl']:.4g}"]
        if "accuracy" in m:
            parts.append(f"accuracy {100 * m['accuracy']:.2f}%")
        self.caption.value = html.escape(" · ".join(parts))

    def summary(self) -> str:
        m = self.metrics()
        lines = [f"QuantHistogram: {self.title}, {self.values.size:,} values, max |x| {self.amax:.4g}, {self.dtype}"]
        for name, t in self.thresholds.items():
            lines.append(f"  {name:<11} threshold {t:9.4g} ({100 * t / self.amax:5.1f}% of max)  "
                         f"MSE {clip_error(self.values, t, self.dtype, self.negative):.3g}")
        tail = f"  slider      threshold {m['threshold']:9.4g}  MSE {m['mse']:.3g}  KL {m['kl']:.4g}"
        if "accuracy" in m:
            tail += f"  accuracy {100 * m['accuracy']:.2f}%"
        return "\n".join(lines + [tail])


class SensitivityScan(widgets.VBox):
    """Per layer, the model's score with only that layer pruned (or quantized) at each setting."""

    def __init__(self, scan: Sensitivity, height: int = 380):
        if not isinstance(scan, Sensitivity):
            raise TypeError(f"SensitivityScan draws a compress.sensitivity_scan(...) result, got {type(scan).__name__}")
        self.scan = scan
        self.mode = widgets.ToggleButtons(options=["score", "drop from baseline"], value="score",
                                          description="show")
        self.caption = widgets.HTML()
        unit = "sparsity" if scan.kind == "sparsity" else "bits"
        self.figure = go.Figure(layout=dict(
            title=f"sensitivity to {unit}, one layer at a time", height=height,
            xaxis=dict(title=unit, type="category"), yaxis=dict(title="score"),
            margin=dict(l=60, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.25)))
        labels = self._labels()
        for name in scan.layers:
            self.figure.add_scatter(x=labels, y=scan.scores[name], mode="lines+markers", name=name)
        self.figure.add_scatter(x=labels, y=[scan.baseline] * len(labels), mode="lines", name="unpruned",
                                line=dict(color="#111", dash="dot"))
        self.mode.observe(self._on_mode, names="value")
        self._on_mode(None)
        self.figure = go.FigureWidget(self.figure)   # drawn whole, then wrapped: an update sent before the browser
        #                                              draws a FigureWidget can be lost (empty axes)
        super().__init__([self.mode, self.caption, self.figure])
        self.add_class("aisys-sensitivity-scan")

    def _labels(self) -> list:
        return [f"{100 * v:.0f}%" if self.scan.kind == "sparsity" else f"{v} bit" for v in self.scan.settings]

    def _on_mode(self, change) -> None:
        drop = self.mode.value != "score"
        s = self.scan
        with self.figure.batch_update():
            for trace, name in zip(self.figure.data, s.layers):
                trace.y = [s.baseline - v for v in s.scores[name]] if drop else s.scores[name]
            self.figure.data[-1].y = [0.0 if drop else s.baseline] * len(s.settings)
            self.figure.layout.yaxis.title.text = "drop from the unpruned score" if drop else "score"
        self.caption.value = html.escape(f"most sensitive layer: {s.most_sensitive()}; baseline {s.baseline:.4f}")

    def summary(self) -> str:
        return f"SensitivityScan ({self.mode.value})\n" + self.scan.summary()


class PruningView(widgets.VBox):
    """Weight heatmaps of a pruned model: pruned weights blank (unstructured), removed channels as red rows
    (structured: drawn from the weights before pruning). A dropdown picks the layer."""

    def __init__(self, pruning: Pruning, height: int = 360, max_cols: int = 256):
        if not isinstance(pruning, Pruning):
            raise TypeError(f"PruningView draws a compress.prune(...) result, got {type(pruning).__name__}")
        self.pruning = pruning
        self.max_cols = max_cols
        layers = list(pruning.original if pruning.structured else pruning.masks)
        if not layers:
            raise ValueError("PruningView: the pruning record names no layer")
        self.layer = widgets.Dropdown(options=layers, value=layers[0], description="layer")
        self.caption = widgets.HTML()
        self.figure = go.Figure(layout=dict(height=height, margin=dict(l=60, r=20, t=50, b=50),
                                                  xaxis=dict(title="input weights (flattened)"),
                                                  yaxis=dict(title="output channel", autorange="reversed")))
        self.figure.add_heatmap(z=[[0.0]], colorscale="RdBu", zmid=0.0, colorbar=dict(title="w"))
        self.layer.observe(self._on_layer, names="value")
        self._on_layer(None)
        self.figure = go.FigureWidget(self.figure)   # drawn whole, then wrapped: an update sent before the browser
        #                                              draws a FigureWidget can be lost (empty axes)
        super().__init__([self.layer, self.caption, self.figure])
        self.add_class("aisys-pruning-view")

    def matrix(self, name: str | None = None) -> tuple:
        """(2-D weights with pruned entries as NaN, removed channel indices) of one layer."""
        name = name or self.layer.value
        p = self.pruning
        if p.structured:
            w = np.array(p.original[name], dtype=np.float64).reshape(p.original[name].shape[0], -1)
            removed = np.setdiff1d(np.arange(w.shape[0]), p.kept_channels[name])
            w[removed] = np.nan
        else:
            module = dict(p.model.named_modules())[name]
            w = np.array(module.weight._data, dtype=np.float64)
            w[~p.masks[name]] = np.nan
            w = w.reshape(w.shape[0], -1)
            removed = np.zeros(0, int)
        return w[:, :self.max_cols], removed

    def _on_layer(self, change) -> None:
        w, removed = self.matrix()
        with self.figure.batch_update():
            self.figure.data[0].z = np.where(np.isnan(w), None, w).tolist()
            self.figure.layout.title.text = f"{self.layer.value}: {w.shape[0]} × {w.shape[1]} weights shown"
            self.figure.layout.shapes = [dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=r - 0.5,
                                              y1=r + 0.5, fillcolor="rgba(220,38,38,0.35)", line=dict(width=0))
                                         for r in removed]
        self.caption.value = html.escape(self._line(self.layer.value))

    def _line(self, name: str) -> str:
        w, removed = self.matrix(name)
        if self.pruning.structured:
            return f"{name}: {len(removed)} of {w.shape[0]} channels removed (lowest L1 norms)"
        return f"{name}: {100 * np.isnan(w).mean():.1f}% of the weights shown are pruned (blank)"

    def summary(self) -> str:
        lines = ["PruningView: " + self.pruning.summary().splitlines()[0], f"  showing {self.layer.value}"]
        lines += ["  " + self._line(n) for n in self.layer.options]
        return "\n".join(lines)


class ChipPayoff(widgets.VBox):
    """A :class:`aisys.chip.Comparison` as bars, one per version of the model; the toggle picks the measure."""

    MEASURES = {"cycles": lambda r: r.cycles, "energy (µJ)": lambda r: r.energy.total_pj / 1e6,
                "DRAM bytes": lambda r: r.dram_bytes}

    def __init__(self, comparison: Comparison, height: int = 360):
        if not isinstance(comparison, Comparison):
            raise TypeError(f"ChipPayoff draws an aisys.chip.compare_graphs(...) result, got "
                            f"{type(comparison).__name__}")
        self.comparison = comparison
        self.measure = widgets.ToggleButtons(options=list(self.MEASURES), value="cycles", description="measure")
        self.caption = widgets.HTML()
        names = [r.name for r in comparison.runs]
        self.figure = go.Figure(layout=dict(height=height, margin=dict(l=70, r=20, t=50, b=60),
                                                  xaxis=dict(title=""), yaxis=dict(title="cycles")))
        self.figure.add_bar(x=names, y=[0] * len(names), text=[""] * len(names), textposition="outside",
                            marker_color=["#6b7280", "#2563eb", "#dc2626", "#16a34a", "#9333ea"][:len(names)]
                            + ["#6b7280"] * max(0, len(names) - 5))
        self.measure.observe(self._on_measure, names="value")
        self._on_measure(None)
        self.figure = go.FigureWidget(self.figure)   # drawn whole, then wrapped: an update sent before the browser
        #                                              draws a FigureWidget can be lost (empty axes)
        super().__init__([self.measure, self.caption, self.figure])
        self.add_class("aisys-chip-payoff")

    def values(self) -> list:
        f = self.MEASURES[self.measure.value]
        return [float(f(r)) for r in self.comparison.runs]

    def _on_measure(self, change) -> None:
        vals = self.values()
        base = vals[0]
        with self.figure.batch_update():
            bar = self.figure.data[0]
            bar.y = vals
            bar.text = [f"{base / v:.2f}× less" if v and i else "baseline" for i, v in enumerate(vals)]
            self.figure.layout.yaxis.title.text = self.measure.value
            self.figure.layout.yaxis.range = [0, max(vals) * 1.2]
            self.figure.layout.title.text = f"{self.measure.value} on {self.comparison.baseline.result.chip.name}"
        self.caption.value = html.escape(", ".join(
            f"{r.name}: {base / v:.2f}×" for r, v in zip(self.comparison.runs[1:], vals[1:])))

    def summary(self) -> str:
        vals = self.values()
        lines = [f"ChipPayoff ({self.measure.value}), baseline {self.comparison.baseline.name}"]
        for r, v in zip(self.comparison.runs, vals):
            lines.append(f"  {r.name:<20} {v:>14,.4g}  {vals[0] / v:6.2f}x less" if v else f"  {r.name:<20} 0")
        return "\n".join(lines)
