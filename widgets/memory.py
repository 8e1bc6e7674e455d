"""MemoryTimeline: where every tensor lives, and when — the picture of a memory plan.

Top panel: each buffer is a rectangle, time (schedule steps) across, arena address up; hover names
the buffer, the op that produced it, its size, offset and live steps. Dashed lines mark the arena
size the placement needs (peak) and the lower bound no placement can beat (the most bytes alive at
one step). Bottom panel: the live-bytes curve, with the same two lines.

Controls, when the source supports them:
  * planner buttons — re-place the same lifetimes with another planner (naive, exact_size,
    linear_scan, greedy_by_size, or your own function): the "Tetris" packing gets tighter;
  * in-place — let elementwise ops overwrite an input that dies there (graphs, or plans with pairs);
  * checkpoint every k — for a traced training graph or a :class:`LayeredModel`: keep every k-th
    activation and recompute the rest; watch the peak fall towards k ≈ √L and then rise again.

Sources: a :class:`MemoryPlan`, a :class:`Graph`, a :class:`LayeredModel` / :class:`CheckpointPlan`,
or the :class:`Trace` of an arena run (drawn from its events; no re-planning).
"""
from __future__ import annotations

import html
from typing import Callable, Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aisys.compiler.memory import (PLANNERS, CheckpointPlan, LayeredModel, MemoryPlan, compare_planners, format_bytes,
                                   sqrt_interval, training_activations)
from aisys.framework.events import Trace
from aisys.framework.graph import Graph

__all__ = ["MemoryTimeline", "KIND_COLOURS"]

KIND_COLOURS = {
    "activation": "#60a5fa",   # blue: an intermediate result
    "output": "#f59e0b",       # amber: a graph output, kept to the end
    "input": "#a3a3a3", "param": "#a3a3a3", "const": "#d4d4d4",
    "checkpoint": "#16a34a",   # green: kept by checkpointing
    "recomputed": "#e11d48",   # red: a recomputed copy
    "in-place": "#8b5cf6",     # purple: written over its input
}


