"""aisys.compiler.loops: tensor expressions, schedules, the loop IR's interpreter and numba build, the
cache simulator (closed forms and the course's loop-tiling erratum), machine-code inspection, the tuner."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aisys.compiler import loops
from aisys.framework import registry
import aisys.framework.ops  # noqa: F401


def _mm(M, N, K):
    return loops.gemm_compute(M, N, K)


def _data(M, N, K, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((M, K)).astype(np.float32), r.standard_normal((K, N)).astype(np.float32)


# ---- tensor expressions -----------------------------------------------------------------------------------
def test_matmul_unscheduled_interprets_to_numpy():
    a, b = _data(5, 7, 3)
    C = _mm(5, 7, 3)
    np.testing.assert_allclose(loops.interpret(loops.Schedule(C), a, b), a @ b, rtol=1e-5, atol=1e-5)
    text = str(loops.lower(loops.Schedule(C)))
    assert "for i in range(5):" in text and "A[i, k] * B[k, j]" in text


ELEMENTWISE = [n for n, d in registry.OPS.items() if d.scalar is not None and n not in ("where", "broadcast_to")]


@pytest.mark.parametrize("op", ELEMENTWISE)
def test_elementwise_rules_come_from_the_registry(op):
    """Each registry elementwise/broadcast op's compute equals the op's numpy reference."""
    d = registry.OPS[op]
    n_in = 2 if d.fusion.value == "broadcast" else 1
    r = np.random.default_rng(1)
    xs = [(r.standard_normal((3, 4)) + (2.0 if op in ("log", "sqrt", "pow") else 0)).astype(np.float32)
          for _ in range(n_in)]
    if n_in == 2:
        xs[1] = xs[1][:1]               # broadcast a (1, 4) operand
    attrs = {"dtype": "float64"} if op == "cast" else {}
    ts = [loops.placeholder(x.shape, "float32", name=f"X{i}") for i, x in enumerate(xs)]
    Y = loops.elementwise(op, *ts, **attrs)
    got = loops.interpret(loops.Schedule(Y), *xs)
    want = d.ref(*xs, **({"dtype": registry.OPS["cast"] and __import__("aisys").framework.dtypes.float64}
                         if op == "cast" else {}))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("op,dim,keepdim", [("sum", 1, False), ("mean", 0, True), ("max", 1, True), ("min", 0, False)])
def test_reduce_rules_come_from_the_registry(op, dim, keepdim):
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    X = loops.placeholder(x.shape, name="X")
    Y = loops.reduce_op(op, X, dim=dim, keepdim=keepdim)
    got = loops.interpret(loops.Schedule(Y), x)
    np.testing.assert_allclose(got, registry.OPS[op].ref(x, dim=dim, keepdim=keepdim), rtol=1e-5, atol=1e-6)


def test_conv2d_rule_matches_the_registry_reference():
    r = np.random.default_rng(3)
    x = r.standard_normal((1, 2, 5, 6)).astype(np.float32)
    w = r.standard_normal((3, 2, 3, 2)).astype(np.float32)
    X, W = loops.placeholder(x.shape, name="X"), loops.placeholder(w.shape, name="W")
    Y = loops.conv2d(X, W, stride=(2, 1), padding=1)
    want = registry.OPS["conv2d"].ref(x, w, None, stride=(2, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    np.testing.assert_allclose(loops.interpret(loops.Schedule(Y), x, w), want, rtol=1e-4, atol=1e-5)


def test_expression_errors_are_specific():
    A = loops.placeholder((3, 4), name="A")
    with pytest.raises(loops.LoopsError, match="has 2 dimension"):
        A[1]
    k = loops.reduce_axis(4, "k")
    with pytest.raises(loops.LoopsError, match="used outside a reduction"):
        loops.compute((3,), lambda i: A[i, k])
    with pytest.raises(loops.LoopsError, match="takes 1 argument"):
        loops.compute((3, 4), lambda i: A[i, 0])
    with pytest.raises(loops.LoopsError, match="no scalar expression"):
        loops.apply("sum", A[0, 0])


# ---- schedules ------------------------------------------------------------------------------------------
def _schedule(steps, M=7, N=10, K=6):
    s = loops.Schedule(_mm(M, N, K))
    for fn in steps:
        fn(s)
    return s


@settings(max_examples=25)
@given(fi=st.integers(1, 8), fj=st.integers(1, 11), fk=st.integers(1, 7), order=st.permutations(range(6)),
       vec=st.booleans(), fuse=st.booleans())
def test_split_reorder_fuse_vectorize_keep_the_result(fi, fj, fk, order, vec, fuse):
    a, b = _data(7, 10, 6)
    s = loops.Schedule(_mm(7, 10, 6))
    io, ii = s.split("i", fi)
    jo, ji = s.split("j", fj)
    ko, ki = s.split("k", fk)
    loops_ = [io, ii, jo, ji, ko, ki]
    s.reorder(*[loops_[p] for p in order])
    if fuse and s.output.leaves[0] is io and s.output.leaves[1] is jo:
        s.fuse(io, jo)
    last = s.output.leaves[-1]
    if vec and not s.output.is_reduce(last) and last.extent <= 64:
        s.vectorize(last)
    np.testing.assert_allclose(loops.interpret(s, a, b), a @ b, rtol=1e-4, atol=1e-4)


def test_every_primitive_in_numba_matches_the_interpreter():
    a, b = _data(13, 20, 9)
    cases = {
        "split+unroll": lambda s: s.unroll(s.split("k", 4)[1]),
        "tile non-dividing": lambda s: s.tile("i", "j", 5, 6),
        "fuse+parallel": lambda s: s.parallel(s.fuse("i", "j")),
        "tuned": None,
    }
    for name, fn in cases.items():
        s = loops.gemm(13, 20, 9, "tuned", mr=3, nr=8) if fn is None else _schedule([fn], 13, 20, 9)
        spec = loops.interpret(s, a, b)
        np.testing.assert_allclose(spec, a @ b, rtol=1e-4, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(loops.build(s)(a, b), spec, rtol=1e-5, atol=1e-5, err_msg=name)


def test_compute_inline_and_compute_at():
    x = np.random.default_rng(4).standard_normal((6, 8)).astype(np.float32)
    X = loops.placeholder((6, 8), name="X")
    Y = loops.compute((6, 8), lambda i, j: X[i, j] * 2.0, name="Y")
    Z = loops.compute((6, 8), lambda i, j: loops.apply("relu", Y[i, j]) + 1.0, name="Z")
    want = np.maximum(x * 2, 0) + 1
    s = loops.Schedule(Z)
    s.compute_inline(Y)
    assert "Y" not in str(loops.lower(s)).split(":", 1)[1]
    np.testing.assert_allclose(loops.interpret(s, x), want, rtol=1e-6)
    s = loops.Schedule(Z)
    io, ii = s.split("i", 4)
    s.compute_at(Y, Z, io)
    text = str(loops.lower(s))
    assert "Y = allocate((4, 8,)" in text
    np.testing.assert_allclose(loops.interpret(s, x), want, rtol=1e-6)
    np.testing.assert_allclose(loops.build(s)(x), want, rtol=1e-6)


def test_cache_read_and_cache_write_pack_and_block():
    s = loops.gemm(24, 64, 16, "tuned", mr=6, nr=32)
    text = str(loops.lower(s))
    assert "B_local = allocate((16, 32,)" in text and "C_local = allocate((6, 32,)" in text
    a, b = _data(24, 64, 16)
    np.testing.assert_allclose(loops.interpret(s, a, b), a @ b, rtol=1e-4, atol=1e-4)


def test_steps_replay():
    s = loops.gemm(16, 16, 16, "tuned", mr=4, nr=8)
    r = loops.Schedule(s.outputs, steps=s.steps)
    assert str(loops.lower(r)) == str(loops.lower(s))
    assert [str(x) for x in s.steps][0] == "cache_write(C, name=C_local)"


ILLEGAL = [   # (name, legal steps first, the illegal step, words its error must say)
    ("split factor ≤ 0", None, lambda s: s.split("i", 0), "must be an integer ≥ 1"),
    ("split a gone axis", lambda s: s.split("i", 2), lambda s: s.split("i", 2), "no longer exists"),
    ("vectorize a reduction", lambda s: s.reorder("i", "j", "k"), lambda s: s.vectorize("k"), "loop-carried dependence"),
    ("vectorize not innermost", None, lambda s: s.vectorize("i"), "not the innermost"),
    ("reorder a vector loop out", lambda s: (s.reorder("i", "k", "j"), s.vectorize("j")),
     lambda s: s.reorder("j", "k"), "no longer be innermost"),
    ("parallel reduction", None, lambda s: s.parallel("k"), "race"),
    ("fuse non-adjacent", None, lambda s: s.fuse("i", "k"), "directly inside"),
    ("fuse spatial with reduction", None, lambda s: s.fuse("j", "k"), "reduction loop with a spatial"),
    ("unroll too long", None, lambda s: s.unroll("i"), "split it and unroll"),
    ("cache_write after split", lambda s: s.split("i", 2), lambda s: s.cache_write("C"), "before splitting"),
    ("inline the output", None, lambda s: s.compute_inline("C"), "output"),
    ("unknown loop", None, lambda s: s.split("q", 2), "no loop named"),
    ("tile with a zero", None, lambda s: s.tile("i", "j", 4, 0), "tile sizes"),
]


@pytest.mark.parametrize("name,setup,bad,words", ILLEGAL, ids=[x[0] for x in ILLEGAL])
def test_illegal_steps_raise_and_leave_the_schedule_unchanged(name, setup, bad, words):
    s = loops.Schedule(_mm(70, 9, 8))
    if setup:
        setup(s)
    before = str(loops.lower(s)), list(s.steps), [st._state()[3] for st in s.stages]
    with pytest.raises(loops.ScheduleError, match=words):
        bad(s)
    assert (str(loops.lower(s)), list(s.steps), [st._state()[3] for st in s.stages]) == before
    assert str(loops.lower(s)) == str(loops.lower(loops.Schedule(s.outputs, steps=s.steps)))


def test_compute_at_errors():
    X = loops.placeholder((6, 8), name="X")
    Y = loops.compute((6, 8), lambda i, j: X[i, j] * 2.0, name="Y")
    Z = loops.compute((6, 8), lambda i, j: Y[i, j] + 1.0, name="Z")
    W = loops.compute((6, 8), lambda i, j: Y[i, j] + Z[i, j], name="W")
    s = loops.Schedule(W)
    with pytest.raises(loops.ScheduleError, match="also read by W"):
        s.compute_at(Y, Z, "i")
    assert s.steps == [] and s["Y"].attach is None


# ---- machine code -----------------------------------------------------------------------------------------
def test_vectorize_shows_in_the_machine_code_and_naive_stays_scalar():
    naive = loops.build(loops.gemm(64, 64, 64, "naive")).loop_asm()
    tuned = loops.build(loops.gemm(32, 32, 32, "tuned", mr=4, nr=16))
    code = tuned.loop_asm()
    assert naive.n_vector == 0 and naive.n_scalar_math > 0
    assert code.n_vector > 0 and code.widths() & {"ymm", "zmm"}
    assert any("vfmadd" in x and v for x, v in zip(code.lines, code.vector))
    llvm = tuned.loop_llvm()
    assert llvm.n_vector > 0
    assert tuned.path.endswith(".py") and "def kernel(A, B, C)" in tuned.source


# ---- cache simulator ----------------------------------------------------------------------------------------
def test_numpy_and_numba_traces_are_the_same_stream():
    """Two independent ways to enumerate a nest's accesses: compiled trace mode and index arrays."""
    s = loops.Schedule(_mm(13, 20, 9))
    s.tile("i", "j", 5, 6)
    s.fuse("io", "jo")
    for sched in (s, loops.gemm(13, 20, 9, "tuned", mr=3, nr=8), loops.gemm(13, 20, 9, "blocked", tile=(4, 8))):
        a, b = loops.trace_addresses(sched, method="numba"), loops.trace_addresses(sched, method="numpy")
        assert len(a) > 0 and a.names == b.names
        np.testing.assert_array_equal(a.addresses, b.addresses)
        np.testing.assert_array_equal(a.array_ids, b.array_ids)


