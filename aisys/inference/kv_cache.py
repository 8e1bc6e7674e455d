"""The KV cache: keys and values of the tokens a decoder has already seen, so each new token costs one step.

Without it, generating token t means running the whole prefix again (O(t) work per token, O(n²) in all).
With it, attention reads the stored keys and values of earlier tokens, and only the new token goes through
the network. The price is memory: per token, every layer stores a key and a value vector for every
key/value head,

    bytes = 2 · n_layer · n_kv_head · head_dim · seq_len · batch · bytes_per_element

(grouped-query attention shrinks it by sharing key/value heads among query heads). This module has the
spec of what a model's cache holds (:class:`KVSpec`), that formula (:func:`kv_cache_bytes`), a contiguous
preallocated cache (:class:`KVCache`, what ``generate`` uses) and a traceable one made of graph ops
(:class:`TensorKVCache`, what the capstone compiles). The paged cache is in ``paged.py``.

A cache is what a model's ``forward(ids, kv_cache=cache)`` calls (``aisys.models.gpt`` documents the two
methods): ``positions = cache.begin(batch, new_tokens)`` and ``out = cache.attend(layer, q, k, v)``.
"""
from __future__ import annotations

import math
import tracemalloc
from dataclasses import dataclass

import numpy as np

from ..framework.tensor import Tensor

__all__ = ["KVSpec", "kv_cache_bytes", "KVCache", "TensorKVCache", "measure_allocation", "kv_dtype"]


def kv_dtype(dtype) -> np.dtype:
    """numpy dtype of a cache element: "float32", "float16", np.float16 or an aisys dtype (aisys.float16)."""
    np_dtype = getattr(dtype, "np", dtype)        # aisys DType -> its numpy dtype
    try:
        dt = np.dtype(np_dtype)
    except TypeError:
        raise TypeError(f"KV cache dtype {dtype!r} is not a dtype; use 'float32' or 'float16'") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise ValueError(f"KV cache dtype {dt} is not supported; use float32 or float16")
    return dt


@dataclass(frozen=True)
class KVSpec:
    """What a decoder caches per token: keys and values for ``n_layer`` layers and ``n_kv_head`` heads of
    ``head_dim`` features. ``n_head`` (query heads) is a multiple of ``n_kv_head``; with fewer key/value heads
    (GQA, or MQA with one) the cache shrinks by n_head / n_kv_head."""
    n_layer: int
    n_head: int
    n_kv_head: int
    head_dim: int

    def __post_init__(self):
        for name in ("n_layer", "n_head", "n_kv_head", "head_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"KVSpec: {name}={v!r} must be a positive int")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"KVSpec: n_head={self.n_head} must be a multiple of n_kv_head={self.n_kv_head} "
                             f"(each key/value head serves n_head / n_kv_head query heads)")

    @classmethod
    def of(cls, source) -> "KVSpec":
        """From a KVSpec, a dict with the four fields, or a model with ``kv_spec()`` (TinyGPT)."""
        if isinstance(source, KVSpec):
            return source
        if callable(getattr(source, "kv_spec", None)):
            source = source.kv_spec()
        if isinstance(source, dict):
            try:
                return cls(**{k: source[k] for k in ("n_layer", "n_head", "n_kv_head", "head_dim")})
            except KeyError as e:
                raise ValueError(f"KVSpec.of: the dict needs n_layer, n_head, n_kv_head and head_dim; missing {e}") \
                    from None
        raise TypeError(f"KVSpec.of: expected a KVSpec, a dict or a model with kv_spec() (such as TinyGPT), got "
                        f"{type(source).__name__}")

    def bytes_per_token(self, dtype="float32") -> int:
        return 2 * self.n_layer * self.n_kv_head * self.head_dim * kv_dtype(dtype).itemsize


def kv_cache_bytes(spec, seq_len: int, batch: int = 1, dtype="float16") -> int:
    """2 · n_layer · n_kv_head · head_dim · seq_len · batch · bytes per element: the bytes of keys and values
    for ``batch`` sequences of ``seq_len`` tokens (``spec``: a KVSpec, a dict or a model)."""
    spec = KVSpec.of(spec)
    for name, v in (("seq_len", seq_len), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"kv_cache_bytes: {name}={v!r} must be an int >= 0")
    return spec.bytes_per_token(dtype) * int(seq_len) * int(batch)


def measure_allocation(make):
    """``(obj, bytes)``: call ``make()`` and measure, with tracemalloc, the memory it allocated and still
    holds (numpy reports its array buffers to tracemalloc)."""
    was = tracemalloc.is_tracing()
    if not was:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        obj = make()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if not was:
            tracemalloc.stop()
    return obj, after - before


def _array(x, what: str) -> np.ndarray:
    data = x._data if isinstance(x, Tensor) else x
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{what} must be a Tensor or numpy array, got {type(x).__name__}")
    return data


