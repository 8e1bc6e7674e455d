"""The tape itself: a list of numbered entries ``name = op(inputs…)`` with their values, recorded from a
run (:meth:`Tape.record`) or read off a tensor's implicit autograd record (:meth:`Tape.from_tensor`), and
each entry's local rules (its op's registered VJP and JVP applied to the recorded values)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import dtypes as _dt
from ..registry import get as get_op
from ..tensor import Tensor, _Mode, no_grad
from ..walk import postorder

LEAF_OPS = ("input", "const")


# ---------------------------------------------------------------------------------------------
# The tape
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One line of the tape: ``name = op(inputs…)`` with its forward value.

    ``inputs`` are indices of earlier entries; ``output`` is this entry's own index (each entry writes
    exactly one value). Inputs are named v₋ₙ₊₁ … v₀ as in the lecture, op results v1, v2, …, constants c1, c2, ….
    """
    index: int
    name: str
    op: str
    inputs: tuple = ()
    attrs: dict = field(default_factory=dict)
    value: np.ndarray = None
    label: str = ""                   # the user's name of an input ("x1"), else ""

    @property
    def output(self) -> int:
        return self.index

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAF_OPS


def format_value(v, digits: int = 6) -> str:
    """A short deterministic rendering: scalars as %g, arrays as dtype[shape] and their first values."""
    a = np.asarray(v)
    if a.size == 1:
        x = a.reshape(()).item()
        return f"{x:.{digits}g}" if isinstance(x, float) else str(x)
    flat = ", ".join(f"{float(t):.{min(digits, 4)}g}" for t in a.reshape(-1)[:4].astype(np.float64))
    return f"{_dt.from_numpy(a.dtype).short}{list(a.shape)} [{flat}{', …' if a.size > 4 else ''}]"


class Tape:
    """The recorded evaluation of one function: a list of :class:`Entry`, its inputs and its output.

    Build it with :meth:`record` (run a function) or :meth:`from_tensor` (read a tensor's implicit tape).
    Iterating yields the entries in evaluation order; ``tape[i]`` is entry ``i``.
    """

    def __init__(self, entries: list, inputs: list, output: int):
        self.entries = list(entries)
        self.inputs = list(inputs)
        self.output = int(output)

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def record(cls, fn: Callable, *inputs, names=None) -> "Tape":
        """Run ``fn(*inputs)`` and write down every op it applies, in order.

        Python numbers and integer arrays become float64 tensors (the lecture's values to 1e-12); float arrays
        and tensors keep their dtype. Inputs require grad, so ``fn`` may itself call ``aisys.grad`` — the
        tape then holds the backward ops too. Tensors that ``fn`` creates or captures become ``const`` entries.
        """
        xs = [_as_input(v) for v in inputs]
        names = _input_names(names, len(xs))
        builder = _Builder()
        for k, x in enumerate(xs):
            builder.add_input(x, names[k], len(xs))
        _Mode.observers.append(builder)
        try:
            out = fn(*xs)
        finally:
            _Mode.observers.remove(builder)
        if not isinstance(out, Tensor):
            raise TypeError(f"Tape.record: the function must return a Tensor, got {type(out).__name__}")
        return cls(builder.entries, builder.input_ids, builder.index_of(out))

    @classmethod
    def from_tensor(cls, t: Tensor, names=None) -> "Tape":
        """The implicit tape behind ``t`` (computed from inputs with requires_grad=True), written out."""
        from ..autograd import _FREED, _topo
        if t._ctx is None:
            raise ValueError("Tape.from_tensor: this tensor has no recorded history; compute it from inputs "
                             "created with requires_grad=True (or use Tape.record(fn, *inputs))")
        if _Mode.rebases:
            try:
                _topo([t])                                      # resolves inputs rebased by in-place ops
            except RuntimeError:
                pass                                            # a freed graph: reported below
        def inputs_of(x):
            if x._ctx is None:
                return ()
            if x._ctx[1] is _FREED:
                raise ValueError("Tape.from_tensor: the graph was freed by backward(); read the tape before "
                                 "calling backward(), or call backward(retain_graph=True)")
            return reversed(x._ctx[1])                          # first input first

        walk = postorder([t], inputs_of)                        # inputs before users
        order = [x for x in walk if x._ctx is not None]
        inputs = [x for x in walk if x._ctx is None and x.requires_grad]
        names = _input_names(names, len(inputs))
        builder = _Builder()
        for k, x in enumerate(inputs):
            builder.add_input(x, names[k], len(inputs))
        for x in order:
            op, ins, attrs = x._ctx
            builder(op, ins, attrs, x)
        return cls(builder.entries, builder.input_ids, builder.index_of(t))

    # ---- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, i: int) -> Entry:
        return self.entries[i]

    @property
    def value(self) -> np.ndarray:
        """The output's forward value."""
        return self.entries[self.output].value

    @property
    def op_entries(self) -> list:
        return [e for e in self.entries if not e.is_leaf]

    def line(self, e: Entry) -> str:
        if e.op == "input":
            return f"{e.name} = input {e.label}".rstrip()
        if e.op == "const":
            return f"{e.name} = const"
        return f"{e.name} = {e.op}({', '.join(self.entries[i].name for i in e.inputs)})"

    def __str__(self) -> str:
        pad = max(len(e.name) for e in self.entries)
        lines = [self.line(e).replace(f"{e.name} = ", f"{e.name:<{pad}} = ", 1) for e in self.entries]
        width = max(len(t) for t in lines)
        rows = [f"{text:<{width}}  = {format_value(e.value)}" + ("     <- output" if e.index == self.output else "")
                for text, e in zip(lines, self.entries)]
        return "\n".join(rows)

    def __repr__(self) -> str:
        n = len(self.inputs)
        return f"<Tape: {n} input{'s' * (n != 1)}, {len(self.op_entries)} ops, output {self.entries[self.output].name}>"


