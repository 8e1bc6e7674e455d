"""PassStepper: scrub through a compiler pipeline and watch the graph change, pass by pass.

For each pass of a :class:`aisys.compiler.PassLog` (or a compiled function's ``pass_log``) it shows:

- by default (view "focus") what the pass changed, drawn at natural size so every label stays
  readable at JupyterLab's width: the removed nodes (red, dashed, with their old edges dotted), the
  added, fused and re-wired ones, and their direct inputs and users; every other node is collapsed
  into a "⋯ n unchanged nodes" box above or below. A graph wider than the pane scrolls (pan) instead
  of shrinking;
- (view "before | after") the graph *before* and *after* the pass, side by side, with every node kept in place across all
  steps: the layout is computed once (graphviz ``dot``) over the union of every node that exists at
  any step — node ids are never reused, so a node's id is its place — and each pane is then drawn
  with those positions pinned (``neato -n2``), framed to the nodes of that step (the same frame for
  both panes);
- removed nodes in red (dashed) in the before pane; added nodes in green, fused nodes in purple and
  re-wired nodes in yellow in the after pane, each labelled with the rule that fired;
- the rewrites (rule, what was removed and added, the rule's file:line) and the candidates the pass
  *rejected*, with the reason;
- a metric strip — node count, kernel launches, bytes moved — across the whole pipeline, with the
  current step marked;
- the generated kernel source of the fused groups the step created.

``.summary()`` is plain, deterministic text (what nbval compares).
"""
from __future__ import annotations

import html
import re

import ipywidgets as widgets

from aisys.compiler import PassLog, PassResult
from aisys.framework.graph import Graph, Node

from .graph import GRAPHVIZ_MISSING, HIGHLIGHT_COLOURS, node_label

__all__ = ["PassStepper", "union_layout", "pane_dot", "focus_dot"]

_LEAF_FILL = {"input": "#dbeafe", "param": "#fef3c7", "const": "#f3f4f6"}
_METRICS = (("nodes", "nodes"), ("kernels", "kernels"), ("bytes_moved", "bytes moved"))


