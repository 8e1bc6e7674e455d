"""Data-movement ops in the loop back end: each op's compute is read from its index map in the registry
(loops.injective), interpreted and compiled, and must equal the op's reference on its op-info samples."""
from __future__ import annotations

import numpy as np
import pytest

from aisys.compiler import loops
from aisys.framework.dtypes import from_numpy
from aisys.framework.registry import OPS, FusionKind
from tests.framework.op_info import OPS_TABLE


MAPPED = [r for r in OPS_TABLE if OPS[r.name].index is not None]


def _zero_d(sample, want) -> bool:
    """Tensor expressions have no 0-d tensors (placeholders and computes need an axis)."""
    return any(a.ndim == 0 for a in sample.args) or np.ndim(want) == 0


@pytest.mark.parametrize("row", MAPPED, ids=lambda r: r.name)
def test_injective_compute_interpreted_and_compiled_equals_reference(row):
    ran = 0
    for s in row.samples(row.rng()):
        want = row.reference(*s.args, **s.attrs)
        if _zero_d(s, want):
            continue
        ins = [loops.placeholder(a.shape, from_numpy(a.dtype), name=f"x{k}") for k, a in enumerate(s.args)]
        t = loops.injective(row.name, *ins, **s.attrs)
        arrays = [np.ascontiguousarray(a) for a in s.args] + loops.table_arrays(t)
        args = loops.kernel_args(t, ins)
        sch = loops.Schedule(t)
        got = loops.interpret(loops.lower(sch, args=args), *arrays)
        np.testing.assert_array_equal(got, want, err_msg=f"interpreted {row.name} {s}")
        assert got.dtype == OPS[row.name].ref(*s.args, **s.attrs).dtype
        np.testing.assert_array_equal(loops.build(sch, args=args)(*arrays), want, err_msg=f"numba {row.name} {s}")
        ran += 1
    assert ran >= 1, f"{row.name}: no sample the loop back end can take"


def test_every_injective_op_gets_a_compute():
    names = sorted(n for n, d in OPS.items() if d.fusion is FusionKind.INJECTIVE)
    assert {r.name for r in MAPPED} >= set(names), "an injective op without an index map: see test_indexmap.py"


def test_index_maps_lower_to_readable_guards_and_data_dependent_reads():
    X = loops.placeholder((2, 3), "float32", name="X")
    text = str(loops.lower(loops.injective("pad", X, pad=(1, 2))))
    assert "pad[i, j] = X[i, (j - 1) % 3] if j - 1 >= 0 and j - 1 < 3 else 0.0" in text
    assert "X[i // 3, i % 3]" in str(loops.lower(loops.injective("reshape", X, shape=(6,))))
    idx = loops.placeholder((4, 3), "int64", name="I")
    assert "X[I[i, j], j]" in str(loops.lower(loops.injective("gather", X, idx, dim=0)))
    # a schedule applies as to any compute: tiled permute (a blocked transpose) still equals numpy
    T = loops.injective("permute", loops.placeholder((8, 6), "float32", name="A"), dims=(1, 0))
    s = loops.Schedule(T)
    s.tile("i", "j", 4, 4)
    a = np.arange(48, dtype=np.float32).reshape(8, 6)
    np.testing.assert_array_equal(loops.interpret(s, a), a.T)


def test_injective_errors_say_what_to_do():
    X = loops.placeholder((2, 3), "float32", name="X")
    with pytest.raises(loops.LoopsError, match="relu has no index map.*loops.elementwise"):
        loops.injective("relu", X)
    with pytest.raises(loops.LoopsError, match="0-d"):
        loops.injective("reshape", loops.placeholder((1,), "float32"), shape=())
    with pytest.raises(loops.LoopsError, match="must be tensors"):
        loops.injective("permute", np.zeros((2, 3)), dims=(1, 0))
