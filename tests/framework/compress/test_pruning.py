"""Pruning: exact sparsity (hypothesis), the smallest magnitudes go first, global vs per-layer ranking, masks
that survive fine-tuning, structured L1 channel pruning that really removes channels (the smaller model
computes what the model with those channels zeroed computes), iterative schedules, sensitivity scans, and
bad inputs refused with nothing changed."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import aisys
from aisys import nn, optim
from aisys.framework import compress as C
from aisys.models import LeNet, MLP, train_classifier
from tests.framework.compress.conftest import test_accuracy

PROPS = settings(max_examples=40, deadline=None, derandomize=True, database=None)


@PROPS
@given(w=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=7),
                    elements=st.floats(-5, 5, allow_nan=False)),
       sparsity=st.floats(0, 0.99))
def test_exact_sparsity_and_smallest_magnitudes_first(w, sparsity):
    keep = C.magnitude_mask(w, sparsity)
    assert keep.shape == w.shape
    assert (~keep).sum() == round(sparsity * w.size), "exactly round(sparsity·n) weights pruned"
    if (~keep).any() and keep.any():
        assert np.abs(w[~keep]).max() <= np.abs(w[keep]).min(), "no kept weight is smaller than a pruned one"


def test_ties_are_broken_by_position():
    keep = C.magnitude_mask(np.array([1.0, -1.0, 1.0, 2.0]), 0.5)
    assert keep.tolist() == [False, False, True, True]


def test_layer_and_global_scope(trained):
    model = trained["lenet"]
    layer = C.prune(copy.deepcopy(model), 0.8, scope="layer")
    assert all(abs(v - 0.8) < 0.01 for v in C.sparsity_report(layer.model).values())
    glob = C.prune(model, 0.8, scope="global")
    report = C.sparsity_report(model)
    total = sum(m.weight.numpy().size for _, m in C.pruning.prunable_layers(model))
    zeros = sum((m.weight.numpy() == 0).sum() for _, m in C.pruning.prunable_layers(model))
    assert zeros == round(0.8 * total), "global: exact over all layers together"
    assert max(report.values()) - min(report.values()) > 0.3, "global ranking prunes some layers far more"
    assert "unstructured global pruning: 80.00%" in glob.summary()


def test_masks_survive_fine_tuning(trained, digits_data):
    model = trained["mlp"]
    train, _, _ = digits_data
    p = C.prune(model, 0.9)
    opt = p.enforce(optim.Adam(model.parameters(), lr=1e-3))
    x, y = next(iter(train))
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, mask in p.masks.items():
        assert np.all(dict(model.named_modules())[name].weight.numpy()[~mask] == 0)


def test_structured_pruning_removes_channels_and_keeps_the_masked_outputs():
    aisys.manual_seed(3)
    model = LeNet(image_size=8, channels=(16, 32))
    x = aisys.randn(5, 1, 8, 8)
    reference = copy.deepcopy(model)
    p = C.prune(model, 0.5, structured=True, layers=nn.Conv2d, example=x)
    assert model.conv1.out_channels == 8 and model.conv2.in_channels == 8 and model.conv2.out_channels == 16
    assert model.fc1.in_features == 16 * 2 * 2, "the flattened features of the removed channels are gone"
    # the kept channels are those with the largest L1 norms
    norms = C.channel_l1_norms(reference.conv1.weight)
    assert sorted(p.kept_channels["conv1"].tolist()) == sorted(np.argsort(-norms)[:8].tolist())
    # zeroing the removed channels in the original gives the same outputs as the smaller model
    with aisys.no_grad():
        for name, keep in p.kept_channels.items():
            layer = dict(reference.named_modules())[name]
            drop = np.setdiff1d(np.arange(layer.weight.shape[0]), keep)
            layer.weight.numpy()[drop] = 0
            layer.bias.numpy()[drop] = 0
    assert np.allclose(model(x).numpy(), reference(x).numpy(), atol=1e-6)
    assert p.structured and 0.45 < p.sparsity < 0.6 and "2 layers lost channels" in p.summary()


def test_structured_50_percent_of_lenet_channels_within_one_point(trained, digits_data):
    train, _, test = digits_data
    model = trained["lenet"]
    base = test_accuracy(model, test)
    C.prune(model, 0.5, structured=True, layers=nn.Conv2d, example=test[0][:4])
    aisys.manual_seed(0)
    train_classifier(model, train, epochs=4, lr=1e-3, progress=False,
                     scheduler=lambda opt: optim.CosineAnnealingLR(opt, 4))
    acc = test_accuracy(model, test)
    assert base - acc <= 0.01, f"float {base:.4f}, half the conv channels {acc:.4f}"


def test_structured_refusals_leave_the_model_alone():
    aisys.manual_seed(0)
    x = aisys.randn(3, 64)
    sig = nn.Sequential(nn.Linear(64, 16), nn.Sigmoid(), nn.Linear(16, 10))
    before = {k: v.numpy().copy() for k, v in sig.state_dict().items()}
    with pytest.raises(ValueError, match="maps 0 to something else, e.g. a sigmoid"):
        C.prune(sig, 0.5, structured=True, example=x)
    with pytest.raises(ValueError, match="needs example="):
        C.prune(sig, 0.5, structured=True)
    with pytest.raises(ValueError, match="'2' is the last layer"):
        C.prune(sig, 0.5, structured=True, layers=["2"], example=x)
    with pytest.raises(ValueError, match="sparsity=1.0"):
        C.prune(sig, 1.0)
    with pytest.raises(ValueError, match=r"no Linear/Conv2d layer named \['fc9'\]"):
        C.prune(sig, 0.5, layers=["fc9"])
    after = sig.state_dict()
    assert all(np.array_equal(after[k].numpy(), before[k]) for k in before) and sig[0].out_features == 16


def test_iterative_prune_keeps_earlier_zeros():
    aisys.manual_seed(0)
    model = MLP([64, 32, 10])
    seen = []

    def fine_tune(m, pruning):
        with aisys.no_grad():                         # "training" that would revive every weight
            for p in m.parameters():
                p.numpy()[...] += 0.01
        seen.append(pruning.sparsity)

    history = C.iterative_prune(model, (0.5, 0.75, 0.9), fine_tune, evaluate=lambda m: 1.0)
    assert [h[0] for h in history] == [0.5, 0.75, 0.9] and seen == pytest.approx([0.5, 0.75, 0.9], abs=0.01)
    assert all(abs(v - 0.9) < 0.01 for v in C.sparsity_report(model).values())
    with pytest.raises(ValueError, match="increasing"):
        C.iterative_prune(model, (0.9, 0.5), fine_tune)


def test_sensitivity_scan_restores_every_weight(trained, digits_data):
    _, _, test = digits_data
    model = trained["mlp"]
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    scan = C.sensitivity_scan(model, lambda m: test_accuracy(m, test), sparsities=(0.5, 0.95))
    assert scan.layers == ["net.0", "net.2"] and len(scan.scores["net.0"]) == 2
    assert scan.scores["net.2"][1] < scan.baseline, "95% of the output layer pruned hurts"
    bits = C.sensitivity_scan(model, lambda m: test_accuracy(m, test), bits=(8, 2), layers=["net.2"])
    assert bits.scores["net.2"][0] == pytest.approx(bits.baseline, abs=0.01)
    after = model.state_dict()
    assert all(np.array_equal(after[k].numpy(), before[k]) for k in before)
    assert "sensitivity scan (sparsity)" in scan.summary()


def test_structured_pruning_keeps_the_channels_you_choose():
    aisys.manual_seed(1)
    model = LeNet(image_size=8)
    x = aisys.randn(3, 1, 8, 8)
    p = C.remove_channels(model, keep={"conv1": [0, 5], "conv2": np.arange(0, 16, 2)}, example=x)
    assert model.conv1.out_channels == 2 and model.conv2.in_channels == 2 and model.conv2.out_channels == 8
    assert p.kept_channels["conv1"].tolist() == [0, 5]
    with pytest.raises(ValueError, match=r"keep\['conv1'\] must name 1..2 channels"):
        C.remove_channels(model, keep={"conv1": [7]}, example=x)
