"""A cycle-level systolic array: operands really move from PE to PE, one hop per cycle.

Every cycle each PE latches the operands its left and upper neighbours held the cycle before,
multiplies, and passes them on — so the result, the cycle count and the per-PE activity all come
out of the simulation, and the tests compare them with numpy and with the closed forms of
``aisys.chip.systolic``. Registers carry a *token* (fold id, stream index) next to each value, and
the simulation checks the timing it relies on: both operands of a MAC belong to the same fold and
step, a stationary weight is in place before the first input that needs it, a weight is never
overwritten before it was used, and no two outputs of one column leave on the same cycle.

Output-stationary: row i of A enters the left edge skewed by i cycles, column j of B enters the
top skewed by j; PE(i, j) accumulates C[m, n] and writes it out on its column's output bus on
the cycle of its last MAC (the diagonal wavefront drains the results).

Weight/input-stationary: the stationary tile shifts down a column in R cycles (deepest row first)
and is latched into each PE's shadow register; a PE swaps shadow -> active when the first input
of the new fold reaches it, so with double buffering the next tile loads while this one streams.
Inputs move right, partial sums move down and leave the bottom row. IS is WS on the transposed
problem: C^T = B^T A^T with A^T stationary.

Sequencing: serialized modes start the next fold the cycle after the previous fold's last token
left PE(R−1, C−1) (edge folds are padded, so every fold costs the same, as in SCALE-Sim).
Overlapped modes start the next stream as soon as the previous stream has been injected *and*
(WS/IS) the next weights are latched, or (OS) R cycles after the previous start, so each column's
output bus carries one result per cycle.

The kernels are plain Python compiled with numba on first use (``cache=True``); ``engine="python"``
runs the very same functions uninterpreted, which is slow but handy for stepping through.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .systolic import DATAFLOW_NAMES, MODES, MatrixReport, fold_geometry, systolic_gemm

# activity codes per PE per cycle
IDLE, MAC, LOAD, PASS = 0, 1, 2, 3
ACTIVITY_NAMES = {IDLE: "idle", MAC: "MAC", LOAD: "loading weights", PASS: "passing data (padding)"}
_ERRORS = {
    1: "operands of different folds or steps met in a PE (skew error)",
    2: "two outputs tried to leave one column on the same cycle (output bus conflict)",
    3: "an input reached a PE before its stationary weight was latched",
    4: "a partial sum and its input arrived out of step",
    5: "a weight was overwritten before the PE used it",
    6: "the simulation did not finish within the cycle bound",
}
_MAX_RECORD = 4_000_000    # PE-cycles of activity kept for animation (9 bytes each with the tags)


# ---------------------------------------------------------------------------------------------------
# Kernels (numba-compatible Python: scalars, numpy arrays, no objects)
# ---------------------------------------------------------------------------------------------------

def _stream_right(val, pres, ok, fold, step, inj, start, src, t, F, T, fdiv, fmod):
    """One cycle of a stream entering at the left edge (A in OS, the inputs in WS/IS): every row's tokens
    move one PE right, and row i's edge takes the next element of the fold it is injecting, skewed by i
    cycles: ``src[row, step]`` with row = ((f // fdiv) % fmod)·R + i (a padding zero past src's last row).
    A token carries its value, whether it is present and real, its fold and its step. Returns the elements
    read from ``src``."""
    R, C = val.shape
    reads = 0
    for i in range(R):
        for j in range(C - 1, 0, -1):
            val[i, j] = val[i, j - 1]
            pres[i, j] = pres[i, j - 1]
            ok[i, j] = ok[i, j - 1]
            fold[i, j] = fold[i, j - 1]
            step[i, j] = step[i, j - 1]
        pres[i, 0] = False
        ok[i, 0] = False
        f = inj[i]
        if f < F and start[f] >= 0:
            k = t - start[f] - i
            if 0 <= k < T:
                row = ((f // fdiv) % fmod) * R + i
                pres[i, 0] = True
                fold[i, 0] = f
                step[i, 0] = k
                if row < src.shape[0]:
                    ok[i, 0] = True
                    val[i, 0] = src[row, k]
                    reads += 1
                else:
                    val[i, 0] = 0
                if k == T - 1:
                    inj[i] += 1
    return reads


def _tokens(R, C, dtype):
    """A grid of tokens in flight: value, present, real (not padding), fold, step (-1: none yet)."""
    return (np.zeros((R, C), dtype), np.zeros((R, C), np.bool_), np.zeros((R, C), np.bool_),
            np.full((R, C), -1, np.int64), np.full((R, C), -1, np.int64))


def _finish(counters, cycles, reads_a, reads_b, exits, writes, macs, start):
    """What a finished run reports: cycles, reads of each operand, values leaving the array, final writes,
    useful MACs, and when each fold's stream started."""
    counters[0] = cycles
    counters[1] = reads_a
    counters[2] = reads_b
    counters[3] = exits
    counters[4] = writes
    counters[5] = macs
    for f in range(start.shape[0]):
        counters[8 + f] = start[f]


def _os_kernel(A, B, R, C, overlapped, record, out, activity, foldmap, tag, counters, max_cycles):
    M = A.shape[0]
    T = A.shape[1]
    N = B.shape[1]
    rf = (M + R - 1) // R
    cf = (N + C - 1) // C
    F = rf * cf
    a_val, a_pres, a_ok, a_fold, a_k = _tokens(R, C, out.dtype)
    b_val, b_pres, b_ok, b_fold, b_k = _tokens(R, C, out.dtype)
    acc = np.zeros((R, C), out.dtype)
    start = np.full(F, -1, np.int64)
    start[0] = 0
    inj_row = np.zeros(R, np.int64)
    inj_col = np.zeros(C, np.int64)
    bus_last = np.full(C, -1, np.int64)
    spacing = T if T > R else R
    folds_done = 0
    next_fold = 1
    ifmap_reads = 0
    filter_reads = 0
    writes = 0
    macs = 0
    t = 0
    while True:
        if t >= max_cycles:
            counters[6] = 6
            counters[7] = t
            return
        # A moves one PE to the right; the left edge takes row i's next element (skewed by i)
        ifmap_reads += _stream_right(a_val, a_pres, a_ok, a_fold, a_k, inj_row, start, A, t, F, T, cf, rf)
        # B moves one PE down; the top edge takes column j's next element (skewed by j)
        for j in range(C):
            for i in range(R - 1, 0, -1):
                b_val[i, j] = b_val[i - 1, j]
                b_pres[i, j] = b_pres[i - 1, j]
                b_ok[i, j] = b_ok[i - 1, j]
                b_fold[i, j] = b_fold[i - 1, j]
                b_k[i, j] = b_k[i - 1, j]
            b_pres[0, j] = False
            b_ok[0, j] = False
            f = inj_col[j]
            if f < F and start[f] >= 0:
                k = t - start[f] - j
                if 0 <= k < T:
                    n = (f % cf) * C + j
                    b_pres[0, j] = True
                    b_fold[0, j] = f
                    b_k[0, j] = k
                    if n < N:
                        b_ok[0, j] = True
                        b_val[0, j] = B[k, n]
                        filter_reads += 1
                    else:
                        b_val[0, j] = 0
                    if k == T - 1:
                        inj_col[j] += 1
        # every PE multiplies what just arrived
        finished_fold = -1
        for i in range(R):
            for j in range(C):
                if a_pres[i, j] != b_pres[i, j]:
                    counters[6] = 1
                    counters[7] = t
                    return
                if not a_pres[i, j]:
                    continue
                if a_fold[i, j] != b_fold[i, j] or a_k[i, j] != b_k[i, j]:
                    counters[6] = 1
                    counters[7] = t
                    return
                f = a_fold[i, j]
                useful = a_ok[i, j] and b_ok[i, j]
                if useful:
                    acc[i, j] += a_val[i, j] * b_val[i, j]
                    macs += 1
                if record:
                    activity[t, i, j] = 1 if useful else 3
                    foldmap[t, i, j] = f
                    tag[t, i, j] = a_k[i, j]
                if a_k[i, j] == T - 1:
                    if useful:
                        if bus_last[j] == t:
                            counters[6] = 2
                            counters[7] = t
                            return
                        bus_last[j] = t
                        out[(f // cf) * R + i, (f % cf) * C + j] = acc[i, j]
                        writes += 1
                    acc[i, j] = 0
                    if i == R - 1 and j == C - 1:
                        finished_fold = f
        if finished_fold >= 0:
            folds_done += 1
            if folds_done == F:
                break
        # sequencer: when may the next fold's wavefront start?
        if next_fold < F:
            if overlapped:
                if t + 1 == start[next_fold - 1] + spacing:
                    start[next_fold] = t + 1
                    next_fold += 1
            elif finished_fold == next_fold - 1:
                start[next_fold] = t + 1
                next_fold += 1
        t += 1
    _finish(counters, t + 1, ifmap_reads, filter_reads, writes, writes, macs, start)


def _stationary_kernel(S, X, R, C, overlapped, record, Y, activity, foldmap, tag, counters, max_cycles):
    Sr = S.shape[0]
    Sc = S.shape[1]
    T = X.shape[0]
    rf = (Sr + R - 1) // R
    cf = (Sc + C - 1) // C
    F = rf * cf                      # fold f: column fold f // rf, row (K) fold f % rf
    # stationary weights: active (used by the MAC), shadow (next fold), transit (shifting in)
    w_act = np.zeros((R, C), Y.dtype)
    w_act_ok = np.zeros((R, C), np.bool_)
    w_act_fold = np.full((R, C), -1, np.int64)
    w_sh = np.zeros((R, C), Y.dtype)
    w_sh_ok = np.zeros((R, C), np.bool_)
    w_sh_fold = np.full((R, C), -1, np.int64)
    w_sh_used = np.ones((R, C), np.bool_)
    tr_val = np.zeros((R, C), Y.dtype)
    tr_ok = np.zeros((R, C), np.bool_)
    tr_pres = np.zeros((R, C), np.bool_)
    tr_row = np.full((R, C), -1, np.int64)
    load_fold = np.full(C, -1, np.int64)
    load_step = np.zeros(C, np.int64)
    # streaming inputs (move right) and partial sums (move down)
    x_val, x_pres, x_ok, x_fold, x_m = _tokens(R, C, Y.dtype)
    p_val = np.zeros((R, C), Y.dtype)
    p_pres = np.zeros((R, C), np.bool_)
    p_fold = np.full((R, C), -1, np.int64)
    p_m = np.full((R, C), -1, np.int64)
    start = np.full(F, -1, np.int64)
    inj_row = np.zeros(R, np.int64)
    folds_done = 0
    next_start = 0
    x_reads = 0
    s_reads = 0
    exits = 0
    final_writes = 0
    macs = 0
    if not overlapped:
        for j in range(C):
            load_fold[j] = 0
    t = 0
    while True:
        if t >= max_cycles:
            counters[6] = 6
            counters[7] = t
            return
        if overlapped and t < C:
            load_fold[t] = 0          # double-buffered: column t starts loading fold 0 at cycle t
            load_step[t] = 0
        # inputs move one PE right; row i's left edge takes the next element (skewed by i)
        x_reads += _stream_right(x_val, x_pres, x_ok, x_fold, x_m, inj_row, start, X.T, t, F, T, 1, rf)
        # PEs, bottom row first so each reads the partial sum its upper neighbour made last cycle
        finished_fold = -1
        for i in range(R - 1, -1, -1):
            for j in range(C):
                if not x_pres[i, j]:
                    if i > 0 and p_pres[i - 1, j]:
                        counters[6] = 4
                        counters[7] = t
                        return
                    p_pres[i, j] = False
                    continue
                f = x_fold[i, j]
                if w_act_fold[i, j] != f:           # first input of a new fold: swap in its weights
                    if w_sh_fold[i, j] != f:
                        counters[6] = 3
                        counters[7] = t
                        return
                    w_act[i, j] = w_sh[i, j]
                    w_act_ok[i, j] = w_sh_ok[i, j]
                    w_act_fold[i, j] = f
                    w_sh_used[i, j] = True
                    if overlapped and i == 0 and f + 1 < F:
                        load_fold[j] = f + 1          # column j's shadow is free: load the next tile
                        load_step[j] = 0
                if i == 0:
                    psum = Y[0, 0] * 0
                else:
                    if not p_pres[i - 1, j] or p_fold[i - 1, j] != f or p_m[i - 1, j] != x_m[i, j]:
                        counters[6] = 4
                        counters[7] = t
                        return
                    psum = p_val[i - 1, j]
                useful = x_ok[i, j] and w_act_ok[i, j]
                if useful:
                    psum += x_val[i, j] * w_act[i, j]
                    macs += 1
                p_val[i, j] = psum
                p_pres[i, j] = True
                p_fold[i, j] = f
                p_m[i, j] = x_m[i, j]
                if record:
                    activity[t, i, j] = 1 if useful else 3
                    foldmap[t, i, j] = f
                    tag[t, i, j] = x_m[i, j]
                if i == R - 1:                        # the partial sum leaves the bottom of column j
                    col = (f // rf) * C + j
                    if col < Sc:
                        Y[x_m[i, j], col] += psum
                        exits += 1
                        if f % rf == rf - 1:
                            final_writes += 1
                    if j == C - 1 and x_m[i, j] == T - 1:
                        finished_fold = f
        # weight loading: each loading column shifts its transit registers down one row
        for j in range(C):
            g = load_fold[j]
            if g < 0:
                continue
            for i in range(R - 1, 0, -1):
                tr_val[i, j] = tr_val[i - 1, j]
                tr_ok[i, j] = tr_ok[i - 1, j]
                tr_pres[i, j] = tr_pres[i - 1, j]
                tr_row[i, j] = tr_row[i - 1, j]
            dest = R - 1 - load_step[j]
            r = (g % rf) * R + dest
            col = (g // rf) * C + j
            tr_pres[0, j] = True
            tr_row[0, j] = dest
            if r < Sr and col < Sc:
                tr_ok[0, j] = True
                tr_val[0, j] = S[r, col]
                s_reads += 1
            else:
                tr_ok[0, j] = False
                tr_val[0, j] = 0
            if record:
                for i in range(R):
                    if tr_pres[i, j] and activity[t, i, j] == 0:
                        activity[t, i, j] = 2
            load_step[j] += 1
            if load_step[j] == R:                     # every weight sits over its PE: latch them
                for i in range(R):
                    if tr_row[i, j] != i:
                        counters[6] = 3
                        counters[7] = t
                        return
                    if not w_sh_used[i, j]:
                        counters[6] = 5
                        counters[7] = t
                        return
                    w_sh[i, j] = tr_val[i, j]
                    w_sh_ok[i, j] = tr_ok[i, j]
                    w_sh_fold[i, j] = g
                    w_sh_used[i, j] = False
                    tr_pres[i, j] = False
                load_fold[j] = -1
        if finished_fold >= 0:
            folds_done += 1
            if folds_done == F:
                break
            if not overlapped:                        # serialized: next fold's weights load now
                for j in range(C):
                    load_fold[j] = finished_fold + 1
                    load_step[j] = 0
        # sequencer: the next stream starts once its weights are latched and the row is free
        if next_start < F and w_sh_fold[0, 0] == next_start and inj_row[0] == next_start:
            start[next_start] = t + 1
            next_start += 1
        t += 1
    _finish(counters, t + 1, x_reads, s_reads, exits, final_writes, macs, start)


_COMPILED: dict = {}


def _kernel(name: str, engine: str):
    global _stream_right, _finish, _tokens
    fn = {"os": _os_kernel, "stationary": _stationary_kernel}[name]
    if engine == "python":
        return fn
    if name not in _COMPILED:
        from numba import njit   # lazy: importing aisys.chip never loads numba
        if not hasattr(_stream_right, "py_func"):       # the kernels' helpers are compiled with them
            _stream_right, _finish, _tokens = (njit(cache=True)(f) for f in (_stream_right, _finish, _tokens))
        _COMPILED[name] = njit(cache=True)(fn)
    return _COMPILED[name]


# ---------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------

@dataclass
class SystolicRun:
    """The outcome of a cycle-level run: the product, the cycles, and (optionally) what every PE did.

    ``activity[t, i, j]`` is 0 idle, 1 MAC, 2 loading weights, 3 data passing through a padding PE;
    ``foldmap`` the fold id being processed (−1 none) and ``tag`` the step (k for OS, the streamed
    row for WS/IS), for drawing. ``fold_starts`` is the cycle each fold's stream began.
    """
    A: np.ndarray
    B: np.ndarray
    result: np.ndarray
    rows: int
    cols: int
    dataflow: str
    mode: str
    elapsed_cycles: int
    compute_cycles: int
    macs: int
    sram_reads: dict
    sram_writes: dict
    fold_starts: np.ndarray
    activity: np.ndarray | None
    foldmap: np.ndarray | None
    tag: np.ndarray | None
    wall_seconds: float
    report: MatrixReport = field(repr=False, default=None)
    _phases: list | None = field(default=None, repr=False, compare=False)

    @property
    def folds(self) -> int:
        return len(self.fold_starts)

    @property
    def pe_cycles(self) -> int:
        return self.elapsed_cycles * self.rows * self.cols

    @property
    def pe_cycles_per_second(self) -> float:
        return self.pe_cycles / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    def utilization_at(self, t: int) -> float:
        """Share of PEs doing a useful MAC on cycle ``t`` (needs ``record=True``)."""
        self._need_record("utilization_at")
        return float((self.activity[t] == MAC).mean())

    def pe_busy(self) -> np.ndarray:
        """MACs per PE over the whole run (rows x cols)."""
        self._need_record("pe_busy")
        return (self.activity == MAC).sum(axis=0)

    def phases(self) -> list[str]:
        """A label per cycle: 'loading weights', 'fill', 'steady', 'drain', 'fold boundary' or 'idle'.

        A cycle that holds data of two folds is a fold boundary; within one fold, the cycles before
        the wavefront first reaches its widest are the fill, those after it last is the drain.
        """
        self._need_record("phases")
        if self._phases is not None:
            return self._phases
        act = self.activity.reshape(self.elapsed_cycles, -1)
        folds = self.foldmap.reshape(self.elapsed_cycles, -1)
        busy = ((act == MAC) | (act == PASS)).sum(axis=1)
        labels = []
        first_peak, last_peak = {}, {}
        single = []
        for t in range(self.elapsed_cycles):
            present = np.unique(folds[t][folds[t] >= 0])
            single.append(int(present[0]) if len(present) == 1 else (-2 if len(present) > 1 else -1))
        for t, f in enumerate(single):
            if f >= 0:
                if f not in first_peak or busy[t] > busy[first_peak[f]]:
                    first_peak[f] = t
                if f not in last_peak or busy[t] >= busy[last_peak[f]]:
                    last_peak[f] = t
        for t, f in enumerate(single):
            if f == -2:
                labels.append("fold boundary")
            elif f == -1:
                labels.append("loading weights" if (act[t] == LOAD).any() else "idle")
            elif t < first_peak[f]:
                labels.append("fill")
            elif t > last_peak[f]:
                labels.append("drain")
            else:
                labels.append("steady")
        self._phases = labels
        return labels

    def phase(self, t: int) -> str:
        """The label of cycle ``t`` (see :meth:`phases`)."""
        if not 0 <= t < self.elapsed_cycles:
            raise ValueError(f"cycle {t} is outside this run (0..{self.elapsed_cycles - 1})")
        return self.phases()[t]

    @property
    def matches_numpy(self) -> bool:
        """Exactly equal to numpy's product for integers, within float64 rounding for floats."""
        expected = self.A @ self.B
        if self.result.dtype.kind in "iu":
            return bool(np.array_equal(self.result, expected))
        return bool(np.allclose(self.result, expected, rtol=1e-9, atol=1e-9))

    def _need_record(self, what: str) -> None:
        if self.activity is None:
            raise ValueError(f"SystolicRun.{what} needs the per-cycle activity: run with record=True")

    def summary(self) -> str:
        rep = self.report
        lines = [f"cycle-level {self.rows}x{self.cols} {DATAFLOW_NAMES[self.dataflow]} array, mode {self.mode!r}: "
                 f"A {self.A.shape[0]}x{self.A.shape[1]} @ B {self.B.shape[0]}x{self.B.shape[1]}",
                 f"  {self.folds} folds starting at cycles {_short_list(self.fold_starts)}",
                 f"  elapsed {self.elapsed_cycles} cycles (reported {self.compute_cycles}); analytic model "
                 f"{rep.compute_cycles} -> {'match' if rep.compute_cycles == self.compute_cycles else 'MISMATCH'}",
                 f"  {self.macs} useful MACs = M*N*K; result equals numpy: {'yes' if self.matches_numpy else 'NO'}",
                 f"  SRAM reads ifmap {self.sram_reads['ifmap']}, filter {self.sram_reads['filter']}; "
                 f"ofmap writes {self.sram_writes['ofmap']}"]
        return "\n".join(lines)


def _short_list(xs, n: int = 8) -> str:
    xs = [int(x) for x in xs]
    return ", ".join(map(str, xs[:n])) + (f", ... ({len(xs)} in all)" if len(xs) > n else "")


MAX_PE_CYCLES = 200_000_000     # a few seconds of the compiled array (bench_chip: ~1e8 PE-cycles/s)


def run_systolic(A, B, rows: int = 4, cols: int = 4, dataflow: str = "os", mode: str = "scalesim",
                 record: bool | None = None, engine: str = "numba", max_pe_cycles: int = MAX_PE_CYCLES) -> SystolicRun:
    """Multiply ``A @ B`` on a cycle-level ``rows x cols`` systolic array.

    Integers are multiplied exactly (int64 accumulators); floats in float64. ``record`` keeps the
    per-cycle PE activity for animation (default: when it stays under 4 M PE-cycles).
    ``engine="python"`` runs the kernels without compiling them. A problem over ``max_pe_cycles`` PE-cycles
    (seconds of work; 1/1000 of it with the python engine) is refused, pointing to the closed-form model.
    """
    A = np.asarray(A)
    B = np.asarray(B)
    where = f"run_systolic(A {A.shape}, B {B.shape}, rows={rows}, cols={cols}, dataflow={dataflow!r})"
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"{where}: A and B must be 2-D matrices")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"{where}: inner dimensions differ (A has {A.shape[1]} columns, B has {B.shape[0]} rows)")
    if 0 in A.shape or 0 in B.shape:
        raise ValueError(f"{where}: empty matrices have nothing to multiply")
    for name, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")
    if dataflow not in DATAFLOW_NAMES:
        raise ValueError(f"{where}: dataflow must be 'os', 'ws' or 'is', got {dataflow!r}")
    if mode not in MODES:
        raise ValueError(f"{where}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if engine not in ("numba", "python"):
        raise ValueError(f"{where}: engine must be 'numba' or 'python', got {engine!r}")
    for name, arr in (("A", A), ("B", B)):
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{where}: {name} must hold integers or floats, got dtype {arr.dtype}")
    is_int = A.dtype.kind in "biu" and B.dtype.kind in "biu"
    work = np.int64 if is_int else np.float64
    A_w = np.ascontiguousarray(A, dtype=work)
    B_w = np.ascontiguousarray(B, dtype=work)
    M, K = A.shape
    N = B.shape[1]
    R, C = int(rows), int(cols)
    overlapped = mode in ("overlapped", "tpu")
    report = systolic_gemm(M, N, K, R, C, dataflow, mode)
    Sr, Sc, T = fold_geometry(M, N, K, dataflow)
    F = report.folds
    # a bound only for memory and runaway loops: serialized folds are the slowest schedule
    per_fold = T + R + C - 2 if dataflow == "os" else 2 * R + C + T - 2
    max_cycles = F * per_fold + 2
    if record is None:
        record = max_cycles * R * C <= _MAX_RECORD
    if record and max_cycles * R * C > _MAX_RECORD:
        raise ValueError(f"{where}: recording {max_cycles} cycles x {R * C} PEs would keep "
                         f"{max_cycles * R * C:,} entries (limit {_MAX_RECORD:,}); pass record=False or use a "
                         f"smaller problem")
    budget = max_pe_cycles if engine == "numba" else max_pe_cycles // 1000
    if report.elapsed_cycles * R * C > budget:
        raise ValueError(f"{where}: about {report.elapsed_cycles * R * C:,} PE-cycles to simulate, over the limit "
                         f"of {budget:,} (seconds of work); the closed form gives the same cycle count at once: "
                         f"aisys.chip.systolic_gemm({M}, {N}, {K}, {R}, {C}, {dataflow!r}, {mode!r}) = "
                         f"{report.elapsed_cycles:,} cycles. Pass max_pe_cycles=... to simulate anyway")
    shape = (max_cycles, R, C) if record else (1, 1, 1)
    activity = np.zeros(shape, np.int8)
    foldmap = np.full(shape, -1, np.int32)
    tag = np.full(shape, -1, np.int32)
    counters = np.zeros(8 + F, np.int64)
    if dataflow == "os":
        out = np.zeros((M, N), work)
        args = (A_w, B_w, R, C, overlapped, record, out, activity, foldmap, tag, counters, max_cycles)
        kernel = _kernel("os", engine)
    else:
        if dataflow == "ws":     # weights stationary, rows of A stream: Y = A @ B
            S, X = B_w, A_w
        else:                    # inputs stationary (A^T), columns of B stream: Y = B^T @ A^T = C^T
            S, X = np.ascontiguousarray(A_w.T), np.ascontiguousarray(B_w.T)
        out = np.zeros((T, Sc), work)
        args = (S, X, R, C, overlapped, record, out, activity, foldmap, tag, counters, max_cycles)
        kernel = _kernel("stationary", engine)
    t0 = time.perf_counter()
    kernel(*args)
    wall = time.perf_counter() - t0
    if counters[6]:
        raise RuntimeError(f"{where}, mode {mode!r}: the cycle-level array stopped at cycle {counters[7]}: "
                           f"{_ERRORS[int(counters[6])]}")
    result = out if dataflow != "is" else np.ascontiguousarray(out.T)
    elapsed = int(counters[0])
    if dataflow == "os":
        reads = {"ifmap": int(counters[1]), "filter": int(counters[2]), "ofmap": 0}
    elif dataflow == "ws":
        reads = {"ifmap": int(counters[1]), "filter": int(counters[2]), "ofmap": 0}
    else:
        reads = {"ifmap": int(counters[2]), "filter": int(counters[1]), "ofmap": 0}
    accumulate = mode in ("accumulate", "tpu")
    writes = {"ofmap": int(counters[4] if accumulate else counters[3])}
    if is_int:
        result = result.astype(np.result_type(A.dtype, B.dtype, np.int64))
    return SystolicRun(
        A=A, B=B, result=result, rows=R, cols=C, dataflow=dataflow, mode=mode,
        elapsed_cycles=elapsed, compute_cycles=elapsed - 1 if mode == "scalesim" else elapsed,
        macs=int(counters[5]), sram_reads=reads, sram_writes=writes,
        fold_starts=counters[8:8 + F].copy(),
        activity=activity[:elapsed] if record else None,
        foldmap=foldmap[:elapsed] if record else None,
        tag=tag[:elapsed] if record else None,
        wall_seconds=wall, report=report)
