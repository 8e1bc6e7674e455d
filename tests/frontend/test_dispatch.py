"""The (op, device, dtype) dispatcher: fallback order and the resolution table."""
import numpy as np
import pytest

import aisys
from aisys.frontend.dispatch import ANY, Dispatcher, demo_dispatcher, dispatch_order


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
    assert "npu_cube_bf16" in table and "device npu→cpu" in table and table.splitlines()[1].startswith("---")


def test_dispatch_runs_the_kernel_and_casts_back():
    d = demo_dispatcher()
    calls = []
    d.register("add", "cpu", "float32", name="counting_add")(lambda a, b: calls.append(a.dtype) or a + b)
    x = aisys.tensor([1.5, 2.25]).bfloat16()
    out = d("add", x, x)
    assert calls == [np.dtype(np.float32)] and out.dtype is aisys.bfloat16 and out.numpy().astype(float).tolist() == [3.0, 4.5]
    y = d("relu", aisys.tensor([-1.0, 2.0]), device="npu")
    assert y.numpy().tolist() == [0.0, 2.0]


def test_bad_order_and_unknown_op_are_reported():
    d = Dispatcher(order=lambda dev, dt, **kw: [(dev, dt)])
    with pytest.raises(LookupError, match="does not end with the reference"):
        d.resolve("add", "cpu", "float32")
    with pytest.raises(KeyError, match="no op named"):
        d.register("conv3d")
