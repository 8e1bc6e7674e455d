"""Sweeps over a tape: reverse mode (one sweep per output, adjoints accumulating), forward mode with the
registry's JVP rules (one sweep per input direction), and the Jacobian each mode builds at what cost."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .record import Tape, local_jvp, local_vjp

def reverse_grad(tape: Tape) -> list:
    """∂output/∂input for every input of a scalar-output tape, in one reverse sweep (exercise 2.1's reference).

    Seed the output's adjoint with 1, visit the entries from last to first, and *add* each entry's
    contributions into its inputs' adjoints: an input used twice (x₁ in ln x₁ + x₁x₂) collects from both uses.
    """
    adjoint = {tape.output: np.ones_like(tape[tape.output].value)}
    for entry in reversed(tape.entries):
        if entry.is_leaf or entry.index not in adjoint:
            continue
        for i, contribution in zip(entry.inputs, local_vjp(tape, entry, adjoint[entry.index])):
            if contribution is None:
                continue
            adjoint[i] = adjoint[i] + contribution if i in adjoint else contribution
    return [adjoint.get(i, np.zeros_like(tape[i].value)) for i in tape.inputs]


@dataclass(frozen=True)
class ReverseStep:
    """One step of a reverse sweep: entry ``entry`` had adjoint ``adjoint`` and sent ``contributions``
    ((input index, array or None), …) to its inputs."""
    step: int
    entry: int
    adjoint: np.ndarray
    contributions: tuple


def reverse_sweep(tape: Tape, seed=None) -> tuple[list, dict]:
    """A reverse sweep that keeps its steps (for :class:`TapePlayer`) and returns (steps, final adjoints).

    ``seed`` is the output's adjoint (default: ones), so a sweep per output row builds a Jacobian.
    """
    out_value = tape[tape.output].value
    adjoint = {tape.output: np.ones_like(out_value) if seed is None else np.asarray(seed, dtype=out_value.dtype)}
    steps = []
    for entry in reversed(tape.entries):
        if entry.is_leaf or entry.index not in adjoint:
            continue
        contributions = local_vjp(tape, entry, adjoint[entry.index])
        for i, c in zip(entry.inputs, contributions):
            if c is not None:
                adjoint[i] = adjoint[i] + c if i in adjoint else c
        steps.append(ReverseStep(len(steps) + 1, entry.index, adjoint[entry.index], tuple(zip(entry.inputs, contributions))))
    return steps, adjoint


@dataclass(frozen=True)
class ForwardStep:
    """One step of a forward sweep: entry ``entry`` got tangent ``tangent`` (None: zero)."""
    step: int
    entry: int
    tangent: np.ndarray | None


def forward_sweep(tape: Tape, tangents) -> tuple[list, dict]:
    """A forward sweep with the registry's JVP rules, keeping its steps; returns (steps, tangent of each entry)."""
    tan = {i: (None if t is None else np.broadcast_to(np.asarray(t, dtype=tape[i].value.dtype), tape[i].value.shape))
           for i, t in zip(tape.inputs, tangents)}
    steps = []
    for e in tape:
        if e.is_leaf:
            continue
        tan[e.index] = local_jvp(tape, e, [tan.get(i) for i in e.inputs])
        steps.append(ForwardStep(len(steps) + 1, e.index, tan[e.index]))
    return steps, tan


@dataclass(frozen=True)
class SweepCount:
    """How much work one Jacobian took: sweeps over the tape and entries visited (local rules applied)."""
    mode: str
    n_inputs: int
    n_outputs: int
    sweeps: int
    visits: int

    def __str__(self) -> str:
        return (f"{self.mode} mode: {self.sweeps} sweep{'s' * (self.sweeps != 1)}, {self.visits} local rules applied "
                f"for a {self.n_outputs}×{self.n_inputs} Jacobian")


def jacobian(tape: Tape, mode: str = "reverse") -> tuple[np.ndarray, SweepCount]:
    """The full Jacobian ∂output/∂inputs (inputs flattened and concatenated) and what it cost.

    Forward mode needs one sweep per input element (n), reverse mode one per output element (m).
    """
    sizes = [tape[i].value.size for i in tape.inputs]
    n, m = sum(sizes), tape.value.size
    J = np.zeros((m, n))
    visits = 0
    if mode == "forward":
        for k in range(n):
            seed = np.zeros(n)
            seed[k] = 1.0
            parts = np.split(seed, np.cumsum(sizes)[:-1])
            steps, tan = forward_sweep(tape, [p.reshape(tape[i].value.shape) for p, i in zip(parts, tape.inputs)])
            visits += len(steps)
            col = tan.get(tape.output)
            J[:, k] = 0.0 if col is None else np.broadcast_to(col, tape.value.shape).reshape(-1)
        return J, SweepCount("forward", n, m, n, visits)
    if mode == "reverse":
        for j in range(m):
            seed = np.zeros(m)
            seed[j] = 1.0
            steps, adjoint = reverse_sweep(tape, seed.reshape(tape.value.shape))
            visits += len(steps)
            J[j] = np.concatenate([np.broadcast_to(adjoint.get(i, 0.0), tape[i].value.shape).reshape(-1)
                                   for i in tape.inputs])
        return J, SweepCount("reverse", n, m, m, visits)
    raise ValueError(f"jacobian: mode must be 'forward' or 'reverse', got {mode!r}")
