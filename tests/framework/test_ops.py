"""Every registered op against the op-info table (tests/framework/op_info.py).

Per op: the numpy reference (independent formulas), shape/dtype inference, cost, gradcheck of first and
second order, forward mode against reverse mode (u·(J v) == (Jᵀu)·v), dtype coverage (float32 default,
float64, float16, bfloat16, and integers/bool where meaningful) and PyTorch's type promotion. Hypothesis
property tests draw shapes, broadcasting pairs, dims and non-contiguous views and compare with numpy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import aisys
from aisys.framework import dtypes as D
from aisys.framework.registry import OPS, Cost, Spec
from aisys.framework.tensor import apply
from tests.framework.op_info import (BY_NAME, DOMAINS, EXEMPT, OPS_TABLE, VIEWS, conv2d_ref, expand, gelu_exact,
                                     op_registering_modules,
                                     index_backward_ref, index_ref, matmul_ref, max_pool2d_ref, avg_pool2d_ref,
                                     pad_ref, permute_ref, reshape_ref, sum_to_ref, concat_ref, gather_ref)

PROPS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

DIFFERENTIABLE = [r for r in OPS_TABLE if r.differentiable]


def tensors(args):
    return [aisys.tensor(a) for a in args]


def call(name, args, attrs):
    return apply(name, *tensors(args), **attrs)


def closure(row, sample):
    """f(*differentiable inputs) with the other inputs (indices, masks) held fixed."""
    gi = sample.grad_indices()

    def f(*xs):
        args = tensors(sample.args)
        for k, i in enumerate(gi):
            args[i] = xs[k]
        return apply(row.name, *args, **sample.attrs)
    return f, [sample.args[i] for i in gi]


# ---- coverage of the table ---------------------------------------------------------------------------
def test_every_op_has_a_row():
    import importlib
    for module in op_registering_modules():          # fill the registry completely, whatever ran before
        importlib.import_module(module)
    missing = set(OPS) - set(BY_NAME) - set(EXEMPT)
    assert not missing, f"ops without an op-info row or a documented exemption: {sorted(missing)}"
    assert not set(BY_NAME) - set(OPS), "rows for ops that are not registered"
    assert all(reason.strip() for reason in EXEMPT.values())
    assert not set(EXEMPT) - set(OPS), f"stale exemptions: {sorted(set(EXEMPT) - set(OPS))}"
    assert not set(EXEMPT) & set(BY_NAME)


@pytest.mark.parametrize("row", OPS_TABLE, ids=lambda r: r.name)
def test_row_agrees_with_registry(row):
    op = OPS[row.name]
    assert op.differentiable == row.differentiable, f"{row.name}: registry says differentiable={op.differentiable}"
    if not row.differentiable:
        assert row.not_differentiable_because, "a non-differentiable row must say why"
        assert op.jvp is None
    samples = row.samples(row.rng())
    assert samples, "each row needs at least one sample"
    if row.differentiable:
        assert any(s.grad_indices() for s in samples), "a differentiable op needs a gradcheckable sample"


def test_samples_include_noncontiguous_views():
    """Every op that takes a float tensor is exercised with at least one non-contiguous input."""
    lacking = []
    for row in OPS_TABLE:
        views = [a for s in row.samples(row.rng()) for a in s.args if a.ndim >= 2 and not a.flags["C_CONTIGUOUS"]]
        if not views:
            lacking.append(row.name)
    assert not lacking, f"rows without a non-contiguous sample: {lacking}"


# ---- reference values, inference, cost -----------------------------------------------------------------
@pytest.mark.parametrize("row", OPS_TABLE, ids=lambda r: r.name)
def test_matches_reference(row):
    for s in row.samples(row.rng()):
        before = [a.copy() for a in s.args]
        expected = row.reference(*s.args, **s.attrs)
        got = call(row.name, s.args, s.attrs)
        assert got.shape == expected.shape, f"{s}: shape {got.shape} vs {expected.shape}"
        assert got.numpy().dtype == expected.dtype, f"{s}: dtype {got.numpy().dtype} vs {expected.dtype}"
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12, err_msg=repr(s))
        else:
            np.testing.assert_array_equal(got.numpy(), expected, err_msg=repr(s))
        for a, b in zip(s.args, before):
            np.testing.assert_array_equal(a, b, err_msg=f"{row.name} modified its input in place")


@pytest.mark.parametrize("row", OPS_TABLE, ids=lambda r: r.name)
def test_inference_matches_reference(row):
    op = OPS[row.name]
    for s in row.samples(row.rng()):
        expected = row.reference(*s.args, **s.attrs)
        spec = op.infer(*tensors(s.args), **s.attrs)
        assert isinstance(spec, Spec)
        assert tuple(spec.shape) == expected.shape, f"{s}: inferred {spec.shape}, reference {expected.shape}"
        assert spec.dtype is D.from_numpy(expected.dtype), f"{s}: inferred {spec.dtype}, reference {expected.dtype}"


@pytest.mark.parametrize("row", OPS_TABLE, ids=lambda r: r.name)
def test_cost_is_non_negative_ints(row):
    op = OPS[row.name]
    for s in row.samples(row.rng()):
        ins = [t.spec for t in tensors(s.args)]
        out = op.infer(*tensors(s.args), **s.attrs)
        c = op.cost(ins, out, **s.attrs)
        assert isinstance(c, Cost)
        for v in (c.flops, c.bytes):
            assert isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0, f"{s}: cost {c}"
        if op.name not in ("reshape", "index"):      # views may move nothing; everything else reads or writes
            assert c.bytes > 0 or out.numel == 0


@pytest.mark.parametrize("batch,M,K,N", [((), 3, 4, 5), ((), 1, 7, 1), ((2,), 3, 4, 2), ((2, 3), 4, 1, 6)])
def test_matmul_flops_closed_form(batch, M, K, N):
    x, y = aisys.zeros(*batch, M, K), aisys.zeros(*batch, K, N)
    out = OPS["matmul"].infer(x, y)
    c = OPS["matmul"].cost([x.spec, y.spec], out)
    assert c.flops == 2 * M * N * K * math.prod(batch)            # one multiply + one add per MAC
    assert c.bytes == 4 * (math.prod(batch) * (M * K + K * N + M * N))


@pytest.mark.parametrize("N,C,H,W,O,g,KH,KW,stride,pad,dil", [
    (1, 3, 8, 8, 4, 1, 3, 3, 1, 1, 1), (2, 4, 7, 5, 6, 2, 3, 1, 2, 0, 1), (1, 6, 9, 9, 6, 6, 3, 3, 1, 2, 2),
    (3, 2, 5, 6, 2, 1, 2, 2, 2, 1, 1)])
def test_conv2d_flops_closed_form(N, C, H, W, O, g, KH, KW, stride, pad, dil):
    attrs = dict(stride=(stride, stride), padding=(pad, pad), dilation=(dil, dil), groups=g)
    x, w, b = aisys.zeros(N, C, H, W), aisys.zeros(O, C // g, KH, KW), aisys.zeros(O)
    OH = (H + 2 * pad - dil * (KH - 1) - 1) // stride + 1
    OW = (W + 2 * pad - dil * (KW - 1) - 1) // stride + 1
    op = OPS["conv2d"]
    out = op.infer(x, w, **attrs)
    assert out.shape == (N, O, OH, OW)
    assert op.cost([x.spec, w.spec], out, **attrs).flops == 2 * N * O * OH * OW * (C // g) * KH * KW
    # with a bias: one more add per output element
    assert op.cost([x.spec, w.spec, b.spec], out, **attrs).flops == 2 * N * O * OH * OW * (C // g) * KH * KW + N * O * OH * OW


# ---- gradients ---------------------------------------------------------------------------------------------
def surrogate_closure(row, sample):
    """The surrogate of a straight-through row (see OpInfo.surrogate), as a function of the same inputs."""
    g = row.surrogate(*sample.args, **sample.attrs)
    gi = sample.grad_indices()

    def f(*xs):
        args = tensors(sample.args)
        for k, i in enumerate(gi):
            args[i] = xs[k]
        return g(*args)
    return f


@pytest.mark.parametrize("row", DIFFERENTIABLE, ids=lambda r: r.name)
def test_gradcheck_first_and_second_order(row):
    checked = 0
    for s in row.samples(row.rng()):
        if not s.grad_indices():
            continue
        f, inputs = closure(row, s)
        if row.surrogate is not None:
            # a straight-through estimator: the VJP equals the derivative of the surrogate, not of the op
            from aisys.framework.autograd import _analytic_jacobian, _numeric_jacobian
            sur = surrogate_closure(row, s)
            xs = tensors(inputs)
            np.testing.assert_allclose(sur(*xs).numpy(), f(*xs).numpy(), rtol=1e-12, atol=1e-12,
                                       err_msg=f"{s}: the surrogate must equal the op at the sample")
            fresh = [aisys.tensor(np.ascontiguousarray(a)) for a in inputs]   # perturbed in place: no views
            for a, n in zip(_analytic_jacobian(f, xs), _numeric_jacobian(sur, fresh, 1e-6)):
                np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-7, err_msg=repr(s))
        else:
            assert aisys.gradcheck(f, inputs, second_order=True), repr(s)
        checked += 1
    assert checked


@pytest.mark.parametrize("row", DIFFERENTIABLE, ids=lambda r: r.name)
def test_jvp_agrees_with_vjp(row):
    """For random tangent v and cotangent u: u·(J v) == (Jᵀu)·v, and J v matches central differences."""
    rng = np.random.default_rng(7)
    for s in row.samples(row.rng()):
        if not s.grad_indices():
            continue
        f, primals = closure(row, s)
        v = [rng.standard_normal(p.shape) for p in primals]
        out, jv = aisys.jvp(f, primals, v)
        assert jv.shape == out.shape and jv.dtype == out.dtype, f"{s}: tangent {jv.shape} {jv.dtype}"
        u = rng.standard_normal(out.shape)
        out2, vjp_fn = aisys.vjp(f, *primals)
        np.testing.assert_allclose(out2.numpy(), out.numpy(), rtol=1e-12)
        grads = vjp_fn(aisys.tensor(u))
        lhs = float(np.sum(u * jv.numpy()))
        rhs = float(sum(np.sum(g.numpy() * vi) for g, vi in zip(grads, v) if g is not None))
        assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-9), f"{s}: u·Jv={lhs} but Jᵀu·v={rhs}"
        h = 1e-6
        fd = f if row.surrogate is None else surrogate_closure(row, s)       # STE rows: the surrogate's slope
        with aisys.no_grad():
            plus = fd(*[aisys.tensor(p + h * vi) for p, vi in zip(primals, v)]).numpy()
            minus = fd(*[aisys.tensor(p - h * vi) for p, vi in zip(primals, v)]).numpy()
        np.testing.assert_allclose(jv.numpy(), (plus - minus) / (2 * h), rtol=1e-4, atol=1e-6, err_msg=repr(s))


@pytest.mark.parametrize("row", DIFFERENTIABLE, ids=lambda r: r.name)
def test_saved_declares_every_value_the_vjp_reads(row):
    """``OpDef.saved`` drives the in-place version check: a value the VJP reads but the op does not declare
    could be overwritten silently. So run each VJP with every undeclared float value replaced by NaN: the
    gradients must not change."""
    from aisys.framework.inplace import _saved_values
    op = OPS[row.name]
    if op.saved is None:
        return                                            # None: every value counts as read (conservative)
    rng = np.random.default_rng(3)
    for s in row.samples(row.rng()):
        gi = s.grad_indices()
        if not gi:
            continue
        ins = tensors(s.args)
        for i in gi:
            ins[i].requires_grad = True
        with aisys.no_grad():
            out = apply(row.name, *ins, **s.attrs)
        out._ctx, out._epoch = (op, tuple(ins), s.attrs), 0
        g = aisys.tensor(rng.standard_normal(out.shape))
        with aisys.no_grad():
            want = op.vjp(g, out, *ins, **s.attrs)
        kept = {id(t) for _, t in _saved_values(out)}

        def poisoned(t):
            if id(t) in kept or not t.dtype.is_floating:
                return t
            p = aisys.tensor(np.full(t.shape, np.nan, t.numpy().dtype))
            p.requires_grad = t.requires_grad
            return p
        with aisys.no_grad():
            got = op.vjp(g, poisoned(out), *[poisoned(t) for t in ins], **s.attrs)
        for a, b in zip(want, got):
            if a is not None:
                np.testing.assert_array_equal(b.numpy(), a.numpy(), err_msg=f"{row.name} {s}: the VJP reads a "
                                              f"value its OpDef.saved={op.saved} does not declare")
        if op.vjp_np is not None:                         # the numpy twin a plain backward() runs reads no more
            with aisys.no_grad():
                want_np = op.vjp_np(g.numpy(), out, *ins, **s.attrs)
                got_np = op.vjp_np(g.numpy(), poisoned(out), *[poisoned(t) for t in ins], **s.attrs)
            for a, b in zip(want_np, got_np):
                if a is not None:
                    np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=f"{row.name} {s}: vjp_np "
                                                  f"reads a value its OpDef.saved={op.saved} does not declare")


# ---- dtypes ----------------------------------------------------------------------------------------------
_LOWP_TOL = {"float32": 1e-5, "float64": 1e-12, "float16": 1e-2, "bfloat16": 6e-2}


def _expected_dtype(row, s, dt, ref):
    if row.name == "cast":
        return s.attrs["dtype"]
    if ref.dtype == np.bool_ and dt is not D.bool_:
        return D.bool_
    if row.name in ("argmax", "argmin", "argsort", "one_hot"):
        return D.int64
    if row.name == "sum" and not dt.is_floating:
        return D.int64
    return dt


@pytest.mark.parametrize("row", [r for r in OPS_TABLE if r.dtypes], ids=lambda r: r.name)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_float_dtypes(row, dtype):
    """Low-precision inputs give low-precision outputs, close to the float64 reference on the rounded inputs."""
    dt = D.from_name(dtype)
    tol = _LOWP_TOL[dtype] * row.lowp_tol
    for s in row.samples(row.rng()):
        args = [a.astype(dt.np) if a.dtype == np.float64 else a for a in s.args]
        rounded = [a.astype(np.float64) if a.dtype == dt.np else a for a in args]
        ref = row.reference(*rounded, **s.attrs)
        got = call(row.name, args, s.attrs)
        assert got.dtype is _expected_dtype(row, s, dt, ref), f"{s}: {got.dtype}"
        np.testing.assert_allclose(got.numpy().astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol,
                                   err_msg=f"{row.name} in {dtype}: {s}")


def _as_int(a, dtype):
    if dtype == "bool":
        return a > 0
    return np.clip(np.round(a * 2), -60, 60).astype(D.from_name(dtype).np)


@pytest.mark.parametrize("row,dtype", [(r, d) for r in OPS_TABLE for d in r.int_dtypes],
                         ids=lambda v: v if isinstance(v, str) else v.name)
def test_integer_and_bool_dtypes(row, dtype):
    dt = D.from_name(dtype)
    for s in row.samples(row.rng()):
        args = [_as_int(a, dtype) if a.dtype.kind == "f" else a for a in s.args]
        wide = [a.astype(np.int64) if a.dtype.kind in "iu" or (a.dtype == np.bool_ and dtype == "bool"
                                                                and row.name not in ("logical_not", "index", "where"))
                else a for a in args]
        ref = row.reference(*wide, **s.attrs)
        got = call(row.name, args, s.attrs)
        want = _expected_dtype(row, s, dt, ref)
        assert got.dtype is want, f"{row.name}({dtype}) -> {got.dtype}, expected {want}"
        np.testing.assert_array_equal(got.numpy(), ref.astype(want.np), err_msg=f"{row.name} in {dtype}: {s}")


PROMOTION = [  # (a, b, result) — PyTorch's type promotion for tensor ⊕ tensor
    ("bool", "int8", "int8"), ("int8", "int32", "int32"), ("int32", "int64", "int64"), ("bool", "float16", "float16"),
    ("int64", "float16", "float16"), ("int32", "bfloat16", "bfloat16"), ("float16", "bfloat16", "float32"),
    ("float16", "float32", "float32"), ("bfloat16", "float64", "float64"), ("float32", "float64", "float64"),
    ("int64", "float32", "float32"), ("bool", "bool", "bool")]


@pytest.mark.parametrize("a,b,result", PROMOTION)
def test_type_promotion_table(a, b, result):
    x = aisys.ones(2, dtype=a)
    y = aisys.ones(2, dtype=b)
    for z in (x * y, y * x, aisys.maximum(x, y), aisys.where(aisys.tensor([True, False]), x, y), aisys.cat([x, y])):
        assert z.dtype is D.from_name(result), f"{a} with {b}: {z.dtype}"
    assert D.promote(D.from_name(a), D.from_name(b)) is D.from_name(result)


def test_python_scalars_are_weak():
    i64, i32, f16 = aisys.tensor([1, 2]), aisys.tensor([1, 2], dtype="int32"), aisys.tensor([1.0]).half()
    assert (i64 * 2.5).dtype is aisys.float32 and (i64 * 2.5).tolist() == [2.5, 5.0]   # int tensor * float -> default float
    assert (2.5 * i32).dtype is aisys.float32
    assert (i32 * 2).dtype is aisys.int32                                              # an int scalar keeps the tensor's int type
    assert (f16 + 1).dtype is aisys.float16 and (f16 * 2.5).dtype is aisys.float16
    assert (aisys.tensor([True, False]) + 1).dtype is aisys.int64                       # bool + int -> int64, as torch
    assert (aisys.tensor([True, False]) + 1).tolist() == [2, 1]
    assert (i64 / i64).dtype is aisys.float32                                           # true division
    assert aisys.tensor(np.zeros(2)).dtype is aisys.float64                             # numpy float64 stays float64
    assert aisys.tensor(np.zeros(2, np.float32)).dtype is aisys.float32
    assert aisys.tensor([1.0]).dtype is aisys.float32 and aisys.tensor([1]).dtype is aisys.int64
    assert (aisys.tensor(np.zeros(2)) * 2.0).dtype is aisys.float64
    assert aisys.sum(aisys.tensor([True, True, False])).item() == 2                      # a count, in int64
    assert aisys.sum(aisys.tensor([100, 100], dtype="int8")).dtype is aisys.int64


# ---- semantics the table cannot express -----------------------------------------------------------------
def test_gelu_is_exact_by_default_and_tanh_on_request():
    """PyTorch's GELU defaults to approximate='none' (x·Φ(x)); aisys once computed the tanh form by default, a
    silent difference of up to 5e-4 (gelu(−1): −0.15866 exact vs −0.15881)."""
    import aisys.nn.functional as F
    x = np.linspace(-4, 4, 81)
    exact = np.array([gelu_exact(v) for v in x])
    for got in (aisys.gelu(aisys.tensor(x)), F.gelu(aisys.tensor(x)), aisys.nn.GELU()(aisys.tensor(x))):
        np.testing.assert_allclose(got.numpy(), exact, rtol=1e-14, atol=1e-15)
    tanh = F.gelu(aisys.tensor(x), approximate="tanh").numpy()
    assert 1e-6 < np.max(np.abs(tanh - exact)) < 1e-3           # the approximation (Hendrycks & Gimpel 2016)
    assert F.gelu(aisys.tensor([-1.0])).item() == pytest.approx(-0.15865525393145707, abs=1e-7)
    assert aisys.nn.GELU(approximate="tanh")(aisys.tensor([-1.0])).item() == pytest.approx(-0.15880800939, abs=1e-7)
    with pytest.raises(ValueError, match="approximate='exact' is not one of"):
        F.gelu(aisys.ones(2), approximate="exact")
    far = F.gelu(aisys.tensor([-12.0, -40.0], dtype=aisys.float64)).numpy()     # x·Φ(x) stays accurate far left
    np.testing.assert_allclose(far, [-12 * 0.5 * math.erfc(12 / math.sqrt(2)), 0.0], rtol=1e-13)


def test_erf_error_bound_on_a_dense_grid():
    """special.py states: erf within 5 ulp of CPython's math.erf in float64 (4 ulp of the true value), erfc
    within 6 ulp of the truth; float32 is computed in float64 and rounded once."""
    from aisys.framework.erf import erfc_np
    x = np.concatenate([np.linspace(-7, 7, 40001), np.linspace(0.46, 0.48, 2001), np.linspace(3.99, 4.01, 2001),
                        [0.0, 1e-300, 5e-324, 26.6, -30.0, np.inf, -np.inf]])
    ref = np.array([math.erf(v) for v in x])
    got = aisys.erf(aisys.tensor(x)).numpy()
    ulp = np.spacing(np.abs(ref))
    assert np.max(np.abs(got - ref) / ulp) <= 5
    refc = np.array([math.erfc(v) for v in x])
    gotc = erfc_np(x)
    ok = refc > 1e-300                                            # where erfc underflows, both are ~0
    assert np.max(np.abs(gotc - refc)[ok] / np.spacing(refc[ok])) <= 8
    x32 = x.astype(np.float32)
    got32 = aisys.erf(aisys.tensor(x32)).numpy()
    ref32 = np.array([math.erf(float(v)) for v in x32])
    assert got32.dtype == np.float32
    assert np.max(np.abs(got32.astype(np.float64) - ref32) / np.spacing(np.abs(ref32).astype(np.float32))) <= 1
    assert np.isnan(aisys.erf(aisys.tensor([np.nan])).item())


def test_gelu_and_erf_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-8, 8, 1601)
    for dtype in (np.float32, np.float64):
        for approximate in ("none", "tanh"):
            ours = aisys.gelu(aisys.tensor(x.astype(dtype)), approximate).numpy()
            theirs = torch.nn.functional.gelu(torch.tensor(x.astype(dtype)), approximate=approximate).numpy()
            np.testing.assert_allclose(ours, theirs, atol=2e-6 if dtype == np.float32 else 1e-14)
        np.testing.assert_allclose(aisys.erf(aisys.tensor(x.astype(dtype))).numpy(),
                                   torch.erf(torch.tensor(x.astype(dtype))).numpy(), rtol=2e-7, atol=1e-30)


def test_kink_conventions():
    """Subgradients at kinks follow PyTorch: relu'(0)=0, |x|'(0)=0, maximum ties go to the first operand,
    max-reduction ties share the gradient equally."""
    x = aisys.tensor([0.0, 0.0], requires_grad=True)
    (aisys.relu(x).sum() + aisys.abs(x).sum()).backward()
    assert x.grad.tolist() == [0.0, 0.0]
    a, b = aisys.tensor([1.0, 2.0], requires_grad=True), aisys.tensor([1.0, 1.0], requires_grad=True)
    aisys.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0] and b.grad.tolist() == [0.0, 0.0]
    m = aisys.tensor([[3.0, 1.0, 3.0]], requires_grad=True)
    aisys.max(m).backward()
    assert m.grad.tolist() == [[0.5, 0.0, 0.5]]


def test_dropout_is_inverted_and_seeded():
    x = aisys.ones(200, 50)
    y = apply("dropout", x, p=0.3, seed=11).numpy()
    assert np.all((y == 0) | np.isclose(y, 1 / 0.7, rtol=1e-6))          # dropped, or scaled by 1/(1-p)
    assert abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(y, apply("dropout", x, p=0.3, seed=11).numpy())
    assert not np.array_equal(y, apply("dropout", x, p=0.3, seed=12).numpy())
    assert not OPS["dropout"].pure


def test_max_pool_ties_route_to_the_first_maximum():
    x = aisys.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    apply("max_pool2d", x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)).sum().backward()
    assert x.grad.numpy().reshape(-1).tolist() == [1.0, 0.0, 0.0, 0.0]


# ---- hypothesis: broadcasting, shapes and views against numpy ---------------------------------------------
@st.composite
def filled(draw, shape, domain="normal"):
    """An array of ``shape`` in the op's domain, as a random kind of view (contiguous/transposed/strided)."""
    seed = draw(st.integers(0, 2 ** 32 - 1))
    view = draw(st.sampled_from(sorted(VIEWS)))
    a = DOMAINS[domain](np.random.default_rng(seed), *shape)
    return VIEWS[view](a)


