"""Tile-level programs for the simulated chip, and lowering a network's layers onto them.

A *layer record* says what a layer computes (``Gemm``, ``Conv``, ``Elementwise``, ``Pool``,
``Softmax``, ``LayerNorm``); LeNet is a list of eight of them. ``lower_layers(layers, chip)``
turns them into a ``Program``: a list of tile instructions, each for one unit —

    load / move / store   a DMA engine moves a tile DRAM -> buffer -> buffer -> DRAM
    matmul                the matrix unit multiplies one tile (cycles from the analytic model)
    vector                the vector unit runs an activation, pooling, softmax or norm on a tile

— with explicit dependencies, like Ascend's set_flag/wait_flag events: *data* (the tile this
instruction reads was produced by that one) and *slot* (the buffer half this instruction writes
was freed by that one). Buffers marked double-buffered have two slots (ping-pong), so the load of
tile i+1 runs while tile i is multiplied. The scalar unit issues every instruction in program
order; ``aisys.chip.simulate`` plays the program out event by event.

``lower_graph(graph, chip)`` first maps an ``aisys`` Graph (``aisys.framework.graph``) onto these
layer records, then lowers them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace, field

from .config import ChipConfig, preset
from .cube import matrix_gemm
from .memory import CapacityError, a_tile_dram_bytes, plan_gemm_tiles, resident_buffer
from .systolic import conv_gemm_dims
from .vector import BINARY_OPS, elementwise_cost, layernorm_cost, pool_cost, softmax_cost

ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "requantize")   # what drains with a matrix tile
                                                    # (TPU's Activate, Ascend's FixPipe, which also requantizes int8)


def _pos(where: str, **vals) -> None:
    for name, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")


def _check_activation(where: str, activation) -> None:
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"{where}: activation must be None or one of {ACTIVATIONS}, got {activation!r}")


# ---------------------------------------------------------------------------------------------------
# Layer records
# ---------------------------------------------------------------------------------------------------

def _check_words(where: str, word_bytes, density) -> None:
    if word_bytes is not None:
        _pos(where, word_bytes=word_bytes)
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 <= density <= 1:
        raise ValueError(f"{where}: density (the share of non-zero weights) must be in [0, 1], got {density!r}")


@dataclass(frozen=True)
class Gemm:
    """A fully connected layer / matmul: ``[M, K] @ [K, N]`` (M = batch rows, N = outputs).

    ``word_bytes``: operand width (1 for int8 codes; None: the chip's native word); ``density``: the share of
    non-zero weights (a dense array multiplies the zeros anyway; zero-skipping PEs save their energy).
    ``count`` > 1 is a batched matmul: that many independent products of the same shape, each with its own
    operands (attention's per-head ``q·kᵀ`` and ``p·v``). ``gemm`` and ``ifmap_words`` describe one of them.
    """
    name: str
    M: int
    N: int
    K: int
    activation: str | None = None
    word_bytes: int | None = None
    density: float = 1.0
    count: int = 1

    def __post_init__(self):
        _pos(f"Gemm {self.name!r}", M=self.M, N=self.N, K=self.K, count=self.count)
        _check_activation(f"Gemm {self.name!r}", self.activation)
        _check_words(f"Gemm {self.name!r}", self.word_bytes, self.density)

    kind = "gemm"

    @property
    def gemm(self) -> tuple[int, int, int]:
        return self.M, self.N, self.K

    @property
    def ifmap_words(self) -> int:
        return self.M * self.K

    @property
    def macs(self) -> int:
        return self.count * self.M * self.N * self.K

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def io_words(self) -> dict:
        c = self.count
        return {"ifmap": c * self.M * self.K, "filter": c * self.K * self.N, "ofmap": c * self.M * self.N}

    def describe(self) -> str:
        return ((f"{self.count} x " if self.count > 1 else "") + f"gemm {self.M}x{self.K} @ {self.K}x{self.N}"
                + (f" int{8 * self.word_bytes}" if self.word_bytes else "")
                + (f" + {self.activation}" if self.activation else ""))


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution, NCHW, ``F`` filters of ``C x kh x kw`` (lowered by im2col)."""
    name: str
    H: int
    W: int
    C: int
    F: int
    kh: int
    kw: int | None = None
    stride: int = 1
    padding: int = 0
    batch: int = 1
    activation: str | None = None
    word_bytes: int | None = None        # as Gemm
    density: float = 1.0

    def __post_init__(self):
        if self.kw is None:
            object.__setattr__(self, "kw", self.kh)
        conv_gemm_dims(self.H, self.W, self.C, self.F, self.kh, self.kw, self.stride, self.padding, self.batch)
        _check_activation(f"Conv {self.name!r}", self.activation)
        _check_words(f"Conv {self.name!r}", self.word_bytes, self.density)

    kind = "conv"

    @property
    def dims(self) -> dict:
        return conv_gemm_dims(self.H, self.W, self.C, self.F, self.kh, self.kw, self.stride, self.padding, self.batch)

    @property
    def gemm(self) -> tuple[int, int, int]:
        d = self.dims
        return d["M"], d["N"], d["K"]

    @property
    def ifmap_words(self) -> int:
        return self.batch * self.C * self.H * self.W

    @property
    def macs(self) -> int:
        M, N, K = self.gemm
        return M * N * K

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def io_words(self) -> dict:
        M, N, K = self.gemm
        return {"ifmap": self.ifmap_words, "filter": K * N, "ofmap": M * N}

    def describe(self) -> str:
        d = self.dims
        return (f"conv {self.C}x{self.H}x{self.W} -> {self.F}x{d['OH']}x{d['OW']} k{self.kh}x{self.kw} "
                f"s{self.stride} p{self.padding}" + (f" b{self.batch}" if self.batch > 1 else "")
                + (f" int{8 * self.word_bytes}" if self.word_bytes else "")
                + (f" + {self.activation}" if self.activation else ""))


@dataclass(frozen=True)
class Elementwise:
    """An elementwise op over ``elements`` values; binary ops (add, mul, ...) read two tensors.

    A *fused* group (``chain`` = the vector ops it runs, ``inputs`` = the full-size tensors it reads) loads
    its inputs once, runs every op of the chain on the data while it sits in the vector buffer, and stores
    one result: the DRAM traffic of one op, the vector work of all of them. That is fusion's payoff.
    """
    name: str
    op: str
    elements: int
    chain: tuple = ()
    inputs: int = 0
    word_bytes: int | None = None        # element width (None: the chip's native word)

    def __post_init__(self):
        _pos(f"Elementwise {self.name!r}", elements=self.elements)
        _check_words(f"Elementwise {self.name!r}", self.word_bytes, 1.0)
        if not isinstance(self.op, str) or not self.op:
            raise ValueError(f"Elementwise {self.name!r}: op must be a name such as 'relu' or 'add'")
        if self.chain and (not all(isinstance(o, str) and o for o in self.chain) or self.inputs < 1):
            raise ValueError(f"Elementwise {self.name!r}: a fused chain needs op names and inputs ≥ 1, "
                             f"got chain={self.chain!r}, inputs={self.inputs!r}")

    kind = "elementwise"

    @property
    def operands(self) -> int:
        if self.chain:
            return self.inputs
        return 2 if self.op in BINARY_OPS else 1

    @property
    def macs(self) -> int:
        return 0

    @property
    def flops(self) -> int:
        return self.elements

    def io_words(self) -> dict:
        return {"ifmap": self.operands * self.elements, "filter": 0, "ofmap": self.elements}

    def describe(self) -> str:
        return f"{self.op} over {self.elements:,} elements"


@dataclass(frozen=True)
class Pool:
    """Max or average pooling with a ``k x k`` window (stride defaults to k)."""
    name: str
    kind_: str
    batch: int
    C: int
    H: int
    W: int
    k: int
    stride: int | None = None
    padding: int = 0
    word_bytes: int | None = None        # element width (None: the chip's native word)

    def __post_init__(self):
        _check_words(f"Pool {self.name!r}", self.word_bytes, 1.0)
        if self.stride is None:
            object.__setattr__(self, "stride", self.k)
        if self.kind_ not in ("max", "avg"):
            raise ValueError(f"Pool {self.name!r}: kind_ must be 'max' or 'avg', got {self.kind_!r}")
        _pos(f"Pool {self.name!r}", batch=self.batch, C=self.C, H=self.H, W=self.W, k=self.k, stride=self.stride)
        if isinstance(self.padding, bool) or not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"Pool {self.name!r}: padding must be an integer >= 0, got {self.padding!r}")
        if self.k > self.H + 2 * self.padding or self.k > self.W + 2 * self.padding:
            raise ValueError(f"Pool {self.name!r}: window {self.k} is larger than the {self.H}x{self.W} input")

    kind = "pool"

    @property
    def out_hw(self) -> tuple[int, int]:
        p = self.padding
        return (self.H + 2 * p - self.k) // self.stride + 1, (self.W + 2 * p - self.k) // self.stride + 1

    @property
    def out_elements(self) -> int:
        oh, ow = self.out_hw
        return self.batch * self.C * oh * ow

    @property
    def macs(self) -> int:
        return 0

    @property
    def flops(self) -> int:
        return self.out_elements * self.k * self.k

    def io_words(self) -> dict:
        return {"ifmap": self.batch * self.C * self.H * self.W, "filter": 0, "ofmap": self.out_elements}

    def describe(self) -> str:
        oh, ow = self.out_hw
        return f"{self.kind_}pool {self.k}x{self.k}/{self.stride}: {self.C}x{self.H}x{self.W} -> {self.C}x{oh}x{ow}"


@dataclass(frozen=True)
class Softmax:
    """Softmax over the last axis of a ``rows x cols`` tensor."""
    name: str
    rows: int
    cols: int

    def __post_init__(self):
        _pos(f"Softmax {self.name!r}", rows=self.rows, cols=self.cols)

    kind = "softmax"
    macs = 0

    @property
    def flops(self) -> int:
        return 5 * self.rows * self.cols

    def io_words(self) -> dict:
        return {"ifmap": self.rows * self.cols, "filter": 0, "ofmap": self.rows * self.cols}

    def describe(self) -> str:
        return f"softmax {self.rows}x{self.cols}"


@dataclass(frozen=True)
class LayerNorm:
    """LayerNorm over the last axis of a ``rows x cols`` tensor."""
    name: str
    rows: int
    cols: int

    def __post_init__(self):
        _pos(f"LayerNorm {self.name!r}", rows=self.rows, cols=self.cols)

    kind = "layernorm"
    macs = 0

    @property
    def flops(self) -> int:
        return 8 * self.rows * self.cols

    def io_words(self) -> dict:
        return {"ifmap": self.rows * self.cols, "filter": 2 * self.cols, "ofmap": self.rows * self.cols}

    def describe(self) -> str:
        return f"layernorm {self.rows}x{self.cols}"


LAYER_TYPES = (Gemm, Conv, Elementwise, Pool, Softmax, LayerNorm)


# ---------------------------------------------------------------------------------------------------
# Instructions and programs
# ---------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------
# Lowering
# ---------------------------------------------------------------------------------------------------

class _Slots:
    """Ping-pong bookkeeping: which instruction last read each slot of each (operand, buffer)."""

    def __init__(self, chip: ChipConfig):
        self.chip = chip
        self.count: dict = {}
        self.reader: dict = {}

    def nslots(self, buf: str) -> int:
        return 2 if self.chip.buffer(buf).double_buffered else 1

    def take(self, key: tuple) -> tuple[int, int | None]:
        """Next slot of (operand, buffer) and the instruction that must finish before it is overwritten."""
        n = self.count.get(key, 0)
        self.count[key] = n + 1
        slot = n % self.nslots(key[1])
        return slot, self.reader.get((key, slot))

    def read(self, key: tuple, slot: int, instr: int) -> None:
        self.reader[(key, slot)] = instr


def _hops(chip: ChipConfig, operand: str, resident: str | None) -> list:
    """The hops an operand really takes: on chips with resident activations, none touch DRAM."""
    hops = list(chip.routes[operand].hops)
    if resident and operand in ("ifmap", "ofmap"):
        hops = [h for h in hops if "dram" not in (h[1], h[2])]
    return hops


def _vector_buffer(chip: ChipConfig) -> str:
    """Where the vector unit works: the first buffer results go to after the accumulators."""
    _, src, dst = chip.routes["ofmap"].hops[0]
    return src if dst == "dram" else dst


class _Lowering:
    def __init__(self, chip: ChipConfig, on_overflow: str):
        self.chip = chip
        self.on_overflow = on_overflow
        self.prog = Program(chip, [])
        self.slots = _Slots(chip)
        self.resident = resident_buffer(chip)
        self.prev_output: int | None = None   # last output instruction of the previous layer
        self._matmul_cache: dict = {}

    # -- shared pieces ---------------------------------------------------------------------------
    def matmul_cycles(self, M: int, N: int, K: int, pack: int = 1) -> int:
        """Cycles of one tile; ``pack`` narrow MACs per PE per cycle shorten the reduction to ⌈K/pack⌉."""
        key = (M, N, K, pack)
        if key not in self._matmul_cache:
            self._matmul_cache[key] = matrix_gemm(M, N, -(-K // pack), self.chip).elapsed_cycles
        return self._matmul_cache[key]

    def chain(self, operand: str, hops: list, sizes: list, name: str, layer: str, first_deps=()):
        """Emit one tile's trip along ``hops``: returns (first id, last id, (buffer key, slot) it ends in)."""
        first = last = None
        held = None                   # (key, slot) the previous hop wrote, read by the next hop
        deps = list(first_deps)
        for (engine, src, dst), nbytes in zip(hops, sizes):
            kind = "load" if src == "dram" else ("store" if dst == "dram" else "move")
            d = list(deps) + ([(last, "data")] if last is not None else [])
            into = None
            if dst != "dram" and dst != self.resident:
                slot, reader = self.slots.take((operand, dst))
                d.append((reader, "slot"))
                into = ((operand, dst), slot)
            iid = self.prog.add(engine, kind, f"{name} {src}->{dst}", layer, d, bytes=int(nbytes), src=src, dst=dst)
            if held is not None:
                self.slots.read(held[0], held[1], iid)
            first = iid if first is None else first
            last, held, deps = iid, into, []
        return first, last, held

    # -- matrix layers -------------------------------------------------------------------------------
    def matrix_layer(self, layer, activation: str | None):
        chip, m = self.chip, self.chip.matrix
        M, N, K = layer.gemm
        word = layer.word_bytes or m.input_bytes
        try:
            pack = m.macs_per_pe(word)
        except ValueError as exc:
            raise ValueError(f"layer {layer.name!r} ({layer.describe()}) on chip {chip.name!r}: {exc}") from None
        tiling_chip = chip if word == m.input_bytes else chip.with_(input_bytes=word)
        plan = plan_gemm_tiles(M, N, K, tiling_chip, ifmap_words=layer.ifmap_words, on_overflow=self.on_overflow,
                               what=f"layer {layer.name!r} ({layer.describe()})")
        self.prog.plans[layer.name] = plan
        a_hops, b_hops = _hops(chip, "ifmap", self.resident), _hops(chip, "filter", self.resident)
        o_hops = _hops(chip, "ofmap", self.resident)
        acc_buf = chip.routes["ofmap"].hops[0][1]
        barrier = [(self.prev_output, "data")] if self.prev_output is not None else []
        a_last = b_last = a_held = b_held = None   # last load of the current A / B tile, and its slot
        acc_slot = None
        nK = plan.tiles[2]
        last_out = None
        count = getattr(layer, "count", 1)
        # a batched matmul replays the tile schedule once per product (each starts with fresh A and B tiles)
        steps = [(c, *step) for c in range(count) for step in plan.schedule()]
        for c, mi, ni, ki, (Mt, Nt, Kt), new_a, new_b in steps:
            if count > 1:
                mi = f"{c}:{mi}"
            deps = []
            if new_a:
                size = Mt * Kt * word
                sizes = [a_tile_dram_bytes(size, plan.a_scale) if src == "dram" else size for _, src, _ in a_hops]
                _, a_last, a_held = self.chain("ifmap", a_hops, sizes, f"{layer.name} A[{mi},{ki}]", layer.name,
                                               barrier)
            deps += [(a_last, "data")] if a_last is not None else barrier
            if new_b:
                size = Kt * Nt * word
                _, b_last, b_held = self.chain("filter", b_hops, [size] * len(b_hops),
                                               f"{layer.name} B[{ki},{ni}]", layer.name)
            deps.append((b_last, "data"))
            if ki == 0:                               # a new output tile takes an accumulator slot
                acc_slot, acc_free = self.slots.take(("ofmap", acc_buf))
                deps.append((acc_free, "slot"))
            mm = self.prog.add("matrix", "matmul", f"{layer.name} C[{mi},{ni}] k{ki}", layer.name, deps,
                               cycles=self.matmul_cycles(Mt, Nt, Kt, pack), macs=Mt * Nt * Kt,
                               dims=(Mt, Nt, Kt), word_bytes=word, density=layer.density)
            for held in (a_held, b_held):
                if held is not None:
                    self.slots.read(held[0], held[1], mm)
            if ki == nK - 1:                          # output tile finished: activation, then drain it
                src_id = mm
                if activation:
                    src_id = self.prog.add("vector", "vector", f"{layer.name} {activation} C[{mi},{ni}]", layer.name,
                                           [(src_id, "data")],
                                           cycles=elementwise_cost(activation, -(-Mt * Nt // pack), chip).cycles)
                # partial sums are acc_bytes wide in the accumulators; results leave as operand-sized words
                sizes = [Mt * Nt * (m.acc_bytes if src == acc_buf and dst != "dram" else word)
                         for _, src, dst in o_hops]
                first, last_out, held = self.chain("ofmap", o_hops, sizes, f"{layer.name} C[{mi},{ni}]",
                                                   layer.name, [(src_id, "data")])
                if first is None:
                    first = last_out = src_id
                self.slots.read(("ofmap", acc_buf), acc_slot, first)   # accumulators free once drained
                if held is not None:
                    self.slots.read(held[0], held[1], last_out)
        self.prev_output = last_out

    # -- vector layers ---------------------------------------------------------------------------------
    def vector_layer(self, layer):
        chip, m = self.chip, self.chip.matrix
        b = getattr(layer, "word_bytes", None) or m.input_bytes
        vbuf = _vector_buffer(chip)
        resident = self.resident is not None
        unit_in, unit_out, units, chunk = vector_chunks(layer, chip)
        load_engine = chip.routes["ifmap"].hops[0][0]
        store_engine = chip.routes["ofmap"].hops[-1][0]
        barrier = [(self.prev_output, "data")] if self.prev_output is not None else []
        last = None
        for c0 in range(0, units, chunk):
            n = min(chunk, units - c0)
            deps = list(barrier)
            key = ("vector", vbuf)
            slot = None
            if not resident:
                slot, reader = self.slots.take(key)
                ld = self.prog.add(load_engine, "load", f"{layer.name} in[{c0 // chunk}]", layer.name,
                                   deps + [(reader, "slot")], bytes=n * unit_in * b, src="dram", dst=vbuf)
                deps = [(ld, "data")]
            cyc = self._vector_cycles(layer, n)
            vec = self.prog.add("vector", "vector", f"{layer.name} [{c0 // chunk}]", layer.name, deps, cycles=cyc)
            last = vec
            if not resident:
                st = self.prog.add(store_engine, "store", f"{layer.name} out[{c0 // chunk}]", layer.name,
                                   [(vec, "data")], bytes=n * unit_out * b, src=vbuf, dst="dram")
                self.slots.read(key, slot, st)
                last = st
        self.prev_output = last

    def _vector_cycles(self, layer, n: int) -> int:
        chip = self.chip
        word = getattr(layer, "word_bytes", None)
        pack = max(1, chip.matrix.input_bytes // word) if word else 1     # narrow elements share a lane's bits
        if isinstance(layer, Softmax):
            return softmax_cost(n, layer.cols, chip).cycles
        if isinstance(layer, LayerNorm):
            return layernorm_cost(n, layer.cols, chip).cycles
        if isinstance(layer, Pool):
            oh, ow = layer.out_hw
            return pool_cost(layer.kind_, -(-n * oh * ow // pack), layer.k * layer.k, chip).cycles
        n = -(-n // pack)
        if getattr(layer, "chain", ()):
            costs = [elementwise_cost(op, n, chip) for op in layer.chain]
            startup = chip.vector.startup_cycles
            return startup + sum(c.cycles - startup for c in costs)      # one pipeline start for the group
        return elementwise_cost(layer.op, n, chip).cycles


def word_bytes(layer, chip: ChipConfig) -> int:
    """Bytes per value a vector layer moves: its own width (int8 codes) or the matrix unit's operand width."""
    return getattr(layer, "word_bytes", None) or chip.matrix.input_bytes


def vector_chunks(layer, chip: ChipConfig) -> tuple[int, int, int, int]:
    """(words in, words out per unit, units, units per chunk) of a vector layer: it is processed in whole units
    (rows for softmax/layernorm, channels for pooling, elements otherwise), as many per chunk as fit the vector
    buffer (all at once when activations stay resident on chip)."""
    if isinstance(layer, (Softmax, LayerNorm)):
        unit_in, unit_out, units = layer.cols, layer.cols, layer.rows          # whole rows
    elif isinstance(layer, Pool):
        oh, ow = layer.out_hw
        unit_in, unit_out, units = layer.H * layer.W, oh * ow, layer.batch * layer.C      # whole channels
    else:
        unit_in, unit_out, units = layer.operands, 1, layer.elements
    if resident_buffer(chip) is not None:
        return unit_in, unit_out, units, units
    vbuf = _vector_buffer(chip)
    per_unit = (unit_in + unit_out) * word_bytes(layer, chip)
    limit = chip.buffer(vbuf).tile_bytes
    if per_unit > limit:
        raise CapacityError(vbuf, limit, per_unit, f"layer {layer.name!r} ({layer.describe()}): one row/channel")
    return unit_in, unit_out, units, max(1, min(units, limit // per_unit))


def _fusable(prev, layer) -> bool:
    if not isinstance(prev, (Gemm, Conv)) or not isinstance(layer, Elementwise):
        return False
    M, N, _ = prev.gemm
    return (layer.op in ACTIVATIONS and layer.elements == getattr(prev, "count", 1) * M * N
            and prev.activation is None)


def lower_layers(layers, chip, *, fuse_activations: bool = True, on_overflow: str = "tile",
                 max_instructions: int | None = None) -> Program:
    """Lower layer records (``Gemm``, ``Conv``, ``Elementwise``, ``Pool``, ``Softmax``, ``LayerNorm``)
    to a tile program for ``chip`` (a ``ChipConfig`` or a preset name).

    An activation that directly follows a matmul/conv of the same size is fused into it (applied to
    each output tile before it is drained), as TPU v1's Activate and Ascend's FixPipe do.

    A program over ``max_instructions`` (default ``aisys.chip.estimate.MAX_INSTRUCTIONS``, seconds of work)
    is refused before it is built, with the analytic estimate to use instead (see ``aisys.chip.estimate``).
    """
    chip = preset(chip)
    layers = list(layers)
    if not layers:
        raise ValueError("lower_layers: the layer list is empty; pass e.g. aisys.chip.lenet_layers()")
    names = set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, LAYER_TYPES):
            raise TypeError(f"lower_layers: item {i} is a {type(layer).__name__}, not a layer record "
                            f"({', '.join(t.__name__ for t in LAYER_TYPES)})")
        if layer.name in names:
            raise ValueError(f"lower_layers: two layers are named {layer.name!r}; names must be unique")
        names.add(layer.name)
    from .estimate import check_size
    check_size(layers, chip, fuse_activations=fuse_activations, on_overflow=on_overflow, limit=max_instructions)
    low = _Lowering(chip, on_overflow)
    low.prog.layers = layers
    for layer, act in layer_steps(layers, fuse_activations):
        if isinstance(layer, (Gemm, Conv)):
            low.matrix_layer(layer, act)
        else:
            low.vector_layer(layer)
        low.prog.layer_last[layer.name] = low.prev_output
    return low.prog


def layer_steps(layers, fuse_activations: bool = True):
    """(layer, activation or None) in lowering order: an activation that directly follows a matmul/conv of the
    same size is folded into it (and skipped as a layer of its own)."""
    i = 0
    while i < len(layers):
        layer, act = layers[i], None
        if isinstance(layer, (Gemm, Conv)):
            act = layer.activation
            if act is None and fuse_activations and i + 1 < len(layers) and _fusable(layer, layers[i + 1]):
                act = layers[i + 1].op
                i += 1
        yield layer, act
        i += 1


# ---------------------------------------------------------------------------------------------------
# From the graph IR
# ---------------------------------------------------------------------------------------------------

# graph op -> the vector primitive that costs the same (aisys.chip.vector.DEFAULT_OP_CYCLES)
_VECTOR_OF_GRAPH_OP = {
    "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu", "erf": "erf", "exp": "exp", "log": "log",
    "sqrt": "sqrt", "abs": "abs", "neg": "neg", "cast": "cast", "add": "add", "sub": "sub", "mul": "mul",
    "div": "div", "maximum": "max", "minimum": "min", "pow": "mul", "sign": "abs", "sin": "exp", "cos": "exp",
    "where": "max", "eq": "sub", "ne": "sub", "lt": "sub", "le": "sub", "gt": "sub", "ge": "sub",
    "logical_not": "neg", "batch_norm": "fma", "pad": "copy", "concat": "copy", "gather": "copy",
    "index": "copy", "embedding": "copy", "one_hot": "copy",
    "quantize": "quantize", "dequantize": "dequantize", "requantize": "requantize",
}
# reductions: cost by the elements they read
_REDUCE_OF_GRAPH_OP = {"sum": "add", "mean": "add", "var": "add", "sum_to": "add", "max": "max", "min": "min",
                       "argmax": "max", "argmin": "max", "mse_loss": "sub"}
# shape-only ops: the compiler turns them into addressing, the chip does no work
_FREE_GRAPH_OPS = {"reshape", "permute", "contiguous", "broadcast_to", "dropout", "transpose", "flatten",
                   "squeeze", "unsqueeze", "expand"}


def _vector_primitive(node) -> str | None:
    """The vector primitive costing a graph node: the table's entry, refined by the attrs the cost depends on
    (exact GELU evaluates an erf, its approximate='tanh' form a tanh)."""
    vop = _VECTOR_OF_GRAPH_OP.get(node.op)
    if vop == "gelu" and node.attrs.get("approximate", "none") == "tanh":
        return "gelu_tanh"
    return vop


def _first(v):
    return v[0] if isinstance(v, (tuple, list)) else v


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return max(1, n)


def _is_bias_add(graph, node, producers: set, bias_from=("param", "const")) -> bool:
    """``add(matmul/conv output, 1-D parameter)``: a bias the accumulators add on the way out (free)."""
    if node.op != "add" or len(node.inputs) != 2:
        return False
    a, b = (graph.nodes[i] for i in node.inputs)
    for x, y in ((a, b), (b, a)):
        if x.id in producers and y.op in bias_from and len(y.shape) == 1 and \
                y.shape[0] == node.shape[-1 if len(node.shape) == 2 else 1 if len(node.shape) == 4 else -1]:
            return True
    return False


def _word_bytes(node):
    """Integer tensors (int8 codes, int32 accumulators) move their own width; float ones the chip's word."""
    dt = getattr(node, "dtype", None)
    return None if dt is None or dt.is_floating else dt.itemsize


def _weight_density(graph, i: int) -> float:
    """The share of non-zero values of a weight operand (through views/casts back to a param or const)."""
    n = graph.nodes[i]
    while n.op in ("permute", "reshape", "contiguous", "cast") and n.inputs:
        n = graph.nodes[n.inputs[0]]
    if n.op in ("param", "const") and n.value is not None and n.value.size:
        return float((n.value != 0).mean())
    return 1.0


def graph_to_layers(graph, *, _bias_from=("param", "const")) -> list:
    """Map the op nodes of an ``aisys`` Graph to layer records: matmul -> Gemm, conv2d -> Conv,
    max/avg_pool2d -> Pool, softmax -> Softmax, layer_norm -> LayerNorm, the rest -> Elementwise.

    Shape-only ops (reshape, permute, ...) cost nothing; a bias add right after a matmul or conv is
    absorbed by it (accumulators add the bias as results drain, as TPU v1 and Ascend's FixPipe do).
    An op the chip has no model for (e.g. backward ops) raises ``ValueError`` naming the node.
    Float layers compute in the chip's own word size; integer-only ops (``matmul_integer``,
    ``conv2d_integer`` on int8 codes, then ``requantize``) record their word width, which packs several MACs
    per PE on a wider datapath and moves fewer bytes. Each matrix layer records its weights' density.
    """
    layers: list = []
    matrix_outputs: set = set()
    for node in graph.op_nodes:
        op, name = node.op, f"{node.op}_{node.id}"
        ins = [graph.nodes[i] for i in node.inputs]
        where = f"lower_graph: node %{node.id} = {op}"
        if op in ("matmul", "matmul_integer"):
            a, b = ins[0].shape, ins[1].shape
            if len(b) == 2:
                K, N = b
                layers.append(Gemm(name, _numel(a[:-1]) if len(a) > 1 else 1, N, K, word_bytes=_word_bytes(ins[0]),
                                   density=_weight_density(graph, node.inputs[1])))
            elif len(b) > 2 and len(a) >= 2:          # batched: one [M, K] @ [K, N] per leading index
                layers.append(Gemm(name, a[-2], b[-1], b[-2], count=_numel(node.shape[:-2]),
                                   word_bytes=_word_bytes(ins[0])))
            else:
                raise ValueError(f"{where} multiplies {tuple(a)} by {tuple(b)}; the chip models [.., K] @ [K, N] "
                                 f"and batched [.., M, K] @ [.., K, N] products")
            matrix_outputs.add(node.id)
        elif op in ("conv2d", "conv2d_integer"):
            x, w = ins[0].shape, ins[1].shape
            groups, dil = node.attrs.get("groups", 1), node.attrs.get("dilation", 1)
            if _first(groups) != 1 or set(dil if isinstance(dil, tuple) else (dil,)) != {1}:
                raise ValueError(f"{where} has groups={groups}, dilation={dil}; only dense, undilated "
                                 f"convolutions are modelled")
            stride, padding = node.attrs.get("stride", 1), node.attrs.get("padding", 0)
            for attr, v in (("stride", stride), ("padding", padding)):
                if isinstance(v, (tuple, list)) and len(set(v)) > 1:
                    raise ValueError(f"{where} has {attr}={v}; the chip model needs the same {attr} in H and W")
            layers.append(Conv(name, x[2], x[3], x[1], w[0], w[2], w[3], _first(stride), _first(padding), x[0],
                               word_bytes=_word_bytes(ins[0]), density=_weight_density(graph, node.inputs[1])))
            matrix_outputs.add(node.id)
        elif op in ("max_pool2d", "avg_pool2d"):
            x = ins[0].shape
            k = _first(node.attrs.get("kernel_size", 2))
            stride = _first(node.attrs.get("stride", None) or k)
            layers.append(Pool(name, "max" if op == "max_pool2d" else "avg", x[0], x[1], x[2], x[3], k, stride,
                               _first(node.attrs.get("padding", 0)), word_bytes=_word_bytes(ins[0])))
        elif op in ("softmax", "log_softmax", "cross_entropy"):
            shape = ins[0].shape
            layers.append(Softmax(name, _numel(shape[:-1]), shape[-1]))
        elif op == "layer_norm":
            shape = ins[0].shape
            layers.append(LayerNorm(name, _numel(shape[:-1]), shape[-1]))
        elif op == "fused":
            layers.extend(_fused_layers(node, name))
            if node.attrs.get("kind") == "epilogue":
                matrix_outputs.add(node.id)
            continue
        elif op in _FREE_GRAPH_OPS:
            continue
        elif _is_bias_add(graph, node, matrix_outputs, _bias_from):
            matrix_outputs.add(node.id)        # still "the matmul's output" for a following activation
            continue
        elif op in _VECTOR_OF_GRAPH_OP:
            vop = _vector_primitive(node)
            streams = sum(1 for x in ins if _numel(x.shape) > 1)
            wb = _word_bytes(node)
            if vop in BINARY_OPS and streams == 1:      # x * 0.5: the scalar sits in a register, one stream
                layers.append(Elementwise(name, vop, _numel(node.shape), chain=(vop,), inputs=1, word_bytes=wb))
            else:
                layers.append(Elementwise(name, vop, _numel(node.shape), word_bytes=wb))
        elif op in _REDUCE_OF_GRAPH_OP:
            layers.append(Elementwise(name, _REDUCE_OF_GRAPH_OP[op], _numel(ins[0].shape)))
        else:
            raise ValueError(f"{where} has no chip model (supported: matmul, conv2d, pooling, softmax, "
                             f"layer_norm, elementwise and reduction ops, shape-only ops); lower a forward "
                             f"(inference) graph")
    return layers


def _fused_layers(node, name) -> list:
    """Layer records for one ``fused`` node of a compiled graph (its subgraph is ``attrs['_body']``).

    An elementwise or reduce group becomes ONE vector layer whose chain runs every op of the group on data
    loaded once. An epilogue group (matmul/conv + elementwise) lowers its body: the matrix layer, then its
    activation, which ``lower_layers`` applies as results drain from the accumulators (like Ascend's
    FixPipe); other epilogue ops stay separate vector layers (an approximation, on the safe side).
    """
    body = node.attrs["_body"]
    if node.attrs.get("kind") == "epilogue":
        # inside the body the bias is a body input (a parameter of the enclosing graph)
        return [replace(layer, name=f"{name}.{layer.name}")
                for layer in graph_to_layers(body, _bias_from=("param", "const", "input"))]
    chain = []
    for n in body.op_nodes:
        if n.op in _FREE_GRAPH_OPS:
            continue
        vop = _vector_primitive(n) or _REDUCE_OF_GRAPH_OP.get(n.op)
        if vop is None:
            raise ValueError(f"lower_graph: fused node %{node.id} contains {n.op}, which has no vector-unit model")
        chain.append(vop)
    elements = max(_numel(body.nodes[i].shape) for i in body.inputs) if body.inputs else _numel(node.shape)
    big_inputs = sum(1 for i in body.inputs if _numel(body.nodes[i].shape) > 1) or 1
    return [Elementwise(name, "fused", elements, chain=tuple(chain) or ("copy",), inputs=big_inputs)]


def lower_graph(graph, chip, **kw) -> Program:
    """Lower an ``aisys.framework.graph.Graph`` to a tile program: ``graph_to_layers`` then ``lower_layers``."""
    layers = graph_to_layers(graph)
    if not layers:
        raise ValueError(f"lower_graph: graph {getattr(graph, 'name', '?')!r} has no op the chip executes")
    return lower_layers(layers, chip, **kw)
