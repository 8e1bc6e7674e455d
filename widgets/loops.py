"""Loop-optimization widgets: a schedule's loop nest step by step, cache hits and misses over time, a live
schedule explorer, and a tuner's progress.

* :class:`LoopNestView` — the nest as indented pseudocode; a slider replays the schedule's steps one at a
  time and highlights the lines the current step changed.
* :class:`CacheHeatmap` — per array, elements (rows) × time (columns), coloured by the share of accesses
  that missed the chosen cache level (green: hits, red: misses).
* :class:`ScheduleExplorer` — tile-size sliders and a loop-order dropdown over a 2-D reduction (a matmul):
  each change re-lowers, re-simulates (misses, cycles) and, if asked, re-times the numba kernel.
* :class:`TuningCurve` — every trial's cost and the best so far.

They draw the records ``aisys.compiler.loops`` produces (Schedule, CacheReport, TuningLog); each has a
plain-text ``summary()``.
"""
from __future__ import annotations

import html
import time

import ipywidgets as widgets
import numpy as np

from aisys.compiler import loops

__all__ = ["LoopNestView", "CacheHeatmap", "ScheduleExplorer", "TuningCurve", "heatmap_svg", "curve_svg"]

_PRE = ("font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; line-height: 1.35; "
        "background: #f8fafc; border: 1px solid #e2e8f0; padding: 8px; margin: 0; overflow-x: auto")


def _nest_html(lines, changed=frozenset()) -> str:
    rows = []
    for n, (d, text, _) in enumerate(lines):
        style = "background: #fef3c7; font-weight: 600" if n in changed else ""
        rows.append(f"<span style='{style}'>{'    ' * d}{html.escape(text)}</span>")
    return f"<pre style='{_PRE}'>" + "\n".join(rows) + "</pre>"


class LoopNestView(widgets.VBox):
    """The loop nest of ``schedule`` after each of its steps (slider); the lines a step changed are lit."""

    def __init__(self, schedule: loops.Schedule):
        if not isinstance(schedule, loops.Schedule):
            raise TypeError(f"LoopNestView draws a loops.Schedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.states = [loops.lower(loops.Schedule(schedule.outputs, steps=schedule.steps[:k])).lines()
                       for k in range(len(schedule.steps) + 1)]
        self.slider = widgets.IntSlider(value=len(schedule.steps), min=0, max=len(schedule.steps),
                                        description="step", continuous_update=False)
        self.caption = widgets.HTML()
        self.code = widgets.HTML()
        self.slider.observe(lambda change: self._redraw(), names="value")
        super().__init__([self.slider, self.caption, self.code])
        self.add_class("aisys-loop-nest-view")
        self._redraw()

    def changed_lines(self, k: int) -> set[int]:
        if k == 0:
            return set()
        before = {(d, t) for d, t, _ in self.states[k - 1]}
        return {n for n, (d, t, _) in enumerate(self.states[k]) if (d, t) not in before}

    def _redraw(self):
        k = self.slider.value
        what = "the compute as written" if k == 0 else f"after step {k}: <code>{html.escape(str(self.schedule.steps[k - 1]))}</code>"
        self.caption.value = f"<b>{what}</b> ({len(self.changed_lines(k))} lines changed, highlighted)"
        self.code.value = _nest_html(self.states[k], self.changed_lines(k))

    def summary(self) -> str:
        k = self.slider.value
        return (f"{len(self.schedule.steps)} steps; showing {k}: {len(self.states[k])} lines, "
                f"{len(self.changed_lines(k))} changed by the last step")


