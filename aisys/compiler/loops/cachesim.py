"""A multi-level, set-associative LRU cache simulator for the address streams of loop nests.

Each level has a size, a line size and a number of ways (sets = size / (line · ways)); an access looks up
L1, then L2, … and fills every level that missed (write-allocate, non-inclusive, true LRU per set). The
run is a numba loop (≥ 2e7 accesses/s); it reports, per level and per array, accesses, hits and misses,
and an estimated cycle count from per-level latencies (each access pays the latency of the level that
served it; memory pays ``memory_latency``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .te import LoopsError

#: latencies in cycles and sizes of common cores (AMD Zen 4 / Zen 3: 32 KiB 8-way L1d, 1 MiB / 512 KiB 8-way
#: L2, a 32 MiB 16-way L3 shared by 8 cores — a 4 MiB slice per core here; Intel Skylake-SP). Lines 64 B.
PRESETS = {
    "zen4": ([dict(size=32768, ways=8, line=64, latency=4), dict(size=1 << 20, ways=8, line=64, latency=14),
              dict(size=4 << 20, ways=16, line=64, latency=47)], 200),
    "zen3": ([dict(size=32768, ways=8, line=64, latency=4), dict(size=524288, ways=8, line=64, latency=12),
              dict(size=4 << 20, ways=16, line=64, latency=46)], 200),
    "skylake": ([dict(size=32768, ways=8, line=64, latency=4), dict(size=1 << 20, ways=16, line=64, latency=14),
                 dict(size=1441792, ways=11, line=64, latency=50)], 200),
}


@dataclass
class LevelStats:
    name: str
    accesses: int
    hits: int
    misses: int
    per_array: dict          # array name -> (accesses, hits, misses)

    @property
    def miss_rate(self) -> float:
        return self.misses / self.accesses if self.accesses else 0.0


@dataclass
class CacheReport:
    levels: list
    cycles: int
    n: int
    arrays: list
    served: np.ndarray | None = None        # with run(record=True): per access, the level that served it
    addresses: np.ndarray | None = None
    array_ids: np.ndarray | None = None
    bases: list | None = None
    sizes: list | None = None

    def misses(self, level: int = 0, array: str | None = None) -> int:
        lv = self.levels[level]
        return lv.misses if array is None else lv.per_array.get(array, (0, 0, 0))[2]

    def misses_per_kilo(self, iterations: int, level: int = 0) -> float:
        return 1000.0 * self.levels[level].misses / max(1, iterations)

    def summary(self) -> str:
        rows = [f"{self.n} accesses, ≈{self.cycles} cycles"]
        for lv in self.levels:
            per = ", ".join(f"{a} {m}" for a, (_, _, m) in lv.per_array.items())
            rows.append(f"{lv.name}: {lv.accesses} accesses, {lv.hits} hits, {lv.misses} misses "
                        f"({100 * lv.miss_rate:.1f}%)" + (f" — misses by array: {per}" if per else ""))
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.summary()


class CacheSim:
    """``CacheSim([dict(size=32768, ways=8, line=64, latency=4), ...], memory_latency=200)``."""

    def __init__(self, levels, memory_latency: int = 200):
        self.levels = []
        for n, lv in enumerate(levels):
            lv = dict(lv)
            size, ways, line = int(lv.get("size", 0)), int(lv.get("ways", 1)), int(lv.get("line", 64))
            if size <= 0 or ways <= 0 or line <= 0 or line & (line - 1):
                raise LoopsError(f"CacheSim level L{n + 1}: size, ways > 0 and a power-of-two line size are needed, "
                                 f"got {lv}")
            if size % (line * ways):
                raise LoopsError(f"CacheSim level L{n + 1}: size {size} is not a multiple of line·ways = "
                                 f"{line}·{ways}; sets must be a whole number")
            lv.update(size=size, ways=ways, line=line, sets=size // (line * ways), latency=int(lv.get("latency", 0)))
            self.levels.append(lv)
        if not self.levels:
            raise LoopsError("CacheSim: give at least one level")
        self.memory_latency = int(memory_latency)

    @classmethod
    def preset(cls, name: str) -> "CacheSim":
        if name not in PRESETS:
            raise LoopsError(f"CacheSim.preset: unknown preset {name!r}; known: {', '.join(PRESETS)}")
        levels, mem = PRESETS[name]
        return cls(levels, mem)

    def run(self, addresses, array_ids=None, names=None, record: bool = False) -> CacheReport:
        """Simulate the stream (byte addresses, or a :class:`Trace` from ``trace_addresses``). ``record``:
        keep, per access, the level that served it (0 = L1, …, len(levels) = memory) in ``report.served``
        and the stream in ``report.addresses`` / ``report.array_ids`` (what CacheHeatmap draws)."""
        trace = addresses if hasattr(addresses, "array_ids") else None
        if trace is not None:
            addresses, array_ids, names = trace.addresses, trace.array_ids, trace.names
        addr = np.ascontiguousarray(addresses, dtype=np.int64)
        if addr.ndim != 1:
            raise LoopsError(f"CacheSim.run: addresses must be a 1-D array, got shape {addr.shape}")
        if (addr < 0).any():
            raise LoopsError("CacheSim.run: addresses must be non-negative byte addresses")
        ids = np.zeros(len(addr), np.int16) if array_ids is None else np.ascontiguousarray(array_ids, np.int16)
        n_arr = int(ids.max()) + 1 if len(ids) else 1
        names = list(names) if names is not None else [f"a{i}" for i in range(n_arr)]
        L = len(self.levels)
        geo = np.array([[lv["sets"], lv["ways"], lv["line"]] for lv in self.levels], np.int64)
        maxsets = int(geo[:, 0].max())
        maxways = int(geo[:, 1].max())
        tags = np.full((L, maxsets, maxways), -1, np.int64)
        stamps = np.zeros((L, maxsets, maxways), np.int64)
        hits = np.zeros((L, max(n_arr, len(names))), np.int64)
        misses = np.zeros((L, max(n_arr, len(names))), np.int64)
        served = np.empty(len(addr) if record else 0, np.int8)
        _kernel()(addr, ids, geo, tags, stamps, hits, misses, served)
        lat = np.array([lv["latency"] for lv in self.levels], np.int64)
        by_level = [hits[i].sum() for i in range(L)]
        cycles = int(sum(int(s) * int(t) for s, t in zip(by_level, lat)) + int(misses[-1].sum()) * self.memory_latency)
        levels = []
        for i in range(L):
            per = {names[a]: (int(hits[i, a] + misses[i, a]), int(hits[i, a]), int(misses[i, a]))
                   for a in range(len(names)) if hits[i, a] + misses[i, a]}
            levels.append(LevelStats(f"L{i + 1}", int(hits[i].sum() + misses[i].sum()), int(hits[i].sum()),
                                     int(misses[i].sum()), per))
        rep = CacheReport(levels, cycles, len(addr), names)
        if record:
            rep.served, rep.addresses, rep.array_ids = served, addr, ids
            rep.bases = list(trace.bases) if trace is not None else _bases(addr, ids, len(names))
            rep.sizes = list(trace.sizes) if trace is not None else None
        return rep


_KERNEL = None


def _bases(addr, ids, n):
    """The lowest address each array was seen at (its base, for element positions)."""
    out = []
    for a in range(n):
        sel = addr[ids == a]
        out.append(int(sel.min()) if len(sel) else 0)
    return out


def _kernel():
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(cache=True, boundscheck=False)
        def simulate(addr, ids, geo, tags, stamps, hits, misses, served):
            clock = 0
            record = served.shape[0] > 0
            # per array, the L1 line it touched last and where: if that line is still there, the access hits
            last_block = np.full(hits.shape[1], -1, np.int64)
            last_set = np.zeros(hits.shape[1], np.int64)
            last_way = np.zeros(hits.shape[1], np.int64)
            line0, sets0 = geo[0, 2], geo[0, 0]
            for n in range(addr.shape[0]):
                a = addr[n]
                arr = ids[n]
                b0 = a // line0
                if b0 == last_block[arr] and tags[0, last_set[arr], last_way[arr]] == b0 // sets0:
                    clock += 1
                    stamps[0, last_set[arr], last_way[arr]] = clock
                    hits[0, arr] += 1
                    if record:
                        served[n] = 0
                    continue
                if record:
                    served[n] = geo.shape[0]
                for lv in range(geo.shape[0]):
                    sets, ways, line = geo[lv, 0], geo[lv, 1], geo[lv, 2]
                    block = a // line
                    s = block % sets
                    tag = block // sets
                    clock += 1
                    found = -1
                    victim = 0
                    oldest = stamps[lv, s, 0]
                    for w in range(ways):
                        if tags[lv, s, w] == tag:
                            found = w
                            break
                        if stamps[lv, s, w] < oldest:
                            oldest = stamps[lv, s, w]
                            victim = w
                    if found >= 0:
                        stamps[lv, s, found] = clock
                        hits[lv, arr] += 1
                        if lv == 0:
                            last_block[arr], last_set[arr], last_way[arr] = block, s, found
                        if record:
                            served[n] = lv
                        break
                    tags[lv, s, victim] = tag
                    stamps[lv, s, victim] = clock
                    misses[lv, arr] += 1
                    if lv == 0:
                        last_block[arr], last_set[arr], last_way[arr] = block, s, victim
        _KERNEL = simulate
    return _KERNEL
