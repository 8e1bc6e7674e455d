"""The memory hierarchy (存储层次) around the matrix unit: buffer capacity, tiling, DRAM traffic.

Each operand travels DRAM -> (buffers along its route) -> matrix unit; outputs go back. A tile of
a GEMM must fit every buffer it passes through — half of a double-buffered one, because the other
half is being filled for the next tile meanwhile (ping-pong). When the whole layer does not fit,
``plan_gemm_tiles`` cuts it into ``Mt x Nt x Kt`` tiles and picks the loop order that moves the
fewest DRAM bytes; the bytes moved beyond reading each operand once are the *extra traffic* that
tiling costs. With ``on_overflow="error"`` it refuses instead, naming the buffer, its size and the
bytes the layer needs.

How fast the bytes arrive — DRAM bandwidth and latency, DMA engines working in parallel with the
matrix unit, and the stalls when they fall behind — is simulated event by event in
``aisys.chip.simulate``; ``bandwidth_for_zero_stalls`` asks that simulation for the smallest DRAM
bandwidth at which no stall is caused by memory (SCALE-Sim's CALC mode, answered by bisection).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .config import ChipConfig, preset
from .layers import LayerNorm, Pool, Softmax, word_bytes


class CapacityError(ValueError):
    """A layer (or its smallest tile) does not fit a buffer: names the buffer, its size, the need."""

    def __init__(self, buffer: str, size_bytes: int, need_bytes: int, what: str, hint: str = ""):
        self.buffer, self.size_bytes, self.need_bytes = buffer, size_bytes, need_bytes
        msg = (f"{what} needs {need_bytes:,} B in buffer {buffer!r}, which offers {size_bytes:,} B"
               + (f"; {hint}" if hint else ""))
        super().__init__(msg)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def resident_buffer(chip: ChipConfig) -> str | None:
    """Where activations stay between layers on chips that keep them on chip (TPU v1's UB)."""
    if not chip.resident_activations:
        return None
    hops = chip.routes["ifmap"].hops
    return hops[-1][2]


def _onchip(route_hops) -> list[str]:
    """On-chip buffers a route writes into, in order."""
    return [dst for _, _, dst in route_hops if dst != "dram"]


@dataclass(frozen=True)
class TilePlan:
    """How one GEMM-shaped layer is cut into tiles, and what that costs in DRAM traffic (bytes)."""
    M: int
    N: int
    K: int
    Mt: int
    Nt: int
    Kt: int
    order: str                 # "m_outer" (A tile kept across the n loop) or "n_outer" (B kept)
    dram_bytes: dict           # ifmap / filter reads and ofmap writes
    compulsory_bytes: dict     # the same, if every operand crossed the DRAM interface once
    buffer_use: dict           # buffer -> (bytes one tile step needs, bytes allowed per tile)
    resident: bool = False
    a_scale: float = 1.0       # DRAM bytes per im2col byte of the left operand (raw input / im2col, <= 1)

    @property
    def tiles(self) -> tuple[int, int, int]:
        return _ceil_div(self.M, self.Mt), _ceil_div(self.N, self.Nt), _ceil_div(self.K, self.Kt)

    @property
    def tile_count(self) -> int:
        a, b, c = self.tiles
        return a * b * c

    @property
    def total_dram_bytes(self) -> int:
        return sum(self.dram_bytes.values())

    @property
    def extra_bytes(self) -> int:
        """DRAM bytes that tiling adds: operands read more than once."""
        return self.total_dram_bytes - sum(self.compulsory_bytes.values())

    def steps(self):
        """(mi, ni, ki) in loop order, K innermost so partial sums stay in the accumulators."""
        nM, nN, nK = self.tiles
        if self.order == "m_outer":
            for mi in range(nM):
                for ni in range(nN):
                    for ki in range(nK):
                        yield mi, ni, ki
        else:
            for ni in range(nN):
                for mi in range(nM):
                    for ki in range(nK):
                        yield mi, ni, ki

    def schedule(self):
        """(mi, ni, ki, (Mt, Nt, Kt), load A?, load B?) per step: the one account of tile reuse that
        both the traffic figures and the lowered program follow (a tile still in its buffer is kept)."""
        cur_a = cur_b = None
        for mi, ni, ki in self.steps():
            new_a, new_b = (mi, ki) != cur_a, (ki, ni) != cur_b
            cur_a, cur_b = (mi, ki), (ki, ni)
            yield mi, ni, ki, self.tile_dims(mi, ni, ki), new_a, new_b

    def tile_dims(self, mi: int, ni: int, ki: int) -> tuple[int, int, int]:
        return (min(self.Mt, self.M - mi * self.Mt), min(self.Nt, self.N - ni * self.Nt),
                min(self.Kt, self.K - ki * self.Kt))

    def summary(self) -> str:
        nM, nN, nK = self.tiles
        lines = [f"tiling M={self.M} N={self.N} K={self.K} into {self.Mt}x{self.Nt}x{self.Kt} tiles "
                 f"({nM}x{nN}x{nK} = {self.tile_count}), loop order {self.order}"
                 + (", activations resident on chip" if self.resident else "")]
        for op in ("ifmap", "filter", "ofmap"):
            lines.append(f"  DRAM {op:<6} {self.dram_bytes[op]:>12,} B (once: {self.compulsory_bytes[op]:,} B)")
        lines.append(f"  extra traffic from tiling: {self.extra_bytes:,} B")
        for name, (need, limit) in self.buffer_use.items():
            lines.append(f"  buffer {name:<14} {need:>10,} B of {limit:,} B per tile")
        return "\n".join(lines)


def _granules(chip: ChipConfig) -> tuple[int, int, int]:
    m = chip.matrix
    if m.kind == "cube":
        return m.rows, m.cols, m.depth
    return m.rows, m.cols, m.rows


def _sizes(full: int, tile: int) -> dict:
    """{tile size: how many tiles have it} along one axis (full tiles, then one remainder)."""
    n, rest = divmod(full, tile)
    out = {tile: n} if n else {}
    if rest:
        out[rest] = out.get(rest, 0) + 1
    return out


def tile_loads(plan: "TilePlan") -> tuple[dict, dict]:
    """How many times ``plan.schedule()`` loads each shape of A tile {(mt, kt): loads} and of B tile
    {(kt, nt): loads}, counted in closed form. K is innermost, so a tile is kept only when K has one step:
    then ``m_outer`` keeps the A tile across the n loop (and the single B tile if N has one step), and
    ``n_outer`` the reverse. ``tests/chip/test_memory.py`` holds this equal to walking the schedule."""
    nM, nN, nK = plan.tiles
    ms, ns, ks = _sizes(plan.M, plan.Mt), _sizes(plan.N, plan.Nt), _sizes(plan.K, plan.Kt)
    if plan.order == "m_outer":
        a_each = 1 if nK == 1 else nN                 # per (mi, ki)
        b_each = 1 if nK == 1 and nN == 1 else nM      # per (ki, ni)
    else:
        b_each = 1 if nK == 1 else nM
        a_each = 1 if nK == 1 and nM == 1 else nN
    a = {(mt, kt): cm * ck * a_each for mt, cm in ms.items() for kt, ck in ks.items()}
    b = {(kt, nt): ck * cn * b_each for kt, ck in ks.items() for nt, cn in ns.items()}
    return a, b


def _candidates(full: int, granule: int) -> list[int]:
    out = {full}
    g = granule
    while g < full:
        out.add(g)
        g *= 2
    return sorted(out, reverse=True)


def _buffer_need(chip: ChipConfig, Mt: int, Nt: int, Kt: int, resident: str | None) -> dict:
    """Bytes each buffer must hold for one tile step (all operands that pass through it)."""
    m = chip.matrix
    need: dict[str, int] = {}
    tile = {"ifmap": Mt * Kt * m.input_bytes, "filter": Kt * Nt * m.input_bytes}
    for op in ("ifmap", "filter"):
        for buf in _onchip(chip.routes[op].hops):
            if buf == resident:
                continue
            need[buf] = need.get(buf, 0) + tile[op]
    ofmap_hops = chip.routes["ofmap"].hops
    acc = ofmap_hops[0][1]
    need[acc] = need.get(acc, 0) + Mt * Nt * m.acc_bytes
    for buf in _onchip(ofmap_hops):
        if buf == resident:
            continue
        need[buf] = need.get(buf, 0) + Mt * Nt * m.input_bytes
    return need


def _first_overflow(chip: ChipConfig, need: dict):
    for name, bytes_needed in need.items():
        limit = chip.buffer(name).tile_bytes
        if bytes_needed > limit:
            return name, bytes_needed, limit
    return None


def a_tile_dram_bytes(tile_bytes: int, scale: float) -> int:
    """DRAM bytes to fetch one tile of the left operand: a convolution's im2col tile is fetched as
    the raw input it is expanded from (``scale`` = raw / im2col size, at most 1)."""
    return math.ceil(tile_bytes * scale)


def _traffic(M, N, K, Mt, Nt, Kt, order, a_scale, in_b, resident):
    """The traffic of a tiling in closed form (used to compare candidates; ``schedule`` is exact)."""
    nM, nN, nK = _ceil_div(M, Mt), _ceil_div(N, Nt), _ceil_div(K, Kt)
    if order == "m_outer":
        a_words = M * K if nK == 1 else M * K * nN
        b_words = K * N if (nK == 1 and nN == 1) else K * N * nM
    else:
        b_words = K * N if nK == 1 else K * N * nM
        a_words = M * K if (nK == 1 and nM == 1) else M * K * nN
    return {"ifmap": 0 if resident else math.ceil(a_words * a_scale) * in_b,
            "filter": b_words * in_b,
            "ofmap": 0 if resident else M * N * in_b}


def plan_gemm_tiles(M: int, N: int, K: int, chip, *, ifmap_words: int | None = None,
                    on_overflow: str = "tile", what: str = "") -> TilePlan:
    """Cut a GEMM-shaped layer into tiles that fit ``chip``'s buffers, with the least DRAM traffic.

    ``ifmap_words`` is the raw input size for a convolution (its im2col expansion happens on chip,
    so DRAM sees the raw tensor: A-traffic is scaled by raw / (M·K) when that is below 1).
    ``on_overflow="error"`` raises :class:`CapacityError` instead of tiling a layer that does not fit.
    """
    chip = preset(chip)
    if on_overflow not in ("tile", "error"):
        raise ValueError(f"plan_gemm_tiles: on_overflow must be 'tile' or 'error', got {on_overflow!r}")
    for name, v in (("M", M), ("N", N), ("K", K)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"plan_gemm_tiles: {name} must be a positive integer, got {v!r}")
    what = what or f"GEMM M={M} N={N} K={K}"
    m = chip.matrix
    raw = M * K if ifmap_words is None else ifmap_words
    a_scale = min(1.0, raw / (M * K))
    res_buf = resident_buffer(chip)
    resident = res_buf is not None
    if resident:
        res_need = (raw + M * N) * m.input_bytes
        size = chip.buffer(res_buf).size_bytes
        if res_need > size:
            raise CapacityError(res_buf, size, res_need, f"{what}: input + output activations",
                                hint="activations stay on chip on this chip; use a smaller batch or layer")
    compulsory = {"ifmap": 0 if resident else math.ceil(min(raw, M * K)) * m.input_bytes,
                  "filter": K * N * m.input_bytes, "ofmap": 0 if resident else M * N * m.input_bytes}

    def make(Mt, Nt, Kt, order):
        need = _buffer_need(chip, Mt, Nt, Kt, res_buf)
        plan = TilePlan(M, N, K, Mt, Nt, Kt, order, {}, compulsory,
                        {b: (need[b], chip.buffer(b).tile_bytes) for b in need}, resident, a_scale)
        traffic = {"ifmap": 0, "filter": 0, "ofmap": 0 if resident else M * N * m.input_bytes}
        a_loads, b_loads = tile_loads(plan)           # closed form of schedule()'s reuse: O(1), not O(tiles)
        for (mt, kt), n in a_loads.items():
            if not resident:
                traffic["ifmap"] += n * a_tile_dram_bytes(mt * kt * m.input_bytes, a_scale)
        for (kt, nt), n in b_loads.items():
            traffic["filter"] += n * kt * nt * m.input_bytes
        return replace(plan, dram_bytes=traffic)

    full_need = _buffer_need(chip, M, N, K, res_buf)
    over = _first_overflow(chip, full_need)
    if over is None:
        return make(M, N, K, "m_outer")
    if on_overflow == "error":
        name, need, limit = over
        buf = chip.buffer(name)
        raise CapacityError(name, limit, need, f"{what} (untiled)",
                            hint=(f"{buf.size_bytes:,} B double-buffered = {limit:,} B per tile; "
                                  if buf.double_buffered else "") + "pass on_overflow='tile' to tile it")
    gM, gN, gK = _granules(chip)
    best, best_key = None, None
    smallest = None
    for Kt in _candidates(K, gK):
        for Nt in _candidates(N, gN):
            for Mt in _candidates(M, gM):
                need = _buffer_need(chip, Mt, Nt, Kt, res_buf)
                if _first_overflow(chip, need) is not None:
                    smallest = (Mt, Nt, Kt, need)
                    continue
                for order in ("m_outer", "n_outer"):
                    traffic = _traffic(M, N, K, Mt, Nt, Kt, order, a_scale, m.input_bytes, resident)
                    tiles = _ceil_div(M, Mt) * _ceil_div(N, Nt) * _ceil_div(K, Kt)
                    key = (sum(traffic.values()), tiles, order != "m_outer")
                    if best_key is None or key < best_key:
                        best, best_key = (Mt, Nt, Kt, order), key
    if best is None:
        Mt, Nt, Kt, need = smallest
        name, need_b, limit = _first_overflow(chip, need)
        raise CapacityError(name, limit, need_b, f"{what}: even its smallest tile {Mt}x{Nt}x{Kt}",
                            hint="enlarge that buffer")
    return make(*best)


# ---- routes and the vector unit's buffer ------------------------------------------------------------------
def route_hops(chip: ChipConfig, operand: str, resident: str | None) -> list:
    """The hops an operand really takes: on chips with resident activations, none touch DRAM."""
    hops = list(chip.routes[operand].hops)
    if resident and operand in ("ifmap", "ofmap"):
        hops = [h for h in hops if "dram" not in (h[1], h[2])]
    return hops


def vector_buffer(chip: ChipConfig) -> str:
    """Where the vector unit works: the first buffer results go to after the accumulators."""
    _, src, dst = chip.routes["ofmap"].hops[0]
    return src if dst == "dram" else dst


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
    vbuf = vector_buffer(chip)
    per_unit = (unit_in + unit_out) * word_bytes(layer, chip)
    limit = chip.buffer(vbuf).tile_bytes
    if per_unit > limit:
        raise CapacityError(vbuf, limit, per_unit, f"layer {layer.name!r} ({layer.describe()}): one row/channel")
    return unit_in, unit_out, units, max(1, min(units, limit // per_unit))
