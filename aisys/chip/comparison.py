"""Running several versions of a model on the chip side by side: what compression buys in cycles and energy.

``compare_graphs({"fp32": g, "int8": g_int, "90% sparse": g_sparse}, chip)`` lowers each graph, simulates it
event by event and prices it with the energy table; the first entry is the baseline every ratio is taken
against. An entry may bring its own chip, ``(graph, chip)`` — the fp32 model on the fp32-equivalent of an
int8 chip, say (``ChipConfig.with_datapath``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import preset
from .energy import EnergyBreakdown, energy_breakdown
from .eventsim import ProgramResult, simulate
from .from_graph import lower_graph

__all__ = ["ChipRun", "Comparison", "compare_graphs"]


@dataclass
class ChipRun:
    """One graph on one chip: the simulated run and its energy."""
    name: str
    result: ProgramResult
    energy: EnergyBreakdown

    @property
    def cycles(self) -> int:
        return self.result.cycles

    @property
    def dram_bytes(self) -> int:
        d = self.result.dram_bytes
        return d["read"] + d["write"]

    @property
    def macs(self) -> int:
        return self.result.macs


@dataclass
class Comparison:
    """Runs of the same model in several forms; ratios are against ``runs[0]``."""
    runs: list

    @property
    def baseline(self) -> ChipRun:
        return self.runs[0]

    def run(self, name: str) -> ChipRun:
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"no run named {name!r}; runs: {[r.name for r in self.runs]}")

    def speedup(self, name: str) -> float:
        """Baseline cycles / this run's cycles."""
        return self.baseline.cycles / self.run(name).cycles

    def energy_ratio(self, name: str) -> float:
        """Baseline energy / this run's energy (how many times less energy it takes)."""
        return self.baseline.energy.total_pj / self.run(name).energy.total_pj

    def summary(self) -> str:
        b = self.baseline
        lines = [f"{'run':<22} {'chip':<16} {'cycles':>11} {'speedup':>8} {'MACs':>12} {'DRAM bytes':>12} "
                 f"{'energy uJ':>10} {'less energy':>11}"]
        for r in self.runs:
            lines.append(f"{r.name:<22} {r.result.chip.name:<16} {r.cycles:>11,} {b.cycles / r.cycles:>7.2f}x "
                         f"{r.macs:>12,} {r.dram_bytes:>12,} {r.energy.total_pj / 1e6:>10.4g} "
                         f"{b.energy.total_pj / r.energy.total_pj:>10.2f}x")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Comparison of {len(self.runs)} runs: {', '.join(r.name for r in self.runs)}>"


def compare_graphs(graphs: dict, chip=None, **lower_kw) -> Comparison:
    """Lower and simulate each graph (a Graph, or a (Graph, chip) pair) on ``chip``; see the module docstring."""
    if not graphs:
        raise ValueError("compare_graphs: give at least one graph, e.g. {'fp32': aisys.trace(model, x)}")
    runs = []
    for name, entry in graphs.items():
        graph, c = entry if isinstance(entry, tuple) else (entry, chip)
        if c is None:
            raise ValueError(f"compare_graphs: run {name!r} has no chip; pass chip=... or (graph, chip)")
        res = simulate(lower_graph(graph, preset(c), **lower_kw))
        runs.append(ChipRun(str(name), res, energy_breakdown(res)))
    return Comparison(runs)
