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

and, for the consumers below the framework:
  scalar(*operands, **attrs) -> Expr   elementwise/broadcast ops: what one output element is, as a small
                                       expression (aisys.framework.scalar) the fused-kernel generator emits,
                                       the fusion pass fuses and the chip's vector unit runs; an op with a
                                       scalar expression may leave out ``ref`` (it is evaluated from it)
  reduction                            reductions: a :class:`Reduction` (combiner, identity, accumulator
                                       dtype, reduced dims, finalizer), read by the reduce-kernel generator
  index(at, *inputs, **attrs)          injective (data-movement) ops: which input element each output element
                                       is, as a read ``x[...]`` at indices computed from the output position
                                       ``at.index`` (guards with ``at.where``; see aisys.framework.indexmap),
                                       read by the loop back end's compute rules and checked against ``ref``
  chip                                 a :class:`ChipLowering`: which unit of the simulated chip runs the op
                                       and with which instruction, or why it cannot (``not_lowerable``)
  vjp_np(g, out, *inputs, **attrs)     optional, for speed only: the same VJP on numpy arrays, written next
                                       to ``vjp``; a plain first-order ``backward()`` runs it instead of
                                       building backward ops (a test holds every one equal to ``vjp``)

Optional, for in-place safety: ``saved``, which values the VJP reads (input indices and/or "out"; an entry
``(v, j, ...)`` means v is read only for the gradient of inputs j, ...; None, the default, means all of them).
``backward()`` refuses to run a VJP whose saved values were overwritten in place after the op ran (see
``inplace``), as PyTorch does; ops that only need shapes declare ``saved=()``.

Defining an op::

    defop("softsign", infer=same_spec("softsign", float_only=True), fusion=FusionKind.ELEMENTWISE,
          scalar=lambda x: x / (1.0 + abs(x)),                      # ref, kernel, fusion, chip: from here
          vjp=lambda g, out, x: (g / ((1.0 + x.abs()) * (1.0 + x.abs())),),
          jvp=lambda t, out, x: t[0] / ((1.0 + x.abs()) * (1.0 + x.abs())))