def test_stream_misses_once_per_line():
    n = 4096
    X = loops.placeholder((n,), name="X")
    s = loops.Schedule(loops.compute((n,), lambda i: X[i] + 1.0, name="Y"))
    rep = loops.CacheSim([dict(size=32768, ways=8, line=64)]).run(loops.trace_addresses(s))
    assert rep.misses(0, "X") == n // 16 and rep.misses(0, "Y") == n // 16
    assert rep.levels[0].accesses == 2 * n


def test_strided_and_reused_closed_forms():
    sim = loops.CacheSim([dict(size=4096, ways=4, line=64)])
    strided = np.arange(1000, dtype=np.int64) * 64            # one access per line: every one misses
    assert sim.run(strided).levels[0].misses == 1000
    fits = np.tile(np.arange(0, 2048, 4, dtype=np.int64), 5)   # 2 KiB read 5 times in a 4 KiB cache
    assert sim.run(fits).levels[0].misses == 2048 // 64
    conflict = np.tile(np.arange(5, dtype=np.int64) * 1024, 10)  # 5 lines in one 4-way set: LRU thrashes
    assert sim.run(conflict).levels[0].misses == 50
    two = loops.CacheSim([dict(size=1024, ways=2, line=64), dict(size=8192, ways=8, line=64)])
    rep = two.run(np.tile(np.arange(0, 4096, 64, dtype=np.int64), 3))  # fits L2, not L1
    assert (rep.levels[0].misses, rep.levels[1].misses) == (192, 64)