class KVCache:
    """A contiguous cache for ``batch`` sequences that advance together, preallocated for ``max_seq`` tokens:
    keys and values are arrays (n_layer, batch, n_kv_head, max_seq, head_dim). ``nbytes`` is that allocation
    (= ``kv_cache_bytes(spec, max_seq, batch, dtype)``); ``used_bytes`` counts the tokens stored so far.

    Attention runs on ``aisys.kernels.attention`` (the tiled online-softmax kernel). A float16 cache stores
    half the bytes and is read back as float32 for the kernel.
    """

    def __init__(self, spec, batch: int = 1, max_seq: int = 1, dtype="float32"):
        self.spec = KVSpec.of(spec)
        for name, v in (("batch", batch), ("max_seq", max_seq)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"KVCache: {name}={v!r} must be a positive int")
        self.dtype = kv_dtype(dtype)
        self.batch, self.max_seq = int(batch), int(max_seq)
        s = self.spec
        shape = (s.n_layer, self.batch, s.n_kv_head, self.max_seq, s.head_dim)
        self.k = np.zeros(shape, self.dtype)
        self.v = np.zeros(shape, self.dtype)
        self.length = 0
        self._start = 0

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes

    @property
    def used_bytes(self) -> int:
        return kv_cache_bytes(self.spec, self.length, self.batch, self.dtype)

    def reset(self) -> None:
        self.length = self._start = 0

    def begin(self, batch: int, new_tokens: int) -> np.ndarray:
        if batch != self.batch:
            raise ValueError(f"KVCache holds {self.batch} sequences; the model was called with a batch of {batch}")
        if self.length + new_tokens > self.max_seq:
            raise ValueError(f"KVCache is full: {self.length} tokens stored + {new_tokens} new > max_seq="
                             f"{self.max_seq}; make the cache with a larger max_seq")
        self._start = self.length
        self.length += new_tokens
        return np.arange(self._start, self.length, dtype=np.int64)

    def attend(self, layer: int, q, k, v) -> Tensor:
        from ..kernels.attention import attention
        a, b = self._start, self.length
        self.k[layer, :, :, a:b] = _array(k, "k")
        self.v[layer, :, :, a:b] = _array(v, "v")
        out = attention(_array(q, "q"), self.k[layer, :, :, :b], self.v[layer, :, :, :b], causal=True)
        return Tensor._wrap(out)

    def __repr__(self) -> str:
        return (f"KVCache({self.spec.n_layer} layers x {self.spec.n_kv_head} kv heads x {self.spec.head_dim}, batch "
                f"{self.batch}, {self.length}/{self.max_seq} tokens, {self.dtype}, {self.nbytes:,} B allocated)")


class TensorKVCache:
    """A cache made of graph ops, so a decode step can be traced and compiled: the past keys and values are
    Tensors (inputs of the traced function), and attention is written with matmul, softmax and cat.

    ``past`` is a list of (k, v) per layer, each (batch, n_kv_head, S, head_dim) (S may be 0). After the call,
    ``present`` holds each layer's new (k, v) — what an engine would write into its cache.
    """

    def __init__(self, past):
        self.past = list(past)
        self.present: list = [None] * len(self.past)
        self._start = 0

    def begin(self, batch: int, new_tokens: int) -> np.ndarray:
        S = self.past[0][0].shape[2] if self.past else 0
        self._start = S
        return np.arange(S, S + new_tokens, dtype=np.int64)

    def attend(self, layer: int, q, k, v) -> Tensor:
        from ..framework import ops
        from ..framework.nn import functional as F
        pk, pv = self.past[layer]
        self.present[layer] = (k, v)
        group = q.shape[1] // k.shape[1]
        if group > 1:                       # grouped-query attention: each kv head serves `group` query heads
            pk, pv, k, v = (_repeat_heads(t, group) for t in (pk, pv, k, v))
        L, S = q.shape[2], pk.shape[2]
        if S == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        scale = 1.0 / math.sqrt(q.shape[-1])
        # scores against the cached keys, then against the new ones (causal among themselves): only the
        # small score rows are concatenated, never the cache itself
        s_past = (q @ pk.mT) * scale
        s_new = ops.where(F.causal_mask(L), (q @ k.mT) * scale, float(np.finfo(np.float32).min))
        p = F.softmax(ops.cat([s_past, s_new], -1), -1)
        return p[..., :S] @ pv + p[..., S:] @ v


def _repeat_heads(t: Tensor, group: int) -> Tensor:
    """(N, h, S, d) -> (N, h·group, S, d), each head repeated ``group`` times in a row (as GQA pairs them)."""
    N, h, S, d = t.shape
    return t.unsqueeze(2).expand(N, h, group, S, d).reshape(N, h * group, S, d)
