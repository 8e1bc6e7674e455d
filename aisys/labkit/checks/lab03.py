"""Checks for lab 03 — graph capture, dispatch, control flow (static vs dynamic graphs).

3.1 ``trace_program(fn, *example_inputs)``: record the ops a function performs into a Graph, with the
    public hook ``aisys.observe_ops`` (check: the recorded op sequence, inputs, params and consts, the
    output the function *returned*, that the graph computes ``fn`` for a *new* input, and that the
    library's own tracer was not called to do it).
3.2 ``cond(pred, true_fn, false_fn, operands)``: the op a tensor-dependent ``if`` is lowered to (check:
    right outputs for both branches, branches that read a trainable weight from outside (a capture),
    gradients through the op, and the lecture's RNN cell traced — where the Python ``if`` version goes
    silently wrong on one of the inputs).
3.3 ``dispatch_order(device, dtype, *, device_fallback, dtype_fallback)``: the fallback order of an
    (op, device, dtype) kernel dispatcher (check: the order and the resolution table it produces).

Each check lists plausible mistakes (the ``_…`` functions below) that it must reject, with the words its
report shows for each.
"""
from __future__ import annotations

import numpy as np

from aisys.labkit import Checker, Mistake, register
from aisys.labkit.learner import call as _call


def _clean_observers(before):
    """Put the observer list back as it was (a tracer left installed would record everything after)."""
    from aisys.framework.tensor import _Mode
    leftover = [ob for ob in _Mode.observers if ob not in before]
    _Mode.observers[:] = list(before)
    return leftover


class _LibraryTracerWatch:
    """Counts the library tracers (aisys.trace, aisys.script, Tracer) created while it is active."""

    def __enter__(self):
        from aisys.frontend import Tracer
        self.cls, self.original, self.count = Tracer, Tracer.__init__, 0
        watch = self

        def counting_init(tracer, *args, **kwargs):
            watch.count += 1
            watch.original(tracer, *args, **kwargs)

        Tracer.__init__ = counting_init
        return self

    def __exit__(self, *exc):
        self.cls.__init__ = self.original
        return False


# ---------------------------------------------------------------------------------------------
# 3.1 trace
# ---------------------------------------------------------------------------------------------

def _programs():
    import aisys
    rng = np.random.default_rng(31)
    W = aisys.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    b = aisys.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    scale = b * 2.0                       # requires grad, but computed before tracing: not a leaf

    def scale_shift(x):
        return (x * 2.0 + 1.0).relu().sum()

    def layer(x):
        return (x @ W + b).tanh()

    def two_uses(x):
        y = x.exp()
        return y * y - x

    def metric_after(x):
        y = (x @ W).relu()
        (y * y).sum()                     # computed after the value the function returns
        return y

    def closure_of_a_result(x):
        return (x @ W) * scale

    return [
        (scale_shift, (2, 3), ["mul", "add", "relu", "sum"], {"input": 1, "const": 2}),
        (layer, (2, 3), ["matmul", "add", "tanh"], {"input": 1, "param": 2}),
        (two_uses, (3,), ["exp", "mul", "sub"], {"input": 1}),
        (metric_after, (2, 3), ["matmul", "relu", "mul", "sum"], {"input": 1, "param": 1}),
        (closure_of_a_result, (2, 3), ["matmul", "mul"], {"input": 1, "param": 1, "const": 1}),
    ]


_LEAF_HINT = ("a tensor met for the first time is a leaf: `param` when it is a trainable leaf (t.requires_grad "
              "and t.is_leaf), else `const` (a copy of t.numpy()); a tensor that requires grad but was computed "
              "by an op (not is_leaf) is a const snapshot; an op's result is never a new leaf: map id(out) to the "
              "node you added, and look up each op input in that map")


