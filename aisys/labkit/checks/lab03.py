"""Checks for lab 03 — graph capture, dispatch, control flow (static vs dynamic graphs).

3.1 ``trace(fn, *example_inputs)``: record the ops a function performs into a Graph (check: the
    recorded op sequence, the leaves, and that the graph computes ``fn`` for a *new* input).
3.2 ``cond(pred, true_fn, false_fn, operands)``: the op a tensor-dependent ``if`` is lowered to (check:
    right outputs for inputs taking both branches of the lecture's RNN cell, also after tracing — where
    the Python ``if`` version goes silently wrong on one of them).
3.3 ``dispatch_order(device, dtype, *, device_fallback, dtype_fallback)``: the fallback order of an
    (op, device, dtype) kernel dispatcher (check: the order and the resolution table it produces).

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject.
"""
from __future__ import annotations

import numpy as np

from aisys.labkit import Checker, register
from aisys.labkit.learner import call as _call


def _clean_observers(before):
    """Put the observer list back as it was (a tracer left installed would record everything after)."""
    from aisys.framework.tensor import _Mode
    leftover = [ob for ob in _Mode.observers if ob not in before]
    _Mode.observers[:] = list(before)
    return leftover


# ---------------------------------------------------------------------------------------------
# 3.1 trace
# ---------------------------------------------------------------------------------------------

def _programs():
    import aisys
    rng = np.random.default_rng(31)
    W = aisys.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    b = aisys.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)

    def scale_shift(x):
        return (x * 2.0 + 1.0).relu().sum()

    def layer(x):
        return (x @ W + b).tanh()

    def two_uses(x):
        y = x.exp()
        return y * y - x
    return W, b, [
        (scale_shift, (2, 3), ["mul", "add", "relu", "sum"]),
        (layer, (2, 3), ["matmul", "add", "tanh"]),
        (two_uses, (3,), ["exp", "mul", "sub"]),
    ]


@register("3.1", title="trace: record the ops of one run into a graph", lab="03_graph_capture",
          reference="aisys.frontend.trace:trace",
          bad=["aisys.labkit.checks.lab03:_trace_inputs_become_constants",
               "aisys.labkit.checks.lab03:_trace_forgets_which_node_made_a_tensor",
               "aisys.labkit.checks.lab03:_trace_leaves_its_observer_installed"])
def _check_3_1(fn, c: Checker):
    import aisys
    from aisys.framework.graph import Graph, interpret
    from aisys.framework.tensor import _Mode

    W, b, programs = _programs()
    for prog, shape, ops in programs:
        example = aisys.tensor(c.rng.standard_normal(shape).astype(np.float32))
        before = list(_Mode.observers)
        g, error = _call(fn, prog, example)
        leftover = _clean_observers(before)
        if error is not None or not isinstance(g, Graph):
            c.fail(f"trace({prog.__name__}, x) returns a Graph", expected="an aisys Graph",
                   got=error or type(g).__name__,
                   hint="make a Graph, register an observer in _Mode.observers, call fn, then set the outputs")
        if leftover:
            c.fail(f"{prog.__name__}: the observer is removed afterwards", expected="_Mode.observers as before",
                   got=f"{len(leftover)} observer(s) left installed",
                   hint="remove your observer in a finally: block, or every later op is recorded too")
        c.equal([n.op for n in g.op_nodes], ops, what=f"{prog.__name__}: the recorded op sequence",
                hint="one node per call of your observer (op.name), in call order; leaves are not ops")
        c.equal((len(g.inputs), len(g.outputs)), (1, 1),
                what=f"{prog.__name__}: (graph inputs, graph outputs) = the example input and the returned tensor",
                hint="add_input(name, shape, dtype) for each example input and remember its node; "
                     "graph.set_outputs([node id of the tensor fn returned])")
        if prog.__name__ == "layer":
            kinds = sorted(n.op for n in g if n.is_leaf)
            c.equal(kinds, ["input", "param", "param"], what="layer: W and b (requires_grad leaves) are params",
                    hint="a tensor first seen inside fn that requires grad is a parameter: add_param(name, value)")
        fresh = aisys.tensor(c.rng.standard_normal(shape).astype(np.float32))
        got, error = _call(lambda: interpret(g, fresh)[0])
        if error:
            c.fail(f"{prog.__name__}: interpret(graph, new x)", expected="an array", got=error,
                   hint="every node's inputs must be node ids of this graph")
        c.close(got, prog(fresh).numpy(), what=f"{prog.__name__}: interpret(graph, a NEW x) equals fn(x)",
                rtol=1e-5, atol=1e-6,
                hint="look up each op input's node through the tensor (its _trace slot or a dict by id); "
                     "only tensors you have never seen become new leaves")


