"""Event-driven simulation of a tile program: when each unit is busy, stalled, or idle, and why.

Units work in parallel, each through its own in-order queue (like Ascend's pipes: cube, vector,
scalar, MTE1/2/3): the scalar unit issues instructions in program order (``scalar_issue_cycles``
each, and it waits when the target unit's queue is full); a unit starts its next instruction once
it was issued and every instruction it depends on has finished. DMA transfers to or from DRAM
share one DRAM channel at ``bytes_per_cycle`` — a transfer waits for the channel, occupies it (and
its engine) for ceil(bytes / bandwidth) cycles, and its data arrive ``latency_cycles`` later, while
the engine already issues its next request (DMA requests are pipelined); on-chip moves use their
engine's own bandwidth.

The result has the totals (cycles, time at the clock, achieved vs peak TOPS), per-unit busy /
stall / idle cycles with the stall causes, and a ``Trace`` (one lane per unit, Chrome trace-event
JSON via ``aisys.framework.events``). A *stall* is a gap between a unit's first and last
instruction — waiting for data ("data <- mte2"), for a buffer slot to be freed ("slot <- matrix"),
for instruction issue ("issue"), for the DRAM channel ("dram busy"), or for the previous layer to
drain and the next one's first tiles to arrive ("layer start"); before its first and after its last
instruction a unit is *idle*.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import ChipConfig, preset

QUEUE_DEPTH = 16
LAYER_START = "layer start"


@dataclass
class UnitStats:
    busy: int = 0
    stall: int = 0
    idle: int = 0
    stall_causes: dict = field(default_factory=dict)

    @property
    def steady_stall(self) -> int:
        """Stall cycles inside layers (everything but the bubbles at layer starts)."""
        return self.stall - self.stall_causes.get(LAYER_START, 0)

    def add_stall(self, cause: str, cycles: int) -> None:
        if cycles > 0:
            self.stall += cycles
            self.stall_causes[cause] = self.stall_causes.get(cause, 0) + cycles


@dataclass
class Segment:
    unit: str
    start: int
    end: int
    state: str          # busy | stall
    label: str          # instruction name, or the stall cause
    instruction: int = -1


@dataclass
class ProgramResult:
    """The simulated run of a ``Program``: times per instruction, per-unit statistics, segments."""
    program: object
    chip: ChipConfig
    cycles: int
    issue: list
    start: list
    end: list
    unit_stats: dict
    segments: list
    free: list = field(default_factory=list)   # per instruction: when its unit could start the next one

    @property
    def time_s(self) -> float:
        return self.cycles / self.chip.clock_hz

    @property
    def macs(self) -> int:
        return self.program.macs

    @property
    def achieved_tops(self) -> float:
        return 2 * self.macs / self.time_s / 1e12 if self.cycles else 0.0

    @property
    def peak_tops(self) -> float:
        return self.chip.peak_tops

    @property
    def utilization(self) -> float:
        """MACs done / MACs the matrix unit could have done in the run's cycles."""
        return self.macs / (self.chip.peak_macs_per_cycle * self.cycles) if self.cycles else 0.0

    @property
    def dram_bytes(self) -> dict:
        return self.program.dram_bytes

    @property
    def units(self) -> list[str]:
        return list(self.unit_stats)

    def layer_cycles(self) -> dict:
        """Per layer: (first start, last end) of its instructions."""
        spans: dict = {}
        for ins in self.program.instructions:
            s, e = self.start[ins.id], self.end[ins.id]
            a, b = spans.get(ins.layer, (s, e))
            spans[ins.layer] = (min(a, s), max(b, e))
        return spans

    def unit_segments(self, unit: str) -> list:
        return [s for s in self.segments if s.unit == unit]

    def pe_heat(self, start: int = 0, end: int | None = None):
        """The matrix unit's PEs over cycles [start, end): the share of those cycles each PE spends on
        useful MACs (rows × cols). Each matmul instruction adds its tile's per-PE MAC counts (from the
        analytic model of the unit), weighted by the part of it that falls in the window; a cube's output
        position does k0 MACs per cycle, so its counts are divided by the depth."""
        import numpy as np

        from .cube import matrix_gemm
        end = self.cycles if end is None else end
        m = self.chip.matrix
        heat = np.zeros((m.rows, m.cols))
        per_tile: dict = {}
        for ins in self.program.instructions:
            if ins.kind != "matmul":
                continue
            s, e = self.start[ins.id], self.end[ins.id]
            overlap = min(e, end) - max(s, start)
            if overlap <= 0 or e <= s:
                continue
            if ins.dims not in per_tile:
                per_tile[ins.dims] = matrix_gemm(*ins.dims, self.chip).pe_macs()
            heat += per_tile[ins.dims] * (overlap / (e - s))
        if m.kind == "cube":
            heat /= m.depth
        return heat / max(1, end - start)

    def trace(self):
        """The run as a ``Trace``: one lane per unit; busy events named after the instruction, stall
        events named "stall: <cause>" (args: state, layer, bytes/cycles)."""
        from aisys.framework.events import Trace
        tr = Trace(f"{self.chip.name} program", unit="cycles", clock_hz=self.chip.clock_hz)
        instrs = self.program.instructions
        order = {unit: k for k, unit in enumerate(self.unit_stats)}   # lanes appear in unit order
        for seg in sorted(self.segments, key=lambda s: (order.get(s.unit, len(order)), s.start)):
            args = {"state": seg.state}
            if seg.unit == "scalar" and seg.instruction >= 0:
                args["issues"] = seg.instruction          # the scalar unit only dispatches it
            elif seg.instruction >= 0:
                ins = instrs[seg.instruction]
                args.update(layer=ins.layer, kind=ins.kind)
                if ins.bytes:
                    args["bytes"] = ins.bytes
                if ins.macs:
                    args["macs"] = ins.macs
            name = seg.label if seg.state == "busy" else f"stall: {seg.label}"
            tr.add_event(seg.unit, name, seg.start, seg.end, **args)
        total = 0
        for ins in sorted((i for i in instrs if i.uses_dram), key=lambda i: self.end[i.id]):
            total += ins.bytes
            tr.add_counter("DRAM bytes moved", self.end[ins.id], total)
        return tr

    def summary(self) -> str:
        chip = self.chip
        lines = [f"{chip.name}: {len(self.program.instructions)} instructions, {self.cycles:,} cycles = "
                 f"{self.time_s * 1e6:.4g} us at {chip.clock_hz / 1e6:g} MHz",
                 f"  {self.macs:,} MACs: achieved {self.achieved_tops:.4g} TOPS of {self.peak_tops:.4g} peak "
                 f"(utilization {100 * self.utilization:.1f}%)",
                 f"  DRAM read {self.dram_bytes['read']:,} B, written {self.dram_bytes['write']:,} B",
                 f"  {'unit':<12} {'busy':>10} {'stall':>10} {'idle':>10}  stall causes"]
        for unit, st in self.unit_stats.items():
            causes = ", ".join(f"{c} {n:,}" for c, n in sorted(st.stall_causes.items(), key=lambda kv: -kv[1]))
            lines.append(f"  {unit:<12} {st.busy:>10,} {st.stall:>10,} {st.idle:>10,}  {causes}")
        return "\n".join(lines)


