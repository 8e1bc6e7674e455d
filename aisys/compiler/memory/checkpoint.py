"""Activation checkpointing (重计算 / 激活检查点): keep only every k-th layer's activation during the
forward pass and recompute the others, one segment at a time, when the backward pass needs them.

The model here is a chain of L layers. Layer i turns a_{i-1} into a_i (a_0 is the caller's input,
not counted), and the backward of layer i needs the activation a_i it saved (as relu, sigmoid or
tanh do). Only activation memory is counted: weights and gradients add the same bytes for every k.

Keeping every k-th activation, plus the last one, the backward pass works through the segments
from the top: it recomputes the segment's missing activations from the checkpoint below it, then
runs the segment's backward, freeing each activation once its layer's backward has used it. At
the start of the top segment's backward every checkpoint and k−1 recomputed activations are alive:

    peak activations  = L/k + k − 1          (L divisible by k; k = 1 keeps everything: L)
    recomputed layers = L − L/k              (each layer that is not a checkpoint, once)

so the peak is smallest near k = √L, about 2√L − 1, for one extra forward pass at most — the
result of Chen, Xu, Zhang & Guestrin, "Training Deep Nets with Sublinear Memory Cost" (2016).
The simulator below does not use the formula: it lays the forward, recompute and backward ops out
as schedule steps with one :class:`Buffer` per activation copy and measures the live bytes, so
the formula is a check on it (and on a learner's version of it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from .records import Buffer, bytes_text, live_bytes_profile


@dataclass(frozen=True)
class LayeredModel:
    """A chain of layers, described by the bytes of each layer's output activation."""
    activation_bytes: tuple[int, ...]
    name: str = "model"
    unit: str = "B"          # "activations" when every layer counts 1 (see ``uniform``)

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.activation_bytes)
        if not sizes or any(s < 0 for s in sizes):
            raise ValueError(f"LayeredModel needs at least one layer and sizes >= 0 bytes, got {self.activation_bytes!r}")
        object.__setattr__(self, "activation_bytes", sizes)

    @classmethod
    def uniform(cls, layers: int, nbytes: int = 1, name: str | None = None) -> "LayeredModel":
        """``layers`` layers whose activations are ``nbytes`` each (nbytes=1 counts activations)."""
        if layers < 1:
            raise ValueError(f"a model needs at least one layer, got layers={layers}")
        return cls((nbytes,) * layers, name or f"{layers} layers", "activations" if nbytes == 1 else "B")

    def amount(self, n: int) -> str:
        """``n`` in this model's unit: '7 activations' or '48.0 KiB (49152 B)'."""
        return bytes_text(n) if self.unit == "B" else f"{n} {self.unit}"

    @property
    def layers(self) -> int:
        return len(self.activation_bytes)


