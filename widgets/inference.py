"""Widgets for the inference engine: paged KV memory, batches over time, and the whole stack at once.

- :class:`KVCacheView` draws the KV block pool of a serving run (``Engine.serve``'s report) step by step, or a
  ``PagedKVCache`` as it is: one square per physical block, coloured by the request that owns it, filled as
  far as its tokens go; shared blocks are striped. The caption counts blocks, tokens and the waste.
- :class:`BatchTimeline` draws one or more serving reports as a Gantt chart — each request waiting (grey),
  running (blue; prefill in orange), its first token (a dot), preemptions (red crosses) — above the batch size
  of every step. A toggle switches between the reports (static vs continuous batching).
- :class:`StackView` is the capstone's picture: one card per layer of the stack with its numbers, a button on
  each that opens the widget going deeper (GraphView, PassStepper, MemoryTimeline, UtilizationView, ...),
  and decode tokens/s against batch size (simulated chip, roofline, this CPU).

Each has ``.summary()``: deterministic text of what it shows.
"""
from __future__ import annotations

import html
import math

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aisys.inference import PagedKVCache, ServeReport, StackReport

__all__ = ["KVCacheView", "BatchTimeline", "StackView", "request_colour"]

_PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
            "#6b6ecf", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf"]   # no grey: grey is "waiting"


def request_colour(rid) -> str:
    """The colour a request gets in every inference widget (stable per id)."""
    key = rid if isinstance(rid, int) else sum(ord(c) for c in str(rid))
    return _PALETTE[key % len(_PALETTE)]


# ---------------------------------------------------------------------------------------------------
# KVCacheView
# ---------------------------------------------------------------------------------------------------

