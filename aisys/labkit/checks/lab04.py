"""Checks for lab 04 — graph optimization passes and model conversion.

4.1 ``fold_constants(rw, max_elements=65536, fold_params=False)``: a constant-folding pass written
    with the Rewriter. Run with DCE after it on the lab's golden graph it must leave exactly the golden
    op counts; it must keep values on 15 random graphs, respect the size cap, leave impure ops and
    parameters alone (unless ``fold_params=True``), and fold whole constant chains in one sweep.
4.2 ``cse(rw)``: value numbering with the lecture's hash table keyed by (op, inputs, attrs). Equal
    constants are one value (keyed by dtype, shape and bytes), different ones never are; ``sub(a, b)``
    is not ``sub(b, a)``; duplicates must go (golden count), the result must not depend on the order of
    the nodes, dropout must never be merged, and array-valued attrs must be compared by value (two
    2000-element index arrays that print the same but differ in the middle are different keys).
4.3 ``fold_conv_bn_weights(weight, bias, gamma, beta, mean, var, eps) -> (W′, b′)``: plugged into the
    folding pass, the folded conv must match conv → batch_norm to 1e-5 on seeded blocks (with and
    without conv bias, grouped, strided). The learner derives W′ and b′; the course's snippet (γ and β
    swapped, conv bias dropped) fails this check.
4.4 ``gemm_to_registry(g, a, b, c=None, alpha=1.0, beta=1.0, trans_a=0, trans_b=0) -> node id``: ONNX Gemm
    written with registry ops on a Graph. Checked against an ONNX oracle (onnxruntime when installed,
    else onnx's own ``onnx.reference.ReferenceEvaluator``) on golden and random shapes and attributes,
    with every broadcastable shape of C; a multiply by exactly 1 must not be emitted.

Each check lists plausible mistakes (the ``_…`` functions) that it must reject, with the words its report
shows for each.
"""
from __future__ import annotations

import numpy as np

from aisys.labkit import Checker, Mistake, register
from aisys.labkit.learner import call as _call

CONV = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)


def _run(fn, graph, **options):
    """Run the learner's pass through the pass manager; (PassResult, None) or (None, problem text).

    A pass that breaks the graph (the verifier refuses it) is reported with what the verifier said, so
    the learner reads which node came out wrong rather than a traceback from the pass manager."""
    from aisys.compiler import Pass, PassError, run_pass
    try:
        return run_pass(Pass(fn, name=getattr(fn, "__name__", "pass"), options=options), graph), None
    except NotImplementedError:
        raise
    except PassError as exc:
        return None, f"the pass produced an invalid graph: {exc}"
    except Exception as exc:
        return None, f"raised {type(exc).__name__}: {exc}"


def _values_equal(a, b, seed=0):
    from aisys.compiler.testing import random_inputs
    from aisys.framework.graph import interpret
    xs = random_inputs(a, seed)
    got, want = interpret(b, *xs), interpret(a, *xs)
    return all(np.allclose(g, w, rtol=1e-5, atol=1e-5, equal_nan=True) for g, w in zip(got, want))


# ---------------------------------------------------------------------------------------------
# 4.1 constant folding
# ---------------------------------------------------------------------------------------------

def golden_fold_graph():
    """The lab's golden graph for 4.1 (ids in brackets):

        scale = (2 · 3) − 4                    [1..5]  a constant chain: folds to one const
        y     = x · scale + neg(bias)          [6..9]  bias is a const: neg(bias) folds
        big   = exp(zeros(300, 300))           [10,11] 90 000 elements: over the cap, kept (then dead)
        noise = dropout(scale)                 [12]    impure: never folded
        z     = y · noise,  w = x · p          [13..15] p is a param: not a constant
        return z, w

    After fold_constants then DCE: x·scale, + (−bias), dropout, y·noise, neg(p), x·neg(p) — see
    ``GOLDEN_FOLD_OPS``."""
    from aisys.framework.graph import Graph
    g = Graph("golden_fold")
    x = g.add_input("x", (4, 8))
    two, three, four = (g.add_const(np.float32(v)).id for v in (2.0, 3.0, 4.0))
    scale = g.add("sub", (g.add("mul", (two, three)).id, four)).id
    bias = g.add_const(np.linspace(-1, 1, 8, dtype=np.float32)).id
    y = g.add("add", (g.add("mul", (x.id, scale)).id, g.add("neg", (bias,)).id)).id
    g.add("exp", (g.add_const(np.zeros((300, 300), np.float32)).id,))
    noise = g.add("dropout", (scale,), {"p": 0.5, "seed": 7}).id
    z = g.add("mul", (y, noise)).id
    p = g.add_param("p", np.full((8,), 0.5, np.float32)).id
    w = g.add("mul", (x.id, g.add("neg", (p,)).id)).id
    g.set_outputs([z, w])
    return g