def simulate(program, chip: ChipConfig | str | None = None, *, queue_depth: int = QUEUE_DEPTH) -> ProgramResult:
    """Play ``program`` out cycle-accurately at the instruction level (see the module docstring).

    ``chip`` overrides the program's chip (e.g. a different DRAM bandwidth) for what-if runs; the
    instructions themselves (tile sizes, matmul cycles) stay as they were lowered.
    """
    chip = program.chip if chip is None else preset(chip)
    if isinstance(queue_depth, bool) or not isinstance(queue_depth, int) or queue_depth < 1:
        raise ValueError(f"simulate: queue_depth must be a positive integer, got {queue_depth!r}")
    instrs = program.instructions
    n = len(instrs)
    units = list(program.units)
    for ins in instrs:
        if ins.unit not in units:
            units.append(ins.unit)
    queues = {u: [] for u in units}
    for ins in instrs:
        queues[ins.unit].append(ins.id)
    qpos = {u: 0 for u in units}
    issued = {u: 0 for u in units}
    unit_free = {u: 0 for u in units}
    issue = [-1] * n
    start = [-1] * n
    end = [-1] * n
    grant = [-1] * n
    free_at = [-1] * n          # when the unit could take its next instruction
    inflight: list[int] = []    # completion times of DRAM transfers still in flight
    scalar_c = chip.scalar_issue_cycles
    dram_bpc = chip.dram.bytes_per_cycle
    latency = chip.dram.latency_cycles
    segments: list[Segment] = []
    channel_free = 0
    next_issue, scalar_free = 0, 0
    blocked_since, blocked_on = None, None
    started = 0
    t = 0
    while started < n:
        progress = True
        while progress:
            progress = False
            while next_issue < n and scalar_free <= t:
                u = instrs[next_issue].unit
                if issued[u] - qpos[u] >= queue_depth:
                    if blocked_since is None:
                        blocked_since, blocked_on = t, u
                    break
                if blocked_since is not None:
                    segments.append(Segment("scalar", blocked_since, t, "stall", f"queue full ({blocked_on})"))
                    blocked_since = None
                issue[next_issue] = t + scalar_c
                if scalar_c:
                    segments.append(Segment("scalar", t, t + scalar_c, "busy", f"issue #{next_issue}", next_issue))
                scalar_free = t + scalar_c
                issued[u] += 1
                next_issue += 1
                progress = True
                if scalar_c:
                    break
            for u in units:
                if u == "scalar" or unit_free[u] > t or qpos[u] >= len(queues[u]):
                    continue
                i = queues[u][qpos[u]]
                if issue[i] < 0 or issue[i] > t:
                    continue
                ins = instrs[i]
                if any(end[d] < 0 or end[d] > t for d, _ in ins.deps):
                    continue
                start[i] = t
                if ins.kind in ("load", "store", "move"):
                    if ins.uses_dram:
                        g = max(t, channel_free)
                        transfer = _cycles_for(ins.bytes, dram_bpc)
                        channel_free = g + transfer
                        grant[i] = g
                        # the engine is free once its bytes are on the channel; the data land
                        # `latency` cycles later, while the engine already serves the next request
                        free_at[i] = g + transfer
                        end[i] = g + transfer + latency
                        if latency:
                            inflight.append(end[i])
                    else:
                        bw = chip.engine_bytes_per_cycle.get(u)
                        if bw is None:
                            raise ValueError(f"simulate: engine {u!r} moves {ins.src} -> {ins.dst} on chip but "
                                             f"{chip.name!r} gives it no bandwidth (engine_bytes_per_cycle)")
                        end[i] = t + _cycles_for(ins.bytes, bw)
                else:
                    end[i] = t + ins.cycles
                if free_at[i] < 0:
                    free_at[i] = end[i]
                unit_free[u] = free_at[i]
                qpos[u] += 1
                started += 1
                progress = True
        if started >= n:
            break
        # the next moment anything can change: a unit frees up, the scalar unit finishes an issue,
        # or a queued instruction's issue completes (dependencies end when their unit frees up)
        inflight = [e for e in inflight if e > t]
        future = [unit_free[u] for u in units if unit_free[u] > t] + inflight
        if next_issue < n and scalar_free > t:
            future.append(scalar_free)
        future += [issue[queues[u][qpos[u]]] for u in units
                   if qpos[u] < len(queues[u]) and issue[queues[u][qpos[u]]] > t]
        if not future:
            stuck = [instrs[queues[u][qpos[u]]] for u in units if qpos[u] < len(queues[u])]
            raise RuntimeError(f"simulate: no unit can make progress at cycle {t}; waiting: "
                               + "; ".join(f"#{s.id} {s.name} on {s.unit} needs {[d for d, _ in s.deps]}"
                                           for s in stuck[:4]))
        t = min(future)
    cycles = max([0] + end + [scalar_free])
    stats = {u: UnitStats() for u in units}
    # busy segments and the gaps between them, per unit
    for u in units:
        if u == "scalar":
            continue
        prev_end, prev_layer = None, None
        for i in queues[u]:
            ins = instrs[i]
            s = start[i]
            if prev_end is not None and s > prev_end:
                _attribute_gap(segments, stats[u], u, prev_end, s, issue[i], ins, instrs, end,
                               layer_start=ins.layer != prev_layer)
            prev_layer = ins.layer
            if grant[i] > s:
                segments.append(Segment(u, s, grant[i], "stall", "dram busy", i))
                stats[u].add_stall("dram busy", grant[i] - s)
                s = grant[i]
            e = free_at[i]
            if e > s:
                segments.append(Segment(u, s, e, "busy", ins.name, i))
                stats[u].busy += e - s
            prev_end = max(prev_end or 0, free_at[i])
    for seg in segments:
        if seg.unit == "scalar":
            if seg.state == "busy":
                stats["scalar"].busy += seg.end - seg.start
            else:
                stats["scalar"].add_stall(seg.label, seg.end - seg.start)
    for st in stats.values():
        st.idle = cycles - st.busy - st.stall
    return ProgramResult(program, chip, cycles, issue, start, end, stats, segments, free_at)


