"""Fold quantize/dequantize pairs into integer-only inference (量化折叠: int8 × int8 → int32, requantize).

The graph of a post-training-quantized model (``aisys.framework.compress.quantize``, traced) computes each
layer in float64 between ``dequantize`` and ``quantize`` ops. This pass moves every op onto the integer codes,
using what the registry says each op's quantized form is (``OpDef.quantized``):

  matrix   quantize_int32(matmul(dq(a), permute(dq(w))) + dq(b)) → matmul_integer(a, permute(w)) + b
           quantize_int32(conv2d(dq(x), dq(w), dq(b)))            → conv2d_integer(x, w, b)
           when the accumulator's scale is exactly s_a·s_w and the bias's too (Jacob et al. eq. 5-7): the float
           sum of dequantized products is s_a·s_w times the integer sum, up to float64 rounding
  same     op(dq(q, s, z)) → dq(op(q), s, z) for ops that only move or select values (reshape, permute,
           max pooling, slicing): they commute with the affine map
  clamp    relu(dq(q, s, z)) → dq(max(q, z), s, z): real 0 is the code z
  cancel   quantize(dq(q, s, z), s, z) → q: the same parameters undo each other exactly
  merge    max(requantize(acc, …, qmin, qmax), c) → requantize(acc, …, max(qmin, c), qmax): ReLU becomes
           the requantization's lower clamp

What is left is integer-only between the input's ``quantize`` and the output's ``dequantize``
(:func:`float_ops_between`), and it computes the simulation's int8 codes bit for bit.
"""
from __future__ import annotations

import numpy as np

from ...framework.registry import OPS
from ..rewriter import Rewriter

_INT32 = (-(1 << 31), (1 << 31) - 1)


def _const(rw: Rewriter, i: int):
    n = rw.node(i)
    return n.value if n.op in ("param", "const") else None


def _dq_parts(rw: Rewriter, i: int):
    """(codes id, scale array, zero-point array, axis) when node ``i`` is a dequantize with constant
    parameters; None otherwise."""
    n = rw.node(i)
    if n.op != "dequantize":
        return None
    s, z = _const(rw, n.inputs[1]), _const(rw, n.inputs[2])
    if s is None or z is None:
        return None
    return n.inputs[0], np.asarray(s, np.float64), np.asarray(z, np.int64), n.attrs.get("axis")


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.size == b.size and np.array_equal(a.reshape(-1), b.reshape(-1)) if a.size == b.size else False


def _single_user(rw: Rewriter, users: dict, i: int) -> bool:
    return len(users.get(i, ())) == 1 and i not in rw.graph.outputs


def _matrix_operands(rw: Rewriter, y: int):
    """For the float result ``y`` of a matrix layer: (kind, activation dq id, weight dq id, bias dq id or None,
    conv attrs, float op ids) where kind is 'matmul' or 'conv2d'; None when it is not such a product."""
    n = rw.node(y)
    bias = None
    if n.op == "add" and len(n.inputs) == 2:
        for p, b in ((0, 1), (1, 0)):
            if rw.node(n.inputs[p]).op in ("matmul", "conv2d") and rw.node(n.inputs[b]).op == "dequantize":
                bias, n = n.inputs[b], rw.node(n.inputs[p])
                break
        else:
            return None
    if n.op == "linear":
        bias = n.inputs[2] if len(n.inputs) > 2 else None
        return "linear", n.inputs[0], n.inputs[1], bias, {}
    if n.op == "matmul":
        w = rw.node(n.inputs[1])
        if w.op == "permute" and tuple(w.attrs.get("dims", ())) == (1, 0):
            return "matmul", n.inputs[0], w.inputs[0], bias, {}            # x @ dequantize(W)ᵀ
        if w.op == "dequantize" and rw.node(w.inputs[0]).op == "permute" and w.attrs.get("axis") is None:
            return "matmul_t", n.inputs[0], w.id, bias, {}                 # x @ dequantize(Wᵀ): per-tensor
        return None
    if n.op == "conv2d":
        if len(n.inputs) > 2:
            if bias is not None:
                return None
            bias = n.inputs[2]
        return "conv2d", n.inputs[0], n.inputs[1], bias, dict(n.attrs)
    return None


