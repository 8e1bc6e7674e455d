"""Cluster-scheduling widgets: what a policy did to a trace, policies side by side, and what placement costs.

* :class:`ClusterTimeline` — GPUs (rows, grouped by node and rack) x time: every job segment a bar
  coloured by tenant, model or job, checkpoint-restarts in grey; below it the queue length and the
  GPUs left idle while jobs waited. A :class:`~aisys.cluster.Comparison` adds a policy picker.
* :class:`PolicyCompare` — the JCT distribution (CDF) and utilization over time of each policy, a bar
  chart of the metric you pick, and the comparison table.
* :class:`PlacementView` — a cluster's racks, nodes and GPUs (some busy), the GPUs a placement rule gives
  a gang, and what the α-β cost model says each rule costs: step time, communication share, links crossed.

They draw the plain records ``aisys.cluster`` produces (Report, Comparison, Cluster); each has a
plain-text ``summary()``.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aisys.cluster import MODELS, PLACEMENTS, Cluster, Comparison, Report
from aisys.cluster.cost import step_time, reference_step_time

__all__ = ["ClusterTimeline", "PolicyCompare", "PlacementView", "PALETTE"]

PALETTE = ["#2563eb", "#f59e0b", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#ea580c",
           "#4f46e5", "#0d9488", "#a16207"]
OVERHEAD = "#9ca3af"
MAX_GROUPS = len(PALETTE)
_FIXED_NAMES = ["checkpoint-restart", "jobs waiting", "GPUs idle while jobs wait"]


def _reports(source) -> dict[str, Report]:
    if isinstance(source, Report):
        return {source.policy: source}
    if isinstance(source, Comparison):
        return dict(source.reports)
    if isinstance(source, dict) and source and all(isinstance(r, Report) for r in source.values()):
        return dict(source)
    raise TypeError(f"expected a Report or a Comparison from aisys.cluster (simulate / compare), got "
                    f"{type(source).__name__}")


class ClusterTimeline(widgets.VBox):
    """GPUs x time for one run (or each run of a comparison); queue length and idle-while-waiting below."""

    def __init__(self, source, *, colour_by: str = "tenant", height: int = 560):
        self.reports = _reports(source)
        names = list(self.reports)
        self.policy_picker = widgets.Dropdown(options=names, value=names[0], description="policy")
        self.policy_picker.layout.display = None if len(names) > 1 else "none"
        if colour_by not in ("tenant", "model", "job"):
            raise ValueError(f"colour_by must be 'tenant', 'model' or 'job', got {colour_by!r}")
        self.colour_picker = widgets.ToggleButtons(options=["tenant", "model", "job"], value=colour_by,
                                                   description="colour by", style={"button_width": "auto"})
        self.caption = widgets.HTML()
        self.figure = self._make_figure(height)
        for w in (self.policy_picker, self.colour_picker):
            w.observe(lambda change: self._redraw(), names="value")
        super().__init__([widgets.HBox([self.policy_picker, self.colour_picker]), self.caption, self.figure])
        self.add_class("aisys-cluster-timeline")   # the browser test finds the widget by it
        self._redraw()

    @property
    def report(self) -> Report:
        return self.reports[self.policy_picker.value]

    def _make_figure(self, height: int) -> go.FigureWidget:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.05)
        hover = ("job %{customdata[0]} · %{customdata[1]} GPUs<br>%{customdata[2]:.2f} h – %{customdata[3]:.2f} h"
                 "<extra>%{fullData.name}</extra>")
        for i in range(MAX_GROUPS):
            fig.add_trace(go.Bar(name="", orientation="h", x=[], y=[], base=[], hovertemplate=hover,
                                 marker_color=PALETTE[i], marker_line_width=0, showlegend=False), row=1, col=1)
        fig.add_trace(go.Bar(name=_FIXED_NAMES[0], orientation="h", x=[], y=[], base=[], hovertemplate=hover,
                             marker_color=OVERHEAD, marker_line_width=0), row=1, col=1)
        fig.add_trace(go.Scatter(name=_FIXED_NAMES[1], x=[], y=[], mode="lines", line_shape="hv",
                                 line=dict(color="#111827", width=1.5)), row=2, col=1)
        fig.add_trace(go.Scatter(name=_FIXED_NAMES[2], x=[], y=[], mode="lines", line_shape="hv",
                                 fill="tozeroy", line=dict(color="#dc2626", width=1)), row=2, col=1)
        fig.update_layout(height=height, barmode="overlay", bargap=0, margin=dict(l=80, r=20, t=70, b=40),
                          legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0), hovermode="closest")
        fig.update_yaxes(autorange="reversed", row=1, col=1)
        fig.update_yaxes(title_text="count", row=2, col=1)
        fig.update_xaxes(title_text="hours since the first submission", row=2, col=1)
        return go.FigureWidget(fig)

    def _groups(self, rep: Report):
        """(group name per job id, ordered group names) for the chosen colouring."""
        how = self.colour_picker.value
        if how == "job":
            return {r.id: str(r.id % MAX_GROUPS) for r in rep.jobs}, [str(i) for i in range(MAX_GROUPS)]
        attr = "tenant" if how == "tenant" else "model"
        key = {r.id: getattr(r, attr) for r in rep.jobs}
        names = sorted(set(key.values()))
        if len(names) > MAX_GROUPS:
            keep = set(names[:MAX_GROUPS - 1])
            key = {j: (v if v in keep else "other") for j, v in key.items()}
            names = names[:MAX_GROUPS - 1] + ["other"]
        return key, names

    def _redraw(self) -> None:
        rep = self.report
        c = rep.cluster
        info = {r.id: r for r in rep.jobs}
        group_of, groups = self._groups(rep)
        index = {g: i for i, g in enumerate(groups)}
        # one bar per run of consecutive GPU rows (a packed gang is one bar per node); hover data as numbers
        bars = [dict(y=[], base=[], x=[], width=[], data=[]) for _ in range(MAX_GROUPS + 1)]
        t0 = rep.t0
        for jid, _, gpus, start, end, ovh_end, _ in rep.segments:
            r = info.get(jid)
            k = r.num_gpus if r else len(gpus)
            for first, size in _runs(gpus):
                for b, s0, s1 in ((bars[MAX_GROUPS], start, ovh_end),
                                  (bars[index.get(group_of.get(jid), 0)], ovh_end, end)):
                    if s1 > s0:
                        b["y"].append(first + (size - 1) / 2)
                        b["width"].append(size)
                        b["base"].append((s0 - t0) / 3600)
                        b["x"].append((s1 - s0) / 3600)
                        b["data"].append((jid, k, (s0 - t0) / 3600, (s1 - t0) / 3600))
        t, waiting = rep.queue_over_time()
        _, busy = rep.utilization_over_time()
        hours = (t - t0) / 3600
        idle = np.where(waiting > 0, c.num_gpus - np.round(busy * c.num_gpus), 0)
        how = self.colour_picker.value
        names = [(f"{how} {groups[i]}" if how != "job" and i < len(groups) else "") for i in range(MAX_GROUPS)]
        # Trace by trace, property by property, outside batch_update: a batch sends a property that some traces
        # do not change as null, which plotly.js reads as "reset to default" (names and legends would vanish).
        for i, tr in enumerate(self.figure.data):
            if i <= MAX_GROUPS:
                b = bars[i]
                tr.x, tr.y, tr.base, tr.width, tr.customdata = b["x"], b["y"], b["base"], b["width"], b["data"]
                tr.name = names[i] if i < MAX_GROUPS else _FIXED_NAMES[0]
                tr.showlegend = bool(tr.name)
            else:
                tr.x, tr.y = hours, (waiting if i == MAX_GROUPS + 1 else idle)
        ticks = [c.node_first_gpu[i] for i in range(len(c.nodes))]
        layout = self.figure.layout
        layout.yaxis.tickvals = ticks
        layout.yaxis.ticktext = [f"{n.name} ({n.gpu})" for n in c.nodes]
        layout.yaxis.range = [c.num_gpus - 0.5, -0.5]
        layout.shapes = [dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y - 0.5, y1=y - 0.5,
                              line=dict(color="#6b7280", width=2 if _rack_start(c, i) else 0.5))
                         for i, y in enumerate(ticks) if i]
        idle_h = float(np.sum(idle[:-1] * np.diff(t)) / 3600) if len(t) > 1 else 0.0
        self.caption.value = (f"<b>{html.escape(rep.policy)}</b>: mean JCT {rep.jct_mean / 3600:.2f} h · "
                              f"utilization {rep.utilization:.1%} · {idle_h:.3g} GPU-hours idle while jobs waited · "
                              f"{rep.preemptions} preemptions")

    def summary(self) -> str:
        rep = self.report
        t, waiting = rep.queue_over_time()
        _, busy = rep.utilization_over_time()
        idle = np.where(waiting > 0, rep.cluster.num_gpus - np.round(busy * rep.cluster.num_gpus), 0)
        idle_h = float(np.sum(idle[:-1] * np.diff(t)) / 3600) if len(t) > 1 else 0.0
        bars = sum(len(_runs(s[2])) * ((s[4] > s[5]) + (s[5] > s[3])) for s in rep.segments)
        return (f"ClusterTimeline: {rep.policy} / {rep.placement}, colour by {self.colour_picker.value}: "
                f"{bars} bars on {rep.cluster.num_gpus} GPUs over {rep.makespan / 3600:.1f} h; "
                f"longest queue {int(waiting.max()) if len(waiting) else 0} jobs; "
                f"{idle_h:.3g} GPU-hours idle while jobs waited\n" + rep.summary())


def _runs(gpus) -> list[tuple[int, int]]:
    """(first GPU, count) of each run of consecutive GPU ids."""
    runs: list[list[int]] = []
    for g in sorted(gpus):
        if runs and g == runs[-1][0] + runs[-1][1]:
            runs[-1][1] += 1
        else:
            runs.append([g, 1])
    return [tuple(r) for r in runs]


def _rack_start(c: Cluster, i: int) -> bool:
    return c.nodes[i].rack != c.nodes[i - 1].rack


def _binned_mean(t: np.ndarray, y: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time-average of a step function (y[i] from t[i] on) over each bin of ``edges``."""
    if len(t) == 0:
        return np.zeros(len(edges) - 1)
    cum = np.concatenate([[0.0], np.cumsum(y[:-1] * np.diff(t))])

    def integral(x):
        i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 1)
        return cum[i] + y[i] * (x - t[i])
    width = np.diff(edges)
    return (integral(edges[1:]) - integral(edges[:-1])) / np.where(width > 0, width, 1)