class KVCacheView(widgets.VBox):
    """The KV block pool, block by block (see the module docstring). ``source``: a ServeReport (a slider picks
    the step; ``step`` is the first one shown, default the step with the most blocks in use) or a
    PagedKVCache (its current state)."""

    def __init__(self, source, *, step: int | None = None, columns: int = 16, cell: int = 30):
        if isinstance(source, ServeReport):
            if not source.iterations:
                raise ValueError("KVCacheView: the report has no steps")
            self.report, self.cache = source, None
            self.num_blocks, self.block_size = source.config["kv_blocks"], source.config["block_size"]
            last = len(source.iterations) - 1
            if step is None:
                step = max(range(last + 1), key=lambda i: (source.iterations[i].kv_blocks, -i))
            if not 0 <= step <= last:
                raise ValueError(f"KVCacheView: step {step} is outside 0..{last}")
        elif isinstance(source, PagedKVCache):
            self.report, self.cache = None, source
            self.num_blocks, self.block_size = source.num_blocks, source.block_size
            last, step = 0, 0
        else:
            raise TypeError(f"KVCacheView draws a ServeReport (Engine.serve) or a PagedKVCache, got "
                            f"{type(source).__name__}")
        self.columns, self.cell = max(1, min(columns, self.num_blocks)), cell
        self.slider = widgets.IntSlider(value=step, min=0, max=last, description="step", continuous_update=True,
                                        layout=widgets.Layout(width="520px", display=None if self.report else "none"))
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        self.tables_html = widgets.HTML()
        self.slider.observe(lambda change: self._draw(), names="value")
        super().__init__([self.slider, self.caption, self.picture, self.tables_html])
        self.add_class("aisys-kv-cache-view")   # the browser test finds the widget by it
        self._draw()

    @property
    def step(self) -> int:
        return int(self.slider.value)

    def state(self) -> tuple[list, dict]:
        """([(request, blocks, tokens), ...], block -> tokens held) at the selected step."""
        if self.report is not None:
            tables = [(rid, list(blocks), n) for rid, blocks, n in self.report.iterations[self.step].tables]
        else:
            c = self.cache
            tables = [(s, list(t), c.lengths[s]) for s, t in c.tables.items()]
        fill: dict = {}
        for _, blocks, n in tables:
            for i, b in enumerate(blocks):
                fill[b] = max(fill.get(b, 0), min(self.block_size, max(0, n - i * self.block_size)))
        return tables, fill

    def _owners(self, tables) -> dict:
        owners: dict = {}
        for rid, blocks, _ in tables:
            for b in blocks:
                owners.setdefault(b, []).append(rid)
        return owners

    def _svg(self) -> str:
        tables, fill = self.state()
        owners = self._owners(tables)
        s, cols = self.cell, self.columns
        rows = -(-self.num_blocks // cols)
        width, height = cols * s + 4, rows * s + 4
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
                 f'font-size="9"><defs><pattern id="kv-shared" width="6" height="6" patternUnits="userSpaceOnUse" '
                 f'patternTransform="rotate(45)"><rect width="3" height="6" fill="#ffffff" opacity="0.6"/></pattern>'
                 f'</defs>']
        for b in range(self.num_blocks):
            x, y = 2 + (b % cols) * s, 2 + (b // cols) * s
            who = owners.get(b, [])
            held = fill.get(b, 0)
            state = "free" if not who else "shared" if len(who) > 1 else "used"
            tip = f"block {b}: free" if not who else (f"block {b}: {held}/{self.block_size} tokens of request "
                                                     f"{', '.join(str(w) for w in who)}")
            parts.append(f'<g><rect class="kv-block" data-state="{state}" x="{x}" y="{y}" width="{s - 3}" '
                         f'height="{s - 3}" rx="3" fill="#ffffff" stroke="#999"/><title>{html.escape(tip)}</title>')
            if who:
                h = (s - 3) * held / self.block_size
                colour = request_colour(who[0])
                parts.append(f'<rect x="{x}" y="{y + (s - 3) - h:.1f}" width="{s - 3}" height="{h:.1f}" rx="2" '
                             f'fill="{colour}"/>')
                parts.append(f'<rect x="{x}" y="{y}" width="{s - 3}" height="{s - 3}" rx="3" fill="none" '
                             f'stroke="{colour}" stroke-width="2"/>')
                if len(who) > 1:
                    parts.append(f'<rect x="{x}" y="{y}" width="{s - 3}" height="{s - 3}" fill="url(#kv-shared)"/>')
                parts.append(f'<text x="{x + 3}" y="{y + 11}" fill="#222">{html.escape(str(who[0]))[:3]}</text>')
            parts.append("</g>")
        parts.append("</svg>")
        return "".join(parts)

    def numbers(self) -> dict:
        tables, fill = self.state()
        used = len(fill)
        tokens = sum(fill.values())
        slots = used * self.block_size
        return {"blocks_used": used, "blocks": self.num_blocks, "tokens": tokens, "slots": slots,
                "waste": (slots - tokens) / slots if slots else 0.0, "sequences": len(tables)}

    def _caption_text(self) -> str:
        n = self.numbers()
        head = ""
        if self.report is not None:
            it = self.report.iterations[self.step]
            joined = ", ".join(f"{rid} ({k} tokens)" for rid, k in it.prefill) or "none"
            head = (f"step {it.index + 1} of {len(self.report.iterations)}: {len(it.decode)} decoding, prefill "
                    f"{joined}; finished {', '.join(map(str, it.finished)) or 'none'}"
                    + (f"; preempted {', '.join(map(str, it.preempted))}" if it.preempted else "") + ". ")
        return (f"{head}{n['blocks_used']} of {n['blocks']} blocks in use by {n['sequences']} sequences, "
                f"{n['tokens']} tokens in {n['slots']} slots: {n['waste']:.1%} of the used blocks empty")

    def _draw(self) -> None:
        self.picture.value = self._svg()
        self.caption.value = (f"<b>{html.escape(self._caption_text())}</b><br><span style='color:#555'>one square = "
                              f"one block of {self.block_size} tokens; filled as far as its tokens go; striped = "
                              f"shared by several sequences (copy-on-write)</span>")
        tables, _ = self.state()
        rows = "".join(f"<tr><td style='color:{request_colour(rid)}'><b>{html.escape(str(rid))}</b></td><td>{n}</td>"
                       f"<td>{html.escape(str(blocks))}</td></tr>" for rid, blocks, n in tables)
        self.tables_html.value = ("<table style='font-family:monospace;font-size:12px'><tr><th>request</th>"
                                  "<th>tokens</th><th>block table</th></tr>" + rows + "</table>")

    def summary(self) -> str:
        tables, _ = self.state()
        lines = [f"KVCacheView: {self.num_blocks} blocks x {self.block_size} tokens", "  " + self._caption_text()]
        for rid, blocks, n in tables[:12]:
            lines.append(f"  request {rid}: {n} tokens in blocks {blocks}")
        if len(tables) > 12:
            lines.append(f"  ... {len(tables) - 12} more")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# BatchTimeline
# ---------------------------------------------------------------------------------------------------

class BatchTimeline(widgets.VBox):
    """Requests joining and leaving the batch, step by step (see the module docstring). ``reports``: one
    ServeReport, or a dict {label: ServeReport} to switch between."""

    def __init__(self, reports, *, height: int = 520):
        if isinstance(reports, ServeReport):
            reports = {f"{reports.config['batching']} / {reports.config['kv']}": reports}
        if not isinstance(reports, dict) or not reports or \
                not all(isinstance(r, ServeReport) for r in reports.values()):
            raise TypeError("BatchTimeline draws a ServeReport or a dict {label: ServeReport} (Engine.serve)")
        self.reports = dict(reports)
        labels = list(self.reports)
        self.picker = widgets.ToggleButtons(options=labels, value=labels[0], description="run",
                                            style={"button_width": "auto"})
        self.caption = widgets.HTML()
        unit, scale = _unit(max(r.makespan + min(q.arrival for q in r.requests) for r in self.reports.values()))
        self.unit, self.scale = unit, scale
        self.figure = go.Figure(make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28],
                                                    vertical_spacing=0.06))
        self.figure.update_layout(height=height, margin=dict(l=60, r=20, t=40, b=90), barmode="overlay",
                                  legend=dict(orientation="h", y=-0.22), bargap=0.25)
        self.figure.update_xaxes(title_text=f"time ({unit})", row=2, col=1)
        self.figure.update_yaxes(title_text="request", row=1, col=1, autorange="reversed")
        self.figure.update_yaxes(title_text="batch", row=2, col=1)
        self.picker.observe(lambda change: self._draw(), names="value")
        self._draw()
        self.figure = go.FigureWidget(self.figure)   # drawn whole, then wrapped: an update sent before the browser
        #                                              draws a FigureWidget can be lost (empty axes)
        super().__init__([self.picker, self.caption, self.figure])
        self.add_class("aisys-batch-timeline")   # the browser test finds the widget by it

    @property
    def report(self) -> ServeReport:
        return self.reports[self.picker.value]

    def _draw(self) -> None:
        r, s = self.report, self.scale
        ids = [str(q.id) for q in r.requests]
        prefill_end = {}
        for it in r.iterations:
            for rid, _ in it.prefill:
                prefill_end.setdefault(rid, (it.start, it.start + it.duration))
        waiting = go.Bar(name="waiting", orientation="h", y=ids, x=[(_admitted(q) - q.arrival) * s
                                                                     for q in r.requests],
                         base=[q.arrival * s for q in r.requests], marker_color="#d0d0d0",
                         hovertemplate="request %{y}: waiting %{x:.4g}<extra></extra>")
        running = go.Bar(name="running", orientation="h", y=ids, x=[(q.finish - _admitted(q)) * s
                                                                     for q in r.requests],
                         base=[_admitted(q) * s for q in r.requests],
                         marker_color=[request_colour(q.id) for q in r.requests], opacity=0.75,
                         hovertemplate="request %{y}: in the batch for %{x:.4g}<extra></extra>")
        pf = [(str(rid), a, b) for rid, (a, b) in prefill_end.items()]
        prefill = go.Bar(name="prefill", orientation="h", y=[p[0] for p in pf], x=[(p[2] - p[1]) * s for p in pf],
                         base=[p[1] * s for p in pf], marker_color="#f28e2b", width=0.35,
                         hovertemplate="request %{y}: prefill<extra></extra>")
        first = go.Scatter(name="first token", mode="markers", y=ids, x=[q.first_token * s for q in r.requests],
                           marker=dict(color="#222222", size=6), hovertemplate="first token at %{x:.4g}<extra></extra>")
        pre = [(str(rid), it.start * s) for it in r.iterations for rid in it.preempted]
        preempt = go.Scatter(name="preempted", mode="markers", y=[p[0] for p in pre], x=[p[1] for p in pre],
                             marker=dict(color="#d62728", size=10, symbol="x"))
        batch = go.Scatter(name="sequences per step", mode="lines", line_shape="hv",
                           x=[it.start * s for it in r.iterations] + [(r.iterations[-1].start + r.iterations[-1].duration) * s],
                           y=[it.batch for it in r.iterations] + [r.iterations[-1].batch], line=dict(color="#4e79a7"))
        with self.figure.batch_update():
            self.figure.data = []
            for trace in (waiting, running, prefill, first, preempt):
                self.figure.add_trace(trace, row=1, col=1)
            self.figure.add_trace(batch, row=2, col=1)
            self.figure.layout.title = f"{self.picker.value}: {len(r.requests)} requests, {len(r.iterations)} steps"
        self.caption.value = "<pre style='font-size:12px;margin:0'>" + html.escape(r.summary()) + "</pre>"

    def summary(self) -> str:
        r = self.report
        lines = [f"BatchTimeline: {self.picker.value} ({len(self.reports)} runs)", r.summary()]
        for other, rep in self.reports.items():
            row = rep.row()
            lines.append(f"  {other:<24} throughput {row['throughput']:,.4g} tokens/s, TTFT {row['ttft'] * self.scale:.4g} "
                         f"{self.unit}, TPOT {row['tpot'] * self.scale:.4g} {self.unit}, KV waste {row['kv_waste']:.1%}")
        return "\n".join(lines)


