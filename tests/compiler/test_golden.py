"""Golden tests: each pass on a small hand-written graph, exact text before and after, and exactly
which rule removed and added which nodes (tests/compiler/graphs.py builds the graphs)."""
import numpy as np
import pytest

from aisys.compiler import Pass, cse, dce, fold_constants, fold_conv_bn, fuse, run_pass, run_passes, simplify, to_nhwc
from aisys.compiler.testing import assert_same_outputs, random_inputs
from aisys.framework.graph import Graph, interpret

from .graphs import cse_graph, fold_graph, fuse_graph, residual_block, simplify_graph


def _records(res):
    return [(w.rule, w.removed, w.added) for w in res.rewrites]


def _same_values(before, after, seed=0):
    xs = random_inputs(before, seed)
    assert_same_outputs(interpret(after, *xs), interpret(before, *xs), rtol=1e-5, atol=1e-5)


def test_fold_constants_golden():
    g = fold_graph()
    res = run_pass(fold_constants, g)
    assert _records(res) == [("fold_constants", (3, 2), (10,)), ("fold_constants", (4, 10), (11,))]
    assert [str(d) for d in res.rejected] == [
        "[fold_constants] cannot fold %7 = exp: the result f32[300,300] has 90000 elements, over the cap of 65536; "
        "storing it would bloat the model more than computing it costs",
        "[fold_constants] cannot fold %8 = dropout: dropout is impure: its value must be produced at run time"]
    assert str(res.graph) == """graph fold(%0) {
  %0 = input "x" : f32[2,3]
  %1 = const 2. : f32[]
  %11 = const -6. : f32[]
  %5 = add(%0, %11) : f32[2,3]
  %6 = const : f32[300,300]
  %7 = exp(%6) : f32[300,300]
  %8 = dropout(%1) {p=0.5, seed=1} : f32[]
  %9 = mul(%5, %8) : f32[2,3]
  return %9
}"""
    assert res.graph.nodes[11].provenance == (4,)          # the folded value remembers where it came from


@pytest.mark.parametrize("n,folded", [(65_535, True), (65_536, True), (65_537, False)])
def test_fold_cap_is_inclusive_at_exactly_65536_elements(n, folded):
    """The documented cap: a result of at most DEFAULT_MAX_ELEMENTS = 65,536 elements is folded, one more is
    not (a seeded off-by-one, `>=` for `>`, once survived every test)."""
    from aisys.compiler.passes.fold_constants import DEFAULT_MAX_ELEMENTS
    assert DEFAULT_MAX_ELEMENTS == 65_536
    g = Graph("cap")
    x = g.add_input("x", (n,))
    c = g.add_const(np.ones(n, np.float32))
    g.set_outputs([g.add("add", (x.id, g.add("neg", (c.id,)).id)).id])
    res = run_pass(fold_constants, g)
    assert [n_.op for n_ in res.graph.op_nodes] == (["add"] if folded else ["neg", "add"])
    assert bool(res.rejected) is not folded


def test_fold_then_dce_golden():
    log = run_passes(fold_graph(), [fold_constants, dce])
    assert _records(log[1]) == [("dce", (7, 6), ())]
    assert str(log.graph) == """graph fold(%0) {
  %0 = input "x" : f32[2,3]
  %1 = const 2. : f32[]
  %11 = const -6. : f32[]
  %5 = add(%0, %11) : f32[2,3]
  %8 = dropout(%1) {p=0.5, seed=1} : f32[]
  %9 = mul(%5, %8) : f32[2,3]
  return %9
}"""
    assert (log[0].metrics.nodes, log[1].metrics.nodes) == (4, 3)


def test_simplify_golden():
    g = simplify_graph()
    res = run_pass(simplify, g)
    assert _records(res) == [("add_zero", (5,), ()), ("mul_one", (6, 3), ()), ("neg_neg", (8, 7), ()),
                             ("permute_permute", (10, 9), ()), ("reshape_reshape", (12, 11), (20,)),
                             ("cast_roundtrip", (14, 13), ()), ("pow_two", (15, 4), (21,)),
                             ("mul_zero", (19, 18), (22, 23))]
    assert [d.rule for d in res.rejected] == ["mul_zero", "sub_self"]
    assert "NaN·0 = inf·0 = NaN (IEEE 754)" in res.rejected[0].reason
    assert "inf − inf = NaN" in res.rejected[1].reason
    assert str(res.graph) == """graph simp(%0, %1) {
  %0 = input "x" : f32[2,3]
  %1 = input "i" : i64[2,3]
  %2 = const 0. : f32[]
  %20 = reshape(%0) {shape=(3, 2)} : f32[3,2]
  %21 = mul(%20, %20) : f32[3,2]
  %16 = mul(%21, %2) : f32[3,2]
  %17 = sub(%0, %0) : f32[2,3]
  %22 = const 0 : i64[]
  %23 = broadcast_to(%22) {shape=(2, 3)} : i64[2,3]
  return %16, %17, %23
}"""
    _same_values(g, res.graph)


