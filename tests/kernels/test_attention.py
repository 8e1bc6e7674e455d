"""The tiled attention kernel (online softmax) against naive attention and PyTorch: shapes, masks, head
groupings, the bytes it moves, and its errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aisys import kernels
from aisys.kernels.attention import BLOCK_Q, attention, attention_naive, paged_attention, tiled_attention_reference


def _qkv(rng, B, H, Hkv, L, S, d, scale=1.0):
    q = (rng.standard_normal((B, H, L, d)) * scale).astype(np.float32)
    k = (rng.standard_normal((B, Hkv, S, d)) * scale).astype(np.float32)
    v = rng.standard_normal((B, Hkv, S, d)).astype(np.float32)
    return q, k, v


def _reference(q, k, v, causal):
    """float64 softmax attention with kv heads repeated; causal aligned bottom-right; empty rows -> 0."""
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, 1).astype(np.float64), np.repeat(v, group, 1).astype(np.float64)
    s = q.astype(np.float64) @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    L, S = s.shape[-2:]
    allowed = np.tril(np.ones((L, S), bool), S - L) if causal else np.ones((L, S), bool)
    s = np.where(allowed, s, -np.inf)
    top = np.max(s, -1, keepdims=True)
    p = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    den = p.sum(-1, keepdims=True)
    return (p / np.where(den > 0, den, 1.0)) @ v


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 2), kv_heads=st.integers(1, 3), group=st.sampled_from([1, 2, 4]),
       L=st.integers(1, 90), S=st.integers(1, 90), d=st.integers(1, 40), causal=st.booleans(),
       block_k=st.sampled_from([1, 5, 16, 64]), seed=st.integers(0, 2 ** 16))
def test_kernel_equals_naive_attention(B, kv_heads, group, L, S, d, causal, block_k, seed):
    """Both kernels (rows for L < 16, tiled above), every head grouping (MHA, GQA, MQA), masks aligned to the
    last key, key tiles that do not divide S, head dims that are not multiples of 4."""
    q, k, v = _qkv(np.random.default_rng(seed), B, kv_heads * group, kv_heads, L, S, d)
    want = _reference(q, k, v, causal)
    np.testing.assert_allclose(attention(q, k, v, causal, block_k=block_k), want, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(attention_naive(q, k, v, causal), want, rtol=2e-5, atol=2e-5)


def test_matches_torch_sdpa_and_survives_large_scores():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for L, causal in ((100, True), (100, False), (7, False)):
        q, k, v = _qkv(rng, 2, 6, 2, L, L, 32, scale=3.0)
        tq, tk, tv = (torch.from_numpy(np.repeat(x, 3, 1) if x is not q else x) for x in (q, k, v))
        want = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).numpy()
        np.testing.assert_allclose(attention(q, k, v, causal), want, rtol=1e-4, atol=1e-4)
    q, k, v = _qkv(rng, 1, 2, 2, 70, 70, 16, scale=60.0)        # scores in the thousands: no overflow, no NaN
    out = attention(q, k, v, causal=True)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, _reference(q, k, v, True), rtol=1e-3, atol=1e-3)


def test_queries_that_see_no_key_get_zeros():
    q, k, v = _qkv(np.random.default_rng(1), 1, 2, 2, 40, 10, 8)   # 40 new queries after... only 10 keys
    out = attention(q, k, v, causal=True)
    np.testing.assert_array_equal(out[:, :, :30], 0.0)
    np.testing.assert_allclose(out, _reference(q, k, v, True), rtol=2e-5, atol=2e-5)


def test_bytes_moved_are_counted_by_the_kernel_and_beat_naive():
    """Tiled: Q read once, K and V once per query tile (only up to the diagonal when causal), O written once.
    Naive additionally writes and reads the L x S scores and probabilities (FlashAttention's Algorithm 0)."""
    B, H, L, S, d = 2, 4, 200, 200, 16
    q, k, v = _qkv(np.random.default_rng(2), B, H, H, L, S, d)
    tiles = [(i0, min(BLOCK_Q, L - i0)) for i0 in range(0, L, BLOCK_Q)]
    for causal in (False, True):
        _, tiled = attention(q, k, v, causal, return_stats=True)
        keys = sum(min(S, i0 + br) if causal else S for i0, br in tiles)   # keys loaded per head
        assert tiled.bytes_read == 4 * B * H * d * (L + 2 * keys)
        assert tiled.bytes_written == 4 * B * H * L * d
        _, naive = attention_naive(q, k, v, causal, return_stats=True)
        assert naive.bytes_moved == 4 * B * H * (2 * L * d + 2 * S * d + 4 * L * S)
        assert tiled.bytes_moved < naive.bytes_moved / 3
    _, full = attention(q, k, v, False, return_stats=True)
    _, half = attention(q, k, v, True, return_stats=True)
    assert half.flops < 0.7 * full.flops                  # tiles above the diagonal are skipped


def test_readable_numpy_reference_is_the_same_recurrence():
    rng = np.random.default_rng(3)
    for L, S, block, causal in ((5, 9, 2, True), (33, 33, 7, True), (20, 50, 16, False), (1, 40, 64, True)):
        q, k, v = _qkv(rng, 1, 1, 1, L, S, 6)
        got = tiled_attention_reference(q[0, 0], k[0, 0], v[0, 0], causal, block)
        np.testing.assert_allclose(got, _reference(q, k, v, causal)[0, 0], rtol=1e-10, atol=1e-12)


def test_bad_inputs_say_what_is_wrong():
    q, k, v = _qkv(np.random.default_rng(4), 1, 4, 2, 8, 8, 4)
    with pytest.raises(ValueError, match="4-D"):
        attention(q[0], k, v)
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        attention(q[:, :3], k, v)
    with pytest.raises(ValueError, match="same shape"):
        attention(q, k, v[:, :, :5])
    with pytest.raises(ValueError, match="share batch and head_dim"):
        attention(q, k[..., :3], v[..., :3])
    with pytest.raises(TypeError, match="floats"):
        attention(q.astype(np.int32), k, v)
    with pytest.raises(TypeError, match="numpy array"):
        attention(q.tolist(), k, v)
    with pytest.raises(ValueError, match="block_k"):
        attention(q, k, v, block_k=0)
    with pytest.raises(ValueError, match="scale"):
        attention(q, k, v, scale=float("nan"))


def test_other_float_dtypes_and_tensors_are_accepted():
    import aisys
    q, k, v = _qkv(np.random.default_rng(5), 1, 2, 1, 20, 20, 8)
    want = attention(q, k, v)
    np.testing.assert_allclose(attention(q.astype(np.float64), k, v), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(attention(aisys.tensor(q), aisys.tensor(k), aisys.tensor(v)), want)
    assert want.dtype == np.float32
    assert kernels.attention is attention          # the package's public name is the kernel (module: aisys.kernels.attention)


@settings(max_examples=15, deadline=None)
@given(seqs=st.integers(1, 4), kv_heads=st.integers(1, 2), group=st.sampled_from([1, 3]), d=st.integers(1, 20),
       block_size=st.sampled_from([1, 4, 16]), seed=st.integers(0, 2 ** 16))
def test_paged_attention_reads_through_block_tables(seqs, kv_heads, group, d, block_size, seed):
    """Each sequence's keys are scattered over a shared pool in table order; the result equals attention of
    its last query over the gathered keys."""
    rng = np.random.default_rng(seed)
    H, nb = kv_heads * group, 40
    k_pool = rng.standard_normal((nb, kv_heads, block_size, d)).astype(np.float32)
    v_pool = rng.standard_normal((nb, kv_heads, block_size, d)).astype(np.float32)
    lengths = rng.integers(1, 5 * block_size + 1, seqs)
    width = int(-(-lengths.max() // block_size))
    tables = np.stack([rng.permutation(nb)[:width] for _ in range(seqs)])
    q = rng.standard_normal((seqs, H, d)).astype(np.float32)
    got = paged_attention(q, k_pool, v_pool, tables, lengths)
    for n in range(seqs):
        keys = k_pool[tables[n]].transpose(1, 0, 2, 3).reshape(kv_heads, -1, d)[None, :, :lengths[n]]
        vals = v_pool[tables[n]].transpose(1, 0, 2, 3).reshape(kv_heads, -1, d)[None, :, :lengths[n]]
        want = _reference(q[n][None, :, None], keys, vals, causal=True)[0, :, 0]
        np.testing.assert_allclose(got[n], want, rtol=2e-5, atol=2e-5)


def test_paged_attention_errors():
    pool = np.zeros((4, 2, 8, 4), np.float32)
    q = np.zeros((2, 4, 4), np.float32)
    tables, lengths = np.zeros((2, 2), np.int64), np.array([3, 9])
    with pytest.raises(ValueError, match="lengths must be in"):
        paged_attention(q, pool, pool, tables, np.array([0, 3]))
    with pytest.raises(ValueError, match="block ids"):
        paged_attention(q, pool, pool, np.array([[9, 0], [1, 2]]), lengths)
    with pytest.raises(ValueError, match="multiple"):
        paged_attention(q[:, :3], pool, pool, tables, lengths)
    with pytest.raises(TypeError, match="3-D float"):
        paged_attention(q[0], pool, pool, tables, lengths)