#: op counts left by a correct fold_constants followed by DCE on golden_fold_graph()
GOLDEN_FOLD_OPS = {"add": 1, "dropout": 1, "mul": 3, "neg": 1}


@register("4.1", title="Constant folding (then DCE)", lab="04_graph_passes",
          reference="aisys.compiler.passes.fold_constants:fold_constants",
          bad=[Mistake("aisys.labkit.checks.lab04:_fold_outputs_first", says="topological order"),
               Mistake("aisys.labkit.checks.lab04:_fold_ignores_cap", says="node.numel > max_elements"),
               Mistake("aisys.labkit.checks.lab04:_fold_impure_too", says="its mask is drawn at run time"),
               Mistake("aisys.labkit.checks.lab04:_fold_params_too", says="training updates parameters"),
               Mistake("aisys.labkit.checks.lab04:_fold_ignores_fold_params", says="fold_params=True")])
def _check_4_1(fn, c: Checker):
    from aisys.compiler import dce, run_pass
    from aisys.compiler.testing import random_graph

    g = golden_fold_graph()
    res, problem = _run(fn, g)
    c.true(problem is None, what="fold_constants(rw) runs through the pass manager and the verifier accepts the result",
           expected="a valid graph", got=problem,
           hint="change the graph only through rw.add_const(...) and rw.replace(old_id, new_id, rule=...)")
    c.true(res.changed and res.rewrites, what="the pass records its rewrites",
           expected="at least one rewrite in the pass log", got=f"{len(res.rewrites)} rewrites",
           hint="replace each folded node with rw.replace(node.id, const.id, rule='fold_constants')")
    exp_node = next(n for n in g.nodes.values() if n.op == "exp")
    c.true(exp_node.id in res.graph.nodes, what="exp of a 300×300 constant (90 000 elements) is not folded",
           expected="kept (over max_elements=65536)", got="folded into a 90 000-element constant",
           hint="skip nodes with node.numel > max_elements; log why with rw.reject(...)")
    drop = next(n for n in g.nodes.values() if n.op == "dropout")
    c.true(drop.id in res.graph.nodes, what="dropout of a constant is not folded (impure)",
           expected="kept", got="folded",
           hint="aisys.get_op(node.op).pure is False for dropout: its mask is drawn at run time")
    pn = [n for n in g.nodes.values() if n.op == "neg" and g.nodes[n.inputs[0]].op == "param"][0]
    c.true(pn.id in res.graph.nodes, what="neg(param) is not folded: parameters are not constants",
           expected="kept", got="folded",
           hint="only const nodes are constants (unless fold_params=True): training updates parameters")
    after = run_pass(dce, res.graph).graph
    c.equal(after.count_ops(), GOLDEN_FOLD_OPS,
            what="golden graph: op counts after fold_constants then DCE",
            hint="(2·3)−4 is a chain: visit nodes in topological order (graph.nodes is in that order) so a "
                 "folded result is a constant by the time its user is visited; neg(bias) folds too")
    c.true(_values_equal(g, after), what="golden graph: same outputs as before folding (random inputs)",
           expected="equal outputs", got="different outputs",
           hint="evaluate a node with aisys.framework.graph.evaluate_node(node, [input values])")
    res_cap, _ = _run(fn, g, max_elements=4)
    c.true(res_cap is not None and res_cap.graph.count_ops().get("neg", 0) == 2,
           what="with max_elements=4, neg(bias) (8 elements) stays", expected="2 neg nodes left",
           got=res_cap and res_cap.graph.count_ops(), hint="compare node.numel with the max_elements argument")
    res_params, problem = _run(fn, g, fold_params=True)
    folded = run_pass(dce, res_params.graph).graph if res_params is not None else None
    c.equal(folded.count_ops() if folded is not None else problem, {"add": 1, "dropout": 1, "mul": 3},
            what="with fold_params=True (an inference graph whose weights are frozen), neg(p) folds too",
            hint="fold_params=True makes param nodes count as constants (their value is node.value)")
    c.true(_values_equal(g, folded), what="fold_params=True keeps the outputs", expected="equal outputs",
           got="different outputs")
    for seed in range(15):
        rg = random_graph(seed)
        r, problem = _run(fn, rg)
        c.true(problem is None and _values_equal(rg, run_pass(dce, r.graph).graph, seed),
               what=f"random graph {seed}: same outputs after fold_constants + DCE",
               expected="equal outputs", got=problem or "different outputs")
    c.true(True, what="15 random graphs keep their values")


def _fold_outputs_first(rw, max_elements=65536, fold_params=False):
    """Visits nodes from the outputs backwards: a chain folds one level per run."""
    from aisys.framework.graph import evaluate_node
    from aisys.framework.registry import get as get_op
    g = rw.graph
    for n in reversed(list(g.nodes.values())):
        if n.id not in g.nodes or n.is_leaf or not n.inputs:
            continue
        ins = [g.nodes[i] for i in n.inputs]
        if all(x.op == "const" for x in ins) and get_op(n.op).pure and n.numel <= max_elements:
            c = rw.add_const(evaluate_node(n, [x.value for x in ins]))
            rw.replace(n.id, c.id, rule="fold_constants")


