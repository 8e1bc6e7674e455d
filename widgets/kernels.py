"""Kernel widgets: how a convolution becomes a GEMM, what each algorithm costs, and which GPU thread did what.

* :class:`Im2colView` — an NHWC input (one channel shown, padding in grey) beside its im2col matrix: step an
  output pixel and see the input patch it reads and its row in the matrix (an :class:`aisys.kernels.Im2colRecord`).
* :class:`KernelCompare` — multiplications, workspace, time and error bars per algorithm for a chosen layer
  (:class:`aisys.kernels.AlgorithmComparison` records).
* :class:`ThreadGridView` — a launch's output coloured by the block that computed each element, the global
  elements one chosen thread read, and the global / shared traffic totals (``aisys.kernels.cuda.TrafficReport``).

They draw SVG in an HTML widget (crisp at any zoom); each has a plain-text ``summary()``.
"""
from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np

from aisys.kernels import AlgorithmComparison, Im2colRecord

__all__ = ["Im2colView", "KernelCompare", "ThreadGridView", "PALETTE"]

PALETTE = ["#2563eb", "#f59e0b", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#ea580c",
           "#4f46e5", "#0d9488", "#a16207"]
FONT = "font-family:sans-serif"


def _text(x, y, s, size=12, anchor="start", weight="normal", fill="#111827"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}" style="{FONT}">{html.escape(str(s))}</text>')


def _rect(x, y, w, h, fill, stroke="#d1d5db", sw=1.0, extra=""):
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{sw}" {extra}/>')


def _shade(v, lo, hi):
    t = 0.5 if hi <= lo else (v - lo) / (hi - lo)
    c = int(235 - 150 * t)
    return f"rgb({c},{c + 10 if c < 245 else 255},255)"


def _svg(width, height, body):
    return f'<svg width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">{"".join(body)}</svg>'