def test_loop_tiling_erratum_04LoopOpt():
    """CURRICULUM.md erratum: 04LoopOpt.md says B's misses stay m/b after tiling both loops of
    A[i] += B[j]; an LRU simulation gives n·m/(W·b) — 2048, not 512, for n=256, m=4096, W=64, T=256, b=8."""
    n, m, W, T, b = 256, 4096, 64, 256, 8
    s = loops.lecture_tiling(n, m, W, T)
    assert [v.name for v in s.output.leaves] == ["io", "jo", "ii", "ji"] and "A[i] = A[i] + B[j]" in str(loops.lower(s))
    cache = loops.CacheSim([dict(size=64 * 4 * b, ways=64, line=4 * b)])   # fully associative, holds both tiles
    rep = cache.run(loops.trace_addresses(s))
    assert rep.misses(0, "B") == n * m // (W * b) == 2048
    assert rep.misses(0, "B") != m // b


def test_cachesim_errors():
    with pytest.raises(loops.LoopsError, match="power-of-two"):
        loops.CacheSim([dict(size=4096, ways=4, line=48)])
    with pytest.raises(loops.LoopsError, match="unknown preset"):
        loops.CacheSim.preset("pentium")
    with pytest.raises(loops.LoopsError, match="non-negative"):
        loops.CacheSim.preset("zen4").run(np.array([-8]))


