"""Operator fusion by fusion kind (算子融合, 03Frontend/03OPFusion; TVM's operator classes).

Greedy, from the outputs backwards: every op that can end a group (an elementwise op, or a
reduction) starts one, and the group grows into its producers one candidate at a time. Each
candidate "fuse %p into %m" is logged with its verdict; the rules, in order:

  * a producer with readers outside the group is not fused — its value must be written to memory for
    them anyway (fusing would recompute it or need a second output): "%4 has 2 consumers";
  * a graph output likewise must be materialized;
  * impure ops (dropout) and dtypes the kernels do not handle (float16, bfloat16) stay out;
  * elementwise and broadcast ops whose registry definition carries a scalar expression fuse into
    elementwise and reduce groups;
  * one complex-out-fusable op (matmul, conv2d, conv2d_nhwc) per elementwise group may join as its
    *anchor*, making an epilogue group (BLAS first, then the elementwise epilogue in place on its
    output); growth stops at the anchor;
  * a reduction with a combiner in the registry ends a group: its consumers cannot start until it has
    seen every element, so a reduction is fused only with its elementwise *producers*;
  * everything else (reshape, permute, softmax, batch_norm, …) has neither and breaks the chain.

Every verdict reads the op registry (fusion kind, scalar expression, reduction); the only thing taken
from code generation is which dtypes it can emit (``aisys.framework.scalar.EMIT_DTYPES``).

A group of two or more ops becomes one ``fused`` node (kind 'elementwise', 'reduce' or 'epilogue')
whose body is the subgraph. Since no member has a reader outside the group, the rewrite cannot
create a cycle.
"""
from __future__ import annotations

from ...framework.graph import Graph
from ...framework.registry import FusionKind, get as get_op
from ...framework.scalar import EMIT_DTYPES as KERNEL_DTYPES
from ..rewriter import Rewriter


def _elementwise(op: str) -> bool:
    return get_op(op).scalar is not None


def _reduction(op: str) -> bool:
    return get_op(op).reduction is not None


def _anchor(op: str) -> bool:
    return get_op(op).fusion is FusionKind.COMPLEX_OUT_FUSABLE


def _dtype_ok(g: Graph, i: int) -> bool:
    n = g.nodes[i]
    return n.dtype.name in KERNEL_DTYPES and all(g.nodes[j].dtype.name in KERNEL_DTYPES for j in n.inputs)


def _root_kind(g: Graph, n, reductions: bool) -> str | None:
    if not get_op(n.op).pure or not _dtype_ok(g, n.id):
        return None
    if _elementwise(n.op):
        return "elementwise"
    if reductions and _reduction(n.op) and len(g.nodes[n.inputs[0]].shape) >= 1:
        return "reduce"
    return None


def _why_not(g: Graph, users, p: int, m: int, members: set, kind: str, anchor, assigned: dict,
             epilogues: bool) -> str | None:
    pn = g.nodes[p]
    if p in assigned:
        return f"%{p} already belongs to the group ending at %{assigned[p]}"
    if not get_op(pn.op).pure:
        return f"%{p} = {pn.op} is impure (a fresh random draw each run)"
    outside = [u for u in users[p] if u not in members]
    if p in g.outputs:
        return f"%{p} is a graph output: its value must be written to memory anyway"
    if outside:
        readers = sorted(set(users[p]))
        return (f"%{p} has {len(readers)} consumers ({', '.join('%' + str(u) for u in readers)}); fusing would "
                f"recompute it or need a second output")
    if anchor is not None and anchor in users[p]:
        return (f"%{p} feeds the anchor %{anchor} ({g.nodes[anchor].op}): the epilogue kernel runs after the "
                f"anchor, so a producer of the anchor cannot join it")
    if not _dtype_ok(g, p):
        return f"%{p} computes {pn.dtype.name}; the generated kernels support {', '.join(sorted(KERNEL_DTYPES))}"
    if _elementwise(pn.op):
        return None
    if _anchor(pn.op):
        if kind == "reduce":
            return f"%{p} = {pn.op} feeds a reduction; only elementwise producers fuse into a reduce group"
        if not epilogues:
            return "epilogue fusion is switched off"
        if anchor is not None:
            return f"the group already has an anchor (%{anchor}); one matmul/conv per group"
        return None
    if _reduction(pn.op):
        return (f"%{p} = {pn.op} is a reduction: its result is complete only after every element is seen, so it "
                f"ends a group instead of joining %{m}'s")
    kind_p = get_op(pn.op).fusion.value
    if kind_p in ("elementwise", "broadcast"):
        return (f"%{p} = {pn.op} is {kind_p} but its definition has no scalar expression (defop(..., scalar=...)), "
                f"so no kernel can compute it: the chain breaks here")
    return f"%{p} = {pn.op} is {kind_p}: no fused-kernel template for it, so the chain breaks here"


