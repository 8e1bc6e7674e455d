"""Checks for lab 12 — the capstone: TinyGPT from the application layer to the chip.

12.1 ``kv_cache_bytes(spec, seq_len, batch, dtype)``: bytes of a KV cache, 2·n_layer·n_kv_head·head_dim·seq·
     batch·bytes; golden figures (TinyGPT, a Llama-2-7B-shaped model: 0.5 MiB per token in fp16, a GQA model),
     then equality with the allocation ``aisys.inference.KVCache`` really makes, measured with tracemalloc.
12.2 ``step_flops_bytes(dims, batch, new_tokens, past, bytes_per_element)``: FLOPs and DRAM bytes of one
     decoder step under the conventions of ``aisys.inference.roofline``; decode at batch 1 in fp16 sits at
     ~1 FLOP/B (memory-bound on davinci), a 512-token prefill above the ridge; random configs vs the library.
12.3 ``tiled_attention(q, k, v, causal, block)``: one head of attention with the online softmax, reading keys
     and values ``block`` rows at a time and never holding an L x S matrix (its memory peak is measured);
     equal to softmax attention on shapes whose blocks do not divide S, causal masks aligned to the last
     key, and scores large enough to overflow a softmax without its max.

Each check also lists plausible mistakes (the ``_…`` functions below) that it must reject.
"""
from __future__ import annotations

import math
import tracemalloc

import numpy as np

from aisys.labkit import Checker, register
from aisys.labkit.checker import telltale
from aisys.labkit.learner import call as _call

# ---------------------------------------------------------------------------------------------
# 12.1 KV cache bytes
# ---------------------------------------------------------------------------------------------

_ITEM = {"float16": 2, "float32": 4}


@register("12.1", title="KV-cache bytes match the measured allocation", lab="12_capstone",
          reference="aisys.inference.kv_cache:kv_cache_bytes",
          bad=[("aisys.labkit.checks.lab12:_kv_keys_only", 'a value vector too'),
               ("aisys.labkit.checks.lab12:_kv_query_heads", 'not the n_head query heads'),
               ("aisys.labkit.checks.lab12:_kv_ignores_batch", 'its own cache'),
               ("aisys.labkit.checks.lab12:_kv_always_fp16", 'float32 takes 4'),
               ("aisys.labkit.checks.lab12:_kv_in_bits", 'bytes, not bits'),
               ("aisys.labkit.checks.lab12:_kv_one_layer", 'every layer keeps its own')])
def _check_12_1(fn, c: Checker):
    from aisys.inference import KVCache, KVSpec, measure_allocation
    hint = ("every layer stores a key AND a value vector of head_dim numbers for each of its n_kv_head key/value "
            "heads, for every token of every sequence: 2·n_layer·n_kv_head·head_dim·seq_len·batch·bytes")
    golden = [
        ("TinyGPT of the benchmark (4 layers, 8 heads of 32), 512 tokens, fp16", KVSpec(4, 8, 8, 32), 512, 1,
         "float16", 2 << 20),
        ("a Llama-2-7B-shaped model (32 layers, 32 heads of 128): 4096 tokens in fp16 = 0.5 MiB per token",
         KVSpec(32, 32, 32, 128), 4096, 1, "float16", 2 << 30),
        ("grouped-query attention: 32 query heads share 8 key/value heads, 8192 tokens x 2 sequences",
         KVSpec(32, 32, 8, 128), 8192, 2, "float16", 2 << 30),
    ]
    for what, spec, seq, batch, dtype, want in golden:
        got, error = _call(fn, spec, seq, batch, dtype)
        if error:
            c.fail(what, expected=want, got=error, hint=hint)
        c.equal(got, want, what=what, hint=telltale(got, _KV_MISTAKES, hint, args=(spec, seq, batch, dtype)))
    for _ in range(4):
        kv = int(c.rng.choice([1, 2, 4]))
        spec = KVSpec(int(c.rng.integers(1, 5)), kv * int(c.rng.choice([1, 2, 4])), kv, int(c.rng.integers(1, 9)) * 8)
        seq, batch = int(c.rng.integers(1, 300)), int(c.rng.integers(1, 4))
        dtype = str(c.rng.choice(["float16", "float32"]))
        cache, measured = measure_allocation(lambda: KVCache(spec, batch, seq, dtype))
        what = (f"{spec.n_layer} layers, {spec.n_head} query / {spec.n_kv_head} kv heads of {spec.head_dim}, "
                f"{seq} tokens x {batch}, {dtype}: measured allocation of KVCache")
        got, error = _call(fn, spec, seq, batch, dtype)
        if error:
            c.fail(what, expected=cache.nbytes, got=error, hint=hint)
        c.true(isinstance(got, (int, np.integer)) and cache.nbytes <= measured <= cache.nbytes + 4096 and
               got == cache.nbytes, what=what, expected=f"{cache.nbytes:,} B (tracemalloc saw {measured:,} B allocated)",
               got=f"{got!r}", hint=telltale(got, _KV_MISTAKES, hint, args=(spec, seq, batch, dtype)))
    del cache


