"""PassStepper built headless: the slider moves through the passes and the view follows."""
import pytest

import aisys
from aisys.compiler import default_pipeline, run_passes
from aisys.framework.graph import Graph
from widgets.passes import PassStepper, pane_dot, step_roles, union_layout

from tests.compiler.graphs import residual_block


def _log():
    return run_passes(residual_block(), default_pipeline(layout=True))


def test_slider_walks_the_changed_passes_and_redraws():
    w = PassStepper(_log())
    labels = [w.pass_log[k].label for k in w.visible]
    assert labels == ["fold_conv_bn", "to_nhwc", "fuse"]
    first = (w.header.value, w.panes.value, w.rewrites_box.value)
    assert "fold_conv_bn" in w.header.value and "<svg" in w.panes.value
    w.slider.value = 2                                   # what dragging the slider (or Play) does
    assert "fuse" in w.header.value and (w.header.value, w.panes.value, w.rewrites_box.value) != first
    assert "generated kernel for %" in w.kernel_box.value and "@njit(cache=True" in w.kernel_box.value
    assert "cannot fuse %24 (permute)" in w.rejected_box.value
    assert w.summary().startswith("PassStepper: 12 passes (3 shown), at pass 3: fuse (changed)")
    assert "kernel %39: aisys fused elementwise kernel: relu" in w.summary()


def test_skip_checkbox_shows_every_pass():
    w = PassStepper(_log())
    w.skip_box.value = False
    assert len(w.visible) == len(w.pass_log) == 12
    w.go(11)
    assert w.result.label == "dce" and "no change" in w.header.value
    with pytest.raises(IndexError, match=r"0\.\.11"):
        w.go(12)


def test_nodes_keep_their_place_across_steps():
    log = _log()
    w = PassStepper(log)
    pos = w._pos
    # every node that ever exists has one position, and both panes of every step pin it there
    ids = {i for r in log for g in (r.before, r.graph) for i in g.nodes}
    assert ids <= set(pos)
    for step in range(len(w.visible)):
        w.go(step)
        res = w.result
        bhl, ahl, bn, an = step_roles(res)
        dot = pane_dot(res.graph, pos, ahl, an, "after")
        for i in res.graph.nodes:
            x, y = pos[i]
            assert f'"pos"' not in dot and f'pos="{x},{y}!"' in dot


def test_roles_colour_removed_added_fused_and_changed_nodes():
    log = _log()
    fuse_res = next(r for r in log if r.name == "fuse")
    bhl, ahl, bnotes, anotes = step_roles(fuse_res)
    assert set(bhl.values()) == {"removed"} and "fused" in ahl.values()
    assert all(v == "fuse" for v in anotes.values())
    simp = run_passes(residual_block(), ["fold_conv_bn", "to_nhwc"])
    bhl, ahl, _, _ = step_roles(simp[1])
    assert {"added", "removed"} <= set(ahl.values()) | set(bhl.values())


def test_diff_view_and_metric_strip():
    w = PassStepper(_log())
    w.go(2)
    w.view.value = "diff"
    assert "removed nodes dashed" in w.panes.value
    assert "kernels: <b>4</b>" in w.strip.value and "nodes:" in w.strip.value and "bytes moved" in w.strip.value


def test_accepts_a_compiled_function_and_rejects_nonsense():
    x = aisys.randn(4, 8)
    cf = aisys.compile(lambda x: (x * 2.0).relu().exp(), x)
    w = PassStepper(cf)
    assert w.compiled is cf and w.kernel_sources()
    assert "fuse" in w.summary()
    with pytest.raises(TypeError, match="PassStepper expects"):
        PassStepper("log")
    with pytest.raises(ValueError, match="pass log is empty"):
        PassStepper([])


def test_union_layout_positions_every_node():
    g = Graph("g")
    x = g.add_input("x", (2,))
    n = g.add("neg", (x.id,))
    g.set_outputs([n.id])
    pos, nodes = union_layout([g])
    assert set(pos) == {x.id, n.id} and pos[x.id][1] > pos[n.id][1]    # inputs drawn above their users
