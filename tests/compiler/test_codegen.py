"""Generated kernels (fused groups through the loop back end): the fused loops, the source text, numpy
semantics (NaN, inf, ints, bools), reductions, in-place epilogues and the on-disk cache."""
import os
import subprocess
import sys

import numpy as np
import pytest

from aisys.compiler import fuse, run_pass
from aisys.compiler.codegen import EpilogueKernel, build_kernel, kernel_source
from aisys.compiler.loops import group as loops_group
from aisys.framework import dtypes as dt
from aisys.framework.graph import Graph, interpret


def _fused(build, *shapes, dtype=dt.float32):
    """Build a graph from ``build(g, *inputs) -> out id``, fuse it, return (graph, fused node)."""
    g = Graph("k")
    xs = [g.add_input(f"x{k}", s, dtype if not isinstance(dtype, list) else dtype[k]).id for k, s in enumerate(shapes)]
    g.set_outputs([build(g, *xs)])
    res = run_pass(fuse, g)
    fused = [n for n in res.graph.nodes.values() if n.op == "fused"]
    assert len(fused) == 1, res.summary()
    return g, res.graph, fused[0]


def _run_both(g, opt, node, arrays):
    kern = build_kernel(node)
    got = kern(*[arrays[g.inputs.index(i)] if i in g.inputs else None for i in node.inputs])
    want = interpret(g, *arrays)[0]
    return kern, got, want


def test_fuse_groups_merge_dims_every_input_reads_alike():
    # same shapes: one flat loop
    assert loops_group.fuse_groups([(2, 3, 4), (2, 3, 4)], (2, 3, 4)) == [[0, 1, 2]]
    # a row bias (4,) against (2,3,4): leading dims merge, the last stays separate
    assert loops_group.fuse_groups([(2, 3, 4), (4,)], (2, 3, 4)) == [[0, 1], [2]]
    # a scalar is broadcast everywhere; size-1 output dims join a neighbour
    assert loops_group.fuse_groups([(1, 5), ()], (1, 5)) == [[0, 1]]
    assert loops_group.fuse_groups([(4, 1, 5), (1, 1, 5)], (4, 1, 5)) == [[0, 1], [2]]
    assert loops_group.fuse_groups([(1, 1)], (1, 1)) == [[0, 1]]


def test_elementwise_kernel_is_one_flat_loop_with_hoisted_scalars():
    def build(g, x, w, b, s):
        y = g.add("relu", (g.add("add", (g.add("mul", (x, w)).id, b)).id,)).id
        return g.add("mul", (y, s)).id
    g, opt, node = _fused(build, (10, 100), (10, 100), (10, 100), ())
    kern = build_kernel(node)
    src = kern.kernel.source                                          # what numba compiles
    assert "# aisys fused elementwise kernel: mul → add → relu → mul" in src
    assert src.count("for ") == 1 and "range(out.shape[0])" in src   # the fused loop, its size read from out
    assert "x3_0 = x3[0]" in src                                      # the scalar is loaded before the loop
    assert "@njit(cache=True, error_model='numpy', boundscheck=False)" in src and "fastmath" not in src
    assert "100" not in src and "1000" not in src                     # no size in the source
    # the pass log's view: the schedule, the loop nest (with the sizes), then the numba source
    shown = kernel_source(node)
    assert "fuse(out, i, j)" in shown and "#       for ij in range(1000):" in shown and shown.endswith(src)
    assert [st.name for st in kern.schedule.steps] == ["compute_inline"] * 3 + ["fuse"]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((10, 100)).astype(np.float32) for _ in range(3)] + [np.float32(0.5)]
    kern, got, want = _run_both(g, opt, node, arrays)
    np.testing.assert_array_equal(got, want)                          # no contraction: the reference's roundings


