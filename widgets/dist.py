"""Widgets for aisys.dist: collectives step by step, topologies, per-rank timelines and per-device memory.

- :class:`CollectiveAnimator` — a schedule (or a simulation of one) step by step: ranks round a circle, arrows
  for this step's messages labelled with their chunk, and each rank's buffer as one cell per chunk shaded by
  how many ranks' data it already holds (dark = fully reduced / gathered). Bytes sent so far per rank.
- :class:`TopologyView` — devices, switches and links; link width by bandwidth (legend in GB/s with Gbps), and,
  for a simulated collective, link colour by utilization. A dropdown switches between topologies.
- :class:`TimelineView` — per-rank lanes of compute and communication from any ``Trace`` (a simulation, a
  real MPI run, a pipeline or data-parallel step), several side by side; an optional slider re-computes one.
- :class:`MemoryStack` — per-device memory by kind (parameters, gradients, optimizer states, activations)
  for ZeRO stages 0-3, with a slider for the number of data-parallel devices and the device's capacity.
"""
from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aisys.dist import Schedule, SimReport, Topology, build_schedule, execute, simulate
from aisys.dist.units import format_bandwidth, format_bytes, format_time
from aisys.dist.zero import MEMORY_KINDS, memory_breakdown
from aisys.framework.events import Trace

__all__ = ["CollectiveAnimator", "TopologyView", "TimelineView", "MemoryStack"]

_KIND_COLOURS = {"forward": "#60a5fa", "backward": "#f59e0b", "comm": "#16a34a", "compute": "#94a3b8"}
_MEM_COLOURS = {"parameters": "#60a5fa", "gradients": "#f59e0b", "optimizer states": "#a855f7",
                "activations": "#94a3b8"}


def _shade(frac: float) -> str:
    """White (no data) to deep blue (every rank's contribution)."""
    frac = min(1.0, max(0.0, frac))
    lo, hi = np.array([241, 245, 249]), np.array([29, 78, 216])
    r, g, b = (lo + (hi - lo) * frac).astype(int)
    return f"rgb({r},{g},{b})"


def _heat(u: float) -> str:
    """Link utilization 0..1: grey to red."""
    u = min(1.0, max(0.0, u))
    lo, hi = np.array([203, 213, 225]), np.array([220, 38, 38])
    r, g, b = (lo + (hi - lo) * u).astype(int)
    return f"rgb({r},{g},{b})"


# ---------------------------------------------------------------------------------------------------
# CollectiveAnimator
# ---------------------------------------------------------------------------------------------------

