"""aisys.script: its stages (tokens, syntax tree, semantic pass, lowering) and the errors they teach."""
import inspect

import numpy as np
import pytest

import aisys
from aisys.framework.graph import interpret
from aisys.frontend import ScriptError, script

from . import script_programs as P
from .models import MLP, W_h, W_x, rnn_cell, rnn_inputs


def line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, l in enumerate(lines) if text in l)


def raises_at(fn, text, kind, *args, match=""):
    with pytest.raises(ScriptError, match=match) as info:
        script(fn, *args).graph
    err = info.value
    assert err.kind == kind, str(err)
    assert err.where == f"{inspect.getsourcefile(fn)}:{line_of(fn, text)}", str(err)
    assert text.strip() in str(err)              # the message quotes the offending line
    return err


# ---- stage 1 and 2 -------------------------------------------------------------------------------------
def test_tokens_carry_file_positions():
    toks = script.tokens(rnn_cell)
    first = line_of(rnn_cell, "def rnn_cell")
    assert [(t.kind, t.text) for t in toks[:4]] == [("NAME", "def"), ("NAME", "rnn_cell"), ("OP", "("), ("NAME", "x")]
    assert toks[0].line == first and toks[0].col == 0
    if_tok = next(t for t in toks if t.text == "if")
    assert if_tok.line == line_of(rnn_cell, "if h2h.sum() > 0") and if_tok.kind == "NAME"
    assert not any(t.kind == "COMMENT" for t in toks)
    assert "NAME     'def'" in script.format_tokens(toks, 3)


def test_syntax_tree_has_file_lines_and_dump():
    tree = script.parse(rnn_cell)
    assert tree.name == "rnn_cell" and tree.lineno == line_of(rnn_cell, "def rnn_cell")
    text = script.dump(rnn_cell)
    assert text.startswith("FunctionDef(") and "If(" in text and "Compare(" in text and "Gt()" in text


# ---- stage 3: semantic pass ------------------------------------------------------------------------------
def test_resolve_names_their_meaning():
    names = script.resolve(P.static_control)
    kinds = {n: info.kind for n, info in names.items()}
    assert kinds == {"x": "parameter", "y": "local", "range": "builtin", "i": "local", "k": "local",
                     "helper_scale": "function"}
    names = script.resolve(rnn_cell)
    assert names["W_h"].kind == "global tensor" and names["W_h"].detail == "f32[4, 4]"
    assert script.resolve(P.doubling_loop)["aisys"].kind == "module"


def test_report_lists_types_of_every_value():
    x, h = rnn_inputs()
    rep = script.check(rnn_cell, x, h)
    rows = [(r.what, r.type) for r in rep.types]
    assert ("h2h", "f32[4,1]") in rows and ("h2h (cond)", "f32[4,1]") in rows and ("next_h", "f32[4,1]") in rows
    assert "global tensor f32[4, 4]" in str(rep)


@pytest.mark.parametrize("fn, text, kind, match", [
    (P.uses_unknown, "return y + undefined_thing", "unknown name", "'undefined_thing' is not defined"),
    (P.uses_listcomp, "ys = [x * i", "unsupported", "ListComp"),
    (P.uses_with, "with aisys.no_grad()", "unsupported", "With"),
    (P.uses_break, "        break", "unsupported", "Break"),
])
def test_semantic_errors_name_the_line(fn, text, kind, match):
    err = raises_at(fn, text, kind, aisys.ones(1, 3), match=match)
    assert err.hint


def test_unknown_name_suggests_a_close_one():
    def typo(x):
        return x * sclae  # noqa: F821
    sclae_like = 1  # noqa: F841
    with pytest.raises(ScriptError, match="not defined") as info:
        script(typo)
    assert info.value.kind == "unknown name"


