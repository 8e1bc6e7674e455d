"""GraphView: draw an aisys Graph — or the autograd graph of any Tensor — with graphviz.

Reusable pieces for every widget that shows a graph (pass diffs, fusion groups, memory plans):

- :func:`graph_to_dot` turns a :class:`aisys.framework.graph.Graph` into DOT text. Node names are
  stable (``n<id>``), so two drawings of the same graph before and after a pass line up; each node
  shows its op and its type (``matmul\\nf32[64,10]``); leaves (input / param / const) have their own
  shapes and colours; ``highlight`` colours nodes by role ("added", "removed", "changed", "fused",
  "backward", "right", "wrong") or by any CSS colour. Subgraphs held in attrs (the branches of
  ``cond``, the body of ``while_loop``) are drawn as dashed clusters next to their node.
- :func:`dot_to_svg` runs graphviz's ``dot -Tsvg`` and returns inline SVG (or an HTML note saying how
  to install graphviz when ``dot`` is missing).
- :class:`GraphView` is the widget: an ipywidgets VBox with the SVG, a direction toggle, an attrs
  switch and — for a tensor — a forward / forward+backward switch. ``.summary()`` is plain text.
- :class:`GraphPanes` puts several graphs side by side, each pane with a verdict colour.
- :class:`CaptureCompare` is lab 03's visual moment: eager / traced / scripted panes for one function;
  switch the input and the traced graph turns red when it silently gives a wrong answer.
"""
from __future__ import annotations

import html
import re
from typing import Mapping

import ipywidgets as widgets

from aisys.framework.graph import Graph, Node, format_attr
from aisys.framework.tensor import Tensor

__all__ = ["graph_to_dot", "dot_to_svg", "graph_svg", "GraphView", "GraphPanes", "CaptureCompare",
           "HIGHLIGHT_COLOURS", "GRAPHVIZ_MISSING", "describe_graph"]

HIGHLIGHT_COLOURS = {
    "added": "#bbf7d0",      # green: a pass created it
    "removed": "#fecaca",    # red: a pass deleted it (drawn dashed)
    "changed": "#fde68a",    # yellow: rewritten in place
    "fused": "#ddd6fe",      # purple: part of a fusion group
    "backward": "#fed7aa",   # orange: written by autodiff (VJP ops)
    "right": "#86efac",      # verdicts in lab 03: the output agrees with eager execution
    "wrong": "#f87171",      #                     the output silently differs
}
_LEAF_STYLE = {
    "input": dict(shape="ellipse", style="filled", fillcolor="#dbeafe", color="#1d4ed8"),
    "param": dict(shape="box", style="filled,rounded", fillcolor="#fef3c7", color="#b45309"),
    "const": dict(shape="box", style="filled,dashed", fillcolor="#f3f4f6", color="#6b7280"),
}
_OP_STYLE = dict(shape="box", style="filled", fillcolor="#ffffff", color="#374151")
_CONTROL_FLOW_STYLE = dict(shape="hexagon", style="filled", fillcolor="#e0f2fe", color="#0369a1")

GRAPHVIZ_MISSING = ("<div style='padding:6px;border:1px solid #b45309;background:#fef3c7'>"
                    "<b>graphviz's <code>dot</code> program is not installed</b>, so the graph cannot be drawn. "
                    "Install it with <code>apt-get install graphviz</code> (Debian/Ubuntu), "
                    "<code>brew install graphviz</code> (macOS) or <code>conda install graphviz</code>, "
                    "then re-run this cell. The text form of the graph is below.</div>")