METRICS = {"mean JCT (h)": ("jct_mean", 1 / 3600), "p95 JCT (h)": ("jct_p95", 1 / 3600),
           "mean queueing delay (h)": ("queue_delay_mean", 1 / 3600), "makespan (h)": ("makespan", 1 / 3600),
           "utilization": ("utilization", 1.0), "fragmentation": ("fragmentation", 1.0),
           "blocked (idle by choice)": ("blocked", 1.0), "Jain's index": ("fairness", 1.0),
           "max finish-time fairness": ("ftf_max", 1.0)}


class PolicyCompare(widgets.VBox):
    """JCT CDFs and utilization over time per policy, plus a bar chart of one metric and the table."""

    def __init__(self, comparison: Comparison, *, metric: str = "mean JCT (h)", height: int = 640):
        self.reports = _reports(comparison)
        if len(self.reports) < 1:
            raise ValueError("PolicyCompare needs at least one report")
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        self.metric_picker = widgets.Dropdown(options=list(METRICS), value=metric, description="metric",
                                              style={"description_width": "auto"})
        self.log_box = widgets.Checkbox(value=True, description="log-scale JCT axis", indent=False)
        self.table = widgets.HTML(f"<pre style='font-size:11px'>{html.escape(Comparison(self.reports).table())}</pre>")
        self.figure = self._make_figure(height)
        self.metric_picker.observe(lambda change: self._draw_bars(), names="value")
        self.log_box.observe(lambda change: self._set_log(), names="value")
        super().__init__([widgets.HBox([self.metric_picker, self.log_box]), self.figure, self.table])
        self.add_class("aisys-policy-compare")   # the browser test finds the widget by it
        self._draw_bars()

    def _make_figure(self, height: int) -> go.FigureWidget:
        fig = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], row_heights=[0.58, 0.42],
                            subplot_titles=["JCT distribution (CDF)", "GPU utilization (hourly mean)", ""],
                            vertical_spacing=0.14, horizontal_spacing=0.08)
        first = next(iter(self.reports.values()))
        edges = np.linspace(first.t0, max(r.t1 for r in self.reports.values()), 121)
        mids = (edges[:-1] + edges[1:]) / 2
        for i, (name, rep) in enumerate(self.reports.items()):
            colour = PALETTE[i % len(PALETTE)]
            jct = np.sort(rep.jcts()) / 3600
            fig.add_trace(go.Scatter(name=name, legendgroup=name, x=jct, y=np.arange(1, len(jct) + 1) / len(jct),
                                     mode="lines", line=dict(color=colour)), row=1, col=1)
            t, u = rep.utilization_over_time()
            fig.add_trace(go.Scatter(name=name, legendgroup=name, showlegend=False, x=(mids - first.t0) / 3600,
                                     y=_binned_mean(t, u, edges), mode="lines", line=dict(color=colour, width=1)),
                          row=1, col=2)
        fig.add_trace(go.Bar(name="metric", x=list(self.reports), y=[], showlegend=False, text=[],
                             textposition="outside", marker_color=[PALETTE[i % len(PALETTE)]
                                                                   for i in range(len(self.reports))]),
                      row=2, col=1)
        fig.update_xaxes(type="log", title_text="job completion time (h)", row=1, col=1)
        fig.update_yaxes(title_text="share of jobs", range=[0, 1.02], row=1, col=1)
        fig.update_xaxes(title_text="hours", row=1, col=2)
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
        fig.update_layout(height=height, margin=dict(l=60, r=20, t=40, b=40), legend=dict(orientation="h", y=-0.08))
        return go.FigureWidget(fig)

    def _set_log(self) -> None:
        self.figure.layout.xaxis.type = "log" if self.log_box.value else "linear"

    def values(self) -> dict[str, float]:
        attr, scale = METRICS[self.metric_picker.value]
        return {name: getattr(rep, attr) * scale for name, rep in self.reports.items()}

    def _draw_bars(self) -> None:
        vals = self.values()
        pct = self.metric_picker.value in ("utilization", "fragmentation", "blocked (idle by choice)")
        bar = self.figure.data[-1]
        with self.figure.batch_update():
            bar.y = list(vals.values())
            bar.text = [f"{v:.1%}" if pct else f"{v:.3g}" for v in vals.values()]
            self.figure.layout.yaxis3.title.text = self.metric_picker.value
            self.figure.layout.yaxis3.tickformat = ".0%" if pct else ""

    def summary(self) -> str:
        vals = self.values()
        best = min(vals, key=vals.get) if "Jain" not in self.metric_picker.value and \
            self.metric_picker.value != "utilization" else max(vals, key=vals.get)
        return (f"PolicyCompare: {len(self.reports)} policies; {self.metric_picker.value}: "
                + ", ".join(f"{k} {v:.3g}" for k, v in vals.items()) + f" (best: {best})\n"
                + Comparison(self.reports).table())


