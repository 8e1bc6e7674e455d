"""Forward mode with dual numbers: each value carries its tangent, v + v̇ε with ε² = 0.

A dual-number rule *is* an op's JVP applied to one (value, tangent) pair, so :func:`dual_apply` reads both
halves from the op registry — the value from the op's reference, the tangent from its JVP — instead of
keeping rules of its own. Exercise 2.2 asks the learner to write the rules for :data:`DUAL_OPS` by hand,
as arithmetic on ε; the check compares them with this one.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..registry import get as get_op
from ..tensor import Tensor, apply, no_grad
from .record import Tape

class Dual(NamedTuple):
    """A dual number v + v̇ε (ε² = 0): a value and its tangent, the state of forward mode."""
    value: object
    tangent: object

    def __repr__(self) -> str:
        def show(v):
            a = np.asarray(v)
            return repr(float(a.reshape(()))) if a.size == 1 else np.array2string(a, precision=6, separator=", ")
        return f"Dual(value={show(self.value)}, tangent={show(self.tangent)})"


DUAL_OPS = ("add", "sub", "mul", "div", "neg", "exp", "log", "sin", "cos", "tanh", "sqrt", "pow", "sum")


def dual_apply(op: str, *args: Dual, **attrs) -> Dual:
    """Evaluate ``op`` on dual numbers: (value, tangent) in, (value, tangent) out (exercise 2.2's reference).

    The value is the op's registered reference on the values; the tangent is its registered JVP, the
    derivative as arithmetic on ε — (a + ȧε)(b + ḃε) = ab + (ȧb + aḃ)ε for mul — applied to the tangents (an
    all-zero tangent counts as none: a constant). Values and tangents are numpy arrays or floats, and
    broadcast as numpy does. Any op with a JVP works; :data:`DUAL_OPS` are the ones the exercise writes.
    """
    d = get_op(op)
    if d.jvp is None:
        raise ValueError(f"dual_apply: op {op!r} has no forward-mode rule (JVP) in the registry, so there is no "
                         f"dual-number rule for it (defined at {d.source})")
    values = [Tensor._wrap(np.asarray(a.value)) for a in args]
    tangents = [None if not np.any(a.tangent) else Tensor._wrap(np.broadcast_to(
        np.asarray(a.tangent, dtype=v._data.dtype), v.shape)) for a, v in zip(args, values)]
    with no_grad():
        out = apply(d, *values, **attrs)
        tangent = d.jvp(tuple(tangents), out, *values, **attrs) if any(t is not None for t in tangents) else None
    value = out.numpy()
    return Dual(value, np.zeros_like(value) if tangent is None else np.asarray(tangent.numpy()))


def jvp_dual(tape: Tape, tangents, rule: Callable = dual_apply) -> Dual:
    """One forward sweep with dual numbers: seed each input with its tangent, apply ``rule`` entry by entry;
    returns the output's Dual (its value and J·tangents)."""
    tangents = list(tangents)
    if len(tangents) != len(tape.inputs):
        raise ValueError(f"jvp_dual: {len(tangents)} tangents for {len(tape.inputs)} inputs")
    duals = {}
    for i, t in zip(tape.inputs, tangents):
        v = tape[i].value
        duals[i] = Dual(v, np.broadcast_to(np.asarray(t, dtype=np.float64), np.shape(v)).copy())
    for e in tape:
        if e.op == "const":
            duals[e.index] = Dual(e.value, np.zeros(np.shape(e.value)))
        elif e.op != "input":
            duals[e.index] = rule(e.op, *[duals[i] for i in e.inputs], **e.attrs)
    return duals[tape.output]