def test_row_bias_is_two_loops_and_shared_values_are_computed_once():
    def build(g, x, b):
        return g.add("relu", (g.add("add", (x, b)).id,)).id
    g, opt, node = _fused(build, (2, 3, 4), (4,))
    src = build_kernel(node).kernel.source
    assert src.count("for ") == 2 and "= x1[i1]" in src and "= x0[i0, i1]" in src   # loaded first, as values
    assert src.count(" + ") == 1 and "np.float32(" not in src.split("def kernel")[1]   # the add, once, for four uses
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((2, 3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    kern, got, want = _run_both(g, opt, node, arrays)
    np.testing.assert_array_equal(got, want)


def test_same_structure_different_sizes_share_one_kernel_source():
    def build(g, x, y):
        return g.add("tanh", (g.add("sub", (x, y)).id,)).id
    srcs = {build_kernel(_fused(build, s, s)[2]).kernel.source for s in [(3,), (7, 5), (2, 3, 4)]}
    assert len(srcs) == 1


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_nan_propagates_like_numpy(op):
    def build(g, x, y):
        return g.add("neg", (g.add(op, (x, y)).id,)).id
    g, opt, node = _fused(build, (6,), (6,))
    x = np.array([np.nan, 1.0, -1.0, np.nan, 2.0, -0.0], np.float32)
    y = np.array([0.0, np.nan, -2.0, np.nan, 2.0, 0.0], np.float32)
    kern, got, want = _run_both(g, opt, node, [x, y])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_relu_sigmoid_gelu_and_division_by_zero_follow_the_references():
    def build(g, x, y):
        a = g.add("relu", (g.add("div", (x, y)).id,)).id
        b = g.add("sigmoid", (x,)).id
        return g.add("add", (g.add("gelu", (a,)).id, b)).id
    g, opt, node = _fused(build, (7,), (7,))
    x = np.array([1.0, -1.0, 0.0, np.nan, 50.0, -50.0, 3.0], np.float32)
    y = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 2.0, -0.5], np.float32)
    kern, got, want = _run_both(g, opt, node, [x, y])
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("dtype", [dt.float32, dt.float64])
def test_gelu_forms_and_erf_follow_the_op(dtype):
    """The kernel template reads the op's attrs: exact GELU (erf, the default) and the tanh form differ by up
    to 5e-4, so a template that ignored `approximate` would be silently wrong."""
    def build(g, x):
        exact = g.add("gelu", (x,)).id
        tanh = g.add("gelu", (x,), {"approximate": "tanh"}).id
        return g.add("add", (g.add("mul", (exact, g.add("erf", (tanh,)).id)).id, tanh)).id
    g, opt, node = _fused(build, (9,), dtype=dtype)
    src = build_kernel(node).kernel.source
    assert "math.erfc" in src and "math.erf(" in src and "np.tanh" in src and "import math" in src
    x = np.array([-9.0, -3.0, -1.0, -0.3, 0.0, 0.4, 1.0, 2.5, 7.0], dtype.np)
    kern, got, want = _run_both(g, opt, node, [x])
    # float32: numba's tanhf and numpy's tanh may differ by an ulp, which 1 + tanh(−2.4) magnifies to ~1e-7
    np.testing.assert_allclose(got, want, rtol=2e-7 if dtype is dt.float32 else 1e-14,
                               atol=2e-7 if dtype is dt.float32 else 1e-300)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_integer_and_bool_ops():
    def build(g, a, b):
        c = g.add("gt", (a, b)).id
        s = g.add("where", (c, g.add("sub", (a, b)).id, g.add("abs", (b,)).id)).id
        return g.add("div", (s, b)).id            # int / int is true division → float32
    g, opt, node = _fused(build, (8,), (8,), dtype=dt.int64)
    a = np.array([5, -3, 0, 7, 2, -8, 1, 0], np.int64)
    b = np.array([2, 3, 0, -7, 2, 4, 0, -1], np.int64)
    kern, got, want = _run_both(g, opt, node, [a, b])
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, equal_nan=True)