"""
from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, NamedTuple

from . import dtypes as _dt
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
class Reduction:
    """How a reduction combines elements, read by the reduce-kernel generator (and the chip's vector unit).

    ``combine(acc, x)`` is an associative scalar expression (``acc + x``); ``identity(acc_dtype)`` its
    neutral element (0, or −inf for a float max); ``accumulate(dtype)`` the accumulator dtype for an input
    dtype (sums of float32 accumulate in float64); ``dims(in_shape, **attrs)`` the reduced axes;
    ``finalize(acc, count)`` an optional last step (``acc / count`` for a mean)."""
    combine: Callable
    identity: Callable
    accumulate: Callable
    dims: Callable
    finalize: Callable | None = None


@dataclass(frozen=True)
class ChipLowering:
    """How the simulated chip runs an op: on ``unit`` ("matrix" or "vector") with ``instruction`` (its
    ISA's name: "gemm", "conv", "relu", "softmax", …; "" = the vector instructions of the op's scalar
    expression), with ``params`` such as the data layout. ``unit`` "addressing": no work (a view or a
    re-indexing the compiler turns into addresses); "body": lowered through the subgraph in its attrs;
    None: not lowerable, and ``why`` says so."""
    unit: str | None
    instruction: str = ""
    why: str = ""
    params: tuple = ()

    @property
    def lowerable(self) -> bool:
        return self.unit is not None

    def param(self, key: str, default=None):
        return dict(self.params).get(key, default)

    def instruction_for(self, attrs: dict) -> str:
        """The instruction for a node with these attrs: a variant the op declares for one of its attribute
        values (exact GELU costs an erf, its approximate='tanh' form a tanh), else ``instruction``."""
        for (attr, value), instruction in self.param("variants", ()):
            if attrs.get(attr) == value:
                return instruction
        return self.instruction

    def __str__(self) -> str:
        if self.unit is None:
            return f"not lowerable: {self.why}"
        if self.unit in ("addressing", "body"):
            return f"{self.unit}: {self.why}"
        return f"{self.unit} unit, {self.instruction or 'its scalar expression'}"


def vector(instruction: str = "", *, variants: dict | None = None, **params) -> ChipLowering:
    """Runs on the vector unit as ``instruction`` ("" = one instruction per primitive of its expression);
    ``variants`` {(attr, value): instruction} name another instruction for nodes with that attribute value."""
    if variants:
        params["variants"] = tuple(sorted(variants.items()))
    return ChipLowering("vector", instruction, params=tuple(sorted(params.items())))


def matrix(instruction: str, **params) -> ChipLowering:
    """Runs on the matrix unit (cube / systolic array) as ``instruction`` ("gemm", "conv", "linear")."""
    return ChipLowering("matrix", instruction, params=tuple(sorted(params.items())))


def addressing(why: str) -> ChipLowering:
    """No work on the chip: the compiler turns it into addressing (a view, a re-indexing)."""
    return ChipLowering("addressing", why=why)


def through_body(why: str) -> ChipLowering:
    """Lowered by lowering the subgraph the op holds in its attrs."""
    return ChipLowering("body", why=why)


def not_lowerable(why: str) -> ChipLowering:
    """The chip model has no lowering for this op; ``why`` is what the error tells the user."""
    return ChipLowering(None, why=why)


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
    vjp_np: Callable | None = None  # numpy twin of vjp for the eager fast path (written next to vjp); optional
    saved: tuple | None = None      # values the VJP reads: input indices and/or "out"; None: all of them
    scalar: Callable | None = None  # elementwise ops: operands (+ attrs) -> aisys.framework.scalar.Expr
    reduction: Reduction | None = None
    index: Callable | None = None   # injective ops: the index map (aisys.framework.indexmap)
    chip: ChipLowering | None = None
    takes_indices: bool = False     # its integer inputs are indices (gather, embedding, targets), not numbers
    kernels: dict = field(default_factory=dict)   # (device, dtype, layout) -> kernel, see aisys.framework.dispatch
    eager: Callable | None = None   # what an eager call runs on arrays: ``ref``, or the dispatcher once kernels
                                    # are registered for the op (one attribute read either way)

    quantized: QuantizedForm | None = None   # how it runs on integer codes (compress); None: no quantized form
    ref_into: Callable | None = None   # ``ref`` computed straight into a given array: ``ref_into(*arrays, out=, **attrs)``
                                       # (np.matmul(..., out=)); what a runtime writing into a planned arena calls

    def __post_init__(self):
        if self.eager is None:
            self.eager = self.ref

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def scalar_expr(self, n_inputs: int, **attrs):
        """The scalar expression for ``n_inputs`` operands and these attrs (None if the op has none)."""
        if self.scalar is None:
            return None
        from .scalar import build
        return build(self.scalar, n_inputs, attrs)

    @property
    def lowering(self) -> ChipLowering:
        """The declared chip lowering; ops without one run their scalar expression (or combiner) on the
        vector unit, and anything else is not lowerable."""
        if self.chip is not None:
            return self.chip
        if self.scalar is not None or self.reduction is not None:
            return vector()
        return not_lowerable(f"{self.name} declares no chip lowering (defop(..., chip=...) at {self.source})")

    def __repr__(self) -> str:
        return f"<op {self.name} ({self.fusion.value}) defined at {self.source}>"


OPS: dict[str, OpDef] = {}


def defop(name: str, *, infer, ref=None, vjp=None, jvp=None, fusion=FusionKind.OPAQUE, cost=None,
          pure: bool = True, doc: str = "", torch_name: str | None = None, vjp_np=None, scalar=None,
          reduction: Reduction | None = None, chip: ChipLowering | None = None, index=None,
          takes_indices: bool = False, saved: tuple | None = None,
          quantized: QuantizedForm | None = None, ref_into=None) -> OpDef:
    """Register an op. Called once per op at import of aisys.framework.ops (see the module docstring)."""
    if name in OPS:
        raise ValueError(f"op {name!r} is already registered at {OPS[name].source}")
    fusion = FusionKind(fusion)
    if scalar is not None and fusion not in (FusionKind.ELEMENTWISE, FusionKind.BROADCAST):
        raise ValueError(f"defop({name!r}): a scalar expression describes an elementwise op, but fusion is "
                         f"{fusion.value}; use FusionKind.ELEMENTWISE or BROADCAST")
    if reduction is not None and fusion is not FusionKind.REDUCE:
        raise ValueError(f"defop({name!r}): a reduction spec needs fusion=FusionKind.REDUCE, got {fusion.value}")
    if index is not None and fusion not in (FusionKind.INJECTIVE, FusionKind.BROADCAST):
        raise ValueError(f"defop({name!r}): an index map describes a data-movement op, but fusion is "
                         f"{fusion.value}; use FusionKind.INJECTIVE (or BROADCAST)")
    if ref is None:
        if scalar is None:
            raise ValueError(f"defop({name!r}): give a numpy reference ``ref`` (or a scalar expression to "
                             f"evaluate it from)")
        ref = _ref_from_scalar(scalar)
    frame = sys._getframe(1)         # where the op is defined (cheap: no source lines are read)
    op = OpDef(name=name, infer=infer, ref=ref, vjp=vjp, jvp=jvp, fusion=fusion,
               cost=cost or default_cost, pure=pure, doc=doc,
               source=f"{frame.f_code.co_filename.split('aisys/')[-1]}:{frame.f_lineno}", torch_name=torch_name,
               vjp_np=vjp_np, scalar=scalar, reduction=reduction, index=index, chip=chip, takes_indices=takes_indices,
               saved=None if saved is None else tuple(saved), quantized=quantized, ref_into=ref_into)
    OPS[name] = op
    return op


def _ref_from_scalar(scalar: Callable) -> Callable:
    def ref(*arrays, **attrs):
        from .scalar import build, evaluate
        return evaluate(build(scalar, len(arrays), attrs), arrays)
    return ref


@contextlib.contextmanager
def temporary_op(name: str, **definition):
    """Register ``defop(name, **definition)`` for the duration of a ``with`` block, then remove it (and
    any kernel registered for it). For exercises and tests that define an op of their own."""
    if name in OPS:
        raise ValueError(f"temporary_op: an op named {name!r} is already registered at {OPS[name].source}")
    frame = sys._getframe(2)
    op = defop(name, **definition)
    op.source = f"{frame.f_code.co_filename}:{frame.f_lineno}"
    try:
        yield op
    finally:
        OPS.pop(name, None)


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


# ---- reductions -----------------------------------------------------------------------------------------
def reduce_dims(in_shape, dim=None, keepdim=False, **attrs) -> tuple:
    """The axes a ``dim``/``keepdim`` reduction reduces (all of them for dim=None)."""
    from .shapes import norm_dims
    return norm_dims("reduce", dim, len(in_shape), in_shape)


def sum_accumulator(dtype: DType) -> DType:
    """Sums accumulate floats in float64 and integers (and bools) in int64."""
    return _dt.float64 if dtype.is_floating else _dt.int64


def same_accumulator(dtype: DType) -> DType:
    return dtype


def extreme_identity(largest: bool):
    """The identity of max (largest=True) or min: −inf/+inf for floats, the integer range's end, False/True."""
    import numpy as np

    def identity(acc_dtype: DType):
        npd = acc_dtype.np
        if acc_dtype.name == "bool":
            return not largest
        if npd.kind == "f" or acc_dtype.is_floating:
            return -np.inf if largest else np.inf
        info = np.iinfo(npd)
        return info.min if largest else info.max
    return identity
