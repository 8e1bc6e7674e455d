"""Tile programs: the instruction stream the simulated chip runs, one instruction per unit and tile —

    load / move / store   a DMA engine moves a tile DRAM -> buffer -> buffer -> DRAM
    matmul                the matrix unit multiplies one tile (cycles from the analytic model)
    vector                the vector unit runs an activation, pooling, softmax or norm on a tile

— with explicit dependencies, like Ascend's set_flag/wait_flag events: *data* (the tile this instruction
reads was produced by that one) and *slot* (the buffer half this instruction writes was freed by that
one). The scalar unit issues every instruction in program order; ``aisys.chip.simulate`` plays the
program out event by event. ``aisys.chip.lower_layers`` writes programs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import ChipConfig


@dataclass
class Instruction:
    """One tile instruction. ``deps`` are (instruction id, "data" | "slot") pairs."""
    id: int
    unit: str
    kind: str            # load | move | store | matmul | vector
    name: str
    layer: str
    cycles: int = 0      # matmul / vector: fixed duration
    bytes: int = 0       # load / move / store: bytes moved
    src: str = ""
    dst: str = ""
    deps: tuple = ()
    macs: int = 0
    dims: tuple = ()     # matmul: the tile's (M, N, K)
    word_bytes: int = 0  # matmul: operand width (energy per MAC depends on it); 0: the chip's native word
    density: float = 1.0  # matmul: share of non-zero weights (zero-skipping PEs gate the rest)

    @property
    def uses_dram(self) -> bool:
        return "dram" in (self.src, self.dst)


@dataclass
class Program:
    """Tile instructions in issue order, for one chip, with the tiling chosen for each layer."""
    chip: ChipConfig
    layers: list
    instructions: list = field(default_factory=list)
    plans: dict = field(default_factory=dict)        # layer name -> TilePlan
    layer_last: dict = field(default_factory=dict)   # layer name -> id of its last output instruction

    def add(self, unit: str, kind: str, name: str, layer: str, deps=(), **kw) -> int:
        clean = tuple(dict.fromkeys((d, r) for d, r in deps if d is not None))
        instr = Instruction(len(self.instructions), unit, kind, name, layer, deps=clean, **kw)
        self.instructions.append(instr)
        return instr.id

    @property
    def units(self) -> list[str]:
        order = ["scalar", "matrix", "vector", *self.chip.engines]
        return [u for u in order if u == "scalar" or any(i.unit == u for i in self.instructions)] or ["scalar"]

    def count(self, unit: str | None = None, kind: str | None = None) -> int:
        return sum(1 for i in self.instructions if (unit is None or i.unit == unit) and (kind is None or i.kind == kind))

    @property
    def macs(self) -> int:
        return sum(i.macs for i in self.instructions)

    @property
    def dram_bytes(self) -> dict:
        reads = sum(i.bytes for i in self.instructions if i.src == "dram")
        writes = sum(i.bytes for i in self.instructions if i.dst == "dram")
        return {"read": reads, "write": writes}

    def summary(self) -> str:
        kinds = {}
        for i in self.instructions:
            kinds[(i.unit, i.kind)] = kinds.get((i.unit, i.kind), 0) + 1
        lines = [f"program for {self.chip.name}: {len(self.layers)} layers, {len(self.instructions)} instructions, "
                 f"{self.macs:,} MACs, DRAM read {self.dram_bytes['read']:,} B / write {self.dram_bytes['write']:,} B"]
        for (unit, kind), n in kinds.items():
            lines.append(f"  {unit:<12} {kind:<7} x{n}")
        return "\n".join(lines)

    def listing(self, limit: int = 40) -> str:
        """The first ``limit`` instructions, one per line (what the scalar unit issues)."""
        out = []
        for i in self.instructions[:limit]:
            what = (f"{i.bytes:,} B {i.src}->{i.dst}" if i.kind in ("load", "move", "store")
                    else f"{i.cycles:,} cycles")
            deps = ", ".join(f"{'#' if r == 'data' else 'slot#'}{d}" for d, r in i.deps)
            out.append(f"#{i.id:<5} {i.unit:<11} {i.kind:<6} {i.name:<28} {what}" + (f"  after {deps}" if deps else ""))
        if len(self.instructions) > limit:
            out.append(f"... {len(self.instructions) - limit} more")
        return "\n".join(out)