def _admitted(q) -> float:
    return q.admitted if q.admitted is not None else q.arrival


def _unit(seconds: float) -> tuple[str, float]:
    for unit, scale in (("s", 1.0), ("ms", 1e3), ("us", 1e6)):
        if seconds * scale >= 1.0:
            return unit, scale
    return "us", 1e6


# ---------------------------------------------------------------------------------------------------
# StackView
# ---------------------------------------------------------------------------------------------------

_DEEPER = {"application": "KV per token", "frontend": "GraphView", "compiler": "PassStepper",
           "runtime": "MemoryTimeline", "kernels": "attention bytes", "chip": "UtilizationView"}


class StackView(widgets.VBox):
    """The capstone at a glance: a card per layer (numbers from ``walk_stack``), a button on each that opens
    the widget for that layer below, and decode tokens/s vs batch size."""

    def __init__(self, report: StackReport, *, open: str | None = None):
        if not isinstance(report, StackReport):
            raise TypeError(f"StackView draws the StackReport of aisys.inference.walk_stack, got "
                            f"{type(report).__name__}")
        self.report = report
        self.layers = report.layers()
        self.buttons = {}
        cards = []
        for name, what, numbers in self.layers:
            key = name.split()[0]
            button = widgets.Button(description=f"open {_DEEPER[key]}", layout=widgets.Layout(width="auto"))
            button.on_click(lambda _, k=key: self.show(k))
            self.buttons[key] = button
            card = widgets.VBox([widgets.HTML(f"<div style='font-size:12px;line-height:1.35'><b>{html.escape(name)}"
                                              f"</b><br>{html.escape(what)}<br><span style='color:#444'>"
                                              f"{html.escape(numbers)}</span></div>"), button],
                                layout=widgets.Layout(border="1px solid #ccc", padding="6px", width="100%"))
            cards.append(card)
        self.grid = widgets.GridBox(cards, layout=widgets.Layout(grid_template_columns="repeat(3, 1fr)",
                                                                 grid_gap="6px", width="100%"))
        self.title = widgets.HTML(f"<b>TinyGPT, one decode step (batch {report.batch}, {report.context} cached tokens) "
                                  f"from the application layer to {html.escape(report.program.chip.name)}</b>")
        self.deeper_title = widgets.HTML()
        self.deeper = widgets.Box()
        self.current: str | None = None
        self._cache: dict = {}
        self.throughput = self._throughput_figure()
        super().__init__([self.title, self.grid, self.throughput, self.deeper_title, self.deeper])
        self.add_class("aisys-stack-view")   # the browser test finds the widget by it
        if open is not None:
            self.show(open)

    def _throughput_figure(self):
        pts = self.report.points
        fig = go.Figure(layout=dict(height=320, margin=dict(l=70, r=20, t=40, b=45),
                                          title="decode throughput vs batch size",
                                          xaxis=dict(title="batch size (sequences per step)", type="log"),
                                          yaxis=dict(title="tokens / s", type="log"), legend=dict(orientation="h",
                                                                                                  y=-0.25)))
        x = [p.batch for p in pts]
        fig.update_xaxes(tickvals=x, ticktext=[str(b) for b in x])
        fig.add_scatter(x=x, y=[p.chip_tokens_per_s for p in pts], mode="lines+markers",
                        name=f"{self.report.program.chip.name} (simulated)")
        fig.add_scatter(x=x, y=[p.roofline_tokens_per_s for p in pts], mode="lines+markers", line=dict(dash="dot"),
                        name=f"{self.report.program.chip.name} roofline")
        if any(p.cpu_s is not None for p in pts):
            fig.add_scatter(x=[p.batch for p in pts if p.cpu_s], y=[p.cpu_tokens_per_s for p in pts if p.cpu_s],
                            mode="lines+markers", name="this CPU (measured)")
        return go.FigureWidget(fig)   # drawn whole, then wrapped (see BatchTimeline)

    def _make(self, key: str):
        r = self.report
        if key == "frontend":
            from widgets.graph import GraphView
            return GraphView(r.graph)
        if key == "compiler":
            from widgets.passes import PassStepper
            return PassStepper(r.compiled)
        if key == "runtime":
            from widgets.memory import MemoryTimeline
            return MemoryTimeline(r.plan)
        if key == "chip":
            from widgets.chip import UtilizationView
            return UtilizationView(r.result)
        if key == "kernels":
            a = r.attention
            fig = go.Figure(layout=dict(height=260, margin=dict(l=160, r=20, t=40, b=40), barmode="stack",
                                              title="attention over the context: bytes moved",
                                              xaxis=dict(title="bytes")))
            names = ["naive (scores in memory)", "tiled, online softmax"]
            fig.add_bar(y=names, x=[a["naive"].bytes_read, a["tiled"].bytes_read], orientation="h", name="read")
            fig.add_bar(y=names, x=[a["naive"].bytes_written, a["tiled"].bytes_written], orientation="h",
                        name="written")
            kernels = ", ".join(f"{k}" for k in r.compiled.kernels) or "none"
            return widgets.VBox([go.FigureWidget(fig),
                                 widgets.HTML(f"<span style='font-size:12px'>fused numba kernels of the compiled "
                                              f"step: {html.escape(kernels)}</span>")])
        kv = r.kv
        rows = "".join(f"<tr><td>{n}</td><td>{v}</td></tr>" for n, v in (
            ("layers", kv.n_layer), ("query heads", kv.n_head), ("key/value heads", kv.n_kv_head),
            ("head dim", kv.head_dim), ("KV bytes per token (fp16)", 2 * kv.n_layer * kv.n_kv_head * kv.head_dim * 2)))
        return widgets.HTML(f"<table style='font-family:monospace;font-size:12px'>{rows}</table>")

    def show(self, key: str) -> None:
        """Open the deeper widget of one layer ("application", "frontend", "compiler", "runtime", "kernels",
        "chip") below the cards."""
        if key not in _DEEPER:
            raise ValueError(f"StackView.show: {key!r} is not a layer; choose one of {list(_DEEPER)}")
        if key not in self._cache:
            self._cache[key] = self._make(key)
        self.current = key
        name = next(n for n, _, _ in self.layers if n.startswith(key))
        self.deeper_title.value = f"<b>{html.escape(name)}</b> — {_DEEPER[key]}"
        self.deeper.children = (self._cache[key],)

    def summary(self) -> str:
        text = "StackView: " + self.report.summary(measured=False)
        if self.current is not None:
            text += f"\n  open: {self.current} ({_DEEPER[self.current]})"
        return text
