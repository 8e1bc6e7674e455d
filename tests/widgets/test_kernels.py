"""Kernel widgets built headless: each draws what its record says, and moving a control redraws it."""
import numpy as np
import pytest

from aisys import kernels
from widgets.kernels import Im2colView, KernelCompare, ThreadGridView


def test_im2col_view_outlines_the_patch_and_the_row_of_the_chosen_pixel():
    x = np.arange(2 * 5 * 4 * 3, dtype=np.float32).reshape(2, 5, 4, 3)
    rec = kernels.im2col_record(x, (3, 2), stride=(1, 2), padding=1)
    view = Im2colView(rec)
    assert view.picture.value.count('stroke="#dc2626"') == 3 * 2 + 1          # 6 taps + the row outline
    first = view.picture.value
    view.n.value, view.oh.value, view.ow.value = 1, 2, 1
    assert view.picture.value != first
    g = rec.geometry
    assert f"row {(1 * g.OH + 2) * g.OW + 1}" in view.caption.value and view.summary().endswith("-> row 22")
    assert rec.expansion == pytest.approx(rec.cols.size / x.size)
    with pytest.raises(ValueError, match=r"must be \(30, 18\)"):
        kernels.im2col_record(x, (3, 2), stride=(1, 2), padding=1, im2col_fn=lambda *a: np.zeros((18, 30)))
    with pytest.raises(TypeError, match="Im2colRecord"):
        Im2colView(x)


def test_kernel_compare_draws_a_bar_per_algorithm_and_metric():
    a = kernels.compare_algorithms((1, 4, 8, 8), (4, 4, 3, 3), padding=1, repeat=1)
    b = kernels.compare_algorithms((1, 4, 8, 8), (4, 1, 3, 3), padding=1, groups=4, repeat=1)
    assert [r["algorithm"] for r in a.rows] == ["direct", "im2col", "winograd_2x2", "winograd_4x4"]
    view = KernelCompare({"3×3": a, "depthwise": b})
    for r in a.rows:
        assert f">{r['algorithm']}<" in view.picture.value
    assert f"{a.rows[2]['mults']:,}" in view.picture.value
    first = view.picture.value
    view.dtype.value = "float16"
    assert view.picture.value != first and "float16" in view.picture.value
    view.layer.value = "depthwise"
    assert ">depthwise<" in view.picture.value and "depthwise" in view.caption.value
    assert view.summary().startswith("conv (1, 4, 8, 8) * (4, 1, 3, 3)")


def test_thread_grid_view_colours_outputs_by_block_and_shows_what_a_thread_read():
    pytest.importorskip("numba")
    from aisys.kernels import cuda
    if not cuda.SIMULATOR:
        pytest.skip("profiles need the simulator")
    A = np.arange(16, dtype=np.float32).reshape(4, 4)
    reps = {"naive": cuda.profile(cuda.matmul, A, A, block=2), "tiled 2": cuda.profile(cuda.matmul, A, A, tile=2)}
    view = ThreadGridView(reps)
    view.row.value, view.col.value = 3, 2                 # block (1, 1), thread (0, 1)
    assert "block (1, 1) thread (0, 1)" in view.caption.value and "8 global loads" in view.caption.value
    naive = view.picture.value
    view.which.value = "tiled 2"
    assert view.picture.value != naive and "4 global loads" in view.caption.value
    assert "A: read by that thread" in view.picture.value and "B: read by that thread" in view.picture.value
    assert "naive" in view.summary() and "tiled 2" in view.summary()
    with pytest.raises(TypeError, match="TrafficReport"):
        ThreadGridView({"x": 1})