@register("3.1", title="trace: record the ops of one run into a graph", lab="03_graph_capture",
          reference="aisys.frontend.trace:record_ops",
          bad=[Mistake("aisys.labkit.checks.lab03:_trace_inputs_become_constants", says="add_input"),
               Mistake("aisys.labkit.checks.lab03:_trace_forgets_which_node_made_a_tensor", says="look up each op input"),
               Mistake("aisys.labkit.checks.lab03:_trace_with_the_library", says="write the observer yourself"),
               Mistake("aisys.labkit.checks.lab03:_trace_params_become_constants", says="trainable leaf"),
               Mistake("aisys.labkit.checks.lab03:_trace_output_is_the_last_op", says="the tensor fn returned"),
               Mistake("aisys.labkit.checks.lab03:_trace_every_grad_tensor_is_a_param", says="not is_leaf")])
def _check_3_1(fn, c: Checker):
    import aisys
    from aisys.framework.graph import Graph, interpret
    from aisys.framework.tensor import _Mode

    for prog, shape, ops, leaves in _programs():
        example = aisys.tensor(c.rng.standard_normal(shape).astype(np.float32))
        before = list(_Mode.observers)
        with _LibraryTracerWatch() as watch:
            g, error = _call(fn, prog, example)
        leftover = _clean_observers(before)
        if watch.count:
            c.fail(f"trace_program({prog.__name__}, x) records the ops itself",
                   expected="no call of the library's tracer", got="aisys.trace / aisys.script / Tracer was used",
                   hint="write the observer yourself: with aisys.observe_ops(observer): fn(...) calls it once per op")
        if error is not None or not isinstance(g, Graph):
            c.fail(f"trace_program({prog.__name__}, x) returns a Graph", expected="an aisys Graph",
                   got=error or type(g).__name__,
                   hint="make a Graph, call fn inside `with aisys.observe_ops(observer):`, then set the outputs")
        if leftover:
            c.fail(f"{prog.__name__}: the observer is removed afterwards", expected="no observer left installed",
                   got=f"{len(leftover)} observer(s) left installed",
                   hint="install the observer with `with aisys.observe_ops(observer):`, which removes it at the end")
        c.equal([n.op for n in g.op_nodes], ops, what=f"{prog.__name__}: the recorded op sequence",
                hint="one node per call of your observer (op.name), in call order; leaves are not ops")
        c.equal(len(g.inputs), 1, what=f"{prog.__name__}: one graph input, the example input",
                hint="register each example input with graph.add_input(name, shape, dtype) before running fn, "
                     "and map the tensor you pass to fn to that node")
        kinds = {k: sum(1 for n in g if n.op == k) for k in ("input", "param", "const")}
        c.equal({k: v for k, v in kinds.items() if v}, leaves, what=f"{prog.__name__}: its leaves (input, param, const)",
                hint=_LEAF_HINT)
        expected_out = next(n for n in g.op_nodes if n.op == ("relu" if prog.__name__ == "metric_after" else ops[-1]))
        c.equal(len(g.outputs), 1, what=f"{prog.__name__}: one graph output")
        c.equal(g.nodes[g.outputs[0]].op, expected_out.op,
                what=f"{prog.__name__}: the output is the node of the value fn returned",
                hint="set the outputs to the node of the tensor fn returned, which need not be the last op recorded")
        fresh = aisys.tensor(c.rng.standard_normal(shape).astype(np.float32))
        got, error = _call(lambda: interpret(g, fresh)[0])
        if error:
            c.fail(f"{prog.__name__}: interpret(graph, new x)", expected="an array", got=error,
                   hint="every node's inputs must be node ids of this graph")
        c.close(got, prog(fresh).numpy(), what=f"{prog.__name__}: interpret(graph, a NEW x) equals fn(x)",
                rtol=1e-5, atol=1e-6,
                hint="look up each op input's node in your map from tensor (id(t)) to node id; only tensors you "
                     "have never seen become new leaves, and the example input must be an input node, not a const")