# ---- cache heatmap -------------------------------------------------------------------------------------------
def _grid(report, array: int, level: int, rows: int, cols: int):
    """(miss share, counts) per (element bin, time bin) for one array."""
    sel = np.nonzero(report.array_ids == array)[0]
    itemsize = 4
    size = (report.sizes[array] if report.sizes else None) or \
        int(report.addresses[sel].max() - report.bases[array] + itemsize)
    elem = (report.addresses[sel] - report.bases[array]) // itemsize
    n_elem = max(1, size // itemsize)
    r = np.minimum(elem * rows // n_elem, rows - 1)
    c = np.minimum(sel * cols // max(1, report.n), cols - 1)
    miss = (report.served[sel] > level).astype(np.float64)
    count = np.zeros((rows, cols))
    bad = np.zeros((rows, cols))
    np.add.at(count, (r, c), 1)
    np.add.at(bad, (r, c), miss)
    with np.errstate(invalid="ignore"):
        return bad / count, count


def _colour(share: float) -> str:
    """Green (all hits) through yellow to red (all misses)."""
    share = float(min(max(share, 0.0), 1.0))
    if share < 0.5:
        r, g = int(34 + (234 - 34) * share * 2), 197
    else:
        r, g = 234 - int((234 - 220) * (share - 0.5) * 2), int(179 - (179 - 38) * (share - 0.5) * 2)
    return f"rgb({r},{g},{int(94 - 60 * share)})"


def heatmap_svg(report, level: int = 0, rows: int = 24, cols: int = 64, cell: int = 7, red_at: float = 1 / 16) -> str:
    """The heat map as SVG: one panel per array, elements down, time across; a cell is red when at least
    ``red_at`` of its accesses missed (1/16: a miss for every line of 16 floats, what a pure stream makes)."""
    if report.served is None:
        raise ValueError("CacheHeatmap needs a report from CacheSim.run(..., record=True)")
    arrays = [a for a in range(len(report.arrays)) if (report.array_ids == a).any()]
    left, top, gap = 70, 28, 26
    width = max(left + cols * cell + 20, 470)      # room for the caption line
    height = top + len(arrays) * (rows * cell + gap) + 20
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif'>",
           f"<text x='{left}' y='16' font-size='13'>time →  (L{level + 1} misses: green none, red ≥ 1 in "
           f"{round(1 / red_at)} accesses)</text>"]
    y0 = top
    for a in arrays:
        share, count = _grid(report, a, level, rows, cols)
        out.append(f"<text x='4' y='{y0 + rows * cell / 2 + 5}' font-size='13' font-weight='bold'>"
                   f"{html.escape(report.arrays[a])}</text>")
        out.append(f"<text x='4' y='{y0 + rows * cell / 2 + 21}' font-size='11'>elements ↓</text>")
        for i in range(rows):
            for j in range(cols):
                if count[i, j]:
                    out.append(f"<rect class='heat' x='{left + j * cell}' y='{y0 + i * cell}' width='{cell}' "
                               f"height='{cell}' fill='{_colour(share[i, j] / red_at)}'/>")
        out.append(f"<rect x='{left}' y='{y0}' width='{cols * cell}' height='{rows * cell}' fill='none' "
                   f"stroke='#94a3b8'/>")
        y0 += rows * cell + gap
    out.append("</svg>")
    return "".join(out)


class CacheHeatmap(widgets.VBox):
    """Per array, elements × time coloured by the share of accesses that missed the chosen level."""

    def __init__(self, report, level: int = 0):
        if getattr(report, "served", None) is None:
            raise TypeError("CacheHeatmap draws a CacheReport made with CacheSim.run(trace, record=True)")
        self.report = report
        self.level_picker = widgets.ToggleButtons(options=[lv.name for lv in report.levels],
                                                  value=report.levels[level].name, description="level",
                                                  style={"button_width": "auto"})
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        self.level_picker.observe(lambda change: self._redraw(), names="value")
        super().__init__([self.level_picker, self.caption, self.picture])
        self.add_class("aisys-cache-heatmap")
        self._redraw()

    @property
    def level(self) -> int:
        return [lv.name for lv in self.report.levels].index(self.level_picker.value)

    def _redraw(self):
        lv = self.report.levels[self.level]
        self.caption.value = (f"{lv.name}: {lv.accesses:,} accesses, {lv.misses:,} misses "
                              f"({100 * lv.miss_rate:.1f}%); ≈{self.report.cycles:,} cycles")
        self.picture.value = heatmap_svg(self.report, self.level)

    def summary(self) -> str:
        return self.report.summary()


# ---- schedule explorer ---------------------------------------------------------------------------------------
ORDERS = {
    "io jo ii k ji (k outside the tile's columns)": ("io", "jo", "ii", "k", "ji"),
    "io jo k ii ji (k outside the tile)": ("io", "jo", "k", "ii", "ji"),
    "io jo ii ji k (dot products in the tile)": ("io", "jo", "ii", "ji", "k"),
}


def tiled(compute, ti: int, tj: int, order: tuple[str, ...]) -> loops.Schedule:
    """The explorer's template: tile (i, j) by (ti, tj), then put the five loops in ``order``."""
    s = loops.Schedule(compute)
    s.tile(compute.axis[0], compute.axis[1], ti, tj)
    s.reorder(*order)
    return s


class ScheduleExplorer(widgets.VBox):
    """Tile sizes and loop order of a matmul-like compute (two axes and one reduction), live: the nest, its
    simulated misses and cycles, and (``timing=True``) the numba kernel's time and GFLOP/s."""

    def __init__(self, compute, sim=None, tiles=(1, 2, 4, 8, 16, 32, 64), ti: int = 1, tj: int = 1,
                 order: str | None = None, timing: bool = False):
        if compute.op is None or len(compute.axis) != 2 or len(compute.reduce_axis) != 1:
            raise TypeError("ScheduleExplorer explores a compute with two axes and one reduction (a matmul)")
        self.compute, self.sim, self.timing = compute, sim or loops.CacheSim.preset("zen4"), timing
        tiles = [t for t in tiles if t <= max(compute.shape)]
        self.ti = widgets.SelectionSlider(options=tiles, value=ti, description="tile i", continuous_update=False)
        self.tj = widgets.SelectionSlider(options=tiles, value=tj, description="tile j", continuous_update=False)
        self.order = widgets.Dropdown(options=list(ORDERS), value=order or list(ORDERS)[0], description="order",
                                      layout=widgets.Layout(width="420px"))
        self.stats = widgets.HTML()
        self.code = widgets.HTML()
        self.heat = widgets.HTML()
        for w in (self.ti, self.tj, self.order):
            w.observe(lambda change: self._redraw(), names="value")
        super().__init__([widgets.HBox([self.ti, self.tj]), self.order, self.stats,
                          widgets.HBox([self.heat, self.code])])
        self.add_class("aisys-schedule-explorer")
        self.history: list[dict] = []
        self._redraw()

    def schedule(self) -> loops.Schedule:
        return tiled(self.compute, self.ti.value, self.tj.value, ORDERS[self.order.value])

    def measure(self) -> dict:
        s = self.schedule()
        rep = self.sim.run(loops.trace_addresses(s), record=True)
        out = dict(ti=self.ti.value, tj=self.tj.value, order=self.order.value, report=rep,
                   l1_misses=rep.misses(0), cycles=rep.cycles, schedule=s)
        if self.timing:
            ins = [np.random.default_rng(0).standard_normal(p.shape).astype(p.dtype.np)
                   for p in loops.placeholders(s)]
            f = loops.build(s)
            f(*ins)
            ts = []
            for _ in range(3):
                t0 = time.perf_counter()
                f(*ins)
                ts.append(time.perf_counter() - t0)
            out["ms"] = 1e3 * float(np.median(ts))
            flops = 2 * int(np.prod(self.compute.shape)) * self.compute.reduce_axis[0].extent
            out["gflops"] = flops / (out["ms"] * 1e-3) / 1e9
        return out

    def _redraw(self):
        m = self.measure()
        self.history.append({k: v for k, v in m.items() if k not in ("report", "schedule")})
        timing = f" · {m['ms']:.2f} ms, {m['gflops']:.2f} GFLOP/s (numba, this machine)" if "ms" in m else ""
        self.stats.value = (f"<b>L1 misses {m['l1_misses']:,}</b> · L2 misses {m['report'].misses(1):,} · "
                            f"≈{m['cycles']:,} cycles{timing}")
        self.heat.value = heatmap_svg(m["report"], 0, rows=20, cols=48, cell=6)
        self.code.value = _nest_html(loops.lower(m["schedule"]).lines())
        self.last = m

    def summary(self) -> str:
        m = self.last
        return (f"tile {m['ti']}x{m['tj']}, order {m['order'].split(' (')[0]}: L1 misses {m['l1_misses']}, "
                f"cycles {m['cycles']}")


# ---- tuning curve ---------------------------------------------------------------------------------------------
def curve_svg(costs, best, baseline=None, measure="cost", width=640, height=300, predicted=None) -> str:
    """Trials (dots) and best so far (line) on a log scale, as SVG; ``predicted`` (one per trial, NaN where the
    cost model made no prediction) draws each prediction as an orange ring joined to its measurement."""
    left, right, top, bottom = 80, 20, 20, 44
    predicted = list(predicted) if predicted is not None else [float("nan")] * len(costs)
    vals = [c for c in costs + best + predicted + ([baseline] if baseline else []) if c and np.isfinite(c) and c > 0]
    lo, hi = np.log10(min(vals)), np.log10(max(vals))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(1, len(costs))
    X = lambda t: left + (width - left - right) * (t - 0.5) / n                      # noqa: E731
    Y = lambda v: top + (height - top - bottom) * (hi - np.log10(v)) / (hi - lo)     # noqa: E731
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' "
           f"font-size='13'>",
           f"<rect x='{left}' y='{top}' width='{width - left - right}' height='{height - top - bottom}' fill='#f8fafc' "
           f"stroke='#cbd5e1'/>"]
    for e in range(int(np.floor(lo)), int(np.ceil(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo <= np.log10(v) <= hi:
                out.append(f"<line x1='{left}' x2='{width - right}' y1='{Y(v):.1f}' y2='{Y(v):.1f}' stroke='#e2e8f0'/>")
                out.append(f"<text x='{left - 6}' y='{Y(v) + 4:.1f}' text-anchor='end'>{v:.3g}</text>")
    if baseline:
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{Y(baseline):.1f}' y2='{Y(baseline):.1f}' "
                   f"stroke='#dc2626' stroke-dasharray='6 4'/>")
        out.append(f"<text x='{width - right - 4}' y='{Y(baseline) - 6:.1f}' text-anchor='end' fill='#dc2626'>"
                   f"default schedule</text>")
    for t, (c, p) in enumerate(zip(costs, predicted), 1):
        if c and np.isfinite(c) and p and np.isfinite(p) and p > 0:
            out.append(f"<line x1='{X(t):.1f}' x2='{X(t):.1f}' y1='{Y(p):.1f}' y2='{Y(c):.1f}' stroke='#f59e0b' "
                       f"stroke-width='1.5'/>")
            out.append(f"<circle class='prediction' cx='{X(t):.1f}' cy='{Y(p):.1f}' r='5' fill='none' "
                       f"stroke='#ea580c' stroke-width='2'/>")
    for t, c in enumerate(costs, 1):
        if c and np.isfinite(c):
            out.append(f"<circle class='trial' cx='{X(t):.1f}' cy='{Y(c):.1f}' r='3.5' fill='#64748b'/>")
    pts = " ".join(f"{X(t):.1f},{Y(c):.1f}" for t, c in enumerate(best, 1) if np.isfinite(c))
    out.append(f"<polyline points='{pts}' fill='none' stroke='#2563eb' stroke-width='3'/>")
    legend = " · orange rings: the model's prediction" if any(np.isfinite(p) for p in predicted) else ""
    out.append(f"<text x='{(left + width - right) / 2}' y='{height - 10}' text-anchor='middle'>trial (1–{len(costs)})"
               f" · dots: measured · blue: best so far{legend}</text>")
    out.append(f"<text x='16' y='{(top + height - bottom) / 2}' transform='rotate(-90 16 {(top + height - bottom) / 2})' "
               f"text-anchor='middle'>{html.escape(measure)} (log)</text></svg>")
    return "".join(out)


class TuningCurve(widgets.VBox):
    """Each trial's cost (dots) and the best so far (line) of a tuning log; ``baseline`` draws the default.
    Trials a cost model predicted before measuring (``Tuner.model_search``) show the prediction beside the
    measurement, and the summary lists them."""

    def __init__(self, log, baseline: float | None = None):
        self.tuning_log = log
        self.caption = widgets.HTML(f"<b>{html.escape(log.summary())}</b>")
        self.picture = widgets.HTML(curve_svg([t.cost for t in log.trials], log.curve(), baseline, log.measure,
                                              predicted=[t.predicted for t in log.trials]))
        super().__init__([self.caption, self.picture])
        self.add_class("aisys-tuning-curve")

    def summary(self, rows: int = 6) -> str:
        lines = [self.tuning_log.summary()]
        predicted = [(k, t) for k, t in enumerate(self.tuning_log.trials, 1) if np.isfinite(t.predicted)]
        if predicted:
            lines.append(f"{'trial':>5s} {'predicted':>11s} {'measured':>11s} {'error':>7s}")
            for k, t in predicted[:rows]:
                lines.append(f"{k:5d} {t.predicted:11.4g} {t.cost:11.4g} {t.predicted / t.cost - 1:+7.0%}")
            if len(predicted) > rows:
                lines.append(f"  … {len(predicted) - rows} more predicted trials")
        return "\n".join(lines)
