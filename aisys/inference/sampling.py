"""Choosing the next token from the logits: greedy, temperature, top-k and top-p (nucleus) sampling.

    p = softmax(logits / temperature)      temperature = 0 means greedy: the argmax, no randomness
    top-k: keep the k most likely tokens (and any tied with the k-th); top-p: keep the smallest set of the
    most likely tokens whose probabilities add up to at least p (Holtzman et al. 2020); renormalize, draw.

Every sampler owns a seeded numpy Generator and draws exactly one uniform number per sampled token, so the
same seed gives the same tokens whether a request runs alone (``generate``) or inside a batch (``Engine``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Sampler"]


class Sampler:
    """``sampler(logits)`` → token id(s). ``logits`` (vocab,) gives an int; (rows, vocab) gives one id per row,
    drawn in row order from the one generator."""

    def __init__(self, temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
                 seed: int = 0):
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
                not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature={temperature!r} must be a number >= 0 (0 means greedy decoding)")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"top_k={top_k!r} must be None or an int >= 1 (how many of the most likely tokens "
                             f"to keep)")
        if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or
                                  not 0.0 < top_p <= 1.0):
            raise ValueError(f"top_p={top_p!r} must be None or in (0, 1] (the probability mass of the most likely "
                             f"tokens to keep)")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed={seed!r} must be an int")
        self.temperature, self.top_k, self.top_p, self.seed = float(temperature), top_k, top_p, int(seed)
        self.rng = np.random.default_rng(self.seed)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def probs(self, logits) -> np.ndarray:
        """The distribution a token is drawn from (float64, rows sum to 1); one-hot at the argmax when greedy."""
        x = np.asarray(logits, np.float64)
        if self.greedy:
            out = np.zeros_like(x)
            np.put_along_axis(out, np.argmax(x, axis=-1)[..., None], 1.0, axis=-1)
            return out
        x = x / self.temperature
        if self.top_k is not None and self.top_k < x.shape[-1]:
            kth = -np.partition(-x, self.top_k - 1, axis=-1)[..., self.top_k - 1:self.top_k]
            x = np.where(x < kth, -np.inf, x)
        p = np.exp(x - x.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        if self.top_p is not None and self.top_p < 1.0:
            order = np.argsort(-p, axis=-1, kind="stable")
            sorted_p = np.take_along_axis(p, order, axis=-1)
            before = np.cumsum(sorted_p, axis=-1) - sorted_p          # mass of the more likely tokens
            keep_sorted = before < self.top_p                          # the token that crosses p is kept
            keep = np.zeros_like(keep_sorted)
            np.put_along_axis(keep, order, keep_sorted, axis=-1)
            p = np.where(keep, p, 0.0)
            p /= p.sum(axis=-1, keepdims=True)
        return p

    def __call__(self, logits):
        x = np.asarray(logits)
        if x.ndim not in (1, 2) or x.shape[-1] == 0:
            raise ValueError(f"Sampler: logits must be (vocab,) or (rows, vocab), got shape {x.shape}")
        if self.greedy:
            ids = np.argmax(x, axis=-1)
            return int(ids) if x.ndim == 1 else ids.astype(np.int64)
        p = np.atleast_2d(self.probs(x))
        u = self.rng.random(p.shape[0])
        cdf = np.cumsum(p, axis=-1)
        ids = np.array([min(int(np.searchsorted(c, ui * c[-1], side="right")), len(c) - 1) for c, ui in zip(cdf, u)],
                       np.int64)
        return int(ids[0]) if x.ndim == 1 else ids

    def __repr__(self) -> str:
        if self.greedy:
            return "Sampler(greedy)"
        return f"Sampler(temperature={self.temperature:g}, top_k={self.top_k}, top_p={self.top_p}, seed={self.seed})"