def test_simplify_assume_finite_removes_the_float_zero_rules():
    res = run_pass(Pass(simplify, options={"assume_finite": True}), simplify_graph())
    assert not res.rejected
    assert res.graph.count_ops() == {"broadcast_to": 3}


def test_simplify_rule_sources_point_at_the_rule_definitions():
    import inspect
    import sys

    mod = sys.modules["aisys.compiler.passes.simplify"]
    res = run_pass(simplify, simplify_graph())
    lines = inspect.getsource(mod).splitlines()
    for w in res.rewrites:
        line = int(w.location.rsplit(":", 1)[1])
        assert w.location.startswith("aisys/compiler/passes/simplify.py:")
        assert lines[line - 1].startswith(f'@rule("{w.rule}"')      # the rule's own definition


def test_cse_golden():
    g = cse_graph()
    res = run_pass(cse, g)
    assert _records(res) == [("cse", (3,), ()), ("cse", (5,), ()), ("cse", (7,), ()), ("cse", (9,), ()),
                             ("cse", (13,), ())]
    assert [str(d) for d in res.rejected] == [
        "[cse] cannot merge %11 into %10: dropout is impure (OpDef.pure is False): two calls are two random draws, "
        "so they are never merged"]
    assert str(res.graph) == """graph cse(%0, %1) {
  %0 = input "x" : f32[4]
  %1 = input "y" : f32[4]
  %2 = add(%0, %1) : f32[4]
  %4 = exp(%2) : f32[4]
  %6 = const 2. : f32[]
  %8 = mul(%4, %6) : f32[4]
  %10 = dropout(%8) {p=0.5, seed=3} : f32[4]
  %11 = dropout(%8) {p=0.5, seed=3} : f32[4]
  %12 = index(%0) {key=(array[2],)} : f32[2]
  %14 = index(%0) {key=(array[2],)} : f32[2]
  %15 = add(%10, %11) : f32[4]
  return %15, %12, %12, %14
}"""
    _same_values(g, res.graph)


def test_fuse_golden():
    g = fuse_graph()
    res = run_pass(fuse, g)
    assert _records(res) == [("fuse", (12, 11), (17,)), ("fuse", (10, 9, 8, 7, 6), (18,)), ("fuse", (5, 4, 3), (19,))]
    assert [w.note for w in res.rewrites] == [
        "elementwise group abs → sqrt (%11, %12) → fused %17",
        "reduce group exp → tanh → neg → mul → sum (%6, %7, %8, %9, %10) → fused %18",
        "epilogue group matmul → add → relu (%3, %4, %5) → fused %19"]
    assert [str(d) for d in res.rejected] == [
        "[fuse] cannot fuse %15 (reshape) into %16 (neg): %15 = reshape is injective: no fused-kernel template for "
        "it, so the chain breaks here",
        "[fuse] cannot fuse %13 (softmax) into %14 (sigmoid): %13 = softmax is opaque: no fused-kernel template for "
        "it, so the chain breaks here",
        "[fuse] cannot fuse %10 (sum) into %11 (abs): %10 = sum is a reduction: its result is complete only after "
        "every element is seen, so it ends a group instead of joining %11's"]
    # exp feeds both tanh and neg: two consumers, but both inside the group, so it fuses
    assert "fuse %6 (exp) into %7 (tanh): exp is elementwise, with a single consumer" in [
        f"{d.candidate}: {d.reason}" for d in res.accepted]
    assert len(res.accepted) == 7
    assert str(res.graph) == """graph fuse(%0) {
  %0 = input "x" : f32[8,16]
  %1 = param "w" : f32[16,4]
  %2 = param "b" : f32[4]
  %13 = softmax(%0) {dim=1} : f32[8,16]
  %14 = sigmoid(%13) : f32[8,16]
  %15 = reshape(%14) {shape=(128,)} : f32[128]
  %16 = neg(%15) : f32[128]
  %18 = fused(%0) {kind='reduce', ops=('exp', 'tanh', 'neg', 'mul', 'sum')} : f32[8]
  %17 = fused(%18) {kind='elementwise', ops=('abs', 'sqrt')} : f32[8]
  %19 = fused(%0, %1, %2) {kind='epilogue', ops=('matmul', 'add', 'relu')} : f32[8,4]
  return %19, %17, %16
}"""
    assert res.graph.nodes[18].attrs["_body"].count_ops() == {"exp": 1, "mul": 1, "neg": 1, "sum": 1, "tanh": 1}
    assert (res.metrics_before.kernels, res.metrics.kernels) == (13, 6)
    _same_values(g, res.graph)


