"""Post-training quantization of the shipped digits models, and integer-only inference from its graph.

Targets (issue 18): int8 PTQ with per-channel weights and KL or percentile activations stays within 0.5
percentage points of float32 on the 360 test digits, for the MLP and for LeNet; the compiler's
fold_quantization pass turns the traced QDQ graph into integer-only ops that give the simulation's int8
codes bit for bit. Bad inputs fail with the layer named and the model untouched.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import aisys
from aisys import nn
from aisys.compiler import float_ops_between
from aisys.framework import compress as C
from tests.framework.compress.conftest import test_accuracy

INTEGER_PASSES = ["fold_quantization", "dce"]


@pytest.mark.parametrize("name", ["mlp", "lenet"])
@pytest.mark.parametrize("activations", ["kl", "percentile"])
def test_int8_ptq_within_half_a_point(trained, digits_data, name, activations):
    model = trained[name]
    _, calib, test = digits_data
    base = test_accuracy(model, test)
    qmodel = C.quantize(model, calib, weights="per_channel", activations=activations)
    acc = test_accuracy(qmodel, test)
    assert base - acc <= 0.005, f"{name} {activations}: float {base:.4f}, int8 {acc:.4f}"
    assert base > 0.95


@pytest.mark.parametrize("name", ["mlp", "lenet"])
def test_integer_only_inference_equals_the_fake_quant_simulation_bit_for_bit(trained, digits_data, name):
    _, calib, (x, y) = digits_data
    x = x[:96]
    qmodel = C.quantize(trained[name], calib, activations="kl")
    graph = aisys.trace(qmodel, x)
    ops = graph.count_ops()
    assert ops["quantize"] >= 2 and ops["dequantize"] >= 4, "the traced simulation shows its QDQ ops"
    int_model = aisys.compile(qmodel, x, passes=INTEGER_PASSES, backend="reference")
    g = int_model.graph
    assert float_ops_between(g) == [], [n.op for n in float_ops_between(g)]
    counts = g.count_ops()
    assert counts["quantize"] == 1 and counts["dequantize"] == 1, "float only at the input and output"
    assert counts.get("matmul", 0) == counts.get("conv2d", 0) == 0
    assert counts["matmul_integer"] + counts.get("conv2d_integer", 0) == len(qmodel.layers)
    assert counts["requantize"] == len(qmodel.layers)
    kernels = {n.op: n for n in g.op_nodes}
    assert kernels["matmul_integer"].dtype is aisys.int32
    sim = qmodel(x).numpy()
    out = int_model(x).numpy()
    assert sim.dtype == out.dtype == np.float64
    assert np.array_equal(out, sim), f"{np.sum(out != sim)} outputs differ"
    # the int8 codes of every layer, too: the requantize outputs of the integer graph vs the simulation's
    codes_int = aisys.framework.graph.interpret(_outputs(g, "requantize"), x)
    codes_sim = aisys.framework.graph.interpret(_outputs(graph, "requantize"), x)
    assert len(codes_int) == len(codes_sim) == len(qmodel.layers)
    for a, b in zip(codes_int, codes_sim):
        assert a.dtype == np.int8 and np.array_equal(a, b)


def _outputs(graph, op):
    g = graph.copy()
    g.set_outputs([n.id for n in g.op_nodes if n.op == op])
    return g


def test_per_tensor_and_int4_fold_too(trained, digits_data):
    _, calib, (x, y) = digits_data
    for kw in ({"weights": "per_tensor"}, {"weight_dtype": "int4", "activations": "minmax"}):
        qmodel = C.quantize(trained["lenet"], calib, **kw)
        f = aisys.compile(qmodel, x[:16], passes=INTEGER_PASSES, backend="reference")
        assert float_ops_between(f.graph) == []
        assert np.array_equal(f(x[:16]).numpy(), qmodel(x[:16]).numpy())
    w = qmodel.model.conv1.weight_q.numpy()
    assert w.min() >= -8 and w.max() <= 7, "int4 codes, stored in int8"


def test_the_pass_rejects_what_it_cannot_fold(trained, digits_data):
    """A hand-broken simulation (the accumulator at a scale other than s_x·s_w) is left as it is, and the pass
    log says why."""
    _, calib, (x, _) = digits_data
    qmodel = C.quantize(trained["mlp"], calib, activations="minmax")
    layer = qmodel.model.net[0]
    layer.acc_scale._data[...] *= 1.5
    f = aisys.compile(qmodel, x[:4], passes=INTEGER_PASSES, backend="reference")
    rejected = [str(d) for r in f.pass_log for d in r.decisions if d.verdict == "rejected"]
    assert any("not s_a·s_w" in d for d in rejected), rejected
    assert [n.op for n in float_ops_between(f.graph)], "the layer stays in floats"
    assert np.array_equal(f(x[:4]).numpy(), qmodel(x[:4]).numpy()), "and still computes the same"


def _state(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    after = _state(model)
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in after)
    for m in model.modules():
        assert "forward" not in m.__dict__ and not m._forward_hooks, "no hook or wrapper left behind"


def test_bad_inputs_name_the_problem_and_change_nothing(trained, digits_data):
    _, calib, (x, _) = digits_data
    model = trained["mlp"]
    before = _state(model)
    with pytest.raises(ValueError, match="calibration set is empty"):
        C.quantize(model, [])
    with pytest.raises(ValueError, match="weight_dtype='fp8_e4m3' has no integer-only form"):
        C.quantize(model, calib, weight_dtype="fp8_e4m3")
    with pytest.raises(ValueError, match="unsupported quantized dtype 'int2'"):
        C.quantize(model, calib, weight_dtype="int2")
    with pytest.raises(ValueError, match="activation_dtype='uint8'"):
        C.quantize(model, calib, activation_dtype="uint8")
    with pytest.raises(ValueError, match="activations='entropy'"):
        C.quantize(model, calib, activations="entropy")
    _unchanged(model, before)
    model.train()
    sig = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10))
    sig_before = _state(sig)
    with pytest.raises(ValueError, match=r"layer '2' \(Sigmoid\) runs the op 'sigmoid', which has no quantized form"):
        C.quantize(sig, calib)
    _unchanged(sig, sig_before)
    assert sig.training, "the training flag is restored"


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.b(self.a(x) + x)


class _Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        self.a(x)
        return self.b(x)


class _Softmaxed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)).softmax(1)


def test_branches_and_float_tails_are_refused(digits_data):
    _, calib, _ = digits_data
    with pytest.raises(ValueError, match=r"the model's own forward \(_Residual\) runs the op 'add', which has no "):
        C.quantize(_Residual(), calib)
    with pytest.raises(ValueError, match=r"layer 'b' \(Linear\) reads a tensor other than the previous layer's output"):
        C.quantize(_Skip(), calib)
    with pytest.raises(ValueError, match=r"'softmax', which has no quantized form"):
        C.quantize(_Softmaxed(), calib)


def test_quantized_model_reports_its_choices(trained, digits_data):
    _, calib, _ = digits_data
    q = C.quantize(trained["lenet"], calib, activations="percentile")
    text = q.summary()
    assert "5 matrix layers, int8 weights (per_channel), int8 activations calibrated by percentile" in text
    assert [l.name for l in q.layers] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    modules = dict(q.model.named_modules())
    for l in q.layers:
        assert np.all(np.asarray(l.weight.zero_point) == 0), "weights are symmetric"
        assert np.asarray(l.weight.scale).shape == (modules[l.name].weight_q.shape[0],), "one scale per channel"
    assert q.layers[1].input.scale == q.layers[0].output.scale, "a layer requantizes to the next one's input"