class Im2colView(widgets.VBox):
    """Step an output pixel: its input patch (left, one channel) and its row of the im2col matrix (right)."""

    def __init__(self, record: Im2colRecord, *, channel: int = 0):
        if not isinstance(record, Im2colRecord):
            raise TypeError(f"Im2colView draws an aisys.kernels.Im2colRecord (kernels.im2col_record(...)), got "
                            f"{type(record).__name__}")
        self.record = record
        g = record.geometry
        self.channel = int(channel)
        self.n = widgets.IntSlider(0, 0, g.N - 1, description="image n")
        self.n.layout.display = None if g.N > 1 else "none"
        self.oh = widgets.IntSlider(0, 0, g.OH - 1, description="output row")
        self.ow = widgets.IntSlider(0, 0, g.OW - 1, description="output col")
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        for s in (self.n, self.oh, self.ow):
            s.observe(lambda _: self._redraw(), "value")
        super().__init__([widgets.HBox([self.n, self.oh, self.ow]), self.picture, self.caption])
        self.add_class("aisys-im2col-view")   # the browser test finds the widget by it
        self._redraw()

    def _redraw(self) -> None:
        r, g = self.record, self.record.geometry
        n, oh, ow = self.n.value, self.oh.value, self.ow.value
        taps = r.patch(oh, ow)
        row = r.row(n, oh, ow)
        ph, pw = g.padding
        cell = max(12, min(28, 360 // max(g.H + 2 * ph, g.W + 2 * pw)))
        body, top, left = [], 48, 20
        body.append(_text(left, 18, f"input: image {n}, channel {self.channel}", 13, weight="bold"))
        body.append(_text(left, 34, "grey: padding; red: the patch", 12))
        plane = r.x[n, :, :, self.channel]
        lo, hi = float(plane.min()), float(plane.max())
        read = {(ih, iw) for _, _, ih, iw, _ in taps}
        for i in range(-ph, g.H + ph):
            for j in range(-pw, g.W + pw):
                inside = 0 <= i < g.H and 0 <= j < g.W
                fill = _shade(plane[i, j], lo, hi) if inside else "#e5e7eb"
                hit = (i, j) in read
                body.append(_rect(left + (j + pw) * cell, top + (i + ph) * cell, cell, cell, fill,
                                  "#dc2626" if hit else "#d1d5db", 2.5 if hit else 1))
        width_in = left + max((g.W + 2 * pw) * cell, 200) + 40
        # the im2col matrix: rows (n, oh, ow), columns (kh, kw, c)
        R, K = r.cols.shape
        mc = max(3.0, min(14.0, 460 / max(K, 1), 600 / max(R, 1)))
        mx = width_in
        body.append(_text(mx, 18, f"im2col matrix {R} × {K}", 13, weight="bold"))
        body.append(_text(mx, 34, "rows N·OH·OW, columns KH·KW·C", 12))
        clo, chi = float(r.cols.min()), float(r.cols.max())
        for i in range(R):
            for j in range(K):
                body.append(_rect(mx + j * mc, top + i * mc, mc, mc, _shade(r.cols[i, j], clo, chi), "none", 0))
        body.append(_rect(mx - 1, top + row * mc - 1, K * mc + 2, mc + 2, "none", "#dc2626", 2.5))
        body.append(_text(mx + K * mc + 6, top + row * mc + mc, f"row {row}", 12, fill="#dc2626"))
        height = top + max((g.H + 2 * ph) * cell, R * mc) + 20
        self.picture.value = _svg(max(mx + K * mc + 70, mx + 200), height, body)
        outside = sum(1 for t in taps if not t[4])
        self.caption.value = (f"<span style='font-size:13px'>output pixel (n={n}, oh={oh}, ow={ow}) is row {row} = "
                              f"(n·OH + oh)·OW + ow; it reads {len(taps)} taps × {g.C} channels, {outside} of the "
                              f"taps in the padding. The matrix holds {r.expansion:.2f}× the input's values.</span>")

    def summary(self) -> str:
        r = self.record
        return (f"Im2colView: input {r.x.shape} (NHWC), im2col {r.cols.shape}, expansion {r.expansion:.2f}x; "
                f"pixel ({self.n.value}, {self.oh.value}, {self.ow.value}) -> row "
                f"{r.row(self.n.value, self.oh.value, self.ow.value)}")


METRICS = {"multiplications": ("mults", 1.0, ""), "workspace (KB)": ("workspace_bytes", 1 / 1024, " KB"),
           "time (ms)": ("seconds", 1e3, " ms")}


class KernelCompare(widgets.VBox):
    """Bars per algorithm for one layer: multiplications, workspace, time, and error against float64."""

    def __init__(self, comparisons, *, dtype: str = "float32"):
        if isinstance(comparisons, AlgorithmComparison):
            comparisons = {"layer": comparisons}
        if not comparisons or not all(isinstance(c, AlgorithmComparison) for c in comparisons.values()):
            raise TypeError("KernelCompare draws aisys.kernels.AlgorithmComparison records "
                            "(kernels.compare_algorithms(...)), one or a dict {layer name: record}")
        self.comparisons = dict(comparisons)
        names = list(self.comparisons)
        self.layer = widgets.Dropdown(options=names, value=names[0], description="layer")
        errs = [k[6:] for k in self.comparisons[names[0]].rows[0] if k.startswith("error_")]
        self.dtype = widgets.ToggleButtons(options=errs, value=dtype if dtype in errs else errs[0],
                                           description="error in", style={"button_width": "auto"})
        self.picture = widgets.HTML()
        self.caption = widgets.HTML()
        for w in (self.layer, self.dtype):
            w.observe(lambda _: self._redraw(), "value")
        super().__init__([widgets.HBox([self.layer, self.dtype]), self.picture, self.caption])
        self.add_class("aisys-kernel-compare")   # the browser test finds the widget by it
        self._redraw()

    @property
    def comparison(self) -> AlgorithmComparison:
        return self.comparisons[self.layer.value]

    def _panel(self, x0, y0, title, rows, key, scale, unit, log=False):
        w, bar_h, gap, label_w = 300, 20, 8, 100
        body = [_text(x0, y0 - 8, title, 13, weight="bold")]
        vals = [r[key] * scale for r in rows]
        top = max(vals) if vals else 1
        for i, (r, v) in enumerate(zip(rows, vals)):
            y = y0 + i * (bar_h + gap)
            if log:
                lo = math.log10(min(vals) / 3) if min(vals) > 0 else -9
                frac = (math.log10(max(v, 1e-30)) - lo) / max(math.log10(top) - lo, 1e-9)
            else:
                frac = v / top if top else 0
            color = PALETTE[list(self.comparison.rows).index(r) % len(PALETTE)]
            body.append(_text(x0 + label_w - 6, y + 15, r["algorithm"], 12, anchor="end"))
            body.append(_rect(x0 + label_w, y, max(1.0, frac * (w - label_w - 70)), bar_h, color, "none", 0))
            shown = f"{v:.1e}" if log else (f"{v:,.0f}" if v >= 100 else f"{v:.2f}")
            body.append(_text(x0 + label_w + max(1.0, frac * (w - label_w - 70)) + 4, y + 15, shown + unit, 11))
        return body, len(rows) * (bar_h + gap)

    def _redraw(self) -> None:
        c = self.comparison
        rows = c.rows
        body, y = [], 30
        panels = [(t, k, s, u, False) for t, (k, s, u) in METRICS.items()]
        panels.append((f"relative error ({self.dtype.value}, log scale)", f"error_{self.dtype.value}", 1.0, "", True))
        h = 0
        for i, (title, key, scale, unit, log) in enumerate(panels):
            x0, y0 = (i % 2) * 330 + 10, y + (i // 2) * (len(rows) * 28 + 50)
            b, h = self._panel(x0, y0, title, rows, key, scale, unit, log)
            body += b
        self.picture.value = _svg(680, y + 2 * (len(rows) * 28 + 50), body)
        self.caption.value = (f"<span style='font-size:13px'>conv {c.x_shape} * {c.w_shape}: select_kernel picks "
                              f"<b>{html.escape(c.selected)}</b> — {html.escape(c.reason)}</span>")

    def summary(self) -> str:
        return self.comparison.summary()


class ThreadGridView(widgets.VBox):
    """Which block and thread computed each output element; what one thread read; global vs shared traffic."""

    def __init__(self, reports, *, output: str = "C"):
        if not isinstance(reports, dict):
            reports = {"launch": reports}
        if not reports or not all(hasattr(r, "owner_map") for r in reports.values()):
            raise TypeError("ThreadGridView draws TrafficReport records (aisys.kernels.cuda.profile(...)), one or "
                            "a dict {name: report}")
        self.reports, self.output = dict(reports), output
        names = list(self.reports)
        self.which = widgets.ToggleButtons(options=names, value=names[0], description="kernel",
                                           style={"button_width": "auto"})
        self.which.layout.display = None if len(names) > 1 else "none"
        shape = self.report.arrays[output][0]
        self.row = widgets.IntSlider(0, 0, shape[0] - 1, description="output row")
        self.col = widgets.IntSlider(0, 0, shape[1] - 1, description="output col")
        self.picture = widgets.HTML()
        self.caption = widgets.HTML()
        for w in (self.which, self.row, self.col):
            w.observe(lambda _: self._redraw(), "value")
        super().__init__([self.which, widgets.HBox([self.row, self.col]), self.picture, self.caption])
        self.add_class("aisys-thread-grid-view")   # the browser test finds the widget by it
        self._redraw()

    @property
    def report(self):
        return self.reports[self.which.value]

    def _grid(self, x0, y0, shape, cell, fill_of, title, outline=()):
        body = [_text(x0, y0 - 8, title, 13, weight="bold")]
        for i in range(shape[0]):
            for j in range(shape[1]):
                hit = (i, j) in outline
                body.append(_rect(x0 + j * cell, y0 + i * cell, cell, cell, fill_of(i, j), "#111827" if hit else
                                  "#ffffff", 2.5 if hit else 1))
        return body

    def _redraw(self) -> None:
        rep = self.report
        blk, tid = rep.owner_map(self.output)
        i, j = self.row.value, self.col.value
        b = (int(blk[i, j]), int(tid[i, j]))
        acc = [a for a in rep.accesses if a.op == "store" and a.array == self.output and a.index == (i, j)]
        who = acc[-1] if acc else None
        touched = rep.touched(who.block, who.thread) if who else {"global": [], "shared": []}
        shape = blk.shape
        cell = max(14, min(30, 300 // max(shape)))
        body = self._grid(10, 40, shape, cell, lambda a, c: PALETTE[blk[a, c] % len(PALETTE)] if blk[a, c] >= 0
                          else "#e5e7eb", f"{self.output}: colour = block", outline={(i, j)})
        for a in range(shape[0]):
            for c in range(shape[1]):
                if cell >= 20:
                    body.append(_text(10 + c * cell + cell / 2, 40 + a * cell + cell / 2 + 4, tid[a, c], 10,
                                      anchor="middle", fill="#ffffff"))
        x = 10 + shape[1] * cell + 40
        inputs = [n for n, (s, _, space) in rep.arrays.items() if space == "global" and n != self.output and len(s) == 2]
        height = 40 + shape[0] * cell
        for name in inputs:
            s = rep.arrays[name][0]
            read = {idx for arr, idx, op in touched["global"] if arr == name and op == "load"}
            c2 = max(8, min(24, 260 // max(s)))
            body += self._grid(x, 40, s, c2, lambda a, c, read=read: "#dc2626" if (a, c) in read else "#e5e7eb",
                               f"{name}: read by that thread", outline=read)
            x += s[1] * c2 + 40
            height = max(height, 40 + s[0] * c2)
        totals = [("global loads", rep.global_loads), ("global stores", rep.global_stores),
                  ("shared loads", rep.shared_loads), ("shared stores", rep.shared_stores),
                  ("bank conflicts", rep.bank_conflicts)]
        top = max(max(v for _, v in totals), 1)
        y0 = height + 40
        body.append(_text(10, y0 - 10, f"traffic of the whole launch ({self.which.value})", 13, weight="bold"))
        for k, (label, v) in enumerate(totals):
            y = y0 + k * 24
            body.append(_text(120, y + 14, label, 12, anchor="end"))
            body.append(_rect(126, y, max(1.0, 400 * v / top), 18, "#2563eb" if "global" in label else "#16a34a",
                              "none", 0))
            body.append(_text(130 + max(1.0, 400 * v / top), y + 14, f"{v:,}", 11))
        self.picture.value = _svg(max(x, 600), y0 + len(totals) * 24 + 10, body)
        mine = rep.per_thread().get((who.block, who.thread), {}) if who else {}
        self.caption.value = (f"<span style='font-size:13px'>{self.output}[{i}, {j}] was computed by block "
                              f"{who.block[:2] if who else '-'} thread {who.thread[:2] if who else '-'} (linear id "
                              f"{b[1]}): {mine.get('global_loads', 0)} global loads, {mine.get('shared_loads', 0)} "
                              f"shared loads, {mine.get('shared_stores', 0)} shared stores.</span>")

    def summary(self) -> str:
        return "\n".join(f"{name}: {rep.summary()}" for name, rep in self.reports.items())