def _mini_trace(fn, *example_inputs, bake_inputs=False, link_outputs=True, remove_observer=True):
    """A compact tracer (the shape of a learner's solution); the flags switch on the mistakes below."""
    from aisys.framework.graph import Graph
    from aisys.framework.tensor import Tensor, _Mode

    graph = Graph(getattr(fn, "__name__", "f"))
    node_of: dict[int, int] = {}
    keep: list = []

    def lookup(t):
        if id(t) not in node_of:
            if t.requires_grad and t._ctx is None:
                node_of[id(t)] = graph.add_param(f"p{len(node_of)}", np.array(t._data)).id
            else:
                node_of[id(t)] = graph.add_const(np.array(t._data)).id
            keep.append(t)
        return node_of[id(t)]

    def observer(op, inputs, attrs, out):
        n = graph.add(op.name, [lookup(t) for t in inputs], attrs, shape=out.shape, dtype=out.dtype)
        if link_outputs:
            node_of[id(out)] = n.id
            keep.append(out)

    args = []
    for k, x in enumerate(example_inputs):
        t = Tensor._wrap(np.array(x._data))
        if not bake_inputs:
            node_of[id(t)] = graph.add_input(f"x{k}", t.shape, t.dtype).id
        keep.append(t)
        args.append(t)
    _Mode.observers.append(observer)
    try:
        out = fn(*args)
    finally:
        if remove_observer:
            _Mode.observers.remove(observer)
    graph.set_outputs([lookup(out)])
    return graph


def _trace_inputs_become_constants(fn, *example_inputs):
    """Mistake: the example inputs are not registered, so they are baked in as constants."""
    return _mini_trace(fn, *example_inputs, bake_inputs=True)


def _trace_forgets_which_node_made_a_tensor(fn, *example_inputs):
    """Mistake: op outputs are not linked to their nodes, so each op reads a snapshot constant."""
    return _mini_trace(fn, *example_inputs, link_outputs=False)


def _trace_leaves_its_observer_installed(fn, *example_inputs):
    """Mistake: the observer stays in _Mode.observers after tracing."""
    return _mini_trace(fn, *example_inputs, remove_observer=False)


# ---------------------------------------------------------------------------------------------
# 3.2 cond
# ---------------------------------------------------------------------------------------------

def _rnn_weights():
    import aisys
    rng = np.random.default_rng(32)
    return (aisys.tensor(rng.standard_normal((4, 4)).astype(np.float32)),
            aisys.tensor(rng.standard_normal((4, 3)).astype(np.float32)))


@register("3.2", title="cond: an if on a tensor becomes one op holding both branches", lab="03_graph_capture",
          reference="aisys.frontend.control_flow:cond",
          bad=["aisys.labkit.checks.lab03:_cond_python_if",
               "aisys.labkit.checks.lab03:_cond_swapped_branches"])