def _close(got, expected, what):
    assert got.shape == expected.shape, f"{what}: shape {got.shape} vs {expected.shape}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=what)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=what)


BINARY = [r for r in OPS_TABLE if r.kind == "binary"]
UNARY = [r for r in OPS_TABLE if r.kind == "unary"]


@pytest.mark.parametrize("row", BINARY, ids=lambda r: r.name)
@PROPS
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4))
def test_binary_broadcasting_property(row, data, shapes):
    sx, sy = shapes.input_shapes
    dom_y = "away0" if row.name == "div" else ("positive" if row.name == "pow" else "normal")
    dom_x = "positive" if row.name == "pow" else "normal"
    if not row.differentiable:                        # comparisons: small integers so ties happen
        x = np.round(data.draw(filled(sx)) * 2)
        y = np.round(data.draw(filled(sy)) * 2)
    else:
        x, y = data.draw(filled(sx, dom_x)), data.draw(filled(sy, dom_y))
    got = apply(row.name, aisys.tensor(x), aisys.tensor(y)).numpy()
    assert got.shape == np.broadcast_shapes(sx, sy) == shapes.result_shape
    _close(got, row.reference(x, y), f"{row.name}{sx}{sy}")


@PROPS
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_broadcast_gradients_sum_back_to_operand_shapes(data, shapes):
    """d/dx Σ(x·y) = y summed over the broadcast dims of x (sum_to, the adjoint of broadcasting)."""
    sx, sy = shapes.input_shapes
    xa, ya = data.draw(filled(sx)), data.draw(filled(sy))
    x, y = aisys.tensor(xa, requires_grad=True), aisys.tensor(ya, requires_grad=True)
    (x * y + x).sum().backward()
    out = shapes.result_shape
    _close(x.grad.numpy(), sum_to_ref(expand(ya, out) + 1.0, sx), "dx")
    _close(y.grad.numpy(), sum_to_ref(expand(xa, out), sy), "dy")


