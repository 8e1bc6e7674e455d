"""The op registry: the one contract every layer reads (DESIGN.md, "The spine: one op contract").

Each op is defined once with
  infer(*specs, **attrs) -> Spec       shape/dtype inference (raises ShapeError that teaches)
  ref(*arrays, **attrs) -> ndarray     the numpy reference: eager execution, constant folding, tests
  vjp(g, out, *inputs, **attrs)        reverse mode, written with Tensor ops so it is differentiable
                                       -> one gradient (or None) per input
  jvp(tangents, out, *inputs, **attrs) forward mode, also with ops; tangents[i] is None for zero
  fusion                               a FusionKind, read by the fusion pass
  cost(in_specs, out_spec, **attrs)    FLOPs and bytes moved, read by passes, the roofline and the chip
  quantized                            how the op runs on quantized integer tensors (a QuantizedForm), read by
                                       post-training quantization and the integer-folding pass; None: it has none

Optional, for in-place safety: ``saved``, which values the VJP reads (input indices and/or "out"; an entry
``(v, j, ...)`` means v is read only for the gradient of inputs j, ...; None, the default, means all of them).
``backward()`` refuses to run a VJP whose saved values were overwritten in place after the op ran (see
``inplace``), as PyTorch does; ops that only need shapes declare ``saved=()``.

Optional, for speed only: ``vjp_np(g, out, *inputs, **attrs)``, the same VJP on numpy arrays, which a plain
first-order ``backward()`` uses instead of building backward ops (see ``fast_vjp``; a test holds every one
equal to ``vjp``, which stays the definition).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, NamedTuple

from .dtypes import DType


class FusionKind(str, Enum):
    """TVM's operator classes (as taught in ZOMI's 03Frontend/03OPFusion lecture)."""
    ELEMENTWISE = "elementwise"        # out[i] = f(in[i]) on same-shape operands
    BROADCAST = "broadcast"            # elementwise with broadcasting
    INJECTIVE = "injective"            # each output element reads one input element (reshape, permute, slice)
    REDUCE = "reduce"                  # sum, max, mean over axes
    COMPLEX_OUT_FUSABLE = "complex-out-fusable"   # matmul, conv: an elementwise epilogue can fuse
    OPAQUE = "opaque"                  # cannot fuse (sort, data-dependent, impure)


class Spec(NamedTuple):
    """What shape inference knows about a value: its shape and dtype. (A NamedTuple: it is built once per
    op call on the eager hot path, and a tuple is several times cheaper to create than a frozen dataclass.)"""
    shape: tuple
    dtype: DType

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class Cost:
    flops: int
    bytes: int


@dataclass(frozen=True)
class QuantizedForm:
    """How an op runs on quantized tensors (aisys.framework.compress), for int8 inference without floats.

    kind "same":    applied to the integer codes it gives the codes of its real result, with the input's scale
                    and zero point (reshape, permute, slicing, max pooling: they only move or select values)
    kind "clamp":   relu: max(q, z) on the codes (real 0 is the zero point z)
    kind "integer": a matrix op that becomes ``integer_op`` on int8 codes, accumulating in int32 at scale
                    s_x·s_w, followed by requantization to the output's scale (Jacob et al., CVPR 2018)
    """
    kind: str
    integer_op: str = ""

    def __post_init__(self):
        if self.kind not in ("same", "clamp", "integer") or (self.kind == "integer") != bool(self.integer_op):
            raise ValueError(f"QuantizedForm: kind must be 'same', 'clamp' or 'integer' (with integer_op), got "
                             f"{self.kind!r}, integer_op={self.integer_op!r}")


@dataclass
class OpDef:
    name: str
    infer: Callable
    ref: Callable
    vjp: Callable | None
    jvp: Callable | None
    fusion: FusionKind
    cost: Callable
    pure: bool = True               # False: CSE and constant folding must not merge/evaluate it
    doc: str = ""
    source: str = ""                # file:line of the definition, shown by pass logs and docs
    torch_name: str | None = None   # the PyTorch function this mirrors, for docs
    vjp_np: Callable | None = None  # numpy twin of vjp for the eager fast path (fast_vjp.py); optional
    saved: tuple | None = None      # values the VJP reads: input indices and/or "out"; None: all of them
    quantized: QuantizedForm | None = None   # how it runs on integer codes (compress); None: no quantized form

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def __repr__(self) -> str:
        return f"<op {self.name} ({self.fusion.value}) defined at {self.source}>"


OPS: dict[str, OpDef] = {}


def defop(name: str, *, infer, ref, vjp=None, jvp=None, fusion=FusionKind.OPAQUE, cost=None,
          pure: bool = True, doc: str = "", torch_name: str | None = None, saved: tuple | None = None,
          quantized: QuantizedForm | None = None) -> OpDef:
    """Register an op. Called once per op at import of aisys.framework.ops."""
    if name in OPS:
        raise ValueError(f"op {name!r} is already registered at {OPS[name].source}")
    frame = sys._getframe(1)         # where the op is defined (cheap: no source lines are read)
    op = OpDef(name=name, infer=infer, ref=ref, vjp=vjp, jvp=jvp, fusion=FusionKind(fusion),
               cost=cost or default_cost, pure=pure, doc=doc,
               source=f"{frame.f_code.co_filename.split('aisys/')[-1]}:{frame.f_lineno}", torch_name=torch_name,
               saved=None if saved is None else tuple(saved), quantized=quantized)
    OPS[name] = op
    return op


def get(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        close = [n for n in OPS if n.startswith(name[:3])]
        raise KeyError(f"no op named {name!r} in the registry"
                       + (f"; did you mean {', '.join(sorted(close))}?" if close else "")) from None


def default_cost(in_specs, out_spec, **attrs) -> Cost:
    """One FLOP per output element; bytes = every input read once + the output written once."""
    return Cost(flops=out_spec.numel,
                bytes=sum(s.nbytes for s in in_specs) + out_spec.nbytes)