class CollectiveAnimator(widgets.VBox):
    """Step through a collective's schedule (see the module doc).

    ``CollectiveAnimator("allreduce", "ring", p=4)`` builds the schedule itself (one chunk per rank), or pass a
    :class:`Schedule` or a :class:`SimReport` (then each step also shows its simulated time).
    """

    def __init__(self, what="allreduce", algorithm: str | None = None, p: int = 4, *, n: int | None = None,
                 root: int = 0, start: int = 0, interval_ms: int = 900, size: int = 440):
        self.report = what if isinstance(what, SimReport) else None
        if isinstance(what, SimReport):
            sched = what.schedule
        elif isinstance(what, Schedule):
            sched = what
        elif isinstance(what, str):
            sched = build_schedule(what, algorithm, p, n if n is not None else p * (p if what == "alltoall" else 1),
                                   root=root)
        else:
            raise TypeError(f"CollectiveAnimator draws a collective name, a Schedule or a SimReport; got "
                            f"{type(what).__name__}")
        if sched.p > 16:
            raise ValueError(f"CollectiveAnimator draws up to 16 ranks legibly; this schedule has {sched.p}")
        self.schedule = sched
        self.size = size
        p = sched.p
        # each rank starts with its own bit; sums of distinct bits record whose data a cell holds
        inputs = []
        for r, reg in enumerate(sched.inputs):
            inputs.append(None if reg is None else np.full(reg[1], 1 << r, dtype=np.int64))
        _, self._snaps = execute(sched, inputs, record=True)
        self.nsteps = sched.nsteps
        if not 0 <= start <= self.nsteps:
            raise ValueError(f"CollectiveAnimator: start step {start} is outside 0..{self.nsteps}")
        self._cells = self._cell_bounds()
        self.play = widgets.Play(value=start, min=0, max=self.nsteps, step=1, interval=interval_ms, description="play")
        self.slider = widgets.IntSlider(value=start, min=0, max=self.nsteps, description="step",
                                        continuous_update=True, layout=widgets.Layout(width="420px"))
        self._link = widgets.link((self.play, "value"), (self.slider, "value"))
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        self.slider.observe(lambda change: self._draw(), names="value")
        super().__init__([widgets.HBox([self.play, self.slider]), self.caption, self.picture])
        self.add_class("aisys-collective-animator")   # the browser test finds the widget by it
        self._draw()

    def _cell_bounds(self) -> list[tuple[int, int]]:
        """Cells of the drawn buffer: one per chunk of the output region (at most 16)."""
        s = self.schedule
        lo, hi = (s.n, 2 * s.n) if s.collective == "alltoall" else (0, s.n)
        k = max(1, min(16, s.p, hi - lo))
        b = lo + (np.arange(k + 1) * (hi - lo)) // k
        return [(int(b[i]), int(b[i + 1])) for i in range(k) if b[i + 1] > b[i]]

    @property
    def step(self) -> int:
        return int(self.slider.value)

    def _held(self, step: int) -> np.ndarray:
        """[rank, cell] -> how many ranks' data the cell holds after ``step`` steps."""
        snap = self._snaps[min(step, len(self._snaps) - 1)]
        out = np.zeros((self.schedule.p, len(self._cells)), dtype=int)
        for r, buf in enumerate(snap):
            for c, (a, b) in enumerate(self._cells):
                masks = buf[a:b]
                out[r, c] = min(bin(int(m)).count("1") for m in masks) if masks.size else 0
        return out

    def _transfers(self, step: int):
        """Messages of step ``step`` (1-based: the arrows into the state after that step)."""
        if step < 1:
            return []
        return self.schedule.transfers_at(step - 1)

    def _sent_so_far(self, step: int) -> np.ndarray:
        s = self.schedule
        done = (s.wave < step) & (s.src != s.dst)
        return np.bincount(s.src[done], weights=s.count[done], minlength=s.p).astype(int)

    def _caption_text(self, step: int) -> str:
        s = self.schedule
        msgs = [t for t in self._transfers(step) if t.src != t.dst]
        if step == 0:
            what = "before the first step: every rank holds only its own data"
        else:
            kinds = {"reduce" if t.reduce else "copy" for t in msgs} or {"local copy"}
            what = f"step {step} of {self.nsteps}: {len(msgs)} messages ({'/'.join(sorted(kinds))})"
        if self.report is not None and step:
            ids = np.flatnonzero(s.wave == step - 1)
            if ids.size:
                what += f", simulated {format_time(self.report.start[ids].min())} .. " \
                        f"{format_time(self.report.end[ids].max())}"
        return f"{s.collective}/{s.algorithm} on {s.p} ranks — {what}"

    def _svg(self, step: int) -> str:
        s = self.schedule
        p, W = s.p, self.size
        R = W * 0.34
        cx = cy = W / 2
        ang = np.pi / 2 - 2 * np.pi * np.arange(p) / p
        pos = np.c_[cx + R * np.cos(ang), cy - R * np.sin(ang)]
        held = self._held(step)
        ncell = held.shape[1]
        cw = min(18, 120 / max(ncell, 1))
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{W}" '
                 f'style="font-family:sans-serif;font-size:11px">',
                 '<defs><marker id="arr" markerWidth="8" markerHeight="8" refX="7" refY="3" orient="auto">'
                 '<path d="M0,0 L7,3 L0,6 z" fill="#dc2626"/></marker></defs>']
        for t in self._transfers(step):
            if t.src == t.dst:
                continue
            (x0, y0), (x1, y1) = pos[t.src], pos[t.dst]
            dx, dy = x1 - x0, y1 - y0
            d = math.hypot(dx, dy) or 1
            ox, oy = -dy / d * 6, dx / d * 6          # offset so a->b and b->a do not overlap
            a0 = (x0 + dx * 0.2 + ox, y0 + dy * 0.2 + oy)
            a1 = (x0 + dx * 0.8 + ox, y0 + dy * 0.8 + oy)
            label = f"c{t.chunk}" if t.chunk >= 0 else ""
            parts.append(f'<line class="msg" x1="{a0[0]:.1f}" y1="{a0[1]:.1f}" x2="{a1[0]:.1f}" y2="{a1[1]:.1f}" '
                         f'stroke="#dc2626" stroke-width="2" marker-end="url(#arr)"><title>'
                         f'{html.escape(t.describe())}</title></line>')
            if label and p <= 9:
                mx, my = (a0[0] + a1[0]) / 2 + ox, (a0[1] + a1[1]) / 2 + oy
                parts.append(f'<text x="{mx:.1f}" y="{my:.1f}" fill="#dc2626" text-anchor="middle">{label}</text>')
        sent = self._sent_so_far(step)
        for r in range(p):
            x, y = pos[r]
            w = cw * ncell
            parts.append(f'<g class="rank"><rect x="{x - w / 2 - 4:.1f}" y="{y - 22:.1f}" width="{w + 8:.1f}" '
                         f'height="40" rx="6" fill="white" stroke="#334155"/>'
                         f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" font-weight="bold">rank {r}</text>')
            for c in range(ncell):
                frac = held[r, c] / p
                parts.append(f'<rect class="cell" x="{x - w / 2 + c * cw:.1f}" y="{y - 2:.1f}" width="{cw - 1:.1f}" '
                             f'height="12" fill="{_shade(frac)}" stroke="#94a3b8"><title>rank {r}, chunk {c}: data '
                             f'of {held[r, c]} of {p} ranks</title></rect>')
            parts.append(f'<text x="{x:.1f}" y="{y + 30:.1f}" text-anchor="middle" fill="#475569">sent '
                         f'{int(sent[r])} el.</text></g>')
        parts.append("</svg>")
        return "".join(parts)

    def _draw(self) -> None:
        step = self.step
        self.caption.value = f"<b>{html.escape(self._caption_text(step))}</b>"
        self.picture.value = self._svg(step)

    def summary(self) -> str:
        s = self.schedule
        held = self._held(self.step)
        sent = self._sent_so_far(self.step)
        lines = [f"CollectiveAnimator: {s.collective}/{s.algorithm}, {s.p} ranks, {self.nsteps} steps, "
                 f"{len(self._cells)} chunks drawn",
                 f"  now: {self._caption_text(self.step)}",
                 "  ranks' data per chunk: " + " | ".join(" ".join(str(v) for v in row) for row in held),
                 f"  elements sent so far per rank: {sent.tolist()}"]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# TopologyView
# ---------------------------------------------------------------------------------------------------

class TopologyView(widgets.VBox):
    """Draw one or more topologies; with ``collective``/``nbytes`` also simulate it on each and colour links
    by utilization. ``TopologyView({"NVLink": Topology.preset("dgx_a100"), "PCIe": ...}, "allreduce", "ring",
    nbytes=256 << 20)``."""

    def __init__(self, topologies, collective: str | None = None, algorithm: str | None = None, *,
                 nbytes: int | None = None, size: int = 520):
        if isinstance(topologies, Topology):
            topologies = {topologies.name: topologies}
        elif isinstance(topologies, (list, tuple)):
            topologies = {t.name: t for t in topologies}
        if not isinstance(topologies, dict) or not topologies or \
                not all(isinstance(t, Topology) for t in topologies.values()):
            raise TypeError("TopologyView draws a Topology, a list of them, or a dict name -> Topology")
        self.topologies = dict(topologies)
        self.collective, self.algorithm, self.nbytes = collective, algorithm, nbytes
        self.size = size
        self.reports: dict[str, SimReport] = {}
        if collective is not None:
            if nbytes is None:
                raise ValueError("TopologyView: give nbytes= to simulate the collective on each topology")
            for name, topo in self.topologies.items():
                self.reports[name] = simulate(collective, algorithm, topology=topo, nbytes=nbytes)
        names = list(self.topologies)
        self.picker = widgets.Dropdown(options=names, value=names[0], description="topology",
                                       layout=widgets.Layout(width="420px"))
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        self.picker.observe(lambda change: self._draw(), names="value")
        super().__init__([self.picker, self.caption, self.picture])
        self.add_class("aisys-topology-view")   # the browser test finds the widget by it
        self._draw()

    @property
    def current(self) -> Topology:
        return self.topologies[self.picker.value]

    def _caption_text(self) -> str:
        topo = self.current
        kinds = "; ".join(f"{t.name}: {format_bandwidth(t.bandwidth)}" for t in topo.link_types)
        text = f"{topo.name}: {topo.ndevices} devices, {topo.nlinks} directed links — {kinds}"
        rep = self.reports.get(self.picker.value)
        if rep is not None:
            text += (f". {rep.schedule.collective}/{rep.schedule.algorithm} of {format_bytes(rep.nbytes)}: "
                     f"{format_time(rep.time)}, algBw {format_bandwidth(rep.algbw)}, busBw {format_bandwidth(rep.busbw)}")
        return text

    def _svg(self) -> str:
        topo = self.current
        pos = topo.positions if topo.positions is not None else np.c_[np.cos(np.arange(len(topo.vertex_names))),
                                                                       np.sin(np.arange(len(topo.vertex_names)))]
        W = self.size
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        span = np.maximum(hi - lo, 1e-9)
        scale = (W - 80) / max(span)
        H = int(span[1] * scale + 80)
        xy = np.c_[40 + (pos[:, 0] - lo[0]) * scale, 40 + (hi[1] - pos[:, 1]) * scale]
        rep = self.reports.get(self.picker.value)
        util = rep.link_utilization() if rep is not None else None
        bw = topo.link_bandwidth
        wmin, wmax = np.log10(bw.min()), np.log10(bw.max())
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
                 f'style="font-family:sans-serif;font-size:11px">']
        seen = set()
        for i in range(topo.nlinks):
            a, b = int(topo.link_src[i]), int(topo.link_dst[i])
            key = (min(a, b), max(a, b))
            if key in seen:                       # one line per pair of directed links
                continue
            seen.add(key)
            rev = [j for j in range(topo.nlinks) if topo.link_src[j] == b and topo.link_dst[j] == a] \
                if topo.nlinks <= 400 else []
            u = util[i] if util is not None else None
            if util is not None and rev:
                u = max(u, util[rev[0]])
            width = 1.5 + 4.5 * ((np.log10(bw[i]) - wmin) / (wmax - wmin) if wmax > wmin else 1.0)
            colour = _heat(u) if u is not None else "#94a3b8"
            tip = f"{topo.link_name(i)}: {format_bandwidth(bw[i])}" + (f", busy {100 * u:.0f}%" if u is not None else "")
            parts.append(f'<line class="link" x1="{xy[a][0]:.1f}" y1="{xy[a][1]:.1f}" x2="{xy[b][0]:.1f}" '
                         f'y2="{xy[b][1]:.1f}" stroke="{colour}" stroke-width="{width:.1f}"><title>'
                         f'{html.escape(tip)}</title></line>')
        for v, name in enumerate(topo.vertex_names):
            x, y = xy[v]
            if v < topo.ndevices:
                parts.append(f'<g class="device"><circle cx="{x:.1f}" cy="{y:.1f}" r="13" fill="#1d4ed8"/>'
                             f'<text x="{x:.1f}" y="{y + 4:.1f}" fill="white" text-anchor="middle">{v}</text></g>')
            else:
                parts.append(f'<g class="switch"><rect x="{x - 30:.1f}" y="{y - 10:.1f}" width="60" height="20" '
                             f'rx="4" fill="#334155"/><text x="{x:.1f}" y="{y + 4:.1f}" fill="white" '
                             f'text-anchor="middle">{html.escape(name[:10])}</text><title>{html.escape(name)}</title></g>')
        parts.append("</svg>")
        return "".join(parts)

    def _draw(self) -> None:
        self.caption.value = html.escape(self._caption_text())
        self.picture.value = self._svg()

    def summary(self) -> str:
        lines = [f"TopologyView: {len(self.topologies)} topolog{'y' if len(self.topologies) == 1 else 'ies'}, "
                 f"showing {self.picker.value!r}", f"  {self._caption_text()}"]
        for name, rep in self.reports.items():
            util = rep.link_utilization()
            lines.append(f"  {name}: {format_time(rep.time)}, busiest link busy {100 * util.max():.0f}%")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# TimelineView