def test_casts_inside_a_kernel():
    def build(g, x):
        c = g.add("cast", (g.add("mul", (x, x)).id,), {"dtype": dt.int32}).id
        return g.add("cast", (g.add("neg", (c,)).id,), {"dtype": dt.float64}).id
    g, opt, node = _fused(build, (5,))
    x = np.array([1.5, -2.7, 3.9, 0.2, -0.9], np.float32)
    kern, got, want = _run_both(g, opt, node, [x])
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op,dim,keepdim", [("sum", 1, False), ("mean", (0, 2), True), ("max", None, False),
                                            ("min", 0, True), ("sum", -1, True), ("max", 2, False)])
def test_reduce_kernels_match_numpy(op, dim, keepdim):
    def build(g, x, y):
        e = g.add("mul", (g.add("tanh", (x,)).id, y)).id
        return g.add(op, (e,), {"dim": dim, "keepdim": keepdim}).id
    g, opt, node = _fused(build, (3, 4, 5), (4, 1))
    assert node.attrs["kind"] == "reduce"
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((3, 4, 5)).astype(np.float32), rng.standard_normal((4, 1)).astype(np.float32)]
    kern, got, want = _run_both(g, opt, node, arrays)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_reduce_over_inner_dims_uses_a_local_accumulator():
    def build(g, x):
        return g.add("sum", (g.add("exp", (x,)).id,), {"dim": (1, 2), "keepdim": False}).id
    g, opt, node = _fused(build, (3, 4, 5))
    src = build_kernel(node).kernel.source
    assert "acc_acc_0 = _C0" in src and "acc_acc_0 = (acc_acc_0 + " in src   # a register accumulator, float64
    assert "for i2 in range(x0.shape[2])" in src and "x0[i0, i1, i2]" in src   # the reduction loops innermost
    shown = build_kernel(node).source
    assert "compute_at(acc, out, l)" in shown and shown.index("for r2") > shown.index("for r1") > shown.index("for i ")
    x = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(np.float32)
    kern, got, want = _run_both(g, opt, node, [x])
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sum_to_and_max_with_nan():
    def build(g, x):
        return g.add("sum_to", (g.add("neg", (x,)).id,), {"shape": (1, 4)}).id
    g, opt, node = _fused(build, (3, 2, 4))
    x = np.random.default_rng(3).standard_normal((3, 2, 4)).astype(np.float32)
    kern, got, want = _run_both(g, opt, node, [x])
    np.testing.assert_allclose(got, want, rtol=1e-5)

    def build2(g, x):
        return g.add("max", (g.add("abs", (x,)).id,), {"dim": 1, "keepdim": False}).id
    g, opt, node = _fused(build2, (2, 3))
    x = np.array([[1.0, np.nan, 3.0], [-4.0, 2.0, 0.5]], np.float32)
    kern, got, want = _run_both(g, opt, node, [x])
    np.testing.assert_array_equal(np.isnan(got), [True, False])
    assert got[1] == want[1] == 4.0


def test_epilogue_runs_in_place_on_the_anchor_buffer():
    def build(g, x, w, b):
        return g.add("relu", (g.add("add", (g.add("matmul", (x, w)).id, b)).id,)).id
    g, opt, node = _fused(build, (6, 5), (5, 3), (3,))
    kern = build_kernel(node)
    assert isinstance(kern, EpilogueKernel) and kern.in_place
    assert "in place" in kern.source and "anchor: matmul" in kern.source
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(6, 5), (5, 3), (3,)]]
    np.testing.assert_allclose(kern(*arrays), interpret(g, *arrays)[0], rtol=1e-6)

    def build_wide(g, x, w, c):                   # the epilogue broadcasts the product to a bigger shape
        return g.add("add", (g.add("matmul", (x, w)).id, c)).id
    g, opt, node = _fused(build_wide, (6, 5), (5, 3), (2, 6, 3))
    kern = build_kernel(node)
    assert not kern.in_place
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(6, 5), (5, 3), (2, 6, 3)]]
    np.testing.assert_allclose(kern(*arrays), interpret(g, *arrays)[0], rtol=1e-6)


