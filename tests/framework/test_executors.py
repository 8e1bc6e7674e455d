"""The op-info table run by every executor of the stack, each against the same independent reference.

    eager        ``apply``: the dispatcher and the numpy reference, with autodiff recording
    interpreter  a one-node graph through ``interpret`` (the IR's executable spec)
    compiled     a generated numba kernel: the op's scalar expression (an elementwise kernel), its reduction
                 (a reduce kernel), or, for a complex-out-fusable anchor, the anchor with an epilogue
    chip         the op lowered to the simulated chip: its layers carry the registry's FLOPs and bytes, and
                 the chip's own count of matrix work (im2col GEMM dims) agrees with the registry's FLOPs

An op an executor does not run is listed in ``UNSUPPORTED[executor]`` with the reason; a new op must land
in one or the other, or ``test_every_op_is_run_or_excused_by_every_executor`` fails.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import aisys
import aisys.compiler  # noqa: F401  (registers fused, conv2d_nhwc)
from aisys import chip
from aisys.compiler import codegen
from aisys.framework import dtypes as D
from aisys.framework import scalar as S
from aisys.framework.graph import Graph, interpret
from aisys.framework.registry import OPS, FusionKind
from aisys.framework.tensor import apply
from tests.framework.op_info import BY_NAME, EXEMPT, OPS_TABLE

_NO_EXPRESSION = ("no scalar expression or combiner in its definition, so no generated kernel computes it; "
                  "a compiled graph runs its numpy reference")
_BACKWARD = "a training (backward) op: the chip lowers inference graphs (its ChipLowering says why)"

UNSUPPORTED = {
    "eager": {},
    "interpreter": {},
    "compiled": {
        **{op: f"a view or re-indexing (injective): {_NO_EXPRESSION}" for op in
           ("reshape", "permute", "contiguous", "index", "concat", "pad", "gather", "embedding", "one_hot",
            "index_select")},
        **{op: f"opaque: {_NO_EXPRESSION}" for op in
           ("linear", "softmax", "log_softmax", "layer_norm", "cross_entropy", "mse_loss", "max_pool2d",
            "avg_pool2d", "index_backward", "scatter_add", "embedding_backward", "conv2d_backward_input",
            "conv2d_backward_weight", "max_pool2d_backward", "max_pool2d_select", "avg_pool2d_backward")},
        "var": f"a reduction that needs two passes (the mean, then the squares): {_NO_EXPRESSION}",
        "argmax": f"a reduction to an index, not a value: {_NO_EXPRESSION}",
        "argmin": f"a reduction to an index, not a value: {_NO_EXPRESSION}",
        "dropout": "impure (a fresh random draw each run): never fused, its reference runs",
        "argsort": f"a sort (each output depends on the whole row): {_NO_EXPRESSION}",
        "clone": f"a copy with its own storage (injective, like contiguous): {_NO_EXPRESSION}",
        **{op: f"quantization (round, clamp, fixed-point scale) has no scalar primitives yet: {_NO_EXPRESSION}"
           for op in ("quantize", "dequantize", "requantize", "fake_quant")},
        "batch_norm": f"normalizes along dim 1 with four per-channel operands: {_NO_EXPRESSION} "
                      f"(fold_conv_bn folds it into the conv first)",
    },
    "chip": {**{op: _BACKWARD for op in ("index_backward", "scatter_add", "embedding_backward", "conv2d_backward_input",
                                         "conv2d_backward_weight", "max_pool2d_backward", "max_pool2d_select",
                                         "avg_pool2d_backward")},
             "fake_quant": "quantization-aware training's float simulation: the chip runs the folded integer graph",
             "argsort": "the simulated chip has no sorting unit (a sort runs on the host)"},
}
EXECUTORS = tuple(UNSUPPORTED)


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)


def _check(got, expected, what):
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} vs {expected.shape}"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} vs {expected.dtype}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, err_msg=what, equal_nan=True, **_tol(expected.dtype))
    else:
        np.testing.assert_array_equal(got, expected, err_msg=what)


def _one_node_graph(name, sample):
    g = Graph(name)
    ins = [g.add_input(f"x{k}", a.shape, D.from_numpy(a.dtype)).id for k, a in enumerate(sample.args)]
    node = g.add(name, ins, sample.attrs)
    g.set_outputs([node.id])
    return g, node


# ---- coverage -------------------------------------------------------------------------------------------
def _supported(executor):
    return [r for r in OPS_TABLE if r.name not in UNSUPPORTED[executor]]


def test_every_op_is_run_or_excused_by_every_executor():
    for executor, excused in UNSUPPORTED.items():
        assert all(reason.strip() for reason in excused.values()), f"{executor}: an empty reason"
        run = {r.name for r in _supported(executor)}
        missing = set(OPS) - run - set(excused) - set(EXEMPT)
        assert not missing, (f"{executor}: ops neither run by this executor's table test nor listed in "
                             f"UNSUPPORTED[{executor!r}] with a reason: {sorted(missing)}")
        assert not set(excused) - set(OPS), f"{executor}: stale entries {sorted(set(excused) - set(OPS))}"


def test_the_compiled_list_says_what_the_registry_says():
    """An op is excused from the kernel executor exactly when its definition gives codegen nothing to emit."""
    for name, op in OPS.items():
        if name in EXEMPT:
            continue
        emits = op.scalar is not None or op.reduction is not None or op.fusion is FusionKind.COMPLEX_OUT_FUSABLE
        assert emits == (name not in UNSUPPORTED["compiled"]), name


def test_the_chip_list_says_what_the_registry_says():
    for name, op in OPS.items():
        if name not in EXEMPT:
            assert op.lowering.lowerable == (name not in UNSUPPORTED["chip"]), f"{name}: {op.lowering}"


# ---- eager and the interpreter ------------------------------------------------------------------------------
@pytest.mark.parametrize("row", _supported("eager"), ids=lambda r: r.name)
def test_eager(row):
    for s in row.samples(row.rng()):
        _check(apply(row.name, *[aisys.tensor(a) for a in s.args], **s.attrs).numpy(),
               row.reference(*s.args, **s.attrs), f"eager {row.name} {s}")


@pytest.mark.parametrize("row", _supported("interpreter"), ids=lambda r: r.name)
def test_interpreter(row):
    for s in row.samples(row.rng()):
        g, _ = _one_node_graph(row.name, s)
        _check(interpret(g, *s.args)[0], row.reference(*s.args, **s.attrs), f"interpret {row.name} {s}")


# ---- compiled: a generated kernel computes the op ------------------------------------------------------------
def _kernel_for(g, node):
    """The kernel of a fused group holding ``node`` (elementwise or reduce), or of the anchor with a ``neg``
    epilogue; returns (kernel, the epilogue applied to the reference)."""
    op = OPS[node.op]
    if op.fusion is FusionKind.COMPLEX_OUT_FUSABLE:
        body = g.copy()
        neg = body.add("neg", [node.id])
        body.set_outputs([neg.id])
        return codegen.EpilogueKernel(body), np.negative
    if op.reduction is not None:
        return codegen.ReduceKernel(g), None
    return codegen.ElementwiseKernel(g), None


def _kernel_cases(row, limit: int = 1):
    """The row's first sample a kernel takes — dtypes numba handles, and not a reduction of a 0-d value (the
    fusion pass leaves those alone) — in float32, the dtype models train in. One per op: every distinct
    source is a numba compile (a few hundred milliseconds on a clean checkout); broadcasting patterns, NaN
    and dtypes are tested at length in tests/compiler/test_codegen.py and test_differential.py."""
    out = []
    for s in row.samples(row.rng()):
        args = tuple(a.astype(np.float32) if a.dtype == np.float64 else a for a in s.args)
        g, node = _one_node_graph(row.name, type(s)(args, s.attrs, s.grad, s.note))
        if any(n.dtype.name not in codegen.KERNEL_DTYPES for n in g.nodes.values()):
            continue                                  # e.g. a cast to bfloat16: numba has no such arithmetic
        if OPS[row.name].reduction is not None and not args[0].shape:
            continue
        out.append((g, node, args, s))
        if len(out) == limit:
            break
    return out


@pytest.mark.parametrize("row", _supported("compiled"), ids=lambda r: r.name)
def test_compiled_kernel(row):
    cases = _kernel_cases(row)
    assert cases, f"no sample of {row.name} has dtypes a kernel handles"
    for g, node, args, s in cases:
        kern, after = _kernel_for(g, node)
        expected = row.reference(*args, **s.attrs).astype(node.dtype.np)
        _check(kern(*args), after(expected) if after else expected, f"kernel {row.name} {s} in {args[0].dtype}")


def test_the_six_templates_no_other_test_named_run_through_the_table():
    """eq, ne, le, logical_not, sign and broadcast_to are emitted from their scalar expressions above."""
    for name in ("eq", "ne", "le", "logical_not", "sign", "broadcast_to"):
        assert name in {r.name for r in _supported("compiled")} and OPS[name].scalar is not None


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if op.scalar is not None))
def test_the_scalar_expression_is_the_reference(name):
    """Each op's expression, evaluated with numpy, is its reference (so the kernels, the fusion decision and
    the chip read the same function the eager path computes)."""
    op, row = OPS[name], BY_NAME[name]
    for s in row.samples(row.rng()):
        for dtype in (np.float64, np.float32):
            args = [a.astype(dtype) if a.dtype == np.float64 else a for a in s.args]
            ref = np.asarray(op.ref(*args, **s.attrs))
            got = S.evaluate(op.scalar_expr(len(args), **s.attrs), args, D.from_numpy(ref.dtype))
            _check(np.broadcast_to(got, ref.shape).astype(ref.dtype), ref, f"{name} {s}")


# ---- the chip -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", _supported("chip"), ids=lambda r: r.name)
def test_chip_cost(row):
    lowered = 0
    for s in row.samples(row.rng()):
        g, node = _one_node_graph(row.name, s)
        cost = OPS[row.name].cost([g.nodes[i].spec for i in node.inputs], node.spec, **node.attrs)
        try:
            layers = chip.graph_to_layers(g)
        except ValueError as e:                        # a case the chip model leaves out says which and why
            assert f"%{node.id} = {row.name}" in str(e) and "model" in str(e), str(e)
            continue
        lowered += 1
        if OPS[row.name].lowering.unit == "addressing":
            assert layers == [], f"{row.name} is addressing only, yet lowered to {layers}"
            continue
        assert sum(layer.flops for layer in layers) == cost.flops, f"{row.name} {s}: FLOPs"
        assert sum(layer.registry_bytes for layer in layers) == cost.bytes, f"{row.name} {s}: bytes"
        for layer in layers:
            if layer.macs:                             # the chip's own GEMM dims count the same multiply-adds
                third = g.nodes[node.inputs[2]].shape if len(node.inputs) > 2 else None
                bias = node.numel if third is not None and len(third) == 1 else 0   # a bias adds once per output
                #  (integer GEMMs take 0-d zero points there, not a bias)
                assert 2 * layer.macs + bias == cost.flops, f"{row.name} {s}: {layer.describe()}"
        chip.lower_layers(layers, "davinci")
    assert lowered, f"no sample of {row.name} lowers to the chip"


@pytest.mark.parametrize("name", sorted(UNSUPPORTED["chip"]))
def test_chip_refuses_with_the_op_and_the_reason(name):
    row = BY_NAME[name]
    g, node = _one_node_graph(name, row.samples(row.rng())[0])
    with pytest.raises(ValueError, match=rf"%{node.id} = {name} has no chip model: {re.escape(OPS[name].lowering.why)}"):
        chip.graph_to_layers(g)


def test_every_chip_instruction_the_registry_names_is_one_the_chip_has():
    """The registry names instructions; the chip prices them (vector.DEFAULT_OP_CYCLES, its matrix ISA)."""
    from aisys.chip.from_graph import LAYER_OF_INSTRUCTION
    from aisys.chip.vector import DEFAULT_OP_CYCLES
    for name, op in OPS.items():
        low = op.lowering
        if low.unit == "vector" and low.instruction:
            assert low.instruction in DEFAULT_OP_CYCLES or ("vector", low.instruction) in LAYER_OF_INSTRUCTION, name
        elif low.unit == "matrix":
            assert ("matrix", low.instruction) in LAYER_OF_INSTRUCTION, name
    assert {p.vector for p in S.PRIMS.values()} <= set(DEFAULT_OP_CYCLES)     # derived chains too


def test_the_random_graph_generator_draws_ops_the_kernels_compute():
    """compiler.testing's vocabularies are a fuzzer's grammar (chosen for safe domains), not op semantics:
    each op it draws must be one the registry gives a scalar expression or a combiner."""
    from aisys.compiler import testing
    assert all(OPS[n].scalar is not None for n in testing.UNARY + testing.BINARY)
    assert all(OPS[n].reduction is not None for n in testing.REDUCE)
