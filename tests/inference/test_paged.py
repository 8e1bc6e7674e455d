"""Paged KV memory: block tables stay consistent through any sequence of operations, copy-on-write keeps a
shared prefix intact, running out changes nothing, and the waste accounting adds up."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aisys.framework.tensor import Tensor
from aisys.inference import KVSpec, OutOfBlocks, PagedKVCache

SPEC = KVSpec(n_layer=2, n_head=2, n_kv_head=1, head_dim=3)


def _write(cache, seq, n, rng):
    """Append n tokens of random keys/values to seq through the model-facing protocol; returns them."""
    cache.reserve(seq, n)
    cache.schedule([(seq, n)])
    pos = cache.begin(1, n)
    k = rng.standard_normal((1, 1, n, 3)).astype(np.float32)
    v = rng.standard_normal((1, 1, n, 3)).astype(np.float32)
    for layer in range(2):
        cache.attend(layer, Tensor(np.zeros((1, 2, n, 3), np.float32)), Tensor(k + layer), Tensor(v - layer))
    return pos, k[0, 0], v[0, 0]


def _stored(cache, seq, layer=0):
    table, n = cache.tables[seq], cache.lengths[seq]
    keys = cache.k[layer, table].transpose(1, 0, 2, 3).reshape(1, -1, 3)[0, :n]
    vals = cache.v[layer, table].transpose(1, 0, 2, 3).reshape(1, -1, 3)[0, :n]
    return keys, vals


ops = st.lists(st.tuples(st.sampled_from(["add", "grow", "fork", "free", "swap"]), st.integers(0, 5),
                         st.integers(1, 11)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(ops=ops, num_blocks=st.integers(1, 12), block_size=st.sampled_from([1, 4, 5]))
def test_block_tables_stay_consistent(ops, num_blocks, block_size):
    cache = PagedKVCache(SPEC, num_blocks, block_size)
    rng = np.random.default_rng(0)
    contents, swapped, forks = {}, {}, 0
    for op, a, n in ops:
        seqs = sorted(cache.tables)
        try:
            if op == "add" and a not in cache.tables and a not in swapped:
                cache.add(a)
                contents[a] = np.zeros((0, 3), np.float32)
            elif op == "grow" and seqs:
                s = seqs[a % len(seqs)]
                before = (dict(cache.tables), cache.free_blocks, cache.allocator.ref.copy())
                try:
                    _, k, _ = _write(cache, s, n, rng)
                    contents[s] = np.concatenate([contents[s], k])
                except OutOfBlocks:
                    assert cache.free_blocks == before[1] and np.array_equal(cache.allocator.ref, before[2])
            elif op == "fork" and seqs:
                forks += 1
                parent, child = seqs[a % len(seqs)], 100 + forks
                cache.fork(parent, child)
                contents[child] = contents[parent].copy()
            elif op == "free" and seqs:
                s = seqs[a % len(seqs)]
                cache.free(s)
                del contents[s]
            elif op == "swap" and seqs:
                s = seqs[a % len(seqs)]
                swapped[s] = cache.swap_out(s)
            elif op == "swap" and swapped:
                s = sorted(swapped)[0]
                try:
                    cache.swap_in(s, swapped[s])
                    del swapped[s]
                except OutOfBlocks:
                    pass
        finally:
            cache.check_invariants()
        for s, want in contents.items():                      # every sequence still reads what it wrote
            if s in cache.tables:
                np.testing.assert_array_equal(_stored(cache, s)[0], want)
        u = cache.usage()
        assert u.blocks_used + cache.free_blocks == num_blocks
        assert u.wasted_bytes == (u.blocks_used * block_size - u.tokens) * SPEC.bytes_per_token("float32")
    for s in list(cache.tables):
        cache.free(s)
    assert cache.free_blocks == num_blocks and not cache.allocator.ref.any()   # freeing returns every block


def test_copy_on_write_keeps_the_shared_prefix_intact():
    cache = PagedKVCache(SPEC, 8, block_size=4)
    rng = np.random.default_rng(1)
    cache.add("parent")
    _, k_prefix, v_prefix = _write(cache, "parent", 6, rng)           # one full block + 2 tokens in a second
    cache.fork("parent", "child")
    shared = list(cache.tables["parent"])
    assert cache.tables["child"] == shared and all(cache.allocator.ref[b] == 2 for b in shared)
    assert cache.blocks_needed("child", 1) == 1                       # the partly filled last block must be copied
    _, k_child, _ = _write(cache, "child", 3, rng)
    assert cache.tables["child"][0] == shared[0]                      # the full block is still shared
    assert cache.tables["child"][1] != shared[1]                      # the written one was copied
    k_parent, v_parent = _stored(cache, "parent")
    np.testing.assert_array_equal(k_parent, k_prefix)                 # the parent's prefix is intact
    np.testing.assert_array_equal(v_parent, v_prefix)
    np.testing.assert_array_equal(_stored(cache, "child")[0], np.concatenate([k_prefix, k_child]))
    _, k_more, _ = _write(cache, "parent", 1, rng)                     # the parent writes into its own block now
    np.testing.assert_array_equal(_stored(cache, "parent")[0], np.concatenate([k_prefix, k_more]))
    np.testing.assert_array_equal(_stored(cache, "child")[0][:6], k_prefix)
    cache.check_invariants()


def test_running_out_raises_and_changes_nothing():
    cache = PagedKVCache(SPEC, 3, block_size=2)
    cache.add(0)
    cache.reserve(0, 5)
    cache.schedule([(0, 5)])
    cache.begin(1, 5)
    tables, free = {s: list(t) for s, t in cache.tables.items()}, cache.free_blocks
    with pytest.raises(OutOfBlocks) as info:
        cache.reserve(0, 3)
    assert info.value.needed == 1 and info.value.free == 0
    assert cache.tables == tables and cache.free_blocks == free
    with pytest.raises(ValueError, match="reserve"):
        cache.schedule([(0, 2)])
    with pytest.raises(ValueError, match=r"shape \(1, 1\), got \(1, 3\)"):
        cache.schedule([(0, 1)]) or cache.begin(1, 3)
    with pytest.raises(KeyError, match="not in the KV cache"):
        cache.reserve("nobody", 1)
    with pytest.raises(ValueError, match="already"):
        cache.add(0)
    with pytest.raises(ValueError, match="block_size"):
        PagedKVCache(SPEC, 3, block_size=0)
    with pytest.raises(ValueError, match="num_blocks"):
        PagedKVCache(SPEC, 0)


def test_waste_is_the_unfilled_tail_of_last_blocks():
    cache = PagedKVCache(SPEC, 20, block_size=16)
    for s, n in enumerate((1, 16, 17, 40)):
        cache.add(s)
        cache.reserve(s, n)
        cache.schedule([(s, n)])
        cache.begin(1, n)
    u = cache.usage()
    assert u.blocks_used == 1 + 1 + 2 + 3 and u.tokens == 74
    assert u.wasted_bytes == (7 * 16 - 74) * SPEC.bytes_per_token()
    assert u.bytes_allocated == 7 * cache.block_bytes and 0 < u.waste < 0.5
