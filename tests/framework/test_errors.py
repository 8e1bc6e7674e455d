"""Errors that teach: each names the op, the shapes or values, the rule that failed, the user's own
file:line, and how to fix it — and leaves nothing half-changed."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import aisys
from aisys import AnomalyError, ShapeError
from aisys.framework.tensor import apply

HERE = "test_errors.py"
CONV = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)


def next_line() -> int:
    """The line number after the caller's line (where the failing call is written)."""
    return inspect.currentframe().f_back.f_lineno + 1


# ---- shape errors --------------------------------------------------------------------------------------
def test_broadcast_mismatch_names_op_shapes_rule_and_line():
    a, b = aisys.ones(3, 4), aisys.ones(2, 4)
    with pytest.raises(ShapeError) as info:
        line = next_line()
        a + b
    msg = str(info.value)
    assert msg.startswith("add: ")
    assert "(3, 4)" in msg and "(2, 4)" in msg
    assert "dimension -2 is 3 vs 2" in msg
    assert "broadcasting aligns shapes from the right" in msg
    assert f"{HERE}:{line}" in msg
    e = info.value
    assert e.op == "add" and e.shapes == ((3, 4), (2, 4)) and "broadcasting" in e.rule
    assert e.location.endswith(f"{HERE}:{line}")
    assert isinstance(e, ValueError)            # ShapeError is a ValueError, as numpy's and torch's are


def test_matmul_inner_dimension_error():
    with pytest.raises(ShapeError) as info:
        line = next_line()
        aisys.ones(3, 4) @ aisys.ones(5, 2)
    msg = str(info.value)
    assert msg.startswith("matmul: inner dimensions differ")
    assert "(3, 4) @ (5, 2)" in msg and "x.shape[-1]=4 must equal y.shape[-2]=5" in msg
    assert "transpose one operand?" in msg and f"{HERE}:{line}" in msg


def test_conv2d_channel_error():
    x, w = aisys.ones(1, 3, 8, 8), aisys.ones(4, 2, 3, 3)
    with pytest.raises(ShapeError) as info:
        line = next_line()
        apply("conv2d", x, w, **CONV)
    msg = str(info.value)
    assert msg.startswith("conv2d: ") and "(4, 2, 3, 3)" in msg and "(1, 3, 8, 8)" in msg
    assert "expects 2 input channels" in msg and "has 3" in msg
    assert "weight.shape[1] × groups == input channels" in msg and f"{HERE}:{line}" in msg


def test_conv2d_too_small_input_names_the_formula():
    with pytest.raises(ShapeError, match=r"out = ⌊\(in \+ 2·pad − dil·\(k−1\) − 1\)/stride⌋ \+ 1"):
        apply("conv2d", aisys.ones(1, 1, 2, 2), aisys.ones(1, 1, 3, 3), **CONV)


def test_reshape_and_dim_errors():
    x = aisys.ones(2, 3)
    with pytest.raises(ShapeError, match=r"cannot reshape \(2, 3\) \(6 elements\) into \(4,\).*keeps the number"):
        x.reshape(4)
    with pytest.raises(ShapeError, match=r"dim 2 is out of range for a 2-D tensor.*valid dims are -2..1"):
        x.sum(2)
    with pytest.raises(ShapeError, match="only one dimension can be -1"):
        x.reshape(-1, -1)
    with pytest.raises(ShapeError, match=r"tensor 1 has shape \(2, 2\).*all sizes must match except along dim 0"):
        aisys.cat([x, aisys.ones(2, 2)], dim=0)
    with pytest.raises(ShapeError, match=r"index.*tensor of shape \(2, 3\)"):
        x[5]


def test_loss_shapes_do_not_broadcast_silently():
    with pytest.raises(ShapeError, match="does not broadcast inside losses"):
        apply("mse_loss", aisys.ones(4, 1), aisys.ones(4), reduction="mean")


# ---- detect_anomaly -------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_stops_at_the_first_bad_op_in_forward():
    x = aisys.tensor([0.5, 2.0, -1.0])
    seen = []
    aisys.framework.tensor._Mode.observers.append(lambda op, ins, attrs, out: seen.append(op.name))
    try:
        with aisys.detect_anomaly(), pytest.raises(AnomalyError) as info:
            y = x * 2.0
            line = next_line()
            z = aisys.log(y)                    # log(−2) = NaN: stop here …
            z * 3.0                             # … so this never runs
    finally:
        aisys.framework.tensor._Mode.observers.pop()
    msg = str(info.value)
    assert msg.startswith("detect_anomaly: log produced NaN (1 of 3 elements)")
    assert "input 0: f32[3] range [-2, 4]" in msg
    assert f"{HERE}:{line}" in msg
    assert seen == ["mul", "log"]
    assert isinstance(info.value, FloatingPointError)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_anomaly_in_backward_names_the_forward_op():
    x = aisys.tensor([0.0, 4.0], requires_grad=True)
    y = aisys.sqrt(x).sum()                     # fine forward: sqrt(0) = 0 …
    with aisys.detect_anomaly(), pytest.raises(AnomalyError) as info:
        line = next_line()
        y.backward()                            # … but d√x/dx = 1/(2√x) is Inf at 0
    msg = str(info.value)
    assert "(in the backward of sqrt)" in msg and "produced Inf" in msg
    assert "div" in msg.split("(in the backward")[0]             # the op inside sqrt's VJP that overflowed
    assert f"{HERE}:{line}" in msg


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_without_detect_anomaly_nan_propagates_quietly():
    y = aisys.log(aisys.tensor([-1.0])) * 2.0
    assert np.isnan(y.item())
    with aisys.detect_anomaly():
        assert aisys.exp(aisys.tensor([1.0])).item() > 0          # finite results pass untouched


