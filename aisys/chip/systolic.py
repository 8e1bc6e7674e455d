"""Analytic model of a systolic array (脉动阵列): folds, cycles, utilization and traffic in closed form.

A GEMM ``C[M,N] = A[M,K] @ B[K,N]`` (a convolution after im2col) is mapped onto ``R x C`` MAC PEs.
The *dataflow* decides which operand stays in the PEs and which two dimensions are laid out in
space (Sr on the array rows, Sc on the columns) while the third streams through in time (T)
(SCALE-Sim's table, CHIP_NOTES §1.5, ``systolic_compute_{os,ws,is}.py``):

    dataflow             stays in PEs   Sr   Sc   T
    os output-stationary  outputs        M    N    K
    ws weight-stationary  weights        K    N    M
    is input-stationary   inputs         K    M    N

A problem larger than the array is cut into ``F = ceil(Sr/R) * ceil(Sc/C)`` folds. What a fold
costs, and whether folds overlap, is the *mode*:

    scalesim    folds run one after another (serialized), partial sums of WS/IS K-folds are
                written back once per fold — SCALE-Sim v2/v3 exactly, including that it reports
                the index of the last cycle:  OS  F·(T+R+C−2) − 1,  WS/IS  F·(2R+C+T−2) − 1
    accumulate  serialized folds, but partial sums of all K-folds add up in accumulators at the
                array's edge (TPU v1's accumulators) instead of going back to SRAM each fold
    overlapped  the next fold's stationary operand loads while the current fold streams (double-
                buffered weights, TPU-style), so a fold costs max(T, R) in steady state and the
                fill/drain is paid once:  OS  (F−1)·max(T,R) + T+R+C−2,
                                          WS/IS  (F−1)·max(T,R) + 2R+C+T−2
    tpu         overlapped + accumulate (TPU v1)

``elapsed_cycles`` is always the number of cycles from the first to the last busy cycle;
``compute_cycles`` is what the mode reports (``elapsed_cycles − 1`` in scalesim mode, as SCALE-Sim
counts, otherwise equal). The cycle-level array in ``aisys.chip.functional`` reproduces every
formula here by moving operands PE to PE.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
import numpy as np

from ..framework.shapes import conv_output_size  # noqa: F401  (one formula for every layer; re-exported)

MODES = {
    "scalesim": "serialized folds, partial sums written back per K-fold (SCALE-Sim v2/v3, reports last cycle index)",
    "accumulate": "serialized folds, partial sums of all K-folds accumulate at the array edge",
    "overlapped": "double-buffered stationary operand: next fold loads while this one streams",
    "tpu": "overlapped folds + accumulation across K-folds (TPU v1)",
}
DATAFLOW_NAMES = {"os": "output-stationary", "ws": "weight-stationary", "is": "input-stationary"}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_dims(where: str, **dims) -> None:
    for name, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")


def _check_dataflow_mode(where: str, dataflow: str, mode: str) -> None:
    if dataflow not in DATAFLOW_NAMES:
        raise ValueError(f"{where}: dataflow {dataflow!r} is not known; use 'os' (output-stationary), "
                         f"'ws' (weight-stationary) or 'is' (input-stationary)")
    if mode not in MODES:
        raise ValueError(f"{where}: mode {mode!r} is not known; use one of {', '.join(MODES)}")


def fold_geometry(M: int, N: int, K: int, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T): the GEMM dims laid on array rows, on columns, and streamed in time."""
    if dataflow == "os":
        return M, N, K
    if dataflow == "ws":
        return K, N, M
    if dataflow == "is":
        return K, M, N
    raise ValueError(f"fold_geometry: dataflow {dataflow!r} is not one of 'os', 'ws', 'is'")


def serialized_fold_cycles(T: int, rows: int, cols: int, dataflow: str) -> int:
    """Cycles of one fold when folds do not overlap: OS T+R+C−2 (inputs and weights stream in from
    two edges, outputs drain on the diagonal); WS/IS 2R+C+T−2 (R more to shift the stationary tile in)."""
    if dataflow == "os":
        return T + rows + cols - 2
    return 2 * rows + cols + T - 2


def os_compute_cycles(M: int, N: int, K: int, rows: int, cols: int) -> int:
    """Output-stationary compute cycles exactly as SCALE-Sim v2/v3 reports them: F·(T+R+C−2) − 1.

    F = ceil(M/R)·ceil(N/C) folds, T = K. The −1: SCALE-Sim reports the index of the last cycle
    (``double_buffered_scratchpad_mem.py:307``), CHIP_NOTES §1.5.
    """
    _check_dims("os_compute_cycles", M=M, N=N, K=K, rows=rows, cols=cols)
    folds = _ceil_div(M, rows) * _ceil_div(N, cols)
    return folds * (K + rows + cols - 2) - 1


