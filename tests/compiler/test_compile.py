"""aisys.compile end to end: trace → passes → fused numba kernels, for a function and a training step."""
import subprocess
import sys

import numpy as np
import pytest

import aisys
from aisys.compiler import CompiledFunction, PassLog, dce
from aisys.framework.graph import Graph


def _mlp_params(seed=0):
    aisys.manual_seed(seed)
    p = {"w1": aisys.randn(16, 32) * 0.2, "b1": aisys.zeros(32), "w2": aisys.randn(32, 4) * 0.2, "b2": aisys.zeros(4)}
    for t in p.values():
        t.requires_grad_()
    return p


def test_compile_a_function_fuses_and_matches_eager():
    p = _mlp_params()

    def f(x):
        h = (x @ p["w1"] + p["b1"]).relu()
        return (h @ p["w2"] + p["b2"]).sigmoid() * 2.0 + 0.0

    x = aisys.randn(8, 16)
    cf = aisys.compile(f, x, params=p)
    assert isinstance(cf, CompiledFunction) and isinstance(cf.pass_log, PassLog)
    assert cf.graph.count_ops() == {"fused": 2}
    assert set(cf.kernels) == {f"%{n.id}" for n in cf.graph.nodes.values() if n.op == "fused"}
    assert all("@njit(cache=True" in src for src in cf.kernels.values())
    y = cf(x)
    assert isinstance(y, aisys.Tensor)
    np.testing.assert_allclose(y.numpy(), f(x).numpy(), rtol=1e-6, atol=1e-6)
    x2 = aisys.randn(8, 16)
    np.testing.assert_allclose(cf(x2).numpy(), f(x2).numpy(), rtol=1e-6, atol=1e-6)
    text = cf.summary()
    assert "fused kernels:" in text and "epilogue: matmul+add+relu" in text
    assert "2 fused kernels" in repr(cf)


def test_parameters_are_read_live_at_every_call():
    p = _mlp_params(1)

    def f(x):
        return (x @ p["w1"] + p["b1"]).relu()

    x = aisys.randn(4, 16)
    cf = aisys.compile(f, x, params=p)
    p["b1"]._data[...] = 5.0
    np.testing.assert_allclose(cf(x).numpy(), f(x).numpy(), rtol=1e-6)


def test_compiled_training_step_matches_eager_steps():
    p = _mlp_params(2)
    init = {k: v.numpy().copy() for k, v in p.items()}

    def step(x, y):
        out = (x @ p["w1"] + p["b1"]).relu() @ p["w2"] + p["b2"]
        loss = ((out - y) ** 2).mean()
        loss.backward()
        with aisys.no_grad():
            for t in p.values():
                t.assign_(t - 0.05 * t.grad)
                t.grad = None
        return loss

    x, y = aisys.randn(8, 16), aisys.randn(8, 4)
    eager = [step(x, y).item() for _ in range(4)]
    after_eager = {k: v.numpy().copy() for k, v in p.items()}
    for k, v in p.items():
        v._data[...] = init[k]
    cf = aisys.compile(step, x, y, params=p)
    assert cf.graph.count_ops().get("fused", 0) >= 4
    compiled = [cf(x, y).item() for _ in range(4)]
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    for k in p:
        np.testing.assert_allclose(p[k].numpy(), after_eager[k], rtol=1e-5, atol=1e-6)
    assert eager[-1] < eager[0]


def test_backends_agree_and_graph_input_works():
    g = Graph("g")
    x = g.add_input("x", (3, 5))
    y = g.add("tanh", (g.add("mul", (x.id, x.id)).id,))
    g.set_outputs([y.id, x.id])
    a = aisys.compile(g, passes=["fuse", dce])
    b = aisys.compile(g, passes=["fuse", dce], backend="reference")
    xs = np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5)
    ya, xa = a(xs)
    yb, xb = b(xs)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(xa.numpy(), xs)
    assert a.kernel_source(a.graph.outputs[0]).startswith("# aisys fused elementwise kernel: mul → tanh")
    with pytest.raises(KeyError, match="not a fused node"):
        a.kernel_source(x.id)


def test_errors_that_teach():
    with pytest.raises(TypeError, match="give example inputs"):
        aisys.compile(lambda x: x)
    with pytest.raises(TypeError, match="expected a function, a module or a Graph"):
        aisys.compile(42, 1)
    with pytest.raises(ValueError, match="unknown pass 'nope'; known passes"):
        aisys.compile(lambda x: x.relu(), aisys.randn(2), passes=["nope"])
    with pytest.raises(ValueError, match="backend must be one of"):
        aisys.compile(lambda x: x.relu(), aisys.randn(2), backend="cuda")
    cf = aisys.compile(aisys.trace(lambda x: x.relu() * 2.0, aisys.randn(2, 3)))   # a Graph: shapes are fixed
    with pytest.raises(ValueError, match=r"expects shape \(2, 3\).*compile again for new shapes"):
        cf(aisys.randn(4, 3))
    with pytest.raises(ValueError, match="takes 1 inputs"):
        cf.run_arrays()


