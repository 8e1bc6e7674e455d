"""Attention kernels: FlashAttention's tiled forward pass with the online softmax, and the naive one it replaces.

Naive attention (Dao et al. 2022, "Algorithm 0") writes the whole L x S score matrix to memory, reads it back
for the softmax, writes the probabilities, and reads them again for P·V: Θ(L·S) bytes of traffic on top of
Q, K, V and O. The tiled kernel never materializes it. It walks the keys in blocks and keeps, for each query
row, the running maximum m, the running denominator l and an unnormalized output accumulator (the *online
softmax*, Milakov & Gimelshein 2018). When a block raises the maximum from m to m', everything summed so far
is rescaled by exp(m − m'):

    m' = max(m, max_j s_j)        l' = l·exp(m − m') + Σ_j exp(s_j − m')
    acc' = acc·exp(m − m') + Σ_j exp(s_j − m')·v_j        and at the end  o = acc / l

Blocks above the causal diagonal are skipped, so a causal kernel also does half the work.

Conventions:
- ``q`` is (batch, heads, L, head_dim); ``k`` and ``v`` are (batch, kv_heads, S, head_dim). ``heads`` must be a
  multiple of ``kv_heads``: query head h reads key/value head h // (heads / kv_heads) — multi-head (kv_heads =
  heads), grouped-query (GQA) and multi-query (MQA, kv_heads = 1) attention.
- ``causal=True`` aligns the *last* query with the *last* key (query i sees keys j ≤ i + S − L), the
  convention of a decoder whose new tokens come after S − L cached ones (FlashAttention-2's). For L = S it is
  torch's ``is_causal``. A query that sees no key (only when S < L) gets zeros.
- float32 in, float32 out; ``scale`` defaults to 1/√head_dim.

The numba kernels compile on first call (``cache=True``: later processes load machine code from disk).
``import aisys.kernels`` never imports numba.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["AttentionStats", "attention", "attention_naive", "paged_attention", "tiled_attention_reference",
           "BLOCK_Q"]

BLOCK_Q = 64          # query rows per tile of the tiled kernel: its inner loops run over this constant
ROWS_BELOW = 16       # fewer query rows than this (decode steps) use the row kernel instead
_F32 = 4


@dataclass(frozen=True)
class AttentionStats:
    """What one attention call read and wrote in main memory (bytes), and the FLOPs it did.

    For the tiled kernel the counts come from the kernel itself: every tile of Q, K and V it loads and every
    output row it stores. ``flops`` counts 2 per multiply-add of Q·Kᵀ and P·V over the score entries it computed.
    """
    kernel: str
    bytes_read: int
    bytes_written: int
    flops: int

    @property
    def bytes_moved(self) -> int:
        return self.bytes_read + self.bytes_written

    def summary(self) -> str:
        return (f"{self.kernel}: {self.bytes_moved:,} B moved (read {self.bytes_read:,}, written "
                f"{self.bytes_written:,}), {self.flops:,} FLOPs")


# ---------------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------------

def attention(q, k, v, causal: bool = True, scale: float | None = None, *, block_k: int = 64,
              return_stats: bool = False):
    """softmax(q·kᵀ·scale [+ causal mask])·v, tiled with the online softmax (see the module docstring).

    Returns the output (batch, heads, L, head_dim) float32, or ``(output, AttentionStats)`` with
    ``return_stats=True``. ``block_k`` is the number of keys per tile.
    """
    q, k, v, scale = _validate("attention", q, k, v, scale)
    if isinstance(block_k, bool) or not isinstance(block_k, (int, np.integer)) or block_k < 1:
        raise ValueError(f"attention: block_k={block_k!r} must be a positive int (keys per tile)")
    out = np.empty(q.shape, np.float32)
    counters = np.zeros(5, np.int64)      # q, k, v elements read; o elements written; score entries computed
    if q.shape[2] == 0 or q.shape[0] * q.shape[1] == 0:
        pass
    elif q.shape[2] < ROWS_BELOW:
        _kernel("rows")(q, k, v, out, np.float32(scale), bool(causal), int(block_k), counters)
    else:
        _kernel("tiled")(q, k, v, out, np.float32(scale), bool(causal), int(block_k), counters)
    if not return_stats:
        return out
    d = q.shape[3]
    stats = AttentionStats("tiled (online softmax)" if q.shape[2] >= ROWS_BELOW else "rows (online softmax)",
                           int(counters[0] + counters[1] + counters[2]) * _F32, int(counters[3]) * _F32,
                           int(counters[4]) * 4 * d)
    return out, stats


def paged_attention(q, k_pool, v_pool, block_tables, lengths, scale: float | None = None):
    """Decode attention through block tables (vLLM's PagedAttention kernel): one new query per sequence
    attends to that sequence's keys and values where they lie, scattered over a pool of fixed-size blocks —
    no gathering copy.

    ``q`` (seqs, heads, head_dim); ``k_pool`` and ``v_pool`` (num_blocks, kv_heads, block_size, head_dim);
    ``block_tables`` (seqs, max_blocks) ints, row n listing sequence n's blocks in order (unused entries are
    ignored); ``lengths`` (seqs,) tokens stored per sequence, the query's own key included. Returns
    (seqs, heads, head_dim) float32.
    """
    where = "paged_attention"
    q = _float32(where, "q", q, 3)
    k_pool, v_pool = _float32(where, "k_pool", k_pool, 4), _float32(where, "v_pool", v_pool, 4)
    N, H, d = q.shape
    nb, Hkv, bs, dk = k_pool.shape
    if v_pool.shape != k_pool.shape or dk != d:
        raise ValueError(f"{where}: k_pool {k_pool.shape} and v_pool {v_pool.shape} must be (num_blocks, kv_heads, "
                         f"block_size, head_dim={d})")
    if Hkv == 0 or H % Hkv:
        raise ValueError(f"{where}: {H} query heads cannot share {Hkv} key/value heads (heads must be a multiple)")
    tables = np.ascontiguousarray(block_tables, np.int64)
    lengths = np.ascontiguousarray(lengths, np.int64)
    if tables.ndim != 2 or tables.shape[0] != N or lengths.shape != (N,):
        raise ValueError(f"{where}: block_tables must be (seqs={N}, max_blocks) and lengths ({N},), got "
                         f"{tables.shape} and {lengths.shape}")
    if N and (lengths.min() < 1 or lengths.max() > tables.shape[1] * bs):
        raise ValueError(f"{where}: lengths must be in [1, max_blocks x block_size = {tables.shape[1] * bs}], got "
                         f"{lengths.min()}..{lengths.max()}")
    used = np.arange(tables.shape[1])[None, :] * bs < lengths[:, None]
    if N and (tables[used].min() < 0 or tables[used].max() >= nb):
        raise ValueError(f"{where}: block ids must be in [0, {nb})")
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    out = np.empty((N, H, d), np.float32)
    if N:
        _kernel("paged")(q, k_pool, v_pool, tables, lengths, out, np.float32(scale))
    return out


def _float32(where, name, a, ndim):
    a = getattr(a, "_data", a)
    if not isinstance(a, np.ndarray) or a.ndim != ndim or a.dtype.kind != "f":
        raise TypeError(f"{where}: {name} must be a {ndim}-D float array, got "
                        f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
    return np.ascontiguousarray(a, np.float32)


def attention_naive(q, k, v, causal: bool = True, scale: float | None = None, *, return_stats: bool = False):
    """The standard implementation (FlashAttention's Algorithm 0) in numpy: S = q·kᵀ written out, P =
    softmax(S) written out, O = P·v. Same shapes and conventions as :func:`attention`.

    Its bytes are counted as that algorithm moves them: read Q, K; write S; read S; write P; read P, V;
    write O — every element of the L x S matrices twice each way."""
    q, k, v, scale = _validate("attention_naive", q, k, v, scale)
    B, H, L, d = q.shape
    S = k.shape[2]
    group = H // k.shape[1]
    kk = np.repeat(k, group, axis=1) if group > 1 else k
    vv = np.repeat(v, group, axis=1) if group > 1 else v
    scores = (q @ np.swapaxes(kk, -1, -2)) * np.float32(scale)
    seen = np.ones((L, S), bool)
    if causal:
        seen = np.tril(seen, S - L)
        scores = np.where(seen, scores, -np.inf)
    top = scores.max(-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    p = np.exp(scores - top)
    denom = p.sum(-1, keepdims=True)
    p = p / np.where(denom > 0, denom, 1.0)
    out = (p @ vv).astype(np.float32)
    if not return_stats:
        return out
    qkv = (q.size + 2 * B * H * S * d) * _F32                  # every head reads its K and V
    ls = B * H * L * S * _F32
    stats = AttentionStats("naive", qkv + 2 * ls, out.size * _F32 + 2 * ls, 4 * B * H * L * S * d)
    return out, stats


def tiled_attention_reference(q, k, v, causal: bool = False, block: int = 16, scale: float | None = None):
    """One head, in plain numpy, written to be read: the online-softmax recurrence of the numba kernel.

    ``q`` (L, d), ``k`` and ``v`` (S, d). Keys are read ``block`` rows at a time (``k[j:j + block]``), and no
    L x S matrix is ever formed: the lab's exercise 12.3 asks for exactly this function.
    """
    L, d = q.shape
    S = k.shape[0]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    qs = np.asarray(q, np.float64) * scale
    m = np.full(L, -np.inf)                  # running max of each row's scores
    l = np.zeros(L)                          # running sum of exp(score - m)
    acc = np.zeros((L, v.shape[1]))          # running sum of exp(score - m) * v
    rows = np.arange(L)[:, None]
    for j0 in range(0, S, block):
        kb = np.asarray(k[j0:j0 + block], np.float64)
        vb = np.asarray(v[j0:j0 + block], np.float64)
        s = qs @ kb.T
        if causal:
            s = np.where(j0 + np.arange(len(kb))[None, :] <= rows + (S - L), s, -np.inf)
        m_new = np.maximum(m, s.max(axis=1))
        safe = np.where(np.isfinite(m_new), m_new, 0.0)   # a row that has seen no key yet keeps l = acc = 0
        alpha = np.exp(m - safe)
        p = np.exp(s - safe[:, None])
        l = l * alpha + p.sum(axis=1)
        acc = acc * alpha[:, None] + p @ vb
        m = m_new
    return np.where(l[:, None] > 0, acc / np.where(l > 0, l, 1.0)[:, None], 0.0)


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------

def _validate(where, q, k, v, scale):
    arrays = []
    for name, a in (("q", q), ("k", k), ("v", v)):
        if not isinstance(a, np.ndarray):
            data = getattr(a, "_data", None)       # an aisys Tensor: read its array
            if not isinstance(data, np.ndarray):
                raise TypeError(f"{where}: {name} must be a numpy array (batch, heads, seq, head_dim), "
                                f"got {type(a).__name__}")
            a = data
        if a.ndim != 4:
            raise ValueError(f"{where}: {name} must be 4-D (batch, heads, seq, head_dim), got shape {a.shape}")
        if a.dtype.kind != "f":
            raise TypeError(f"{where}: {name} must hold floats, got {a.dtype}")
        arrays.append(np.ascontiguousarray(a, np.float32))
    q, k, v = arrays
    B, H, L, d = q.shape
    if k.shape != v.shape:
        raise ValueError(f"{where}: k {k.shape} and v {v.shape} must have the same shape (batch, kv_heads, S, "
                         f"head_dim)")
    if k.shape[0] != B or k.shape[3] != d:
        raise ValueError(f"{where}: q {q.shape} and k {k.shape} must share batch and head_dim")
    if k.shape[1] == 0 or H % k.shape[1]:
        raise ValueError(f"{where}: {H} query heads cannot share {k.shape[1]} key/value heads; heads must be a "
                         f"multiple of kv_heads (grouped-query attention)")
    if scale is None:
        scale = 1.0 / math.sqrt(d) if d else 1.0
    elif isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)) or not math.isfinite(scale):
        raise ValueError(f"{where}: scale={scale!r} must be a finite number")
    return q, k, v, float(scale)


# ---------------------------------------------------------------------------------------------------
# The numba kernels (plain Python functions here; compiled on first use)
# ---------------------------------------------------------------------------------------------------

_NEG = np.float32(-3.0e38)        # "minus infinity" for masked scores: finite, so no inf arithmetic
_NEG_HALF = np.float32(-1.5e38)   # a running max below this has seen no key yet
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_POW2 = np.ldexp(np.float32(1.0), np.arange(-127, 1)).astype(np.float32)   # 2**-127 .. 2**0


def _exp_nonpositive(x):
    """exp(x) for x ≤ 0 in float32 (relative error < 3e-7 above −87; ≈1e-38 below): a range reduction
    x = n·ln2 + y, a degree-7 polynomial for exp(y) (Cephes' expf), and 2**n from a table — unlike np.exp,
    a loop of these vectorizes."""
    x = min(max(x, np.float32(-87.0)), np.float32(0.0))
    n = np.floor(x * _LOG2E + np.float32(0.5))
    y = x - n * _LN2_HI - n * _LN2_LO
    p = np.float32(1.9875691500e-4)
    p = p * y + np.float32(1.3981999507e-3)
    p = p * y + np.float32(8.3334519073e-3)
    p = p * y + np.float32(4.1665795894e-2)
    p = p * y + np.float32(1.6666665459e-1)
    p = p * y + np.float32(5.0000001201e-1)
    p = p * y * y + y + np.float32(1.0)
    return p * _POW2[np.int64(n) + 127]


def _tiled_kernel(q, k, v, out, scale, causal, block_k, counters):
    """BLOCK_Q query rows at a time. Every buffer is stored transposed (query index last), so each inner loop
    runs over the BLOCK_Q rows of the tile — a compile-time constant the compiler unrolls and vectorizes."""
    B, H, L, d = q.shape
    S = k.shape[2]
    group = H // k.shape[1]
    offset = S - L
    QT = np.empty((d + 3, BLOCK_Q), np.float32)        # the query tile, scaled, transposed (+3 zero rows)
    ST = np.empty((block_k + 3, BLOCK_Q), np.float32)  # scores, then probabilities, of one key tile
    OT = np.empty((d + 3, BLOCK_Q), np.float32)        # the unnormalized output accumulator
    m = np.empty(BLOCK_Q, np.float32)
    l = np.empty(BLOCK_Q, np.float32)
    m_new = np.empty(BLOCK_Q, np.float32)
    shift = np.empty(BLOCK_Q, np.float32)
    alpha = np.empty(BLOCK_Q, np.float32)
    for b in range(B):
        for h in range(H):
            hk = h // group
            for i0 in range(0, L, BLOCK_Q):
                br = min(BLOCK_Q, L - i0)
                QT[:, :] = 0.0
                for i in range(br):
                    for t in range(d):
                        QT[t, i] = q[b, h, i0 + i, t] * scale
                counters[0] += br * d
                m[:] = _NEG
                l[:] = 0.0
                OT[:, :] = 0.0
                j_end = min(S, i0 + br + offset) if causal else S
                for j0 in range(0, max(j_end, 0), block_k):
                    bc = min(block_k, j_end - j0)
                    counters[1] += bc * d
                    counters[2] += bc * d
                    counters[4] += bc * br
                    # scores Sᵀ = K_tile · Q_tileᵀ as a 4-key x 4-feature register block per step (rows past bc
                    # read a valid key and are ignored; features past d meet the zero rows of QT)
                    for j in range(0, bc, 4):
                        ja = j0 + j
                        jb = min(ja + 1, S - 1)
                        jc = min(ja + 2, S - 1)
                        jd = min(ja + 3, S - 1)
                        for i in range(BLOCK_Q):
                            ST[j, i] = 0.0
                            ST[j + 1, i] = 0.0
                            ST[j + 2, i] = 0.0
                            ST[j + 3, i] = 0.0
                        for t in range(0, d, 4):
                            u = min(t + 1, d - 1)
                            w = min(t + 2, d - 1)
                            z = min(t + 3, d - 1)
                            a0, a1, a2, a3 = k[b, hk, ja, t], k[b, hk, ja, u], k[b, hk, ja, w], k[b, hk, ja, z]
                            b0, b1, b2, b3 = k[b, hk, jb, t], k[b, hk, jb, u], k[b, hk, jb, w], k[b, hk, jb, z]
                            c0, c1, c2, c3 = k[b, hk, jc, t], k[b, hk, jc, u], k[b, hk, jc, w], k[b, hk, jc, z]
                            e0, e1, e2, e3 = k[b, hk, jd, t], k[b, hk, jd, u], k[b, hk, jd, w], k[b, hk, jd, z]
                            for i in range(BLOCK_Q):
                                x0 = QT[t, i]
                                x1 = QT[t + 1, i]
                                x2 = QT[t + 2, i]
                                x3 = QT[t + 3, i]
                                ST[j, i] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                                ST[j + 1, i] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
                                ST[j + 2, i] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
                                ST[j + 3, i] += e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3
                    if causal and j0 + bc - 1 > i0 + offset:          # a tile on the diagonal: mask above it
                        for j in range(bc):
                            first = j0 + j - offset - i0                # the first row that may see key j0 + j
                            for i in range(min(max(first, 0), BLOCK_Q)):
                                ST[j, i] = _NEG
                    # online softmax: new running max, rescale factor, probabilities, running sum
                    for i in range(BLOCK_Q):
                        m_new[i] = m[i]
                    for j in range(bc):
                        for i in range(BLOCK_Q):
                            m_new[i] = max(m_new[i], ST[j, i])
                    for i in range(BLOCK_Q):
                        shift[i] = m_new[i] if m_new[i] > _NEG_HALF else np.float32(0.0)
                        alpha[i] = _exp_nonpositive(m[i] - shift[i])
                        l[i] *= alpha[i]
                        m[i] = m_new[i]
                    for j in range(bc):
                        for i in range(BLOCK_Q):
                            p = _exp_nonpositive(ST[j, i] - shift[i])
                            ST[j, i] = p
                            l[i] += p
                    for j in range(bc, bc + 3):
                        for i in range(BLOCK_Q):
                            ST[j, i] = 0.0
                    # acc = acc·alpha + P·V_tile, four output features at a time
                    for t in range(d):
                        for i in range(BLOCK_Q):
                            OT[t, i] *= alpha[i]
                    for t in range(0, d, 4):           # a 4-feature x 4-key register block per step
                        u = min(t + 1, d - 1)
                        w = min(t + 2, d - 1)
                        z = min(t + 3, d - 1)
                        for j in range(0, bc, 4):
                            ja = j0 + j
                            jb = min(ja + 1, S - 1)
                            jc = min(ja + 2, S - 1)
                            jd = min(ja + 3, S - 1)
                            a0, a1, a2, a3 = v[b, hk, ja, t], v[b, hk, jb, t], v[b, hk, jc, t], v[b, hk, jd, t]
                            b0, b1, b2, b3 = v[b, hk, ja, u], v[b, hk, jb, u], v[b, hk, jc, u], v[b, hk, jd, u]
                            c0, c1, c2, c3 = v[b, hk, ja, w], v[b, hk, jb, w], v[b, hk, jc, w], v[b, hk, jd, w]
                            e0, e1, e2, e3 = v[b, hk, ja, z], v[b, hk, jb, z], v[b, hk, jc, z], v[b, hk, jd, z]
                            for i in range(BLOCK_Q):
                                p0 = ST[j, i]
                                p1 = ST[j + 1, i]
                                p2 = ST[j + 2, i]
                                p3 = ST[j + 3, i]
                                OT[t, i] += a0 * p0 + a1 * p1 + a2 * p2 + a3 * p3
                                OT[t + 1, i] += b0 * p0 + b1 * p1 + b2 * p2 + b3 * p3
                                OT[t + 2, i] += c0 * p0 + c1 * p1 + c2 * p2 + c3 * p3
                                OT[t + 3, i] += e0 * p0 + e1 * p1 + e2 * p2 + e3 * p3
                for i in range(br):
                    seen = m[i] > _NEG_HALF and l[i] > 0.0
                    inv = np.float32(1.0) / l[i] if seen else np.float32(0.0)
                    for t in range(d):
                        out[b, h, i0 + i, t] = OT[t, i] * inv
                counters[3] += br * d


def _online_block(qs, kb, vb, bc, m, l, acc, s):
    """Fold one block of ``bc`` keys ``kb`` and values ``vb`` into one query's running max ``m``, sum ``l`` and
    accumulator ``acc`` (the online-softmax step); returns the new (m, l). ``s`` is scratch for the scores."""
    d = qs.shape[0]
    m_new = m
    for j in range(bc):
        x = np.float32(0.0)
        for t in range(d):
            x += qs[t] * kb[j, t]
        s[j] = x
        m_new = max(m_new, x)
    alpha = _exp_nonpositive(m - m_new)
    l *= alpha
    for t in range(d):
        acc[t] *= alpha
    for j in range(bc):
        p = _exp_nonpositive(s[j] - m_new)
        l += p
        for t in range(d):
            acc[t] += p * vb[j, t]
    return m_new, l


def _rows_kernel(q, k, v, out, scale, causal, block_k, counters):
    """One query row at a time (decode steps: one or a few new tokens against a long cache)."""
    B, H, L, d = q.shape
    S = k.shape[2]
    group = H // k.shape[1]
    offset = S - L
    qs = np.empty(d, np.float32)
    acc = np.empty(d, np.float32)
    s = np.empty(block_k, np.float32)
    for b in range(B):
        for h in range(H):
            hk = h // group
            for i in range(L):
                for t in range(d):
                    qs[t] = q[b, h, i, t] * scale
                counters[0] += d
                m, l = _NEG, np.float32(0.0)
                acc[:] = 0.0
                j_end = min(S, i + 1 + offset) if causal else S
                for j0 in range(0, max(j_end, 0), block_k):
                    bc = min(block_k, j_end - j0)
                    counters[1] += bc * d
                    counters[2] += bc * d
                    counters[4] += bc
                    m, l = _online_block(qs, k[b, hk, j0:j0 + bc], v[b, hk, j0:j0 + bc], bc, m, l, acc, s)
                inv = np.float32(1.0) / l if l > 0.0 else np.float32(0.0)
                for t in range(d):
                    out[b, h, i, t] = acc[t] * inv
                counters[3] += d


def _paged_kernel(q, k_pool, v_pool, tables, lengths, out, scale):
    """One query per sequence, keys and values read block by block through the sequence's block table."""
    N, H, d = q.shape
    bs = k_pool.shape[2]
    group = H // k_pool.shape[1]
    qs = np.empty(d, np.float32)
    acc = np.empty(d, np.float32)
    s = np.empty(bs, np.float32)
    for n in range(N):
        total = lengths[n]
        for h in range(H):
            hk = h // group
            for t in range(d):
                qs[t] = q[n, h, t] * scale
            m, l = _NEG, np.float32(0.0)
            acc[:] = 0.0
            for j0 in range(0, total, bs):
                blk = tables[n, j0 // bs]
                m, l = _online_block(qs, k_pool[blk, hk], v_pool[blk, hk], min(bs, total - j0), m, l, acc, s)
            inv = np.float32(1.0) / l
            for t in range(d):
                out[n, h, t] = acc[t] * inv


_COMPILED: dict = {}
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}   # no "nnan"/"ninf": masks stay finite anyway


def _kernel(name: str):
    """The numba-compiled kernel (lazy: numba loads on the first attention call, machine code cached on disk)."""
    global _exp_nonpositive, _online_block
    if name not in _COMPILED:
        from numba import njit
        if not hasattr(_exp_nonpositive, "py_func"):     # the kernels call the compiled helpers, inlined
            _exp_nonpositive = njit(inline="always", fastmath=_FASTMATH, cache=True)(_exp_nonpositive)
            _online_block = njit(inline="always", fastmath=_FASTMATH, boundscheck=False, error_model="numpy",
                                 cache=True)(_online_block)
        fn = {"tiled": _tiled_kernel, "rows": _rows_kernel, "paged": _paged_kernel}[name]
        _COMPILED[name] = njit(cache=True, fastmath=_FASTMATH, boundscheck=False, error_model="numpy")(fn)
    return _COMPILED[name]