def _mini_trace(fn, *example_inputs, bake_inputs=False, link_outputs=True, params=True, last_op_out=False,
                nonleaf_params=False):
    """A compact tracer on the public hooks (the shape of a learner's solution); flags switch on mistakes."""
    import aisys
    from aisys.framework.graph import Graph

    graph = Graph(getattr(fn, "__name__", "f"))
    node_of: dict[int, int] = {}
    keep: list = []
    recorded: list[int] = []

    def lookup(t):
        if id(t) not in node_of:
            trainable = t.requires_grad and (nonleaf_params or t.is_leaf)
            if params and trainable:
                node_of[id(t)] = graph.add_param(f"p{len(node_of)}", np.array(t.numpy())).id
            else:
                node_of[id(t)] = graph.add_const(np.array(t.numpy())).id
            keep.append(t)
        return node_of[id(t)]

    def observer(op, inputs, attrs, out):
        n = graph.add(op.name, [lookup(t) for t in inputs], attrs, shape=out.shape, dtype=out.dtype)
        recorded.append(n.id)
        if link_outputs:
            node_of[id(out)] = n.id
            keep.append(out)

    args = []
    for k, x in enumerate(example_inputs):
        t = x.detach()
        if not bake_inputs:
            node_of[id(t)] = graph.add_input(f"x{k}", t.shape, t.dtype).id
        keep.append(t)
        args.append(t)
    with aisys.observe_ops(observer):
        out = fn(*args)
    graph.set_outputs([recorded[-1] if last_op_out else lookup(out)])
    return graph


def _trace_inputs_become_constants(fn, *example_inputs):
    """Mistake: the example inputs are not registered, so they are baked in as constants."""
    return _mini_trace(fn, *example_inputs, bake_inputs=True)


def _trace_forgets_which_node_made_a_tensor(fn, *example_inputs):
    """Mistake: op outputs are not linked to their nodes, so each op reads a snapshot constant."""
    return _mini_trace(fn, *example_inputs, link_outputs=False)


def _trace_with_the_library(fn, *example_inputs):
    """Mistake (a shortcut): hands the work to aisys.trace."""
    import aisys
    return aisys.trace(fn, *example_inputs)


def _trace_params_become_constants(fn, *example_inputs):
    """Mistake: every leaf met inside fn becomes a const, trainable weights too."""
    return _mini_trace(fn, *example_inputs, params=False)


def _trace_output_is_the_last_op(fn, *example_inputs):
    """Mistake: takes the last recorded op as the output instead of the node of the returned tensor."""
    return _mini_trace(fn, *example_inputs, last_op_out=True)


def _trace_every_grad_tensor_is_a_param(fn, *example_inputs):
    """Mistake: any tensor that requires grad becomes a param, even one computed by an op before tracing."""
    return _mini_trace(fn, *example_inputs, nonleaf_params=True)


# ---------------------------------------------------------------------------------------------
# 3.2 cond
# ---------------------------------------------------------------------------------------------

def _rnn_weights():
    import aisys
    rng = np.random.default_rng(32)
    return (aisys.tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True),
            aisys.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True))


_CAPTURE_HINT = ("capture_branches(true_fn, false_fn, operands) returns (then_graph, else_graph, captured): the "
                 "branches read tensors from outside (a trainable weight in a closure), and the op must receive "
                 "those captured tensors after the operands: apply('cond', pred, *operands, *captured, ...)")


