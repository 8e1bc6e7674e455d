"""ONNX's own backend node tests (``onnx.backend.test``, shipped in the onnx wheel) against aisys.onnx.Backend.

The suite's include filters select the tests of every operator in ``aisys.frontend.onnx.conformance``;
each excluded test is skipped with its written reason. ``benchmarks/bench_onnx.py`` prints the pass count
per operator.
"""
from __future__ import annotations

import unittest
import warnings

import onnx.backend.test

from aisys.frontend.onnx import Backend, conformance

with warnings.catch_warnings():          # the suite's case generators overflow casts on purpose
    warnings.simplefilter("ignore")
    _runner = onnx.backend.test.BackendTest(Backend, __name__)
for _pat in conformance.OPERATOR_TESTS.values():
    _runner.include(_pat.replace("$", "_cpu$"))
for _pat in conformance.excluded():
    _runner.exclude(_pat)

OnnxBackendNodeModelTest = _runner.test_cases["OnnxBackendNodeModelTest"]
for _name in [n for n in vars(OnnxBackendNodeModelTest) if n.startswith("test_")]:
    _base = _name[:-len("_cpu")] if _name.endswith("_cpu") else None
    if _base is None or conformance.operator_of(_base) is None:
        delattr(OnnxBackendNodeModelTest, _name)        # other operators, and the CUDA copies
        continue
    _why = conformance.exclusion_reason(_base)
    if _why:
        setattr(OnnxBackendNodeModelTest, _name, unittest.skip(_why)(getattr(OnnxBackendNodeModelTest, _name)))


def test_every_listed_operator_has_running_backend_tests():
    """Exclusions are narrow: each operator of issue 21's list keeps tests that actually run."""
    listed = ["Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Relu", "LeakyRelu",
              "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "BatchNormalization", "LayerNormalization", "MaxPool",
              "AveragePool", "GlobalAveragePool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat",
              "Split", "Slice", "Gather", "Expand", "Where", "ReduceMean", "ReduceSum", "ReduceMax", "Cast",
              "Constant", "Identity", "Dropout", "Shape"]
    listed += ["Gelu", "Erf"] if conformance.erf_available() else ["Gelu"]
    running = {}
    for name in vars(OnnxBackendNodeModelTest):
        if name.startswith("test_") and not conformance.exclusion_reason(name[:-4]):
            op = conformance.operator_of(name[:-4])
            running[op] = running.get(op, 0) + 1
    assert not [op for op in listed if not running.get(op)], running
    assert sum(running.values()) >= 400