# ---- invalid arguments --------------------------------------------------------------------------------------
def test_negative_stride_or_padding_is_a_value_error_with_the_fix():
    x, w = aisys.ones(1, 1, 5, 5), aisys.ones(1, 1, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: stride=\(-1, 1\) is invalid; each value must be ≥ 1 \(e.g. stride=1\)"):
        apply("conv2d", x, w, **dict(CONV, stride=(-1, 1)))
    with pytest.raises(ValueError, match=r"padding=\(0, -2\) is invalid.*slice the input instead"):
        apply("conv2d", x, w, **dict(CONV, padding=(0, -2)))
    with pytest.raises(ValueError, match="groups=0 must be a positive int"):
        apply("conv2d", x, w, **dict(CONV, groups=0))
    with pytest.raises(ValueError, match=r"max_pool2d: stride=\(0, 2\) is invalid"):
        apply("max_pool2d", x, kernel_size=(2, 2), stride=(0, 2), padding=(0, 0), dilation=(1, 1))
    with pytest.raises(TypeError, match=r"takes stride as a pair.*pass stride=\(2, 2\)"):
        apply("conv2d", x, w, **dict(CONV, stride=2))
    with pytest.raises(ValueError, match="negative padding.*slice the tensor instead"):
        aisys.pad(x, (1, -1))


def test_wrong_dtype_is_a_type_error_with_the_fix():
    ints = aisys.tensor([1, 2, 3])
    with pytest.raises(TypeError, match=r"exp: expects a floating-point tensor, got int64.*convert with .float\(\)"):
        aisys.exp(ints)
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients.*dtype=aisys.float32"):
        aisys.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="conv2d: expects a floating-point tensor"):
        apply("conv2d", aisys.ones(1, 1, 3, 3, dtype="int32"), aisys.ones(1, 1, 1, 1, dtype="int32"), **CONV)
    with pytest.raises(TypeError, match="condition must be a bool tensor.*compare first"):
        aisys.where(aisys.tensor([1.0]), 1.0, 2.0)
    with pytest.raises(TypeError, match="index arrays must be integer or bool"):
        aisys.ones(3)[np.array([0.5])]
    with pytest.raises(TypeError, match=r"indices must be an integer tensor, got float32; use .long\(\)"):
        apply("embedding", aisys.tensor([0.0]), aisys.ones(3, 2))
    with pytest.raises(TypeError, match="unknown dtype name 'float8'"):
        aisys.zeros(2, dtype="float8")
    with pytest.raises(TypeError, match="complex128 is not supported"):
        aisys.tensor(np.zeros(2, np.complex128))


def test_value_errors_on_tensor_use():
    with pytest.raises(ValueError, match=r"item\(\): tensor has 3 elements"):
        aisys.ones(3).item()
    with pytest.raises(ValueError, match=r"ambiguous; use .any\(\) or .all\(\)"):
        bool(aisys.ones(2))
    with pytest.raises(KeyError, match="did you mean matmul"):
        apply("matmull", aisys.ones(2, 2), aisys.ones(2, 2))


def test_failed_updates_leave_the_tensor_unchanged():
    t = aisys.tensor(np.arange(4.0))
    with pytest.raises(ValueError, match=r"assign_: new value has shape \(3,\), tensor has \(4,\)"):
        t.assign_(np.ones(3))
    with pytest.raises(ValueError, match="copy_"):
        t.copy_(np.ones(5))
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    x = aisys.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="setitem: a leaf tensor that requires grad"):
        x[0] = 5.0
    assert x.tolist() == [1.0, 2.0]


def test_gather_and_index_errors_name_the_op_and_the_bad_index():
    x = aisys.randn(2, 3)
    with pytest.raises(IndexError, match=r"gather: index 5 \(at position \(0, 0\)\) is out of range for dim 1 of "
                                         r"size 3"):
        aisys.gather(x, 1, aisys.tensor([[5], [0]]))
    with pytest.raises(IndexError, match=r"gather: index -1 .* valid indices are 0..2"):   # torch refuses negatives too
        x.gather(1, aisys.tensor([[0], [-1]]))
    with pytest.raises(ShapeError, match="index: index 5 is out of bounds for axis 0 with size 2"):
        x[5]
    with pytest.raises(IndexError, match="embedding: index 9 is out of range for 4 embeddings"):
        aisys.nn.functional.embedding(aisys.tensor([9]), aisys.randn(4, 2))