def _fold_with(ignore_cap=False, impure=False, params=False):
    def fold(rw, max_elements=65536, fold_params=False):
        from aisys.framework.graph import evaluate_node
        from aisys.framework.registry import get as get_op
        g = rw.graph
        leaves = ("const", "param") if params else ("const",)
        for n in list(g.nodes.values()):
            if n.id not in g.nodes or n.is_leaf or not n.inputs:
                continue
            ins = [g.nodes[i] for i in n.inputs]
            if not all(x.op in leaves for x in ins):
                continue
            if not impure and not get_op(n.op).pure:
                continue
            if not ignore_cap and n.numel > max_elements:
                continue
            c = rw.add_const(evaluate_node(n, [x.value for x in ins]))
            rw.replace(n.id, c.id, rule="fold_constants")
    return fold


def _fold_ignores_fold_params(rw, max_elements=65536, fold_params=False):
    """Mistake: the fold_params switch is accepted but never read."""
    from aisys.compiler.passes.fold_constants import fold_constants
    fold_constants(rw, max_elements=max_elements, fold_params=False)


_fold_ignores_cap = _fold_with(ignore_cap=True)
_fold_impure_too = _fold_with(impure=True)
_fold_params_too = _fold_with(params=True)


# ---------------------------------------------------------------------------------------------
# 4.2 CSE
# ---------------------------------------------------------------------------------------------

def golden_cse_graph():
    """Duplicates of duplicates, equal attrs vs different attrs, an impure pair, and two big index arrays
    that print the same (numpy abbreviates them) but differ in the middle."""
    from aisys.framework.graph import Graph
    g = Graph("golden_cse")
    x = g.add_input("x", (4, 2000))
    a1 = g.add("exp", (x.id,)).id
    a2 = g.add("exp", (x.id,)).id                      # same as a1
    b1 = g.add("mul", (a1, x.id)).id
    b2 = g.add("mul", (a2, x.id)).id                   # same as b1 once a2 → a1
    s0 = g.add("sum", (b1,), {"dim": 0, "keepdim": False}).id
    s1 = g.add("sum", (b2,), {"dim": 1, "keepdim": False}).id    # different attrs: stays
    d1 = g.add("dropout", (b1,), {"p": 0.5, "seed": 3}).id
    d2 = g.add("dropout", (b2,), {"p": 0.5, "seed": 3}).id       # impure: stays
    k1 = np.arange(2000)
    k2 = k1.copy()
    k2[1000] = 7                                       # repr() of k1 and k2 is identical
    i1 = g.add("index", (x.id,), {"key": (slice(None), k1)}).id
    i2 = g.add("index", (x.id,), {"key": (slice(None), k2)}).id
    i3 = g.add("index", (x.id,), {"key": (slice(None), k1.copy())}).id   # same as i1
    g.set_outputs([s0, s1, g.add("add", (d1, d2)).id, i1, i2, i3])
    return g


GOLDEN_CSE_OPS = {"add": 1, "dropout": 2, "exp": 1, "index": 2, "mul": 1, "sum": 2}


def _reordered(g, seed):
    """The same graph, nodes in another valid topological order."""
    rng = np.random.default_rng(seed)
    users = g.users()
    indeg = {i: len(set(n.inputs)) for i, n in g.nodes.items()}
    ready = [i for i, d in indeg.items() if d == 0]
    order = []
    while ready:
        i = ready.pop(int(rng.integers(len(ready))))
        order.append(i)
        for u in dict.fromkeys(users[i]):
            indeg[u] -= 1
            if indeg[u] == 0:
                ready.append(u)
    h = g.copy()
    h.nodes = {i: h.nodes[i] for i in order}
    return h


def constants_and_order_graph():
    """Equal constants (2.0 twice) and a different one (3.0); sub(x, e) next to sub(e, x)."""
    from aisys.framework.graph import Graph
    g = Graph("cse_constants")
    x = g.add_input("x", (3, 5))
    two_a, two_b, three = (g.add_const(np.float32(v)).id for v in (2.0, 2.0, 3.0))
    m1 = g.add("mul", (x.id, two_a)).id
    m2 = g.add("mul", (x.id, two_b)).id           # the same value as m1: merges once 2.0 is one constant
    m3 = g.add("mul", (x.id, three)).id           # a different constant: stays
    e = g.add("exp", (x.id,)).id
    d1 = g.add("sub", (x.id, e)).id
    d2 = g.add("sub", (e, x.id)).id               # x − e and e − x: not the same value
    g.set_outputs([m1, m2, m3, d1, d2])
    return g


def _const_values(graph) -> list:
    return sorted(float(n.value) for n in graph.nodes.values() if n.op == "const" and n.numel == 1)