@pytest.mark.parametrize("row", UNARY, ids=lambda r: r.name)
@PROPS
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
def test_unary_on_views_property(row, data, shape):
    x = data.draw(filled(shape, row.domain))
    _close(apply(row.name, aisys.tensor(x)).numpy(), row.reference(x), f"{row.name}{shape}")


@st.composite
def reduction_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    nd = len(shape)
    dim = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                         st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))
    return shape, dim, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "var", "max", "min", "argmax", "argmin"])
@PROPS
@given(data=st.data(), case=reduction_case())
def test_reductions_property(name, data, case):
    shape, dim, keepdim = case
    if name in ("argmax", "argmin"):
        if isinstance(dim, tuple):
            dim = dim[0]
        x = np.round(data.draw(filled(shape)) * 2)               # ties: the first index wins
    else:
        x = data.draw(filled(shape))
    attrs = {"dim": dim, "keepdim": keepdim}
    if name == "var":
        count = math.prod(shape) if dim is None else math.prod(
            shape[d] for d in ((dim,) if isinstance(dim, int) else dim))
        attrs["correction"] = data.draw(st.sampled_from([0, 1]))
        assume(count > attrs["correction"])
    got = apply(name, aisys.tensor(x), **attrs).numpy()
    _close(got, BY_NAME[name].reference(x, **attrs), f"{name}{shape} {attrs}")
    if name in ("sum", "mean", "max", "min"):                     # and numpy agrees on the shape
        axis = dim if not isinstance(dim, list) else tuple(dim)
        assert got.shape == getattr(np, name)(x, axis=axis, keepdims=keepdim).shape


