"""Conv + BatchNorm folding: the formula against the unfused graph (1e-5), the course's snippet failing
that check, and the cases that must not fold."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aisys.compiler import fold_conv_bn, fold_conv_bn_weights, make_fold_conv_bn, run_pass
from aisys.compiler.testing import random_inputs
from aisys.framework.graph import Graph, interpret

from .graphs import residual_block


def course_snippet_fold(weight, bias, gamma, beta, mean, var, eps):
    """The fuse_conv_bn code of 04Inference/05Optimize/02Basic.md, transcribed: it reads
    beta = bn.weight and gamma = bn.bias (swapped) and forgets the conv bias."""
    var_sqrt = np.sqrt(var + eps)
    beta_, gamma_ = gamma, beta
    w = weight * (gamma_ / var_sqrt).reshape(-1, 1, 1, 1)
    b = beta_ - gamma_ / var_sqrt * mean
    return w.astype(weight.dtype), b.astype(weight.dtype)


def _conv_bn(seed, groups=1, bias=True, stride=1, padding=1, eps=1e-5):
    rng = np.random.default_rng(seed)
    g = Graph("convbn")
    C, O = 4, 4
    x = g.add_input("x", (2, C, 6, 6))
    w = g.add_param("conv.weight", (rng.standard_normal((O, C // groups, 3, 3)) * 0.3).astype(np.float32))
    ins = [x.id, w.id] + ([g.add_param("conv.bias", rng.uniform(-1, 1, O).astype(np.float32)).id] if bias else [])
    c = g.add("conv2d", ins, dict(stride=(stride, stride), padding=(padding, padding), dilation=(1, 1), groups=groups))
    st_ = [g.add_param(f"bn.{n}", v.astype(np.float32)).id for n, v in (
        ("running_mean", rng.uniform(-1, 1, O)), ("running_var", rng.uniform(0.2, 3, O)),
        ("weight", rng.uniform(0.3, 2, O)), ("bias", rng.uniform(-1, 1, O)))]
    bn = g.add("batch_norm", [c.id] + st_, {"eps": eps})
    g.set_outputs([g.add("relu", (bn.id,)).id])
    return g


def _max_err(g, pass_fn, seed=0):
    res = run_pass(pass_fn, g)
    xs = random_inputs(g, seed)
    return float(np.max(np.abs(interpret(res.graph, *xs)[0] - interpret(g, *xs)[0]))), res


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), groups=st.sampled_from([1, 2, 4]), bias=st.booleans(),
       stride=st.sampled_from([1, 2]), padding=st.sampled_from([0, 1]), eps=st.sampled_from([1e-5, 1e-3]))
def test_folded_graph_matches_unfused_to_1e_5(seed, groups, bias, stride, padding, eps):
    g = _conv_bn(seed, groups, bias, stride, padding, eps)
    err, res = _max_err(g, fold_conv_bn)
    assert err < 1e-5
    assert res.graph.count_ops() == {"conv2d": 1, "relu": 1}


def test_formula_keeps_the_conv_bias_and_scales_each_output_channel():
    w = np.ones((2, 1, 1, 1), np.float32)
    b = np.array([1.0, 2.0], np.float32)
    gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -0.5])
    mean, var = np.array([1.0, 0.0]), np.array([3.0, 8.0])
    wf, bf = fold_conv_bn_weights(w, b, gamma, beta, mean, var, eps=1.0)
    # channel 0: scale 2/√4 = 1 → W′=1, b′=1·(1−1)+0.5=0.5;  channel 1: scale 3/√9 = 1 → b′=(2−0)·1−0.5=1.5
    np.testing.assert_allclose(wf.ravel(), [1.0, 1.0])
    np.testing.assert_allclose(bf, [0.5, 1.5])
    assert wf.dtype == np.float32 and bf.dtype == np.float32
    _, bf0 = fold_conv_bn_weights(w, None, gamma, beta, mean, var, eps=1.0)
    np.testing.assert_allclose(bf0, [-0.5, -0.5])


@pytest.mark.parametrize("bias", [True, False])
def test_the_course_snippet_fails_the_check(bias):
    g = _conv_bn(3, bias=bias)
    err, _ = _max_err(g, make_fold_conv_bn(course_snippet_fold))
    assert err > 1e-2                       # γ/β swapped (and with a conv bias, that bias lost)


def test_dropping_only_the_conv_bias_is_caught_too():
    def forgets_bias(weight, bias, *rest):
        return fold_conv_bn_weights(weight, None, *rest)
    assert _max_err(_conv_bn(4, bias=True), make_fold_conv_bn(forgets_bias))[0] > 1e-2
    assert _max_err(_conv_bn(4, bias=False), make_fold_conv_bn(forgets_bias))[0] < 1e-5


def test_learner_fold_function_shows_in_the_pass():
    p = make_fold_conv_bn(course_snippet_fold)
    assert p.__name__ == "fold_conv_bn" and p.fold_weights is course_snippet_fold
    with pytest.raises(ValueError, match="one bias per output channel"):
        run_pass(make_fold_conv_bn(lambda w, b, *r: (w, np.zeros(3, np.float32))), _conv_bn(0))


def test_not_folded_when_the_conv_has_another_reader():
    g = _conv_bn(1)
    conv = next(n for n in g.nodes.values() if n.op == "conv2d")
    g.set_outputs(g.outputs + [g.add("sigmoid", (conv.id,)).id])
    res = run_pass(fold_conv_bn, g)
    assert not res.changed
    assert "is also read by" in res.rejected[0].reason


def test_not_folded_in_training_mode_with_batch_statistics():
    rng = np.random.default_rng(0)
    g = Graph("train")
    x = g.add_input("x", (2, 3, 4, 4))
    w = g.add_param("w", rng.standard_normal((3, 3, 1, 1)).astype(np.float32))
    c = g.add("conv2d", (x.id, w.id), dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1))
    mean = g.add("mean", (c.id,), {"dim": (0, 2, 3), "keepdim": False})
    var = g.add("var", (c.id,), {"dim": (0, 2, 3), "keepdim": False, "correction": 0})
    gamma = g.add_param("gamma", np.ones(3, np.float32))
    beta = g.add_param("beta", np.zeros(3, np.float32))
    bn = g.add("batch_norm", (c.id, mean.id, var.id, gamma.id, beta.id), {"eps": 1e-5})
    g.set_outputs([bn.id])
    res = run_pass(fold_conv_bn, g)
    assert not res.changed
    (d,) = res.rejected
    assert "computed at run time: running_mean %" in d.reason and "only eval-mode batch norm" in d.reason


def test_not_folded_when_bn_follows_something_else():
    g = Graph("relu_bn")
    x = g.add_input("x", (1, 2, 3, 3))
    r = g.add("relu", (x.id,))
    st_ = [g.add_param(f"s{k}", np.ones(2, np.float32)).id for k in range(4)]
    bn = g.add("batch_norm", [r.id] + st_, {"eps": 1e-5})
    g.set_outputs([bn.id])
    res = run_pass(fold_conv_bn, g)
    assert res.rejected[0].reason == f"its input %{r.id} is relu, not conv2d"


def test_residual_block_with_conv_biases():
    g = residual_block(seed=5, with_bias=True)
    err, res = _max_err(g, fold_conv_bn)
    assert err < 1e-5 and res.graph.count_ops() == {"add": 1, "conv2d": 2, "relu": 2}
    names = sorted(n.name for n in res.graph.params())
    assert names == ["conv1.bias.bn_folded", "conv1.weight.bn_folded", "conv2.bias.bn_folded", "conv2.weight.bn_folded"]