@pytest.mark.parametrize("fn, text, kind, match", [
    (P.shape_mismatch, "return h @ W", "shape", r"matmul.*\(1, 4\).*\(3, 4\)"),
    (P.branches_disagree, "if x.sum() > 0", "shape", r"disagree on 'y': then gives f32\[1,4\], else gives f32\[1,3\]"),
    (P.one_branch_only, "return y", "control flow", "only in the then-branch"),
    (P.vector_predicate, "if x > 0", "shape", "one value"),
    (P.reads_item, "return x * x.sum().item()", "unsupported", r"\.item\(\)"),
    (P.python_counter, "while x.sum() < 100.0", "control flow", r"(?s)'n' is a Python int.*aisys.tensor\(0\)"),
    (P.calls_branchy_helper, "return helper_with_branch(x)", "control flow", r"Python bool at .*script_programs.py:14"),
    (P.float_of_tensor, "return x * float(x.sum())", "unsupported", "float"),
    (P.returns_number, "return 3", "type", "Python int"),
    (P.python_numbers_in_conditional_expression, "return x * (2.0 if", "control flow", "no single compile-time value"),
    (P.mixed_python_values, "return x * k", "control flow", r"(?s)'k' may be undefined.*different Python values"),
])
def test_lowering_errors_name_the_line(fn, text, kind, match):
    raises_at(fn, text, kind, aisys.ones(1, 3), match=match)


@pytest.mark.parametrize("fn, text, match", [
    (P.prints_a_value, 'print("y is", y)', "print\\(...\\) would run once, while compiling"),
    (P.logs_through_a_helper, "log_value(y)", "log_value\\(...\\) computes no graph value and returns nothing"),
])
def test_calls_with_side_effects_are_refused_not_dropped(fn, text, match):
    """A print (or any call that only has an effect) used to vanish from the compiled function silently."""
    raises_at(fn, text, "side effect", aisys.ones(1, 3), match=match)


def test_compile_time_list_bookkeeping_is_allowed():
    sf = script(P.collects_in_a_list, aisys.ones(1, 2))
    np.testing.assert_allclose(sf(aisys.tensor([[1.0, 2.0]])).numpy(), [[0, 0, 1, 2, 2, 4]])


def test_a_runaway_while_loop_stops_at_the_cap_naming_its_line():
    from aisys.frontend import set_max_while_iterations, while_loop
    sf = script(P.never_ends, aisys.ones(2))
    prev = set_max_while_iterations(50)
    try:
        with pytest.raises(RuntimeError, match=r"while_loop at .*script_programs.py:\d+: the condition still holds "
                                               r"after 50 iterations.*set_max_while_iterations"):
            sf(aisys.ones(2))
        assert sf(-aisys.ones(2)).tolist() == [-1.0, -1.0]           # a loop that ends is unaffected
        with pytest.raises(RuntimeError, match=r"test_script.py:\d+: the condition still holds after 7 iterations"):
            while_loop(lambda c: c.sum() > 0.0, lambda c: (c + 1.0,), (aisys.ones(1),), max_iterations=7)
    finally:
        set_max_while_iterations(prev)
    with pytest.raises(ValueError, match="positive int"):
        set_max_while_iterations(0)


def test_missing_spec_says_how_to_give_one():
    with pytest.raises(ScriptError, match='annotate it') as info:
        script(P.shape_mismatch).graph
    assert info.value.kind == "type"
    with pytest.raises(ValueError, match="f32\\[1,4\\]"):
        script(P.shape_mismatch, "float[1,3]")
    with pytest.raises(TypeError, match="lambda"):
        script(lambda x: x)


# ---- lowering -----------------------------------------------------------------------------------------------
def test_rnn_cell_lowers_the_tensor_if_to_cond():
    x, h = rnn_inputs()
    g = script(rnn_cell, x, h).graph
    g.verify()
    (c,) = [n for n in g.op_nodes if n.op == "cond"]
    assert c.attrs["var"] == "h2h" and c.source.endswith(f":{line_of(rnn_cell, 'if h2h.sum() > 0')}")
    then_ops = [n.op for n in c.attrs["then_graph"].op_nodes]
    assert then_ops == ["permute", "matmul", "add"] and c.attrs["else_graph"].op_nodes == []
    assert [n.name for n in g.params()] == ["W_h", "W_x"]
    for hh in (h, -h):                                         # both branches
        np.testing.assert_allclose(interpret(g, x, hh)[0], rnn_cell(x, hh).numpy(), rtol=1e-6)


def test_static_control_flow_is_folded_and_unrolled():
    g = script(P.static_control, aisys.ones(2, 3)).graph
    assert g.count_ops() == {"add": 1, "mul": 5}
    g5 = script(P.static_control, aisys.ones(5, 3)).graph    # the other Python branch
    assert g5.count_ops() == {"mul": 5, "sub": 1}
    x = aisys.randn(2, 3)
    np.testing.assert_allclose(interpret(g, x)[0], P.static_control(x).numpy(), rtol=1e-6)