def test_fuse_rejects_producers_with_outside_consumers_and_graph_outputs():
    from aisys.framework.graph import Graph
    g = Graph("shared")
    x = g.add_input("x", (5,))
    a = g.add("exp", (x.id,))
    b = g.add("neg", (a.id,))
    c = g.add("tanh", (a.id,))
    d = g.add("add", (b.id, c.id))
    e = g.add("sin", (d.id,))
    g.set_outputs([e.id, a.id])
    res = run_pass(fuse, g)
    assert [str(d) for d in res.rejected] == [
        "[fuse] cannot fuse %1 (exp) into %2 (neg): %1 is a graph output: its value must be written to memory anyway",
        "[fuse] cannot fuse %1 (exp) into %3 (tanh): %1 is a graph output: its value must be written to memory anyway"]
    assert res.graph.count_ops() == {"exp": 1, "fused": 1}
    g.set_outputs([e.id])
    h = g.add("cos", (a.id,))
    g.set_outputs([e.id, h.id])
    res = run_pass(fuse, g)
    assert any("%1 has 3 consumers (%2, %3, %6); fusing would recompute it or need a second output" in str(d)
               for d in res.rejected)


def test_fold_conv_bn_golden():
    g = residual_block()
    res = run_pass(fold_conv_bn, g)
    assert _records(res) == [("fold_conv_bn", (7, 6, 5, 4, 3, 2, 1), (18, 19, 20)),
                             ("fold_conv_bn", (15, 14, 13, 12, 11, 10, 9), (21, 22, 23))]
    assert str(res.graph) == """graph resblock(%0) {
  %0 = input "x" : f32[1,4,5,5]
  %18 = param "conv1.weight.bn_folded" : f32[4,4,3,3]
  %19 = param "conv1.bias.bn_folded" : f32[4]
  %20 = conv2d(%0, %18, %19) {stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1} : f32[1,4,5,5]
  %8 = relu(%20) : f32[1,4,5,5]
  %21 = param "conv2.weight.bn_folded" : f32[4,4,3,3]
  %22 = param "conv2.bias.bn_folded" : f32[4]
  %23 = conv2d(%8, %21, %22) {stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1} : f32[1,4,5,5]
  %16 = add(%23, %0) : f32[1,4,5,5]
  %17 = relu(%16) : f32[1,4,5,5]
  return %17
}"""
    assert res.graph.nodes[20].provenance == (2, 7)
    _same_values(g, res.graph)


def test_layout_pass_golden_residual_block():
    log = run_passes(residual_block(), [fold_conv_bn, to_nhwc])
    res = log[-1]
    assert [w.note for w in res.rewrites] == [
        "conv2d %20 → conv2d_nhwc %26 between transposes",
        "conv2d %23 → conv2d_nhwc %30 between transposes",
        "relu %8 now runs on NHWC data (%32)",
        "permute %33 then %28 cancel out",
        "add %16 now runs on NHWC data (%34)",
        "relu %17 now runs on NHWC data (%36)"]
    assert str(res.graph) == """graph resblock(%0) {
  %0 = input "x" : f32[1,4,5,5]
  %19 = param "conv1.bias.bn_folded" : f32[4]
  %22 = param "conv2.bias.bn_folded" : f32[4]
  %24 = permute(%0) {dims=(0, 2, 3, 1)} : f32[1,5,5,4]
  %25 = param "conv1.weight.bn_folded.ohwi" : f32[4,3,3,4]
  %26 = conv2d_nhwc(%24, %25, %19) {stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1} : f32[1,5,5,4]
  %29 = param "conv2.weight.bn_folded.ohwi" : f32[4,3,3,4]
  %32 = relu(%26) : f32[1,5,5,4]
  %30 = conv2d_nhwc(%32, %29, %22) {stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1} : f32[1,5,5,4]
  %34 = add(%30, %24) : f32[1,5,5,4]
  %36 = relu(%34) : f32[1,5,5,4]
  %37 = permute(%36) {dims=(0, 3, 1, 2)} : f32[1,4,5,5]
  return %37
}"""
    # exactly one transpose in and one out: the residual input reuses the NHWC copy of x
    assert res.graph.count_ops()["permute"] == 2
    _same_values(log.initial, res.graph)


def test_layout_pass_rejects_sinking_through_layout_dependent_ops():
    from aisys.framework.graph import Graph
    g = Graph("pool")
    x = g.add_input("x", (1, 2, 4, 4))
    w = g.add_param("w", np.ones((2, 2, 1, 1), np.float32))
    c = g.add("conv2d", (x.id, w.id), dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1))
    p = g.add("max_pool2d", (c.id,), dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)))
    g.set_outputs([p.id])
    res = run_pass(to_nhwc, g)
    assert [str(d) for d in res.rejected] == [
        "[to_nhwc] cannot sink permute %7 below %3 (max_pool2d): max_pool2d is not elementwise: it depends on the "
        "layout"]
    _same_values(g, res.graph)
