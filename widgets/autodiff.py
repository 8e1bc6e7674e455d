"""TapePlayer: scrub through the tape of an expression and watch autodiff happen.

Reverse mode (the default): step 0 shows the forward values; each step applies one entry's VJP, from the
output back to the inputs, and the edges it sends adjoints along get labelled with their contribution
(v̄ᵢ += v̄ⱼ·∂vⱼ/∂vᵢ), the way ZOMI's 02AutoDiff lecture draws it. Forward mode: pick an input direction and
each step pushes one dual number ⟨vⱼ, v̇ⱼ⟩ forward. The graph is graphviz SVG inside ``ipywidgets.HTML``;
``.summary()`` is the tape as a plain-text table (step, op, value, adjoint, tangent).

    from aisys.framework.tape import course_f
    TapePlayer(course_f, 2.0, 5.0)              # a function and its inputs
    TapePlayer(loss)                            # or a tensor computed with requires_grad=True
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from aisys.framework.tape import Tape, format_value, forward_sweep, reverse_sweep
from aisys.framework.tensor import Tensor
from widgets.graph import dot_to_svg

__all__ = ["TapePlayer"]

_CURRENT = "#fde68a"      # the entry being processed at this step
_REACHED = "#fed7aa"      # reverse: adjoint known; forward: tangent known
_INPUT = "#dbeafe"
_ADJOINT_EDGE = "#dc2626"
_TANGENT_EDGE = "#2563eb"


def _q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _short(v) -> str:
    return format_value(v, digits=4)


def _bar(name: str) -> str:
    """The adjoint's symbol for an entry: v3 -> v̄3, c1 -> c̄1 (a combining macron over the letter)."""
    return name[0] + "\u0304" + name[1:]


def _dot(name: str) -> str:
    """The tangent's symbol: v3 -> v̇3."""
    return name[0] + "\u0307" + name[1:]


def _signed(v) -> str:
    """An adjoint contribution as an edge label: +1, −0.2837, or +f64[3] […] for arrays."""
    a = np.asarray(v)
    if a.size == 1:
        x = float(a.reshape(()))
        return f"{'+' if x >= 0 else '−'}{abs(x):.4g}"
    return "+" + _short(a)


