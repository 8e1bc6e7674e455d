"""The pass manager and the rewriter: records, verification, hooks, fixpoints, and errors that teach."""
import numpy as np
import pytest

from aisys.compiler import (Fixpoint, Pass, PassError, PassLog, PassManager, Rewriter, dce, fold_constants, run_pass,
                            run_passes, simplify)
from aisys.compiler.metrics import graph_metrics
from aisys.framework.graph import Graph, GraphError


def _chain():
    g = Graph("chain")
    x = g.add_input("x", (4,))
    z = g.add_const(np.float32(0.0))
    a = g.add("add", (x.id, z.id))
    r = g.add("relu", (a.id,))
    dead = g.add("exp", (x.id,))
    g.set_outputs([r.id])
    return g, x, z, a, r, dead


def test_pass_result_records_rewrites_and_leaves_input_untouched():
    g, x, z, a, r, dead = _chain()
    before = str(g)
    res = run_pass(simplify, g)
    assert str(g) == before                              # the pass worked on a copy
    assert res.before is g and res.changed
    (w,) = res.rewrites
    assert w.rule == "add_zero" and w.removed == (a.id, z.id) and w.added == () and w.changed == (r.id,)
    assert w.location.startswith("aisys/compiler/passes/simplify.py:")
    assert res.graph.nodes[r.id].inputs == (x.id,)
    assert res.metrics_before.nodes == 3 and res.metrics.nodes == 2
    assert "add_zero" in res.summary() and "nodes 3→2" in res.summary()


def test_metrics_come_from_the_registry_cost():
    g, x, z, a, r, dead = _chain()
    m = graph_metrics(g)
    # add: reads 16 + 4 bytes, writes 16; relu: 16 + 16; exp: 16 + 16 (all f32[4] but the scalar)
    assert (m.nodes, m.kernels, m.flops) == (3, 3, 12)
    assert m.bytes_moved == (16 + 4 + 16) + (16 + 16) + (16 + 16)
    # peak: x's readers add and exp; at most two 16-byte op outputs alive at once
    assert m.peak_bytes == 32


def test_pass_log_summary_and_fixpoint_rounds():
    g, *_ = _chain()
    log = PassManager([Fixpoint([simplify, dce], name="cleanup")]).run(g)
    assert isinstance(log, PassLog)
    assert [r.label for r in log] == ["simplify#1", "dce#1", "simplify#2", "dce#2"]
    assert [r.changed for r in log] == [True, True, False, False]
    text = log.summary()
    assert text.splitlines()[0].split() == ["pass", "changed", "rewrites", "rejected", "nodes", "kernels", "bytes",
                                           "moved", "FLOPs"]
    assert "(input)" in text and "dce#1" in text
    assert log.graph.count_ops() == {"relu": 1}


def test_pipeline_fixpoint_flag_repeats_whole_list():
    g, *_ = _chain()
    log = PassManager([simplify, dce], fixpoint=True).run(g)
    assert [r.iteration for r in log] == [1, 1, 2, 2]


def test_hooks_run_before_and_after_every_pass():
    g, *_ = _chain()
    seen = []
    pm = PassManager([simplify, dce])
    pm.add_hook("before", lambda name, graph: seen.append(("before", name, len(graph.op_nodes))))
    pm.add_hook("after", lambda res: seen.append(("after", res.name, res.metrics.nodes)))
    pm.run(g)
    assert seen == [("before", "simplify", 3), ("after", "simplify", 2), ("before", "dce", 2), ("after", "dce", 1)]
    with pytest.raises(ValueError, match="'before' or 'after'"):
        pm.add_hook("during", print)


def test_pass_options_and_names():
    g = Graph("big")
    c = g.add_const(np.ones((10, 10), np.float32))
    e = g.add("exp", (c.id,))
    g.set_outputs([e.id])
    res = run_pass(Pass(fold_constants, options={"max_elements": 50}), g)
    assert not res.changed and "over the cap of 50" in res.rejected[0].reason
    assert res.rejected[0].candidate == f"fold %{e.id} = exp"
    assert str(res.rejected[0]).startswith("[fold_constants] cannot fold")
    assert run_pass(fold_constants, g).changed


def test_verifier_catches_a_pass_that_breaks_the_graph():
    g, x, z, a, r, dead = _chain()

    def breaks_types(rw: Rewriter):
        rw.graph.nodes[r.id].shape = (5,)          # edits behind the rewriter's back

    with pytest.raises(PassError, match="breaks_types.*left an invalid graph.*inference gives f32\\[4\\]"):
        run_pass(breaks_types, g)


def test_rewriter_refuses_type_changing_and_cyclic_replacements():
    g, x, z, a, r, dead = _chain()

    def widen(rw):
        s = rw.add("sum", (a.id,), {"dim": None, "keepdim": False})
        rw.replace(a.id, s.id, rule="widen")

    with pytest.raises(PassError, match="changes the value's type"):
        run_pass(widen, g)

    def cyclic(rw):
        n = rw.add("neg", (a.id,))
        rw.replace(a.id, n.id, rule="cyclic")

    with pytest.raises(PassError, match="cycle"):
        run_pass(cyclic, g)