def _cycles_for(nbytes: int, bytes_per_cycle: float) -> int:
    """Whole cycles to move ``nbytes``; the tolerance keeps e.g. 4096 B at 4096/7 B/cycle at 7 cycles
    despite floating-point rounding of the bandwidth."""
    return math.ceil(nbytes / bytes_per_cycle - 1e-9) if nbytes else 0


def _attribute_gap(segments, stats, unit, gap_start, gap_end, issued_at, ins, instrs, end, layer_start):
    """Split a unit's idle gap into 'issue' (not yet issued) and waits on the last dependency.

    The wait before a unit's first instruction of a new layer is labelled "layer start": the
    previous layer must drain and this one's first tiles arrive, a bubble no bandwidth can hide.
    """
    t = gap_start
    if issued_at > t:
        upto = min(issued_at, gap_end)
        segments.append(Segment(unit, t, upto, "stall", "issue", ins.id))
        stats.add_stall("issue", upto - t)
        t = upto
    if t < gap_end:
        blocking = [(end[d], d, r) for d, r in ins.deps if end[d] > t]
        if layer_start:
            cause = LAYER_START
        elif blocking:
            _, d, reason = max(blocking)
            cause = f"{reason} <- {instrs[d].unit}"
        else:
            cause = "in-order queue"
        segments.append(Segment(unit, t, gap_end, "stall", cause, ins.id))
        stats.add_stall(cause, gap_end - t)


