"""Energy = Σ actions x energy per action (an Accelergy-style energy reference table, ERT).

The default table uses the 45 nm figures of M. Horowitz, "Computing's energy problem (and what
we can do about it)", ISSCC 2014: an 8-bit multiply 0.2 pJ, a 32-bit add 0.1 pJ, a 16-bit float
multiply 1.1 pJ and add 0.4 pJ, 32-bit float 3.7 / 0.9 pJ; a 64-bit read of a 32 KB SRAM 20 pJ;
a 64-bit DRAM access 1.3–2.6 nJ. So one DRAM byte costs ~500x an int8 MAC — the "data movement
dominates" lesson. The idle PE-cycle energy (clock and leakage) is an assumption: 10% of a MAC.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import preset

_HOROWITZ_MAC_PJ = {"int8": 0.2 + 0.1, "fp16": 1.1 + 0.4, "fp32": 3.7 + 0.9}
_PRECISION_OF_BYTES = {1: "int8", 2: "fp16", 4: "fp32"}


def mac_pj(word_bytes: int) -> float:
    """Horowitz's energy of one MAC on ``word_bytes``-wide operands: int8 0.3 pJ, fp16 1.5 pJ, fp32 4.6 pJ."""
    if word_bytes not in _PRECISION_OF_BYTES:
        raise ValueError(f"mac_pj: no MAC energy for {word_bytes}-byte words; the table has 1 (int8), 2 (fp16), "
                         f"4 (fp32)")
    return _HOROWITZ_MAC_PJ[_PRECISION_OF_BYTES[word_bytes]]


@dataclass(frozen=True)
class EnergyTable:
    """pJ per action: one MAC, one SRAM byte read or written, one DRAM byte, one idle PE-cycle."""
    name: str
    mac_pj: float
    sram_pj_per_byte: float
    dram_pj_per_byte: float
    idle_pe_cycle_pj: float
    sources: dict = field(default_factory=dict)

    def __post_init__(self):
        for f in ("mac_pj", "sram_pj_per_byte", "dram_pj_per_byte", "idle_pe_cycle_pj"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"EnergyTable {self.name!r}: {f} must be a number >= 0, got {v!r}")


def horowitz_45nm(dtype: str = "int8") -> EnergyTable:
    """Horowitz ISSCC 2014 (45 nm) energies for MACs on ``dtype`` ("int8", "fp16", "fp32")."""
    if dtype not in _HOROWITZ_MAC_PJ:
        raise ValueError(f"horowitz_45nm: dtype must be one of {sorted(_HOROWITZ_MAC_PJ)}, got {dtype!r}")
    mac = _HOROWITZ_MAC_PJ[dtype]
    return EnergyTable(
        name=f"Horowitz 45nm {dtype}", mac_pj=mac, sram_pj_per_byte=20.0 / 8, dram_pj_per_byte=1300.0 / 8,
        idle_pe_cycle_pj=0.1 * mac,
        sources={"mac": "Horowitz ISSCC 2014: int8 MAC = 8b mult 0.2 + 32b add 0.1 pJ; fp16 = 1.1 + 0.4; "
                        "fp32 = 3.7 + 0.9",
                 "sram": "Horowitz ISSCC 2014: 64-bit read of a 32 KB SRAM = 20 pJ -> 2.5 pJ/B",
                 "dram": "Horowitz ISSCC 2014: 64-bit DRAM access 1.3-2.6 nJ; low end -> 162.5 pJ/B",
                 "idle": "assumption: clock + leakage of an idle PE ~ 10% of a MAC"})