@PROPS
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
def test_sum_to_property(data, shape):
    target = tuple(data.draw(st.sampled_from([1, s])) for s in shape[data.draw(st.integers(0, len(shape))):])
    x = data.draw(filled(shape))
    _close(aisys.sum_to(aisys.tensor(x), target).numpy(), sum_to_ref(x, target), f"{shape}->{target}")


@PROPS
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=4))
def test_reshape_and_permute_property(data, shape):
    x = data.draw(filled(shape))
    n, target = math.prod(shape), []
    while n > 1:
        d = data.draw(st.sampled_from([k for k in range(1, n + 1) if n % k == 0]))
        target.append(d)
        n //= d
    if data.draw(st.booleans()) and target:
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    got = aisys.tensor(x).reshape(*target)
    _close(got.numpy(), reshape_ref(x, np.empty(math.prod(shape)).reshape(target).shape), f"reshape {shape}->{target}")
    perm = data.draw(st.permutations(range(len(shape))))
    _close(aisys.tensor(x).permute(*perm).numpy(), permute_ref(x, perm), f"permute {shape} {perm}")


@PROPS
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_indexing_property(data, shape):
    """Basic and integer-array indexing select what numpy selects; the gradient scatters back."""
    x = data.draw(filled(shape))
    key = data.draw(st.one_of(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True),
                              hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2, max_side=3))))
    t = aisys.tensor(x, requires_grad=True)
    got = t[key]
    expected = index_ref(x, key if isinstance(key, tuple) else (key,))
    _close(got.numpy(), expected, f"x{shape}[{key}]")
    w = np.random.default_rng(0).standard_normal(expected.shape)
    (got * aisys.tensor(w)).sum().backward()
    norm_key = tuple(key) if isinstance(key, tuple) else (key,)
    _close(t.grad.numpy(), index_backward_ref(w, norm_key, shape), f"grad of x{shape}[{key}]")


