"""How big a tile-program simulation will be, and the analytic estimate to use when it would be too big.

``simulate_layers`` plays every instruction of a tile program, so its cost grows with the number of tiles:
a 10⁷×10³×10³ GEMM on ``tiny`` is 1.26 billion matmul tiles, hours of simulation. ``count_instructions``
counts, in closed form from each layer's tile plan and without lowering anything, how many instructions
the layers lower to. Above ``MAX_INSTRUCTIONS`` (about two seconds of lowering and event simulation on one
core) ``lower_layers`` and ``simulate_layers`` refuse, naming the layer, and point to
``mode="analytic"``: per layer, the matrix unit's cycles summed over every tile shape (the same analytic
systolic model the simulation uses per tile) and the DRAM time of the plan's traffic, overlapped perfectly
(the roofline's assumption) — computed in microseconds, with no stalls or queueing. On LeNet-5 and
ResNet-18's layers it comes to 0.5–1.0× the simulated cycles (davinci's many small tiles stall most).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ChipConfig, preset
from .cube import matrix_gemm
from .layers import Conv, Gemm, layer_steps, vector_cycles, word_bytes
from .tiling import plan_gemm_tiles, resident_buffer, route_hops, tile_loads, vector_chunks, _sizes
from .vector import elementwise_cost

MAX_INSTRUCTIONS = 250_000

__all__ = ["MAX_INSTRUCTIONS", "SimulationTooLarge", "LayerEstimate", "AnalyticEstimate", "count_instructions",
           "estimate_layers", "check_size"]


class SimulationTooLarge(ValueError):
    """The layers would lower to more instructions than the limit: use ``mode="analytic"`` or raise the limit."""


@dataclass(frozen=True)
class LayerEstimate:
    """One layer, analytically: instructions it would lower to, matrix/vector cycles, DRAM bytes and time."""
    name: str
    description: str
    instructions: int
    compute_cycles: int
    dram_bytes: int
    dram_cycles: int

    @property
    def cycles(self) -> int:
        return max(self.compute_cycles, self.dram_cycles)

    @property
    def bound(self) -> str:
        return "memory" if self.dram_cycles > self.compute_cycles else "compute"


@dataclass(frozen=True)
class AnalyticEstimate:
    """``simulate_layers(..., mode="analytic")``: per-layer estimates and their total (layers run one after
    another; within a layer compute and DRAM overlap perfectly)."""
    chip: ChipConfig
    layers: tuple

    @property
    def cycles(self) -> int:
        return sum(l.cycles for l in self.layers)

    @property
    def dram_bytes(self) -> int:
        return sum(l.dram_bytes for l in self.layers)

    @property
    def time_s(self) -> float:
        return self.cycles / self.chip.clock_hz

    def summary(self) -> str:
        lines = [f"analytic estimate on {self.chip.name!r} (no instruction-level simulation: compute and DRAM "
                 f"overlap perfectly, no stalls): {self.cycles:,} cycles, {self.dram_bytes:,} DRAM bytes"]
        for l in self.layers:
            lines.append(f"  {l.name:<12} {l.description:<34} {l.cycles:>16,} cycles ({l.bound}-bound; "
                         f"{l.instructions:,} instructions if simulated)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<AnalyticEstimate on {self.chip.name!r}: {len(self.layers)} layers, {self.cycles:,} cycles>"


def _dram_cycles(nbytes: int, chip: ChipConfig) -> int:
    return math.ceil(nbytes / chip.dram.bytes_per_cycle)


def _matrix_estimate(layer, activation, chip: ChipConfig, on_overflow: str) -> LayerEstimate:
    M, N, K = layer.gemm
    m = chip.matrix
    word = getattr(layer, "word_bytes", None) or m.input_bytes     # as _Lowering.matrix_layer tiles and times it
    pack = m.macs_per_pe(word)
    tiling_chip = chip if word == m.input_bytes else chip.with_(input_bytes=word)
    plan = plan_gemm_tiles(M, N, K, tiling_chip, ifmap_words=layer.ifmap_words, on_overflow=on_overflow,
                           what=f"layer {layer.name!r} ({layer.describe()})")
    count = getattr(layer, "count", 1)                          # a batched matmul replays the schedule per product
    a_loads, b_loads = tile_loads(plan)
    res = resident_buffer(chip)
    a_h, b_h, o_h = (len(route_hops(chip, op, res)) for op in ("ifmap", "filter", "ofmap"))
    nM, nN, _ = plan.tiles
    instructions = count * (plan.tile_count + a_h * sum(a_loads.values()) + b_h * sum(b_loads.values())
                            + nM * nN * (o_h + (1 if activation else 0)))
    ms, ns, ks = _sizes(M, plan.Mt), _sizes(N, plan.Nt), _sizes(K, plan.Kt)
    compute = 0
    for mt, cm in ms.items():
        for nt, cn in ns.items():
            if activation:
                compute += cm * cn * elementwise_cost(activation, mt * nt, chip).cycles
            for kt, ck in ks.items():
                compute += cm * cn * ck * matrix_gemm(mt, nt, -(-kt // pack), chip).elapsed_cycles
    compute *= count
    dram = count * plan.total_dram_bytes
    name = layer.describe() + (f" + {activation}" if activation and not layer.activation else "")
    return LayerEstimate(layer.name, name, instructions, compute, dram, _dram_cycles(dram, chip))


def _vector_estimate(layer, chip: ChipConfig) -> LayerEstimate:
    unit_in, unit_out, units, chunk = vector_chunks(layer, chip)
    full, rest = divmod(units, chunk)
    resident = resident_buffer(chip) is not None
    compute = full * vector_cycles(layer, chunk, chip) + (vector_cycles(layer, rest, chip) if rest else 0)
    dram = 0 if resident else units * (unit_in + unit_out) * word_bytes(layer, chip)
    instructions = (full + (1 if rest else 0)) * (1 if resident else 3)
    return LayerEstimate(layer.name, layer.describe(), instructions, compute, dram, _dram_cycles(dram, chip))


def estimate_layers(layers, chip, *, fuse_activations: bool = True, on_overflow: str = "tile") -> AnalyticEstimate:
    """The analytic estimate of ``layers`` on ``chip`` (fusing activations into the matmul before them, as
    ``lower_layers`` does), in microseconds whatever the layer sizes."""
    chip = preset(chip)
    out = [_matrix_estimate(layer, act, chip, on_overflow) if isinstance(layer, (Gemm, Conv))
           else _vector_estimate(layer, chip) for layer, act in layer_steps(list(layers), fuse_activations)]
    return AnalyticEstimate(chip, tuple(out))


def count_instructions(layers, chip, **kw) -> int:
    """How many instructions ``lower_layers(layers, chip)`` would build (counted in closed form)."""
    return sum(l.instructions for l in estimate_layers(layers, chip, **kw).layers)


def check_size(layers, chip, *, limit: int | None = None, **kw) -> None:
    """Raise :class:`SimulationTooLarge` if the layers lower to more than ``limit`` instructions."""
    limit = MAX_INSTRUCTIONS if limit is None else limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_instructions={limit!r} must be a positive int")
    est = estimate_layers(layers, chip, **kw)
    total = sum(l.instructions for l in est.layers)
    if total <= limit:
        return
    worst = max(est.layers, key=lambda l: l.instructions)
    raise SimulationTooLarge(
        f"these layers lower to about {total:,} instructions on {est.chip.name!r}, over max_instructions="
        f"{limit:,} (about two seconds of simulation); layer {worst.name!r} ({worst.description}) alone is "
        f"{worst.instructions:,}. Its analytic estimate takes microseconds: simulate_layer(layer, chip, "
        f"mode='analytic') gives {est.cycles:,} cycles for all the layers ({worst.bound}-bound for "
        f"{worst.name!r}; perfect overlap, no stalls). To simulate anyway, pass max_instructions={total:,} "
        f"(expect about {total / 130_000:,.0f} s).")