class TapePlayer(widgets.VBox):
    """A slider (and Play button) over the sweeps of a scalar expression's tape.

    ``source``: a function (called on ``inputs``; Python numbers become float64), a :class:`Tape`, or a
    Tensor computed from inputs with ``requires_grad=True``. ``names`` label the inputs (default x1, x2, …).
    For a non-scalar output the reverse sweep is seeded with ones (the gradient of its sum).
    """

    def __init__(self, source, *inputs, names=None, mode: str = "reverse", interval_ms: int = 800):
        if isinstance(source, Tape):
            self.tape = source
        elif isinstance(source, Tensor):
            self.tape = Tape.from_tensor(source, names=names)
        elif callable(source):
            self.tape = Tape.record(source, *inputs, names=names)
        else:
            raise TypeError(f"TapePlayer: expects a function, a Tape or a Tensor, got {type(source).__name__}")
        if mode not in ("reverse", "forward"):
            raise ValueError(f"TapePlayer: mode must be 'reverse' or 'forward', got {mode!r}")
        tape = self.tape
        self._rev_steps, self._adjoints = reverse_sweep(tape)
        self._fwd = {}                                     # input position -> (steps, tangents)
        for k in range(len(tape.inputs)):                  # all sweeps now: the ops may be temporary (exercise 2.3)
            self._forward(k)
        self._svg_cache: dict = {}

        self.mode = widgets.ToggleButtons(options=[("reverse: adjoints v̄", "reverse"), ("forward: tangents v̇", "forward")],
                                          value=mode, description="mode")
        self.seed = widgets.Dropdown(options=[(f"d/d{tape[i].label or tape[i].name}", k)
                                              for k, i in enumerate(tape.inputs)], value=0, description="direction")
        self.slider = widgets.IntSlider(value=0, min=0, max=self._n_steps(mode), description="step",
                                        continuous_update=True)
        self.play = widgets.Play(value=0, min=0, max=self.slider.max, interval=interval_ms, description="Play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.caption = widgets.HTML()
        self.graph = widgets.HTML()
        self.mode.observe(self._on_mode, names="value")
        self.seed.observe(lambda change: self._render(), names="value")
        self.slider.observe(lambda change: self._render(), names="value")
        super().__init__([widgets.HBox([self.mode, self.seed]), widgets.HBox([self.play, self.slider]),
                          self.caption, self.graph])
        self.add_class("aisys-tape-player")   # the browser test finds the widget by it
        self._sync_seed_visibility()
        self._render()

    # ---- state ---------------------------------------------------------------------------------
    def _n_steps(self, mode: str) -> int:
        return len(self._rev_steps) if mode == "reverse" else len(self.tape.op_entries)

    def _forward(self, k: int):
        if k not in self._fwd:
            seeds = [np.ones_like(self.tape[i].value) if j == k else None for j, i in enumerate(self.tape.inputs)]
            self._fwd[k] = forward_sweep(self.tape, seeds)
        return self._fwd[k]

    def _on_mode(self, change):
        self.play.playing = False
        n = self._n_steps(change["new"])
        self.slider.value = 0
        self.slider.max = n
        self.play.max = n
        self._sync_seed_visibility()
        self._render()

    def _sync_seed_visibility(self):
        self.seed.layout.display = "" if self.mode.value == "forward" else "none"

    def reverse_state(self, k: int):
        """(adjoints known after k reverse steps, {(input, entry): contribution} sent so far, current entry)."""
        out = self.tape.output
        adj = {out: np.ones_like(self.tape[out].value)}
        edges = {}
        for step in self._rev_steps[:k]:
            for i, c in step.contributions:
                if c is not None:
                    adj[i] = adj[i] + c if i in adj else c
                    edges[(i, step.entry)] = edges[(i, step.entry)] + c if (i, step.entry) in edges else c
        current = self._rev_steps[k - 1].entry if k else None
        return adj, edges, current

    def forward_state(self, k: int, seed: int):
        """(tangents known after k forward steps, current entry) for the input direction ``seed``."""
        steps, _ = self._forward(seed)
        tan = {i: (np.ones_like(self.tape[i].value) if j == seed else np.zeros_like(self.tape[i].value))
               for j, i in enumerate(self.tape.inputs)}
        for step in steps[:k]:
            tan[step.entry] = step.tangent if step.tangent is not None else np.zeros_like(self.tape[step.entry].value)
        return tan, (steps[k - 1].entry if k else None)

    # ---- drawing ----------------------------------------------------------------------------------
    def to_dot(self) -> str:
        """DOT text of the tape at the current mode and step."""
        tape, k, mode = self.tape, self.slider.value, self.mode.value
        if mode == "reverse":
            known, edges, current = self.reverse_state(k)
            mark = "v̄"
        else:
            known, current = self.forward_state(k, self.seed.value)
            edges, mark = {}, "v̇"
        lines = ["digraph tape {", "  rankdir=LR; nodesep=0.25; ranksep=0.45;",
                 '  node [fontname="Helvetica", fontsize=10]; edge [fontname="Helvetica", fontsize=9];']
        for e in tape:
            head = f"{e.name} = input {e.label}".rstrip() if e.op == "input" else (
                f"{e.name} = const" if e.op == "const" else f"{e.name} = {e.op}")
            label = f"{head}\nvalue {_short(e.value)}"
            reached = e.index in known
            if reached:
                label += f"\n{mark} = {_short(known[e.index])}"
            fill = _CURRENT if e.index == current else (_REACHED if reached else (_INPUT if e.op == "input" else "#ffffff"))
            shape = "ellipse" if e.op == "input" else ("box" if not e.is_leaf else "note")
            width = "2.2" if e.index == tape.output else "1"
            lines.append(f"  e{e.index} [label={_q(label)}, shape={shape}, style=filled, fillcolor=\"{fill}\", "
                         f"penwidth={width}];")
        for e in tape:
            for i in e.inputs:
                if (i, e.index) in edges:
                    text = _signed(edges[(i, e.index)])
                    lines.append(f"  e{i} -> e{e.index} [label={_q(text)}, color=\"{_ADJOINT_EDGE}\", "
                                 f"fontcolor=\"{_ADJOINT_EDGE}\", dir=back, penwidth=1.6];")
                elif mode == "forward" and e.index in known and i in known:
                    text = f"v̇ {_short(known[i])}"
                    lines.append(f"  e{i} -> e{e.index} [label={_q(text)}, color=\"{_TANGENT_EDGE}\", "
                                 f"fontcolor=\"{_TANGENT_EDGE}\", penwidth=1.6];")
                else:
                    lines.append(f"  e{i} -> e{e.index} [color=\"#9ca3af\"];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def describe_step(self) -> str:
        """One line saying what the current step did (plain text)."""
        tape, k = self.tape, self.slider.value
        out = tape[tape.output]
        if self.mode.value == "reverse":
            n = len(self._rev_steps)
            if k == 0:
                return (f"step 0/{n}: forward values computed; the reverse sweep starts from the output with "
                        f"{_bar(out.name)} = {_short(np.ones_like(out.value))}")
            step = self._rev_steps[k - 1]
            e = tape[step.entry]
            parts = [f"{_bar(tape[i].name)} += {_short(c)}" for i, c in step.contributions if c is not None]
            text = (f"step {k}/{n}: {tape.line(e)} has {_bar(e.name)} = {_short(step.adjoint)}; "
                    f"its VJP sends {', '.join(parts) or 'nothing'}")
            if k == n:
                adj, _, _ = self.reverse_state(k)
                grads = ", ".join(f"∂{out.name}/∂{tape[i].label or tape[i].name} = {_short(adj.get(i, 0.0))}"
                                  for i in tape.inputs)
                text += f" — done: {grads}"
            return text
        n = len(tape.op_entries)
        seed = self.seed.value
        name = tape[tape.inputs[seed]].label or tape[tape.inputs[seed]].name
        if k == 0:
            return f"step 0/{n}: seed the tangent of {name} with 1 (the others with 0); forward sweeps once per input"
        tan, current = self.forward_state(k, seed)
        e = tape[current]
        text = f"step {k}/{n}: {tape.line(e)} gets {_dot(e.name)} = {_short(tan[current])}"
        if k == n:
            text += f" — done: ∂{out.name}/∂{name} = {_short(tan[tape.output])}"
        return text

    def _render(self):
        key = (self.mode.value, self.seed.value, self.slider.value)
        if key not in self._svg_cache:
            self._svg_cache[key] = dot_to_svg(self.to_dot())
        self.graph.value = self._svg_cache[key]
        self.caption.value = f"<code>{html.escape(self.describe_step())}</code>"

    # ---- text ----------------------------------------------------------------------------------------
    def summary(self) -> str:
        """The tape as a table (entry, op, value, adjoint, tangents, reverse step) and the current view."""
        tape = self.tape
        step_of = {s.entry: s.step for s in self._rev_steps}
        tangents = [self._forward(k)[1] for k in range(len(tape.inputs))]
        n_in = len(tape.inputs)
        lines = [f"TapePlayer: {n_in} input{'s' * (n_in != 1)}, {len(tape.op_entries)} ops; reverse sweep "
                 f"{len(self._rev_steps)} steps, forward sweep {len(tape.op_entries)} steps per input"]
        col = max(len(tape.line(e)) for e in tape)
        tan_heads = "".join(f"  {'tangent d/d' + (tape[i].label or tape[i].name):<14}" for i in tape.inputs)
        lines.append(f"{'entry':<{col}}  {'value':<12}  {'adjoint':<12}{tan_heads}  reverse step")
        for e in tape:
            adj = self._adjoints.get(e.index)
            tans = ""
            for k, i in enumerate(tape.inputs):
                t = tangents[k].get(e.index)
                if e.op == "input":
                    t = 1.0 if e.index == i else 0.0
                tans += f"  {_short(0.0 if t is None else t):<14}"
            lines.append(f"{tape.line(e):<{col}}  {_short(e.value):<12}  {'-' if adj is None else _short(adj):<12}"
                         f"{tans}  {step_of.get(e.index, '-')}")
        lines.append(f"view ({self.mode.value} mode): {self.describe_step()}")
        return "\n".join(lines)
