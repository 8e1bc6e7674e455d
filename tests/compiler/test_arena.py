"""Compiled code runs from its planned arena (issue 13): one arena per compiled function, reused by every
call and grown for a larger specialization; kernels write into their planned slots; what a call returned
is never overwritten by a later call unless the caller asked for views; and the three runners — the
interpreter, the arena executor and compiled code — agree on graphs of 1,000+ ops."""
import numpy as np
import pytest

import aisys
from aisys.compiler import PassManager, default_pipeline
from aisys.compiler.memory import ArenaExecutor
from aisys.compiler.memory.workloads import sgd_mlp_step, sgd_training_graph
from aisys.compiler.runtime import Arena, Executable, runtime_plan
from aisys.compiler.testing import assert_same_outputs, random_graph, random_inputs
from aisys.framework.graph import interpret
from aisys.framework.interpreter import Interpreter


def _chain(x, w, b):
    return (x * w + b).relu() * 0.5


def _want(x, w, b):
    return np.maximum(x * w + b, 0) * np.float32(0.5)


def _args(rows, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((rows, 8)).astype(np.float32) for _ in range(3)]


def test_one_arena_is_allocated_once_and_reused_by_every_call():
    cf = aisys.compile(_chain, *map(aisys.tensor, _args(4)))
    arena = cf.arena
    assert arena.allocations == 1 and arena.nbytes >= cf.memory_plan.peak_bytes
    buf = arena.buffer
    for seed in range(3):
        xs = _args(4, seed)
        np.testing.assert_allclose(cf(*xs).numpy(), _want(*xs), rtol=1e-6)
    assert arena.allocations == 1 and arena.buffer is buf
    fused = next(n.id for n in cf.graph.op_nodes if n.op == "fused")
    assert np.shares_memory(cf.executable.slot(fused), arena.buffer)        # the kernel's output lives there


def test_new_input_shapes_re_specialize_and_grow_the_same_arena():
    cf = aisys.compile(_chain, *map(aisys.tensor, _args(4)))
    arena, small = cf.arena, cf.arena.nbytes
    big = _args(64, 1)
    np.testing.assert_allclose(cf(*big).numpy(), _want(*big), rtol=1e-6)
    assert cf.arena is arena and arena.allocations == 2 and arena.nbytes > small
    assert tuple(cf.graph.nodes[cf.graph.inputs[0]].shape) == (64, 8)
    again = _args(4, 2)
    np.testing.assert_allclose(cf(*again).numpy(), _want(*again), rtol=1e-6)    # back: no new trace, no growth
    assert arena.allocations == 2 and len(cf._specializations) == 2
    np.testing.assert_allclose(cf(*big).numpy(), _want(*big), rtol=1e-6)          # rebinds after the growth


def test_returned_outputs_are_never_overwritten_by_a_later_call():
    x1, x2 = _args(4, 0), _args(4, 1)
    cf = aisys.compile(_chain, *map(aisys.tensor, x1))
    y1 = cf(*x1).numpy()
    keep = y1.copy()
    cf(*x2)
    np.testing.assert_array_equal(y1, keep)
    assert not np.shares_memory(y1, cf.arena.buffer)
    (r1,) = cf.run_arrays(*x1)
    cf.run_arrays(*x2)
    np.testing.assert_array_equal(r1, keep)


# Ways a caller can hold on to a result r (an array from run_arrays): (holder, holder -> array, expected values
# from the full result). Each holder references r's memory without being r itself, or is r under another name.
HOLDERS = {
    "the array": (lambda r: r, lambda h: h, lambda w: w),
    "a view": (lambda r: r.view(), lambda h: h, lambda w: w),
    "a view of a view": (lambda r: r.view()[1:].T[::2], lambda h: h, lambda w: w[1:].T[::2]),
    "a slice": (lambda r: r[1:3, 2:], lambda h: h, lambda w: w[1:3, 2:]),
    "np.asarray": (lambda r: np.asarray(r), lambda h: h, lambda w: w),
    "a reshape": (lambda r: r.reshape(-1), lambda h: h, lambda w: w.reshape(-1)),
    "a memoryview": (lambda r: memoryview(r), np.asarray, lambda w: w),
    "an aisys tensor": (lambda r: aisys.from_numpy(r), lambda h: h.numpy(), lambda w: w),
    "a slice of a tensor": (lambda r: aisys.from_numpy(r)[2:], lambda h: h.numpy(), lambda w: w[2:]),
    "a list of results": (lambda r: [r], lambda h: h[0], lambda w: w),
}