@register("4.2", title="CSE with a hash table keyed by (op, inputs, attrs)", lab="04_graph_passes",
          reference="aisys.compiler.passes.cse:cse",
          bad=[Mistake("aisys.labkit.checks.lab04:_cse_ignores_attrs", says="sum over dim 0 and dim 1 differ"),
               Mistake("aisys.labkit.checks.lab04:_cse_merges_impure", says="the two dropouts stay"),
               Mistake("aisys.labkit.checks.lab04:_cse_attrs_by_repr", says="compared by their values"),
               Mistake("aisys.labkit.checks.lab04:_cse_sorts_every_input_list", says="only commutative ops"),
               Mistake("aisys.labkit.checks.lab04:_cse_constants_by_node", says="keyed by their value"),
               Mistake("aisys.labkit.checks.lab04:_cse_never_merges_constants", says="equal constants are one value")])
def _check_4_2(fn, c: Checker):
    from aisys.compiler.testing import random_graph

    small = constants_and_order_graph()
    res, problem = _run(fn, small)
    if problem is not None:
        c.fail("cse on x·2, x·2, x·3, x − exp(x), exp(x) − x", expected="a valid graph", got=problem,
               hint="constants are keyed by their value (dtype, shape, bytes): a const node has no inputs or "
                    "attrs, so (op, inputs, attrs) alone would make 2.0 and 3.0 the same key")
    c.equal(_const_values(res.graph), [2.0, 3.0],
            what="the constants 2.0, 2.0 and 3.0 become one 2.0 and one 3.0",
            hint="constants are keyed by their value (dtype, shape, bytes): equal constants are one value, "
                 "different ones never are")
    c.equal(res.graph.count_ops().get("mul", 0), 2, what="x·2 twice → one mul; x·3 stays",
            hint="equal constants are one value: once the two 2.0 nodes are one, the two muls have the same key")
    c.equal(res.graph.count_ops().get("sub", 0), 2, what="x − exp(x) and exp(x) − x both stay",
            hint="only commutative ops (add, mul, maximum, minimum, eq, ne) may have their inputs sorted: "
                 "x − e and e − x are different values")
    c.true(_values_equal(small, res.graph), what="same outputs after CSE", expected="equal outputs",
           got="different outputs")

    g = golden_cse_graph()
    res, problem = _run(fn, g)
    c.true(problem is None, what="cse(rw) runs through the pass manager and the verifier accepts the result",
           expected="a valid graph", got=problem,
           hint="merge with rw.replace(later.id, first.id, rule='cse'); a merge that changes a value's type "
                "merged two nodes that differ in their attrs: the sum over dim 0 and dim 1 differ, so attrs are "
                "part of the key")
    c.equal(res.graph.count_ops(), GOLDEN_CSE_OPS, what="golden graph: op counts after CSE",
            hint="exp(x) twice → one; then mul(exp, x) twice → one (visit in topological order); sum over dim 0 "
                 "and dim 1 differ; the two dropouts stay; the index arrays are compared by their values")
    c.true(_values_equal(g, res.graph), what="golden graph: same outputs after CSE", expected="equal outputs",
           got="different outputs")
    for seed in range(3):
        r2, problem = _run(fn, _reordered(g, seed))
        c.equal(r2.graph.count_ops() if problem is None else problem, GOLDEN_CSE_OPS,
                what=f"golden graph with its nodes in another topological order (shuffle {seed})",
                hint="the key must depend on (op, inputs, attrs) only, never on where a node sits")
    for seed in range(12):
        rg = random_graph(seed, dropout=True)
        r, problem = _run(fn, rg)
        c.true(problem is None and _values_equal(rg, r.graph, seed),
               what=f"random graph {seed}: same outputs after CSE", expected="equal outputs",
               got=problem or "different outputs")
        r2, _ = _run(fn, _reordered(rg, seed))
        c.equal(r2.graph.count_ops(), r.graph.count_ops(),
                what=f"random graph {seed}: same op counts whatever the node order")
    c.true(True, what="12 random graphs: values kept and the result independent of node order")


def _freeze_repr(v):
    return repr(v)


def _cse_with(key_attrs=True, impure=False, attr_key=None, sort_all=False, consts="value"):
    """A learner-shaped CSE; the switches turn on one mistake each."""
    def cse(rw):
        from aisys.compiler.passes.cse import COMMUTATIVE, freeze
        from aisys.framework.registry import get as get_op
        g = rw.graph
        table = {}
        for n in list(g.nodes.values()):
            if n.id not in g.nodes or n.op in ("input", "param"):
                continue
            if n.op == "const":
                if consts == "skip":
                    continue
                key = ("const",) if consts == "node" else ("const", n.dtype.name, tuple(n.shape),
                                                          np.ascontiguousarray(n.value).tobytes())
            else:
                if not impure and not get_op(n.op).pure:
                    continue
                attrs = (attr_key or freeze)(n.attrs) if key_attrs else ()
                inputs = tuple(sorted(n.inputs)) if sort_all or n.op in COMMUTATIVE else tuple(n.inputs)
                key = (n.op, inputs, attrs)
            if key in table:
                rw.replace(n.id, table[key], rule="cse")
            else:
                table[key] = n.id
    return cse