class MemoryTimeline(widgets.VBox):
    """Buffer lifetimes × addresses and the live-bytes curve of a memory plan (see module doc).

    ``planners``: names and/or functions ``buffers -> {name: offset}`` to offer (default: the four
    built-in planners, plus the source plan's own planner). ``planner``: the one shown first.
    ``checkpoint``: the starting interval k (models and training graphs; default ≈ √L).
    """

    def __init__(self, source, *, planners: Sequence[str | Callable] | None = None, planner: str | None = None,
                 inplace: bool | None = None, checkpoint: int | None = None, height: int = 520):
        self.source = source
        self._cache: dict = {}
        self._custom: dict[str, Callable] = {}
        self._trace = source if isinstance(source, Trace) else None
        self._own_plan = source if isinstance(source, MemoryPlan) else None
        self._graph = source if isinstance(source, Graph) else None
        model = source.model if isinstance(source, CheckpointPlan) else source
        self._model = model if isinstance(model, LayeredModel) else None
        if isinstance(source, CheckpointPlan) and checkpoint is None:
            checkpoint = source.k
        if not any(x is not None for x in (self._trace, self._own_plan, self._graph, self._model)):
            raise TypeError(f"MemoryTimeline draws a MemoryPlan, a Graph, a LayeredModel/CheckpointPlan or a "
                            f"Trace from an arena run; got {type(source).__name__}. Make a plan with "
                            f"aisys.compiler.memory.plan_memory(graph) first.")

        # planner options
        names: list[str] = []
        if self._own_plan is not None:
            names.append(self._own_plan.planner)
        for p in (planners if planners is not None else list(PLANNERS)):
            if callable(p):
                nm = getattr(p, "__name__", "custom")
                self._custom[nm] = p
                p = nm
            elif p not in PLANNERS and p not in names:
                raise ValueError(f"unknown planner {p!r}; choose from {', '.join(PLANNERS)} or pass a function")
            if p not in names:
                names.append(p)
        start = planner or ("greedy_by_size" if self._graph is not None or self._model is not None else names[0])
        if start not in names:
            raise ValueError(f"planner {start!r} is not among the options {names}")
        self.planner_picker = widgets.ToggleButtons(options=names, value=start, description="planner",
                                                    style={"button_width": "auto"},
                                                    disabled=self._trace is not None)

        # in-place toggle
        can_inplace = self._graph is not None or (self._own_plan is not None and bool(self._own_plan.inplace))
        default_inplace = bool(self._own_plan.inplace) if self._own_plan is not None else False
        self.inplace_box = widgets.Checkbox(value=default_inplace if inplace is None else bool(inplace),
                                            description="in-place elementwise ops", indent=False,
                                            disabled=not can_inplace)
        self.inplace_box.layout.display = None if can_inplace else "none"

        # checkpoint slider
        self._saved = training_activations(self._graph) if self._graph is not None else []
        n_ckpt = self._model.layers if self._model is not None else len(self._saved)
        self._has_ckpt = self._model is not None or n_ckpt > 1
        k0 = checkpoint if checkpoint is not None else (sqrt_interval(n_ckpt) if self._model is not None else 1)
        self.checkpoint_slider = widgets.IntSlider(value=max(1, min(k0, max(1, n_ckpt))), min=1, max=max(1, n_ckpt),
                                                   description="checkpoint every", style={"description_width": "auto"},
                                                   continuous_update=False, disabled=not self._has_ckpt)
        self.checkpoint_slider.layout.display = None if self._has_ckpt else "none"

        self.caption = widgets.HTML()
        self.comparison = widgets.HTML()
        self.plan: MemoryPlan | None = None
        self.checkpoint_info = ""
        # drawn whole as a Figure, then wrapped once: the widget starts with its first plan in its state (an
        # update sent before the browser draws the widget can be lost, leaving empty axes)
        self.figure = self._make_figure(height)
        self._redraw()
        self.figure = go.FigureWidget(self.figure)
        for w in (self.planner_picker, self.inplace_box, self.checkpoint_slider):
            w.observe(self._on_change, names="value")
        super().__init__([self.planner_picker, widgets.HBox([self.inplace_box, self.checkpoint_slider]),
                          self.caption, self.figure, self.comparison])
        self.add_class("aisys-memory-timeline")   # the browser test finds the widget by it

    # ---- planning ---------------------------------------------------------------------------------
    def _planner_arg(self, name: str):
        return self._custom.get(name, name)

    def _source(self):
        return self._own_plan or self._graph or self.source

    def _planner_comparison(self, inplace: bool, k: int):
        """Every offered planner's plan for these options (aisys.compiler.memory.compare_planners), computed once."""
        key = (inplace, k)
        if key not in self._cache:
            self._cache[key] = compare_planners(self._source(), [self._planner_arg(n) for n in self.planner_picker.options],
                                                inplace=inplace, every=k if self._has_ckpt else 1)
        return self._cache[key]

    def _plan_for(self, name: str, inplace: bool, k: int) -> tuple[MemoryPlan, str]:
        r = self._planner_comparison(inplace, k).results[name]
        if isinstance(r, Exception):
            raise r
        return r.plan, r.note

    def _on_change(self, change) -> None:
        self._redraw()

    # ---- drawing ----------------------------------------------------------------------------------
    def _make_figure(self, height: int) -> go.Figure:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.06)
        fig.add_trace(go.Bar(name="buffers", x=[], y=[], base=[], width=[], hoverinfo="text",
                             marker_line_color="#1f2937", marker_line_width=0.5, showlegend=False), row=1, col=1)
        fig.add_trace(go.Scatter(name="arena size (peak)", x=[], y=[], mode="lines",
                                 line=dict(color="#dc2626", dash="dash")), row=1, col=1)
        fig.add_trace(go.Scatter(name="lower bound", x=[], y=[], mode="lines",
                                 line=dict(color="#16a34a", dash="dot")), row=1, col=1)
        fig.add_trace(go.Scatter(name="live bytes", x=[], y=[], mode="lines", line_shape="hv",
                                 fill="tozeroy", line=dict(color="#2563eb")), row=2, col=1)
        fig.add_trace(go.Scatter(name="peak", x=[], y=[], mode="lines", showlegend=False,
                                 line=dict(color="#dc2626", dash="dash")), row=2, col=1)
        fig.add_trace(go.Scatter(name="lower bound ", x=[], y=[], mode="lines", showlegend=False,
                                 line=dict(color="#16a34a", dash="dot")), row=2, col=1)
        fig.update_layout(height=height, bargap=0, margin=dict(l=60, r=20, t=30, b=40),
                          legend=dict(orientation="h", y=1.06, x=0), hovermode="closest")
        fig.update_yaxes(title_text="address (bytes)", row=1, col=1)
        fig.update_yaxes(title_text="live bytes", row=2, col=1)
        return fig

    def _redraw(self) -> None:
        if self._trace is not None:
            rects, curve, peak, lower, unit = _from_trace(self._trace)
            self.plan, self.checkpoint_info = None, ""
            title = f"arena run trace {self._trace.name!r}"
            comparison = ""
        else:
            name, inplace, k = self.planner_picker.value, self.inplace_box.value, self.checkpoint_slider.value
            self.plan, self.checkpoint_info = self._plan_for(name, inplace, k)
            rects, curve, peak, lower, unit = _from_plan(self.plan)
            title = f"planner {self.plan.planner}"
            comparison = self._comparison(inplace, k)
        x_end = max([r["x1"] for r in rects] + [curve[0][-1] if curve[0] else 1])
        with self.figure.batch_update():
            bars = self.figure.data[0]
            bars.x = [(r["x0"] + r["x1"]) / 2 for r in rects]
            bars.width = [r["x1"] - r["x0"] for r in rects]
            bars.base = [r["offset"] for r in rects]
            bars.y = [r["size"] for r in rects]
            bars.hovertext = [r["text"] for r in rects]
            bars.marker.color = [KIND_COLOURS.get(r["kind"], "#60a5fa") for r in rects]
            for i, yv in ((1, peak), (2, lower), (4, peak), (5, lower)):
                self.figure.data[i].x = [0, x_end]
                self.figure.data[i].y = [yv, yv]
            self.figure.data[3].x, self.figure.data[3].y = curve
            self.figure.layout.xaxis2.title.text = unit
        frag = 0.0 if not peak else 1 - lower / peak
        self.caption.value = (f"<b>{html.escape(title)}</b>: arena {format_bytes(peak)} · lower bound "
                              f"{format_bytes(lower)} · fragmentation {frag:.1%}"
                              + (f" · {html.escape(self.checkpoint_info)}" if self.checkpoint_info else ""))
        self.comparison.value = comparison + ("<br>" if comparison else "") + _colour_key(r["kind"] for r in rects)

    def _comparison(self, inplace: bool, k: int) -> str:
        """Every offered planner's peak for the current options, side by side (a failing planner says so)."""
        cmp = self._planner_comparison(inplace, k)
        cells = [f"{html.escape(name)}: <b>{text}</b>" if name in cmp.peak_bytes() else
                 f"{html.escape(name)}: <i>{html.escape(text)}</i>" for name, text in cmp.cells()]
        return "peaks — " + " · ".join(cells)

    # ---- text -------------------------------------------------------------------------------------
    def summary(self) -> str:
        """Plain text: the options shown, then the plan's (or trace's) own summary."""
        if self._trace is not None:
            rects, curve, peak, lower, unit = _from_trace(self._trace)
            return (f"MemoryTimeline of trace {self._trace.name!r}: {len(rects)} buffers, arena {peak} B, "
                    f"max live {lower} B\n" + self._trace.summary())
        opts = [f"planner {self.planner_picker.value}"]
        if not self.inplace_box.disabled:
            opts.append(f"in-place {'on' if self.inplace_box.value else 'off'}")
        if self._has_ckpt:
            opts.append(f"checkpoint every {self.checkpoint_slider.value}")
        lines = ["MemoryTimeline: " + ", ".join(opts)]
        if self.checkpoint_info:
            lines.append(self.checkpoint_info)
        lines.append(self._planner_comparison(self.inplace_box.value, self.checkpoint_slider.value).summary())
        lines.append(self.plan.summary(max_rows=6))
        return "\n".join(lines)


