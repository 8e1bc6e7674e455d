"""A causal model other than TinyGPT that speaks the KV-cache protocol (``aisys.models.gpt`` documents it)."""
from __future__ import annotations

import numpy as np

from aisys.framework import nn
from aisys.framework.nn import functional as F
from aisys.framework.tensor import Tensor


class TinyGQA(nn.Module):
    """Another causal model with the same interface: one grouped-query attention layer (4 query heads share
    2 key/value heads), written here to show that generate() needs only the protocol, not TinyGPT."""

    def __init__(self, vocab=20, d=16, heads=4, kv_heads=2, block_size=40):
        super().__init__()
        self.vocab_size, self.block_size, self.h, self.hk, self.hd = vocab, block_size, heads, kv_heads, d // heads
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(block_size, d)
        self.q, self.kv = nn.Linear(d, d), nn.Linear(d, 2 * kv_heads * self.hd)
        self.out = nn.Linear(d, vocab)

    def kv_spec(self):
        return {"n_layer": 1, "n_head": self.h, "n_kv_head": self.hk, "head_dim": self.hd}

    def forward(self, ids, kv_cache=None):
        N, L = ids.shape
        pos = np.arange(L) if kv_cache is None else kv_cache.begin(N, L)
        x = self.emb(ids) + self.pos(Tensor(np.asarray(pos, np.int64)))
        q = self.q(x).reshape(N, L, self.h, self.hd).permute(0, 2, 1, 3)
        kv = self.kv(x).reshape(N, L, 2, self.hk, self.hd).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        if kv_cache is None:
            g = self.h // self.hk
            rep = lambda t: t.unsqueeze(2).expand(N, self.hk, g, L, self.hd).reshape(N, self.h, L, self.hd)
            o = F.scaled_dot_product_attention(q, rep(k), rep(v), is_causal=True)
        else:
            o = kv_cache.attend(0, q, k, v)
        return self.out(o.permute(0, 2, 1, 3).reshape(N, L, self.h * self.hd))