def _q(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _label(n: Node) -> str:
    if n.op == "fused":
        ops = "+".join(n.attrs.get("ops", ()))
        if len(ops) > 28:
            ops = ops[:27] + "…"
        return f"%{n.id} fused {n.attrs.get('kind', '')}\n{ops}\n{n.type_str()}"
    return f"%{n.id} " + node_label(n, show_attrs=False)


def _graphs(log: PassLog) -> list[Graph]:
    gs = [log.initial] if log.initial is not None else [log[0].before]
    return gs + [r.graph for r in log]


def union_layout(graphs: list[Graph]) -> tuple[dict[int, tuple[float, float]], dict[int, Node]]:
    """Positions (points) for every node id that appears in any of ``graphs``, from one ``dot`` layout
    of their union, plus the latest version of each node (for its label)."""
    import graphviz

    nodes: dict[int, Node] = {}
    edges: dict[tuple[int, int], None] = {}
    for g in graphs:
        for n in g.nodes.values():
            nodes[n.id] = n
            for i in n.inputs:
                edges[(i, n.id)] = None
    lines = ["digraph U {", "  graph [rankdir=TB, nodesep=0.25, ranksep=0.35];",
             "  node [shape=box, fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.04\", height=0.3];"]
    order = sorted(nodes)
    for i in order:
        lines.append(f"  n{i} [label={_q(_label(nodes[i]))}];")
    for a, b in edges:
        lines.append(f"  n{a} -> n{b};")
    lines.append("}")
    plain = graphviz.Source("\n".join(lines)).pipe(format="plain", encoding="utf-8")
    pos: dict[int, tuple[float, float]] = {}
    for line in plain.splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            pos[int(parts[1][1:])] = (round(float(parts[2]) * 72, 1), round(float(parts[3]) * 72, 1))
    return pos, nodes


def pane_dot(graph: Graph, pos: dict, highlight: dict[int, str], notes: dict[int, str], title: str,
             show_rules: bool = True, ghosts: Graph | None = None, extent=None) -> str:
    """DOT text of one pane: ``graph``'s nodes at pinned positions, coloured by ``highlight`` roles, with
    ``notes`` (the rule that fired) as tooltips and, when ``show_rules``, as external labels.

    ``ghosts`` (the graph before the pass) adds its nodes that ``graph`` lacks, dashed, with their old
    edges dotted: a one-pane diff. ``extent`` (node ids) sets the drawn frame: the panes of one step
    share it, so a node sits at the same spot in both."""
    if ghosts is not None:
        merged = Graph(graph.name)
        merged.nodes = dict(graph.nodes)
        gone = [n for n in ghosts.nodes.values() if n.id not in graph.nodes]
        for n in gone:
            merged.nodes[n.id] = n
        merged.outputs = list(graph.outputs)
        old_edges = {(i, n.id) for n in gone for i in n.inputs}
        gone_ids = {n.id for n in gone}
        old_edges |= {(i, n.id) for n in ghosts.nodes.values() for i in n.inputs if i in gone_ids}
        return _pane_lines(merged, pos, highlight, notes, title, show_rules, old_edges, extent)
    return _pane_lines(graph, pos, highlight, notes, title, show_rules, set(), extent)


def _pane_lines(graph: Graph, pos, highlight, notes, title, show_rules, old_edges, extent=None) -> str:
    lines = ["digraph P {",
             f"  graph [label={_q(title)}, labelloc=t, fontname=\"Helvetica\", fontsize=11, splines=true, outputorder=edgesfirst];",
             "  node [shape=box, fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.04\", height=0.3, style=filled, "
             "fillcolor=\"#ffffff\", color=\"#374151\"];",
             "  edge [color=\"#6b7280\", arrowsize=0.6];"]
    for n in graph.nodes.values():
        x, y = pos.get(n.id, (0.0, 0.0))
        props = {"label": _label(n), "pos": f"{x},{y}!"}
        if n.is_leaf:
            props["fillcolor"] = _LEAF_FILL[n.op]
            props["style"] = "filled,rounded" if n.op != "const" else "filled,dashed"
        role = highlight.get(n.id)
        if role:
            props["fillcolor"] = HIGHLIGHT_COLOURS[role]
            props["penwidth"] = "2"
            if role == "removed":
                props["style"] = "filled,dashed"
                props["fontcolor"] = "#991b1b"
        if n.id in notes:
            props["tooltip"] = f"rule: {notes[n.id]}"
            if show_rules:
                props["xlabel"] = notes[n.id]
            props["fontcolor"] = props.get("fontcolor", "#111827")
        if n.id in graph.outputs:
            props["peripheries"] = "2"
        lines.append(f"  n{n.id} [{', '.join(f'{k}={_q(v)}' for k, v in props.items())}];")
    for n in graph.nodes.values():
        for i in n.inputs:
            if i in graph.nodes and (i, n.id) not in old_edges:
                lines.append(f"  n{i} -> n{n.id};")
    for i, j in sorted(old_edges):
        if i in graph.nodes and j in graph.nodes:
            lines.append(f"  n{i} -> n{j} [style=dotted, color=\"#dc2626\"];")
    if pos:       # invisible corners: both panes of a step get the same extent and scale
        frame = [pos[i] for i in (extent or pos) if i in pos]
        xs, ys = [p[0] for p in frame], [p[1] for p in frame]
        for k, (x, y) in enumerate(((min(xs) - 60, min(ys) - 20), (max(xs) + 60, max(ys) + 20))):
            lines.append(f"  corner{k} [style=invis, label=\"\", width=0.01, height=0.01, pos=\"{x},{y}!\"];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def focus_dot(res: PassResult, show_rules: bool = True) -> str | None:
    """DOT text of what one pass changed: the changed nodes (removed ones as dashed ghosts), their direct
    inputs and users, and two boxes standing for the unchanged nodes above and below. ``None`` when the
    pass changed nothing. Laid out afresh by ``dot`` and drawn at natural size (labels stay legible)."""
    before_hl, after_hl, before_notes, after_notes = step_roles(res)
    roles = {**before_hl, **after_hl}
    notes = {**before_notes, **after_notes}
    if not roles:
        return None
    nodes = dict(res.graph.nodes)
    gone = {i: n for i, n in res.before.nodes.items() if i not in nodes}
    nodes.update(gone)
    edges = {(i, n.id): "new" for n in res.graph.nodes.values() for i in n.inputs}
    for n in res.before.nodes.values():
        for i in n.inputs:
            if (n.id in gone or i in gone) and (i, n.id) not in edges:
                edges[(i, n.id)] = "old"
    users: dict[int, set[int]] = {}
    for a, b in edges:
        users.setdefault(a, set()).add(b)
    shown = set(roles)
    for i in list(roles):
        shown |= {a for a, b in edges if b == i} | users.get(i, set())
    shown &= set(nodes)
    hidden = set(nodes) - shown

    def reach(start: set[int], step) -> set[int]:
        seen, todo = set(), list(start)
        while todo:
            for j in step(todo.pop()):
                if j in hidden and j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen

    above = reach(shown, lambda j: [a for a, b in edges if b == j])
    below = reach(shown, lambda j: users.get(j, ())) - above
    # removed leaves (a folded BN's four statistics, a conv's old weight) that fed only one removed node
    # are drawn as one box under that node's name instead of a wide row of boxes
    grouped: dict[int, list[int]] = {}
    for i in sorted(shown):
        readers = users.get(i, set()) & shown
        if nodes[i].is_leaf and roles.get(i) == "removed" and len(readers) == 1:
            (reader,) = readers
            if roles.get(reader) == "removed":
                grouped.setdefault(reader, []).append(i)
    grouped = {r: ids for r, ids in grouped.items() if len(ids) > 1}
    in_group = {i: r for r, ids in grouped.items() for i in ids}
    lines = ["digraph F {",
             '  graph [rankdir=TB, nodesep=0.3, ranksep=0.35, fontname="Helvetica", fontsize=11];',
             '  node [shape=box, fontname="Helvetica", fontsize=11, margin="0.1,0.05", height=0.3, style=filled, '
             'fillcolor="#ffffff", color="#374151"];',
             '  edge [color="#6b7280", arrowsize=0.6];']
    for r, ids in grouped.items():
        names = "\n".join(f"%{i} {nodes[i].op} {nodes[i].name or ''}".rstrip() for i in ids)
        props = {"label": f"{len(ids)} removed leaves\n{names}", "style": "filled,dashed", "fontcolor": "#991b1b",
                 "fillcolor": HIGHLIGHT_COLOURS["removed"], "penwidth": "2"}
        lines.append(f"  g{r} [{', '.join(f'{k}={_q(v)}' for k, v in props.items())}];")
        lines.append(f'  g{r} -> n{r} [style=dotted, color="#dc2626"];')
    for i in sorted(shown):
        if i in in_group:
            continue
        n = nodes[i]
        props = {"label": _label(n)}
        if n.is_leaf:
            props["fillcolor"] = _LEAF_FILL[n.op]
            props["style"] = "filled,rounded" if n.op != "const" else "filled,dashed"
        role = roles.get(i)
        if role:
            props.update(fillcolor=HIGHLIGHT_COLOURS[role], penwidth="2")
            if role == "removed":
                props.update(style="filled,dashed", fontcolor="#991b1b")
        if i in notes:
            props["tooltip"] = f"rule: {notes[i]}"
            if show_rules:
                props["xlabel"] = notes[i]
        if i in res.graph.outputs:
            props["peripheries"] = "2"
        lines.append(f"  n{i} [{', '.join(f'{k}={_q(v)}' for k, v in props.items())}];")
    box = {"shape": "box", "style": "dashed,rounded", "color": "#9ca3af", "fontcolor": "#6b7280"}
    for name, group in (("above", above), ("below", below)):
        if group:
            props = {**box, "label": f"⋯ {len(group)} unchanged node{'s' * (len(group) != 1)}"}
            lines.append(f"  {name} [{', '.join(f'{k}={_q(v)}' for k, v in props.items())}];")
    linked = set()
    for (a, b), kind in sorted(edges.items()):
        style = ' [style=dotted, color="#dc2626"]' if kind == "old" else ""
        if a in in_group or b in in_group:
            continue
        if a in shown and b in shown:
            lines.append(f"  n{a} -> n{b}{style};")
        elif a in above and b in shown and ("above", b) not in linked:
            linked.add(("above", b))
            lines.append(f'  above -> n{b} [style=dashed, color="#9ca3af"];')
        elif a in shown and b in below and (a, "below") not in linked:
            linked.add((a, "below"))
            lines.append(f'  n{a} -> below [style=dashed, color="#9ca3af"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _svg(dot: str) -> str:
    import graphviz

    try:
        svg = graphviz.Source(dot, engine="neato").pipe(format="svg", encoding="utf-8", neato_no_op=2)
    except graphviz.ExecutableNotFound:
        return GRAPHVIZ_MISSING
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    svg = re.sub(r"<!-- Generated by graphviz[^>]*-->\s*", "", svg)
    # scale to the pane's width (the viewBox keeps the aspect ratio), never above natural size
    m = re.match(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if m:
        svg = svg.replace(m.group(0), f'<svg style="width:100%;max-width:{m.group(1)}pt;height:auto"', 1)
    return svg


def _natural_svg(dot: str) -> str:
    """Inline SVG of ``dot`` at its natural size (10-11 pt labels); a wide graph scrolls in its pane."""
    import graphviz

    try:
        svg = graphviz.Source(dot).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        return GRAPHVIZ_MISSING
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    return re.sub(r"<!-- Generated by graphviz[^>]*-->\s*", "", svg)


def _fmt_bytes(n: int) -> str:
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{n} B"


def step_roles(res: PassResult) -> tuple[dict, dict, dict, dict]:
    """(before highlight, after highlight, before notes, after notes) for one pass: which nodes were
    removed / added / fused / re-wired, and the rule that did it."""
    before_hl, after_hl, before_notes, after_notes = {}, {}, {}, {}
    for w in res.rewrites:
        for i in w.removed:
            if i in res.before.nodes:
                before_hl[i] = "removed"
                before_notes[i] = w.rule
        for i in w.added:
            if i in res.graph.nodes:
                after_hl[i] = "fused" if res.graph.nodes[i].op == "fused" else "added"
                after_notes[i] = w.rule
        for i in w.changed:
            if i in res.graph.nodes and i not in after_hl:
                after_hl[i] = "changed"
                after_notes.setdefault(i, w.rule)
    return before_hl, after_hl, before_notes, after_notes


class PassStepper(widgets.VBox):
    """Step through a pass pipeline: before/after graphs, rewrites, rejected candidates, metrics, kernels.

    ``PassStepper(compiled)`` takes what ``aisys.compile`` returns, a :class:`PassLog`, or a list of
    PassResults. ``skip_unchanged`` (a checkbox) hides the passes that changed nothing.
    """

    def __init__(self, source, *, skip_unchanged: bool = True, graphs: bool = True, view: str = "focus"):
        log = getattr(source, "pass_log", source)
        if isinstance(log, list) and not isinstance(log, PassLog):
            log = PassLog(log, initial=log[0].before if log else None)
        if not isinstance(log, PassLog):
            raise TypeError(f"PassStepper expects a compiled function (aisys.compile), a PassLog or a list of "
                            f"PassResults, got {type(source).__name__}")
        if not len(log):
            raise ValueError("PassStepper: the pass log is empty — run at least one pass "
                             "(e.g. aisys.compiler.run_passes(graph, [aisys.compiler.dce]))")
        self.pass_log = log
        self.compiled = source if hasattr(source, "pass_log") else None
        self._draw_graphs = graphs
        self._pos, _ = union_layout(_graphs(log)) if graphs else ({}, {})
        self._svg_cache: dict[tuple, str] = {}

        views = ["focus", "before | after", "diff"]
        if view not in views:
            raise ValueError(f"PassStepper: view must be one of {views}, got {view!r}")
        self.view = widgets.ToggleButtons(options=views, value=view, description="view",
                                          style={"button_width": "110px"},
                                          tooltips=["what the pass changed, at a readable size (scrolls when wide)",
                                                    "the whole graph before and after, nodes kept in place",
                                                    "the whole graph, one pane, removed nodes dashed"])
        self.skip_box = widgets.Checkbox(value=skip_unchanged, description="skip passes that changed nothing",
                                         indent=False)
        self.slider = widgets.IntSlider(min=0, max=0, value=0, description="pass", continuous_update=False)
        self.play = widgets.Play(min=0, max=0, value=0, interval=1500, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.header = widgets.HTML()
        self.panes = widgets.HTML()
        self.strip = widgets.HTML()
        self.rewrites_box = widgets.HTML()
        self.rejected_box = widgets.HTML()
        self.kernel_box = widgets.HTML()
        self.slider.observe(self._on_slider, names="value")
        self.skip_box.observe(self._on_skip, names="value")
        self.view.observe(self._on_slider, names="value")
        super().__init__([widgets.HBox([self.play, self.slider, self.skip_box]), self.view, self.header, self.strip,
                          self.panes, self.rewrites_box, self.rejected_box, self.kernel_box])
        self.add_class("aisys-pass-stepper")   # the browser test finds the widget by it
        self._apply_filter()

    # ---- navigation --------------------------------------------------------------------------------
    @property
    def visible(self) -> list[int]:
        """Indices (into the log) of the passes the slider walks through."""
        return self._visible

    @property
    def step(self) -> int:
        """The slider position (0-based among the visible passes)."""
        return self.slider.value

    @property
    def result(self) -> PassResult:
        return self.pass_log[self._visible[self.slider.value]]

    def go(self, step: int) -> None:
        """Move to visible pass ``step`` (what dragging the slider does)."""
        if not 0 <= step < len(self._visible):
            raise IndexError(f"step {step} is out of range: this pipeline shows {len(self._visible)} passes "
                             f"(0..{len(self._visible) - 1})")
        self.slider.value = step
        if self._shown != self._visible[step]:
            self._render()

    def _apply_filter(self) -> None:
        vis = [k for k, r in enumerate(self.pass_log) if r.changed or not self.skip_box.value]
        self._visible = vis or [len(self.pass_log) - 1]
        self._shown = None
        n = len(self._visible) - 1
        self.slider.max = self.play.max = max(n, 0)
        if self.slider.value > n:
            self.slider.value = n
        self._render()

    def _on_slider(self, change) -> None:
        self._render()

    def _on_skip(self, change) -> None:
        self._apply_filter()

    # ---- drawing -----------------------------------------------------------------------------------
    def _pane_svg(self, key, graph, hl, notes, title, ghosts=None) -> str:
        if key not in self._svg_cache:
            several_rules = len(set(notes.values())) > 1      # one rule only: the header already names it
            res = self.pass_log[key[1]]
            extent = set(res.before.nodes) | set(res.graph.nodes)
            self._svg_cache[key] = _svg(pane_dot(graph, self._pos, hl, notes, title, show_rules=several_rules,
                                                 ghosts=ghosts, extent=extent))
        return self._svg_cache[key]

    def _render(self) -> None:
        k = self._visible[self.slider.value]
        self._shown = k
        res = self.pass_log[k]
        bhl, ahl, bnotes, anotes = step_roles(res)
        loc = html.escape(res.location)
        self.header.value = (f"<b>pass {self.slider.value + 1}/{len(self._visible)}: {html.escape(res.label)}</b> "
                             f"— {'changed' if res.changed else 'no change'}; {len(res.rewrites)} rewrites, "
                             f"{len(res.rejected)} rejected <span style='color:#6b7280'>({loc})</span>")
        if self._draw_graphs and self.view.value == "focus":
            legend = " ".join(f"<span style='background:{HIGHLIGHT_COLOURS[r]};padding:1px 6px;border-radius:3px'>{r}</span>"
                              for r in ("removed", "added", "fused", "changed"))
            key = ("f", k)
            if key not in self._svg_cache:
                dot = focus_dot(res, show_rules=len({w.rule for w in res.rewrites}) > 1)
                self._svg_cache[key] = (_natural_svg(dot) if dot is not None else
                                        f"<div style='padding:8px;color:#6b7280'>{html.escape(res.label)} changed "
                                        f"nothing: the graph keeps its {res.metrics.nodes} nodes (the rejected "
                                        f"candidates below say why)</div>")
            self.panes.value = (f"<div style='font-size:11px'>{legend} <span style='color:#6b7280'>— what the pass "
                                f"changed, with its inputs and users; dashed boxes stand for unchanged nodes</span>"
                                f"</div><div style='border:1px solid #d1d5db;padding:2px;overflow:auto;"
                                f"max-height:720px'>{self._svg_cache[key]}</div>")
        elif self._draw_graphs and self.view.value == "diff":
            legend = " ".join(f"<span style='background:{HIGHLIGHT_COLOURS[r]};padding:1px 6px;border-radius:3px'>{r}</span>"
                              for r in ("removed", "added", "fused", "changed"))
            diff = self._pane_svg(("d", k), res.graph, {**bhl, **ahl}, {**bnotes, **anotes},
                                  f"{res.label}: removed nodes dashed", ghosts=res.before)
            self.panes.value = (f"<div style='font-size:11px'>{legend}</div>"
                                f"<div style='border:1px solid #d1d5db;padding:2px'>{diff}</div>")
        elif self._draw_graphs:
            before = self._pane_svg(("b", k), res.before, bhl, bnotes, f"before {res.label}")
            after = self._pane_svg(("a", k), res.graph, ahl, anotes, f"after {res.label}")
            legend = " ".join(f"<span style='background:{HIGHLIGHT_COLOURS[r]};padding:1px 6px;border-radius:3px'>{r}</span>"
                              for r in ("removed", "added", "fused", "changed"))
            self.panes.value = (f"<div style='font-size:11px'>{legend}</div>"
                                "<div style='display:flex;gap:8px;align-items:flex-start'>"
                                f"<div style='flex:1 1 0;min-width:0;border:1px solid #d1d5db;padding:2px'>{before}</div>"
                                f"<div style='flex:1 1 0;min-width:0;border:1px solid #d1d5db;padding:2px'>{after}</div></div>")
        self.strip.value = self._strip_html(k)
        rw = "".join(f"<li><b>{html.escape(w.rule)}</b> {html.escape(w.note)}"
                     f"{' — removed ' + ', '.join('%' + str(i) for i in w.removed) if w.removed else ''}"
                     f"{' — added ' + ', '.join('%' + str(i) for i in w.added) if w.added else ''}"
                     f" <code style='color:#6b7280'>{html.escape(w.location)}</code></li>" for w in res.rewrites)
        self.rewrites_box.value = f"<b>rewrites</b><ul style='margin:2px'>{rw or '<li>none</li>'}</ul>"
        rej = "".join(f"<li>cannot {html.escape(d.candidate)}: {html.escape(d.reason)}</li>" for d in res.rejected)
        none = "<li style='color:#6b7280'>none</li>"
        self.rejected_box.value = (f"<b>rejected candidates</b><ul style='margin:2px;color:#991b1b'>"
                                   f"{rej or none}</ul>")
        srcs = self.kernel_sources(k)
        self.kernel_box.value = "".join(
            f"<details open><summary>generated kernel for {html.escape(name)}</summary>"
            f"<pre style='font-size:11px;background:#f9fafb'>{html.escape(src)}</pre></details>"
            for name, src in srcs.items())

    def _strip_html(self, current: int) -> str:
        """One small bar chart per metric over the visible passes, the current one outlined."""
        steps = [self.pass_log[k] for k in self._visible]
        rows = []
        for key, title in _METRICS:
            vals = [getattr(self.pass_log[0].metrics_before, key)] + [getattr(r.metrics, key) for r in steps]
            top = max(vals) or 1
            w, h, gap = 14, 34, 3
            bars = []
            for j, v in enumerate(vals):
                bh = max(1.0, h * v / top)
                cur = j - 1 == self._visible.index(current)
                colour = "#7c3aed" if cur else ("#9ca3af" if j == 0 else "#c4b5fd")
                bars.append(f"<rect x='{j * (w + gap)}' y='{h - bh:.1f}' width='{w}' height='{bh:.1f}' fill='{colour}'>"
                            f"<title>{'input' if j == 0 else steps[j - 1].label}: {v}</title></rect>")
            cur_v = getattr(self.pass_log[current].metrics, key)
            shown = _fmt_bytes(cur_v) if key == "bytes_moved" else str(cur_v)
            svg = (f"<svg width='{len(vals) * (w + gap)}' height='{h}' style='vertical-align:middle'>"
                   + "".join(bars) + "</svg>")
            rows.append(f"<div style='display:inline-block;margin-right:18px'><div style='font-size:11px'>"
                        f"{title}: <b>{shown}</b> (input {vals[0] if key != 'bytes_moved' else _fmt_bytes(vals[0])})"
                        f"</div>{svg}</div>")
        return "<div>" + "".join(rows) + "</div>"

    def kernel_sources(self, k: int | None = None) -> dict[str, str]:
        """Generated source of the fused nodes that pass ``k`` created (the current pass by default)."""
        return self.pass_log[self._shown if k is None else k].kernels

    # ---- text ----------------------------------------------------------------------------------------
    def summary(self) -> str:
        res = self.result
        lines = [f"PassStepper: {len(self.pass_log)} passes ({len(self._visible)} shown), at pass {self.slider.value + 1}: "
                 f"{res.label} ({'changed' if res.changed else 'no change'})",
                 "metrics: " + ", ".join(f"{t} {getattr(res.metrics_before, k)}→{getattr(res.metrics, k)}"
                                         for k, t in _METRICS)]
        lines += ["rewrite: " + w.describe(location=False) for w in res.rewrites]
        lines += ["rejected: " + str(d) for d in res.rejected]
        for name, src in self.kernel_sources().items():
            head = next((ln for ln in src.splitlines() if ln.startswith("# aisys fused")), src.splitlines()[0])
            lines.append(f"kernel {name}: {head.lstrip('# ')}")
        return "\n".join(lines)
