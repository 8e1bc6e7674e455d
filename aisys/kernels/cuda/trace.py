"""A memory-traffic counter for kernels run under numba's CUDA simulator, and the thread-hierarchy record.

``profile(host_fn, *args)`` runs a host function of :mod:`aisys.kernels.cuda.kernels` (``matmul``, …) with every
device array it creates, and every ``cuda.shared.array`` its kernels allocate, replaced by a view that records
each element access: which (block, thread) made it, load or store, global or shared, the byte address and
the source line (the *instruction*). From that:

- loads and stores per thread, per block and in total, global and shared (GPU Puzzles' score, for a whole
  launch);
- **bank conflicts** for a 32-bank shared memory of 4-byte words: the k-th execution of one instruction by the
  32 threads of a warp is one warp-wide access (threads run in lockstep); its addresses fall into banks
  (word address mod 32); distinct words in the same bank are serialized, so the access costs
  max over banks of (distinct words in it) transactions, one more than a conflict-free access per extra word
  (threads reading the *same* word get it broadcast: no conflict);
- **global sectors**: the distinct 32-byte segments a warp-wide global access touches (coalescing);
- which thread wrote each output element (:meth:`TrafficReport.owner_map`) and the addresses each thread
  touched (:meth:`TrafficReport.touched`) — the records ThreadGridView draws.

It needs the simulator: on a real GPU the kernels run as machine code that Python cannot watch.
"""
from __future__ import annotations

import linecache
import sys
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from .backend import SIMULATOR, numba_cuda
from .device import DEVICES, DeviceSpec, check_launch

__all__ = ["TrafficReport", "profile", "current_device", "launch", "to_device"]

_SIM_DIR = "numba/cuda/simulator"
_STATE = threading.local()
_ACTIVE: dict = {"tracer": None}


def current_device() -> DeviceSpec:
    """The GPU numba sees (its real limits), or the A100 description under the simulator."""
    if SIMULATOR:
        return DEVICES["A100"]
    d = numba_cuda.get_current_device()
    return DeviceSpec(d.name.decode() if isinstance(d.name, bytes) else str(d.name),
                      max_threads_per_block=d.MAX_THREADS_PER_BLOCK,
                      max_block_dims=(d.MAX_BLOCK_DIM_X, d.MAX_BLOCK_DIM_Y, d.MAX_BLOCK_DIM_Z),
                      max_grid_dims=(d.MAX_GRID_DIM_X, d.MAX_GRID_DIM_Y, d.MAX_GRID_DIM_Z),
                      shared_bytes_per_block=d.MAX_SHARED_MEMORY_PER_BLOCK, warp_size=d.WARP_SIZE,
                      sm_count=d.MULTIPROCESSOR_COUNT)


@dataclass(frozen=True)
class Access:
    block: tuple          # blockIdx (x, y, z)
    thread: tuple         # threadIdx (x, y, z)
    tid: int              # linear thread id in the block (x fastest)
    space: str            # "global" or "shared"
    op: str               # "load" or "store"
    array: str            # the array's name
    index: tuple          # the element's index in its array
    address: int          # byte address (global: in the device's address space; shared: in the block's)
    site: int             # source line of the instruction
    seq: int              # how many times this thread executed this instruction before


class _Traced(np.ndarray):
    """An array view that reports every scalar element access made by a simulated CUDA thread."""

    def __getitem__(self, idx):
        _record(self, idx, "load")
        return np.ndarray.__getitem__(self, idx)

    def __setitem__(self, idx, val):
        _record(self, idx, "store")
        np.ndarray.__setitem__(self, idx, val)


def _record(arr, idx, op):
    tracer = _ACTIVE["tracer"]
    meta = getattr(arr, "_meta", None)
    th = threading.current_thread()
    if tracer is None or meta is None or not hasattr(th, "threadIdx"):
        return
    t = idx if isinstance(idx, tuple) else (idx,)
    if len(t) != arr.ndim or not all(isinstance(i, (int, np.integer)) for i in t):
        return                                            # whole-array or slice access: not an element
    t = tuple(int(i) % n for i, n in zip(t, arr.shape))
    flat = int(np.ravel_multi_index(t, arr.shape))
    f = sys._getframe(2)
    while f is not None and _SIM_DIR in f.f_code.co_filename.replace("\\", "/"):
        f = f.f_back
    site = f.f_lineno if f is not None else 0
    tracer.add(th, meta, t, meta[2] + flat * arr.itemsize, op, site)