def test_unsupported_dtypes_are_not_fused():
    g = Graph("half")
    x = g.add_input("x", (4,), dt.float16)
    y = g.add("neg", (g.add("exp", (x.id,)).id,))
    g.set_outputs([y.id])
    res = run_pass(fuse, g)
    assert not res.changed
    with pytest.raises(TypeError, match="generated kernels support"):
        loops_group.from_group(_body_of(g))


def _body_of(g):
    b = Graph("b")
    m = {g.inputs[0]: b.add_input("in0", g.nodes[g.inputs[0]].shape, g.nodes[g.inputs[0]].dtype).id}
    for n in g.op_nodes:
        m[n.id] = b.add(n.op, [m[i] for i in n.inputs], n.attrs).id
    b.set_outputs([m[g.outputs[0]]])
    return b


def test_build_kernel_needs_a_fused_node():
    g = Graph("g")
    x = g.add_input("x", (2,))
    with pytest.raises(ValueError, match="expects a fused node"):
        build_kernel(g.add("neg", (x.id,)))


def test_kernel_cache_files_and_reload_in_a_new_process(tmp_path):
    env = dict(os.environ, AISYS_CACHE_DIR=str(tmp_path), NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    script = """
import numpy as np, json, sys
from aisys.framework.graph import Graph
from aisys.compiler import run_pass, fuse
from aisys.compiler.codegen import build_kernel
g = Graph("c"); x = g.add_input("x", (16,))
y = g.add("cos", (g.add("sin", (x.id,)).id,)); g.set_outputs([y.id])
node = [n for n in run_pass(fuse, g).graph.nodes.values() if n.op == "fused"][0]
k = build_kernel(node)
out = k(np.arange(16, dtype=np.float32))
assert np.allclose(out, np.cos(np.sin(np.arange(16, dtype=np.float32))))
print(json.dumps({"hits": sum(k.fn.stats.cache_hits.values()), "misses": sum(k.fn.stats.cache_misses.values())}))
"""
    import json
    runs = [json.loads(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs[0] == {"hits": 0, "misses": 1}         # first process compiles and stores
    assert runs[1] == {"hits": 1, "misses": 0}         # the second loads the machine code from disk
    files = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert any(f.startswith("k_") and f.endswith(".py") for f in files) and "__pycache__" in files
    assert any(p.suffix == ".nbi" for p in (tmp_path / "kernels" / "__pycache__").iterdir())


def test_kernel_cache_refuses_a_tampered_file(tmp_path, monkeypatch):
    from aisys.kernels import jit
    monkeypatch.setenv("AISYS_CACHE_DIR", str(tmp_path))
    src = "# test kernel\ndef kernel(x):\n    return x\n"
    path = tmp_path / "kernels" / f"k_{jit.kernel_key(src)}.py"
    path.parent.mkdir(parents=True)
    path.write_text("# edited by hand\n")
    with pytest.raises(RuntimeError, match="exists with different content"):
        jit.load_kernel(src)


@pytest.mark.parametrize("shape,reduce", [((0, 3), False), ((0, 3), True), ((3, 0), True)])
def test_groups_over_empty_tensors_run_through_the_references(shape, reduce):
    """A loop nest over an empty tensor has nothing to run: the result is empty, or a reduction's identity."""
    def build(g, x):
        y = g.add("exp", (g.add("neg", (x,)).id,)).id
        return g.add("sum", (y,), {"dim": 1, "keepdim": False}).id if reduce else y
    g, opt, node = _fused(build, shape)
    kern, got, want = _run_both(g, opt, node, [np.zeros(shape, np.float32)])
    assert "empty tensor" in kern.source and got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    out = np.full(want.shape, np.nan, np.float32)
    kern.bind(out)([np.zeros(shape, np.float32)])
    np.testing.assert_array_equal(out, want)