_cse_ignores_attrs = _cse_with(key_attrs=False)
_cse_merges_impure = _cse_with(impure=True)
_cse_attrs_by_repr = _cse_with(attr_key=_freeze_repr)
_cse_sorts_every_input_list = _cse_with(sort_all=True)      # merges x − e with e − x
_cse_constants_by_node = _cse_with(consts="node")           # every const has the key ("const",): 2.0 == 3.0
_cse_never_merges_constants = _cse_with(consts="skip")


# ---------------------------------------------------------------------------------------------
# 4.3 Conv + BN folding
# ---------------------------------------------------------------------------------------------

def conv_bn_graph(seed: int, bias: bool = True, groups: int = 1, stride: int = 1):
    """x → conv2d(W, b) → batch_norm(mean, var, γ, β) → relu, every weight a seeded param."""
    from aisys.framework.graph import Graph
    rng = np.random.default_rng(seed)
    g = Graph("conv_bn")
    C = O = 4
    x = g.add_input("x", (2, C, 6, 6))
    w = g.add_param("conv.weight", (rng.standard_normal((O, C // groups, 3, 3)) * 0.3).astype(np.float32))
    ins = [x.id, w.id] + ([g.add_param("conv.bias", rng.uniform(-1, 1, O).astype(np.float32)).id] if bias else [])
    conv = g.add("conv2d", ins, dict(CONV, groups=groups, stride=(stride, stride)))
    stats = [g.add_param(f"bn.{n}", v.astype(np.float32)).id for n, v in (
        ("running_mean", rng.uniform(-1, 1, O)), ("running_var", rng.uniform(0.2, 3, O)),
        ("weight", rng.uniform(0.3, 2, O)), ("bias", rng.uniform(-1, 1, O)))]
    bn = g.add("batch_norm", [conv.id] + stats, {"eps": 1e-5})
    g.set_outputs([g.add("relu", (bn.id,)).id])
    return g


_SCALE_HINT = ("in eval mode batch norm is one scale and one shift per output channel; the scale is γ (γ is "
               "bn.weight) over that channel's standard deviation √(σ²+ε), and it multiplies the whole filter of "
               "that output channel (axis 0 of W: weight * scale.reshape(-1, 1, 1, 1))")
_SHIFT_HINT = ("b′ must make conv(x, W′, b′) equal batch_norm(conv(x, W, b)) for every x: substitute the conv's "
               "output, its bias b included (b = 0 when the conv has none), into batch norm and collect what does "
               "not depend on x; β is bn.bias and γ is bn.weight")


@register("4.3", title="Fold BatchNorm into the convolution's weights and bias", lab="04_graph_passes",
          reference="aisys.compiler.passes.conv_bn:fold_conv_bn_weights",
          bad=[Mistake("aisys.labkit.checks.lab04:course_snippet_fold", says="γ is bn.weight"),
               Mistake("aisys.labkit.checks.lab04:_fold_drops_conv_bias", says="its bias b included"),
               Mistake("aisys.labkit.checks.lab04:_fold_forgets_sqrt", says="standard deviation √(σ²+ε)"),
               Mistake("aisys.labkit.checks.lab04:_fold_forgets_eps", says="standard deviation √(σ²+ε)"),
               Mistake("aisys.labkit.checks.lab04:_fold_scales_input_channels", says="axis 0 of W"),
               Mistake("aisys.labkit.checks.lab04:_fold_returns_float64", says="keeps the weight's dtype")])
def _check_4_3(fn, c: Checker):
    from aisys.compiler import make_fold_conv_bn, run_pass
    from aisys.compiler.testing import random_inputs
    from aisys.framework.graph import interpret

    w = np.ones((2, 1, 1, 1), np.float32)
    try:
        got = fn(w, np.array([1.0, 2.0], np.float32), np.array([2.0, 3.0], np.float32),
                 np.array([0.5, -0.5], np.float32), np.array([1.0, 0.0], np.float32),
                 np.array([3.0, 8.0], np.float32), 1.0)
        wf, bf = (np.asarray(v) for v in got)
    except NotImplementedError:
        raise
    except Exception as exc:
        c.fail("2-channel example runs", expected="(W′, b′)", got=f"raised {type(exc).__name__}: {exc}")
    c.close(wf.reshape(-1), [1.0, 1.0], what="2-channel example: W′ (σ² + ε = 4 and 9, γ = 2 and 3)",
            rtol=1e-6, hint=_SCALE_HINT)
    c.close(bf, [0.5, 1.5], what="2-channel example: b′, with the conv bias b = [1, 2]", rtol=1e-6, hint=_SHIFT_HINT)
    c.equal((str(wf.dtype), str(bf.dtype)), ("float32", "float32"), what="W′ and b′ keep the weight's dtype (float32)",
            hint="compute in float64 if you like, then .astype(weight.dtype): the folded conv keeps the weight's dtype")
    w2 = np.full((3, 2, 1, 1), 2.0, np.float32)
    got, error = _call(fn, w2, None, np.array([1.0, 2.0, 4.0], np.float32), np.zeros(3, np.float32),
                       np.zeros(3, np.float32), np.array([0.0, 0.0, 0.0], np.float32), 0.25)
    c.close(np.asarray(got[0]).reshape(3, 2)[:, 0] if error is None else error, [4.0, 8.0, 16.0],
            what="σ² = 0 with ε = 0.25: every channel is divided by √(0 + 0.25) = 0.5 (3 output × 2 input channels)",
            rtol=1e-6, hint="ε is what keeps a channel with zero variance finite: divide by √(σ² + ε, not σ² alone); "
                            + _SCALE_HINT)
    passed = make_fold_conv_bn(fn)
    cases = [(s, bias, groups, stride) for s, (bias, groups, stride) in enumerate(
        [(True, 1, 1), (False, 1, 1), (True, 2, 1), (True, 1, 2), (False, 4, 1), (True, 4, 2)])]
    for seed, bias, groups, stride in cases:
        g = conv_bn_graph(seed, bias, groups, stride)
        try:
            res = run_pass(passed, g)
        except NotImplementedError:
            raise
        except Exception as exc:
            c.fail(f"fold_conv_bn with your weights on block {seed}", expected="a folded graph",
                   got=f"raised {type(exc).__name__}: {exc}", hint="return (W′, b′) with W′.shape == W.shape and "
                                                               "b′.shape == (out_channels,); bias may be None")
        xs = random_inputs(g, seed)
        err = float(np.max(np.abs(interpret(res.graph, *xs)[0] - interpret(g, *xs)[0])))
        c.true(err <= 1e-5 and res.graph.count_ops() == {"conv2d": 1, "relu": 1},
               what=f"block {seed} (conv bias={bias}, groups={groups}, stride={stride}): folded conv matches "
                    f"conv → batch_norm to 1e-5",
               expected="max |error| ≤ 1e-5", got=f"max |error| = {err:.3g}",
               hint=_SCALE_HINT + "; " + _SHIFT_HINT)


def course_snippet_fold(weight, bias, gamma, beta, mean, var, eps):
    """The course's fuse_conv_bn (04Inference/05Optimize/02Basic.md), transcribed: it reads
    beta = bn.weight and gamma = bn.bias — γ and β swapped — and b′ = β − γ·μ/√(σ²+ε) drops the conv bias."""
    var_sqrt = np.sqrt(var + eps)
    beta_, gamma_ = gamma, beta
    w_prime = weight * (gamma_ / var_sqrt).reshape(-1, 1, 1, 1)
    b_prime = beta_ - gamma_ / var_sqrt * mean
    return w_prime.astype(weight.dtype), b_prime.astype(weight.dtype)


def _fold_drops_conv_bias(weight, bias, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    return (weight * scale.reshape(-1, 1, 1, 1)).astype(weight.dtype), (beta - mean * scale).astype(weight.dtype)


def _fold_forgets_eps(weight, bias, gamma, beta, mean, var, eps):
    """Mistake: divides by √σ² (ε dropped): infinite for a channel with zero variance."""
    b = np.zeros(weight.shape[0]) if bias is None else bias
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = gamma / np.sqrt(var)
    return (weight * scale.reshape(-1, 1, 1, 1)).astype(weight.dtype), ((b - mean) * scale + beta).astype(weight.dtype)


def _fold_scales_input_channels(weight, bias, gamma, beta, mean, var, eps):
    """Mistake: the per-channel scale applied along axis 1 (input channels) of W."""
    b = np.zeros(weight.shape[0]) if bias is None else bias
    scale = gamma / np.sqrt(var + eps)
    cin = weight.shape[1]
    s_in = np.resize(scale, cin).reshape(1, -1, 1, 1)
    return (weight * s_in).astype(weight.dtype), ((b - mean) * scale + beta).astype(weight.dtype)


def _fold_returns_float64(weight, bias, gamma, beta, mean, var, eps):
    """Mistake: computes in float64 and returns it, so the folded conv changes the graph's dtype."""
    b = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    return weight * scale.reshape(-1, 1, 1, 1), (b - mean) * scale + beta


def _fold_forgets_sqrt(weight, bias, gamma, beta, mean, var, eps):
    b = np.zeros(weight.shape[0]) if bias is None else bias
    scale = gamma / (var + eps)
    return (weight * scale.reshape(-1, 1, 1, 1)).astype(weight.dtype), ((b - mean) * scale + beta).astype(weight.dtype)


# ---------------------------------------------------------------------------------------------
# 4.4 ONNX Gemm on registry ops
# ---------------------------------------------------------------------------------------------

def gemm_oracle(A, B, C=None, alpha=1.0, beta=1.0, trans_a=0, trans_b=0):
    """Y of one ONNX Gemm node, computed by onnxruntime when it is installed, else by onnx.reference."""
    from onnx import TensorProto, helper

    names = ["A", "B"] + (["C"] if C is not None else [])
    arrays = [A, B] + ([C] if C is not None else [])
    node = helper.make_node("Gemm", names, ["Y"], alpha=float(alpha), beta=float(beta), transA=int(trans_a),
                            transB=int(trans_b))
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in zip(names, arrays)]
    graph = helper.make_graph([node], "gemm", ins, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    feeds = dict(zip(names, arrays))
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, feeds)[0]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def _gemm_case(rng, M, K, N, c_shape, alpha, beta, ta, tb):
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
    C = None if c_shape is None else rng.standard_normal(c_shape).astype(np.float32)
    return A, B, C, dict(alpha=alpha, beta=beta, trans_a=ta, trans_b=tb)


def _run_gemm(fn, A, B, C, attrs):
    """The learner's Gemm on a fresh graph: (graph, output values) or (None, problem)."""
    from aisys.framework.graph import Graph, interpret
    from aisys.labkit.learner import call

    g = Graph("gemm")
    a, b = g.add_input("A", A.shape).id, g.add_input("B", B.shape).id
    c = g.add_input("C", C.shape).id if C is not None else None
    y, problem = call(fn, g, a, b, c, **attrs)
    if problem:
        return None, problem
    if not isinstance(y, (int, np.integer)) or int(y) not in g.nodes:
        return None, f"returned {y!r}, not the id of a node of g"
    g.set_outputs([int(y)])
    try:
        g.verify()
        out = interpret(g, *([A, B] + ([C] if C is not None else [])))[0]
    except Exception as exc:
        return None, f"the graph does not run: {type(exc).__name__}: {exc}"
    return g, out


def _describe(A, B, C, attrs):
    return (f"A{list(A.shape)}, B{list(B.shape)}, C{'' if C is None else list(C.shape)}"
            f"{' none' if C is None else ''}, alpha={attrs['alpha']:g}, beta={attrs['beta']:g}, "
            f"transA={attrs['trans_a']}, transB={attrs['trans_b']}")


def _gemm_diagnosis(out, A, B, C, attrs) -> str:
    """Which common mistake reproduces the learner's wrong values (computed with numpy), as a hint."""
    al, be, ta, tb = attrs["alpha"], attrs["beta"], attrs["trans_a"], attrs["trans_b"]
    c = np.zeros((), np.float64) if C is None else C.astype(np.float64)

    def prod(t=np.transpose, swap=False):
        fa, fb = (tb, ta) if swap else (ta, tb)
        a = t(A) if fa else A
        b = t(B) if fb else B
        return a.astype(np.float64) @ b.astype(np.float64)

    def reshape_t(m):
        return m.reshape(m.shape[::-1])
    candidates = [
        (lambda: al * (prod() + be * c), "alpha multiplies the whole sum here, C included: alpha scales A'·B' only"),
        (lambda: be * prod() + al * c, "alpha and beta are swapped: alpha scales A'·B', beta scales C"),
        (lambda: al * prod() + c, "C is added without beta: add beta·C"),
        (lambda: prod() + be * c, "alpha is ignored: multiply A'·B' by alpha"),
        (lambda: al * prod(reshape_t) + be * c, "a reshape to the swapped shape is not a transpose: the values stay "
                                                "in row-major order; use permute with dims (1, 0)"),
        (lambda: al * prod(swap=True) + be * c, "the flags are swapped: trans_a transposes A, trans_b transposes B"),
    ]
    for f, hint in candidates:
        try:
            alt = f()
        except ValueError:
            continue
        if alt.shape == np.shape(out) and np.allclose(out, alt, rtol=1e-4, atol=1e-4):
            return hint
    return _GEMM_HINT


_GEMM_HINT = ("Y = alpha·A'·B' + beta·C: A' = Aᵀ when trans_a (a permute with dims (1, 0), not a reshape), "
              "B' = Bᵀ when trans_b; alpha scales the product only, beta scales C only, C broadcasts")


@register("4.4", title="ONNX Gemm on registry ops: alpha·A'B' + beta·C", lab="04_graph_passes",
          reference="aisys.frontend.onnx.importer:gemm_ops",
          bad=[("aisys.labkit.checks.lab04:_gemm_ignores_trans_b", 'trans_b transposes B'),
               ("aisys.labkit.checks.lab04:_gemm_swaps_trans_flags", 'trans_a transposes A'),
               ("aisys.labkit.checks.lab04:_gemm_alpha_scales_c_too", "alpha scales A'·B' only"),
               ("aisys.labkit.checks.lab04:_gemm_swaps_alpha_beta", 'alpha and beta are swapped'),
               ("aisys.labkit.checks.lab04:_gemm_transposes_by_reshape", 'is not a transpose'),
               ("aisys.labkit.checks.lab04:_gemm_ignores_beta", 'add beta·C')])
def _check_4_4(fn, c: Checker):
    golden = [(2, 3, 4, None, 1.0, 1.0, 0, 0), (2, 3, 4, (4,), 1.0, 1.0, 0, 1), (3, 2, 5, (3, 1), 1.0, 1.0, 1, 0),
              (2, 4, 3, (2, 3), 0.5, 3.0, 1, 1), (3, 3, 2, (), -1.5, 0.25, 0, 1), (2, 5, 3, (1, 3), 2.0, 0.0, 1, 0)]
    rng = c.rng
    cases = [_gemm_case(rng, *g) for g in golden]
    for _ in range(20):
        M, K, N = (int(v) for v in rng.integers(1, 6, 3))
        c_shape = [None, (), (N,), (1, N), (M, 1), (M, N)][int(rng.integers(0, 6))]
        alpha, beta = (float(rng.choice([1.0, 0.5, -2.0, 1.25])) for _ in range(2))
        cases.append(_gemm_case(rng, M, K, N, c_shape, alpha, beta, int(rng.integers(0, 2)), int(rng.integers(0, 2))))
    for k, (A, B, C, attrs) in enumerate(cases):
        what = f"{'golden' if k < len(golden) else 'random'} case {_describe(A, B, C, attrs)}"
        g, out = _run_gemm(fn, A, B, C, attrs)
        if g is None:
            hint = ("a matmul received operands whose inner sizes differ: trans_a transposes A and trans_b "
                    "transposes B (A' is (M, K), B' is (K, N))" if "inner dimensions" in out else
                    "add nodes with g.add(op, inputs, attrs) and constants with g.add_const(value); " + _GEMM_HINT)
            c.fail(what, expected="a registry-op graph computing Gemm", got=out, hint=hint)
        want = gemm_oracle(A, B, C, **attrs)
        ok = out.shape == want.shape and np.allclose(out, want, rtol=1e-5, atol=1e-5)
        if k < len(golden) or not ok:                 # the random cases are reported together, or where one fails
            c.close(out, want, rtol=1e-5, atol=1e-5, what=what + " equals the ONNX oracle",
                    hint="" if ok else _gemm_diagnosis(out, A, B, C, attrs))
        if k == len(golden) - 1:
            c.true(True, what=f"{len(golden)} golden cases (every transpose flag, C absent, scalar, (N,), (M,1), "
                              f"(1,N), (M,N), beta 0) equal the ONNX oracle")
    c.true(True, what=f"{len(cases) - len(golden)} random shapes and attributes equal the ONNX oracle")
    A, B, C, attrs = _gemm_case(rng, 2, 3, 4, (4,), 1.0, 1.0, 0, 0)
    g, _ = _run_gemm(fn, A, B, C, attrs)
    c.equal(g.count_ops().get("mul", 0), 0, what="alpha = beta = 1: no multiply by one is emitted",
            hint="emit the mul only when alpha (or beta) differs from 1: a graph compiler should not have to "
                 "remove what the converter needlessly added")


def _gemm_variant(honours_trans_b=True, swap_flags=False, alpha_on_c=False, swap_ab=False, reshape_t=False,
                  use_beta=True, beta_zero_drops=True):
    def gemm(g, a, b, c=None, alpha=1.0, beta=1.0, trans_a=0, trans_b=0):
        ta, tb = trans_a, trans_b
        if swap_flags:
            ta, tb = tb, ta
        if swap_ab:
            alpha, beta = beta, alpha

        def t(i):
            s = g.nodes[i].shape
            if reshape_t:
                return g.add("reshape", (i,), {"shape": (s[1], s[0])}).id
            return g.add("permute", (i,), {"dims": (1, 0)}).id
        if ta:
            a = t(a)
        if tb and honours_trans_b:
            b = t(b)
        y = g.add("matmul", (a, b)).id
        if alpha != 1.0 and not alpha_on_c:
            y = g.add("mul", (y, g.add_const(np.float32(alpha)).id)).id
        if c is not None and (beta != 0.0 or not beta_zero_drops):
            if use_beta and beta != 1.0:
                c = g.add("mul", (c, g.add_const(np.float32(beta)).id)).id
            y = g.add("add", (y, c)).id
        if alpha != 1.0 and alpha_on_c:
            y = g.add("mul", (y, g.add_const(np.float32(alpha)).id)).id
        return y
    return gemm


_gemm_ignores_trans_b = _gemm_variant(honours_trans_b=False)
_gemm_swaps_trans_flags = _gemm_variant(swap_flags=True)
_gemm_alpha_scales_c_too = _gemm_variant(alpha_on_c=True)
_gemm_swaps_alpha_beta = _gemm_variant(swap_ab=True)
_gemm_transposes_by_reshape = _gemm_variant(reshape_t=True)
_gemm_ignores_beta = _gemm_variant(use_beta=False)
