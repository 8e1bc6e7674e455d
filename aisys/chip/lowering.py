"""Lowering layer records onto a chip: tiles, DMA hops, ping-pong buffers and fused activations.

``lower_layers(layers, chip)`` turns ``Gemm`` / ``Conv`` / ``Elementwise`` / ``Pool`` / ``Softmax`` /
``LayerNorm`` records into a :class:`~aisys.chip.program.Program`. Buffers marked double-buffered have two
slots (ping-pong), so the load of tile i+1 runs while tile i is multiplied; an activation right after a
matmul/conv of the same size is applied as results drain from the accumulators (TPU v1's Activate,
Ascend's FixPipe). ``simulate_layers`` lowers and simulates in one call.
"""
from __future__ import annotations

from .config import ChipConfig, preset
from .cube import matrix_gemm
from .eventsim import ProgramResult, simulate
from .estimate import check_size, estimate_layers
from .layers import LAYER_TYPES, Conv, Gemm, layer_steps, vector_cycles, word_bytes
from .program import Program
from .tiling import (CapacityError, a_tile_dram_bytes, plan_gemm_tiles, resident_buffer, route_hops, vector_buffer,
                     vector_chunks)
from .vector import elementwise_cost


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
        a_hops, b_hops = route_hops(chip, "ifmap", self.resident), route_hops(chip, "filter", self.resident)
        o_hops = route_hops(chip, "ofmap", self.resident)
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
        chip = self.chip
        b = word_bytes(layer, chip)
        vbuf = vector_buffer(chip)
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
        return vector_cycles(layer, n, self.chip)


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
        raise ValueError("lower_layers: the layer list is empty; pass e.g. aisys.models.lenet_layers()")
    names = set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, LAYER_TYPES):
            raise TypeError(f"lower_layers: item {i} is a {type(layer).__name__}, not a layer record "
                            f"({', '.join(t.__name__ for t in LAYER_TYPES)})")
        if layer.name in names:
            raise ValueError(f"lower_layers: two layers are named {layer.name!r}; names must be unique")
        names.add(layer.name)
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


def simulate_layers(layers, chip, *, mode: str = "simulate", **kw):
    """Lower ``layers`` for ``chip`` and simulate the program (``lower_layers`` + ``simulate``).

    ``mode="analytic"`` returns an :class:`~aisys.chip.estimate.AnalyticEstimate` instead (no simulation,
    microseconds at any size). Layers that would lower to more than ``max_instructions`` (default
    ``aisys.chip.estimate.MAX_INSTRUCTIONS``, seconds of work) raise ``SimulationTooLarge``, which says so."""
    if mode == "analytic":
        kw.pop("max_instructions", None)
        return estimate_layers(layers, chip, **kw)
    if mode != "simulate":
        raise ValueError(f"simulate_layers: mode must be 'simulate' or 'analytic', got {mode!r}")
    return simulate(lower_layers(layers, chip, **kw))


def simulate_layer(layer, chip, **kw):
    """One layer on ``chip``: tiled to fit its buffers, with DMA, stalls and the trace (``mode="analytic"``:
    the analytic estimate, for layers too large to simulate instruction by instruction)."""
    return simulate_layers([layer], chip, **kw)