def _kv_keys_only(spec, seq_len, batch=1, dtype="float16"):
    return spec.n_layer * spec.n_kv_head * spec.head_dim * seq_len * batch * _ITEM[dtype]


def _kv_query_heads(spec, seq_len, batch=1, dtype="float16"):
    return 2 * spec.n_layer * spec.n_head * spec.head_dim * seq_len * batch * _ITEM[dtype]


def _kv_ignores_batch(spec, seq_len, batch=1, dtype="float16"):
    return 2 * spec.n_layer * spec.n_kv_head * spec.head_dim * seq_len * _ITEM[dtype]


def _kv_always_fp16(spec, seq_len, batch=1, dtype="float16"):
    return 2 * spec.n_layer * spec.n_kv_head * spec.head_dim * seq_len * batch * 2


def _kv_in_bits(spec, seq_len, batch=1, dtype="float16"):
    return 2 * spec.n_layer * spec.n_kv_head * spec.head_dim * seq_len * batch * _ITEM[dtype] * 8


def _kv_one_layer(spec, seq_len, batch=1, dtype="float16"):
    return 2 * spec.n_kv_head * spec.head_dim * seq_len * batch * _ITEM[dtype]


_KV_MISTAKES = [
    (_kv_keys_only, "that counts the keys only: every token stores a value vector too (the factor 2)"),
    (_kv_query_heads, "with grouped-query attention only the n_kv_head key/value heads are cached, not the n_head "
                      "query heads that share them"),
    (_kv_ignores_batch, "each of the batch sequences keeps its own cache: multiply by batch"),
    (_kv_always_fp16, "the element size comes from dtype: float16 takes 2 bytes, float32 takes 4"),
    (_kv_in_bits, "count bytes, not bits: float16 is 2 bytes per number"),
    (_kv_one_layer, "every layer keeps its own keys and values: multiply by n_layer"),
]


# ---------------------------------------------------------------------------------------------
# 12.2 FLOPs and bytes of prefill and decode
# ---------------------------------------------------------------------------------------------

@register("12.2", title="Prefill vs decode: FLOPs and bytes of one step", lab="12_capstone",
          reference="aisys.inference.roofline:step_flops_bytes",
          bad=[("aisys.labkit.checks.lab12:_step_counts_macs", 'a multiply-accumulate is 2 FLOPs'),
               ("aisys.labkit.checks.lab12:_step_weights_per_token", 'once per step, shared'),
               ("aisys.labkit.checks.lab12:_step_forgets_kv_read", 'reads the keys and values of the past'),
               ("aisys.labkit.checks.lab12:_step_forgets_head", 'vocabulary head'),
               ("aisys.labkit.checks.lab12:_step_full_rectangle", 'causal mask'),
               ("aisys.labkit.checks.lab12:_step_ignores_word_size", 'bytes_per_element'),
               ("aisys.labkit.checks.lab12:_step_kv_query_heads", 'only the n_kv_head')])
