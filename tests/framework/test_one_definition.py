"""One definition per op (DESIGN.md, "The spine: one op contract").

This file registers two ops that exist nowhere else — an elementwise ``softsign`` and a ``prod``
reduction — and shows that, with no other file edited, each works in every layer: eager forward,
backward and grad-of-grad, tracing, every compiler pass, fused numba kernels, the arena executor, the
eager dispatcher and the chip. If a consumer kept its own op table, this is where it would show.
"""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import chip
from aisys.compiler import PASSES, default_pipeline, run_pass, run_passes
from aisys.compiler.memory import run_in_arena
from aisys.framework import scalar as S
from aisys.framework.dispatch import DISPATCHER
from aisys.framework.graph import Graph, interpret
from aisys.framework.ops._common import elementwise_cost, same_spec
from aisys.framework.registry import (Cost, FusionKind, Reduction, Spec, reduce_dims, sum_accumulator,
                                      temporary_op)
from aisys.framework.shapes import norm_dims, reduced_shape
from aisys.framework.tensor import apply

SOFTSIGN = "softsign_only_here"
PROD = "prod_only_here"


def _softsign_grad(x):
    d = 1.0 + x.abs()
    return 1.0 / (d * d)


def _prod_infer(x, dim=None, keepdim=False):
    dims = norm_dims(PROD, dim, len(x.shape), x.shape)
    return Spec(reduced_shape(tuple(x.shape), dims, keepdim), x.dtype)


def _prod_keep(v, x, dim, keepdim):
    """A reduced value reshaped to broadcast against x again."""
    return v if keepdim else v.reshape(reduced_shape(tuple(x.shape), norm_dims(PROD, dim, x.ndim, x.shape), True))


@pytest.fixture(scope="module")
def ops():
    """Both ops, defined once, in this file only."""
    with temporary_op(
            SOFTSIGN, infer=same_spec(SOFTSIGN, float_only=True), fusion=FusionKind.ELEMENTWISE,
            cost=elementwise_cost(3),
            scalar=lambda x: x / (1.0 + S.absolute(x)),                       # no ref: evaluated from this
            vjp=lambda g, out, x: (g * _softsign_grad(x),),
            jvp=lambda t, out, x: t[0] * _softsign_grad(x)) as softsign, temporary_op(
            PROD, infer=_prod_infer, fusion=FusionKind.REDUCE,
            ref=lambda x, dim=None, keepdim=False: np.prod(x, axis=None if dim is None else norm_dims(PROD, dim, x.ndim),
                                                           keepdims=keepdim),
            reduction=Reduction(combine=lambda acc, x: acc * x, identity=lambda acc_dtype: 1,
                                accumulate=sum_accumulator, dims=reduce_dims),
            cost=lambda ins, out, **a: Cost(ins[0].numel, ins[0].nbytes + out.nbytes),
            vjp=lambda g, out, x, dim=None, keepdim=False: (_prod_keep(g * out, x, dim, keepdim) / x,),
            jvp=lambda t, out, x, dim=None, keepdim=False: (t[0] * _prod_keep(out, x, dim, keepdim) / x).sum(dim, keepdim)
    ) as prod:
        yield softsign, prod


def softsign(x):
    return apply(SOFTSIGN, x)


def prod(x, dim=None, keepdim=False):
    return apply(PROD, x, dim=dim, keepdim=keepdim)


def model(x, w):
    """The new ops between ordinary ones: a matmul, the elementwise op, a broadcast add, the reduction."""
    return prod(softsign(x @ w) + 1.5, dim=1)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (4, 5)).astype(np.float32), rng.uniform(-1, 1, (5, 3)).astype(np.float32)


def test_eager_forward_backward_and_grad_of_grad(ops):
    x = aisys.tensor(np.array([-2.0, -0.5, 0.0, 0.25, 3.0]), dtype=aisys.float64)
    np.testing.assert_allclose(softsign(x).numpy(), x.numpy() / (1 + np.abs(x.numpy())), rtol=1e-15)
    assert aisys.gradcheck(lambda t: softsign(t), [np.array([-1.5, -0.3, 0.4, 2.0])], second_order=True)
    assert aisys.gradcheck(lambda t: prod(t, dim=1), [np.random.default_rng(1).uniform(0.5, 2, (3, 4))],
                           second_order=True)
    d2 = aisys.grad(aisys.grad(lambda t: softsign(t).sum()))          # grad-of-grad, recorded with ops
    v = 0.7
    np.testing.assert_allclose(d2(aisys.tensor(v, dtype=aisys.float64)).item(), -2 / (1 + v) ** 3, rtol=1e-12)
    xs, w = (aisys.tensor(a, requires_grad=True) for a in _data())
    model(xs, w).sum().backward()                                     # the plain (fast-path) backward
    assert xs.grad.shape == (4, 5) and np.isfinite(w.grad.numpy()).all()


def test_the_scalar_expression_is_its_reference(ops):
    softsign_op, _ = ops
    x = np.linspace(-3, 3, 13)
    e = softsign_op.scalar_expr(1)
    assert S.text(e) == "a / (1.0 + abs(a))"
    np.testing.assert_array_equal(softsign_op.ref(x), S.evaluate(e, [x]))


