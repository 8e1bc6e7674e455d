"""aisys.kernels.cuda under numba's CUDA simulator: the kernels equal numpy, the traffic counter equals counts
derived by hand, bank conflicts for a 32-bank model, the thread-hierarchy record, clear launch errors.
Sizes stay small: the simulator runs one Python thread per CUDA thread."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")
from aisys.kernels import cuda  # noqa: E402
from aisys.kernels import conv2d_reference  # noqa: E402

needs_sim = pytest.mark.skipif(not cuda.SIMULATOR, reason="the traffic counter watches the simulator")
RNG = np.random.default_rng(0)


def test_kernels_equal_numpy():
    a, b = RNG.standard_normal(100).astype(np.float32), RNG.standard_normal(100).astype(np.float32)
    np.testing.assert_array_equal(cuda.vector_add(a, b, block=32), a + b)
    x = RNG.standard_normal(150).astype(np.float32)
    assert cuda.reduce_sum(x, block=16) == pytest.approx(float(x.sum(dtype=np.float64)), rel=1e-5)
    A, B = RNG.standard_normal((6, 10)).astype(np.float32), RNG.standard_normal((10, 5)).astype(np.float32)
    np.testing.assert_allclose(cuda.matmul(A, B, block=4), A @ B, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cuda.matmul(A, B, tile=4), A @ B, rtol=1e-5, atol=1e-5)   # ragged edges
    X = RNG.standard_normal((3, 21)).astype(np.float32)
    e = np.exp(X - X.max(1, keepdims=True))
    np.testing.assert_allclose(cuda.softmax_rows(X, block=8), e / e.sum(1, keepdims=True), rtol=1e-5)
    xx, ww = RNG.standard_normal((1, 2, 5, 6)).astype(np.float32), RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(cuda.conv2d(xx, ww, padding=1, block=(4, 4)), conv2d_reference(xx, ww, padding=1),
                               rtol=1e-5, atol=1e-5)


@needs_sim
@pytest.mark.parametrize("M,K,N,T", [(8, 8, 8, 4), (4, 12, 8, 2)])
def test_traffic_of_the_naive_and_tiled_matmul_by_hand(M, K, N, T):
    """Naive: each of the M·N threads loads a row of A and a column of B, 2K values. Tiled with T×T tiles: each
    thread loads one A and one B value per phase, K/T phases, into shared memory, then reads T of each per
    phase: global loads fall by the tile factor T, shared loads are the naive kernel's global loads."""
    A, B = RNG.standard_normal((M, K)).astype(np.float32), RNG.standard_normal((K, N)).astype(np.float32)
    naive = cuda.profile(cuda.matmul, A, B, block=T)
    tiled = cuda.profile(cuda.matmul, A, B, tile=T)
    np.testing.assert_allclose(tiled.result, A @ B, rtol=1e-5, atol=1e-5)
    assert (naive.global_loads, naive.global_stores, naive.shared_loads) == (2 * M * N * K, M * N, 0)
    assert tiled.global_loads == 2 * M * N * K // T and tiled.global_stores == M * N
    assert tiled.shared_stores == 2 * M * N * K // T and tiled.shared_loads == 2 * M * N * K
    assert naive.global_loads / tiled.global_loads == T
    assert tiled.max_per_thread() == {"global_loads": 2 * K // T, "shared_stores": 2 * K // T,
                                      "shared_loads": 2 * K, "global_stores": 1}
    assert tiled.bank_conflicts == 0
    assert tiled.launches[0]["grid"] == (N // T, M // T, 1) and tiled.launches[0]["shared_bytes"] == 2 * T * T * 4


@needs_sim
def test_thread_hierarchy_record():
    A, B = np.ones((4, 6), np.float32), np.ones((6, 4), np.float32)
    rep = cuda.profile(cuda.matmul, A, B, tile=2)
    blk, tid = rep.owner_map("C")
    # grid (2, 2) of 2×2 blocks: C[i, j] is computed by block (j//2, i//2), thread (j%2, i%2)
    i, j = np.indices((4, 4))
    np.testing.assert_array_equal(blk, (j // 2) + 2 * (i // 2))
    np.testing.assert_array_equal(tid, (j % 2) + 2 * (i % 2))
    t = rep.touched((1, 0), (1, 1))                      # computes C[1, 3]
    assert ("C", (1, 3), "store") in t["global"]
    assert {idx for arr, idx, op in t["global"] if arr == "A"} == {(1, 1), (1, 3), (1, 5)}
    assert {arr for arr, _, _ in t["shared"]} == {"shared sA", "shared sB"}


NC = cuda.numba_cuda       # a module global: the simulator swaps it for its fake cuda module inside kernels


@NC.jit
def strided(out, stride):
    s = NC.shared.array(1024, np.float32)
    t = NC.threadIdx.x
    s[t * stride] = t
    NC.syncthreads()
    out[t] = s[t * stride]


@needs_sim
@pytest.mark.parametrize("stride,extra", [(1, 0), (2, 1), (4, 3), (32, 31), (0, 0)])
def test_bank_conflicts_in_a_32_bank_model(stride, extra):
    """One warp stores s[lane·stride]: stride 2 puts two distinct words in each used bank (2-way: 1 extra
    transaction), stride 32 puts all 32 in bank 0 (31 extra); stride 0 is one word, broadcast (none)."""
    def host():
        out = cuda.to_device(np.zeros(32, np.float32), "out")
        cuda.launch(strided, 1, 32, out, stride, shared_bytes=4096)
        return out.copy_to_host()

    rep = cuda.profile(host)
    assert rep.shared_stores == 32 and rep.shared_loads == 32
    assert rep.bank_conflicts == 2 * extra                # the store and the load conflict alike


def test_launch_errors_are_clear():
    with pytest.raises(cuda.LaunchError, match="2048 threads.*at most 1024"):
        cuda.check_launch(1, (64, 32), device="A100")
    with pytest.raises(cuda.LaunchError, match="block.z=128 exceeds"):
        cuda.check_launch(1, (1, 1, 128))
    with pytest.raises(cuda.LaunchError, match="shared memory.*smaller tile"):
        cuda.check_launch(1, (32, 32), shared_bytes=64 * 1024)
    with pytest.raises(cuda.LaunchError, match="≥ 1"):
        cuda.check_launch((0, 1), 32)
    with pytest.raises(cuda.LaunchError, match="tuple of 1 to 3 ints"):
        cuda.check_launch(1, (2, 2, 2, 2))
    assert cuda.check_launch((3, 2), 128) == ((3, 2, 1), (128, 1, 1))
    with pytest.raises(cuda.LaunchError, match="4096 threads"):
        cuda.matmul(np.ones((2, 2)), np.ones((2, 2)), tile=64)
    with pytest.raises(ValueError, match="inner dimensions"):
        cuda.matmul(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="power of two"):
        cuda.reduce_sum(np.ones(4), block=12)
