"""Widgets for the simulated chip: watch the systolic array, each unit's timeline, and the roofline.

- :class:`SystolicAnimator` steps (or plays) through a cycle-level run of ``aisys.chip.run_systolic``:
  an SVG grid of PEs coloured by what each does that cycle, the skewed wavefront, fill, steady state,
  drain, weight loading and fold boundaries.
- :class:`UtilizationView` draws a simulated program (``aisys.chip.simulate``), a ``Trace`` from it, a
  cycle-level run or a single ``MatrixReport``: one timeline lane per unit coloured busy / stall (by
  cause) / idle, summary bars, and a heatmap of how busy each PE is. A range slider picks the window.
- :class:`RooflinePlot` places ops or layers under a chip's roof with the ridge point and the systolic
  ceilings; a slider changes the DRAM bandwidth and every point is re-classified.

Each has ``.summary()``: deterministic text of what it shows.
"""
from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from aisys.chip import (DATAFLOW_NAMES, IDLE, LOAD, MAC, PASS, MatrixReport, ProgramResult, RooflinePoint,
                        SystolicRun, layer_roofline, preset)

__all__ = ["SystolicAnimator", "UtilizationView", "RooflinePlot"]

_FOLD_COLOURS = ["#3182bd", "#31a354", "#e6550d", "#756bb1", "#d6616b", "#8c6d31", "#17becf", "#bcbd22"]
_STATE_FILL = {IDLE: "#ffffff", LOAD: "#fff2ae", PASS: "#e0e0e0"}
_BUSY = "#2b8cbe"
_CAUSE_COLOURS = {"data": "#e34a33", "slot": "#fdae6b", "issue": "#9e9ac8", "dram busy": "#99000d",
                  "queue full": "#bcbddc", "layer start": "#c7c7c7", "other": "#737373"}


def _cause_family(cause: str) -> str:
    for key in ("data", "slot", "issue", "dram busy", "queue full", "layer start"):
        if cause.startswith(key):
            return key
    return "other"


# ---------------------------------------------------------------------------------------------------
# SystolicAnimator
# ---------------------------------------------------------------------------------------------------