class PlacementView(widgets.VBox):
    """Racks, nodes and GPUs; the GPUs each placement rule gives one gang; what each choice costs.

    ``busy``: the share of GPUs already taken by other jobs (chosen at random from ``seed``), or a
    set of GPU ids; ``rules``: extra placement functions ``rule(free, n, cluster)`` to offer (a learner's),
    as a list (named by their ``__name__``) or a {name: function} dict.
    """

    def __init__(self, cluster: Cluster, *, model: str = "vgg16", n: int = 8, busy=0.4, seed: int = 0,
                 rules=None, rule: str | None = None, gpu: str | None = None):
        if not isinstance(cluster, Cluster):
            raise TypeError(f"PlacementView draws a Cluster, got {type(cluster).__name__}")
        self.cluster = cluster
        self.gpu = gpu or next(iter(cluster.gpu_types))
        if self.gpu not in cluster.gpu_types:
            raise ValueError(f"this cluster has no {self.gpu!r} GPUs ({', '.join(cluster.gpu_types)})")
        pool = [g for g in range(cluster.num_gpus) if cluster.node_of_gpu(g).gpu == self.gpu]
        if isinstance(busy, (set, frozenset, list, tuple)):
            self.busy = set(busy)
        else:
            rng = np.random.default_rng(seed)
            self.busy = set(rng.choice(pool, int(round(busy * len(pool))), replace=False).tolist()) if busy else set()
        self.free = {}
        for i, node in enumerate(cluster.nodes):
            if node.gpu == self.gpu:
                first = cluster.node_first_gpu[i]
                f = sum(1 for g in range(first, first + node.num_gpus) if g not in self.busy)
                if f:
                    self.free[node.name] = f
        self.rules = dict(PLACEMENTS)
        named = rules.items() if isinstance(rules, dict) else ((getattr(r, "__name__", "custom"), r) for r in rules or [])
        for name, r in named:
            self.rules[name] = r
        total_free = sum(self.free.values())
        if total_free < 1:
            raise ValueError("no free GPUs to place a job on; lower busy=")
        self.rule_picker = widgets.ToggleButtons(options=list(self.rules), value=rule or "pack",
                                                 description="placement", style={"button_width": "auto"})
        self.size_slider = widgets.IntSlider(value=min(n, total_free), min=1, max=min(total_free, 64),
                                             description="gang size", continuous_update=False)
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
        self.model_picker = widgets.Dropdown(options=list(MODELS), value=model, description="model")
        self.picture = widgets.HTML()
        self.costs = widgets.HTML()
        for w in (self.rule_picker, self.size_slider, self.model_picker):
            w.observe(lambda change: self._redraw(), names="value")
        super().__init__([self.rule_picker, widgets.HBox([self.size_slider, self.model_picker]), self.picture,
                          self.costs])
        self.add_class("aisys-placement-view")   # the browser test finds the widget by it
        self._redraw()

    def gpus_for(self, rule_name: str, n: int) -> list[int]:
        """The GPU ids the rule picks for a gang of n (lowest free GPU ids on each chosen node)."""
        from aisys.cluster.placement import check_placement
        taken = check_placement(self.rules[rule_name](dict(self.free), n, self.cluster), self.free, n, rule_name)
        c = self.cluster
        gpus = []
        for name, k in taken.items():
            i = c.node_index[name]
            first = c.node_first_gpu[i]
            gpus.extend([g for g in range(first, first + c.nodes[i].num_gpus) if g not in self.busy][:k])
        return gpus

    def rows(self) -> list[dict]:
        """Per rule: the placement and its cost (or the error a rule raised)."""
        n, model = self.size_slider.value, MODELS[self.model_picker.value]
        ref = reference_step_time(self.cluster, model, n).total
        out = []
        for name in self.rules:
            try:
                gpus = self.gpus_for(name, n)
            except Exception as e:   # a learner's rule may break: show it instead of failing the view
                out.append(dict(rule=name, error=f"{type(e).__name__}: {e}"))
                continue
            st = step_time(self.cluster, model, gpus)
            nodes = {self.cluster.gpu_node[g] for g in gpus}
            racks = {self.cluster.nodes[i].rack for i in nodes}
            ring = self.cluster.ring_order(gpus)
            hops: dict[str, int] = {}
            for a, b in zip(ring, ring[1:] + ring[:1]):
                if len(ring) > 1:
                    kind = self.cluster.link_between(a, b).name
                    kind = "NVLink/PCIe" if kind.startswith(("NVLink", "PCIe")) else kind
                    hops[kind] = hops.get(kind, 0) + 1
            out.append(dict(rule=name, gpus=gpus, nodes=len(nodes), racks=len(racks), step=st,
                            hours=st.total / ref, hops=hops))
        return out

    def _redraw(self) -> None:
        rows = self.rows()
        current = next(r for r in rows if r["rule"] == self.rule_picker.value)
        chosen = set(current.get("gpus", []))
        self.picture.value = self._svg(chosen)
        lines = ["<style>.aisys-placement td, .aisys-placement th {padding: 2px 8px}</style>"
                 "<table class='aisys-placement' style='font-size:12px;border-collapse:collapse'>"
                 "<tr><th style='text-align:left'>rule</th>"
                 "<th>nodes</th><th>racks</th><th>compute</th><th>all-reduce</th><th>comm share</th>"
                 "<th>ring hops</th><th>run time of a 1 h (packed) job</th></tr>"]
        for r in rows:
            style = " style='background:#fef3c7;font-weight:bold'" if r["rule"] == self.rule_picker.value else ""
            if "error" in r:
                lines.append(f"<tr{style}><td>{html.escape(r['rule'])}</td><td colspan=7>"
                             f"{html.escape(r['error'])}</td></tr>")
                continue
            st = r["step"]
            hops = ", ".join(f"{v} {html.escape(k)}" for k, v in r["hops"].items()) or "—"
            lines.append(f"<tr{style}><td>{html.escape(r['rule'])}</td><td>{r['nodes']}</td><td>{r['racks']}</td>"
                         f"<td>{st.compute * 1e3:.1f} ms</td><td>{st.comm * 1e3:.1f} ms</td>"
                         f"<td>{st.comm_fraction:.0%}</td><td>{hops}</td><td>{r['hours']:.2f} h</td></tr>")
        lines.append("</table>")
        self.costs.value = "".join(lines)

    def _svg(self, chosen: set) -> str:
        c = self.cluster
        size, gap = 14, 3
        racks = [r for r in c.racks if any(n.gpu == self.gpu and n.rack == r for n in c.nodes)]
        cols = {r: [i for i, n in enumerate(c.nodes) if n.rack == r and n.gpu == self.gpu] for r in racks}
        widest = max(c.nodes[i].num_gpus for r in racks for i in cols[r])
        col_w = 70 + widest * (size + gap) + 20
        height = 40 + max(len(v) for v in cols.values()) * (size + 12)
        parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{col_w * len(racks)}' height='{height}' "
                 f"font-family='sans-serif' font-size='11'>"]
        for k, r in enumerate(racks):
            x0 = k * col_w
            parts.append(f"<rect x='{x0 + 2}' y='2' width='{col_w - 8}' height='{height - 4}' fill='none' "
                         f"stroke='#9ca3af' rx='6'/><text x='{x0 + 10}' y='18' font-weight='bold'>rack {html.escape(r)}</text>")
            for row, i in enumerate(cols[r]):
                node = c.nodes[i]
                y = 30 + row * (size + 12)
                mine = sum(1 for g in range(c.node_first_gpu[i], c.node_first_gpu[i] + node.num_gpus) if g in chosen)
                parts.append(f"<text x='{x0 + 10}' y='{y + 11}'>{html.escape(node.name)}</text>")
                for j in range(node.num_gpus):
                    g = c.node_first_gpu[i] + j
                    state = "job" if g in chosen else "busy" if g in self.busy else "free"
                    fill = {"job": "#f59e0b", "busy": "#6b7280", "free": "#ffffff"}[state]
                    parts.append(f"<rect class='gpu' data-state='{state}' x='{x0 + 62 + j * (size + gap)}' y='{y}' "
                                 f"width='{size}' height='{size}' fill='{fill}' stroke='#374151'>"
                                 f"<title>{html.escape(c.gpu_label(g))}: {state}</title></rect>")
                if mine:
                    parts.append(f"<text x='{x0 + 66 + node.num_gpus * (size + gap)}' y='{y + 11}' fill='#b45309'>"
                                 f"{mine}</text>")
        parts.append("</svg>")
        key = ("<div style='font-size:11px'><span style='background:#f59e0b'>&nbsp;&nbsp;&nbsp;</span> this gang "
               "<span style='background:#6b7280'>&nbsp;&nbsp;&nbsp;</span> busy (other jobs) "
               "<span style='border:1px solid #374151'>&nbsp;&nbsp;&nbsp;</span> free</div>")
        return "".join(parts) + key

    def summary(self) -> str:
        n, model = self.size_slider.value, self.model_picker.value
        lines = [f"PlacementView: a gang of {n} {model} GPUs on {self.cluster.name} ({self.gpu}); "
                 f"{sum(self.free.values())} of {self.cluster.gpus_of_type(self.gpu)} GPUs free; "
                 f"rule shown: {self.rule_picker.value}"]
        for r in self.rows():
            if "error" in r:
                lines.append(f"  {r['rule']:<10} fails: {r['error']}")
                continue
            st = r["step"]
            lines.append(f"  {r['rule']:<10} {r['nodes']} nodes, {r['racks']} racks: step {st.total * 1e3:.1f} ms "
                         f"(all-reduce {st.comm * 1e3:.1f} ms, {st.comm_fraction:.0%}); a 1 h job takes "
                         f"{r['hours']:.2f} h")
        return "\n".join(lines)