class _Tracer:
    def __init__(self):
        self.accesses: list[Access] = []
        self.launches: list[dict] = []
        self.arrays: dict[str, tuple] = {}
        self._seq = Counter()
        self._next_global = 0
        self._lock = threading.Lock()

    def add(self, th, meta, index, address, op, site):
        name, space, _ = meta
        b, t = tuple(th.blockIdx), tuple(th.threadIdx)
        key = (b, th.thread_id, name, op, site)
        with self._lock:
            seq = self._seq[key]
            self._seq[key] += 1
            self.accesses.append(Access(b, t, th.thread_id, space, op, name, index, address, site, seq))

    def global_array(self, arr: np.ndarray, name: str) -> np.ndarray:
        view = arr.view(_Traced)
        view._meta = (name, "global", self._next_global)
        self.arrays[name] = (arr.shape, arr.dtype.str, "global")
        self._next_global += -(-arr.nbytes // 256) * 256 + 256    # 256-byte aligned allocations
        return view


def to_device(arr: np.ndarray, name: str):
    """``cuda.to_device``, with the device copy traced when a :func:`profile` is running."""
    dev = numba_cuda.to_device(np.ascontiguousarray(arr))
    tracer = _ACTIVE["tracer"]
    if tracer is not None:
        dev._ary = tracer.global_array(dev._ary, name)
    return dev


def launch(kernel, grid, block, *args, shared_bytes: int = 0, name: str = ""):
    """Check the launch against the current device, record it when profiling, and run ``kernel[grid, block]``."""
    g, b = check_launch(grid, block, shared_bytes, current_device())
    tracer = _ACTIVE["tracer"]
    if tracer is not None:
        tracer.launches.append(dict(kernel=name or getattr(kernel, "__name__", "kernel"), grid=g, block=b,
                                    shared_bytes=shared_bytes))
    kernel[g, b](*args)


_ORIG_SHARED: list = []
_SHARED_LOCK = threading.Lock()


def _shared_name(caller) -> str:
    """The variable a ``x = cuda.shared.array(...)`` line assigns ("sA"), else "shared@<line>"."""
    line = linecache.getline(*caller)
    name = line.split("=")[0].strip() if "=" in line else ""
    return f"shared {name}" if name.isidentifier() else f"shared@{caller[1]}"


def _traced_shared_array(shared_self, shape, dtype):
    """Replaces the simulator's ``cuda.shared.array`` while profiling: the same allocation rule (one array per
    source line, shared by the block's threads), returning a traced array."""
    if shape == 0:                                        # dynamic shared memory: not traced
        return _ORIG_SHARED[0](shared_self, shape, dtype)
    f = sys._getframe(1)
    caller = (f.f_code.co_filename, f.f_lineno)
    from numba.core import types
    from numba.np import numpy_support
    # The block's threads all reach this line; the first allocates and the rest must get the same array. The
    # simulator's threads can switch between the lookup and the store (imports, numpy), so without the lock two
    # threads each made their own "shared" array and computed from a tile the others never wrote.
    with _SHARED_LOCK:
        res = shared_self._allocations.get(caller)
        if res is None:
            dt = numpy_support.as_dtype(dtype) if isinstance(dtype, types.Type) else np.dtype(dtype)
            base = sum(a.nbytes for a in shared_self._allocations.values())
            res = np.zeros(shape, dt).view(_Traced)
            res._meta = (_shared_name(caller), "shared", base)
            shared_self._allocations[caller] = res
            tracer = _ACTIVE["tracer"]
            if tracer is not None:
                tracer.arrays[res._meta[0]] = (res.shape, res.dtype.str, "shared")
    return res


@dataclass
class TrafficReport:
    """What one profiled call did, access by access (see the module docstring)."""
    accesses: list
    launches: list
    arrays: dict
    warp_size: int = 32
    banks: int = 32
    result: object = None

    def _count(self, space, op) -> int:
        return sum(1 for a in self.accesses if a.space == space and a.op == op)

    @property
    def global_loads(self) -> int:
        return self._count("global", "load")

    @property
    def global_stores(self) -> int:
        return self._count("global", "store")

    @property
    def shared_loads(self) -> int:
        return self._count("shared", "load")

    @property
    def shared_stores(self) -> int:
        return self._count("shared", "store")

    def _warp_accesses(self, space):
        groups = defaultdict(list)
        for a in self.accesses:
            if a.space == space:
                groups[(a.block, a.tid // self.warp_size, a.array, a.op, a.site, a.seq)].append(a.address)
        return groups

    @property
    def bank_conflicts(self) -> int:
        """Extra shared-memory transactions caused by bank conflicts (0 for a conflict-free kernel)."""
        extra = 0
        for addrs in self._warp_accesses("shared").values():
            per_bank = defaultdict(set)
            for ad in addrs:
                word = ad // 4
                per_bank[word % self.banks].add(word)
            extra += max(len(w) for w in per_bank.values()) - 1
        return extra

    @property
    def global_sectors(self) -> int:
        """32-byte segments moved by warp-wide global accesses (fewer = better coalesced)."""
        return sum(len({ad // 32 for ad in addrs}) for addrs in self._warp_accesses("global").values())

    def per_thread(self) -> dict:
        """{(block, thread): {"global_loads": …, "global_stores": …, "shared_loads": …, "shared_stores": …}}."""
        out = defaultdict(Counter)
        for a in self.accesses:
            out[(a.block, a.thread)][f"{a.space}_{a.op}s"] += 1
        return {k: dict(v) for k, v in out.items()}

    def per_block(self) -> dict:
        out = defaultdict(Counter)
        for a in self.accesses:
            out[a.block][f"{a.space}_{a.op}s"] += 1
        return {k: dict(v) for k, v in out.items()}

    def max_per_thread(self) -> dict:
        """The largest count any one thread has, per kind (GPU Puzzles' score)."""
        out = Counter()
        for counts in self.per_thread().values():
            for k, v in counts.items():
                out[k] = max(out[k], v)
        return dict(out)

    def owner_map(self, array: str):
        """(block linear index, thread linear id) arrays, shaped like ``array``, of the thread that last stored
        each element (−1 where nobody did). Blocks are numbered x fastest."""
        shape = self.arrays[array][0]
        blk, tid = np.full(shape, -1, np.int64), np.full(shape, -1, np.int64)
        grid = self.launches[-1]["grid"] if self.launches else (1, 1, 1)
        for a in self.accesses:
            if a.array == array and a.op == "store":
                blk[a.index] = a.block[0] + grid[0] * (a.block[1] + grid[1] * a.block[2])
                tid[a.index] = a.tid
        return blk, tid

    def touched(self, block, thread) -> dict:
        """{"global": [(array, index, op)], "shared": [...]} for one thread, in program order."""
        out = {"global": [], "shared": []}
        block, thread = tuple(block) + (0,) * (3 - len(block)), tuple(thread) + (0,) * (3 - len(thread))
        for a in self.accesses:
            if a.block == block and a.thread == thread:
                out[a.space].append((a.array, a.index, a.op))
        return out

    def summary(self) -> str:
        launches = "; ".join(f"{l['kernel']}[grid={l['grid']}, block={l['block']}]" for l in self.launches)
        return (f"{launches}\n  global: {self.global_loads} loads, {self.global_stores} stores "
                f"({self.global_sectors} 32-byte sectors)\n  shared: {self.shared_loads} loads, "
                f"{self.shared_stores} stores, {self.bank_conflicts} bank conflicts")

    def __repr__(self) -> str:
        return f"<TrafficReport {self.summary()}>"


def profile(host_fn, *args, **kwargs) -> TrafficReport:
    """Run ``host_fn(*args, **kwargs)`` (a host function of aisys.kernels.cuda) under the simulator, counting
    every global and shared access of its launches. ``report.result`` is what it returned."""
    if not SIMULATOR:
        raise RuntimeError("cuda.profile counts accesses in numba's CUDA simulator; this process runs a real GPU. "
                           "Run with NUMBA_ENABLE_CUDASIM=1 (set before numba is imported) to profile")
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    if _ACTIVE["tracer"] is not None:
        raise RuntimeError("cuda.profile: a profile is already running (profiles do not nest)")
    tracer = _Tracer()
    orig = FakeCUDAShared.array
    _ORIG_SHARED[:] = [orig]
    FakeCUDAShared.array = _traced_shared_array
    _ACTIVE["tracer"] = tracer
    try:
        result = host_fn(*args, **kwargs)
    finally:
        _ACTIVE["tracer"] = None
        FakeCUDAShared.array = orig
    dev = current_device()
    return TrafficReport(tracer.accesses, tracer.launches, tracer.arrays, dev.warp_size, dev.shared_banks, result)
