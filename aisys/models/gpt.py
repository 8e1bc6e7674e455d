"""TinyGPT: a decoder-only transformer (Radford et al. 2018) small enough to train on a CPU in seconds.

token + position embeddings → n_layer × [x + attn(ln1(x)), x + mlp(ln2(x))] (pre-norm blocks, causal
self-attention, GELU MLP of width 4·n_embd) → layer norm → linear head to vocabulary logits.
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

    def forward(self, x: Tensor) -> Tensor:
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, need_weights=False, is_causal=True)
        x = x + a
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """``logits = model(ids (N, L))`` with L ≤ block_size; logits (N, L, vocab_size)."""

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

    def forward(self, ids: Tensor) -> Tensor:
        if not isinstance(ids, Tensor) or ids.ndim != 2:
            raise TypeError(f"TinyGPT expects token ids (N, L) as an int64 Tensor, got "
                            f"{getattr(ids, 'shape', type(ids).__name__)}")
        N, L = ids.shape
        if L > self.block_size:
            raise ValueError(f"TinyGPT: sequence length {L} exceeds block_size={self.block_size}; crop the context "
                             f"to its last {self.block_size} tokens")
        pos = Tensor._wrap(np.arange(L, dtype=np.int64))
        x = self.drop(self.tok_emb(ids) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def loss(self, ids: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(self(ids).reshape(-1, self.vocab_size), targets.reshape(-1))

    def generate(self, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 seed: int = 0) -> Tensor:
        """Append ``max_new_tokens`` sampled tokens to each row of ``ids`` (re-running the cropped context
        every step: no KV cache, to keep the model readable)."""
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