@dataclass(frozen=True)
class EnergyBreakdown:
    """Action counts and the energy (pJ) each category costs. ``mac_energy_pj``, when given, is the MAC energy
    summed per instruction (a program mixing precisions, or zero-skipping PEs that gate the zero weights'
    MACs); otherwise every MAC costs ``table.mac_pj``."""
    macs: int
    sram_bytes: int
    dram_bytes: int
    idle_pe_cycles: int
    table: EnergyTable
    mac_energy_pj: float | None = None

    @property
    def parts_pj(self) -> dict:
        t = self.table
        mac = self.macs * t.mac_pj if self.mac_energy_pj is None else self.mac_energy_pj
        return {"MAC": mac, "SRAM": self.sram_bytes * t.sram_pj_per_byte,
                "DRAM": self.dram_bytes * t.dram_pj_per_byte, "idle": self.idle_pe_cycles * t.idle_pe_cycle_pj}

    @property
    def total_pj(self) -> float:
        return sum(self.parts_pj.values())

    @property
    def fractions(self) -> dict:
        total = self.total_pj
        return {k: (v / total if total else 0.0) for k, v in self.parts_pj.items()}

    @property
    def pj_per_mac(self) -> float:
        return self.total_pj / self.macs if self.macs else float("inf")

    def summary(self) -> str:
        lines = [f"energy ({self.table.name}): {self.total_pj / 1e6:.4g} uJ, {self.pj_per_mac:.3g} pJ per MAC"]
        counts = {"MAC": f"{self.macs:,} MACs", "SRAM": f"{self.sram_bytes:,} B", "DRAM": f"{self.dram_bytes:,} B",
                  "idle": f"{self.idle_pe_cycles:,} PE-cycles"}
        for k, v in self.parts_pj.items():
            lines.append(f"  {k:<5} {counts[k]:>22}  {v / 1e6:>10.4g} uJ  {100 * self.fractions[k]:5.1f}%")
        return "\n".join(lines)


def energy_breakdown(run, table: EnergyTable | None = None, chip=None) -> EnergyBreakdown:
    """Energy of a ``MatrixReport`` (one GEMM) or a ``ProgramResult`` (a simulated program).

    MatrixReport: its MACs, SRAM words (operand bytes from ``chip``, default 1-byte inputs and
    4-byte accumulators), DRAM words, and idle PE-cycles = PEs x elapsed cycles − MACs.
    ProgramResult: the matrix unit's SRAM reads/writes per tile (from the analytic model), plus every
    byte a DMA engine writes into and reads out of a buffer, the DRAM bytes, and idle PE-cycles. Each tile's
    MACs cost what a MAC of its operand width costs (``mac_pj``; int8 tiles on a wider datapath are cheaper);
    on a chip with ``zero_skipping`` PEs, only the MACs of non-zero weights spend energy.
    """
    from .eventsim import ProgramResult
    from .systolic import MatrixReport
    if isinstance(run, MatrixReport):
        c = preset(chip) if chip is not None else None
        in_b = c.matrix.input_bytes if c else 1
        acc_b = c.matrix.acc_bytes if c else 4
        table = table or horowitz_45nm("int8" if in_b == 1 else "fp16")
        pes = run.rows * run.cols * run.depth
        return EnergyBreakdown(run.macs, run.sram_bytes(in_b, acc_b), run.dram_bytes(in_b, in_b),
                               max(0, pes * run.elapsed_cycles - run.macs), table)
    if isinstance(run, ProgramResult):
        from .cube import matrix_gemm
        c = run.chip
        in_b, acc_b = c.matrix.input_bytes, c.matrix.acc_bytes
        explicit = table is not None
        table = table or horowitz_45nm(_PRECISION_OF_BYTES.get(in_b, "fp16"))
        sram = 0
        mac_energy = 0.0
        per_instruction = c.matrix.zero_skipping      # else every MAC costs table.mac_pj, as before
        reports = {}
        for ins in run.program.instructions:
            if ins.kind == "matmul":
                wb = ins.word_bytes or in_b
                if (ins.dims, wb) not in reports:
                    rep = matrix_gemm(*ins.dims, c)
                    r, w = rep.sram_reads, rep.sram_writes
                    reports[(ins.dims, wb)] = (r["ifmap"] + r["filter"]) * wb + (r["ofmap"] + w["ofmap"]) * acc_b
                sram += reports[(ins.dims, wb)]
                per_instruction |= wb != in_b
                active = ins.macs * (ins.density if c.matrix.zero_skipping else 1.0)
                mac_energy += active * (table.mac_pj if explicit else mac_pj(wb))
            elif ins.kind in ("load", "move", "store"):
                sram += ins.bytes * ((ins.src != "dram") + (ins.dst != "dram"))
        dram = run.dram_bytes["read"] + run.dram_bytes["write"]
        idle = max(0, c.peak_macs_per_cycle * run.cycles - run.macs)
        return EnergyBreakdown(run.macs, sram, dram, idle, table, mac_energy if per_instruction else None)
    raise TypeError(f"energy_breakdown: expected a MatrixReport or a ProgramResult, got {type(run).__name__}")