def _build_body(g: Graph, members: list[int], root: int) -> tuple[Graph, list[int]]:
    body = Graph(f"fused_{root}")
    m: dict[int, int] = {}
    ext: list[int] = []
    mset = set(members)
    for i in members:
        for j in g.nodes[i].inputs:
            if j not in mset and j not in m:
                src = g.nodes[j]
                m[j] = body.add_input(f"in{len(ext)}", src.shape, src.dtype).id
                ext.append(j)
    for i in members:
        n = g.nodes[i]
        m[i] = body.add(n.op, [m[j] for j in n.inputs], n.attrs).id
    body.set_outputs([m[root]])
    return body, ext


def fuse(rw: Rewriter, reductions: bool = True, epilogues: bool = True, max_ops: int = 64) -> None:
    """Fuse chains of elementwise ops, reductions with their elementwise producers, and matmul/conv with
    an elementwise epilogue into ``fused`` nodes."""
    g = rw.graph
    order = {i: k for k, i in enumerate(g.nodes)}
    assigned: dict[int, int] = {}
    for root in reversed(list(g.nodes.values())):
        if root.id not in g.nodes or root.is_leaf or root.id in assigned:
            continue
        kind = _root_kind(g, root, reductions)
        if kind is None:
            continue
        users = g.users()
        members = {root.id}
        anchor = None
        frontier = [root.id]
        while frontier:
            m = frontier.pop(0)
            for p in dict.fromkeys(g.nodes[m].inputs):
                pn = g.nodes[p]
                if pn.is_leaf or p in members:
                    continue
                cand = f"fuse %{p} ({pn.op}) into %{m} ({g.nodes[m].op})"
                reason = _why_not(g, users, p, m, members, kind, anchor, assigned, epilogues)
                if reason is None and len(members) >= max_ops:
                    reason = f"the group already has {max_ops} ops (max_ops)"
                if reason is not None:
                    rw.reject(cand, reason, rule="fuse", nodes=(p, m))
                    continue
                members.add(p)
                if _anchor(pn.op):
                    anchor = p
                    rw.accept(cand, f"{pn.op} is complex-out-fusable: the chain becomes its epilogue",
                              rule="fuse", nodes=(p, m))
                else:
                    frontier.append(p)
                    rw.accept(cand, f"{pn.op} is {get_op(pn.op).fusion.value}, with a single consumer",
                              rule="fuse", nodes=(p, m))
        if len(members) < 2:
            continue
        group_kind = "epilogue" if anchor is not None else kind
        ordered = sorted(members, key=order.__getitem__)
        for i in ordered:
            assigned[i] = root.id
        body, ext = _build_body(g, ordered, root.id)
        ops = tuple(g.nodes[i].op for i in ordered)
        prov = tuple(sorted({p for i in ordered for p in g.nodes[i].provenance}))
        new = rw.add("fused", ext, {"kind": group_kind, "ops": ops, "_body": body}, provenance=prov)
        assigned[new.id] = root.id
        rw.replace(root.id, new.id, rule="fuse",
                   note=f"{group_kind} group {' → '.join(ops)} ({', '.join('%' + str(i) for i in ordered)}) "
                        f"→ fused %{new.id}")