@pytest.mark.parametrize("start", [0.5, 3.0, 60.0])
def test_tensor_while_lowers_to_while_loop(start):
    x = aisys.full((2,), start)
    sf = script(P.doubling_loop, aisys.ones(2))
    assert sf.graph.count_ops() == {"while_loop": 2}
    y, steps = sf(x)
    ey, esteps = P.doubling_loop(x)
    np.testing.assert_allclose(y.numpy(), ey.numpy())
    assert steps.item() == esteps.item()


def test_early_return_and_nested_ifs_and_conditional_expressions():
    for fn in (P.early_return, P.nested, P.conditional_expression):
        sf = script(fn, aisys.ones(3))
        assert "cond" in sf.graph.count_ops(), fn.__name__
        for v in ([2.0, 1.0, 0.5], [0.5, 1.0, 2.0], [-1.0, -2.0, 0.5], [-3.0, 1.0, 1.0]):
            x = aisys.tensor(v)
            np.testing.assert_allclose(sf(x).numpy(), fn(x).numpy(), rtol=1e-6, err_msg=f"{fn.__name__} {v}")
    assert script(P.nested, aisys.ones(3)).graph.count_ops()["cond"] == 1   # the inner cond lives in a branch


def test_python_number_in_one_branch_becomes_a_constant():
    sf = script(P.python_number_branch, aisys.ones(2))
    np.testing.assert_allclose(sf(aisys.tensor([-1.0, -2.0])).numpy(), [0.0, 0.0])
    np.testing.assert_allclose(sf(aisys.tensor([1.0, 2.0])).numpy(), [2.0, 4.0])


def test_annotations_give_specs_and_the_cache_specializes():
    sf = script(P.annotated)
    g = sf.graph
    assert [(g[i].name, g[i].type_str()) for i in g.inputs] == [("x", "f32[2,3]"), ("scale", "f32[]")]
    out = sf(aisys.ones(4, 3), aisys.tensor(2.0))                # a new shape compiles a new graph
    assert out.numpy().tolist() == [6.0] * 4 and len(sf._cache) == 2


def test_bound_method_of_a_module_gets_dotted_parameter_names():
    model = MLP()
    x = aisys.randn(5, 6)
    sf = script(model.forward, x)
    assert [n.name for n in sf.graph.params()] == ["fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias"]
    np.testing.assert_allclose(sf(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_scripted_function_is_differentiable_in_both_branches():
    x, h = rnn_inputs()
    sf = script(rnn_cell, x, h)
    for hh in (h, -h):
        a = aisys.tensor(hh.numpy(), requires_grad=True)
        sf(x, a).sum().backward()
        b = aisys.tensor(hh.numpy(), requires_grad=True)
        rnn_cell(x, b).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5)


def test_tracing_a_scripted_function_keeps_the_cond():
    x, h = rnn_inputs()
    sf = script(rnn_cell, x, h)
    g = aisys.trace(lambda x, h: sf(x, h) * 2.0, x, h)
    assert g.warnings == [] and g.count_ops()["cond"] == 1
    for hh in (h, -h):
        np.testing.assert_allclose(interpret(g, x, hh)[0], 2 * rnn_cell(x, hh).numpy(), rtol=1e-6)


def test_scripting_leaves_no_observer_and_no_tags():
    from aisys.framework.tensor import _Mode
    x, h = rnn_inputs()
    script(rnn_cell, x, h)
    assert _Mode.observers == [] and W_h._trace is None and W_x._trace is None
    with pytest.raises(ScriptError):
        script(P.shape_mismatch, aisys.ones(1, 3))
    assert _Mode.observers == [] and P.W._trace is None


def test_calls_of_scripted_functions_are_inlined_with_their_control_flow():
    x, h = rnn_inputs()
    P.SCRIPTED_CELL = script(rnn_cell)
    try:
        sf = script(P.two_rnn_steps, x, h)
        assert sf.graph.count_ops()["cond"] == 2 and [n.name for n in sf.graph.params()] == ["W_h", "W_x"]
        for hh in (h, -h, aisys.tensor([[0.3, -0.2, 0.1, -0.4]])):
            eager = rnn_cell(x, rnn_cell(x, hh).T).numpy()
            np.testing.assert_allclose(interpret(sf.graph, x, hh)[0], eager, rtol=1e-6)
    finally:
        P.SCRIPTED_CELL = None