def _check_3_2(fn, c: Checker):
    import aisys
    from aisys.framework.graph import interpret
    from aisys.framework.tensor import _Mode

    x = aisys.tensor([1.0, -2.0, 3.0])
    for flag, expected in ((True, [2.0, -4.0, 6.0]), (False, [0.0, -3.0, 2.0])):
        got, error = _call(fn, aisys.tensor(flag), lambda v: v * 2.0, lambda v: v - 1.0, (x,))
        if error:
            c.fail(f"cond({flag}, x*2, x-1, (x,))", expected="a tensor", got=error,
                   hint="capture_branches(true_fn, false_fn, operands) gives both graphs; then apply('cond', …)")
        c.close(got.numpy(), expected, what=f"cond({flag}, lambda v: v*2, lambda v: v-1, (x,)) eagerly",
                hint="pred true → the first function (then_graph), false → the second (else_graph)")

    W_h, W_x = _rnn_weights()

    def cell_with_cond(x, prev_h):
        h2h = W_h @ prev_h.T
        h2h = fn(h2h.sum() > 0, lambda h2h, x: h2h + W_x @ x.T, lambda h2h, x: h2h, (h2h, x))
        return h2h.tanh()

    def cell_with_python_if(x, prev_h):
        h2h = W_h @ prev_h.T
        if h2h.sum() > 0:
            h2h = h2h + W_x @ x.T
        return h2h.tanh()

    rng = np.random.default_rng(320)
    xs = aisys.tensor(rng.standard_normal((1, 3)).astype(np.float32))
    h = rng.standard_normal((1, 4)).astype(np.float32)
    if (W_h.numpy() @ h.T).sum() <= 0:
        h = -h
    pos, neg = aisys.tensor(h), aisys.tensor(-h)
    before = list(_Mode.observers)
    g, error = _call(aisys.trace, cell_with_cond, xs, pos)
    _clean_observers(before)
    if error:
        c.fail("aisys.trace(the RNN cell written with your cond)", expected="a graph", got=error,
               hint="your cond must work on tracer tensors too: record the op with apply, do not read the value")
    c.true("cond" in g.count_ops(), what="the traced RNN cell contains a cond op", expected="a cond node",
           got=f"ops {g.count_ops()}", hint="do not decide with a Python if: bool(pred) bakes one branch "
                                             "into any trace; emit one cond op that holds both branches")
    traced_if = aisys.trace(cell_with_python_if, xs, pos)
    for name, hh in (("prev_h (takes the branch)", pos), ("-prev_h (skips it)", neg)):
        eager = cell_with_python_if(xs, hh).numpy()
        got, error = _call(lambda: interpret(g, xs, hh)[0])
        if error:
            c.fail(f"interpret(traced cell, {name})", expected="an array", got=error)
        c.close(got, eager, rtol=1e-5, atol=1e-6, what=f"traced cond cell vs eager Python if, input {name}",
                hint="both branches must be in the graph, chosen at run time by the predicate")
    wrong = not np.allclose(interpret(traced_if, xs, neg)[0], cell_with_python_if(xs, neg).numpy())
    c.true(wrong, what="for contrast: the traced Python-if cell is wrong on -prev_h (its branch was baked)",
           expected="a difference", got="no difference")


def _cond_python_if(pred, true_fn, false_fn, operands=()):
    """Mistake: decide in Python — right when run eagerly, baked into any trace."""
    return true_fn(*operands) if bool(pred) else false_fn(*operands)


def _cond_swapped_branches(pred, true_fn, false_fn, operands=()):
    """Mistake: then/else graphs swapped."""
    from aisys.framework.tensor import apply
    from aisys.frontend.control_flow import capture_branches
    then_graph, else_graph, captured = capture_branches(true_fn, false_fn, operands)
    return apply("cond", pred, *operands, *captured, then_graph=else_graph, else_graph=then_graph)


# ---------------------------------------------------------------------------------------------
# 3.3 dispatch_order
# ---------------------------------------------------------------------------------------------

LAB_DEVICE_FALLBACK = {"npu": "cpu", "gpu": "cpu"}
LAB_DTYPE_FALLBACK = {"bfloat16": "float32", "float16": "float32", "int8": "int32", "int32": "int64"}


@register("3.3", title="dispatch: the fallback order of an (op, device, dtype) dispatcher",
          lab="03_graph_capture", reference="aisys.framework.dispatch:dispatch_order",
          bad=["aisys.labkit.checks.lab03:_order_devices_before_upcast",
               "aisys.labkit.checks.lab03:_order_forgets_the_reference",
               "aisys.labkit.checks.lab03:_order_any_dtype_last",
               "aisys.labkit.checks.lab03:_order_skips_any_dtype",
               "aisys.labkit.checks.lab03:_order_first_device_only"])