@register("3.2", title="cond: an if on a tensor becomes one op holding both branches", lab="03_graph_capture",
          reference="aisys.frontend.control_flow:cond",
          bad=[Mistake("aisys.labkit.checks.lab03:_cond_python_if", says="bakes one branch"),
               Mistake("aisys.labkit.checks.lab03:_cond_swapped_branches", says="the first function (then_graph)"),
               Mistake("aisys.labkit.checks.lab03:_cond_drops_the_captured_tensors", says="those captured tensors"),
               Mistake("aisys.labkit.checks.lab03:_cond_computes_both_and_selects", says="one cond op"),
               Mistake("aisys.labkit.checks.lab03:_cond_captured_before_operands", says="after the operands")])
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

    w = aisys.tensor([0.5, 1.0, -1.0], requires_grad=True)
    got, error = _call(fn, aisys.tensor(True), lambda v: v * w, lambda v: v - w, (x,))
    if error:
        c.fail("cond(True, lambda v: v * w, lambda v: v - w, (x,)) with a trainable w read from outside",
               expected="a tensor", got=error, hint=_CAPTURE_HINT)
    c.close(got.numpy(), x.numpy() * w.numpy(), what="a branch reading a trainable weight w from outside (a capture)",
            hint=_CAPTURE_HINT)
    got.sum().backward()
    c.close(w.grad.numpy() if w.grad is not None else np.full(3, np.nan), x.numpy(),
            what="gradients flow through your cond into the captured weight: d/dw Σ x·w = x",
            hint=_CAPTURE_HINT)

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
        c.fail("aisys.trace(the RNN cell written with your cond; its weights are trainable)", expected="a graph",
               got=error, hint="your cond must work on tracer tensors too: record the op with apply, do not read "
                               "the value; " + _CAPTURE_HINT)
    c.true("cond" in g.count_ops(), what="the traced RNN cell contains a cond op", expected="one cond op",
           got=f"ops {g.count_ops()}", hint="emit one cond op that holds both branches: a Python if (bool(pred)) "
                                              "bakes one branch into any trace, and computing both branches then "
                                              "selecting with where runs both every time")
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


def _cond_drops_the_captured_tensors(pred, true_fn, false_fn, operands=()):
    """Mistake: the branches' captures are not passed to the op (right only when nothing is captured)."""
    from aisys.framework.tensor import apply
    from aisys.frontend.control_flow import capture_branches
    then_graph, else_graph, _ = capture_branches(true_fn, false_fn, operands)
    return apply("cond", pred, *operands, then_graph=then_graph, else_graph=else_graph)


def _cond_computes_both_and_selects(pred, true_fn, false_fn, operands=()):
    """Mistake: runs both branches and picks with where: right values, no cond op, both branches always run."""
    import aisys
    return aisys.where(pred, true_fn(*operands), false_fn(*operands))


def _cond_captured_before_operands(pred, true_fn, false_fn, operands=()):
    """Mistake: passes the captured tensors before the operands."""
    from aisys.framework.tensor import apply
    from aisys.frontend.control_flow import capture_branches
    then_graph, else_graph, captured = capture_branches(true_fn, false_fn, operands)
    return apply("cond", pred, *captured, *operands, then_graph=then_graph, else_graph=else_graph)


# ---------------------------------------------------------------------------------------------
# 3.3 dispatch_order
# ---------------------------------------------------------------------------------------------

LAB_DEVICE_FALLBACK = {"npu": "cpu", "gpu": "cpu"}
LAB_DTYPE_FALLBACK = {"bfloat16": "float32", "float16": "float32", "int8": "int32", "int32": "int64"}


@register("3.3", title="dispatch: the fallback order of an (op, device, dtype) dispatcher",
          lab="03_graph_capture", reference="aisys.framework.dispatch:dispatch_order",
          bad=[Mistake("aisys.labkit.checks.lab03:_order_devices_before_upcast", says="before moving to the fallback device"),
               Mistake("aisys.labkit.checks.lab03:_order_forgets_the_reference", says="end with ('*', '*')"),
               Mistake("aisys.labkit.checks.lab03:_order_any_dtype_last", says="before the wider dtypes"),
               Mistake("aisys.labkit.checks.lab03:_order_one_fallback_step", says="until it has no entry"),
               Mistake("aisys.labkit.checks.lab03:_order_any_dtype_first", says="exact dtype"),
               Mistake("aisys.labkit.checks.lab03:_order_skips_any_dtype", says="any-dtype kernel slot"),
               Mistake("aisys.labkit.checks.lab03:_order_first_device_only", says="comes its fallback device")])
