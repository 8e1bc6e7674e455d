"""Fused groups through the loop back end (loops.group): the computes read from a fused body, the default
schedules as recorded steps, the interpreter (the executable spec) against the graph, and the size-generic
build (merged views, sizes read from the arrays)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from aisys.compiler import fuse, loops, run_pass
from aisys.compiler.loops.kernel import merge_fused_dims
from aisys.framework import dtypes as dt
from aisys.framework.graph import Graph, interpret


def _group(build, *shapes, dtype=dt.float32):
    g = Graph("k")
    xs = [g.add_input(f"x{k}", s, dtype).id for k, s in enumerate(shapes)]
    g.set_outputs([build(g, *xs)])
    (node,) = [n for n in run_pass(fuse, g).graph.nodes.values() if n.op == "fused"]
    return g, node.attrs["_body"]


def _spec(grp, s, arrays):
    """The group's schedule run by the interpreter, on the arrays viewed as its placeholders."""
    ins = [np.asarray(a).reshape(v) for a, v in zip(arrays, grp.views)] + [a for _, a in grp.extra]
    return loops.interpret(s, *ins)


def _bias_gelu(g, x, b):
    return g.add("gelu", (g.add("add", (x, b)).id,)).id


def test_elementwise_group_is_fused_loops_that_interpret_to_the_graph():
    g, body = _group(_bias_gelu, (2, 3, 4), (4,))
    grp = loops.from_group(body)
    assert grp.kind == "elementwise" and grp.ops == "add → gelu" and grp.views == [(2, 3, 4), (1, 1, 4)]
    s = loops.default_schedule(grp)
    assert [str(st) for st in s.steps] == ["compute_inline(t0_add)", "fuse(out, i, j)"]
    text = str(loops.lower(s))
    assert "for ij in range(6):" in text and "for l in range(4):" in text
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    np.testing.assert_allclose(_spec(grp, s, arrays), interpret(g, *arrays)[0], rtol=1e-6)
    # the steps replay on a fresh schedule of the same compute (the LoopNestView and the tuner rely on it)
    assert str(loops.lower(loops.Schedule(grp.tensor, steps=s.steps))) == text


def test_the_generic_build_merges_fused_dims_into_views_and_reads_sizes_from_the_arrays():
    g, body = _group(_bias_gelu, (2, 3, 4), (4,))
    grp = loops.from_group(body)
    f = loops.lower(loops.default_schedule(grp), args=grp.placeholders)
    merged, shapes = merge_fused_dims(f)
    assert shapes == [(6, 4), (4,), (6, 4)]
    k = loops.build(f, generic=True, note=["bias + gelu"])
    assert k.param_shapes == shapes and "range(out.shape[0])" in k.source and "range(out.shape[1])" in k.source
    assert not re.search(r"\b(2|3|4|6)\b", k.source.split("def kernel")[1])   # no size in the kernel body
    rng = np.random.default_rng(1)
    x, b = rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal((1, 1, 4)).astype(np.float32)
    np.testing.assert_allclose(k(x, b), interpret(g, x, b.reshape(4))[0], rtol=1e-6)
    # another size with the same pattern: the same text, so one numba compile
    _, body2 = _group(_bias_gelu, (5, 7, 9), (9,))
    grp2 = loops.from_group(body2)
    k2 = loops.build(loops.lower(loops.default_schedule(grp2), args=grp2.placeholders), generic=True,
                     note=["bias + gelu"])
    assert k2.source == k.source


@pytest.mark.parametrize("op,dim,shape,steps", [
    ("sum", -1, (3, 4, 5), ["compute_inline(t0_exp)", "compute_at(acc, out, l)"]),        # float64 accumulator
    ("max", (1, 2), (3, 4, 5), ["compute_inline(t0_exp)"]),                             # accumulates in float32
    ("mean", 0, (6, 5), ["compute_inline(t0_exp)", "reorder(acc, r0, jj)"]),            # streaming, in place
    ("mean", (0, 2), (3, 4, 5), ["compute_inline(t0_exp)", "reorder(acc, r0, jj, r2)"]),
])
def test_reduce_group_schedules_and_interpret_to_the_graph(op, dim, shape, steps):
    g, body = _group(lambda g, x: g.add(op, (g.add("exp", (x,)).id,), {"dim": dim, "keepdim": False}).id, shape)
    grp = loops.from_group(body)
    s = loops.default_schedule(grp)
    assert grp.kind == "reduce" and [str(st) for st in s.steps] == steps
    assert [t.name for t, _ in grp.extra] == (["count"] if op == "mean" else [])
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    want = interpret(g, x)[0]
    got = _spec(grp, s, [x])
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5)


def test_integer_chains_convert_each_result_as_the_reference_does():
    """int8 + int8 wraps in int8 (numba would widen to int64): every op's result is converted to its dtype."""
    g, body = _group(lambda g, a, b: g.add("mul", (g.add("add", (a, b)).id, b)).id, (6,), (6,), dtype=dt.int8)
    grp = loops.from_group(body)
    s = loops.default_schedule(grp)
    a = np.array([100, 120, -128, 5, 0, 127], np.int8)
    b = np.array([100, 10, -1, 3, 7, 1], np.int8)
    with np.errstate(over="ignore"):
        want = interpret(g, a, b)[0]
    np.testing.assert_array_equal(_spec(grp, s, [a, b]), want)
    k = loops.build(loops.lower(s, args=grp.placeholders), generic=True)
    assert "np.int8(" in k.source
    np.testing.assert_array_equal(k(a, b), want)


def test_a_group_with_a_dtype_numba_cannot_compute_is_refused():
    body = Graph("half")
    x = body.add_input("in0", (4,), dt.float16)
    body.set_outputs([body.add("neg", (x.id,)).id])
    with pytest.raises(TypeError, match="generated kernels support"):
        loops.from_group(body)
