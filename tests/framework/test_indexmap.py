"""Index maps (aisys.framework.indexmap): every injective op says, once, which input element each output
element is; evaluated with numpy, that map must give the op's result on every op-info sample."""
from __future__ import annotations

import numpy as np
import pytest

import aisys  # noqa: F401  (fills the registry)
from aisys.framework import indexmap
from aisys.framework.registry import OPS, FusionKind, Spec, defop
from tests.framework.op_info import OPS_TABLE

MAPPED = [r for r in OPS_TABLE if OPS[r.name].index is not None]


def test_every_injective_op_has_an_index_map():
    """A data-movement op registered without ``index=`` has no compute rule in the loop back end."""
    missing = sorted(n for n, d in OPS.items() if d.fusion is FusionKind.INJECTIVE and d.index is None)
    assert not missing, (f"injective ops without an index map (defop(..., index=...), see "
                         f"aisys/framework/indexmap.py): {missing}")
    assert len(MAPPED) >= 12


@pytest.mark.parametrize("row", MAPPED, ids=lambda r: r.name)
def test_index_map_equals_reference_on_every_sample(row):
    for s in row.samples(row.rng()):
        want = row.reference(*s.args, **s.attrs)
        got = indexmap.evaluate(row.name, s.args, **s.attrs)
        assert got.shape == np.shape(want) and got.dtype == OPS[row.name].ref(*s.args, **s.attrs).dtype, s
        np.testing.assert_array_equal(got, want, err_msg=f"{row.name} {s}")


_X = np.arange(4 * 5 * 3 * 2).reshape(4, 5, 3, 2)
KEYS = [(1, slice(None, None, -2)), (Ellipsis, 1), (None, slice(1, 3), None),
        (np.array([3, -1]), slice(None), np.array([[0], [2]])),                 # adjacent? no: a slice between
        (slice(None), np.array([0, 4, 1]), np.array([2, 0, 1])),               # adjacent arrays stay in place
        (slice(None), np.array([0, 4]), None, np.array([1, 1])),               # None between: axes go first
        (slice(None), 2, np.array([[1, 0]])),                                  # an int among arrays
        (_X[:, :, 0, 0] > 20,), (slice(1, None), _X[0, :, :, 0] % 2 == 0),     # boolean masks
        (slice(-1, 0, -1), Ellipsis, -1)]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_index_map_follows_numpy_indexing_rules(key):
    np.testing.assert_array_equal(indexmap.evaluate("index", [_X], key=key), _X[key])


def test_an_index_map_belongs_to_a_data_movement_op():
    with pytest.raises(ValueError, match="index map describes a data-movement op.*elementwise"):
        defop("not_registered_elementwise_with_index", infer=lambda x: Spec(x.shape, x.dtype), ref=lambda x: x,
              fusion=FusionKind.ELEMENTWISE, index=lambda at, x: x[at.index])
    assert "not_registered_elementwise_with_index" not in OPS
    with pytest.raises(ValueError, match="'relu' has no index map"):
        indexmap.evaluate("relu", [np.zeros(3)])
