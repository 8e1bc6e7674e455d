"""Roofline model (Williams, Waterman & Patterson, CACM 52(4), 2009): is an op memory- or compute-bound?

    attainable = min(peak compute, DRAM bandwidth x operational intensity)
    intensity  = operations / bytes of DRAM traffic          (operations: 2 per multiply-accumulate)
    ridge      = peak / bandwidth — below it an op is memory-bound, above it compute-bound

Points can come from counting (``op_flops_bytes``: each operand read once, the result written
once) or from the simulator (``layer_roofline``: DRAM bytes after tiling, achieved throughput from
simulated cycles). Under the flat roof the systolic array has its own *ceilings*, the analogue of
the paper's SIMD/ILP ceilings: mapping efficiency (edge folds leave PEs unused) and pipeline fill
(the skewed wavefront fills and drains). The TPU v1 paper draws its roofline in multiply-accumulates
per weight byte; its ridge is 92 T / 2 / 34 GB/s ~ 1350 MAC/B (``ChipConfig.ridge_point_macs``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..framework import dtypes as _dt
from ..framework.registry import Spec, get as get_op
from .config import ChipConfig, preset


@dataclass(frozen=True)
class RooflinePoint:
    """One op or layer under a chip's roof. ``flops`` counts 2 operations per MAC."""
    name: str
    flops: float
    dram_bytes: float
    peak_ops_per_s: float
    bandwidth: float                       # DRAM bytes per second
    achieved_ops_per_s: float | None = None
    ceilings: dict = field(default_factory=dict)   # name -> attainable ops/s under that ceiling
    kind: str = ""

    @property
    def intensity(self) -> float:
        """Operations per DRAM byte (inf when nothing crosses the DRAM interface)."""
        return self.flops / self.dram_bytes if self.dram_bytes else math.inf

    @property
    def macs_per_byte(self) -> float:
        return self.intensity / 2

    @property
    def ridge(self) -> float:
        return self.peak_ops_per_s / self.bandwidth

    @property
    def attainable_ops_per_s(self) -> float:
        return min(self.peak_ops_per_s, self.bandwidth * self.intensity)

    @property
    def bound(self) -> str:
        return "memory" if self.intensity < self.ridge else "compute"

    def summary(self) -> str:
        s = (f"{self.name}: {self.intensity:.4g} ops/B ({self.macs_per_byte:.4g} MAC/B), {self.bound}-bound, "
             f"attainable {self.attainable_ops_per_s / 1e12:.4g} TOPS")
        if self.achieved_ops_per_s is not None:
            s += f", achieved {self.achieved_ops_per_s / 1e12:.4g} TOPS"
        return s


