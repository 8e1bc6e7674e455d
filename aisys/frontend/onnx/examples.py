"""ONNX models built with ``onnx.helper`` (no downloads): what lab 04, the tests and the benchmark import.

- :func:`resnet_block` — a ResNet basic block in eval mode (He et al. 2016) as an exporter writes it, with
  the leftovers every graph pass of lab 04 finds (Identity, Dropout, a constant scale, a transpose pair,
  a duplicated output, an unused head);
- :func:`resnet18` — the ResNet-18 topology (conv 7×7/2, max-pool, 4 stages of 2 basic blocks with 1×1
  downsampling, global average pool, a fully connected head) with seeded weights, for timing the
  importer, the passes and the chip's lowering at a real model's size;
- :func:`gemm_mlp` — two Gemm layers using every Gemm attribute (lab 04's exercise 4.4).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def node(self, op, inputs, output, name=None, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=name or output, **attrs))
        return output

    def conv_bn(self, x, prefix, cin, cout, k, stride, relu=True):
        w = self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
        self.init(f"{prefix}.weight", w)
        y = self.node("Conv", [x, f"{prefix}.weight"], f"{prefix}.out", strides=[stride, stride],
                      pads=[k // 2] * 4, kernel_shape=[k, k])
        bn = prefix.replace("conv", "bn")
        for nm, v in (("weight", self.rng.uniform(0.5, 1.5, cout)), ("bias", self.rng.uniform(-0.5, 0.5, cout)),
                      ("running_mean", self.rng.uniform(-0.5, 0.5, cout)),
                      ("running_var", self.rng.uniform(0.5, 2.0, cout))):
            self.init(f"{bn}.{nm}", v)
        y = self.node("BatchNormalization", [y] + [f"{bn}.{nm}" for nm in ("weight", "bias", "running_mean",
                                                                            "running_var")], f"{bn}.out", epsilon=1e-5)
        return self.node("Relu", [y], f"{prefix}.relu") if relu else y

    def model(self, name, inputs, outputs):
        g = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="aisys.onnx.examples")
        m.ir_version = 8
        return onnx.shape_inference.infer_shapes(m)     # outputs typed and shaped, as exporters write them


def resnet_block(channels: int = 4, size: int = 8, seed: int = 0, exporter_leftovers: bool = True):
    """A ResNet basic block (Conv-BN-ReLU-Conv-BN, + x, ReLU) as an ``onnx.ModelProto``.

    ``exporter_leftovers`` adds what exporters often leave behind, so every pass of lab 04 has work: an
    Identity and a Dropout (the converter drops them), a scale computed from two constants (2 × 0.5:
    constant folding) applied as a multiply by one (simplify), a transpose pair that cancels (simplify),
    the final ReLU written twice for two outputs (CSE), and an unused auxiliary head (DCE)."""
    b = _Builder(seed)
    C = channels
    h = b.conv_bn("x", "conv1", C, C, 3, 1)
    skip = "x"
    if exporter_leftovers:
        two = b.node("Constant", [], "two", value=numpy_helper.from_array(np.array(2.0, np.float32)))
        half = b.node("Constant", [], "half", value=numpy_helper.from_array(np.array(0.5, np.float32)))
        scale = b.node("Mul", [two, half], "scale")
        h = b.node("Mul", [h, scale], "apply_scale")
        h = b.node("Dropout", [h], "dropout")
        h = b.node("Transpose", [h], "to_nhwc", perm=[0, 2, 3, 1])
        h = b.node("Transpose", [h], "to_nchw", perm=[0, 3, 1, 2])
        skip = b.node("Identity", ["x"], "shortcut")
        b.node("Sigmoid", ["conv1.relu"], "aux_head")                    # computed, never used
    h = b.conv_bn(h, "conv2", C, C, 3, 1, relu=False)
    a = b.node("Add", [h, skip], "residual")
    y = b.node("Relu", [a], "y")
    outs = [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)]
    if exporter_leftovers:
        f = b.node("Relu", [a], "features", name="relu_copy")          # the same value, written twice
        outs.append(helper.make_tensor_value_info(f, TensorProto.FLOAT, None))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, size, size])
    return b.model("resnet_block", [x], outs)


def resnet18(seed: int = 0, image_size: int = 224, num_classes: int = 1000, batch: int = 1):
    """The ResNet-18 topology with seeded weights (11.7 M parameters at 1000 classes) as an ``onnx.ModelProto``."""
    b = _Builder(seed)
    h = b.conv_bn("input", "conv1", 3, 64, 7, 2)
    h = b.node("MaxPool", [h], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for blk in range(2):
            stride = 2 if stage > 1 and blk == 0 else 1
            p = f"layer{stage}.{blk}"
            y = b.conv_bn(h, f"{p}.conv1", cin, cout, 3, stride)
            y = b.conv_bn(y, f"{p}.conv2", cout, cout, 3, 1, relu=False)
            skip = h
            if stride != 1 or cin != cout:
                skip = b.conv_bn(h, f"{p}.downsample.conv", cin, cout, 1, stride, relu=False)
            h = b.node("Relu", [b.node("Add", [y, skip], f"{p}.add")], f"{p}.relu")
            cin = cout
    h = b.node("GlobalAveragePool", [h], "avgpool")
    h = b.node("Flatten", [h], "flatten", axis=1)
    b.init("fc.weight", b.rng.standard_normal((num_classes, 512)) * np.sqrt(1.0 / 512))
    b.init("fc.bias", np.zeros(num_classes))
    h = b.node("Gemm", [h, "fc.weight", "fc.bias"], "logits", transB=1)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, image_size, image_size])
    return b.model("resnet18", [x], [helper.make_tensor_value_info(h, TensorProto.FLOAT, None)])


def gemm_mlp(seed: int = 0, batch: int = 3, sizes=(6, 5, 4)):
    """A two-layer MLP written with Gemm the way exporters write Linear layers (transB=1), the second with
    alpha=0.5, beta=2 and its input transposed (transA=1), so every Gemm attribute is exercised."""
    b = _Builder(seed)
    n0, n1, n2 = sizes
    b.init("fc1.weight", b.rng.standard_normal((n1, n0)) * 0.5)
    b.init("fc1.bias", b.rng.uniform(-0.5, 0.5, n1))
    b.init("fc2.weight", b.rng.standard_normal((n1, n2)) * 0.5)
    b.init("fc2.bias", b.rng.uniform(-0.5, 0.5, (1, n2)))
    h = b.node("Gemm", ["x", "fc1.weight", "fc1.bias"], "fc1", transB=1)
    h = b.node("Relu", [h], "relu")
    h = b.node("Transpose", [h], "h_t", perm=[1, 0])
    y = b.node("Gemm", [h, "fc2.weight", "fc2.bias"], "y", transA=1, alpha=0.5, beta=2.0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, n0])
    return b.model("gemm_mlp", [x], [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)])