def test_rewriter_remove_refuses_live_nodes_and_inputs():
    g, x, z, a, r, dead = _chain()
    with pytest.raises(PassError, match="still read by"):
        run_pass(lambda rw: rw.remove([a.id]), g)
    with pytest.raises(PassError, match="graph input"):
        run_pass(lambda rw: rw.remove([x.id]), g)
    with pytest.raises(PassError, match="graph output"):
        run_pass(lambda rw: rw.remove([r.id]), g)


def test_passes_must_use_the_rewriter():
    g, *_ = _chain()
    with pytest.raises(TypeError, match="returned a new Graph"):
        run_pass(lambda rw: Graph("other"), g)
    with pytest.raises(TypeError, match="not a pass"):
        PassManager([42])
    with pytest.raises(TypeError, match="must be callable"):
        run_pass("dce", g)


def test_added_only_nodes_are_committed_as_one_rewrite():
    g, x, z, a, r, dead = _chain()

    def adds(rw):
        rw.add("neg", (x.id,))

    res = run_pass(adds, g)
    assert res.changed and res.rewrites[0].added and res.rewrites[0].removed == ()


def test_add_param_needs_a_new_name():
    g, *_ = _chain()
    g.add_param("w", np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="already exists"):
        run_pass(lambda rw: rw.add_param("w", np.zeros(2, np.float32)), g)


def test_run_passes_shorthand_and_graph_verified_first():
    g, *_ = _chain()
    assert run_passes(g, [dce]).graph.count_ops() == {"add": 1, "relu": 1}
    bad = Graph("bad")
    x = bad.add_input("x", (2,))
    n = bad.add("neg", (x.id,))
    n.shape = (3,)
    with pytest.raises(GraphError):
        run_passes(bad, [dce])


def _dangling_and_cyclic():
    g = Graph("broken")
    x = g.add_input("x", (2,))
    y = g.add("neg", [x.id])
    g.set_outputs([y.id])
    g.nodes[y.id].inputs = (99,)
    h = Graph("loop")
    x = h.add_input("x", (2,))
    a = h.add("neg", [x.id])
    b = h.add("exp", [a.id])
    c = h.add("neg", [b.id])
    h.set_outputs([c.id])
    h.nodes[a.id].inputs = (c.id,)                          # %1 reads %3, which reads %2, which reads %1
    return g, h


def test_dangling_edges_and_cycles_are_graph_errors_everywhere():
    """Once KeyErrors (or an endless walk): every consumer of a graph names the bad edge."""
    from aisys.compiler import plan_memory
    from aisys.framework.graph import interpret
    g, h = _dangling_and_cyclic()
    consumers = {"interpret": lambda G: interpret(G, np.zeros(2, np.float32)), "run_pass": lambda G: run_pass(dce, G),
                 "run_passes": lambda G: run_passes(G, [dce]), "plan_memory": plan_memory, "verify": Graph.verify,
                 "toposort": Graph.toposort}
    for name, use in consumers.items():
        with pytest.raises(GraphError, match=r"node %1 \(neg\) reads %99, which does not exist"):
            use(g)
        with pytest.raises(GraphError, match=r"cycle: %1 → %3 → %2 → %1"):
            use(h)


def test_a_pass_that_leaves_a_dangling_edge_is_a_pass_error_naming_pass_and_node():
    g = Graph("g")
    x = g.add_input("x", (2,))
    y = g.add("neg", [x.id])
    z = g.add("exp", [y.id])
    g.set_outputs([z.id])

    def drop_the_neg(rw):
        del rw.graph.nodes[y.id]                              # bypasses the rewriter: the exp now dangles

    with pytest.raises(PassError, match=r"pass 'drop_the_neg' left an invalid graph: node %2 \(exp\) reads %1"):
        run_pass(drop_the_neg, g)
    assert y.id in g.nodes                                    # the caller's graph is untouched


def test_plan_memory_validates_its_limit():
    from aisys.compiler import plan_memory
    g = Graph("g")
    x = g.add_input("x", (4,))
    g.set_outputs([g.add("neg", [x.id]).id])
    for bad in (1.5, "1k", True):
        with pytest.raises(TypeError, match="limit_bytes=.* must be a whole number of bytes"):
            plan_memory(g, limit_bytes=bad)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="must be positive"):
            plan_memory(g, limit_bytes=bad)
    assert plan_memory(g, limit_bytes=1 << 20).peak_bytes > 0


def test_a_pass_result_carries_the_source_of_the_kernels_it_created():
    from aisys.compiler import fuse
    g = Graph("k")
    x = g.add_input("x", (8,))
    g.set_outputs([g.add("tanh", (g.add("neg", (x.id,)).id,)).id])
    res = run_pass(fuse, g)
    (name, src), = res.kernels.items()
    fused = next(n for n in res.graph.op_nodes if n.op == "fused")
    assert name == f"%{fused.id}" and src.startswith("# aisys fused elementwise kernel: neg → tanh")
    assert run_pass(dce, res.graph).kernels == {}                 # a pass that made no kernel carries none