@PROPS
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
def test_cat_pad_gather_property(data, shape):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(data.draw(st.integers(2, 3))):
        s = list(shape)
        s[dim] = data.draw(st.integers(1, 3))
        parts.append(data.draw(filled(tuple(s))))
    _close(aisys.cat([aisys.tensor(p) for p in parts], dim=dim).numpy(), concat_ref(*parts, dim=dim), "cat")
    x = data.draw(filled(shape))
    pads = tuple(data.draw(st.lists(st.integers(0, 2), min_size=0, max_size=2 * len(shape)).filter(
        lambda p: len(p) % 2 == 0)))
    _close(aisys.pad(aisys.tensor(x), pads, value=1.5).numpy(), pad_ref(x, pads, 1.5), f"pad {pads}")
    d = dim % len(shape)
    ishape = tuple(data.draw(st.integers(1, s)) for s in shape)
    index = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, shape[d], ishape)
    _close(aisys.gather(aisys.tensor(x), d, aisys.tensor(index)).numpy(), gather_ref(x, index, d), "gather")


@PROPS
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(signature="(m,k),(k,n)->(m,n)", max_dims=4,
                                                                 max_side=3))
def test_matmul_batch_broadcast_property(data, shapes):
    sx, sy = shapes.input_shapes
    x, y = data.draw(filled(sx)), data.draw(filled(sy))
    got = aisys.matmul(aisys.tensor(x), aisys.tensor(y))
    assert got.shape == shapes.result_shape
    _close(got.numpy(), matmul_ref(x, y), f"{sx}@{sy}")