def _fold_matrix(rw: Rewriter, node) -> bool:
    """quantize(int32) of a float matmul/linear/conv of dequantized operands → an integer kernel."""
    if node.dtype.name != "int32":
        return False
    ops = _matrix_operands(rw, node.inputs[0])
    if ops is None:
        return False
    kind, a_id, w_id, b_id, attrs = ops
    kind_name = "matmul" if kind == "matmul_t" else kind
    cand = f"fold %{node.id} = quantize(int32) of a float {kind_name} into {'conv2d' if kind == 'conv2d' else 'matmul'}_integer"
    a, w = _dq_parts(rw, a_id), _dq_parts(rw, w_id)
    if a is None or w is None:
        rw.reject(cand, "an operand is not a dequantize with constant scale and zero point", nodes=(node.id,))
        return False
    (qa, sa, za, axa), (qw, sw, zw, axw) = a, w
    if axa is not None or sa.size != 1:
        rw.reject(cand, "the activation is quantized per channel; integer kernels take one activation scale",
                  nodes=(node.id,))
        return False
    if axw not in (None, 0):
        rw.reject(cand, f"the weight is quantized along axis {axw}, not per output channel (axis 0)", nodes=(node.id,))
        return False
    s_acc, z_acc = _const(rw, node.inputs[1]), _const(rw, node.inputs[2])
    if s_acc is None or z_acc is None or np.any(np.asarray(z_acc) != 0):
        rw.reject(cand, "the accumulator's scale/zero point is not a constant with zero point 0", nodes=(node.id,))
        return False
    want = sa.reshape(()) * sw
    if not _same(np.broadcast_to(np.asarray(s_acc, np.float64), want.shape) if np.size(s_acc) == 1 else s_acc, want):
        rw.reject(cand, "the accumulator's scale is not s_a·s_w, so the int32 sum would need rescaling",
                  nodes=(node.id,))
        return False
    if (node.attrs["qmin"], node.attrs["qmax"]) != _INT32:
        rw.reject(cand, "the accumulator quantize clamps below the int32 range (not a plain accumulator)",
                  nodes=(node.id,))
        return False
    qb = None
    if b_id is not None:
        b = _dq_parts(rw, b_id)
        if b is None or not _same(np.broadcast_to(b[1], want.shape) if b[1].size == 1 else b[1], want) \
                or np.any(b[2] != 0) or rw.node(b[0]).dtype.name != "int32":
            rw.reject(cand, "the bias is not int32 codes at scale s_a·s_w with zero point 0", nodes=(node.id,))
            return False
        qb = b[0]
    za_n = rw.add_const(np.asarray(za.reshape(()), np.int8 if rw.node(qa).dtype.name == "int8" else np.int32))
    zw_n = rw.add_const(np.asarray(zw.reshape(-1) if zw.size > 1 else zw.reshape(()), np.int32))
    if kind == "conv2d":
        ins = [qa, qw, za_n.id, zw_n.id] + ([qb] if qb is not None else [])
        new = rw.add("conv2d_integer", ins, attrs)
    else:
        wt = qw if kind == "matmul_t" else rw.add("permute", [qw], {"dims": (1, 0)}).id
        new = rw.add("matmul_integer", [qa, wt, za_n.id, zw_n.id])
        if qb is not None:
            new = rw.add("add", [new.id, qb])
    rw.replace(node.id, new.id, note=f"%{node.id} = quantize(int32) of a float {kind_name} → {new.op} "
                                       f"(int8 × int8 → int32{', + int32 bias' if qb is not None else ''})")
    return True