def elapsed_cycles(M: int, N: int, K: int, rows: int, cols: int, dataflow: str, mode: str) -> int:
    """Cycles from the first to the last busy cycle of the array (see the module table)."""
    Sr, Sc, T = fold_geometry(M, N, K, dataflow)
    F = _ceil_div(Sr, rows) * _ceil_div(Sc, cols)
    if mode in ("scalesim", "accumulate"):
        return F * serialized_fold_cycles(T, rows, cols, dataflow)
    return (F - 1) * max(T, rows) + serialized_fold_cycles(T, rows, cols, dataflow)


@dataclass(frozen=True)
class MatrixReport:
    """What one GEMM costs on the matrix unit. Counts are in words (elements), cycles in cycles.

    ``sram_reads``/``sram_writes``/``dram_reads``/``dram_writes`` map operand -> words:
    ifmap (the left matrix A / input activations), filter (B / weights), ofmap (C / outputs,
    including partial sums that leave the array before they are final).
    """
    M: int
    N: int
    K: int
    rows: int
    cols: int
    dataflow: str
    mode: str
    spatial_rows: int
    spatial_cols: int
    temporal: int
    row_folds: int
    col_folds: int
    elapsed_cycles: int
    compute_cycles: int
    mapping_efficiency: float
    compute_utilization: float
    sram_reads: dict
    sram_writes: dict
    dram_reads: dict
    dram_writes: dict
    depth: int = 1
    layer: dict = field(default_factory=dict)   # e.g. the conv geometry this GEMM came from

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def macs(self) -> int:
        return self.M * self.N * self.K

    @property
    def k_folds(self) -> int:
        """How many times each output is produced in parts (K split across folds): WS/IS only."""
        return self.row_folds if self.dataflow in ("ws", "is") else 1

    @property
    def overall_utilization(self) -> float:
        """MACs / (PEs x reported cycles): SCALE-Sim's "Overall Util" (single_layer_sim.py:337).
        (A one-cycle job reports 0 cycles in scalesim mode; the elapsed count is used then.)"""
        cycles = self.compute_cycles or self.elapsed_cycles
        return self.macs / (self.rows * self.cols * self.depth * cycles)

    @property
    def pipeline_efficiency(self) -> float:
        """Share of the elapsed cycles that a fully mapped array would spend multiplying."""
        return self.macs / (self.mapping_efficiency * self.rows * self.cols * self.depth * self.elapsed_cycles)

    @property
    def ideal_cycles(self) -> int:
        """Cycles if every PE did a useful MAC every cycle: ceil(MACs / PEs)."""
        return _ceil_div(self.macs, self.rows * self.cols * self.depth)

    def pe_macs(self) -> np.ndarray:
        """MACs done by each PE (rows x cols): the heatmap of where the work lands.

        Array row i is used by every row-fold that reaches it: ceil((Sr − i)/R) folds; same for
        columns; each use does T MACs. (Cube: the m0 x n0 output positions, each doing K MACs.)
        """
        R, C = self.rows, self.cols
        i = np.arange(R)
        j = np.arange(C)
        used_r = np.where(i < self.spatial_rows, -(-(self.spatial_rows - i) // R), 0)
        used_c = np.where(j < self.spatial_cols, -(-(self.spatial_cols - j) // C), 0)
        return self.temporal * np.outer(used_r, used_c).astype(np.int64)

    def sram_bytes(self, input_bytes: int = 1, acc_bytes: int = 4) -> int:
        r, w = self.sram_reads, self.sram_writes
        return ((r["ifmap"] + r["filter"] + w["ifmap"] + w["filter"]) * input_bytes
                + (r["ofmap"] + w["ofmap"]) * acc_bytes)

    def dram_bytes(self, input_bytes: int = 1, out_bytes: int = 1) -> int:
        return ((self.dram_reads["ifmap"] + self.dram_reads["filter"]) * input_bytes
                + (self.dram_reads["ofmap"] + self.dram_writes["ofmap"]) * out_bytes)

    def summary(self) -> str:
        if self.dataflow == "cube":
            unit = f"{self.rows}x{self.cols}x{self.depth} cube"
            fold_text = f"{self.folds} cube instructions"
        else:
            unit = f"{self.rows}x{self.cols} {DATAFLOW_NAMES[self.dataflow]} array, mode {self.mode!r}"
            fold_text = (f"Sr={self.spatial_rows} Sc={self.spatial_cols} T={self.temporal}: "
                         f"{self.row_folds} x {self.col_folds} = {self.folds} folds")
        r, w = self.sram_reads, self.sram_writes
        lines = [
            f"GEMM M={self.M} N={self.N} K={self.K} ({self.macs:,} MACs) on a {unit}",
            f"  {fold_text}",
            f"  compute cycles {self.compute_cycles:,} (elapsed {self.elapsed_cycles:,}, ideal {self.ideal_cycles:,})",
            f"  mapping efficiency {100 * self.mapping_efficiency:.2f}%, compute utilization "
            f"{100 * self.compute_utilization:.2f}%",
            f"  SRAM reads  ifmap {r['ifmap']:,}  filter {r['filter']:,}  ofmap {r['ofmap']:,}",
            f"  SRAM writes ifmap {w['ifmap']:,}  filter {w['filter']:,}  ofmap {w['ofmap']:,}",
            f"  DRAM reads  ifmap {self.dram_reads['ifmap']:,}  filter {self.dram_reads['filter']:,}  "
            f"ofmap {self.dram_reads['ofmap']:,};  DRAM writes ofmap {self.dram_writes['ofmap']:,}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<MatrixReport {self.M}x{self.N}x{self.K} {self.dataflow}/{self.mode} on {self.rows}x{self.cols}: "
                f"{self.compute_cycles} cycles, {self.folds} folds>")


SystolicReport = MatrixReport   # the name the systolic functions are documented with


def _systolic_gemm_model(M, N, K, rows, cols, dataflow, mode, ifmap_dram_words):
    Sr, Sc, T = fold_geometry(M, N, K, dataflow)
    row_folds, col_folds = _ceil_div(Sr, rows), _ceil_div(Sc, cols)
    F = row_folds * col_folds
    elapsed = elapsed_cycles(M, N, K, rows, cols, dataflow, mode)
    compute = elapsed - 1 if mode == "scalesim" else elapsed
    mapping = Sr * Sc / (F * rows * cols)
    if mode == "scalesim":
        # SCALE-Sim's per-fold average: used PEs x T / (R x C x cycles per fold), with its own fold
        # length for WS/IS (2R + 2C + T − 3, one skew more than the fold takes; CHIP_NOTES §1.5).
        cyc_fold = T + rows + cols - 2 if dataflow == "os" else 2 * rows + 2 * cols + T - 3
        utilization = mapping * T / cyc_fold
    else:
        utilization = M * N * K / (rows * cols * elapsed)

    accumulate = mode in ("accumulate", "tpu")
    k_folds = row_folds if dataflow in ("ws", "is") else 1
    # Operands re-read once per fold along the other spatial dimension (CHIP_NOTES §1.5 table).
    if dataflow == "os":
        ifmap_reads, filter_reads = M * K * _ceil_div(N, cols), K * N * _ceil_div(M, rows)
        ofmap_writes = M * N + (F * (rows + cols) if mode == "scalesim" else 0)  # SCALE-Sim's extra term
    elif dataflow == "ws":
        ifmap_reads, filter_reads = M * K * _ceil_div(N, cols), K * N
        ofmap_writes = M * N * (1 if accumulate else k_folds)
    else:
        ifmap_reads, filter_reads = K * M, K * N * _ceil_div(M, cols)
        ofmap_writes = M * N * (1 if accumulate else k_folds)
    # Partial sums written before they are final must be read back to be added to (SCALE-Sim does
    # not count this read); the finished outputs are read once more to drain them to DRAM.
    psum_reads = 0 if (mode == "scalesim" or accumulate) else M * N * (k_folds - 1)
    spilled = M * N * (1 if accumulate else k_folds)
    ifmap_dram = M * K if ifmap_dram_words is None else ifmap_dram_words
    return MatrixReport(
        M=M, N=N, K=K, rows=rows, cols=cols, dataflow=dataflow, mode=mode,
        spatial_rows=Sr, spatial_cols=Sc, temporal=T, row_folds=row_folds, col_folds=col_folds,
        elapsed_cycles=elapsed, compute_cycles=compute, mapping_efficiency=mapping,
        compute_utilization=utilization,
        sram_reads={"ifmap": ifmap_reads, "filter": filter_reads, "ofmap": psum_reads + spilled},
        sram_writes={"ifmap": ifmap_dram, "filter": K * N, "ofmap": ofmap_writes},
        dram_reads={"ifmap": ifmap_dram, "filter": K * N, "ofmap": psum_reads},
        dram_writes={"ofmap": spilled},
    )


def systolic_gemm(M: int, N: int, K: int, rows: int = 32, cols: int = 32, dataflow: str = "os",
                  mode: str = "scalesim") -> MatrixReport:
    """Cost of ``C[M,N] = A[M,K] @ B[K,N]`` on an ``rows x cols`` systolic array (closed form).

    DRAM counts assume buffers big enough for each operand (compulsory traffic, plus the partial
    sums of WS/IS K-folds that leave the array when the mode does not accumulate them, as SCALE-Sim's
    USER mode writes them out); ``aisys.chip.simulate_layer`` adds capacity and bandwidth.
    """
    where = f"systolic_gemm(M={M}, N={N}, K={K}, rows={rows}, cols={cols})"
    _check_dims(where, M=M, N=N, K=K, rows=rows, cols=cols)
    _check_dataflow_mode(where, dataflow, mode)
    return _systolic_gemm_model(int(M), int(N), int(K), int(rows), int(cols), dataflow, mode, None)


# ---------------------------------------------------------------------------------------------------
# Convolutions through im2col
# ---------------------------------------------------------------------------------------------------

def conv_gemm_dims(H: int, W: int, C: int, F: int, kh: int, kw: int | None = None, stride: int = 1,
                   padding: int = 0, batch: int = 1) -> dict:
    """im2col lowering (NCHW input, F filters of C x kh x kw): the GEMM it becomes.

    M = batch·OH·OW output pixels, N = F filters, K = C·kh·kw window; the im2col matrix is M x K
    (not (OH·OW) x (N·kh·kw·C), the course's im2col erratum).
    """
    kw = kh if kw is None else kw
    _check_dims(f"conv(H={H}, W={W}, C={C}, F={F}, kh={kh}, kw={kw}, stride={stride}, batch={batch})",
                H=H, W=W, C=C, F=F, kh=kh, kw=kw, stride=stride, batch=batch)
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"conv: padding must be an integer >= 0, got {padding!r}")
    OH, OW = conv_output_size(H, kh, stride, padding), conv_output_size(W, kw, stride, padding)
    return {"M": batch * OH * OW, "N": F, "K": C * kh * kw, "OH": OH, "OW": OW, "H": H, "W": W, "C": C,
            "F": F, "kh": kh, "kw": kw, "stride": stride, "padding": padding, "batch": batch,
            "ifmap_words": batch * C * H * W}


def scalesim_conv_gemm_dims(H: int, W: int, Fh: int, Fw: int, C: int, filters: int, stride: int) -> tuple:
    """(M, N, K) as SCALE-Sim lowers a conv row: no padding, no batch, and ofmap height
    ceil((H − Fh + S)/S) (``topology_utils.py:285``), one more than PyTorch's when (H − Fh) % S != 0."""
    Eh = _ceil_div(H - Fh + stride, stride)
    Ew = _ceil_div(W - Fw + stride, stride)
    return Eh * Ew, filters, Fh * Fw * C


def systolic_conv(H: int, W: int, C: int, F: int, kh: int, kw: int | None = None, stride: int = 1,
                  padding: int = 0, batch: int = 1, *, rows: int = 32, cols: int = 32, dataflow: str = "os",
                  mode: str = "scalesim") -> MatrixReport:
    """A convolution layer on the systolic array, lowered by im2col to a GEMM (see ``conv_gemm_dims``).

    SRAM counts are those of the im2col matrix (the array reads it row by row); DRAM reads of the
    input are the raw tensor, read once — the expansion happens on chip.
    """
    g = conv_gemm_dims(H, W, C, F, kh, kw, stride, padding, batch)
    where = f"systolic_conv(H={H}, W={W}, C={C}, F={F}, k={kh})"
    _check_dims(where, rows=rows, cols=cols)
    _check_dataflow_mode(where, dataflow, mode)
    rep = _systolic_gemm_model(g["M"], g["N"], g["K"], int(rows), int(cols), dataflow, mode, g["ifmap_words"])
    return replace(rep, layer={"kind": "conv", **{k: v for k, v in g.items() if k not in ("M", "N", "K")}})


def compare_modes(M: int, N: int, K: int, rows: int, cols: int, dataflow: str = "ws") -> dict:
    """Elapsed cycles of every mode for one GEMM, and the saving against SCALE-Sim's serialized folds."""
    base = systolic_gemm(M, N, K, rows, cols, dataflow, "scalesim").elapsed_cycles
    out = {}
    for mode in MODES:
        cyc = systolic_gemm(M, N, K, rows, cols, dataflow, mode).elapsed_cycles
        out[mode] = {"elapsed_cycles": cyc, "delta_vs_scalesim": cyc - base, "speedup": base / cyc}
    return out
