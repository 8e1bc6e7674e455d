"""The (op, device, dtype, layout) dispatcher: fallback order, the resolution table, and the eager path
(every ``apply`` asks it for the op's kernel)."""
import numpy as np
import pytest

import aisys
from aisys.framework.dispatch import (ANY, DISPATCHER, Dispatcher, demo_dispatcher, dispatch_order, layout_of,
                                      register_kernel)
from aisys.framework.registry import OPS


def test_fallback_order_device_then_dtype_then_reference():
    assert dispatch_order("npu", "bfloat16") == [
        ("npu", "bfloat16"), ("npu", ANY), ("npu", "float32"),
        ("cpu", "bfloat16"), ("cpu", ANY), ("cpu", "float32"), (ANY, ANY)]
    assert dispatch_order("cpu", "int8") == [("cpu", "int8"), ("cpu", ANY), ("cpu", "int32"), ("cpu", "int64"),
                                             (ANY, ANY)]
    # a cycle in the fallback tables stops instead of looping
    assert dispatch_order("a", "x", device_fallback={"a": "b", "b": "a"}, dtype_fallback={}) == \
        [("a", "x"), ("a", ANY), ("b", "x"), ("b", ANY), (ANY, ANY)]


def test_resolution_table_of_the_demo_kernels():
    d = demo_dispatcher()
    got = {(op, dev, dt): key for op, dev, dt, key in
           d.resolutions(["matmul", "relu"], ["cpu", "npu"], ["float32", "bfloat16"])}
    assert got == {
        ("matmul", "cpu", "float32"): ("cpu", "float32"),
        ("matmul", "cpu", "bfloat16"): ("cpu", "float32"),     # upcast on the same device
        ("matmul", "npu", "float32"): ("cpu", "float32"),      # no fp32 kernel on the npu: device fallback
        ("matmul", "npu", "bfloat16"): ("npu", "bfloat16"),    # the cube kernel
        ("relu", "cpu", "float32"): (ANY, ANY),                # the registry reference
        ("relu", "cpu", "bfloat16"): (ANY, ANY),
        ("relu", "npu", "float32"): ("npu", ANY),              # any-dtype vector kernel
        ("relu", "npu", "bfloat16"): ("npu", ANY)}
    table = d.table(["matmul"], ["npu"], ["bfloat16", "float32"])
    text = str(table)
    assert len(table) == 2 and "npu_cube_bf16" in text and "device npu→cpu" in text
    assert text.splitlines()[1].startswith("---")


def test_dispatch_runs_the_kernel_and_casts_back():
    d = demo_dispatcher()
    calls = []
    d.register("add", "cpu", "float32", name="counting_add")(lambda a, b: calls.append(a.dtype) or a + b)
    x = aisys.tensor([1.5, 2.25]).bfloat16()
    out = d("add", x, x)
    assert calls == [np.dtype(np.float32)] and out.dtype == aisys.bfloat16.np and out.astype(float).tolist() == [3.0, 4.5]
    y = d("relu", aisys.tensor([-1.0, 2.0]), device="npu")
    assert y.tolist() == [0.0, 2.0]


def test_bad_order_and_unknown_op_are_reported():
    d = Dispatcher(order=lambda dev, dt, **kw: [(dev, dt)])
    with pytest.raises(LookupError, match="does not end with the reference"):
        d.resolve("add", "cpu", "float32")
    with pytest.raises(KeyError, match="no op named"):
        d.register("conv3d")


# ---- the eager path ---------------------------------------------------------------------------------------
def test_eager_ops_without_kernels_run_their_reference():
    assert not OPS["mul"].kernels                       # nothing registered: apply calls the reference directly
    r = DISPATCHER.resolve("mul", "cpu", "float32")
    assert r.key == (ANY, ANY) and r.kernel is None and r.fallback == "reference"


