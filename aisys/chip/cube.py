"""Block-MAC ("cube", 矩阵计算单元) model: a matrix unit that multiplies fixed-size tiles in one step.

Ascend's Da Vinci cube does a 16x16 · 16x16 fp16 product per instruction (A from L0A, B from L0B,
accumulating into L0C); NVIDIA's WMMA API exposes 16x16x16 fragments. There is no exposed skew: a
GEMM costs one instruction per (m0, n0, k0) tile of the padded problem,

    instructions = ceil(M/m0) · ceil(N/n0) · ceil(K/k0)

and everything outside the real M x N x K is padding the unit multiplies anyway (CHIP_NOTES §5).
"""
from __future__ import annotations

from .systolic import MatrixReport, _ceil_div, _check_dims


def mma_count(M: int, N: int, K: int, tile: tuple = (16, 16, 16)) -> tuple[int, float]:
    """(instructions, padding waste) for tiling a GEMM into ``m0 x n0 x k0`` MMA instructions.

    Padding waste is the share of the multiplied MACs that fall outside the real problem:
    1 − M·N·K / (instructions · m0·n0·k0). Aligned shapes waste nothing.
    """
    if not (isinstance(tile, tuple) and len(tile) == 3):
        raise ValueError(f"mma_count: tile must be a tuple (m0, n0, k0), got {tile!r}")
    m0, n0, k0 = tile
    _check_dims(f"mma_count(M={M}, N={N}, K={K}, tile={tile})", M=M, N=N, K=K, m0=m0, n0=n0, k0=k0)
    instructions = _ceil_div(M, m0) * _ceil_div(N, n0) * _ceil_div(K, k0)
    waste = 1.0 - (M * N * K) / (instructions * m0 * n0 * k0)
    return instructions, waste


def cube_gemm(M: int, N: int, K: int, m0: int = 16, n0: int = 16, k0: int = 16) -> MatrixReport:
    """Cost of a GEMM on an ``m0 x n0 x k0`` cube issuing one instruction per cycle.

    Loop order: for each output tile (m, n), run the k0-deep steps back to back so the partial sums
    stay in L0C (read-modify-write there). A tile of A is read once per n-tile, B once per m-tile.
    """
    _check_dims(f"cube_gemm(M={M}, N={N}, K={K})", M=M, N=N, K=K, m0=m0, n0=n0, k0=k0)
    mt, nt, kt = _ceil_div(M, m0), _ceil_div(N, n0), _ceil_div(K, k0)
    n_mma = mt * nt * kt
    mapping = M * N * K / (n_mma * m0 * n0 * k0)
    return MatrixReport(
        M=M, N=N, K=K, rows=m0, cols=n0, depth=k0, dataflow="cube", mode="block",
        spatial_rows=M, spatial_cols=N, temporal=K,
        row_folds=mt * kt, col_folds=nt,
        elapsed_cycles=n_mma, compute_cycles=n_mma, mapping_efficiency=mapping, compute_utilization=mapping,
        sram_reads={"ifmap": M * K * nt, "filter": K * N * mt, "ofmap": M * N * (kt - 1) + M * N},
        sram_writes={"ifmap": M * K, "filter": K * N, "ofmap": M * N * kt},
        dram_reads={"ifmap": M * K, "filter": K * N, "ofmap": 0},
        dram_writes={"ofmap": M * N},
    )


def matrix_gemm(M: int, N: int, K: int, chip, dataflow: str | None = None, mode: str | None = None) -> MatrixReport:
    """One GEMM on ``chip``'s matrix unit, whichever kind it is (systolic array or cube)."""
    from .config import preset
    from .systolic import systolic_gemm
    chip = preset(chip)
    m = chip.matrix
    if m.kind == "cube":
        return cube_gemm(M, N, K, m.rows, m.cols, m.depth)
    return systolic_gemm(M, N, K, m.rows, m.cols, dataflow or m.dataflow, mode or m.mode)