def checkpoint_layers(layers: int, k: int) -> tuple[int, ...]:
    """Layers whose activations are kept: every k-th (k, 2k, ...) and the last one."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= layers:
        raise ValueError(f"checkpoint interval k must be an integer in 1..{layers} (the number of layers), got {k!r}")
    return tuple(sorted({i for i in range(k, layers + 1, k)} | {layers}))


@dataclass(frozen=True)
class CheckpointPlan:
    """What checkpointing every k-th layer costs: peak activation bytes and recomputed layers."""
    model: LayeredModel
    k: int
    checkpoints: tuple[int, ...]
    steps: tuple[str, ...]                 # "forward 3", "recompute 5", "backward 5", ...
    buffers: tuple[Buffer, ...]            # one per activation copy (forward or recomputed)
    live: tuple[int, ...] = field(repr=False)

    @property
    def peak_bytes(self) -> int:
        return max(self.live)

    @property
    def peak_step(self) -> int:
        return self.live.index(self.peak_bytes)

    @property
    def recompute_count(self) -> int:
        return sum(1 for s in self.steps if s.startswith("recompute"))

    @property
    def baseline_bytes(self) -> int:
        """Keeping every activation (k = 1): the sum of all activation sizes."""
        return sum(self.model.activation_bytes)

    def to_memory_plan(self, planner: str = "greedy_by_size", alignment: int = 1):
        """The activation copies placed in one arena, for the memory timeline."""
        from .offset_planners import plan_buffers
        return plan_buffers(self.buffers, planner, alignment=alignment, steps=self.steps)

    def summary(self) -> str:
        L = self.model.layers
        kept = len(self.checkpoints)
        return (f"checkpoint every {self.k} of {L} layers ({self.model.name}): keep "
                f"{kept} activation{'s' if kept != 1 else ''}, recompute {self.recompute_count} layers; "
                f"peak {self.model.amount(self.peak_bytes)} at {self.steps[self.peak_step]} "
                f"vs {self.model.amount(self.baseline_bytes)} keeping all")


def simulate_checkpointing(model: LayeredModel | int, k: int) -> CheckpointPlan:
    """Lay out forward, recompute and backward steps for interval ``k`` and measure live bytes.

    ``model`` may be a number of layers (each activation 1 byte, so bytes count activations).
    """
    if isinstance(model, int):
        model = LayeredModel.uniform(model)
    L = model.layers
    size = (0,) + model.activation_bytes            # size[i] = bytes of a_i, a_0 not counted
    ckpt = checkpoint_layers(L, k)
    keep = set(ckpt)
    steps: list[str] = [f"forward {i}" for i in range(1, L + 1)]
    fwd_step = {i: i - 1 for i in range(1, L + 1)}
    bwd_step: dict[int, int] = {}
    rec_step: dict[int, int] = {}
    bounds = [0] + list(ckpt)
    for lo, hi in reversed(list(zip(bounds[:-1], bounds[1:]))):     # segment (lo, hi], top first
        for i in range(lo + 1, hi):
            rec_step[i] = len(steps)
            steps.append(f"recompute {i}")
        for i in range(hi, lo, -1):
            bwd_step[i] = len(steps)
            steps.append(f"backward {i}")
    buffers = []
    for i in range(1, L + 1):
        if i in keep:          # kept from the forward pass until its own backward
            buffers.append(Buffer(f"a{i}", size[i], fwd_step[i], bwd_step[i], op=f"layer {i}", kind="checkpoint"))
        else:                  # dropped after the next layer read it, recomputed before its backward
            buffers.append(Buffer(f"a{i}", size[i], fwd_step[i], fwd_step[i + 1], op=f"layer {i}", kind="activation"))
            buffers.append(Buffer(f"a{i}'", size[i], rec_step[i], bwd_step[i], op=f"layer {i} (recomputed)",
                                  kind="recomputed"))
    live = live_bytes_profile(buffers, len(steps))
    return CheckpointPlan(model, k, ckpt, tuple(steps), tuple(buffers), tuple(live))


def checkpoint_cost(layers: int, k: int) -> tuple[int, int]:
    """Closed form for L equal layers: (peak activations, recomputed layers) when keeping every k-th.

    Each segment (c, c'] between kept layers is recomputed and run backward on its own; when it
    starts, the kept activations up to c' and the segment's c'−c−1 recomputed ones are alive.
    For k dividing L this is (L/k + k − 1, L − L/k).
    """
    ckpt = checkpoint_layers(layers, k)
    bounds = [0] + list(ckpt)
    peak = max(j + 1 + (hi - lo - 1) for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])))
    return peak, layers - len(ckpt)


def sweep_checkpoints(model: LayeredModel | int, ks: Sequence[int] | None = None) -> list[CheckpointPlan]:
    """One :class:`CheckpointPlan` per interval k (default: every k from 1 to L)."""
    L = model if isinstance(model, int) else model.layers
    return [simulate_checkpointing(model, k) for k in (ks or range(1, L + 1))]


def best_checkpoint_interval(model: LayeredModel | int) -> CheckpointPlan:
    """The k with the lowest peak (fewest recomputations on ties); close to √L for equal layers."""
    return min(sweep_checkpoints(model), key=lambda p: (p.peak_bytes, p.recompute_count, p.k))


def sqrt_interval(layers: int) -> int:
    """k = round(√L), the textbook choice."""
    return max(1, min(layers, round(math.sqrt(layers))))