# ---------------------------------------------------------------------------------------------------

def _as_trace(x) -> Trace:
    if isinstance(x, Trace):
        return x
    tr = getattr(x, "trace", None)
    if isinstance(tr, Trace):
        return tr
    raise TypeError(f"TimelineView draws Trace records (or objects with a .trace: SimReport, RunResult, reports); "
                    f"got {type(x).__name__}")


class TimelineView(widgets.VBox):
    """Per-lane timelines of one or more traces, one panel each (e.g. the measured MPI run above the simulated
    one). ``sweep=(label, values, fn)`` adds a slider: moving it calls ``fn(value)`` for new trace(s)."""

    def __init__(self, traces=None, titles=None, *, sweep=None, height_per_lane: int = 26):
        self._sweep = sweep
        self.height_per_lane = height_per_lane
        controls = []
        if sweep is not None:
            label, values, fn = sweep
            values = list(values)
            if not values or not callable(fn):
                raise ValueError("TimelineView: sweep=(label, values, fn) needs a non-empty list of values and a "
                                 "function value -> trace(s)")
            self._fn = fn
            self.slider = widgets.SelectionSlider(options=values, value=values[0], description=str(label),
                                                  continuous_update=False, style={"description_width": "auto"},
                                                  layout=widgets.Layout(width="480px"))
            self.slider.observe(lambda change: self._refresh(), names="value")
            controls.append(self.slider)
            if traces is None:
                traces = fn(values[0])
        if traces is None:
            raise ValueError("TimelineView: give traces (a Trace, a list or a dict title -> Trace) or sweep=")
        self.caption = widgets.HTML()
        self.figure = go.Figure()
        self._set(traces, titles)
        self._refresh(initial=True)
        self.figure = go.FigureWidget(self.figure)   # drawn whole, then wrapped: an update sent before the browser
        #                                              draws a FigureWidget can be lost (empty axes)
        super().__init__(controls + [self.caption, self.figure])
        self.add_class("aisys-timeline-view")   # the browser test finds the widget by it

    def _set(self, traces, titles=None) -> None:
        if isinstance(traces, dict):
            titles, traces = list(traces), list(traces.values())
        elif not isinstance(traces, (list, tuple)):
            traces = [traces]
        self.traces = [_as_trace(t) for t in traces]
        self.titles = list(titles) if titles is not None else [t.name for t in self.traces]

    def _refresh(self, initial: bool = False) -> None:
        if self._sweep is not None and not initial:
            out = self._fn(self.slider.value)
            self._set(out)
        lanes_per = [t.lanes for t in self.traces]
        rows = len(self.traces)
        heights = [max(2, len(l)) for l in lanes_per]
        fig = make_subplots(rows=rows, cols=1, subplot_titles=self.titles, vertical_spacing=0.2 if rows > 1 else 0.05,
                            row_heights=[h / sum(heights) for h in heights])
        shown = set()
        for i, tr in enumerate(self.traces):
            for kind in sorted({e.args.get("kind", "compute") for e in tr.events}):
                evs = [e for e in tr.events if e.args.get("kind", "compute") == kind and e.end > e.start]
                if not evs:
                    continue
                fig.add_bar(row=i + 1, col=1, orientation="h", y=[e.lane for e in evs],
                            x=[tr.to_us(e.end) - tr.to_us(e.start) for e in evs], base=[tr.to_us(e.start) for e in evs],
                            name=kind, legendgroup=kind, showlegend=kind not in shown,
                            marker_color=_KIND_COLOURS.get(kind, "#94a3b8"), marker_line_width=0.5,
                            hovertext=[f"{e.name} ({e.lane}): {(tr.to_us(e.end) - tr.to_us(e.start)):.1f} µs"
                                       for e in evs], hoverinfo="text")
                shown.add(kind)
            fig.update_yaxes(row=i + 1, col=1, autorange="reversed", categoryorder="array", categoryarray=lanes_per[i])
            fig.update_xaxes(row=i + 1, col=1, title_text="µs" if i == rows - 1 else None, title_standoff=4)
        total = sum(heights) * self.height_per_lane + 90 * rows + 40
        fig.update_layout(barmode="overlay", height=total, margin=dict(l=110, r=20, t=40, b=40),
                          legend=dict(orientation="h", y=-0.08))
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(fig.data)
            self.figure.layout = fig.layout
        self.caption.value = html.escape(" | ".join(self._stats(t, title) for t, title in zip(self.traces, self.titles)))

    @staticmethod
    def _stats(tr: Trace, title: str) -> str:
        """Span of the trace and, per rank, how long it was communicating (overlapping events counted once)."""
        t0, t1 = tr.span
        span = tr.to_us(t1) - tr.to_us(t0)
        per_rank: dict[str, list] = {}
        for e in tr.events:
            if e.args.get("kind") == "comm":
                per_rank.setdefault(" ".join(e.lane.split()[:2]), []).append((e.start, e.end))
        busiest = 0.0
        for spans in per_rank.values():
            total, cur_s, cur_e = 0.0, None, None
            for s_, e_ in sorted(spans):
                if cur_e is None or s_ > cur_e:
                    total += 0.0 if cur_e is None else cur_e - cur_s
                    cur_s, cur_e = s_, e_
                else:
                    cur_e = max(cur_e, e_)
            total += 0.0 if cur_e is None else cur_e - cur_s
            busiest = max(busiest, tr.to_us(total) - tr.to_us(0))
        return f"{title}: span {span:,.1f} µs, the busiest rank communicates for {busiest:,.1f} µs"

    def summary(self) -> str:
        lines = [f"TimelineView: {len(self.traces)} panel(s)"
                 + (f", {self.slider.description} = {self.slider.value}" if self._sweep is not None else "")]
        for tr, title in zip(self.traces, self.titles):
            kinds = {}
            for e in tr.events:
                k = e.args.get("kind", "compute")
                kinds[k] = kinds.get(k, 0) + 1
            lines.append(f"  {title}: lanes {tr.lanes[:6]}{' ...' if len(tr.lanes) > 6 else ''}; events by kind "
                         f"{dict(sorted(kinds.items()))}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# MemoryStack
# ---------------------------------------------------------------------------------------------------

class MemoryStack(widgets.VBox):
    """Per-device memory of ZeRO stages 0-3 as stacked bars (``MemoryStack(params=7.5e9, ndevices=64)``);
    a slider changes the number of data-parallel devices; ``capacity`` draws the device's memory."""

    def __init__(self, params: float, ndevices: int = 64, *, activations: float = 0.0, capacity: float | None = 80e9,
                 device_counts=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)):
        self.params, self.activations, self.capacity = float(params), float(activations), capacity
        counts = sorted(set(int(c) for c in device_counts) | {int(ndevices)})
        self.slider = widgets.SelectionSlider(options=counts, value=int(ndevices), description="devices N_d",
                                              continuous_update=False, style={"description_width": "auto"},
                                              layout=widgets.Layout(width="480px"))
        self.caption = widgets.HTML()
        self.figure = go.Figure(layout=dict(
            barmode="stack", height=380, yaxis=dict(title="GB per device"), margin=dict(l=60, r=20, t=40, b=40),
            title=f"model states of {self.params / 1e9:.3g} B parameters (mixed-precision Adam)"))
        stages = [f"stage {z}" for z in range(4)]
        for kind in MEMORY_KINDS:
            self.figure.add_bar(name=kind, x=stages, y=[0] * 4, marker_color=_MEM_COLOURS[kind],
                                text=[""] * 4, textposition="inside")
        self.slider.observe(lambda change: self._refresh(), names="value")
        self._refresh()
        self.figure = go.FigureWidget(self.figure)   # drawn whole, then wrapped: an update sent before the browser
        #                                              draws a FigureWidget can be lost (empty axes)
        super().__init__([self.slider, self.caption, self.figure])
        self.add_class("aisys-memory-stack")   # the browser test finds the widget by it

    def breakdown(self) -> list[dict]:
        n = int(self.slider.value)
        return [memory_breakdown(self.params, n, z, activations=self.activations) for z in range(4)]

    def _refresh(self) -> None:
        rows = self.breakdown()
        with self.figure.batch_update():
            for bar, kind in zip(self.figure.data, MEMORY_KINDS):
                bar.y = [r[kind] / 1e9 for r in rows]
                bar.text = [f"{r[kind] / 1e9:.3g}" if r[kind] / 1e9 >= 0.05 * max(1e-9, sum(rows[0].values()) / 1e9)
                            else "" for r in rows]
            shapes = []
            if self.capacity:
                shapes.append(dict(type="line", xref="paper", x0=0, x1=1, y0=self.capacity / 1e9,
                                   y1=self.capacity / 1e9, line=dict(color="#dc2626", dash="dash")))
            self.figure.layout.shapes = shapes
        totals = [sum(r.values()) / 1e9 for r in rows]
        self.caption.value = html.escape(f"N_d = {self.slider.value}: " + ", ".join(
            f"stage {z} {t:.3g} GB" for z, t in enumerate(totals))
            + (f" (device capacity {self.capacity / 1e9:.0f} GB, dashed)" if self.capacity else ""))

    def summary(self) -> str:
        rows = self.breakdown()
        lines = [f"MemoryStack: {self.params / 1e9:.3g} B parameters on N_d = {self.slider.value} devices"]
        for z, r in enumerate(rows):
            parts = ", ".join(f"{k} {v / 1e9:.3g}" for k, v in r.items() if v)
            lines.append(f"  stage {z}: {sum(r.values()) / 1e9:.3g} GB ({parts})")
        return "\n".join(lines)