@pytest.mark.parametrize("hold", HOLDERS)
def test_a_result_held_in_any_form_is_never_overwritten(hold):
    """The kernel writes results into buffers the caller owns; a buffer is reused only when nothing holds it
    (its reference count), so whatever form the caller keeps a result in, later calls leave it alone."""
    make, read, part = HOLDERS[hold]
    x1 = _args(4, 0)
    cf = aisys.compile(_chain, *map(aisys.tensor, x1))
    held = make(cf.run_arrays(*x1)[0])                  # the result itself is dropped: only the holder remains
    for seed in range(1, 6):                            # more calls than buffers kept per output
        xs = _args(4, seed)
        np.testing.assert_allclose(cf.run_arrays(*xs)[0], _want(*xs), rtol=1e-6)
        t = cf(*xs)                                     # the Tensor path too, dropped at once
        np.testing.assert_allclose(t.numpy(), _want(*xs), rtol=1e-6)
    np.testing.assert_allclose(read(held), part(_want(*x1)), rtol=1e-6)


def test_dropped_results_are_recycled_and_a_loop_alternates_two_buffers():
    """No allocation (no fresh pages) per call: a dropped result's buffer is reused, and ``y = f(x)`` — which holds
    the last result while the next is computed — alternates between two."""
    x1 = _args(4, 0)
    cf = aisys.compile(_chain, *map(aisys.tensor, x1))
    (bufs,) = cf.executable.out_buffers.values()
    for _ in range(4):
        cf.run_arrays(*x1)
    assert bufs.allocations == 1
    y, ptrs = None, []
    for seed in range(6):
        xs = _args(4, seed)
        y = cf(*xs)
        np.testing.assert_allclose(y.numpy(), _want(*xs), rtol=1e-6)
        ptrs.append(y.numpy().ctypes.data)
    assert bufs.allocations == 2 and ptrs[0::2] == [ptrs[0]] * 3 and ptrs[1::2] == [ptrs[1]] * 3 != ptrs[:1] * 3
    kept = [cf.run_arrays(*_args(4, s))[0] for s in range(5)]          # all held: fresh buffers, none reused
    for s, r in enumerate(kept):
        np.testing.assert_allclose(r, _want(*_args(4, s)), rtol=1e-6)
    assert len(bufs.entries) == 2                                      # and the pool does not grow with them


def test_views_and_kept_results_mix_in_one_executable():
    """A call with views=True writes the arena slot, not a buffer a caller may hold from a previous call."""
    x1, x2 = _args(4, 0), _args(4, 1)
    cf = aisys.compile(_chain, *map(aisys.tensor, x1))
    (r1,) = cf.executable.run(*x1)
    (v2,) = cf.executable.run(*x2, views=True)
    assert np.shares_memory(v2, cf.arena.buffer) and not np.shares_memory(r1, cf.arena.buffer)
    np.testing.assert_allclose(r1, _want(*x1), rtol=1e-6)
    np.testing.assert_allclose(v2, _want(*x2), rtol=1e-6)
    (r3,) = cf.executable.run(*x2)
    np.testing.assert_allclose(r1, _want(*x1), rtol=1e-6)
    np.testing.assert_allclose(r3, _want(*x2), rtol=1e-6)


def test_output_views_are_valid_until_the_next_call():
    x1, x2 = _args(4, 0), _args(4, 1)
    cf = aisys.compile(_chain, *map(aisys.tensor, x1), output_views=True)
    y1 = cf(*x1).numpy()
    assert np.shares_memory(y1, cf.arena.buffer)
    np.testing.assert_allclose(y1, _want(*x1), rtol=1e-6)
    cf(*x2)
    np.testing.assert_allclose(y1, _want(*x2), rtol=1e-6)          # overwritten, as documented