class SystolicAnimator(widgets.VBox):
    """Step or play through the cycles of a cycle-level systolic run (``record=True``).

    Each PE shows what it does on the selected cycle: a MAC (coloured by fold, labelled with the
    operands it multiplies for small arrays, or the step index), loading weights (yellow), passing
    padding (grey) or nothing (white). The caption names the phase: fill, steady, drain, fold boundary.
    """

    def __init__(self, run: SystolicRun, *, cell: int = 0, interval_ms: int = 700, start: int = 0):
        if not isinstance(run, SystolicRun):
            raise TypeError(f"SystolicAnimator needs a SystolicRun from aisys.chip.run_systolic, "
                            f"got {type(run).__name__}")
        if run.activity is None:
            raise ValueError("SystolicAnimator needs the per-cycle activity: run_systolic(..., record=True)")
        self.run = run
        R, C = run.rows, run.cols
        self.cell = cell or max(26, min(78, 480 // max(R, C)))
        last = run.elapsed_cycles - 1
        if not 0 <= start <= last:
            raise ValueError(f"SystolicAnimator: start cycle {start} is outside 0..{last}")
        self.play = widgets.Play(value=start, min=0, max=last, step=1, interval=interval_ms,
                                 description="play")
        self.slider = widgets.IntSlider(value=start, min=0, max=last, description="cycle",
                                        continuous_update=True, layout=widgets.Layout(width="420px"))
        self._link = widgets.link((self.play, "value"), (self.slider, "value"))
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        self.slider.observe(self._on_cycle, names="value")
        super().__init__([widgets.HBox([self.play, self.slider]), self.caption, self.picture])
        self.add_class("aisys-systolic-animator")   # the browser test finds the widget by it
        self._draw()

    # -- drawing ------------------------------------------------------------------------------------
    def _on_cycle(self, change) -> None:
        self._draw()

    @property
    def cycle(self) -> int:
        return int(self.slider.value)

    def _operand_label(self, t: int, i: int, j: int) -> str:
        """What PE(i, j) multiplies on cycle t: a·b (OS) or x·w (inputs x, weights w; WS/IS)."""
        run = self.run
        tag = int(run.tag[t, i, j])
        fold = int(run.foldmap[t, i, j])
        if tag < 0:
            return ""
        if run.rows * run.cols > 16:
            return f"{'k' if run.dataflow == 'os' else 'm' if run.dataflow == 'ws' else 'n'}={tag}"
        rep = run.report
        if run.dataflow == "os":
            cf = rep.col_folds
            m, n = (fold // cf) * run.rows + i, (fold % cf) * run.cols + j
            return f"a{m}{tag}·b{tag}{n}"
        rf = rep.row_folds
        r, c = (fold % rf) * run.rows + i, (fold // rf) * run.cols + j
        if run.dataflow == "ws":             # PE holds weight w[r, c]; input row m streams through
            return f"x{tag}{r}·w{r}{c}"
        return f"x{c}{r}·w{r}{tag}"          # IS: PE holds input x[c, r] (A); weight column n streams

    def _entering(self, edge: str, lane: int, t: int) -> str | None:
        """Label of the operand that enters row/column ``lane`` on cycle ``t`` (None: nothing)."""
        run = self.run
        rep = run.report
        T = rep.temporal
        for f, s in enumerate(run.fold_starts):
            step = t - int(s) - lane
            if s < 0 or not 0 <= step < T:
                continue
            if run.dataflow == "os":
                if edge == "left":
                    m = (f // rep.col_folds) * run.rows + lane
                    return f"a{m}{step}" if m < rep.M else "0"
                n = (f % rep.col_folds) * run.cols + lane
                return f"b{step}{n}" if n < rep.N else "0"
            r = (f % rep.row_folds) * run.rows + lane
            if r >= rep.spatial_rows:
                return "0"
            return f"x{step}{r}" if run.dataflow == "ws" else f"w{r}{step}"
        return None

    def _svg(self, t: int) -> str:
        run, s = self.run, self.cell
        R, C = run.rows, run.cols
        queue = 3 if max(R, C) <= 6 else 0          # upcoming operands drawn at the edges
        qw = int(s * 0.62)
        left = 30 + queue * qw
        top = 18 + (queue * qw if run.dataflow == "os" else 0)
        width, height = left + C * s + 10, top + R * s + 18
        act = run.activity[t]
        folds = run.foldmap[t]
        font = max(8, s // 6)
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                 f'font-family="monospace" font-size="{font}">']
        for i in range(R):
            parts.append(f'<text x="2" y="{top + i * s + s // 2 + 4}" fill="#555">r{i}</text>')
        for j in range(C):                           # column names under the array
            parts.append(f'<text x="{left + j * s + s // 3}" y="{top + R * s + 12}" fill="#555">c{j}</text>')
        for q in range(1, queue + 1):                # the skewed staircase of operands still to enter
            for i in range(R):
                label = self._entering("left", i, t + q)
                if label:
                    x, y = left - q * qw, top + i * s + (s - qw) // 2
                    parts.append(f'<g class="queue"><rect x="{x}" y="{y}" width="{qw - 3}" height="{qw - 3}" rx="2" '
                                 f'fill="#deebf7" stroke="#9ecae1"/><text x="{x + 2}" y="{y + qw // 2 + 2}" '
                                 f'fill="#08519c">{html.escape(label)}</text></g>')
            if run.dataflow == "os":
                for j in range(C):
                    label = self._entering("top", j, t + q)
                    if label:
                        x, y = left + j * s + (s - qw) // 2, top - q * qw
                        parts.append(f'<g class="queue"><rect x="{x}" y="{y}" width="{qw - 3}" height="{qw - 3}" '
                                     f'rx="2" fill="#e5f5e0" stroke="#a1d99b"/><text x="{x + 2}" y="{y + qw // 2 + 2}" '
                                     f'fill="#006d2c">{html.escape(label)}</text></g>')
        for i in range(R):
            for j in range(C):
                a = int(act[i, j])
                if a == MAC:
                    fill = _FOLD_COLOURS[int(folds[i, j]) % len(_FOLD_COLOURS)]
                else:
                    fill = _STATE_FILL[a]
                x, y = left + j * s, top + i * s
                label = self._operand_label(t, i, j) if a in (MAC, PASS) else ("w" if a == LOAD else "")
                state = {IDLE: "idle", MAC: "MAC", LOAD: "loading weight", PASS: "padding"}[a]
                parts.append(f'<g class="pe" data-state="{state}"><rect x="{x}" y="{y}" width="{s - 2}" '
                             f'height="{s - 2}" rx="3" fill="{fill}" stroke="#444" stroke-width="1"/>'
                             f'<title>PE({i},{j}) cycle {t + 1}: {state}</title>')
                if label:
                    colour = "#ffffff" if a == MAC else "#333333"
                    parts.append(f'<text x="{x + 3}" y="{y + s // 2 + 3}" fill="{colour}">{html.escape(label)}</text>')
                parts.append("</g>")
        parts.append("</svg>")
        return "".join(parts)

    def _caption_text(self, t: int) -> str:
        run = self.run
        macs = int((run.activity[t] == MAC).sum())
        folds = sorted({int(f) for f in run.foldmap[t].ravel() if f >= 0})
        fold_text = (f"fold {folds[0] + 1} of {run.folds}" if len(folds) == 1 else
                     f"folds {', '.join(str(f + 1) for f in folds)} of {run.folds}" if folds else f"{run.folds} folds")
        return (f"T={t + 1} of {run.elapsed_cycles} ({run.phase(t)}): {macs} of {run.rows * run.cols} PEs "
                f"multiplying; {fold_text}")

    def _draw(self) -> None:
        t = self.cycle
        self.picture.value = self._svg(t)
        run = self.run
        flow = ("rows of A enter from the left and columns of B from the top, row/column i starting i cycles "
                "later; blue/green boxes are the operands still to enter" if run.dataflow == "os" else
                "the stationary operand shifts in from the top (yellow), the other streams in from the left "
                "(row i starts i cycles later); partial sums flow down and leave at the bottom")
        self.caption.value = (f"<b>{html.escape(self._caption_text(t))}</b><br>"
                              f"<span style='color:#555'>{run.rows}x{run.cols} {DATAFLOW_NAMES[run.dataflow]}, mode "
                              f"{run.mode!r} ({run.report.compute_cycles} cycles as SCALE-Sim counts): "
                              f"{html.escape(flow)}</span>")

    def summary(self) -> str:
        run = self.run
        busy = [(run.activity[t] == MAC).sum() for t in range(run.elapsed_cycles)]
        lines = [f"SystolicAnimator: {run.rows}x{run.cols} {DATAFLOW_NAMES[run.dataflow]} array, mode {run.mode!r}, "
                 f"{run.elapsed_cycles} cycles, {run.folds} fold(s)",
                 f"  now: {self._caption_text(self.cycle)}",
                 f"  MACs per cycle: {', '.join(str(int(b)) for b in busy[:24])}"
                 + (" ..." if len(busy) > 24 else "")]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# UtilizationView
# ---------------------------------------------------------------------------------------------------

def _segments_from_trace(trace) -> tuple[list, list, int]:
    lanes = list(trace.lanes)
    segs = []
    for e in trace.events:
        state = e.args.get("state", "busy")
        label = e.name[len("stall: "):] if state == "stall" and e.name.startswith("stall: ") else e.name
        segs.append((e.lane, float(e.start), float(e.end), state, label))
    t0, t1 = trace.span
    return lanes, segs, int(math.ceil(t1))


class UtilizationView(widgets.VBox):
    """Per-unit timeline (busy / stall by cause / idle), summary bars and a PE heatmap.

    Accepts a ``ProgramResult`` (from ``aisys.chip.simulate``), a ``Trace`` from one, a recorded
    ``SystolicRun`` (then the lanes are the array's rows) or a ``MatrixReport`` (heatmap only).
    The window slider restricts every view to a range of cycles.
    """

    def __init__(self, source, *, height: int = 320):
        self.source = source
        self._heat_source = None
        if isinstance(source, ProgramResult):
            self.lanes = list(source.unit_stats)
            self.segments = [(s.unit, s.start, s.end, s.state, s.label) for s in source.segments]
            self.total = source.cycles
            self.title = f"{source.chip.name}: {len(source.program.instructions)} instructions"
            self._heat_source = source
        elif hasattr(source, "events") and hasattr(source, "lanes"):
            self.lanes, self.segments, self.total = _segments_from_trace(source)
            self.title = f"trace {source.name!r}"
        elif isinstance(source, SystolicRun):
            if source.activity is None:
                raise ValueError("UtilizationView needs a SystolicRun recorded with record=True")
            self.lanes, self.segments = self._segments_from_run(source)
            self.total = source.elapsed_cycles
            self.title = f"cycle-level {source.rows}x{source.cols} array ({source.dataflow}, {source.mode})"
            self._heat_source = source
        elif isinstance(source, MatrixReport):
            self.lanes = ["matrix"]
            self.segments = [("matrix", 0, source.elapsed_cycles, "busy", "GEMM")]
            self.total = source.elapsed_cycles
            self.title = f"GEMM {source.M}x{source.N}x{source.K} ({source.dataflow})"
            self._heat_source = source
        else:
            raise TypeError(f"UtilizationView: expected a ProgramResult, Trace, SystolicRun or MatrixReport, "
                            f"got {type(source).__name__}")
        if self.total <= 0:
            raise ValueError("UtilizationView: the run has no cycles to show")
        self.window = widgets.IntRangeSlider(value=(0, int(self.total)), min=0, max=int(self.total), step=1,
                                             description="cycles", continuous_update=False,
                                             layout=widgets.Layout(width="640px"))
        # both figures are drawn whole as Figures, then wrapped once: each widget starts with its traces in its
        # state (traces added or updated before the browser draws the widget can be lost, leaving empty axes)
        self.timeline = go.Figure(layout=dict(
            title=self.title, height=max(220, 60 + 34 * len(self.lanes)), barmode="overlay",
            xaxis=dict(title="cycle"), yaxis=dict(autorange="reversed", categoryorder="array",
                                                  categoryarray=self.lanes),
            margin=dict(l=90, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.25)))
        self._add_timeline_traces()
        self.bars = go.Figure(layout=dict(
            title="share of the window", height=max(200, 50 + 28 * len(self.lanes)), barmode="stack",
            xaxis=dict(title="%", range=[0, 100]), yaxis=dict(autorange="reversed"),
            margin=dict(l=90, r=20, t=40, b=30)))
        for state, colour in (("busy", _BUSY), ("stall", _CAUSE_COLOURS["data"]), ("idle", "#f0f0f0")):
            self.bars.add_bar(name=state, orientation="h", y=self.lanes, x=[0] * len(self.lanes),
                              marker_color=colour)
        self.heatmap = widgets.HTML()
        self.caption = widgets.HTML()
        self._refresh()
        self.timeline, self.bars = go.FigureWidget(self.timeline), go.FigureWidget(self.bars)
        self.window.observe(self._on_window, names="value")
        children = [self.window, self.caption, self.timeline, self.bars]
        if self._heat_source is not None:
            children.append(self.heatmap)
        super().__init__(children)
        self.add_class("aisys-utilization-view")   # the browser test finds the widget by it

    @staticmethod
    def _segments_from_run(run: SystolicRun):
        lanes = [f"row {i}" for i in range(run.rows)]
        busy = (run.activity == MAC).any(axis=2)        # (cycles, rows): any PE of the row multiplies
        segs = []
        for i, lane in enumerate(lanes):
            col = busy[:, i]
            t = 0
            while t < len(col):
                if col[t]:
                    s = t
                    while t < len(col) and col[t]:
                        t += 1
                    segs.append((lane, s, t, "busy", "MAC"))
                else:
                    t += 1
        return lanes, segs

    def _add_timeline_traces(self) -> None:
        groups: dict = {}
        for lane, s, e, state, label in self.segments:
            key = "busy" if state == "busy" else _cause_family(label)
            groups.setdefault(key, ([], [], [], []))
            ys, xs, bases, texts = groups[key]
            ys.append(lane)
            xs.append(e - s)
            bases.append(s)
            texts.append(label)
        order = ["busy"] + [k for k in _CAUSE_COLOURS if k in groups]
        for key in order:
            if key not in groups:
                continue
            ys, xs, bases, texts = groups[key]
            self.timeline.add_bar(name=key if key == "busy" else f"stall: {key}", orientation="h", y=ys, x=xs,
                                  base=bases, hovertext=texts, hoverinfo="text+y",
                                  marker_color=_BUSY if key == "busy" else _CAUSE_COLOURS[key],
                                  marker_line_width=0)

    # -- statistics over the window ---------------------------------------------------------------------
    def window_stats(self) -> dict:
        """Per lane: busy, stall and idle cycles inside the window, and stall cycles per cause."""
        lo, hi = self.window.value
        span = max(0, hi - lo)
        out = {lane: {"busy": 0.0, "stall": 0.0, "idle": 0.0, "causes": {}} for lane in self.lanes}
        for lane, s, e, state, label in self.segments:
            overlap = min(e, hi) - max(s, lo)
            if overlap <= 0:
                continue
            st = out.setdefault(lane, {"busy": 0.0, "stall": 0.0, "idle": 0.0, "causes": {}})
            if state == "busy":
                st["busy"] += overlap
            else:
                st["stall"] += overlap
                st["causes"][label] = st["causes"].get(label, 0) + overlap
        for st in out.values():
            st["busy"] = min(st["busy"], span)
            st["idle"] = max(0.0, span - st["busy"] - st["stall"])
        return out

    def pe_heat(self) -> np.ndarray | None:
        """Share of the window's cycles each PE spends on useful MACs (rows x cols)."""
        src = self._heat_source
        lo, hi = self.window.value
        span = max(1, hi - lo)
        if isinstance(src, SystolicRun):
            return (src.activity[lo:hi] == MAC).sum(axis=0) / span
        if isinstance(src, MatrixReport):
            return src.pe_macs() / max(1, src.elapsed_cycles)
        if isinstance(src, ProgramResult):
            return src.pe_heat(lo, hi)
        return None

    def _heat_svg(self, heat: np.ndarray) -> str:
        """The PE array, each PE shaded by its busy share relative to the busiest one."""
        R, C = heat.shape
        s = max(6, min(28, 420 // max(R, C)))
        peak = float(heat.max()) or 1.0
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(C * s, 360)}" height="{R * s + 24}" '
                 f'font-family="sans-serif" font-size="11">']
        for i in range(R):
            for j in range(C):
                v = float(heat[i, j])
                g = int(245 - 200 * v / peak)
                parts.append(f'<rect class="pe-heat" x="{j * s}" y="{i * s + 20}" width="{s}" height="{s}" '
                             f'fill="rgb({g},{g},255)" stroke="#ccc" stroke-width="0.5">'
                             f'<title>PE({i},{j}): {100 * v:.1f}% busy</title></rect>')
        parts.append(f'<text x="0" y="12">PE busy share (darkest = {100 * peak:.1f}%), mean '
                     f'{100 * float(heat.mean()):.1f}%</text>')
        parts.append("</svg>")
        return "".join(parts) + f"<div style='font-size:12px;color:#374151;max-width:640px'>{html.escape(self.heat_note(heat))}</div>"

    @staticmethod
    def heat_note(heat: np.ndarray) -> str:
        """What the PE map shows, in words: a uniform map is a finding too (every tile was full)."""
        peak, low = float(heat.max()), float(heat.min())
        if peak <= 0:
            return "No PE did a MAC in this window."
        if peak - low <= 1e-9 * peak:
            return (f"Every PE is equally busy ({100 * peak:.1f}% of the window): each matrix instruction filled "
                    f"whole tiles, so no row or column of the array sat out. The share is low because the array "
                    f"waits for data (the stall lanes above), not because the mapping wastes PEs.")
        def share(n: int, total: int, what: str) -> str:
            return f"all {total} {what}" if n == total else f"{n} of the {total} {what}"

        busy_rows = int((heat.max(axis=1) >= 0.99 * peak).sum())
        busy_cols = int((heat.max(axis=0) >= 0.99 * peak).sum())
        return (f"Darker PEs did more MACs (the scale runs up to the busiest PE): "
                f"{share(busy_rows, heat.shape[0], 'rows')} and {share(busy_cols, heat.shape[1], 'columns')} reach "
                f"the busiest share; the others hold padding whenever a layer's GEMM does not fill a whole tile "
                f"(an unaligned M, N or K).")

    def _on_window(self, change) -> None:
        self._refresh()

    def _refresh(self) -> None:
        lo, hi = self.window.value
        stats = self.window_stats()
        span = max(1, hi - lo)
        with self.timeline.batch_update():
            self.timeline.layout.xaxis.range = [lo, hi]
        with self.bars.batch_update():
            for k, state in enumerate(("busy", "stall", "idle")):
                self.bars.data[k].x = [round(100 * stats[lane][state] / span, 2) for lane in self.lanes]
            self.bars.layout.title.text = f"share of cycles {lo}..{hi}"
        heat = self.pe_heat() if self._heat_source is not None else None
        if heat is not None:
            self.heatmap.value = self._heat_svg(heat)
        worst = max(self.lanes, key=lambda lane: stats[lane]["stall"])
        self.caption.value = html.escape(self._headline(stats, worst))

    def _headline(self, stats, worst) -> str:
        lo, hi = self.window.value
        st = stats[worst]
        if st["stall"] <= 0:
            return f"cycles {lo}..{hi}: no stalls"
        cause = max(st["causes"], key=st["causes"].get)
        return (f"cycles {lo}..{hi}: most stalled unit {worst} ({100 * st['stall'] / max(1, hi - lo):.1f}%), "
                f"mostly '{cause}'")

    def summary(self) -> str:
        lo, hi = self.window.value
        span = max(1, hi - lo)
        stats = self.window_stats()
        width = max(6, max(len(x) for x in self.lanes))
        lines = [f"UtilizationView: {self.title}; window {lo}..{hi} of {self.total} cycles",
                 f"  {'unit':<{width}}  {'busy':>6}  {'stall':>6}  {'idle':>6}  top stall cause"]
        for lane in self.lanes:
            st = stats[lane]
            top = max(st["causes"], key=st["causes"].get) if st["causes"] else "-"
            lines.append(f"  {lane:<{width}}  {100 * st['busy'] / span:>5.1f}%  {100 * st['stall'] / span:>5.1f}%  "
                         f"{100 * st['idle'] / span:>5.1f}%  {top}")
        heat = self.pe_heat() if self._heat_source is not None else None
        if heat is not None:
            lines.append(f"  PE array {heat.shape[0]}x{heat.shape[1]}: mean busy {100 * float(heat.mean()):.1f}%, "
                         f"idle PEs {int((heat == 0).sum())}")
            lines.append("  " + self.heat_note(heat))
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# RooflinePlot
# ---------------------------------------------------------------------------------------------------

class RooflinePlot(widgets.VBox):
    """Points under a chip's roof (log-log), the ridge point, and per-layer systolic ceilings.

    ``points``: ``RooflinePoint``s (``aisys.chip.roofline_point``, ``layer_roofline``,
    ``tpu_v1_paper_points``) or layer records (simulated on ``chip``). ``per="mac"`` draws the axes in
    multiply-accumulates as the TPU v1 paper does (ridge ~1350 MAC/B on ``tpu_v1``). The bandwidth
    slider changes the roof; every point is re-classified.
    """

    def __init__(self, points, chip, *, per: str = "op", height: int = 440):
        self.chip = preset(chip)
        if per not in ("op", "mac"):
            raise ValueError(f"RooflinePlot: per must be 'op' or 'mac', got {per!r}")
        self.per = per
        pts = []
        for p in points:
            if isinstance(p, RooflinePoint):
                pts.append(p)
            elif hasattr(p, "flops") and hasattr(p, "io_words"):
                pts.append(layer_roofline(p, self.chip))
            else:
                raise TypeError(f"RooflinePlot: points must be RooflinePoints or layer records, got {type(p).__name__}")
        if not pts:
            raise ValueError("RooflinePlot: no points to draw")
        self.points = pts
        gbs = self.chip.dram_bytes_per_s / 1e9
        self.bandwidth = widgets.FloatLogSlider(value=gbs, base=10, min=math.log10(gbs) - 2, max=math.log10(gbs) + 2,
                                                step=0.05, description="DRAM GB/s", readout_format=".3g",
                                                continuous_update=False, layout=widgets.Layout(width="520px"))
        self.caption = widgets.HTML()
        unit = "MAC" if per == "mac" else "op"
        # built whole as a Figure, then wrapped once: the widget starts with every trace and label in its state
        self.figure = go.Figure(layout=dict(
            title=f"roofline of {self.chip.name}", height=height,
            # decades only, written out (10, 100, 1k): plotly's default labels minor ticks "2" and "5"
            xaxis=dict(type="log", title=f"operational intensity ({unit}s per DRAM byte)", dtick=1,
                       tickformat="~s", minor=dict(showgrid=True, gridcolor="#f3f4f6")),
            yaxis=dict(type="log", title=f"performance (T{unit}/s)", dtick=1, tickformat="~g",
                       minor=dict(showgrid=True, gridcolor="#f3f4f6")),
            margin=dict(l=70, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.2)))
        self._build()
        self.figure = go.FigureWidget(self.figure)
        self.bandwidth.observe(self._on_bandwidth, names="value")
        super().__init__([self.bandwidth, self.caption, self.figure])
        self.add_class("aisys-roofline-plot")   # the browser test finds the widget by it

    # -- numbers ---------------------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        return 2.0 if self.per == "mac" else 1.0

    @property
    def peak(self) -> float:
        return self.chip.peak_ops_per_s / self.scale / 1e12

    @property
    def bytes_per_s(self) -> float:
        return float(self.bandwidth.value) * 1e9

    @property
    def ridge(self) -> float:
        return self.chip.peak_ops_per_s / self.scale / self.bytes_per_s

    def _x(self, p: RooflinePoint) -> float:
        return p.intensity / self.scale

    def _bound(self, p: RooflinePoint) -> str:
        return "memory" if self._x(p) < self.ridge else "compute"

    def _attainable(self, p: RooflinePoint) -> float:
        return min(self.peak, self.bytes_per_s * self._x(p) / 1e12)

    def _y(self, p: RooflinePoint) -> float:
        if p.achieved_ops_per_s is not None:
            return min(p.achieved_ops_per_s / self.scale / 1e12, self._attainable(p))
        return self._attainable(p)

    def _xrange(self) -> tuple[float, float]:
        xs = [self._x(p) for p in self.points if math.isfinite(self._x(p))] + [self.ridge]
        return min(xs) / 10, max(xs) * 10

    def _roof(self):
        lo, hi = self._xrange()
        xs = list(np.geomspace(lo, hi, 60)) + [self.ridge]
        xs.sort()
        return xs, [min(self.peak, self.bytes_per_s * x / 1e12) for x in xs]

    # -- drawing ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        fig = self.figure
        xs, ys = self._roof()
        fig.add_scatter(x=xs, y=ys, mode="lines", name="roof", line=dict(color="#222", width=3))
        # the ridge is named in the legend (and the caption), not next to the marker, where point labels go
        fig.add_scatter(x=[self.ridge], y=[self.peak], mode="markers", name=f"ridge point ({self.ridge:.4g})",
                        marker=dict(size=10, color="#222", symbol="diamond"))
        for bound, colour in (("memory", "#e34a33"), ("compute", "#2b8cbe")):
            pts = [p for p in self.points if self._bound(p) == bound and math.isfinite(self._x(p))]
            fig.add_scatter(x=[self._x(p) for p in pts], y=[self._y(p) for p in pts], mode="markers",
                            name=f"{bound}-bound", hovertext=[p.name for p in pts], hoverinfo="text+x+y",
                            marker=dict(size=11, color=colour))
        fig.layout.annotations = self._labels()
        ceil_x, ceil_y, ceil_text = [], [], []
        for p in self.points:
            for name, value in p.ceilings.items():
                ceil_x.append(self._x(p))
                ceil_y.append(value / self.scale / 1e12)
                ceil_text.append(f"{p.name}: {name}")
        fig.add_scatter(x=ceil_x, y=ceil_y, mode="markers", name="ceilings (mapping, fill)",
                        hovertext=ceil_text, hoverinfo="text", marker=dict(symbol="line-ew-open", size=16,
                                                                           color="#636363"))
        self._caption()

    def _on_bandwidth(self, change) -> None:
        xs, ys = self._roof()
        fig = self.figure
        with fig.batch_update():
            fig.data[0].x, fig.data[0].y = xs, ys
            fig.data[1].x, fig.data[1].y = [self.ridge], [self.peak]
            fig.data[1].name = f"ridge point ({self.ridge:.4g})"
            for k, bound in ((2, "memory"), (3, "compute")):
                pts = [p for p in self.points if self._bound(p) == bound and math.isfinite(self._x(p))]
                fig.data[k].x = [self._x(p) for p in pts]
                fig.data[k].y = [self._y(p) for p in pts]
                fig.data[k].hovertext = [p.name for p in pts]
            fig.layout.annotations = self._labels()
            fig.layout.title.text = f"roofline of {self.chip.name} at {self.bandwidth.value:.3g} GB/s"
        self._caption()

    def _labels(self) -> list[dict]:
        """One label per point, drawn off the roof line: neighbours (in intensity, across the ridge too)
        alternate sides (memory-bound points below-right / above-left of the slanted roof, compute-bound ones
        below / above the flat roof), each tied to its point by a thin leader line; a label whose same-side
        neighbour is less than half a decade away sits one step further out. So close points (MLP1 at 168,
        MLP0 at 200; a matmul just left of the ridge and one just right of it) do not collide and no text sits
        on the roof."""
        labels = []
        pts = sorted((p for p in self.points if math.isfinite(self._x(p))), key=self._x)
        last = {1: (-math.inf, 0), -1: (-math.inf, 0)}      # side -> (log10 x of its last label, its level)
        for k, p in enumerate(pts):
            flip = -1 if k % 2 else 1
            lx = math.log10(self._x(p))
            prev_x, prev_level = last[flip]
            level = prev_level + 1 if lx - prev_x < 0.5 else 0
            last[flip] = (lx, level)
            reach = 26 + 22 * level
            dx, dy = (30 * flip, reach * flip) if self._bound(p) == "memory" else (0, reach * flip)
            labels.append(dict(x=lx, y=math.log10(self._y(p)), text=p.name, showarrow=True,
                               arrowhead=0, arrowwidth=1, arrowcolor="#9ca3af", standoff=6, ax=dx, ay=dy,
                               xanchor="center" if dx == 0 else ("left" if dx > 0 else "right"),
                               font=dict(size=12, color="#1f2937"), bgcolor="rgba(255,255,255,0.8)"))
        return labels

    def _caption(self) -> None:
        unit = "MAC" if self.per == "mac" else "op"
        mem = [p.name for p in self.points if self._bound(p) == "memory"]
        self.caption.value = html.escape(
            f"peak {self.peak:.4g} T{unit}/s, DRAM {self.bandwidth.value:.3g} GB/s, ridge {self.ridge:.4g} {unit}/B; "
            f"memory-bound: {', '.join(mem) or 'none'}")

    def summary(self) -> str:
        unit = "MAC" if self.per == "mac" else "op"
        lines = [f"RooflinePlot: {self.chip.name}, peak {self.peak:.4g} T{unit}/s, DRAM {self.bandwidth.value:.4g} GB/s, "
                 f"ridge {self.ridge:.4g} {unit}/B"]
        for p in self.points:
            lines.append(f"  {p.name:<22} {self._x(p):>10.4g} {unit}/B  {self._bound(p)}-bound  "
                         f"attainable {self._attainable(p):.4g} T{unit}/s")
        return "\n".join(lines)