# How the colour key names a kind where the bare kind would read wrong: "checkpoint" next to the slider
# "checkpoint every k" looked like the slider's own colour; these are the activations the backward pass keeps.
KIND_LABELS = {"checkpoint": "kept for backward", "recomputed": "recomputed copy"}


def _colour_key(kinds) -> str:
    """Small coloured squares naming the kinds of buffer drawn (in KIND_COLOURS order)."""
    present = set(kinds)
    return " ".join(f"<span style='display:inline-block;width:10px;height:10px;background:{colour};"
                    f"border:1px solid #1f2937'></span> {html.escape(KIND_LABELS.get(kind, kind))}"
                    for kind, colour in KIND_COLOURS.items() if kind in present)


def _from_plan(plan: MemoryPlan):
    inplace_out = {dst for _, dst in plan.inplace}
    rects = []
    for b in plan.buffers:
        kind = "in-place" if b.name in inplace_out else b.kind
        text = (f"<b>{html.escape(b.name)}</b> ({html.escape(b.kind)})<br>from {html.escape(b.op or '?')}<br>"
                f"{b.size} B at offset {b.offset}<br>live steps {b.start}..{b.end}"
                + ("<br>written over its input (in-place)" if b.name in inplace_out else ""))
        rects.append(dict(x0=b.start, x1=b.end + 1, offset=b.offset, size=b.size, kind=kind, text=text))
    live = plan.live_bytes()
    xs = list(range(len(live) + 1))
    ys = live + [live[-1] if live else 0]
    return rects, (xs, ys), plan.peak_bytes, plan.lower_bound_bytes, "schedule step"


def _from_trace(trace: Trace):
    events = [e for e in trace.events if "offset" in e.args and "bytes" in e.args]
    if not events:
        raise ValueError(f"trace {trace.name!r} has no events with 'offset' and 'bytes' args; record it with "
                         f"aisys.compiler.memory.ArenaExecutor")
    rects = []
    for e in events:
        last = events[min(int(e.args.get("until_step", events.index(e))), len(events) - 1)]
        rects.append(dict(x0=e.start, x1=last.end, offset=int(e.args["offset"]), size=int(e.args["bytes"]),
                          kind="in-place" if e.args.get("inplace") else "activation",
                          text=f"<b>{html.escape(e.name)}</b><br>{e.args['bytes']} B at offset {e.args['offset']}"
                               f"<br>{e.start:g}..{last.end:g} {trace.unit}"))
    ts, vs = trace.counter_series("live bytes")
    peak = max(r["offset"] + r["size"] for r in rects)
    return rects, (list(ts), list(vs)), peak, max(vs, default=0), trace.unit
