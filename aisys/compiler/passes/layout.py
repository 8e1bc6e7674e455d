"""Layout transformation NCHW → NHWC (数据布局转换, 03Frontend/04LayoutPrinc, 05LayoutAlgo;
05Optimize/03Extend "数据节点转换").

Channels-last convolution reads each window as KH·KW contiguous runs of C values, which is what CPU
and many accelerator kernels want. The pass works in three steps, run to a fixpoint:

1. **convert** every ``conv2d`` into ``permute(x → NHWC)``, ``conv2d_nhwc``, ``permute(→ NCHW)``. Weights
   that are parameters or constants are transposed once, at compile time (a new parameter
   ``<name>.ohwi``); others get a permute node.
2. **sink** a ``permute(→ NCHW)`` below the elementwise op that reads it, so the op runs on NHWC data:
   ``relu(permute(y)) = permute(relu(y))``. A binary op sinks when its other operand is permuted the
   same way, is a scalar, is a constant (transposed at compile time), or already has an NHWC copy in
   the graph (the residual input of a ResNet block). Otherwise the candidate is rejected, with why.
3. **cancel** adjacent inverse permutes — ``permute(permute(y, to_nchw), to_nhwc) → y`` — the lecture's
   "inserting and cancelling transposes" (CASTDATA nodes).

What remains are permutes at the edges of each NHWC region. Results equal the NCHW graph's up to
floating-point summation order.
"""
from __future__ import annotations

import numpy as np

from ...framework.registry import FusionKind, get as get_op
from ..rewriter import Rewriter

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def _is_permute(n, dims) -> bool:
    return n.op == "permute" and tuple(n.attrs["dims"]) == dims


def _find_nhwc_copy(g, i: int):
    for n in g.nodes.values():
        if _is_permute(n, TO_NHWC) and n.inputs[0] == i:
            return n.id
    return None


def _to_nhwc_operand(rw: Rewriter, i: int):
    """An NHWC version of ``i`` for a binary op, or (None, reason)."""
    g = rw.graph
    n = g.nodes[i]
    if n.numel == 1:
        return i, None
    if _is_permute(n, TO_NCHW):
        return n.inputs[0], None
    if len(n.shape) > 4:
        return None, f"%{i} has {len(n.shape)} dims"
    if n.op in ("const", "param"):
        v = np.asarray(n.value).reshape((1,) * (4 - len(n.shape)) + tuple(n.shape)).transpose(TO_NHWC)
        v = np.ascontiguousarray(v)
        if n.op == "const":
            return rw.add_const(v, provenance=n.provenance).id, None
        return rw.add_param(rw.fresh_name(f"{n.name}.nhwc"), v, provenance=n.provenance).id, None
    if len(n.shape) == 4:
        copy = _find_nhwc_copy(g, i)
        if copy is not None:
            return copy, None
    return None, (f"the other operand %{i} ({n.op}, {n.type_str()}) is NCHW with no NHWC copy: a transpose would be "
                  f"added, not removed")


def _convert(rw: Rewriter) -> bool:
    g = rw.graph
    done = False
    for c in list(g.nodes.values()):
        if c.id not in g.nodes or c.op != "conv2d":
            continue
        x, w = c.inputs[0], c.inputs[1]
        xin = _find_nhwc_copy(g, x)
        if xin is None:
            xin = rw.add("permute", (x,), {"dims": TO_NHWC}).id
        W = g.nodes[w]
        if W.op in ("param", "const"):
            v = np.ascontiguousarray(np.asarray(W.value).transpose(TO_NHWC))
            wn = (rw.add_param(rw.fresh_name(f"{W.name or 'weight'}.ohwi"), v, provenance=W.provenance) if W.op == "param"
                  else rw.add_const(v, provenance=W.provenance)).id
        else:
            wn = rw.add("permute", (w,), {"dims": TO_NHWC}).id
        y = rw.add("conv2d_nhwc", (xin, wn) + tuple(c.inputs[2:]), dict(c.attrs), provenance=c.provenance)
        out = rw.add("permute", (y.id,), {"dims": TO_NCHW}, provenance=c.provenance)
        rw.replace(c.id, out.id, rule="to_nhwc", note=f"conv2d %{c.id} → conv2d_nhwc %{y.id} between transposes")
        done = True
    return done


def _sinkable(op: str) -> bool:
    d = get_op(op)
    return d.pure and d.fusion in (FusionKind.ELEMENTWISE, FusionKind.BROADCAST) and op not in ("broadcast_to", "batch_norm")


def _sink(rw: Rewriter, seen: set) -> bool:
    g = rw.graph
    users = g.users()
    for n in list(g.nodes.values()):
        if n.id not in g.nodes or n.is_leaf or len(n.inputs) not in (1, 2):
            continue
        perms = [i for i in n.inputs if _is_permute(g.nodes[i], TO_NCHW)]
        if not perms:
            continue
        cand = f"sink permute %{perms[0]} below %{n.id} ({n.op})"
        key = (n.id, tuple(n.inputs))

        def reject(reason):
            if key not in seen:
                seen.add(key)
                rw.reject(cand, reason, rule="to_nhwc", nodes=(perms[0], n.id))

        if not _sinkable(n.op):
            why = ("batch_norm normalizes dim 1 (NCHW channels); fold it into the conv first (fold_conv_bn)"
                   if n.op == "batch_norm" else f"{n.op} is not elementwise: it depends on the layout")
            reject(why)
            continue
        shared = [p for p in set(perms) if len(set(users[p])) > 1 or p in g.outputs]
        if shared:
            reject(f"permute %{shared[0]} has other consumers; moving it would add a transpose")
            continue
        new_inputs = []
        for i in n.inputs:
            j, why = _to_nhwc_operand(rw, i)
            if j is None:
                break
            new_inputs.append(j)
        if len(new_inputs) != len(n.inputs):
            rw.discard_pending()
            reject(why)
            continue
        try:
            inner = rw.add(n.op, new_inputs, dict(n.attrs), provenance=n.provenance)
        except ValueError as e:          # ShapeError: the operands do not broadcast in NHWC
            rw.discard_pending()
            reject(f"the operands do not broadcast in NHWC ({e})")
            continue
        if tuple(g.nodes[inner.id].shape) != tuple(n.shape[d] for d in TO_NHWC):
            rw.discard_pending()
            reject("broadcasting would differ in NHWC")
            continue
        out = rw.add("permute", (inner.id,), {"dims": TO_NCHW}, provenance=n.provenance)
        rw.replace(n.id, out.id, rule="to_nhwc", note=f"{n.op} %{n.id} now runs on NHWC data (%{inner.id})")
        return True
    return False


def _cancel(rw: Rewriter) -> bool:
    g = rw.graph
    done = False
    for n in list(g.nodes.values()):
        if n.id not in g.nodes or n.op != "permute":
            continue
        m = g.nodes[n.inputs[0]]
        if m.op != "permute":
            continue
        p, q = tuple(m.attrs["dims"]), tuple(n.attrs["dims"])
        if tuple(p[i] for i in q) == tuple(range(len(q))):
            rw.replace(n.id, m.inputs[0], rule="to_nhwc", note=f"permute %{m.id} then %{n.id} cancel out")
            done = True
    return done


def to_nhwc(rw: Rewriter, max_rounds: int = 64) -> None:
    """Run every conv2d in NHWC, keep elementwise chains between convs in NHWC, cancel transposes."""
    _convert(rw)
    seen: set = set()
    for _ in range(max_rounds):
        changed = _cancel(rw)
        changed = _sink(rw, seen) or changed
        if not changed:
            break