def test_a_registered_kernel_runs_on_the_eager_path_and_goes_away():
    calls = []

    def counting_mul(a, b):
        calls.append((a.dtype, a.flags.c_contiguous))
        return np.multiply(a, b)

    x = aisys.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    with DISPATCHER.registered("mul", counting_mul, device="cpu", dtype="float32", name="counting_mul"):
        assert OPS["mul"].kernels
        with DISPATCHER.recording() as log:
            y = x * x
        y.sum().backward()                              # the VJP's own mul ops dispatch too
        assert [r.kernel_name for r in log] == ["counting_mul"]
        np.testing.assert_array_equal(y.numpy(), x.numpy() ** 2)
        np.testing.assert_array_equal(x.grad.numpy(), 2 * x.numpy())
        x64 = aisys.tensor([1.0, 2.0], dtype=aisys.float64)
        (x64 * x64).numpy()                             # float64: no kernel (float64 does not fall back to float32)
    assert not OPS["mul"].kernels and len(calls) == 1 and calls[0] == (np.dtype(np.float32), True)


def test_bf16_upcasts_to_a_float32_kernel_and_casts_back():
    seen = []
    with DISPATCHER.registered("matmul", lambda a, b: seen.append(a.dtype) or np.matmul(a, b), dtype="float32",
                               name="sgemm"):
        a = aisys.randn(3, 4).bfloat16()
        out = a @ a.T
    assert seen == [np.dtype(np.float32)] and out.dtype is aisys.bfloat16
    np.testing.assert_allclose(out.float().numpy(), (a.float() @ a.float().T).numpy(), rtol=1e-2)


def test_layout_key_and_the_contiguous_copy_fallback():
    a = np.zeros((2, 3, 4, 5), np.float32)
    assert layout_of(a) == "contiguous" and layout_of(a.transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2)) == \
        "channels_last" and layout_of(a[:, :, ::2]) == "strided"
    got = []
    with DISPATCHER.registered("relu", lambda x: got.append(x.flags.c_contiguous) or np.maximum(x, 0), dtype="float32",
                               layout="contiguous", name="relu_rowmajor"):
        r = DISPATCHER.resolve("relu", "cpu", "float32", "strided")
        assert r.kernel_name == "relu_rowmajor" and r.compute_layout == "contiguous" and "copy strided→contiguous" in r.fallback
        t = aisys.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) - 6).T     # a transposed view
        np.testing.assert_array_equal(aisys.relu(t).numpy(), np.maximum(t.numpy(), 0))
    assert got == [True]


def test_register_kernel_is_the_eager_dispatchers_decorator():
    @register_kernel("neg", dtype="float64", name="neg64")
    def neg64(x):
        return -x
    try:
        assert DISPATCHER.kernels[("neg", "cpu", "float64", ANY)].name == "neg64"
        assert DISPATCHER.resolve("neg", "cpu", "float64").kernel_name == "neg64"
    finally:
        DISPATCHER.unregister("neg", dtype="float64")
    assert DISPATCHER.resolve("neg", "cpu", "float64").key == (ANY, ANY)
    with pytest.raises(KeyError, match="no kernel for neg"):
        DISPATCHER.unregister("neg", dtype="float64")
    with pytest.raises(ValueError, match="layout must be one of"):
        register_kernel("neg", layout="nchw")


def test_a_learners_order_plugs_into_the_eager_dispatcher():
    """Lab 03: with a fallback order that skips the upcast, a bf16 eager op finds no kernel and runs the reference."""
    def no_upcast(device, dtype, **kw):
        return [(device, dtype), (ANY, ANY)]
    with DISPATCHER.registered("add", np.add, dtype="float32", name="add32"):
        assert DISPATCHER.resolve("add", "cpu", "bfloat16").kernel_name == "add32"
        with DISPATCHER.using_order(no_upcast):
            assert DISPATCHER.resolve("add", "cpu", "bfloat16").key == (ANY, ANY)
        assert DISPATCHER.order is dispatch_order