def test_a_compiled_training_step_updates_its_module_from_the_arena():
    eager, x, y, twin = sgd_mlp_step(layers=3, width=6, batch=4)
    step, _, _, model = sgd_mlp_step(layers=3, width=6, batch=4)        # same weights, a model of its own
    cf = aisys.compile(step, x, y, params=model)
    losses = [(float(cf(x, y).item()), float(eager(x, y).item())) for _ in range(3)]
    for a, b in losses:
        assert a == pytest.approx(b, rel=1e-5)
    assert losses[0][0] > losses[-1][0]
    for (k, p), q in zip(model.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
        assert not np.shares_memory(p.numpy(), cf.arena.buffer)


def test_views_share_their_sources_slot_and_keep_it_alive():
    g = aisys.trace(lambda x, w: (x @ w.T).T.relu() @ x, aisys.randn(4, 6), aisys.randn(5, 6))
    plan = runtime_plan(g)
    planned = {b.name: b for b in plan.buffers}
    permutes = [n for n in g.op_nodes if n.op == "permute"]
    assert len(permutes) == 2 and all(f"%{n.id}" not in planned for n in permutes)   # of w: none; of x @ wᵀ: shared
    (mm, relu) = [n for n in g.op_nodes if n.op in ("matmul", "relu")][:2]
    assert planned[f"%{mm.id}"].end >= plan.schedule.index(relu.id)                    # alive while its view is read
    xs = random_inputs(g, 0)
    np.testing.assert_array_equal(Executable(g, "reference").run(*xs)[0], interpret(g, *xs)[0])


def test_an_epilogue_runs_from_the_scratch_region_and_equals_the_kernel_run_in_place():
    """matmul into the scratch past the plan, the epilogue from it into the slot (not in place, where its loop is
    not vectorized): the same arithmetic as the kernel's own in-place call, bit for bit."""
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((80, 5), (64, 5), (64,)))   # 5,120 elements
    small = aisys.compile(lambda x, w, b: (x @ w.T + b).relu() * 2.0, *map(aisys.tensor, (x[:6], w, b)))
    assert not small.executable._split                   # under SPLIT_EPILOGUE_ELEMENTS: the kernel's own bind
    cf = aisys.compile(lambda x, w, b: (x @ w.T + b).relu() * 2.0, *map(aisys.tensor, (x, w, b)))
    ex = cf.executable
    ((nid, kern),) = [(i, k) for i, k in ex.kernels.items() if k.kind == "epilogue"]
    assert nid in ex._split and ex.arena.nbytes >= ex._scratch_at + 80 * 64 * 4 > ex.plan.peak_bytes
    (y,) = cf.run_arrays(x, w, b)
    walk = Interpreter(cf.graph)                       # every value, for the kernel's own call
    walk.run(x, w, b)
    np.testing.assert_array_equal(y, kern(*[walk.values[i] for i in cf.graph.nodes[nid].inputs]))
    np.testing.assert_allclose(y, np.maximum(x @ w.T + b, 0) * 2, rtol=1e-5)
    assert np.shares_memory(ex._scratch[nid], ex.arena.buffer)


def test_node_times_cover_every_step_and_leave_the_program_as_it_was():
    x1 = _args(4, 0)
    cf = aisys.compile(_chain, *map(aisys.tensor, x1))
    ex = cf.executable
    ex.run(*x1, views=True)
    program = list(ex._program)
    rows = ex.node_times(*x1, calls=3)
    assert {n.id for n, _ in rows[:-1]} == {n.id for n in ex.schedule()} and rows[-1][0] == "(outside the nodes)"
    assert all(t >= 0 for _, t in rows[:-1]) and ex._program == program
    np.testing.assert_allclose(cf.run_arrays(*x1)[0], _want(*x1), rtol=1e-6)


@pytest.fixture(scope="module")
def big_graphs():
    train = sgd_training_graph(64)
    rand = random_graph(7, max_ops=1200, max_dim=6)
    return [train, rand]


def test_interpreter_arena_executor_and_compiled_code_agree_on_1000_op_graphs(big_graphs):
    for g in big_graphs:
        log = PassManager(default_pipeline()).run(g)
        opt = log.graph
        xs = random_inputs(g, 3)
        want = interpret(opt, *xs)
        arena_outs = ArenaExecutor(opt).run(*xs)
        ref_outs = Executable(opt, "reference").run(*xs)
        for a, b, c in zip(want, arena_outs, ref_outs):         # the same numpy calls: the same bits
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
        assert_same_outputs(Executable(opt, "numba").run(*xs), want, rtol=1e-4, atol=1e-5)
        assert_same_outputs(want, interpret(g, *xs), rtol=1e-4, atol=1e-5)


def test_an_arena_only_grows_and_is_aligned():
    a = Arena(100)
    assert a.nbytes == 100 and a.buffer.ctypes.data % 64 == 0
    a.reserve(50)
    assert a.allocations == 1
    a.reserve(1000)
    assert a.allocations == 2 and a.generation == 2 and a.buffer.ctypes.data % 64 == 0