def roofline_point(name: str, flops: float, dram_bytes: float, chip, *, achieved_ops_per_s: float | None = None,
                   ceilings: dict | None = None, kind: str = "") -> RooflinePoint:
    """Place ``flops`` operations moving ``dram_bytes`` under ``chip``'s roof."""
    chip = preset(chip)
    for what, v in (("flops", flops), ("dram_bytes", dram_bytes)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
            raise ValueError(f"roofline_point({name!r}): {what} must be a finite number >= 0, got {v!r}")
    return RooflinePoint(name, float(flops), float(dram_bytes), chip.peak_ops_per_s, chip.dram_bytes_per_s,
                         achieved_ops_per_s, dict(ceilings or {}), kind)


# ---------------------------------------------------------------------------------------------------
# Counting FLOPs and bytes of single ops (exercise 8.1)
# ---------------------------------------------------------------------------------------------------

_OP_KEYS = {"add": ("n",), "matmul": ("M", "N", "K"),
            "conv2d": ("batch", "C", "H", "W", "F", "k", "stride", "padding")}
_DTYPE_OF_WIDTH = {1: _dt.int8, 2: _dt.float16, 4: _dt.float32, 8: _dt.float64}


def _specs(op: str, d: dict, dtype):
    """The input specs and attrs of one op from the exercise's dims (what the op registry's cost reads)."""
    if op == "add":
        return [Spec((d["n"],), dtype)] * 2, {}
    if op == "matmul":
        return [Spec((d["M"], d["K"]), dtype), Spec((d["K"], d["N"]), dtype)], {}
    pair = lambda v: (int(v), int(v))                                    # noqa: E731
    return ([Spec((d["batch"], d["C"], d["H"], d["W"]), dtype), Spec((d["F"], d["C"], d["k"], d["k"]), dtype)],
            dict(stride=pair(d["stride"]), padding=pair(d["padding"]), dilation=(1, 1), groups=1))


def op_flops_bytes(op: str, dims: dict, bytes_per_element: int = 4) -> tuple[int, int]:
    """(FLOPs, DRAM bytes) of one op when every operand is read once and the result written once: the op
    registry's cost of the op on tensors of these sizes, with ``bytes_per_element``-byte elements.

    add:    n FLOPs; reads 2n, writes n elements          -> fp32: 1/12 FLOP/B
    matmul: 2·M·N·K FLOPs; reads M·K + K·N, writes M·N   -> N=1024 fp32: 2N³/(12N²) ~ 171 FLOP/B
    conv2d: 2·batch·F·OH·OW·C·k² FLOPs; reads input and weights, writes output
    """
    if op not in _OP_KEYS:
        raise ValueError(f"op_flops_bytes: op {op!r} is not known; use one of {sorted(_OP_KEYS)}")
    missing = [k for k in _OP_KEYS[op] if k not in dims]
    if missing:
        raise ValueError(f"op_flops_bytes({op!r}): dims needs {list(_OP_KEYS[op])}, missing {missing}")
    if bytes_per_element not in _DTYPE_OF_WIDTH:
        raise ValueError(f"op_flops_bytes: bytes_per_element must be one of {sorted(_DTYPE_OF_WIDTH)}, "
                         f"got {bytes_per_element!r}")
    ins, attrs = _specs(op, dims, _DTYPE_OF_WIDTH[bytes_per_element])
    d = get_op(op)
    out = d.infer(*[Spec(x.shape, _dt.float32) for x in ins], **attrs)     # the shape (convs take floats)
    c = d.cost(ins, Spec(out.shape, ins[0].dtype), **attrs)
    return int(c.flops), int(c.bytes)


def classify_op(op: str, dims: dict, chip, bytes_per_element: int = 4) -> tuple[float, str]:
    """(arithmetic intensity in FLOP/B, "memory" or "compute") of one op on ``chip``'s roofline."""
    chip = preset(chip)
    flops, nbytes = op_flops_bytes(op, dims, bytes_per_element)
    intensity = flops / nbytes
    return intensity, ("memory" if intensity < chip.ridge_point else "compute")


# ---------------------------------------------------------------------------------------------------
# Layers from the simulator
# ---------------------------------------------------------------------------------------------------

def layer_roofline(layer, chip) -> RooflinePoint:
    """A layer record on ``chip``: DRAM bytes after tiling, achieved throughput from the simulation,
    and the matrix unit's ceilings (mapping efficiency, then pipeline fill) for GEMM-shaped layers."""
    from .cube import matrix_gemm
    from .lowering import simulate_layer
    chip = preset(chip)
    res = simulate_layer(layer, chip)
    dram = res.dram_bytes["read"] + res.dram_bytes["write"]
    ceilings = {}
    if getattr(layer, "macs", 0):
        M, N, K = layer.gemm
        rep = matrix_gemm(M, N, K, chip)
        ceilings["mapping efficiency"] = chip.peak_ops_per_s * rep.mapping_efficiency
        ceilings["pipeline fill"] = chip.peak_ops_per_s * rep.mapping_efficiency * rep.pipeline_efficiency
    return roofline_point(layer.name, layer.flops, dram, chip, achieved_ops_per_s=layer.flops / res.time_s,
                          ceilings=ceilings, kind=layer.kind)


def layers_roofline(layers, chip) -> list[RooflinePoint]:
    """``layer_roofline`` for every layer (each simulated on its own)."""
    return [layer_roofline(layer, chip) for layer in layers]


def tpu_v1_paper_points(chip: ChipConfig | str = "tpu_v1") -> list[RooflinePoint]:
    """The six apps at the intensities the TPU v1 paper publishes (Table 1, MAC per weight byte)."""
    from .workloads import tpu_v1_apps
    chip = preset(chip)
    pts = []
    for app in tpu_v1_apps():
        # one weight byte per `macs_per_weight_byte` MACs; 2 operations per MAC
        pts.append(roofline_point(app.name, 2.0 * app.macs_per_weight_byte, 1.0, chip, kind=app.kind))
    return pts