def _q(text: str) -> str:
    """A DOT double-quoted string (newlines become DOT's centred line breaks)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs_text(node: Node, limit: int = 48) -> str:
    parts = []
    for k, v in node.attrs.items():
        if k.startswith("_") or isinstance(v, Graph):
            continue
        parts.append(f"{k}={format_attr(v)}")
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _const_text(node: Node) -> str:
    if node.value is not None and node.numel == 1:
        v = node.value.reshape(()).item()
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    return ""


def node_label(node: Node, show_attrs: bool = True) -> str:
    """Two or three lines: what the node is, its type, and (optionally) its attributes."""
    if node.op == "input":
        head = f"input {node.name}"
    elif node.op == "param":
        head = f"param {node.name}"
    elif node.op == "const":
        c = _const_text(node)
        head = f"const {c}" if c else "const"
    else:
        head = node.op
    lines = [head, node.type_str()]
    if show_attrs and not node.is_leaf:
        a = _attrs_text(node)
        if a:
            lines.append(a)
    return "\n".join(lines)


def _style(node: Node, colour: str | None) -> dict:
    if node.is_leaf:
        st = dict(_LEAF_STYLE[node.op])
    elif any(isinstance(v, Graph) for v in node.attrs.values()):
        st = dict(_CONTROL_FLOW_STYLE)
    else:
        st = dict(_OP_STYLE)
    if colour is not None:
        st["fillcolor"] = HIGHLIGHT_COLOURS.get(colour, colour)
        st["penwidth"] = "2"
        if colour == "removed":
            st["style"] = st["style"].replace("filled", "filled,dashed") if "dashed" not in st["style"] else st["style"]
    return st


def _fmt_props(props: dict) -> str:
    return ", ".join(f"{k}={_q(v)}" for k, v in props.items())


def _emit_nodes(graph: Graph, prefix: str, highlight: Mapping[int, str], show_attrs: bool, lines: list[str],
                depth: int) -> None:
    pad = "  " * depth
    used = {i for n in graph.nodes.values() for i in n.inputs} | set(graph.outputs)
    for n in graph.nodes.values():
        if depth > 1 and n.op == "input" and n.id not in used:
            continue                 # a branch that ignores an operand: nothing to draw
        props = {"label": node_label(n, show_attrs), **_style(n, highlight.get(n.id))}
        if n.source:
            props["tooltip"] = n.source
        lines.append(f"{pad}{prefix}{n.id} [{_fmt_props(props)}];")
    for n in graph.nodes.values():          # subgraphs after all nodes: clusters then keep to themselves
        for k, v in n.attrs.items():
            if isinstance(v, Graph):
                sub = f"{prefix}{n.id}_{k}_"
                lines.append(f"{pad}subgraph cluster_{sub.rstrip('_')} {{")
                lines.append(f"{pad}  label={_q(f'{k} of %{n.id} ({n.op})')}; style=dashed; color=\"#0369a1\"; "
                             f"fontsize=9;")
                _emit_nodes(v, sub, {}, show_attrs, lines, depth + 1)
                _emit_edges(v, sub, lines, depth + 1)
                lines.append(f"{pad}}}")
                for o in v.outputs:     # outside the cluster block, or DOT would pull the op node into it
                    lines.append(f"{pad}{sub}{o} -> {prefix}{n.id} [style=dashed, color=\"#0369a1\"];")


def _emit_edges(graph: Graph, prefix: str, lines: list[str], depth: int) -> None:
    pad = "  " * depth
    for n in graph.nodes.values():
        multi = len(n.inputs) > 1
        for k, i in enumerate(n.inputs):
            if i in graph.nodes:
                extra = f" [taillabel=\"\", headlabel={_q(k)}, labelfontsize=8, labelfontcolor=\"#9ca3af\"]" \
                    if multi and n.op in ("sub", "div", "pow", "matmul", "where", "concat", "lt", "gt", "le", "ge",
                                          "cond", "while_loop") else ""
                lines.append(f"{pad}{prefix}{i} -> {prefix}{n.id}{extra};")


def graph_to_dot(graph: Graph, *, highlight: Mapping[int, str] | None = None, title: str | None = None,
                 show_attrs: bool = True, rankdir: str = "TB", output_names: list[str] | None = None) -> str:
    """DOT text for ``graph``: nodes ``n<id>`` labelled op and type, leaves styled, outputs marked.

    ``highlight`` maps node ids to a role ("added", "removed", "changed", "fused", "backward", "right",
    "wrong") or a CSS colour. ``output_names`` labels the output markers (default: the graph's own
    ``output_names`` attribute when tracing set one, else "output k").
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph_to_dot expects an aisys Graph, got {type(graph).__name__}; "
                        f"for a tensor use GraphView(tensor) or aisys.frontend.graph_of_tape(tensor)")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be one of TB, LR, BT, RL, got {rankdir!r}")
    highlight = dict(highlight or {})
    names = output_names or getattr(graph, "output_names", None) or []
    lines = ["digraph G {",
             f"  graph [rankdir={rankdir}, fontname=\"Helvetica\", fontsize=11, nodesep=0.25, ranksep=0.3"
             + (f", label={_q(title)}, labelloc=t" if title else "") + "];",
             "  node [fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.04\", height=0.3];",
             "  edge [color=\"#6b7280\", arrowsize=0.6];"]
    _emit_nodes(graph, "n", highlight, show_attrs, lines, 1)
    _emit_edges(graph, "n", lines, 1)
    for k, o in enumerate(graph.outputs):
        label = names[k] if k < len(names) else f"output {k}"
        lines.append(f"  out{k} [label={_q(label)}, shape=plaintext, fontsize=9, fontcolor=\"#374151\"];")
        lines.append(f"  n{o} -> out{k} [style=dotted, arrowhead=none];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_to_svg(dot: str) -> str:
    """Inline SVG for ``dot`` (via graphviz's ``dot -Tsvg``), or an HTML note when ``dot`` is missing."""
    import graphviz

    try:
        svg = graphviz.Source(dot).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        return GRAPHVIZ_MISSING
    except graphviz.CalledProcessError as e:
        raise ValueError(f"graphviz could not lay out this DOT text: {e.stderr!r}") from None
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    return re.sub(r"<!-- Generated by graphviz[^>]*-->\s*", "", svg)


def graph_svg(graph: Graph, **kw) -> str:
    """Shorthand: ``dot_to_svg(graph_to_dot(graph, **kw))``."""
    return dot_to_svg(graph_to_dot(graph, **kw))


def _listing(graph: Graph, limit: int = 60) -> str:
    lines = str(graph).splitlines()
    if len(lines) > limit:
        lines = lines[:limit - 1] + [f"  … ({len(lines) - limit + 1} more lines)", lines[-1]]
    return "\n".join(lines)


def describe_graph(graph: Graph, limit: int = 60) -> str:
    """Deterministic text for nbval: the one-line summary, warnings, updates and the listing."""
    out = [graph.summary()]
    for w in getattr(graph, "warnings", None) or []:
        out.append(f"warning: {w}")
    ups = getattr(graph, "updates", None) or {}
    if ups:
        out.append("updates: " + ", ".join(f"{k} <- %{v}" for k, v in ups.items()))
    out.append(_listing(graph, limit))
    return "\n".join(out)


class GraphView(widgets.VBox):
    """The graph of a Graph or of a Tensor's autograd tape, drawn with graphviz.

    ``GraphView(tensor)`` walks the tensor's ``_ctx`` records (op, shape, dtype on each node);
    ``backward=True`` (or the switch) adds the VJP ops a reverse sweep records. ``GraphView(graph)``
    draws a Graph as is. ``highlight`` colours nodes ({id: "added" | … | css colour}).
    """

    def __init__(self, tensor_or_graph, backward: bool = False, *, names: dict | None = None,
                 highlight: Mapping[int, str] | None = None, title: str | None = None, rankdir: str = "TB",
                 show_attrs: bool = True):
        self._source = tensor_or_graph
        self._names = names
        self._highlight = dict(highlight or {})
        self._title = title
        if isinstance(tensor_or_graph, Tensor):
            self.is_tensor = True
        elif isinstance(tensor_or_graph, Graph):
            self.is_tensor = False
        else:
            raise TypeError(f"GraphView expects an aisys Tensor or Graph, got {type(tensor_or_graph).__name__}; "
                            f"capture a function first with aisys.trace(fn, *example_inputs)")
        self.mode = widgets.ToggleButtons(options=["forward", "forward + backward"],
                                          value="forward + backward" if backward else "forward",
                                          description="graph", style={"button_width": "150px"})
        self.direction = widgets.ToggleButtons(options=["TB", "LR"], value=rankdir, description="direction",
                                               style={"button_width": "50px"})
        self.attrs_box = widgets.Checkbox(value=show_attrs, description="show attrs", indent=False)
        self.caption = widgets.HTML()
        self.picture = widgets.HTML()
        self.listing = widgets.HTML()
        controls = [self.direction, self.attrs_box]
        if self.is_tensor:
            controls.insert(0, self.mode)
            self.mode.observe(self._redraw, names="value")
        self.direction.observe(self._redraw, names="value")
        self.attrs_box.observe(self._redraw, names="value")
        super().__init__([widgets.HBox(controls), self.caption, self.picture, self.listing])
        self.add_class("aisys-graph-view")   # the browser test finds the widget by it
        self._redraw()

    @property
    def backward(self) -> bool:
        return self.mode.value != "forward"

    @property
    def graph(self) -> Graph:
        return self._graph

    def _build_graph(self) -> tuple[Graph, dict]:
        if not self.is_tensor:
            return self._source, dict(self._highlight)
        from aisys.frontend import graph_of_tape
        g = graph_of_tape(self._source, backward=self.backward, names=self._names)
        hl = {i: "backward" for i in getattr(g, "backward_ids", [])}
        hl.update(self._highlight)
        return g, hl

    def _redraw(self, change=None) -> None:
        self._graph, hl = self._build_graph()
        self.dot = graph_to_dot(self._graph, highlight=hl, title=self._title, show_attrs=self.attrs_box.value,
                                rankdir=self.direction.value)
        self.picture.value = dot_to_svg(self.dot)
        notes = "".join(f"<div style='color:#b91c1c'>⚠ {html.escape(w)}</div>"
                        for w in getattr(self._graph, "warnings", None) or [])
        self.caption.value = f"<b>{html.escape(self._graph.summary())}</b>{notes}"
        self.listing.value = ("<details><summary>text form</summary><pre style='font-size:11px'>"
                              + html.escape(_listing(self._graph)) + "</pre></details>")

    def summary(self) -> str:
        head = f"GraphView ({'tensor, ' + self.mode.value if self.is_tensor else 'graph'}, {self.direction.value})"
        return head + "\n" + describe_graph(self._graph)


class GraphPanes(widgets.VBox):
    """Several graphs side by side, each with a verdict ("right" green / "wrong" red / None).

    ``panes`` maps a title to a Graph or Tensor; ``verdicts`` maps a title to "right" or "wrong" and
    colours that pane's border and output nodes; ``notes`` adds a line of text under a pane.
    """

    def __init__(self, panes: Mapping[str, Graph | Tensor], verdicts: Mapping[str, str | None] | None = None,
                 notes: Mapping[str, str] | None = None, *, show_attrs: bool = False):
        self.titles = list(panes)
        self.header = widgets.HTML()
        self.boxes = {t: widgets.HTML() for t in self.titles}
        super().__init__([self.header, widgets.HBox([self.boxes[t] for t in self.titles])])
        self.add_class("aisys-graph-panes")   # the browser test finds the widget by it
        self.show_attrs = show_attrs
        self.update(panes, verdicts or {}, notes or {})

    def update(self, panes: Mapping[str, Graph | Tensor], verdicts: Mapping[str, str | None] | None = None,
               notes: Mapping[str, str] | None = None) -> None:
        """Redraw every pane (titles must stay the same)."""
        from aisys.frontend import graph_of_tape
        verdicts, notes = dict(verdicts or {}), dict(notes or {})
        self.graphs, self.verdicts, self.notes = {}, {}, {}
        for t in self.titles:
            g = panes[t]
            g = graph_of_tape(g) if isinstance(g, Tensor) else g
            v = verdicts.get(t)
            self.graphs[t], self.verdicts[t], self.notes[t] = g, v, notes.get(t, "")
            hl = {o: v for o in g.outputs} if v in ("right", "wrong") else {}
            border = {"right": "#16a34a", "wrong": "#dc2626"}.get(v, "#d1d5db")
            badge = {"right": "✔ matches eager", "wrong": "✘ differs from eager"}.get(v, "")
            svg = graph_svg(g, highlight=hl, show_attrs=self.show_attrs)
            self.boxes[t].value = (
                f"<div style='border:3px solid {border};border-radius:6px;padding:4px;margin:2px'>"
                f"<div><b>{html.escape(t)}</b> <span style='color:{border}'>{badge}</span></div>"
                f"<div style='font-size:11px;color:#374151'>{html.escape(self.notes[t])}</div>{svg}</div>")

    def summary(self) -> str:
        lines = []
        for t in self.titles:
            g = self.graphs[t]
            v = self.verdicts[t] or "-"
            lines.append(f"[{t}] verdict={v}: {g.summary()}" + (f" — {self.notes[t]}" if self.notes[t] else ""))
        return "\n".join(lines)


def _fmt_values(a) -> str:
    import numpy as np
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    shown = ", ".join(f"{v:.3f}" for v in arr[:6])
    return f"[{shown}{', …' if arr.size > 6 else ''}]"


class CaptureCompare(widgets.VBox):
    """Eager, traced and scripted forms of one function, side by side (lab 03's visual moment).

    ``variants`` maps a label to a list of inputs (e.g. {"prev_h": [x, h], "−prev_h": [x, -h]}). Pick a
    variant: the eager pane shows the tape of that run (rebuilt every run — a dynamic graph); the traced
    and scripted panes keep the graphs captured once from ``example_inputs`` and are coloured green when
    they reproduce the eager answer, red when they silently do not. The comparison itself is
    ``aisys.frontend.compare_captures``; this widget draws it.
    """

    def __init__(self, fn, example_inputs, variants: Mapping[str, list], *, show_attrs: bool = False):
        from aisys.frontend import compare_captures

        self.fn = fn
        self.comparison = compare_captures(fn, example_inputs, variants)
        self.variants = self.comparison.variants
        self.traced, self.scripted = self.comparison.traced, self.comparison.scripted
        self.picker = widgets.Dropdown(options=list(self.variants), description="input")
        self.panes = GraphPanes({"eager": self.traced, "traced": self.traced, "scripted": self.scripted},
                                show_attrs=show_attrs)
        self.readout = widgets.HTML()
        super().__init__([self.picker, self.readout, self.panes])
        self.add_class("aisys-capture-compare")   # the browser test finds the widget by it
        self.picker.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, change=None) -> None:
        run = self.comparison.run(self.picker.value)
        self.results = dict(run.outputs)
        self.verdicts = {"eager": None, **run.verdicts}
        notes = {k: f"out = {_fmt_values(v)}" for k, v in self.results.items()}
        notes["eager"] += " (this run's tape)"
        self.panes.update({"eager": run.eager_graph, "traced": self.traced, "scripted": self.scripted},
                          self.verdicts, notes)
        warn = "".join(f"<div style='color:#b91c1c'>⚠ traced: {html.escape(w)}</div>" for w in self.comparison.warnings)
        self.readout.value = (f"<div>input <b>{html.escape(run.label)}</b>: traced graph "
                              f"<b>{self.verdicts['traced']}</b>, scripted graph <b>{self.verdicts['scripted']}</b>"
                              f"</div>{warn}")

    def summary(self) -> str:
        return self.comparison.summary(self.picker.value)