def _commute(rw: Rewriter, node) -> bool:
    """op(dequantize(q)) → dequantize(op'(q)) for ops whose quantized form is 'same' or 'clamp'."""
    form = OPS[node.op].quantized if node.op in OPS else None
    if form is None or form.kind not in ("same", "clamp") or not node.inputs:
        return False
    dq = _dq_parts(rw, node.inputs[0])
    if dq is None or any(rw.node(i).op not in ("param", "const") for i in node.inputs[1:]):
        return False
    q, s, z, axis = dq
    if axis is not None:
        rw.reject(f"move {node.op} %{node.id} onto integer codes", "its input is quantized per channel",
                  nodes=(node.id,))
        return False
    if form.kind == "same":
        inner = rw.add(node.op, [q] + list(node.inputs[1:]), dict(node.attrs))
        note = f"{node.op} runs on the int8 codes (it only moves values)"
    else:
        zc = rw.add_const(np.asarray(int(z.reshape(())), rw.node(q).dtype.np))
        inner = rw.add("maximum", [q, zc.id])
        note = f"{node.op}(s·(q − z)) = s·(max(q, z) − z): a clamp at the zero point"
    old_dq = rw.node(node.inputs[0])
    new = rw.add("dequantize", [inner.id, old_dq.inputs[1], old_dq.inputs[2]], dict(old_dq.attrs))
    rw.replace(node.id, new.id, note=note)
    return True


def _cancel(rw: Rewriter, node) -> bool:
    """quantize(dequantize(q, s, z), s, z) → q (the same int8 codes)."""
    if node.dtype.name != "int8":
        return False
    dq = _dq_parts(rw, node.inputs[0])
    if dq is None:
        return False
    q, s, z, axis = dq
    s2, z2 = _const(rw, node.inputs[1]), _const(rw, node.inputs[2])
    same = (s2 is not None and z2 is not None and axis == node.attrs.get("axis") and _same(s, s2) and _same(z, z2)
            and rw.node(q).dtype is node.dtype)
    lo, hi = np.iinfo(node.dtype.np).min, np.iinfo(node.dtype.np).max
    if not same or (node.attrs["qmin"], node.attrs["qmax"]) != (lo, hi):
        rw.reject(f"cancel %{node.id} = quantize(dequantize(...))",
                  "the two have different scales, zero points or code ranges (it is a requantization)",
                  nodes=(node.id,))
        return False
    rw.replace(node.id, q, note="quantize ∘ dequantize with the same scale and zero point is the identity")
    return True


def _merge_clamp(rw: Rewriter, node, users) -> bool:
    """max(requantize(acc, …, qmin, qmax), c) → requantize(acc, …, max(qmin, c), qmax)."""
    if node.op != "maximum" or len(node.inputs) != 2:
        return False
    r, c = rw.node(node.inputs[0]), _const(rw, node.inputs[1])
    if r.op != "requantize" or c is None or np.size(c) != 1 or not _single_user(rw, users, r.id):
        return False
    c = int(np.asarray(c).reshape(()))
    if c > r.attrs["qmax"]:
        return False
    attrs = dict(r.attrs, qmin=max(r.attrs["qmin"], c))
    new = rw.add("requantize", list(r.inputs), attrs)
    rw.replace(node.id, new.id, note=f"ReLU folded into the requantization: codes clamp at {attrs['qmin']}")
    return True


def fold_quantization(rw: Rewriter, max_rounds: int = 50) -> None:
    """Turn a quantize/dequantize (QDQ) graph into integer-only inference (see the module docstring)."""
    for _ in range(max_rounds):
        changed = False
        users = rw.graph.users()
        for node in list(rw.graph.nodes.values()):
            if node.id not in rw.graph.nodes or node.is_leaf:
                continue
            if node.op == "quantize":
                changed |= _fold_matrix(rw, node) or _cancel(rw, node)
            elif node.op == "maximum":
                changed |= _merge_clamp(rw, node, users)
            else:
                changed |= _commute(rw, node)
            if changed:
                break
        if not changed:
            return


def float_ops_between(graph) -> list:
    """Op nodes that still compute on floats after the input was quantized: empty for integer-only inference.
    The boundary does not count: ops before the first quantize, and a final dequantize that only the
    graph outputs read."""
    users = graph.users()
    after_quantize: set = set()
    out = []
    for n in graph.nodes.values():
        if n.is_leaf:
            continue
        if n.op == "quantize" or any(i in after_quantize for i in n.inputs):
            after_quantize.add(n.id)
        else:
            continue
        boundary = n.op == "quantize" or (n.op == "dequantize" and not users[n.id])
        if n.dtype.is_floating and not boundary:
            out.append(n)
    return out