def _check_12_2(fn, c: Checker):
    from aisys.chip import preset
    from aisys.inference import ModelDims
    from aisys.inference.roofline import step_flops_bytes
    hint = ("FLOPs: 2 per weight per new token (every layer's q/k/v/out and MLP matrices, then the vocabulary "
            "head) + attention: the i-th new token attends to past + i + 1 keys, 2·2·n_head·head_dim FLOPs per key "
            "per layer. Bytes: all weights once per step, the KV of the past tokens read, the KV of the new "
            "tokens written, each 2·n_layer·n_kv_head·head_dim·bytes per token")
    bench = ModelDims(4, 256, 8, 8, 32, 1024, 65)
    W = 4 * 12 * 256 ** 2 + 256 * 65
    kv_tok = 2 * 4 * 8 * 32 * 2
    ridge = preset("davinci").ridge_point
    cases = [
        ("decode, batch 1, 16 cached tokens, fp16", (bench, 1, 1, 16, 2),
         (2 * W + 4 * 4 * 8 * 32 * 17, 2 * W + kv_tok * 17)),
        ("prefill of a 512-token prompt, batch 1, fp16", (bench, 1, 512, 0, 2),
         (2 * W * 512 + 4 * 4 * 8 * 32 * (512 * 513 // 2), 2 * W + kv_tok * 512)),
        ("decode, batch 8, 300 cached tokens, fp32", (bench, 8, 1, 300, 4),
         (8 * (2 * W + 4 * 4 * 8 * 32 * 301), 4 * W + 8 * 2 * kv_tok * 301)),
    ]
    for what, args, want in cases:
        got, error = _call(fn, *args)
        if error:
            c.fail(what, expected=want, got=error, hint=hint)
        c.true(isinstance(got, (tuple, list)) and len(got) == 2, what=f"{what}: returns (flops, bytes)",
               expected="a pair of numbers", got=repr(got)[:120], hint=hint)
        c.equal((int(got[0]), int(got[1])), want, what=what,
                hint=telltale([int(got[0]), int(got[1])], _STEP_MISTAKES, hint, args=args))
    f, b = fn(bench, 1, 1, 16, 2)
    c.true(abs(f / b - 1.0) < 0.02 and f / b < ridge, what="decode at batch 1 in fp16 is ~1 FLOP/B: memory-bound",
           expected=f"~1 FLOP/B, below davinci's ridge {ridge:.0f}", got=f"{f / b:.3f} FLOP/B", hint=hint)
    f, b = fn(bench, 1, 512, 0, 2)
    c.true(f / b > ridge, what="a 512-token prefill in fp16 is compute-bound on davinci",
           expected=f"> {ridge:.0f} FLOP/B", got=f"{f / b:.1f} FLOP/B", hint=hint)
    for _ in range(4):
        kv = int(c.rng.choice([1, 2, 4]))
        heads = kv * int(c.rng.choice([1, 2, 4]))
        hd = int(c.rng.integers(1, 9)) * 8
        dims = ModelDims(int(c.rng.integers(1, 6)), heads * hd, heads, kv, hd, int(c.rng.integers(1, 5)) * heads * hd,
                         int(c.rng.integers(10, 500)))
        args = (dims, int(c.rng.integers(1, 9)), int(c.rng.choice([1, int(c.rng.integers(2, 64))])),
                int(c.rng.integers(0, 200)), int(c.rng.choice([1, 2, 4])))
        want = step_flops_bytes(*args)
        what = (f"{dims.n_layer} layers, d_model {dims.d_model}, {heads} heads / {kv} kv heads of {hd}, d_ff "
                f"{dims.d_ff}, vocab {dims.vocab_size}: batch {args[1]}, {args[2]} new after {args[3]}, "
                f"{args[4]} B per element")
        got, error = _call(fn, *args)
        if error:
            c.fail(what, expected=want, got=error, hint=hint)
        c.equal(tuple(int(x) for x in got), want, what=what,
                hint=telltale([int(x) for x in got], _STEP_MISTAKES, hint, args=args))


def _weights(d):
    q, kv = d.n_head * d.head_dim, d.n_kv_head * d.head_dim
    return d.n_layer * (d.d_model * q + 2 * d.d_model * kv + q * d.d_model + 2 * d.d_model * d.d_ff), \
        d.d_model * d.vocab_size


def _step_parts(d, batch, new, past, nbytes, *, kv_heads=None, rectangle=False, head=True, kv_read=True,
                weight_reads=1):
    layers, lm = _weights(d)
    W = layers + (lm if head else 0)
    tokens = batch * new
    keys = new * (past + new) if rectangle else new * past + new * (new + 1) // 2
    flops = 2 * W * tokens + 4 * d.n_layer * d.n_head * d.head_dim * keys * batch
    kv_tok = 2 * d.n_layer * (kv_heads or d.n_kv_head) * d.head_dim * nbytes
    nbytes_total = W * nbytes * weight_reads + kv_tok * batch * ((past if kv_read else 0) + new)
    return flops, nbytes_total


def _step_counts_macs(dims, batch, new_tokens, past, bytes_per_element=2):
    f, b = _step_parts(dims, batch, new_tokens, past, bytes_per_element)
    return f // 2, b


def _step_weights_per_token(dims, batch, new_tokens, past, bytes_per_element=2):
    return _step_parts(dims, batch, new_tokens, past, bytes_per_element, weight_reads=batch * new_tokens)


def _step_forgets_kv_read(dims, batch, new_tokens, past, bytes_per_element=2):
    return _step_parts(dims, batch, new_tokens, past, bytes_per_element, kv_read=False)


def _step_forgets_head(dims, batch, new_tokens, past, bytes_per_element=2):
    return _step_parts(dims, batch, new_tokens, past, bytes_per_element, head=False)


def _step_full_rectangle(dims, batch, new_tokens, past, bytes_per_element=2):
    return _step_parts(dims, batch, new_tokens, past, bytes_per_element, rectangle=True)


def _step_ignores_word_size(dims, batch, new_tokens, past, bytes_per_element=2):
    return _step_parts(dims, batch, new_tokens, past, 2)


def _step_kv_query_heads(dims, batch, new_tokens, past, bytes_per_element=2):
    return _step_parts(dims, batch, new_tokens, past, bytes_per_element, kv_heads=dims.n_head)


_STEP_MISTAKES = [
    (_step_counts_macs, "those are multiply-accumulates: a multiply-accumulate is 2 FLOPs (a multiply and an add), "
                        "so a weight costs 2 FLOPs per token"),
    (_step_weights_per_token, "the weights are read once per step, shared by every token of the batch and the "
                              "prompt: that sharing is why batching and prefill raise the intensity"),
    (_step_forgets_kv_read, "each step also reads the keys and values of the past tokens from the cache (and "
                            "writes those of the new ones)"),
    (_step_forgets_head, "after the layers comes the vocabulary head, a d_model × vocab_size matrix: its weights "
                         "count in the FLOPs and the bytes"),
    (_step_full_rectangle, "under the causal mask the i-th new token attends to past + i + 1 keys, not to all "
                           "past + new: a triangle, not a rectangle"),
    (_step_ignores_word_size, "weights and KV are bytes_per_element bytes per number (4 in fp32), not always 2"),
    (_step_kv_query_heads, "the cache holds only the n_kv_head key/value heads (grouped-query attention), not "
                           "one per query head"),
]


# ---------------------------------------------------------------------------------------------
# 12.3 tiled attention with the online softmax
# ---------------------------------------------------------------------------------------------

class BlockReader:
    """Keys or values in "main memory": readable only by slicing rows, ``k[j:j + block]`` (a numpy copy), at
    most ``block`` rows at a time. It counts the bytes read."""

    def __init__(self, data: np.ndarray, block: int, name: str):
        self._data, self.block, self.name = data, block, name
        self.bytes_read = 0
        self.widest = 0

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    def __len__(self):
        return len(self._data)

    def __getitem__(self, key):
        rows = key[0] if isinstance(key, tuple) else key
        if not isinstance(rows, slice):
            raise TypeError(f"{self.name}: read a block of rows with a slice, {self.name}[j:j + block] "
                            f"(got index {key!r})")
        out = np.array(self._data[key])
        n = len(range(*rows.indices(len(self._data))))
        self.widest = max(self.widest, n)
        if n > self.block:
            raise ValueError(f"{self.name}[{rows.start}:{rows.stop}] reads {n} rows at once; a tiled kernel streams "
                             f"{self.name} through fast memory {self.block} rows (one block) at a time")
        self.bytes_read += out.nbytes
        return out

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"{self.name} lives in main memory: read it one block at a time, {self.name}[j:j + block], "
                        f"instead of using it whole")


def _softmax_attention(q, k, v, causal):
    s = q.astype(np.float64) @ k.T.astype(np.float64) / math.sqrt(q.shape[1])
    L, S = s.shape
    if causal:
        s = np.where(np.tril(np.ones((L, S), bool), S - L), s, -np.inf)
    p = np.exp(s - s.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)) @ v.astype(np.float64)


@register("12.3", title="Tiled attention with the online softmax", lab="12_capstone",
          reference="aisys.kernels.attention:tiled_attention_reference",
          bad=[("aisys.labkit.checks.lab12:_attn_whole_softmax", 'one block of keys at a time'),
               ("aisys.labkit.checks.lab12:_attn_gathers_then_softmax", 'never form the L x S score matrix'),
               ("aisys.labkit.checks.lab12:_attn_no_rescale", 'rescale the accumulated output'),
               ("aisys.labkit.checks.lab12:_attn_no_rescale_of_sum", 'rescale the running sum l'),
               ("aisys.labkit.checks.lab12:_attn_no_scale", 'divide the scores by √d'),
               ("aisys.labkit.checks.lab12:_attn_causal_top_left", 'bottom-right'),
               ("aisys.labkit.checks.lab12:_attn_drops_last_block", 'last, partial block'),
               ("aisys.labkit.checks.lab12:_attn_no_max", "subtract the running max")])
def _check_12_3(fn, c: Checker):
    hint = ("for each block of keys: scores s = q·kᵀ/√d (masked where key j > i + S − L when causal), new max "
            "m' = max(m, max s), rescale l and acc by exp(m − m'), add exp(s − m') and exp(s − m')·v; at the end "
            "o = acc / l")
    cases = [(8, 8, 4, 4, False, 1.0), (13, 29, 8, 5, True, 1.0), (29, 29, 8, 8, True, 1.0), (3, 40, 8, 16, True, 1.0),
             (20, 20, 8, 64, False, 1.0), (16, 48, 8, 16, True, 30.0), (1, 33, 16, 8, True, 1.0)]
    for L, S, d, block, causal, size in cases:
        q = c.rng.standard_normal((L, d)) * size
        k = c.rng.standard_normal((S, d)) * size
        v = c.rng.standard_normal((S, d))
        what = (f"L={L} queries, S={S} keys, d={d}, block={block}, causal={causal}"
                + (f", scores around ±{size * size * math.sqrt(d):.0f}" if size > 1 else ""))
        kr, vr = BlockReader(k, block, "k"), BlockReader(v, block, "v")
        got, error = _call(fn, q, kr, vr, causal, block)
        if error:
            c.fail(what, expected="softmax attention, keys read block by block", got=error,
                   hint=("the kernel holds one block of keys at a time in fast memory: loop over the blocks, "
                         "k[j:j + block] and v[j:j + block], never the whole k or v. " if "at once" in error or
                         "main memory" in error else "") + hint)
        want = _softmax_attention(q, k, v, causal)
        try:
            known = [(m(q, BlockReader(k, block, "k"), BlockReader(v, block, "v"), causal, block), words)
                     for m, words in _ATTENTION_MISTAKES]
        except Exception:
            known = []
        c.close(np.asarray(got, np.float64) if got is not None else got, want, what=what, rtol=1e-6, atol=1e-8,
                hint=telltale(got, known, hint, rtol=1e-6, atol=1e-8))
        c.true(kr.bytes_read >= k.nbytes and vr.bytes_read >= v.nbytes,
               what=f"{what}: reads every key it needs", expected="each key and value read at least once",
               got=f"{kr.bytes_read} B of k, {vr.bytes_read} B of v", hint=hint)
    # memory: a 256 x 256 problem must never hold the 512 KiB score matrix
    L = S = 256
    q, k, v = c.rng.standard_normal((L, 8)), c.rng.standard_normal((S, 8)), c.rng.standard_normal((S, 8))
    kr, vr = BlockReader(k, 16, "k"), BlockReader(v, 16, "v")
    tracemalloc.start()
    try:
        got, error = _call(fn, q, kr, vr, True, 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    what = "256 queries x 256 keys, block 16: peak memory while it runs"
    if error:
        c.fail(what, expected="no error", got=error, hint=hint)
    naive = 2 * L * S * 8 * 2          # scores and probabilities written and read once each (float64)
    c.true(peak < L * S * 8 // 2, what=what, expected=f"well under one 256x256 float64 matrix ({L * S * 8:,} B)",
           got=f"{peak:,} B at peak", hint="never form the L x S score matrix: keep only one block of scores (L x block)")
    c.true(kr.bytes_read + vr.bytes_read <= 2 * S * 8 * 8 * math.ceil(L / 16),
           what=f"bytes of K and V read ({kr.bytes_read + vr.bytes_read:,} B) vs the {naive:,} B of scores naive "
                f"attention writes and reads", expected="K and V streamed at most once per block of queries",
           got=f"{kr.bytes_read + vr.bytes_read:,} B", hint=hint)


def _blocks(k, block):
    return range(0, k.shape[0], block)


def _online(q, k, v, causal, block, *, rescale=True, rescale_sum=True, scale=True, top_left=False,
            drop_tail=False, use_max=True):
    L, d = q.shape
    S = k.shape[0]
    qs = q / math.sqrt(d) if scale else q
    m, l, acc = np.full(L, -np.inf), np.zeros(L), np.zeros((L, v.shape[1]))
    starts = range(0, S - block + 1, block) if drop_tail else _blocks(k, block)
    rows = np.arange(L)[:, None]
    for j0 in starts:
        kb, vb = k[j0:j0 + block], v[j0:j0 + block]
        s = qs @ kb.T
        if causal:
            s = np.where(j0 + np.arange(len(kb))[None, :] <= rows + (0 if top_left else S - L), s, -np.inf)
        m_new = np.maximum(m, s.max(1)) if use_max else np.zeros(L)
        safe = np.where(np.isfinite(m_new), m_new, 0.0)
        alpha = np.exp(m - safe) if use_max else np.ones(L)
        p = np.exp(s - safe[:, None])
        l = (l * alpha if rescale_sum else l) + p.sum(1)
        acc = (acc * alpha[:, None] if rescale else acc) + p @ vb
        m = m_new
    return acc / np.where(l > 0, l, 1.0)[:, None]


def _attn_whole_softmax(q, k, v, causal=False, block=16):
    return _softmax_attention(q, k[0:k.shape[0]], v[0:v.shape[0]], causal)


def _attn_gathers_then_softmax(q, k, v, causal=False, block=16):
    kk = np.concatenate([k[j:j + block] for j in _blocks(k, block)])
    vv = np.concatenate([v[j:j + block] for j in _blocks(v, block)])
    return _softmax_attention(q, kk, vv, causal)


def _attn_no_rescale(q, k, v, causal=False, block=16):
    return _online(q, k, v, causal, block, rescale=False)


def _attn_no_rescale_of_sum(q, k, v, causal=False, block=16):
    return _online(q, k, v, causal, block, rescale_sum=False)


def _attn_no_scale(q, k, v, causal=False, block=16):
    return _online(q, k, v, causal, block, scale=False)


def _attn_causal_top_left(q, k, v, causal=False, block=16):
    return _online(q, k, v, causal, block, top_left=True)


def _attn_drops_last_block(q, k, v, causal=False, block=16):
    return _online(q, k, v, causal, block, drop_tail=True)


def _attn_no_max(q, k, v, causal=False, block=16):
    with np.errstate(over="ignore", invalid="ignore"):
        return _online(q, k, v, causal, block, use_max=False)


_ATTENTION_MISTAKES = [
    (_attn_no_rescale, "when a block raises the running max m to m', rescale the accumulated output acc by "
                       "exp(m − m') before adding the block's exp(s − m')·v: its terms were weighted with the old max"),
    (_attn_no_rescale_of_sum, "when the running max grows, rescale the running sum l by exp(m − m') as well as acc: "
                              "both were accumulated with the old max"),
    (_attn_no_scale, "divide the scores by √d (s = q·kᵀ/√d), as softmax attention does"),
    (_attn_causal_top_left, "with fewer queries than keys (L < S) the queries are the LAST L positions: query i "
                            "sees keys j ≤ i + S − L (the mask is aligned bottom-right, not top-left)"),
    (_attn_drops_last_block, "S need not be a multiple of block: the last, partial block k[j:S] holds keys too"),
    (_attn_no_max, "exp of large scores overflows: subtract the running max (exp(s − m')) and rescale by "
                   "exp(m − m') when it grows"),
]