def test_trace_every_pass_the_pipeline_and_the_arena(ops):
    x, w = _data()
    graph = aisys.trace(model, x, w)
    assert {SOFTSIGN, PROD} <= set(graph.count_ops())
    want = interpret(graph, x, w)
    np.testing.assert_allclose(want[0], model(aisys.tensor(x), aisys.tensor(w)).numpy(), rtol=1e-6)
    for name, p in PASSES.items():                                    # every pass accepts and keeps the values
        res = run_pass(p, graph)
        np.testing.assert_allclose(interpret(res.graph, x, w)[0], want[0], rtol=1e-5, err_msg=name)
    log = run_passes(graph, default_pipeline(layout=True))
    fused = [(n.attrs["kind"], n.attrs["ops"]) for n in log.graph.op_nodes if n.op == "fused"]
    assert fused == [("reduce", (SOFTSIGN, "add", PROD))]            # fused by what the registry says of them
    outs, trace = run_in_arena(log.graph, x, w)                       # the arena executor runs the fused graph
    np.testing.assert_allclose(outs[0], want[0], rtol=1e-5)
    assert len(trace.events_in("cpu")) == len(log.graph.op_nodes)


def test_constant_folding_and_cse_see_the_new_op(ops):
    g = Graph("consts")
    x = g.add_input("x", (3,), aisys.float32)
    c = g.add_const(np.array([0.5, -1.0, 2.0], np.float32))
    a, b = g.add(SOFTSIGN, [c.id]), g.add(SOFTSIGN, [x.id])
    b2 = g.add(SOFTSIGN, [x.id])                                      # the same value twice
    g.set_outputs([g.add("add", [g.add("add", [a.id, b.id]).id, b2.id]).id])
    folded = run_pass(PASSES["fold_constants"], g).graph
    assert SOFTSIGN in folded.count_ops() and folded.count_ops()[SOFTSIGN] == 2     # the const one is folded
    assert run_pass(PASSES["cse"], g).graph.count_ops()[SOFTSIGN] == 2              # the duplicate merged


def test_fused_numba_kernels_compute_the_new_ops(ops):
    x, w = _data(3)
    compiled = aisys.compile(model, x, w)
    kinds = {n.attrs["kind"]: n.attrs["ops"] for n in compiled.graph.op_nodes if n.op == "fused"}
    assert SOFTSIGN in sum(kinds.values(), ())
    src = "\n".join(compiled.kernels.values())
    assert "abs(" in src and " / (" in src                           # the expression, emitted
    assert PROD in src                                                # the reduce kernel names its root
    np.testing.assert_allclose(compiled(x, w).numpy(), compiled.reference(x, w)[0], rtol=1e-5)


def test_the_layout_pass_moves_the_new_op_into_nhwc(ops):
    g = Graph("convnet")
    x = g.add_input("x", (1, 2, 6, 6), aisys.float32)
    w1 = g.add_param("c1.weight", np.random.default_rng(0).standard_normal((3, 2, 3, 3)).astype(np.float32))
    w2 = g.add_param("c2.weight", np.random.default_rng(1).standard_normal((2, 3, 3, 3)).astype(np.float32))
    conv = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    h = g.add(SOFTSIGN, [g.add("conv2d", [x.id, w1.id], conv).id])
    g.set_outputs([g.add("conv2d", [h.id, w2.id], conv).id])
    res = run_pass(PASSES["to_nhwc"], g)
    node = next(n for n in res.graph.op_nodes if n.op == SOFTSIGN)
    assert node.shape == (1, 6, 6, 3)                                 # now runs on channels-last data
    xv = np.random.default_rng(2).standard_normal((1, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(interpret(res.graph, xv)[0], interpret(g, xv)[0], rtol=1e-4, atol=1e-5)


def test_the_chip_lowers_the_new_ops_from_their_definitions(ops):
    x, w = _data()
    layers = chip.graph_to_layers(aisys.trace(model, x, w))
    assert [type(layer).__name__ for layer in layers] == ["Gemm", "Elementwise", "Elementwise", "Elementwise"]
    soft, red = layers[1], layers[3]
    assert soft.op == SOFTSIGN and soft.chain == ("abs", "add", "div")    # its scalar expression's instructions
    assert red.name.endswith(PROD) and red.op == "mul" and red.elements == 12   # its combiner, over what it reads
    assert (soft.flops, red.flops) == (3 * 12, 12)                       # the registry's cost
    res = chip.simulate(chip.lower_graph(aisys.trace(model, x, w), "davinci"))
    assert {soft.name, red.name} <= {i.layer for i in res.program.instructions if i.kind == "vector"}
    compiled = aisys.compile(model, x, w)                                # and the fused form: one vector layer
    (fused,) = [layer for layer in chip.graph_to_layers(compiled.graph) if getattr(layer, "op", "") == "fused"]
    assert fused.chain == ("abs", "add", "div", "add", "mul")


def test_a_kernel_registered_for_the_new_op_runs_eagerly(ops):
    calls = []

    def softsign_kernel(a):
        calls.append(a.shape)
        return a / (1 + np.abs(a))

    with DISPATCHER.registered(SOFTSIGN, softsign_kernel, dtype="float32", name="softsign_f32"):
        softsign(aisys.tensor(np.ones((2, 2), np.float32)))
    assert calls == [(2, 2)]
