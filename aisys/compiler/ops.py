"""Ops that only compilers create, registered in the same registry as every other op.

``fused``        — one kernel standing for a subgraph. Its attrs hold the subgraph (``_body``, a Graph
                   whose inputs are the fused node's inputs, in order, and whose one output is the
                   node's value), the fusion ``kind`` ('elementwise', 'reduce', 'epilogue') and the
                   ``ops`` it contains (for printing). Its reference implementation interprets the
                   body, so every consumer of the registry (the verifier, the interpreter, constant
                   folding, the chip) understands a fused node without knowing about fusion.
``conv2d_nhwc``  — the same convolution on channels-last data: input (N, H, W, C), weight
                   (O, KH, KW, C/groups), output (N, OH, OW, O). The layout pass rewrites NCHW convs
                   into it; results are equal to ``conv2d`` up to the summation order.
"""
from __future__ import annotations

import builtins

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..framework.errors import ShapeError
from ..framework.graph import Graph, interpret
from ..framework.shapes import conv_output_size
from ..framework.registry import OPS, Cost, FusionKind, Spec, defop, get as get_op, matrix, through_body

FUSED_KINDS = ("elementwise", "reduce", "epilogue")


# ---- fused --------------------------------------------------------------------------------------
def _fused_infer(*inputs, kind, ops, _body: Graph):
    if kind not in FUSED_KINDS:
        raise ValueError(f"fused: kind must be one of {FUSED_KINDS}, got {kind!r}")
    if len(inputs) != len(_body.inputs):
        raise ShapeError("fused", f"the body takes {len(_body.inputs)} inputs but the node has {len(inputs)}",
                         rule="a fused node's inputs are its body's inputs, in order")
    for k, (x, i) in enumerate(zip(inputs, _body.inputs)):
        b = _body.nodes[i]
        if tuple(x.shape) != tuple(b.shape) or x.dtype is not b.dtype:
            raise ShapeError("fused", f"input {k} is {x.dtype.short}{list(x.shape)} but the body expects "
                             f"{b.type_str()}", shapes=(x.shape, b.shape))
    if len(_body.outputs) != 1:
        raise ShapeError("fused", f"the body must have exactly one output, has {len(_body.outputs)}")
    out = _body.nodes[_body.outputs[0]]
    return Spec(tuple(out.shape), out.dtype)


def _fused_ref(*arrays, kind, ops, _body: Graph):
    return interpret(_body, *arrays)[0]


def _fused_cost(in_specs, out_spec, kind, ops, _body: Graph):
    """FLOPs of every node inside; bytes of the external inputs and the output only (intermediates stay
    in registers in a fused kernel)."""
    flops = 0
    for n in _body.nodes.values():
        if not n.is_leaf:
            flops += get_op(n.op).cost([_body.nodes[i].spec for i in n.inputs], n.spec, **n.attrs).flops
    return Cost(flops=flops, bytes=builtins.sum(s.nbytes for s in in_specs) + out_spec.nbytes)


# ---- conv2d_nhwc ----------------------------------------------------------------------------------
def _pair_ok(v):
    return isinstance(v, tuple) and len(v) == 2


def _nhwc_infer(x, w, *b, stride, padding, dilation, groups):
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise ShapeError("conv2d_nhwc", f"expects input (N, H, W, C) and weight (O, KH, KW, C/groups), got "
                         f"{tuple(x.shape)} and {tuple(w.shape)}", shapes=(x.shape, w.shape))
    if not all(_pair_ok(v) for v in (stride, padding, dilation)):
        raise TypeError("conv2d_nhwc: stride, padding and dilation must be pairs (as conv2d's attrs)")
    N, H, W, C = x.shape
    O, KH, KW, Cg = w.shape
    if groups < 1 or C % groups or O % groups or Cg * groups != C:
        raise ShapeError("conv2d_nhwc", f"weight {tuple(w.shape)} with groups={groups} does not match "
                         f"{C} input channels (input {tuple(x.shape)})", shapes=(x.shape, w.shape),
                         rule="weight.shape[3] × groups == input channels (last dim)")
    if b and tuple(b[0].shape) != (O,):
        raise ShapeError("conv2d_nhwc", f"bias shape {tuple(b[0].shape)} must be ({O},)", shapes=(b[0].shape,))
    OH = conv_output_size(H, KH, stride[0], padding[0], dilation[0], op="conv2d_nhwc", dim="H")
    OW = conv_output_size(W, KW, stride[1], padding[1], dilation[1], op="conv2d_nhwc", dim="W")
    return Spec((N, OH, OW, O), x.dtype)


def _nhwc_ref(x, w, b=None, *, stride, padding, dilation, groups):
    """im2col on channels-last data: each window is KH·KW runs of C contiguous values."""
    N, H, W, C = x.shape
    O, KH, KW, Cg = w.shape
    OH = conv_output_size(H, KH, stride[0], padding[0], dilation[0], op="conv2d_nhwc")
    OW = conv_output_size(W, KW, stride[1], padding[1], dilation[1], op="conv2d_nhwc")
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if ph or pw else x
    sN, sH, sW, sC = xp.strides
    win = as_strided(xp, (N, OH, OW, KH, KW, C),
                     (sN, sH * stride[0], sW * stride[1], sH * dilation[0], sW * dilation[1], sC), writeable=False)
    Og = O // groups
    out = np.empty((N, OH, OW, O), x.dtype)
    for gi in range(groups):
        cols = win[..., gi * Cg:(gi + 1) * Cg].reshape(N * OH * OW, KH * KW * Cg)
        wg = w[gi * Og:(gi + 1) * Og].reshape(Og, KH * KW * Cg)
        out[..., gi * Og:(gi + 1) * Og] = (cols @ wg.T).reshape(N, OH, OW, Og)
    if b is not None:
        out += b
    return out


def _nhwc_cost(in_specs, out_spec, **a):
    w = in_specs[1]
    macs = out_spec.numel * w.shape[1] * w.shape[2] * w.shape[3]
    return Cost(flops=2 * macs + (out_spec.numel if len(in_specs) > 2 else 0),
                bytes=builtins.sum(s.nbytes for s in in_specs) + out_spec.nbytes)


def register() -> None:
    """Register the compiler's ops once (idempotent: importing twice must not fail)."""
    if "fused" not in OPS:
        defop("fused", infer=_fused_infer, ref=_fused_ref, cost=_fused_cost, fusion=FusionKind.OPAQUE,
              chip=through_body("a fused group runs as its body: one vector layer for an elementwise or reduce "
                                "group, the matrix layer and its epilogue for an epilogue group"),
              doc="A fused group: one kernel for a subgraph (attrs: kind, ops, _body).")
    if "conv2d_nhwc" not in OPS:
        defop("conv2d_nhwc", infer=_nhwc_infer, ref=_nhwc_ref, cost=_nhwc_cost,
              fusion=FusionKind.COMPLEX_OUT_FUSABLE, chip=matrix("conv", layout="NHWC"),
              doc="Channels-last convolution: x (N,H,W,C), w (O,KH,KW,C/groups), out (N,OH,OW,O). An inference "
                  "layout op created by the layout pass (no VJP).")


register()