def fresh_python(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (what ``import aisys`` loads is only visible there)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


HEAVY = ("numba", "ml_dtypes", "onnx", "onnxruntime", "mpi4py", "IPython", "ipywidgets", "jupyter_core",
         "jupyterlab", "anywidget", "torch")


def test_import_aisys_loads_none_of_the_heavy_packages():
    """``import aisys`` stays fast (benchmarks/bench_compile.py prints its time): numba, ml_dtypes, onnx, mpi4py
    and Jupyter load on first use; so do numpy.random and the conv kernels (on the first random draw / conv)."""
    code = ("import sys, aisys; heavy = " + repr(HEAVY) + " + ('numpy.random', 'aisys.kernels.conv'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = fresh_python(code)
    assert out == "[]", f"import aisys loaded {out}"


def test_import_aisys_and_the_compiler_never_load_numba_or_onnx():
    code = ("import sys, aisys, aisys.compiler, aisys.kernels, aisys.frontend, aisys.models, aisys.chip; "
            "f = aisys.compile; assert 'numba' not in sys.modules, 'numba imported'; "
            "assert 'onnx' not in sys.modules, 'onnx imported'; print('ok')")
    assert fresh_python(code) == "ok"


def test_the_conv_kernels_load_on_the_first_conv_or_dispatcher_lookup():
    """aisys.kernels.conv registers conv2d's kernels when it loads: the first eager conv runs them (not the
    reference), and a dispatcher lookup before any conv sees them too."""
    code = ("import sys, aisys; from aisys.framework.dispatch import DISPATCHER; "
            "assert 'aisys.kernels.conv' not in sys.modules; "
            "r = DISPATCHER.resolve('conv2d_backward_input', 'cpu', aisys.float32); "
            "assert 'aisys.kernels.conv' in sys.modules and r.kernel is not None, r; print('ok')")
    assert fresh_python(code) == "ok"
    code = ("import aisys; from aisys.framework.dispatch import DISPATCHER\n"
            "x, w = aisys.ones(1, 2, 5, 5), aisys.ones(3, 2, 3, 3)\n"
            "with DISPATCHER.recording() as log: y = aisys.nn.functional.conv2d(x, w)\n"
            "print([r.kernel_name for r in log], float(y[0, 0, 1, 1]))")
    assert fresh_python(code) == "['aisys.kernels.conv2d'] 18.0"


def test_import_aisys_leaves_ml_dtypes_until_a_bfloat16_is_used():
    code = ("import sys, numpy as np, aisys, aisys.compiler; "
            "t = aisys.randn(3) * 2; assert 'ml_dtypes' not in sys.modules, 'ml_dtypes imported'; "
            "assert aisys.bfloat16.itemsize == 2 and 'ml_dtypes' not in sys.modules; "
            "b = t.to(aisys.bfloat16); assert 'ml_dtypes' in sys.modules; "
            "assert b.dtype is aisys.bfloat16 and b.numpy().dtype.name == 'bfloat16'; "
            "assert aisys.tensor(b.numpy()).dtype is aisys.bfloat16; print('ok')")
    assert fresh_python(code) == "ok"


def test_a_compiled_function_refuses_another_dtype_than_it_was_compiled_for():
    """Once cast silently (float64 data squeezed through float32 kernels), as shapes never were."""
    import numpy as np
    f = aisys.compile(lambda x: (x * 2.0).relu(), aisys.ones(3))
    assert f(aisys.tensor([1.0, -1.0, 2.0])).tolist() == [2.0, 0.0, 4.0]
    with pytest.raises(TypeError, match=r"input 'x' was compiled for float32, got float64.*compile again"):
        f(aisys.tensor([1.0, 2.0, 3.0], dtype=aisys.float64))
    with pytest.raises(TypeError, match="got int64"):
        f(np.array([1, 2, 3]))


def test_tests_compile_kernels_into_a_temporary_cache():
    """Every test session points AISYS_CACHE_DIR at a fresh temporary directory (tests/conftest.py): compiled
    kernels never land in, or come from, the user's ~/.cache/aisys."""
    import os
    import tempfile
    from aisys.kernels.jit import cache_dir
    where = os.path.realpath(str(cache_dir()))
    assert where.startswith(os.path.realpath(tempfile.gettempdir())), where
    assert ".cache/aisys" not in where