def _check_3_3(fn, c: Checker):
    from aisys.framework.dispatch import Dispatcher, demo_dispatcher, dispatch_order

    kw = dict(device_fallback=LAB_DEVICE_FALLBACK, dtype_fallback=LAB_DTYPE_FALLBACK)
    got, error = _call(fn, "npu", "bfloat16", **kw)
    if error:
        c.fail("dispatch_order('npu', 'bfloat16', …)", expected="a list of (device, dtype)", got=error)
    want = dispatch_order("npu", "bfloat16", **kw)
    got = [tuple(k) for k in got]
    c.equal(got, want, what="order for (npu, bfloat16)", hint=_order_hint(got, want))
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


def _order_hint(got, want) -> str:
    """What a wrong fallback order got wrong, read off the keys it lists and their order."""
    rule = ("per device: exact dtype, then ('dev', '*'), then wider dtypes; then the fallback device; finally "
            "('*', '*'), the reference, which always exists")
    if not got or got[-1] != ("*", "*"):
        return "end with ('*', '*'): the registry's reference, which always exists, so no request is left without one"
    devices = list(dict.fromkeys(d for d, _ in want if d != "*"))
    mine = list(dict.fromkeys(d for d, _ in got if d != "*"))
    if mine == devices[:1]:
        return (f"after the {devices[0]} kernels comes its fallback device ({' → '.join(devices)}): only then "
                f"('*', '*')")
    runs = [d for k, (d, _) in enumerate(got) if d != "*" and (k == 0 or got[k - 1][0] != d)]
    if len(runs) > len(set(runs)):
        return ("finish one device — exact dtype, (dev, '*'), the wider dtypes — before moving to the fallback "
                "device: computing bf16 in f32 on the npu beats leaving the npu")
    if any((d, "*") not in got for d in devices):
        return "each device has an any-dtype kernel slot: try (dev, '*') after the exact dtype"
    for d in devices:
        ours = [k for k in got if k[0] == d]
        theirs = [k for k in want if k[0] == d]
        if ours != theirs and sorted(ours) == sorted(theirs):
            if ours.index((d, "*")) < ours.index((d, want[0][1])):
                return "the exact dtype first: an exact kernel beats one that takes any dtype"
            return (f"(dev, '*') comes right after the exact dtype, before the wider dtypes: running the kernel "
                    f"that takes any dtype avoids a cast (device {d!r}: {theirs})")
    return rule


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


def _order_one_fallback_step(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: follows each fallback table one step only (npu→gpu, never on to cpu)."""
    devs = [device] + ([device_fallback[device]] if device in device_fallback else [])
    wider = [dtype_fallback[dtype]] if dtype in dtype_fallback else []
    order = []
    for d in devs:
        order += [(d, dtype), (d, "*")] + [(d, w) for w in wider]
    return order + [("*", "*")]


def _order_any_dtype_first(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: tries the device's any-dtype kernel before the exact one."""
    from aisys.framework.dispatch import dispatch_order
    order = dispatch_order(device, dtype, device_fallback=device_fallback, dtype_fallback=dtype_fallback)
    out = []
    for k in order:
        if k[1] == dtype and (k[0], "*") in order:
            out += [(k[0], "*"), k]
        elif k[1] != "*" or k == ("*", "*"):
            out.append(k)
    return out


def _order_skips_any_dtype(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: never tries a device's any-dtype kernel ("*")."""
    from aisys.framework.dispatch import dispatch_order
    return [k for k in dispatch_order(device, dtype, device_fallback=device_fallback, dtype_fallback=dtype_fallback)
            if k[1] != "*" or k[0] == "*"]


def _order_first_device_only(device, dtype, *, device_fallback, dtype_fallback):
    """Mistake: stops after the requested device (no device fallback), straight to the reference."""
    from aisys.framework.dispatch import _chain
    return [(device, dtype), (device, "*")] + [(device, w) for w in _chain(dtype, dtype_fallback)[1:]] + [("*", "*")]