@st.composite
def conv_case(draw):
    g = draw(st.integers(1, 2))
    C, O = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    H = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]), 6))
    W = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]), 6))
    return (draw(st.integers(1, 2)), C, H, W), (O, C // g, *k), dict(stride=s, padding=p, dilation=d, groups=g)


@PROPS
@given(data=st.data(), case=conv_case())
def test_conv2d_geometry_property(data, case):
    xs, ws, attrs = case
    x, w = data.draw(filled(xs)), data.draw(filled(ws))
    got = apply("conv2d", aisys.tensor(x), aisys.tensor(w), **attrs).numpy()
    _close(got, conv2d_ref(x, w, **attrs), f"conv {xs} {ws} {attrs}")


@PROPS
@given(data=st.data(), case=conv_case())
def test_pooling_geometry_property(data, case):
    xs, ws, attrs = case
    k = ws[2:]
    a = dict(kernel_size=k, stride=attrs["stride"], padding=tuple(min(p, kk // 2) for p, kk in zip(attrs["padding"], k)),
             dilation=attrs["dilation"])
    x = data.draw(filled(xs))
    _close(apply("max_pool2d", aisys.tensor(x), **a).numpy(), max_pool2d_ref(x, **a), f"max_pool {xs} {a}")
    _close(apply("avg_pool2d", aisys.tensor(x), **a).numpy(), avg_pool2d_ref(x, **a), f"avg_pool {xs} {a}")


def test_small_whole_powers_are_multiplications():
    """x ** 3 once went through np.power (libm pow per element, ~50x slower); the reference now multiplies,
    which must agree with pow to float rounding, keep dtypes, and leave other exponents to np.power."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(64)
    for e in (1, 2, 3, 4, -1, -2, -3, -4, 2.0, 3.0):
        got = (aisys.tensor(x) ** e).numpy()
        np.testing.assert_allclose(got, np.power(x, float(e)), rtol=4e-16)
        assert (aisys.tensor(x.astype(np.float32)) ** e).dtype is aisys.float32
    np.testing.assert_array_equal((aisys.tensor(x) ** 2.5).numpy()[x > 0], np.power(x[x > 0], 2.5))
    assert (aisys.tensor([1, 2, 3]) ** 3).tolist() == [1, 8, 27]
    assert aisys.gradcheck(lambda t: t ** 3, [aisys.tensor(x[:5])], second_order=True)