def _as_input(v) -> Tensor:
    """Tensors keep their data and dtype; Python numbers and integer arrays become float64; float arrays stay."""
    if isinstance(v, Tensor):
        t = Tensor._wrap(v._data)
    else:
        a = np.asarray(v)
        if a.dtype.kind != "f" and a.dtype != _dt.bfloat16.np:
            a = a.astype(np.float64)
        t = Tensor._wrap(a)
    t.requires_grad = t.dtype.is_floating       # so fn may differentiate its inputs (the tape of a gradient)
    return t


def _input_names(names, n: int) -> list:
    if names is None:
        return [f"x{k + 1}" for k in range(n)]
    names = list(names)
    if len(names) != n:
        raise ValueError(f"Tape: {len(names)} names for {n} inputs")
    return names


class _Builder:
    """The observer that writes each applied op down as an entry (tensors are tracked by identity)."""

    def __init__(self):
        self.entries: list[Entry] = []
        self.input_ids: list[int] = []
        self._ids: dict[int, int] = {}
        self._alive: list[Tensor] = []              # keep recorded tensors alive so ids stay unique
        self._ops = 0
        self._consts = 0

    def _add(self, t: Tensor, **kw) -> int:
        i = len(self.entries)
        self.entries.append(Entry(index=i, value=t._data, **kw))
        self._ids[id(t)] = i
        self._alive.append(t)
        return i

    def add_input(self, t: Tensor, label: str, n_inputs: int) -> None:
        k = len(self.input_ids)
        self.input_ids.append(self._add(t, name=f"v{k - n_inputs + 1}", op="input", label=label))

    def index_of(self, t: Tensor) -> int:
        i = self._ids.get(id(t))
        if i is None:
            i = self._const(t)
        return i

    def _const(self, t: Tensor) -> int:
        self._consts += 1
        return self._add(t, name=f"c{self._consts}", op="const")

    def __call__(self, op, inputs, attrs, out):
        idx = tuple(self.index_of(t) for t in inputs)
        self._ops += 1
        self._add(out, name=f"v{self._ops}", op=op.name, inputs=idx, attrs=dict(attrs))

    def on_inplace(self, t: Tensor, new: Tensor) -> None:
        """``t`` changed in place: from now on it is the entry that computed ``new``."""
        self.index_of(t)
        self._ids[id(t)] = self.index_of(new)


# ---------------------------------------------------------------------------------------------
# Local rules: each op's VJP and JVP from the registry, on numpy values
# ---------------------------------------------------------------------------------------------
def _wrap_inputs(tape: Tape, entry: Entry) -> list:
    ins = []
    for i in entry.inputs:
        t = Tensor._wrap(tape[i].value)
        t.requires_grad = t.dtype.is_floating           # some VJPs skip inputs that need no gradient
        ins.append(t)
    return ins


def local_vjp(tape: Tape, entry: Entry, adjoint) -> tuple:
    """What ``entry`` sends back to each of its inputs: v̄ᵢ·∂entry/∂input (numpy arrays; None: nothing).

    This is the op's registered VJP applied to the recorded values — the *local* step of reverse mode;
    the sweep (order, accumulation) is up to the caller.
    """
    op = get_op(entry.op)
    if op.vjp is None:
        return (None,) * len(entry.inputs)
    g = Tensor._wrap(np.asarray(adjoint, dtype=np.asarray(entry.value).dtype))
    with no_grad():
        grads = op.vjp(g, Tensor._wrap(entry.value), *_wrap_inputs(tape, entry), **entry.attrs)
    return tuple(None if gi is None else np.asarray(gi._data) for gi in grads)


def local_jvp(tape: Tape, entry: Entry, tangents) -> np.ndarray | None:
    """The tangent of ``entry`` given its inputs' tangents (None = zero): the op's registered JVP."""
    op = get_op(entry.op)
    if op.jvp is None or all(t is None for t in tangents):
        return None
    with no_grad():
        out = op.jvp(tuple(None if t is None else Tensor._wrap(np.asarray(t)) for t in tangents),
                     Tensor._wrap(entry.value), *_wrap_inputs(tape, entry), **entry.attrs)
    return None if out is None else np.asarray(out._data)