def test_against_pycachesim_where_installed():
    """pycachesim (RRZE-HPC's cache simulator, optional): the same misses per level on a random stream and on a
    tiled GEMM's address stream, through a two-level LRU hierarchy."""
    pcs = pytest.importorskip("cachesim")
    random = np.random.default_rng(0).integers(0, 1 << 16, 20000) * 4
    gemm = loops.trace_addresses(loops.gemm(32, 32, 32, "blocked", tile=(8, 16))).addresses[:30000]
    for addrs in (random, gemm):
        mem = pcs.MainMemory()
        l2 = pcs.Cache("L2", 32, 8, 64, "LRU")
        mem.load_to(l2)
        mem.store_from(l2)
        l1 = pcs.Cache("L1", 8, 4, 64, "LRU", store_to=l2, load_from=l2)
        h = pcs.CacheSimulator(l1, mem)
        for a in addrs:
            h.load(int(a), length=4)
        ours = loops.CacheSim([dict(size=8 * 4 * 64, ways=4, line=64), dict(size=32 * 8 * 64, ways=8, line=64)]).run(addrs)
        assert (ours.levels[0].misses, ours.levels[1].misses) == (l1.MISS_count, l2.MISS_count)


def test_tiled_matmul_cuts_l1_misses():
    sim = loops.CacheSim([dict(size=4096, ways=8, line=64)])
    naive = sim.run(loops.trace_addresses(loops.gemm(64, 64, 64, "naive"))).misses(0)
    blocked = sim.run(loops.trace_addresses(loops.gemm(64, 64, 64, "blocked", tile=(16, 32)))).misses(0)
    assert blocked * 4 <= naive


# ---- tuner ------------------------------------------------------------------------------------------------
def test_annealing_tuner_beats_the_default_on_simulated_cycles():
    def template(ti, tj):
        s = loops.Schedule(_mm(64, 64, 64))
        io, jo, ii, ji = s.tile("i", "j", ti, tj)
        s.reorder(io, jo, ii, "k", ji)
        return s
    sim = loops.CacheSim([dict(size=4096, ways=4, line=64, latency=4)], memory_latency=100)
    t = loops.Tuner(template, dict(ti=[1, 2, 4, 8, 16, 32, 64], tj=[1, 2, 4, 8, 16, 32, 64]),
                    loops.simulated_cost(sim), seed=0)
    log = t.anneal(12, start=dict(ti=64, tj=1))
    assert log.best.cost * 2 < log.trials[0].cost
    assert log.curve() == sorted(log.curve(), reverse=True) and len(log.trials) == 12


def test_a_long_search_shows_progress_and_an_interrupted_one_keeps_its_trials(capsys, monkeypatch):
    """A search of 20+ trials draws a progress bar with the best cost so far; Ctrl-C keeps what was measured."""
    monkeypatch.delenv("AISYS_PROGRESS", raising=False)
    calls = []

    def measure(knobs):
        calls.append(knobs)
        if len(calls) == 25:
            raise KeyboardInterrupt
        return float(knobs["a"] * knobs["b"]), 0

    t = loops.Tuner(lambda **k: k, dict(a=list(range(1, 40)), b=list(range(1, 40))), measure, seed=1)
    with pytest.raises(KeyboardInterrupt):
        t.random(60)
    out = capsys.readouterr().out
    assert "tuning cycles: random search [" in out and "/60" in out and "best" in out
    assert 24 <= len(t.log.trials) < 60 and out.endswith("\n")  # the trials before the interrupt; the bar closed
    t2 = loops.Tuner(lambda **k: k, dict(a=[1, 2]), lambda kn: (1.0, 0), seed=0)
    t2.random(5)
    assert capsys.readouterr().out == ""                          # short searches stay quiet


def test_import_loops_does_not_import_numba():
    code = "import sys; from aisys.compiler import loops; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
