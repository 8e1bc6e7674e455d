"""The simulated chip's description: a matrix unit, a vector unit, a scalar unit, buffers, DRAM.

One frozen dataclass (``ChipConfig``) that every chip model reads — the analytic systolic model,
the cycle-level array, the memory model, the program simulator, the roofline and the energy table —
so a preset means the same machine everywhere. Presets (``preset(name)``):

    tiny        4x4 systolic array, small buffers: for animations and hand-checked examples
    scalesim32  32x32, 64 kB per operand, 10 words/cycle: SCALE-Sim's sample configuration
    tpu_v1      256x256 int8 weight-stationary @ 700 MHz, 24 MiB unified buffer, 4 MiB
                accumulators, 34 GB/s weight memory (Jouppi et al., ISCA 2017)
    davinci     16x16x16 fp16 cube + vector unit + L1/L0A/L0B/L0C/UB (Huawei Ascend "Da Vinci" core)

Each preset's ``sources`` maps every parameter to where its value comes from; values that no source
gives are marked "assumption" with the reason. Invalid settings raise ``ValueError`` naming the
field, the value and the rule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from .systolic import MODES

DATAFLOWS = ("os", "ws", "is")
MATRIX_KINDS = ("systolic", "cube")
OPERANDS = ("ifmap", "filter", "ofmap")
KiB = 1024
MiB = 1024 * 1024


def _positive_int(where: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def _positive_number(where: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive finite number, got {value!r}")
    return value


@dataclass(frozen=True)
class MatrixUnit:
    """The matrix engine: a ``rows x cols`` systolic array, or an ``m0 x n0 x k0`` cube.

    ``mode`` is the default timing model of the systolic array (see ``aisys.chip.systolic.MODES``);
    ``input_bytes`` is the operand word size (the datapath width), ``acc_bytes`` the partial-sum word size.
    Narrower integer words pack into the datapath: a PE runs ``input_bytes // word_bytes`` of them per cycle
    (``macs_per_pe``), as Ascend's cube doubles its MACs for int8 (16×32×16 instead of 16×16×16 fp16) and a
    32-bit lane does four int8 MACs with NVIDIA's DP4A or ARM's SDOT. ``zero_skipping``: a PE whose weight is
    zero skips the multiply (clock-gated: it saves that MAC's energy; the wavefront still advances every
    cycle, so the cycle count does not change).
    """
    kind: str = "systolic"
    rows: int = 32
    cols: int = 32
    depth: int = 1            # cube: k0 (the reduction depth of one instruction); systolic: 1
    dataflow: str = "os"      # systolic only
    mode: str = "scalesim"    # systolic only
    input_bytes: int = 1
    acc_bytes: int = 4
    zero_skipping: bool = False

    def __post_init__(self):
        where = "MatrixUnit"
        if self.kind not in MATRIX_KINDS:
            raise ValueError(f"{where}: kind {self.kind!r} is not known; use one of {MATRIX_KINDS}")
        for name in ("rows", "cols", "depth", "input_bytes", "acc_bytes"):
            _positive_int(where, name, getattr(self, name))
        if self.kind == "systolic" and self.depth != 1:
            raise ValueError(f"{where}: a systolic array has depth 1 (one MAC per PE per cycle); "
                             f"got depth={self.depth}. Use kind='cube' for an m0 x n0 x k0 block MAC")
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"{where}: dataflow {self.dataflow!r} is not known; use one of {DATAFLOWS}")
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode {self.mode!r} is not known; use one of {tuple(MODES)}")

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols * self.depth

    def macs_per_pe(self, word_bytes: int | None = None) -> int:
        """MACs one PE does per cycle on ``word_bytes``-wide operands (None: the native word): the datapath
        width over the word width. A word wider than the datapath does not fit."""
        b = self.input_bytes if word_bytes is None else word_bytes
        if isinstance(b, bool) or not isinstance(b, int) or b <= 0:
            raise ValueError(f"MatrixUnit: word_bytes must be a positive integer, got {word_bytes!r}")
        if b > self.input_bytes:
            raise ValueError(f"MatrixUnit: a {b}-byte operand does not fit the {self.input_bytes}-byte datapath; "
                             f"use chip.with_datapath({b}) for a chip whose PEs take {b}-byte words")
        return self.input_bytes // b


@dataclass(frozen=True)
class VectorUnit:
    """SIMD unit for everything that is not a matrix product (activations, pooling, softmax, norms).

    ``lanes`` elements per cycle for a simple op; ``op_cycles`` overrides the cycles per vector of
    ``lanes`` elements for named ops; ``startup_cycles`` is paid once per instruction (pipeline fill).
    """
    lanes: int = 16
    startup_cycles: int = 4
    op_cycles: tuple = ()     # ((op, cycles_per_vector), ...) overrides of vector.DEFAULT_OP_CYCLES

    def __post_init__(self):
        _positive_int("VectorUnit", "lanes", self.lanes)
        if isinstance(self.startup_cycles, bool) or not isinstance(self.startup_cycles, int) \
                or self.startup_cycles < 0:
            raise ValueError(f"VectorUnit: startup_cycles must be an integer >= 0, got {self.startup_cycles!r}")
        for item in self.op_cycles:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ValueError(f"VectorUnit: op_cycles entries are (op_name, cycles) pairs, got {item!r}")
            _positive_number("VectorUnit", f"op_cycles[{item[0]!r}]", item[1])


@dataclass(frozen=True)
class Buffer:
    """An on-chip SRAM. ``double_buffered`` splits it in two halves (compute on one, fill the other),
    so a tile may use at most half of it."""
    name: str
    size_bytes: int
    double_buffered: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Buffer: name must be a non-empty string, got {self.name!r}")
        _positive_int(f"Buffer {self.name!r}", "size_bytes", self.size_bytes)

    @property
    def tile_bytes(self) -> int:
        """The most one tile may occupy: half the buffer when double-buffered."""
        return self.size_bytes // 2 if self.double_buffered else self.size_bytes


@dataclass(frozen=True)
class Dram:
    """Off-chip memory: ``bytes_per_cycle`` at the chip clock, ``latency_cycles`` per request."""
    bytes_per_cycle: float
    latency_cycles: int = 0

    def __post_init__(self):
        _positive_number("Dram", "bytes_per_cycle", self.bytes_per_cycle)
        if isinstance(self.latency_cycles, bool) or not isinstance(self.latency_cycles, int) \
                or self.latency_cycles < 0:
            raise ValueError(f"Dram: latency_cycles must be an integer >= 0, got {self.latency_cycles!r}")


@dataclass(frozen=True)
class Route:
    """How one operand travels: a list of hops ``(engine, from, to)``; ``"dram"`` is off-chip.

    Example (Ascend): the left matrix goes ``(("mte2", "dram", "l1"), ("mte1", "l1", "l0a"))``.
    """
    hops: tuple

    def __post_init__(self):
        for hop in self.hops:
            if not (isinstance(hop, tuple) and len(hop) == 3 and all(isinstance(x, str) and x for x in hop)):
                raise ValueError(f"Route: each hop is (engine, source, destination) strings, got {hop!r}")


@dataclass(frozen=True)
class ChipConfig:
    """A whole accelerator core. Build one from a preset and adjust with :meth:`with_`."""
    name: str
    clock_hz: float
    matrix: MatrixUnit
    vector: VectorUnit
    buffers: tuple                      # of Buffer
    dram: Dram
    routes: dict                        # operand ("ifmap", "filter", "ofmap") -> Route
    engine_bytes_per_cycle: dict = field(default_factory=dict)  # on-chip DMA engines' bandwidth
    scalar_issue_cycles: int = 1        # scalar/control unit cycles to issue one instruction
    resident_activations: bool = False  # activations live on chip between layers (TPU v1's UB)
    description: str = ""
    sources: dict = field(default_factory=dict)

    def __post_init__(self):
        where = f"ChipConfig {self.name!r}"
        _positive_number(where, "clock_hz", self.clock_hz)
        if not isinstance(self.matrix, MatrixUnit):
            raise TypeError(f"{where}: matrix must be a MatrixUnit, got {type(self.matrix).__name__}")
        if not isinstance(self.vector, VectorUnit):
            raise TypeError(f"{where}: vector must be a VectorUnit, got {type(self.vector).__name__}")
        if not isinstance(self.dram, Dram):
            raise TypeError(f"{where}: dram must be a Dram, got {type(self.dram).__name__}")
        if isinstance(self.scalar_issue_cycles, bool) or not isinstance(self.scalar_issue_cycles, int) \
                or self.scalar_issue_cycles < 0:
            raise ValueError(f"{where}: scalar_issue_cycles must be an integer >= 0, "
                             f"got {self.scalar_issue_cycles!r}")
        names = [b.name for b in self.buffers]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: buffer names must be unique, got {names}")
        if "dram" in names:
            raise ValueError(f"{where}: 'dram' is reserved for off-chip memory; rename that buffer")
        for op in OPERANDS:
            if op not in self.routes:
                raise ValueError(f"{where}: routes needs an entry for operand {op!r} (have {sorted(self.routes)})")
        engines = set()
        for op, route in self.routes.items():
            if op not in OPERANDS:
                raise ValueError(f"{where}: routes has unknown operand {op!r}; use {OPERANDS}")
            if not isinstance(route, Route) or not route.hops:
                raise ValueError(f"{where}: route of {op!r} must be a Route with at least one hop")
            for engine, src, dst in route.hops:
                engines.add(engine)
                for place in (src, dst):
                    if place != "dram" and place not in names:
                        raise ValueError(f"{where}: route of {op!r} goes through {place!r}, which is not a "
                                         f"buffer of this chip (buffers: {names})")
                if src != "dram" and dst != "dram" and engine not in self.engine_bytes_per_cycle:
                    raise ValueError(f"{where}: on-chip engine {engine!r} ({src} -> {dst}) needs a bandwidth "
                                     f"in engine_bytes_per_cycle")
            if op == "ofmap":
                if route.hops[-1][2] != "dram" and not self.resident_activations:
                    raise ValueError(f"{where}: the ofmap route must end in 'dram' (got {route.hops[-1]!r})")
            elif route.hops[0][1] != "dram":
                raise ValueError(f"{where}: the {op} route must start in 'dram' (got {route.hops[0]!r})")
        for engine, bw in self.engine_bytes_per_cycle.items():
            _positive_number(where, f"engine_bytes_per_cycle[{engine!r}]", bw)
        # every operand buffer must hold at least one array-sized tile
        m = self.matrix
        need = {"ifmap": m.rows * m.depth * m.input_bytes, "filter": m.depth * m.cols * m.input_bytes,
                "ofmap": m.rows * m.cols * m.acc_bytes}
        if m.kind == "systolic":
            need = {"ifmap": m.rows * m.input_bytes, "filter": m.rows * m.cols * m.input_bytes,
                    "ofmap": m.cols * m.acc_bytes}
        for op in OPERANDS:
            buf = self.buffer(self.operand_buffer(op))
            if buf.tile_bytes < need[op]:
                raise ValueError(
                    f"{where}: buffer {buf.name!r} ({buf.size_bytes} B"
                    f"{', double-buffered so ' + str(buf.tile_bytes) + ' B per tile' if buf.double_buffered else ''}) "
                    f"cannot hold one {op} tile of the {m.rows}x{m.cols} matrix unit ({need[op]} B); "
                    f"make it at least {need[op] * (2 if buf.double_buffered else 1)} B")

    # ---- lookups ------------------------------------------------------------------------------
    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(f"chip {self.name!r} has no buffer {name!r}; buffers: {[b.name for b in self.buffers]}")

    def operand_buffer(self, operand: str) -> str:
        """The buffer the matrix unit reads (ifmap, filter) or accumulates into (ofmap)."""
        hops = self.routes[operand].hops
        return hops[-1][2] if operand != "ofmap" else hops[0][1]

    @property
    def engines(self) -> tuple:
        """DMA engine names in route order (one trace lane each)."""
        out = []
        for op in OPERANDS:
            for engine, _, _ in self.routes[op].hops:
                if engine not in out:
                    out.append(engine)
        return tuple(out)

    # ---- headline figures -----------------------------------------------------------------------
    @property
    def peak_macs_per_cycle(self) -> int:
        return self.matrix.macs_per_cycle

    @property
    def peak_ops_per_s(self) -> float:
        """Peak arithmetic rate, counting a MAC as 2 operations (the TOPS convention)."""
        return 2.0 * self.peak_macs_per_cycle * self.clock_hz

    @property
    def peak_tops(self) -> float:
        return self.peak_ops_per_s / 1e12

    @property
    def dram_bytes_per_s(self) -> float:
        return self.dram.bytes_per_cycle * self.clock_hz

    @property
    def ridge_point(self) -> float:
        """Roofline ridge in operations (2 per MAC) per DRAM byte."""
        return self.peak_ops_per_s / self.dram_bytes_per_s

    @property
    def ridge_point_macs(self) -> float:
        """Roofline ridge in MACs per DRAM byte (the TPU v1 paper's x-axis unit)."""
        return self.ridge_point / 2.0

    # ---- editing --------------------------------------------------------------------------------
    def with_(self, **changes) -> "ChipConfig":
        """A copy with some fields changed (validated). Nested shortcuts: ``rows``, ``cols``,
        ``dataflow``, ``mode`` (matrix unit), ``dram_bytes_per_cycle``, ``dram_latency_cycles``,
        ``lanes`` (vector unit), and ``<buffer name>=<bytes>`` to resize one buffer."""
        matrix_keys = {"rows", "cols", "depth", "dataflow", "mode", "input_bytes", "acc_bytes", "kind", "zero_skipping"}
        own = {f.name for f in fields(self)}
        buffer_names = {b.name for b in self.buffers}
        matrix = {k: changes.pop(k) for k in list(changes) if k in matrix_keys}
        dram = {}
        if "dram_bytes_per_cycle" in changes:
            dram["bytes_per_cycle"] = changes.pop("dram_bytes_per_cycle")
        if "dram_latency_cycles" in changes:
            dram["latency_cycles"] = changes.pop("dram_latency_cycles")
        vector = {}
        if "lanes" in changes:
            vector["lanes"] = changes.pop("lanes")
        resize = {k: changes.pop(k) for k in list(changes) if k in buffer_names}
        unknown = set(changes) - own
        if unknown:
            raise ValueError(f"ChipConfig.with_: unknown field(s) {sorted(unknown)}; fields are {sorted(own)}, "
                             f"shortcuts {sorted(matrix_keys)} + dram_bytes_per_cycle, dram_latency_cycles, "
                             f"lanes, and buffer names {sorted(buffer_names)}")
        if matrix:
            changes["matrix"] = replace(self.matrix, **matrix)
        if dram:
            changes["dram"] = replace(self.dram, **dram)
        if vector:
            changes["vector"] = replace(self.vector, **vector)
        if resize:
            changes["buffers"] = tuple(replace(b, size_bytes=resize[b.name]) if b.name in resize else b
                                       for b in self.buffers)
        return replace(self, **changes)

    def with_datapath(self, input_bytes: int) -> "ChipConfig":
        """The same machine with ``input_bytes``-wide operands: the same PEs, clock and DRAM bytes per cycle,
        every buffer scaled to hold the same number of words (so tiles keep their shapes) and accumulators at
        least 4 bytes. ``preset("tpu_v1").with_datapath(4)`` is the fp32-equivalent of the int8 TPU v1, on
        which an int8 layer packs 4 MACs per PE (``MatrixUnit.macs_per_pe``)."""
        if isinstance(input_bytes, bool) or not isinstance(input_bytes, int) or input_bytes <= 0:
            raise ValueError(f"ChipConfig.with_datapath: input_bytes must be a positive integer, got {input_bytes!r}")
        old = self.matrix.input_bytes
        scale = lambda n: max(1, n * input_bytes // old)
        buffers = tuple(replace(b, size_bytes=scale(b.size_bytes)) for b in self.buffers)
        engines = {k: v * input_bytes / old for k, v in self.engine_bytes_per_cycle.items()}
        matrix = replace(self.matrix, input_bytes=input_bytes, acc_bytes=max(4, self.matrix.acc_bytes))
        bits = {1: "int8", 2: "16-bit", 4: "fp32"}.get(input_bytes, f"{8 * input_bytes}-bit")
        return replace(self, name=f"{self.name}@{bits}", matrix=matrix, buffers=buffers,
                       engine_bytes_per_cycle=engines,
                       description=f"{self.name} with a {input_bytes}-byte datapath ({bits} words); buffers hold "
                                   f"the same words as the original",
                       sources={**self.sources, "datapath": f"derived from {self.name}: with_datapath({input_bytes})"})

    # ---- text -------------------------------------------------------------------------------------
    def summary(self) -> str:
        m = self.matrix
        unit = (f"{m.rows}x{m.cols} systolic array, {m.dataflow.upper()} dataflow, mode {m.mode!r}"
                if m.kind == "systolic" else f"{m.rows}x{m.cols}x{m.depth} cube (block MAC)")
        lines = [f"chip {self.name}: {self.description}".rstrip(": "),
                 f"  matrix unit : {unit}, {m.input_bytes}-byte inputs, {m.acc_bytes}-byte accumulators",
                 f"  clock       : {self.clock_hz / 1e6:g} MHz; peak {self.peak_tops:.3g} TOPS "
                 f"({self.peak_macs_per_cycle} MAC/cycle)",
                 f"  vector unit : {self.vector.lanes} lanes; scalar issue {self.scalar_issue_cycles} cycle(s)/instr",
                 f"  DRAM        : {self.dram.bytes_per_cycle:.4g} B/cycle = {self.dram_bytes_per_s / 1e9:.4g} GB/s, "
                 f"latency {self.dram.latency_cycles} cycles",
                 f"  ridge point : {self.ridge_point:.4g} ops/B = {self.ridge_point_macs:.4g} MAC/B"]
        for b in self.buffers:
            lines.append(f"  buffer {b.name:<12}: {_fmt_bytes(b.size_bytes)}"
                         f"{' (double-buffered)' if b.double_buffered else ''}")
        for op in OPERANDS:
            path = " -> ".join([self.routes[op].hops[0][1]] + [f"{dst} [{eng}]" for eng, _, dst in self.routes[op].hops])
            lines.append(f"  {op:<6} path : {path}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ChipConfig {self.name!r}: {self.summary().splitlines()[1].split(': ', 1)[1]}>"


def _fmt_bytes(n: int) -> str:
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} B"


# ---------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------

def _tiny() -> ChipConfig:
    return ChipConfig(
        name="tiny", clock_hz=100e6,
        matrix=MatrixUnit("systolic", 4, 4, dataflow="os", mode="scalesim", input_bytes=1, acc_bytes=4),
        vector=VectorUnit(lanes=4, startup_cycles=2),
        buffers=(Buffer("ifmap_sram", 1 * KiB), Buffer("filter_sram", 1 * KiB), Buffer("ofmap_sram", 2 * KiB)),
        dram=Dram(bytes_per_cycle=4, latency_cycles=10),
        routes={"ifmap": Route((("dma_in", "dram", "ifmap_sram"),)),
                "filter": Route((("dma_in", "dram", "filter_sram"),)),
                "ofmap": Route((("dma_out", "ofmap_sram", "dram"),))},
        scalar_issue_cycles=1,
        description="4x4 teaching array for animations and hand-checked examples",
        sources={
            "all": "assumption: chosen small enough to draw and to check by hand; no real chip",
        },
    )


def _scalesim32() -> ChipConfig:
    return ChipConfig(
        name="scalesim32", clock_hz=1e9,
        matrix=MatrixUnit("systolic", 32, 32, dataflow="os", mode="scalesim", input_bytes=1, acc_bytes=1),
        vector=VectorUnit(lanes=32, startup_cycles=4),
        buffers=(Buffer("ifmap_sram", 64 * KiB), Buffer("filter_sram", 64 * KiB), Buffer("ofmap_sram", 64 * KiB)),
        dram=Dram(bytes_per_cycle=10, latency_cycles=0),
        routes={"ifmap": Route((("dma_in", "dram", "ifmap_sram"),)),
                "filter": Route((("dma_in", "dram", "filter_sram"),)),
                "ofmap": Route((("dma_out", "ofmap_sram", "dram"),))},
        scalar_issue_cycles=0,
        description="SCALE-Sim's sample machine: 32x32, 64 kB per operand, 10 words/cycle",
        sources={
            "rows, cols, SRAM sizes, dataflow": "scalesim-project/scale-sim-v2:configs/scale.cfg "
                                               "(ArrayHeight/Width 32, Ifmap/Filter/OfmapSramSzkB 64, Dataflow os)",
            "input_bytes, acc_bytes": "SCALE-Sim hard-codes 1-byte words (single_layer_sim.py:238, CHIP_NOTES §1.2)",
            "double buffering": "50/50 split, active_buf_frac = 0.5 (single_layer_sim.py:239)",
            "dram bytes_per_cycle": "10 words/cycle, the Bandwidth used for the fixture runs (CHIP_NOTES §1.3)",
            "clock_hz": "assumption: SCALE-Sim counts cycles only; 1 GHz converts them to time",
            "latency, vector unit, scalar cost": "assumption: SCALE-Sim models none of these (CHIP_NOTES §1.7); "
                                                "latency 0 and no issue cost keep its no-overhead view",
        },
    )


def _tpu_v1() -> ChipConfig:
    return ChipConfig(
        name="tpu_v1", clock_hz=700e6,
        matrix=MatrixUnit("systolic", 256, 256, dataflow="ws", mode="tpu", input_bytes=1, acc_bytes=4),
        vector=VectorUnit(lanes=256, startup_cycles=4),
        buffers=(Buffer("unified_buffer", 24 * MiB, double_buffered=False),
                 Buffer("weight_fifo", 4 * 64 * KiB, double_buffered=True),
                 Buffer("accumulators", 4 * MiB, double_buffered=True)),
        dram=Dram(bytes_per_cycle=34e9 / 700e6, latency_cycles=100),
        routes={"ifmap": Route((("dma_host", "dram", "unified_buffer"),)),
                "filter": Route((("dma_weights", "dram", "weight_fifo"),)),
                "ofmap": Route((("activate", "accumulators", "unified_buffer"),
                                ("dma_host", "unified_buffer", "dram")))},
        engine_bytes_per_cycle={"activate": 256 * 4},
        scalar_issue_cycles=1,
        resident_activations=True,
        description="TPU v1-like: 256x256 int8 weight-stationary array @ 700 MHz, 34 GB/s weight memory",
        sources={
            "rows, cols, int8, clock": "Jouppi et al., ISCA 2017, §2: 65,536 8-bit MACs (256x256) at 700 MHz",
            "weight-stationary, double-buffered weights": "ibid.: weights preloaded and double-buffered; a "
                                                          "64 KiB tile takes 256 cycles to shift in",
            "unified_buffer": "ibid.: 24 MiB Unified Buffer holds activations (so they stay on chip)",
            "accumulators": "ibid.: 4 MiB of 32-bit accumulators (4096 x 256), double-buffered",
            "weight_fifo": "ibid.: Weight FIFO four 64 KiB tiles deep",
            "dram bytes_per_cycle": "ibid.: 8 GiB DDR3 weight memory at 34 GB/s (34e9 / 700e6 B per cycle)",
            "vector lanes": "ibid.: the Activation unit works on one 256-wide accumulator row at a time",
            "dram latency_cycles": "assumption: the paper gives no DDR3 latency; 100 cycles (~140 ns) is typical",
            "scalar_issue_cycles": "assumption: host-issued CISC instructions in a 4-stage pipeline; one per cycle",
            "engine 'activate'": "assumption: one 256-wide row of 32-bit accumulators per cycle",
        },
    )


def _davinci() -> ChipConfig:
    return ChipConfig(
        name="davinci", clock_hz=1e9,
        matrix=MatrixUnit("cube", 16, 16, depth=16, input_bytes=2, acc_bytes=4),
        vector=VectorUnit(lanes=128, startup_cycles=8),
        buffers=(Buffer("l1", 1 * MiB),
                 Buffer("l0a", 64 * KiB), Buffer("l0b", 64 * KiB), Buffer("l0c", 256 * KiB),
                 Buffer("ub", 256 * KiB)),
        dram=Dram(bytes_per_cycle=37.5, latency_cycles=200),
        routes={"ifmap": Route((("mte2", "dram", "l1"), ("mte1", "l1", "l0a"))),
                "filter": Route((("mte2", "dram", "l1"), ("mte1", "l1", "l0b"))),
                "ofmap": Route((("fixpipe", "l0c", "ub"), ("mte3", "ub", "dram")))},
        engine_bytes_per_cycle={"mte1": 256, "fixpipe": 128},
        scalar_issue_cycles=2,
        description="Ascend Da Vinci-like AI core: 16x16x16 fp16 cube, 128-lane vector unit, L1/L0A/L0B/L0C/UB",
        sources={
            "cube 16x16x16 fp16": "Huawei Ascend C docs (hiascend.com): one cube instruction is a 16x16 x 16x16 "
                                  "fp16 matmul, A from L0A, B from L0B, accumulating in L0C (CHIP_NOTES §5)",
            "clock_hz": "derived: Ascend 910 = 32 cores x 4096 fp16 MAC x 2 ops x f ~ 256 TFLOPS (Hot Chips 2019) "
                        "gives f ~ 1 GHz",
            "dram bytes_per_cycle": "derived: Ascend 910's HBM2 ~1.2 TB/s shared by 32 cores = 37.5 GB/s per core",
            "routes (MTE1/MTE2/MTE3, FixPipe)": "Ascend C docs: MTE2 GM->L1/UB, MTE1 L1->L0A/L0B, MTE3 UB->GM, "
                                                "FixPipe L0C->UB/GM",
            "buffer sizes": "assumption: figures often quoted for the 910 core (L1 1 MiB, L0A/L0B 64 KiB, "
                            "L0C 256 KiB, UB 256 KiB); the docs say sizes vary by product (query GetCoreMemSize)",
            "vector lanes": "assumption: a 2048-bit vector unit = 128 fp16 lanes per cycle",
            "int8 MACs (2 per fp16 PE)": "Hot Chips 2019 (CHIP_NOTES §5): the cube does 4096 fp16 or 8192 int8 MACs "
                                         "per cycle (int8 tiles are 16x32 x 32x16)",
            "latency, engine bandwidths, scalar cost": "assumption: illustrative values, not published",
        },
    )


PRESETS = {"tiny": _tiny, "scalesim32": _scalesim32, "tpu_v1": _tpu_v1, "davinci": _davinci}


def preset(name: str) -> ChipConfig:
    """A named chip: ``tiny``, ``scalesim32``, ``tpu_v1`` or ``davinci`` (see the module docstring)."""
    if isinstance(name, ChipConfig):
        return name
    try:
        return PRESETS[name]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown chip preset {name!r}; choose one of {sorted(PRESETS)}") from None
