"""aisys.trace: recorded ops, leaves, sources, joint training-step graphs, baked branches."""

import numpy as np
import pytest

import aisys
from aisys.framework.graph import interpret
from aisys.framework.tensor import _Mode

from .models import LeNetish, MLP, TinyModule, W_h, W_x, rnn_cell, rnn_inputs, sgd_step


def test_mlp_trace_records_ops_params_and_matches_eager():
    model = MLP()
    x = aisys.randn(5, 6)
    g = aisys.trace(model, x)
    assert [n.op for n in g.op_nodes] == ["matmul", "add", "relu", "matmul", "add"]
    assert [n.name for n in g.params()] == ["fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias"]
    assert [g[i].name for i in g.inputs] == ["x"]
    g.verify()
    np.testing.assert_allclose(interpret(g, x)[0], model(x).numpy(), rtol=1e-6)
    # the graph is reusable: another input of the same shape gives the eager answer too
    x2 = aisys.randn(5, 6)
    np.testing.assert_allclose(interpret(g, x2)[0], model(x2).numpy(), rtol=1e-6)
    assert not g.warnings and _Mode.observers == []


def test_lenet_trace_matches_eager():
    model = LeNetish()
    x = aisys.randn(2, 1, 10, 10)
    g = aisys.trace(model, x)
    assert g.count_ops() == {"conv2d": 2, "matmul": 1, "max_pool2d": 1, "relu": 2, "reshape": 1}
    g.verify()
    np.testing.assert_allclose(interpret(g, x)[0], model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_each_node_records_the_user_source_line():
    def f(x):
        return (x * 2.0).exp()          # this line
    g = aisys.trace(f, aisys.ones(3))
    import inspect
    line = inspect.getsourcelines(f)[1] + 1
    exp = next(n for n in g.op_nodes if n.op == "exp")
    assert exp.source.endswith(f"test_trace.py:{line}")
    assert g.nodes[g.inputs[0]].source.endswith("test_trace.py:" + str(inspect.currentframe().f_lineno - 5))


def test_leaves_python_scalars_consts_and_referenced_tensors_params():
    W = aisys.ones(3, requires_grad=True)
    frozen = aisys.full((3,), 2.0)
    g = aisys.trace(lambda x: x * W + frozen + 1.0, aisys.ones(3))
    kinds = [(n.op, n.name) for n in g if n.is_leaf]
    assert kinds == [("input", "x"), ("param", "W"), ("param", "frozen"), ("const", "")]
    g2 = aisys.trace(lambda x: x * W + frozen + 1.0, aisys.ones(3), params={})   # nothing named
    assert [(n.op, n.name) for n in g2 if n.is_leaf] == [("input", "x"), ("param", "p0"), ("const", ""), ("const", "")]
    assert g2.nodes[list(g2.nodes)[3]].value.tolist() == [2.0, 2.0, 2.0]


def test_joint_training_step_graph_reproduces_the_eager_update():
    model = MLP()
    x, target = aisys.randn(5, 6), aisys.randn(5, 3)

    def step(x, target):
        loss = ((model(x) - target) ** 2.0).mean()
        loss.backward()
        sgd_step(model.parameters(), lr=0.05)
        return loss

    before = {k: v.numpy().copy() for k, v in model.named_parameters()}
    g = aisys.trace(step, x, target)
    # tracing is a dry run: parameters and grads are untouched
    for k, v in model.named_parameters():
        np.testing.assert_array_equal(v.numpy(), before[k])
        assert v.grad is None
    assert list(g.updates) == ["fc0.weight", "fc0.bias", "fc1.weight", "fc1.bias"]
    assert g.output_names == ["out", "update fc0.weight", "update fc0.bias", "update fc1.weight", "update fc1.bias"]
    g.verify()
    ops = g.count_ops()
    assert ops["matmul"] >= 2 + 3                    # forward + VJPs (backward half written by autodiff)
    outs = interpret(g, x, target)
    loss = step(x, target)                            # now the real, eager step
    np.testing.assert_allclose(outs[0], loss.numpy(), rtol=1e-6)
    for k, v in model.named_parameters():
        np.testing.assert_allclose(outs[g.outputs.index(g.updates[k])], v.numpy(), rtol=1e-5, atol=1e-7)
        assert not np.allclose(v.numpy(), before[k]) or k.endswith("bias")


def test_two_steps_in_one_trace_read_the_updated_parameters():
    W = aisys.tensor([[0.5, -1.0], [2.0, 0.1]], requires_grad=True)
    x = aisys.tensor([[1.0, 2.0]])

    def two_steps(x):
        for _ in range(2):
            (x @ W).sum().backward()
            sgd_step([W], lr=0.5)
        return x @ W
    g = aisys.trace(two_steps, x, params={"W": W})
    out, newW = interpret(g, x)
    expected_W = W.numpy() - 2 * 0.5 * np.array([[1.0, 1.0], [2.0, 2.0]])
    np.testing.assert_allclose(newW, expected_W)
    np.testing.assert_allclose(out, x.numpy() @ expected_W)
    assert list(g.updates) == ["W"]


def test_keep_side_effects_applies_the_step():
    W = aisys.ones(2, requires_grad=True)
    g = aisys.trace(lambda x: ((x * W).sum().backward(), sgd_step([W], 1.0))[1], aisys.ones(2),
                    keep_side_effects=True)
    assert W.numpy().tolist() == [0.0, 0.0] and g.returns == []


def test_grad_accumulation_is_recorded():
    W = aisys.ones(2, requires_grad=True)

    def f(x):
        (x * W).sum().backward()
        (x * x * W).sum().backward()           # accumulates into W.grad: must be an add node
        with aisys.no_grad():
            W.assign_(W - W.grad)
    x = aisys.tensor([2.0, 3.0])
    g = aisys.trace(f, x)
    (newW,) = interpret(g, x)
    np.testing.assert_allclose(newW, 1.0 - (x.numpy() + x.numpy() ** 2))
    np.testing.assert_allclose(interpret(g, aisys.tensor([1.0, 1.0]))[0], [-1.0, -1.0])


def test_tensor_as_python_bool_bakes_the_branch_with_a_warning():
    x, h = rnn_inputs()
    g = aisys.trace(rnn_cell, x, h)
    assert len(g.warnings) == 1 and g.warnings[0].startswith("branch baked at ")
    where, node, value = g.baked_branches[0]
    assert where.endswith("models.py:" + str(_line_of("if h2h.sum() > 0:")))
    assert g[node].op == "gt" and value is True
    assert "add" in g.count_ops()                     # the taken branch's ops are in the graph
    np.testing.assert_allclose(interpret(g, x, h)[0], rnn_cell(x, h).numpy(), rtol=1e-6)
    # the other sign takes the other branch eagerly, but the traced graph replays the baked one
    flipped = aisys.tensor(-h.numpy())
    eager = rnn_cell(x, flipped).numpy()
    traced = interpret(g, x, flipped)[0]
    assert not np.allclose(eager, traced)
    np.testing.assert_allclose(traced, np.tanh(W_h.numpy() @ flipped.numpy().T + W_x.numpy() @ x.numpy().T),
                               rtol=1e-6)


def test_constant_predicate_is_not_a_warning_but_a_state_predicate_is():
    g = aisys.trace(lambda x: x + 1.0 if aisys.tensor(1.0) > 0 else x, aisys.ones(2))
    assert g.warnings == [] and g.count_ops() == {"add": 1, "gt": 1}   # gt is dead code for DCE
    c = aisys.tensor(1.0)                     # state the function reads: it may change between calls
    g = aisys.trace(lambda x: x + 1.0 if c > 0 else x, aisys.ones(2))
    assert len(g.warnings) == 1


def test_module_names_found_through_closures_and_prefixed_when_several():
    a, b = TinyModule(w=aisys.ones(2, requires_grad=True)), TinyModule(w=aisys.ones(2, requires_grad=True))

    def f(x):
        return x * a.w + b.w
    g = aisys.trace(f, aisys.ones(2))
    assert sorted(n.name for n in g.params()) == ["a.w", "b.w"]


def test_trace_errors_teach():
    with pytest.raises(TypeError, match="aisys.trace"):
        aisys.trace(3, aisys.ones(2))
    with pytest.raises(ValueError, match="input_names"):
        aisys.trace(lambda x: x, aisys.ones(2), input_names=["a", "b"])
    with pytest.raises(ZeroDivisionError):
        aisys.trace(lambda x: 1 / 0, aisys.ones(2))
    assert _Mode.observers == []


def _line_of(text):
    from . import models
    import inspect
    lines, start = inspect.getsourcelines(models)
    return next(i for i, l in enumerate(lines, 1) if text in l)


@pytest.mark.parametrize("make_opt", [lambda ps: aisys.optim.SGD(ps, lr=0.1, momentum=0.9),
                                      lambda ps: aisys.optim.Adam(ps, lr=0.01)], ids=["sgd-momentum", "adam"])
def test_training_step_with_nn_and_optim_names_every_state(make_opt):
    nn = aisys.nn
    aisys.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = make_opt(model.parameters())
    x, y = aisys.randn(4, 6), aisys.randint(0, 3, (4,))

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    step(x, y)          # warm-up: SGD creates its momentum buffer with a Python `if` on the first step,
    g = aisys.trace(step, x, y)     # which a trace would bake; trace the steady-state step instead
    names = set(g.updates)
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= names
    extra = sorted(names - {"0.weight", "0.bias", "2.weight", "2.bias"})
    assert extra and all(n.split(".")[0] in ("0", "2") and n.count(".") == 2 for n in extra), extra
    outs = interpret(g, x, y)
    for k in range(2):                  # the dry run left the optimizer as it was: two real steps match
        step(x, y)                      # the graph run twice, feeding its state updates back in
        for name, p in model.named_parameters():
            np.testing.assert_allclose(outs[g.outputs.index(g.updates[name])], p.numpy(), rtol=1e-5, atol=1e-6)
        outs = interpret(g, x, y, params={n: outs[g.outputs.index(i)] for n, i in g.updates.items()})


def test_trace_needs_tensor_inputs_and_outputs():
    with pytest.raises(TypeError, match="no tensor inputs"):
        aisys.trace(lambda: aisys.ones(2))
    with pytest.raises(TypeError, match="no tensor inputs"):
        aisys.trace(lambda n: aisys.ones(n), 3)
    with pytest.raises(ValueError, match="no outputs"):
        aisys.trace(lambda x: None, aisys.ones(2))
    with pytest.raises(ValueError, match="no outputs"):
        aisys.trace(lambda x: x.sum().item(), aisys.ones(2))


def test_a_failing_trace_restores_everything_it_touched_and_names_the_line():
    from aisys.framework.tensor import _Generator, _Mode
    W = aisys.ones(2, requires_grad=True)
    W.grad = aisys.tensor([0.5, 0.5])

    def step(x):
        (x * W).sum().backward()
        with aisys.no_grad():
            W.sub_(W.grad)
        aisys.randn(3)                                   # moves the generator
        _Mode.grad_enabled = False                       # a program that switched grad mode off
        raise KeyError("in the user's code")
    rng = _Generator.rng.bit_generator.state
    before = (W.numpy().copy(), W.grad.numpy().copy())
    with pytest.raises(KeyError) as e:
        aisys.trace(step, aisys.ones(2))
    assert any("step raised at" in n and "test_trace.py:" in n and "restored" in n for n in e.value.__notes__)
    np.testing.assert_array_equal(W.numpy(), before[0])
    np.testing.assert_array_equal(W.grad.numpy(), before[1])
    assert _Generator.rng.bit_generator.state == rng and _Mode.grad_enabled
    assert W._trace is None                              # no tracer left attached


def test_record_ops_is_trace_without_the_extras():
    """The minimal tracer on public hooks records the same ops as aisys.trace and replays fn on new inputs."""
    import numpy as np
    import aisys
    from aisys import nn
    from aisys.framework.graph import interpret
    from aisys.framework.tensor import _Mode
    from aisys.frontend import record_ops

    aisys.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))
    x = aisys.randn(3, 5)
    g = record_ops(mlp, x)
    assert [n.op for n in g.op_nodes] == [n.op for n in aisys.trace(mlp, x).op_nodes]
    assert sorted(n.op for n in g if n.is_leaf) == ["input"] + ["param"] * 4
    x2 = aisys.randn(3, 5)
    assert np.allclose(interpret(g, x2)[0], mlp(x2).numpy(), atol=1e-6)
    assert _Mode.observers == []
    (y, z) = interpret(record_ops(lambda v: (v.exp(), v * 2.0), x), x2)       # several outputs
    assert np.allclose(y, np.exp(x2.numpy())) and np.allclose(z, 2 * x2.numpy())


def test_compare_captures_is_the_record_the_widget_draws():
    from aisys.frontend import compare_captures

    x, h = rnn_inputs()
    cmp = compare_captures(rnn_cell, [x, h], {"prev_h": [x, h], "-prev_h": [x, -h]})
    same, other = cmp.run("prev_h"), cmp.run("-prev_h")
    assert same.verdicts == {"traced": "right", "scripted": "right"}
    assert other.verdicts == {"traced": "wrong", "scripted": "right"}   # the branch the trace baked in
    np.testing.assert_allclose(other.outputs["scripted"], rnn_cell(x, -h).numpy(), rtol=1e-6)
    assert cmp.run("-prev_h") is other and "branch baked" in cmp.warnings[0]
    assert "traced   wrong" in cmp.summary("-prev_h") and other.eager_graph.name == "eager"
    with pytest.raises(KeyError, match="no input variant 'h'"):
        cmp.run("h")