def bandwidth_demand(program) -> dict:
    """Average DRAM bytes per cycle each layer needs to keep its compute unit busy (and ``"total"``).

    Bytes the layer moves to and from DRAM divided by the cycles its matrix unit (or, for vector
    layers, its vector unit) computes — the rate that would keep up if compute never waited. It is
    an average: bursts (a whole output tile written back at once) can need more for a moment, which
    is what ``bandwidth_for_zero_stalls`` measures.
    """
    moved: dict = {}
    work: dict = {"matrix": {}, "vector": {}}
    for ins in program.instructions:
        if ins.uses_dram:
            moved[ins.layer] = moved.get(ins.layer, 0) + ins.bytes
        if ins.unit in work:
            work[ins.unit][ins.layer] = work[ins.unit].get(ins.layer, 0) + ins.cycles
    out, total_bytes, total_cycles = {}, 0, 0
    for layer in dict.fromkeys(ins.layer for ins in program.instructions):
        cycles = work["matrix"].get(layer) or work["vector"].get(layer, 0)
        nbytes = moved.get(layer, 0)
        out[layer] = nbytes / cycles if cycles else math.inf
        total_bytes += nbytes
        total_cycles += cycles
    out["total"] = total_bytes / total_cycles if total_cycles else math.inf
    return out


def bandwidth_for_zero_stalls(program, *, rel_tol: float = 1e-6, unit: str = "matrix") -> float:
    """Smallest DRAM bandwidth (bytes/cycle) at which ``unit`` stalls inside layers no more than with
    unlimited bandwidth — the stalls that remain then come from DRAM latency, instruction issue or
    other units, which no amount of bandwidth removes. The bubble at each layer start (previous layer
    draining, first tiles arriving) is left out: only infinite bandwidth would close it. Found by
    bisection on the event simulation (SCALE-Sim's CALC mode asks the same question). 0 when
    bandwidth never causes a stall (a single tile: loading it is fill, not a stall).
    """
    chip = program.chip

    def stalls(bw: float) -> int:
        return simulate(program, chip=chip.with_(dram_bytes_per_cycle=bw)).unit_stats[unit].steady_stall

    dram_bytes = sum(i.bytes for i in program.instructions if "dram" in (i.src, i.dst))
    if dram_bytes == 0:
        return 0.0
    hi = float(dram_bytes)                 # every transfer then takes one cycle: bandwidth is no limit
    target = stalls(hi)
    lo = dram_bytes / 1e9
    if stalls(lo) <= target:               # e.g. a single tile: loading it is fill, never a stall
        return 0.0
    while hi - lo > rel_tol * hi:
        mid = (lo + hi) / 2
        if stalls(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi
