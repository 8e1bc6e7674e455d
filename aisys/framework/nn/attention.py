"""Multi-head attention (Vaswani et al. 2017), with torch.nn.MultiheadAttention's parameters and call.

Each head attends in its own d = E/h dimensional subspace: project q, k, v with one packed
(3E, E) weight, split into h heads, run softmax(q·kᵀ/√d)·v per head, concatenate, project out.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..errors import ShapeError
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Linear
from .module import Module, Parameter

__all__ = ["MultiheadAttention"]


class MultiheadAttention(Module):
    """``attn_output, attn_weights = mha(query, key, value, ...)``.

    Masks follow torch.nn.MultiheadAttention: a bool ``attn_mask`` (L, S) or (N·heads, L, S) is True where
    attention is *not* allowed; a float mask is added to the scores; ``key_padding_mask`` (N, S) is True at
    padding keys. Differs from torch: ``is_causal=True`` alone builds the causal mask (torch also wants
    the mask passed as a hint), and there are no separate kdim/vdim projections.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, dtype=None):
        super().__init__()
        for name, v in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"MultiheadAttention: {name}={v!r} must be a positive int")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim={embed_dim} must be divisible by num_heads={num_heads} "
                             f"(each head gets embed_dim/num_heads features)")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout={dropout} must be a probability in [0, 1]")
        self.embed_dim, self.num_heads, self.head_dim = int(embed_dim), int(num_heads), embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        dt = (_dt.as_dtype(dtype) if dtype else _dt.default_float).np
        self.in_proj_weight = Parameter(np.zeros((3 * embed_dim, embed_dim), dt))
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dt))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _to_batch_first(self, t: Tensor, name: str, unbatched: bool) -> Tensor:
        if not isinstance(t, Tensor):
            raise TypeError(f"MultiheadAttention: {name} must be an aisys Tensor, got {type(t).__name__}")
        if t.ndim != (2 if unbatched else 3) or t.shape[-1] != self.embed_dim:
            layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
            raise ShapeError("multihead_attention", f"{name} must be {layout} (or unbatched (L, E)) with "
                             f"E={self.embed_dim}, got {tuple(t.shape)}", shapes=(t.shape,),
                             rule="batch_first=True means (batch, sequence, embedding)")
        if unbatched:
            return t.unsqueeze(0)
        return t if self.batch_first else t.transpose(0, 1)

    def _heads(self, t: Tensor) -> Tensor:
        N, L, _ = t.shape
        return t.reshape(N, L, self.num_heads, self.head_dim).permute(0, 2, 1, 3)      # (N, h, L, d)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        unbatched = isinstance(query, Tensor) and query.ndim == 2
        q = self._to_batch_first(query, "query", unbatched)
        k = q if key is query else self._to_batch_first(key, "key", unbatched)
        v = k if value is key else self._to_batch_first(value, "value", unbatched)
        N, L, E = q.shape
        S = k.shape[1]
        if k.shape[0] != N or v.shape[:2] != k.shape[:2]:
            raise ShapeError("multihead_attention", f"query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                             f"{tuple(value.shape)} must share the batch size, and key/value the length",
                             shapes=(query.shape, key.shape, value.shape))
        W, b = self.in_proj_weight, self.in_proj_bias
        if key is query and value is query:                      # self-attention: one packed projection
            qkv = F.linear(q, W, b)
            qp, kp, vp = qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
        else:
            part = (lambda i: None) if b is None else (lambda i: b[i * E:(i + 1) * E])
            qp = F.linear(q, W[:E], part(0))
            kp = F.linear(k, W[E:2 * E], part(1))
            vp = F.linear(v, W[2 * E:], part(2))
        allowed = self._allowed(attn_mask, key_padding_mask, N, L, S)
        additive = None
        if attn_mask is not None and not _is_bool(attn_mask):
            additive = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(N, self.num_heads, L, S)
        mask = allowed
        if additive is not None:
            mask = additive if allowed is None else additive + Tensor._wrap(
                np.where(allowed._data, 0.0, np.finfo(additive._data.dtype).min).astype(additive._data.dtype))
        out, probs = F._attention(self._heads(qp), self._heads(kp), self._heads(vp), mask,
                                  self.dropout if self.training else 0.0, is_causal)
        out = out.permute(0, 2, 1, 3).reshape(N, L, E)
        out = self.out_proj(out)
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = probs.mean(1) if average_attn_weights else probs
        return out, (weights.squeeze(0) if unbatched else weights)

    def _allowed(self, attn_mask, key_padding_mask, N, L, S):
        """One bool mask, True where attention is allowed, broadcastable to (N, heads, L, S)."""
        allowed = None
        if attn_mask is not None and _is_bool(attn_mask):
            m = attn_mask._data
            if m.shape == (L, S):
                allowed = ~m
            elif m.shape == (N * self.num_heads, L, S):
                allowed = ~m.reshape(N, self.num_heads, L, S)
            else:
                raise ShapeError("multihead_attention", f"attn_mask must be (L, S)=({L}, {S}) or "
                                 f"(N·heads, L, S)=({N * self.num_heads}, {L}, {S}), got {m.shape}", shapes=(m.shape,))
        if key_padding_mask is not None:
            kp = key_padding_mask._data if isinstance(key_padding_mask, Tensor) else np.asarray(key_padding_mask)
            if kp.shape != (N, S) or kp.dtype != np.bool_:
                raise ShapeError("multihead_attention", f"key_padding_mask must be a bool (N, S)=({N}, {S}) tensor, "
                                 f"got {kp.dtype} {kp.shape}", shapes=(kp.shape,))
            keep = ~kp.reshape(N, 1, 1, S)
            allowed = keep if allowed is None else (allowed & keep)
        return None if allowed is None else Tensor._wrap(np.ascontiguousarray(allowed))

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


def _is_bool(t) -> bool:
    return (t._data if isinstance(t, Tensor) else np.asarray(t)).dtype == np.bool_
