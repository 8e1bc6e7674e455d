"""Vector unit (向量计算单元) and scalar/control costs: everything that is not a matrix product.

A vector instruction streams its operands through ``lanes`` ALUs: one *pass* over n elements
takes ceil(n / lanes) cycles for a simple op (add, max, relu), more for ops built from several
steps (exp, reciprocal: a few cycles per vector). Reductions first combine ``lanes``-wide partial
results, then fold the last vector in a log2(lanes) tree. Composite ops are counted as the passes
they need — softmax: max, subtract+exp, sum, scale; layernorm: mean, centre, square+mean, scale —
one row at a time, so rows shorter than the vector width waste lanes (a real effect of wide SIMD).
Every instruction also pays the pipeline's ``startup_cycles``.

The per-op cycle figures are illustrative teaching values (not measured on any chip); a preset may
override them through ``VectorUnit.op_cycles``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# cycles per vector of `lanes` elements for one pass of each primitive
DEFAULT_OP_CYCLES = {
    "copy": 1, "cast": 1, "fma": 1, "add": 1, "sub": 1, "mul": 1, "max": 1, "min": 1, "relu": 1, "neg": 1, "abs": 1,
    "div": 4, "reciprocal": 4, "sqrt": 4, "rsqrt": 4, "exp": 4, "log": 4, "sigmoid": 5, "tanh": 5, "erf": 6,
    "gelu": 8,          # exact GELU, x·Φ(x): an erf polynomial plus a multiply-add
    "gelu_tanh": 6,     # GELU's tanh approximation: a tanh plus a multiply-add
    "quantize": 2, "dequantize": 1, "requantize": 2,      # scale+round+clamp; subtract+scale; mul-high+shift
}
BINARY_OPS = {"add", "sub", "mul", "div", "max", "min"}


@dataclass(frozen=True)
class VectorCost:
    """Cycles of one vector instruction and how they add up (``passes``: name -> cycles)."""
    op: str
    elements: int
    cycles: int
    passes: tuple

    def summary(self) -> str:
        parts = ", ".join(f"{name} {c}" for name, c in self.passes)
        return f"vector {self.op} over {self.elements:,} elements: {self.cycles:,} cycles ({parts})"


def _op_cycles(vector, op: str) -> float:
    table = dict(DEFAULT_OP_CYCLES)
    table.update(dict(vector.op_cycles))
    if op not in table:
        raise ValueError(f"vector unit: no cost for op {op!r}; known ops: {', '.join(sorted(table))} "
                         f"(add one with VectorUnit(op_cycles=(({op!r}, cycles),)))")
    return table[op]


def _vectors(n: int, lanes: int) -> int:
    return -(-n // lanes)


def _tree(lanes: int) -> int:
    return math.ceil(math.log2(lanes)) if lanes > 1 else 0


def _check_count(where: str, **vals) -> None:
    for name, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")


def _unit(chip_or_vector):
    from .config import VectorUnit, preset
    if isinstance(chip_or_vector, VectorUnit):
        return chip_or_vector
    return preset(chip_or_vector).vector


def elementwise_cost(op: str, elements: int, chip_or_vector) -> VectorCost:
    """One elementwise op (``relu``, ``add``, ``sigmoid``, ...) over ``elements`` values."""
    v = _unit(chip_or_vector)
    _check_count(f"vector {op}", elements=elements)
    per = _op_cycles(v, op)
    work = math.ceil(_vectors(elements, v.lanes) * per)
    return VectorCost(op, elements, v.startup_cycles + work, (("startup", v.startup_cycles), (op, work)))


def pool_cost(kind: str, out_elements: int, window: int, chip_or_vector) -> VectorCost:
    """Max or average pooling: each output combines ``window`` inputs (one max/add pass per tap),
    average pooling adds one scaling pass."""
    if kind not in ("max", "avg"):
        raise ValueError(f"pool: kind must be 'max' or 'avg', got {kind!r}")
    v = _unit(chip_or_vector)
    _check_count(f"{kind} pool", out_elements=out_elements, window=window)
    vecs = _vectors(out_elements, v.lanes)
    combine = math.ceil(vecs * (window - 1) * _op_cycles(v, "max" if kind == "max" else "add"))
    load = vecs  # first tap initialises the accumulator
    passes = [("startup", v.startup_cycles), ("first tap", load), (f"{window - 1} taps", combine)]
    if kind == "avg":
        passes.append(("scale", math.ceil(vecs * _op_cycles(v, "mul"))))
    return VectorCost(f"{kind}pool", out_elements, sum(c for _, c in passes), tuple(passes))


def _row_reduce(v, cols: int, op: str) -> int:
    return math.ceil(_vectors(cols, v.lanes) * _op_cycles(v, op)) + _tree(v.lanes)


def softmax_cost(rows: int, cols: int, chip_or_vector) -> VectorCost:
    """Softmax over the last axis, row by row: max-reduce, subtract+exp, sum-reduce, reciprocal, scale."""
    v = _unit(chip_or_vector)
    _check_count("softmax", rows=rows, cols=cols)
    vecs = _vectors(cols, v.lanes)
    passes = (("startup", v.startup_cycles),
              ("max", rows * _row_reduce(v, cols, "max")),
              ("sub+exp", rows * math.ceil(vecs * (_op_cycles(v, "sub") + _op_cycles(v, "exp")))),
              ("sum", rows * _row_reduce(v, cols, "add")),
              ("reciprocal", rows * math.ceil(_op_cycles(v, "reciprocal"))),
              ("scale", rows * math.ceil(vecs * _op_cycles(v, "mul"))))
    return VectorCost("softmax", rows * cols, sum(c for _, c in passes), passes)


def layernorm_cost(rows: int, cols: int, chip_or_vector) -> VectorCost:
    """LayerNorm over the last axis: mean, centre, variance (square + mean), rsqrt, scale, affine."""
    v = _unit(chip_or_vector)
    _check_count("layernorm", rows=rows, cols=cols)
    vecs = _vectors(cols, v.lanes)
    passes = (("startup", v.startup_cycles),
              ("mean", rows * _row_reduce(v, cols, "add")),
              ("centre", rows * math.ceil(vecs * _op_cycles(v, "sub"))),
              ("variance", rows * (math.ceil(vecs * _op_cycles(v, "mul")) + _row_reduce(v, cols, "add"))),
              ("rsqrt", rows * math.ceil(_op_cycles(v, "rsqrt"))),
              ("scale+affine", rows * math.ceil(vecs * (_op_cycles(v, "mul") * 2 + _op_cycles(v, "add")))))
    return VectorCost("layernorm", rows * cols, sum(c for _, c in passes), passes)


def scalar_cycles(instructions: int, chip) -> int:
    """Cycles the scalar/control unit spends issuing ``instructions`` instructions."""
    from .config import preset
    if isinstance(instructions, bool) or not isinstance(instructions, int) or instructions < 0:
        raise ValueError(f"scalar_cycles: instructions must be an integer >= 0, got {instructions!r}")
    return instructions * preset(chip).scalar_issue_cycles
