"""The graph IR: its printed form, the verifier (use-before-def, dangling references, wrong types, unknown
ops), editing helpers, and the interpreter agreeing with eager execution."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys.framework.graph import Graph, GraphError, evaluate_node, interpret


def mlp_graph(rng):
    g = Graph("mlp")
    x = g.add_input("x", (2, 3))
    w1 = g.add_param("w1", rng.standard_normal((3, 4)).astype(np.float32))
    b1 = g.add_param("b1", rng.standard_normal(4).astype(np.float32))
    h = g.add("matmul", [x.id, w1.id])
    h = g.add("add", [h.id, b1.id])
    h = g.add("relu", [h.id])
    s = g.add("sum", [h.id], {"dim": 1, "keepdim": False})
    g.set_outputs([s.id])
    return g


def test_printer_format():
    g = mlp_graph(np.random.default_rng(0))
    assert str(g) == "\n".join([
        "graph mlp(%0) {",
        '  %0 = input "x" : f32[2,3]',
        '  %1 = param "w1" : f32[3,4]',
        '  %2 = param "b1" : f32[4]',
        "  %3 = matmul(%0, %1) : f32[2,4]",
        "  %4 = add(%3, %2) : f32[2,4]",
        "  %5 = relu(%4) : f32[2,4]",
        "  %6 = sum(%5) {dim=1, keepdim=False} : f32[2]",
        "  return %6",
        "}"])
    assert repr(g) == "<Graph 'mlp': 1 inputs, 4 ops, 1 outputs>"
    assert g.summary() == "graph mlp: 1 inputs, 2 params, 4 ops (add×1, matmul×1, relu×1, sum×1), 1 outputs"


def test_printer_shows_consts_slices_and_dtypes():
    g = Graph("p")
    x = g.add_input("x", (4, 3), aisys.float16)
    c = g.add_const(np.array([1.5, 2.0], np.float64))
    big = g.add_const(np.zeros((3, 3), np.int32))
    sl = g.add("index", [x.id], {"key": (slice(1, None), slice(None, None, 2))})
    cast = g.add("cast", [sl.id], {"dtype": aisys.float32})
    assert g.format_node(c) == "%1 = const [1.5,2. ] : f64[2]"
    assert g.format_node(big) == "%2 = const : i32[3,3]"
    assert g.format_node(sl) == "%3 = index(%0) {key=(1:, ::2)} : f16[3,2]"
    assert g.format_node(cast) == "%4 = cast(%3) {dtype=f32} : f32[3,2]"


def test_inference_at_build_time_raises_teaching_errors():
    g = Graph()
    a, b = g.add_input("a", (3, 4)), g.add_input("b", (5, 2))
    with pytest.raises(aisys.ShapeError, match="inner dimensions differ"):
        g.add("matmul", [a.id, b.id])
    with pytest.raises(GraphError, match="input %99 is not a node"):
        g.add("relu", [99])


def test_verify_accepts_a_good_graph():
    mlp_graph(np.random.default_rng(0)).verify()


def test_verify_catches_use_before_def():
    g = mlp_graph(np.random.default_rng(0))
    ids = list(g.nodes)
    g.nodes = {i: g.nodes[i] for i in [ids[0], ids[1], ids[2], ids[4], ids[3], ids[5], ids[6]]}   # add before matmul
    with pytest.raises(GraphError, match=r"%4 = add: uses %3 before it is defined"):
        g.verify()
    g.toposort()                                                   # toposort repairs the order
    g.verify()


def test_verify_catches_dangling_references():
    g = mlp_graph(np.random.default_rng(0))
    g.remove(3)                                                    # delete the matmul its users still read
    with pytest.raises(GraphError, match=r"node %4 \(add\) reads %3, which does not exist .*a dangling edge"):
        g.verify()


def test_verify_catches_wrong_types():
    g = mlp_graph(np.random.default_rng(0))
    g.nodes[5].shape = (4, 2)
    with pytest.raises(GraphError, match=r"%5 = relu: recorded type f32\[4,2\] but inference gives f32\[2,4\]"):
        g.verify()
    g = mlp_graph(np.random.default_rng(0))
    g.nodes[5].dtype = aisys.float64
    with pytest.raises(GraphError, match="recorded type f64"):
        g.verify()


def test_verify_catches_other_malformed_graphs():
    g = mlp_graph(np.random.default_rng(0))
    g.nodes[5].op = "no_such_op"
    with pytest.raises(GraphError, match="unknown op 'no_such_op'"):
        g.verify()
    g = mlp_graph(np.random.default_rng(0))
    g.nodes[1].value = None
    with pytest.raises(GraphError, match="%1 = param has no value"):
        g.verify()
    g = mlp_graph(np.random.default_rng(0))
    g.outputs = [42]
    with pytest.raises(GraphError, match="graph output %42 does not exist"):
        g.verify()
    g = mlp_graph(np.random.default_rng(0))
    g.inputs.append(1)
    with pytest.raises(GraphError, match="graph input %1 is not an input node"):
        g.verify()


def test_toposort_detects_cycles():
    g = mlp_graph(np.random.default_rng(0))
    g.nodes[3].inputs = (5, 1)                                      # matmul reads relu, which reads matmul
    with pytest.raises(GraphError, match="cycle"):
        g.toposort()


def test_interpret_equals_eager():
    rng = np.random.default_rng(1)
    g = mlp_graph(rng)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    (got,) = interpret(g, x)
    w1, b1 = (aisys.tensor(g.nodes[i].value) for i in (1, 2))
    eager = aisys.relu(aisys.tensor(x) @ w1 + b1).sum(1)
    np.testing.assert_array_equal(got, eager.numpy())
    assert got.dtype == np.float32
    new_w1 = np.ones((3, 4), np.float32)                           # params overridden by name
    (got2,) = interpret(g, aisys.tensor(x), params={"w1": new_w1})
    np.testing.assert_allclose(got2, aisys.relu(aisys.tensor(x) @ aisys.tensor(new_w1) + b1).sum(1).numpy(), rtol=1e-6)
    assert evaluate_node(g.nodes[5], [np.array([[-1.0, 2.0]], np.float32)]).tolist() == [[0.0, 2.0]]


def test_interpret_checks_its_inputs():
    g = mlp_graph(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"takes 1 inputs \(x\), got 2"):
        interpret(g, np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"input 'x' expects shape \(2, 3\), got \(3, 2\)"):
        interpret(g, np.zeros((3, 2)))


def test_editing_helpers():
    g = mlp_graph(np.random.default_rng(0))
    assert g.users()[3] == [4] and g.users()[0] == [3]
    neg = g.add("neg", [3])                                         # dead: nothing reads it
    assert neg.id not in g.live_ids() and 4 in g.live_ids()
    assert g.replace_uses(4, neg.id) == 1                           # relu now reads neg …
    assert g.nodes[5].inputs == (neg.id,) and 4 not in g.live_ids()  # … and the add is dead
    c = g.copy()
    c.nodes[3].attrs["tag"] = 1
    assert "tag" not in g.nodes[3].attrs and c._next == g._next
    assert g.count_ops() == {"add": 1, "matmul": 1, "neg": 1, "relu": 1, "sum": 1}
    assert g.nodes[3].nbytes == 2 * 4 * 4 and g.nodes[3].provenance == (3,) and not g.nodes[3].is_leaf
    assert [n.name for n in g.params()] == ["w1", "b1"]


def test_scalar_expressions_emit_parenthesized_python_and_refuse_bad_definitions():
    from aisys.framework import scalar as S
    from aisys.framework.registry import FusionKind, defop, temporary_op
    a, b, c = S.arg(0), S.arg(1), S.arg(2)
    assert S.text(a - (b - c)) == "a - (b - c)" and S.text((a - b) - c) == "a - b - c"   # no re-association
    assert S.text(S.lt(S.lt(a, b), c)) == "(a < b) < c"                                   # no chained compare
    assert S.text(-(a * b)) == "-(a * b)" and S.text(S.select(S.or_(a > b, S.isnan(a)), a, b + c)) == \
        "a if (a > b or a != a) else (b + c)"
    consts = S.Constants()
    assert S.emit(a * 2 + 1, ["x"], [aisys.int8], aisys.int8, consts, "t") == ["t = np.int8(x * _C0 + _C1)"]
    assert consts.lines() == ["_C0 = np.int8(2)", "_C1 = np.int8(1)"]                     # weak scalars: int8
    with pytest.raises(TypeError, match="cannot use str"):
        S.lift("x")
    with pytest.raises(ValueError, match="describes an elementwise op"):
        defop("bad_scalar_op", infer=lambda x: x, ref=lambda x: x, fusion=FusionKind.OPAQUE, scalar=lambda x: x)
    with pytest.raises(ValueError, match="give a numpy reference"):
        defop("bad_no_ref", infer=lambda x: x)
    with temporary_op("tmp_half", infer=lambda x: x.spec if hasattr(x, "spec") else x, fusion=FusionKind.ELEMENTWISE,
                      scalar=lambda x: x * 0.5) as op:
        np.testing.assert_array_equal(op.ref(np.array([2.0, 4.0])), [1.0, 2.0])    # evaluated from the expression
        assert str(op.lowering) == "vector unit, its scalar expression"
