"""TinyGPT: a decoder-only transformer (Radford et al. 2018) small enough to train on a CPU in seconds.

token + position embeddings → n_layer × [x + attn(ln1(x)), x + mlp(ln2(x))] (pre-norm blocks, causal
self-attention, GELU MLP of width 4·n_embd) → layer norm → linear head to vocabulary logits.

``model(ids, kv_cache=cache)`` is the same network run incrementally, the way an inference engine decodes:
only the new tokens go through it, and each layer's attention reads the keys and values of earlier tokens
from the cache instead of recomputing them. The cache is any object with two methods (``aisys.inference``
has a contiguous one, a paged one and a traceable one):

    positions = cache.begin(batch, new_tokens)   # int array (batch, new_tokens) or (new_tokens,): where the
                                                 # new tokens sit in their sequences; the cache grows by them
    out = cache.attend(layer, q, k, v)           # q (batch, heads, new, head_dim), k/v (batch, kv_heads, new,
                                                 # head_dim) Tensors of the new tokens: store k/v, return the
                                                 # causal attention of q over everything stored (batch, heads,
                                                 # new, head_dim)
"""
from __future__ import annotations

import numpy as np

from ..framework import nn
from ..framework.nn import functional as F
from ..framework.tensor import Tensor, no_grad

__all__ = ["Block", "TinyGPT"]


class Block(nn.Module):
    """One pre-norm transformer block: causal multi-head self-attention, then a GELU MLP, each residual."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = nn.MultiheadAttention(n_embd, n_head, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))

    def forward(self, x: Tensor, kv_cache=None, layer: int = 0) -> Tensor:
        h = self.ln1(x)
        if kv_cache is None:
            a, _ = self.attn(h, h, h, need_weights=False, is_causal=True)
        else:
            a = _cached_self_attention(self.attn, h, kv_cache, layer)
        x = x + a
        return x + self.mlp(self.ln2(x))


def _cached_self_attention(mha: nn.MultiheadAttention, h: Tensor, kv_cache, layer: int) -> Tensor:
    """The block's attention with its projections (the same packed in_proj and out_proj parameters as
    ``mha``), leaving the attention itself to ``kv_cache.attend`` over the cached and new keys."""
    N, L, E = h.shape
    H, d = mha.num_heads, mha.head_dim
    qkv = F.linear(h, mha.in_proj_weight, mha.in_proj_bias)
    heads = [qkv[..., i * E:(i + 1) * E].reshape(N, L, H, d).permute(0, 2, 1, 3) for i in range(3)]
    out = kv_cache.attend(layer, *heads)                         # (N, H, L, d)
    return mha.out_proj(out.permute(0, 2, 1, 3).reshape(N, L, E))


class TinyGPT(nn.Module):
    """``logits = model(ids (N, L))`` with L ≤ block_size; logits (N, L, vocab_size).

    ``model(ids, kv_cache=cache)`` runs only the new tokens ``ids`` against a KV cache (module docstring);
    ``kv_spec()`` says what such a cache must hold.
    """

    def __init__(self, vocab_size: int, block_size: int = 32, n_embd: int = 32, n_head: int = 2, n_layer: int = 2,
                 dropout: float = 0.0):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(n_embd, n_head, dropout) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        for name, p in self.named_parameters():          # GPT-2's init: N(0, 0.02) weights, zero biases
            if name.endswith("weight") and p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias") or name.endswith("in_proj_bias"):
                nn.init.zeros_(p)

    def forward(self, ids: Tensor, kv_cache=None) -> Tensor:
        if not isinstance(ids, Tensor) or ids.ndim != 2:
            raise TypeError(f"TinyGPT expects token ids (N, L) as an int64 Tensor, got "
                            f"{getattr(ids, 'shape', type(ids).__name__)}")
        N, L = ids.shape
        if kv_cache is None:
            if L > self.block_size:
                raise ValueError(f"TinyGPT: sequence length {L} exceeds block_size={self.block_size}; crop the "
                                 f"context to its last {self.block_size} tokens")
            pos = Tensor._wrap(np.arange(L, dtype=np.int64))
        else:
            pos = np.asarray(kv_cache.begin(N, L))
            if pos.size and pos.max() >= self.block_size:
                raise ValueError(f"TinyGPT: position {int(pos.max())} is past block_size={self.block_size}: the "
                                 f"cached context is full (TinyGPT has no position embedding beyond it)")
            pos = Tensor._wrap(pos.astype(np.int64))
        x = self.drop(self.tok_emb(ids) + self.pos_emb(pos))
        for i, block in enumerate(self.blocks):
            x = block(x) if kv_cache is None else block(x, kv_cache, i)
        return self.head(self.ln_f(x))

    def kv_spec(self) -> dict:
        """What a KV cache for this model holds per token: keys and values of every layer and head."""
        attn = self.blocks[0].attn
        return {"n_layer": len(self.blocks), "n_head": attn.num_heads, "n_kv_head": attn.num_heads,
                "head_dim": attn.head_dim}

    def loss(self, ids: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(self(ids).reshape(-1, self.vocab_size), targets.reshape(-1))

    def generate(self, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 seed: int = 0) -> Tensor:
        """Append ``max_new_tokens`` sampled tokens to each row of ``ids`` (re-running the cropped context
        every step: no KV cache, to keep the model readable; ``aisys.inference.generate`` is the fast way)."""
        if temperature <= 0:
            raise ValueError(f"generate: temperature={temperature} must be > 0")
        rng = np.random.default_rng(seed)
        out = ids._data.copy()
        was = self.training
        self.eval()
        with no_grad():
            for _ in range(max_new_tokens):
                logits = self(Tensor(out[:, -self.block_size:]))._data[:, -1].astype(np.float64) / temperature
                if top_k is not None:
                    kth = np.sort(logits, axis=-1)[:, -min(top_k, logits.shape[-1])][:, None]
                    logits = np.where(logits < kth, -np.inf, logits)
                p = np.exp(logits - logits.max(-1, keepdims=True))
                p /= p.sum(-1, keepdims=True)
                nxt = np.array([rng.choice(p.shape[-1], p=row) for row in p], np.int64)
                out = np.concatenate([out, nxt[:, None]], 1)
        self.train(was)
        return Tensor(out)