def _check_3_3(fn, c: Checker):
    from aisys.framework.dispatch import Dispatcher, demo_dispatcher, dispatch_order

    kw = dict(device_fallback=LAB_DEVICE_FALLBACK, dtype_fallback=LAB_DTYPE_FALLBACK)
    got, error = _call(fn, "npu", "bfloat16", **kw)
    if error:
        c.fail("dispatch_order('npu', 'bfloat16', …)", expected="a list of (device, dtype)", got=error)
    c.equal([tuple(k) for k in got], dispatch_order("npu", "bfloat16", **kw),
            what="order for (npu, bfloat16)",
            hint="per device: exact dtype, then ('dev', '*'), then wider dtypes; then the fallback device; "
                 "finally ('*', '*')")
    got, error = _call(fn, "cpu", "float32", **kw)
    c.equal([tuple(k) for k in (got or [])], [("cpu", "float32"), ("cpu", "*"), ("*", "*")],
            what="order for (cpu, float32): no fallbacks left but the reference",
            hint="a device or dtype without a fallback entry ends its chain")
    deep = dict(device_fallback={"npu": "gpu", "gpu": "cpu"}, dtype_fallback={"int8": "int32", "int32": "int64"})
    got, error = _call(fn, "npu", "int8", **deep)
    c.equal([tuple(k) for k in (got or [])], dispatch_order("npu", "int8", **deep),
            what="a 3-device chain (npu→gpu→cpu) and a 3-dtype chain (int8→int32→int64)",
            hint="follow each fallback table until it has no entry")

    ops, devices, dtypes = ["matmul", "relu", "add"], ["cpu", "npu"], ["float32", "bfloat16", "int8"]
    reference_table = demo_dispatcher().resolutions(ops, devices, dtypes)
    learner = demo_dispatcher(order=lambda dev, dt, **k: [tuple(x) for x in fn(dev, dt, **k)])
    rows, error = _call(learner.resolutions, ops, devices, dtypes)
    if error:
        c.fail("the lab's dispatcher resolves every request with your order", expected="a table", got=error,
               hint="the order must end with ('*', '*'), the registry's reference kernel, which always exists")
    c.equal(rows, reference_table, what=f"the resolution table: {len(rows)} requests ({', '.join(ops)} × "
                                        f"{', '.join(devices)} × {', '.join(dtypes)})",
            hint="the first key in your order that has a registered kernel wins")

    # the eager path: the library's own dispatcher (what every aisys op goes through) running your order
    from aisys.framework.dispatch import DISPATCHER
    from aisys.framework.factories import tensor
    a = tensor(np.arange(6.0).reshape(2, 3)).bfloat16()
    with DISPATCHER.registered("matmul", np.matmul, "cpu", "float32", name="cpu_sgemm"), \
            DISPATCHER.using_order(learner.order), DISPATCHER.recording() as log:
        _, error = _call(lambda: a @ a.T)
    c.equal(error or [r.kernel_name for r in log], ["cpu_sgemm"],
            what="eager `a @ a.T` on bfloat16 cpu tensors, through aisys's dispatcher with your order",
            hint="no bf16 kernel on the cpu: the order must try the wider dtype (cpu, float32) before the reference")


def _order_devices_before_upcast(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: try every device with the original dtype before computing in a wider dtype."""
    from aisys.framework.dispatch import _chain
    devs, dts = _chain(device, device_fallback), _chain(dtype, dtype_fallback)
    order = [(d, t) for t in dts for d in devs]
    order += [(d, "*") for d in devs]
    return order + [("*", "*")]


def _order_forgets_the_reference(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: no ("*", "*") at the end, so requests without a kernel fail."""
    from aisys.framework.dispatch import dispatch_order
    return dispatch_order(device, dtype, device_fallback=device_fallback, dtype_fallback=dtype_fallback)[:-1]


def _order_any_dtype_last(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: on each device, up-cast to a wider dtype before trying the any-dtype kernel."""
    from aisys.framework.dispatch import _chain
    order = []
    wider = _chain(dtype, dtype_fallback)[1:]
    for d in _chain(device, device_fallback):
        order += [(d, dtype)] + [(d, w) for w in wider] + [(d, "*")]
    return order + [("*", "*")]


def _order_skips_any_dtype(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: never tries a device's any-dtype kernel ("*")."""
    from aisys.framework.dispatch import dispatch_order
    return [k for k in dispatch_order(device, dtype, device_fallback=device_fallback, dtype_fallback=dtype_fallback)
            if k[1] != "*" or k[0] == "*"]


def _order_first_device_only(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: stops after the requested device (no device fallback), straight to the reference."""
    from aisys.framework.dispatch import _chain
    return [(device, dtype), (device, "*")] + [(device, w) for w in _chain(dtype, dtype_fallback)[1:]] + [("*", "*")]
