"""Quantization-aware training: the straight-through estimator's gradients as specified, LSQ's scale gradient by
hand, and int4 weights trained with QAT within 1 point of float32 once converted to integer-only inference."""
from __future__ import annotations

import math

import numpy as np
import pytest

import aisys
from aisys import optim
from aisys.framework import compress as C
from aisys.framework.ops.quant import fake_quant
from aisys.models import train_classifier
from tests.framework.compress.conftest import test_accuracy


def _grads(x, s, z, **kw):
    xt = aisys.tensor(x, requires_grad=True)
    st = aisys.tensor(np.asarray(s, np.float64), requires_grad=True)
    out = fake_quant(xt, st, z, **kw)
    out.backward(aisys.tensor(np.ones_like(x)))
    return out.numpy(), xt.grad.numpy(), st.grad.numpy()


def test_ste_passes_gradients_through_round_and_stops_them_where_clipped():
    # int4 codes [-8, 7], s = 0.5: x/s = [-20, -3.4, 0.6, 3.2, 14] → codes [-8, -3, 1, 3, 7]
    x = np.array([-10.0, -1.7, 0.3, 1.6, 7.0])
    out, gx, gs = _grads(x, 0.5, 0, qmin=-8, qmax=7)
    assert out.tolist() == [-4.0, -1.5, 0.5, 1.5, 3.5]
    assert gx.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0], "clipped STE: 1 inside the code range, 0 where clipped"
    _, gx_id, _ = _grads(x, 0.5, 0, qmin=-8, qmax=7, ste="identity")
    assert gx_id.tolist() == [1.0] * 5, "plain STE: the identity everywhere"
    # LSQ: ∂x̂/∂s = round(x/s) − x/s inside, qmin − z / qmax − z outside; summed over the elements
    lsq = [-8, round(-3.4) + 3.4, round(0.6) - 0.6, round(3.2) - 3.2, 7]
    assert gs == pytest.approx(sum(lsq))
    _, _, gs_half = _grads(x, 0.5, 0, qmin=-8, qmax=7, grad_scale=0.25)
    assert gs_half == pytest.approx(0.25 * sum(lsq)), "LSQ's gradient scale multiplies the scale's gradient"


def test_ste_with_a_zero_point_and_per_channel_scales():
    x = np.array([[0.26, -1.0], [0.9, 0.05]])
    out, gx, gs = _grads(x, [0.1, 0.2], np.array([3, -2], np.int32), qmin=-8, qmax=7, axis=1)
    # column 0: s=0.1, z=3 → codes round(2.6)+3=6, round(9)+3=12→7 (clipped); column 1: s=0.2, z=-2 → -7, -2
    assert np.allclose(out, [[0.3, -1.0], [0.4, 0.0]])
    assert gx.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert gs == pytest.approx([(3 - 2.6) + (7 - 3), (-5 - -5) + (0 - 0.25)])


def test_int4_qat_within_one_point(trained, digits_data):
    train, calib, test = digits_data
    for name, method in (("mlp", "lsq"), ("lenet", "ste")):
        model = trained[name]
        base = test_accuracy(model, test)
        aisys.manual_seed(1)
        qat = C.prepare_qat(model, weight_dtype="int4", method=method)
        assert qat is not model
        assert type(dict(qat.named_modules())["fc1" if name == "lenet" else "net.0"]).__name__ == "QATLinear"
        train_classifier(qat, train, epochs=2, lr=1e-3, progress=False)
        qmodel = C.convert(qat, calib)
        assert qmodel.scheme["weight_dtype"] == "int4"
        codes = [layer.weight_q.numpy() for _, layer in qmodel.named_modules() if hasattr(layer, "weight_q")]
        assert all(c.min() >= -8 and c.max() <= 7 for c in codes)
        acc = test_accuracy(qmodel, test)
        assert base - acc <= 0.01, f"{name} ({method}): float {base:.4f}, int4 QAT {acc:.4f}"


def test_lsq_scale_is_a_trained_parameter(trained):
    model = trained["mlp"]
    qat = C.prepare_qat(model, weight_dtype="int4", method="lsq")
    scales = [p for n, p in qat.named_parameters() if n.endswith("weight_fake_quant.scale")]
    assert len(scales) == 2 and scales[0].shape == (128,)
    w = model.net[0].weight.numpy()
    assert np.allclose(scales[0].numpy(), 2 * np.abs(w).mean(axis=1) / math.sqrt(7), rtol=1e-6), "LSQ's init"
    opt = optim.SGD(qat.parameters(), lr=0.1)
    x = aisys.randn(8, 64)
    before = scales[0].numpy().copy()
    qat(x).sum().backward()
    opt.step()
    assert not np.allclose(scales[0].numpy(), before), "the optimizer moves the step size"


def test_prepare_qat_errors_and_leaves_the_model_alone(trained):
    model = trained["mlp"]
    w = model.net[0].weight.numpy().copy()
    with pytest.raises(ValueError, match="method='adaround'"):
        C.prepare_qat(model, method="adaround")
    with pytest.raises(ValueError, match="weight_dtype='fp8_e4m3'"):
        C.prepare_qat(model, weight_dtype="fp8_e4m3")
    qat = C.prepare_qat(model)
    assert type(model.net[0]).__name__ == "Linear" and np.array_equal(model.net[0].weight.numpy(), w)
    with pytest.raises(ValueError, match="no QAT layers"):
        C.convert(model, [aisys.randn(2, 64)])
    with pytest.raises(ValueError, match="calibration set is empty"):
        C.convert(qat, [])
