"""Factories, devices and dtype names, with PyTorch's signatures and semantics (compared with torch where
installed), and the clear errors for what used to pass silently (float sizes) or with numpy's text."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import nn


# ---- bad input gets a clear error (issue 14) ------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: aisys.zeros(2.9), lambda: aisys.randn(2.5), lambda: aisys.ones(2, 3.0),
                                  lambda: aisys.rand((2, 1.5)), lambda: aisys.empty(True),
                                  lambda: aisys.full((2.0,), 1.0), lambda: aisys.randint(0, 3, (2.0,))])
def test_float_sizes_raise_instead_of_truncating(make):
    with pytest.raises(TypeError, match="a size must be whole numbers"):
        make()


def test_float_shapes_in_reshape_and_view_raise():
    x = aisys.ones(4)
    with pytest.raises(TypeError, match="reshape: a shape must be whole numbers, got 2.0"):
        x.reshape(2.0, 2)
    with pytest.raises(TypeError, match="whole numbers"):
        x.view(-1, 2.5)
    assert x.reshape(np.int64(2), aisys.tensor(2)).shape == (2, 2)


@pytest.mark.parametrize("data,match", [
    ([[1, 2], [3]], r"ragged \(element \[1\] is length 1 but element \[0\] is length 2\)"),
    ([[1, 2], 3], r"ragged \(element \[1\] is a number but element \[0\] is length 2\)"),
    (None, "cannot make a tensor from NoneType"),
    ("abc", "cannot make a tensor from str"),
    ({1: 2}, "cannot make a tensor from dict"),
    ([1, None], r"element \[1\] is NoneType"),
    ([[1.0], ["a"]], r"element \[1\]\[0\] is str"),
])
def test_bad_tensor_data_names_what_was_given_and_what_is_accepted(data, match):
    with pytest.raises((TypeError, ValueError), match=match) as e:
        aisys.tensor(data)
    assert "inhomogeneous" not in str(e.value)


def test_tensor_dtypes_follow_pytorch():
    assert aisys.tensor([1, 2]).dtype is aisys.int64
    assert aisys.tensor([1.0, 2]).dtype is aisys.float32
    assert aisys.tensor([True]).dtype is aisys.bool
    assert aisys.tensor(np.zeros(2)).dtype is aisys.float64
    assert aisys.tensor([aisys.tensor(1.0, dtype=aisys.float64), 2.0]).dtype is aisys.float64
    t = aisys.tensor([[1.0, 2.0]], dtype=aisys.double, requires_grad=True, device="cpu")
    assert t.dtype is aisys.float64 and t.requires_grad


# ---- dtype names --------------------------------------------------------------------------------------
def test_dtype_aliases_and_helpful_attribute_errors():
    assert (aisys.float, aisys.double, aisys.half, aisys.long, aisys.int, aisys.bool) == \
        (aisys.float32, aisys.float64, aisys.float16, aisys.int64, aisys.int32, aisys.bool_)
    with pytest.raises(AttributeError, match="uint8'; use aisys.int8 or aisys.int32"):
        aisys.uint8
    with pytest.raises(AttributeError, match="complex"):
        aisys.complex64
    with pytest.raises(AttributeError, match=r"'flaot'; did you mean aisys\.float\?$"):
        aisys.flaot                   # a near miss names the PyTorch-compatible name, never a wrong one
    with pytest.raises(AttributeError, match=r"'linspac'; did you mean aisys\.linspace\?$"):
        aisys.linspac
    with pytest.raises(AttributeError, match=r"has no attribute 'xyzzy'$"):
        aisys.xyzzy
    assert aisys.ones(2).to(aisys.long).dtype is aisys.int64
    assert aisys.zeros(2, dtype=aisys.float).dtype is aisys.float32


# ---- devices ------------------------------------------------------------------------------------------
def test_cpu_device_works_everywhere_and_cuda_says_where_to_go():
    dev = aisys.device("cuda" if aisys.cuda.is_available() else "cpu")
    assert dev == aisys.device("cpu") == "cpu" and str(dev) == "cpu" and aisys.device("cpu:0").index == 0
    x = aisys.randn(2, 3, device=dev)
    assert x.device == dev and x.to(dev) is x and x.cpu() is x and not x.is_cuda
    assert x.to("cpu", aisys.float64).dtype is aisys.float64
    assert x.to(dtype=aisys.float16, device="cpu").dtype is aisys.float16
    m = nn.Linear(3, 2).to(dev)
    assert m(x).shape == (2, 2)
    assert not aisys.cuda.is_available() and aisys.cuda.device_count() == 0
    assert not aisys.backends.mps.is_available() and not aisys.accelerator.is_available()
    aisys.cuda.manual_seed_all(0)                                # harmless, as in torch without a GPU
    for use in (lambda: x.to("cuda"), lambda: x.cuda(), lambda: m.cuda(), lambda: aisys.zeros(2, device="cuda:0"),
                lambda: m.to(aisys.device("cuda")), lambda: aisys.set_default_device("cuda"), lambda: x.to("mps")):
        with pytest.raises(RuntimeError, match="runs on the CPU.*aisys.chip.*lab 08.*numba.cuda"):
            use()
    with pytest.raises(ValueError, match="unknown device type 'gpu'"):
        aisys.device("gpu")
    aisys.set_default_device("cpu")
    assert aisys.get_default_device() == "cpu"


def test_module_to_dtype_converts_parameters_buffers_and_grads():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    m(aisys.randn(4, 2)).sum().backward()
    m.to(aisys.float64)
    assert all(p.dtype is aisys.float64 and p.grad.dtype is aisys.float64 for p in m.parameters())
    assert m[1].running_mean.dtype is aisys.float64 and m[1].num_batches_tracked.dtype is aisys.int64
    assert m.float()[0].weight.dtype is aisys.float32


# ---- factories against PyTorch -------------------------------------------------------------------------
def _factories(T):
    return {
        "linspace": lambda: T.linspace(-1.3, 2.7, 11),
        "linspace_1": lambda: T.linspace(3, 5, 1),
        "linspace_f64": lambda: T.linspace(0, 1, 7, dtype=T.float64),
        "logspace": lambda: T.logspace(-2, 2, 5),
        "logspace_base2": lambda: T.logspace(0, 4, 5, base=2.0),
        "arange_int": lambda: T.arange(5),
        "arange_float": lambda: T.arange(0, 1, 0.1),
        "arange_neg": lambda: T.arange(3, -2, -0.5),
        "arange_mixed": lambda: T.arange(1, 4.5),
        "eye": lambda: T.eye(3, 4),
        "full_int": lambda: T.full((2, 3), 7),
        "full_float": lambda: T.full((2,), 1.5),
        "full_bool": lambda: T.full((2,), True),
        "zeros_like": lambda: T.zeros_like(T.ones(2, 3, dtype=T.float64)),
        "ones_like_int": lambda: T.ones_like(T.arange(3)),
        "full_like": lambda: T.full_like(T.ones(2), 4),
        "empty_shape": lambda: T.empty(2, 3).shape,
        "tensor_nested": lambda: T.tensor([[1, 2], [3, 4]]),
        "tensor_float": lambda: T.tensor([1, 2.5]),
        "randint_shape": lambda: T.randint(5, (2, 3)).shape,
        "randint_low_high": lambda: T.randint(3, 5, (100,)).min() >= 3,
        "randint_kw": lambda: T.randint(0, 10, size=(4,)).dtype == T.int64,
        "randperm": lambda: sorted(T.randperm(6).tolist()),
        "from_numpy_shares": lambda: _shares(T),
    }


def _shares(T):
    a = np.zeros(3, np.float32)
    t = T.from_numpy(a)
    a[0] = 5
    return t.tolist()


def _plain(v):
    if hasattr(v, "dtype") and hasattr(v, "tolist"):
        return (str(v.dtype).split(".")[-1], v.tolist())
    if isinstance(v, tuple):
        return tuple(v)
    return bool(v) if hasattr(v, "item") else v


@pytest.mark.parametrize("name", list(_factories(aisys)))
def test_factories_agree_with_pytorch(name):
    torch = pytest.importorskip("torch")
    mine, theirs = _plain(_factories(aisys)[name]()), _plain(_factories(torch)[name]())
    if isinstance(mine, tuple) and len(mine) == 2 and isinstance(mine[0], str):
        assert mine[0] == theirs[0], f"{name}: dtype {mine[0]} vs torch {theirs[0]}"
        np.testing.assert_allclose(np.asarray(mine[1], float), np.asarray(theirs[1], float), rtol=1e-6, atol=1e-7)
    else:
        assert mine == theirs


def test_factories_without_torch():
    """The same facts, checked against numpy, so CI without torch still guards them."""
    np.testing.assert_array_equal(aisys.linspace(0, 1, 5).numpy(), np.float32([0, 0.25, 0.5, 0.75, 1]))
    assert aisys.linspace(-1.3, 2.7, 11).numpy()[-1] == np.float32(2.7)        # both ends exact
    assert aisys.arange(0, 1, 0.1).shape == (10,) and aisys.arange(0, 1, 0.1).dtype is aisys.float32
    assert aisys.arange(5).dtype is aisys.int64 and aisys.arange(3, -2, -0.5).shape == (10,)
    np.testing.assert_allclose(aisys.logspace(-2, 2, 5).numpy(), [0.01, 0.1, 1, 10, 100], rtol=1e-6)
    assert aisys.full((2,), 7).dtype is aisys.int64 and aisys.full((2,), True).dtype is aisys.bool
    assert aisys.eye(2, 3).tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="step must be nonzero"):
        aisys.arange(0, 1, 0)
    with pytest.raises(TypeError, match=r"randint\(high, size\) or randint\(low, high, size\)"):
        aisys.randint(5)
    with pytest.raises(ValueError, match="empty"):
        aisys.randint(5, 5, (2,))


def test_random_factories_use_the_generator_and_generators():
    aisys.manual_seed(3)
    a = aisys.randn(4)
    aisys.manual_seed(3)
    assert aisys.randn(4).tolist() == a.tolist()
    g = aisys.Generator().manual_seed(7)
    b = aisys.rand(3, generator=g)
    assert aisys.rand(3, generator=aisys.Generator().manual_seed(7)).tolist() == b.tolist()
    assert aisys.randn_like(a).shape == (4,) and aisys.rand_like(a, dtype=aisys.float64).dtype is aisys.float64


def test_multinomial_draws_in_proportion_and_checks_its_input():
    aisys.manual_seed(0)
    p = aisys.tensor([[0.0, 0.2, 0.8], [1.0, 0.0, 0.0]])
    draws = aisys.multinomial(p, 2000, replacement=True)
    assert draws.shape == (2, 2000) and draws.dtype is aisys.int64
    counts = np.bincount(draws.numpy()[0], minlength=3) / 2000
    assert counts[0] == 0 and abs(counts[2] - 0.8) < 0.04 and (draws.numpy()[1] == 0).all()
    once = p[0].multinomial(2)                                    # without replacement: distinct indices
    assert sorted(once.tolist()) == [1, 2]
    with pytest.raises(ValueError, match="without replacement"):
        aisys.multinomial(p, 3)
    with pytest.raises(ValueError, match="non-negative"):
        aisys.multinomial(aisys.tensor([0.5, -0.1]), 1)
