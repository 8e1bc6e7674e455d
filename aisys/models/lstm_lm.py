"""A character-level LSTM language model on the shipped tiny corpus.

The model reads characters one by one and predicts the next: embedding → LSTM → linear to
vocabulary logits, trained with cross-entropy on every position (teacher forcing).
"""
from __future__ import annotations

import numpy as np

from ..framework import nn, optim
from ..framework.nn import functional as F
from ..framework.nn.utils import clip_grad_norm_
from ..framework.tensor import Tensor, no_grad
from .progress import ProgressBar

__all__ = ["CharVocab", "CharLSTM", "lm_batch", "train_language_model", "sample_text"]


class CharVocab:
    """Maps characters to ids 0..V−1 (sorted, so the mapping is the same on every run) and back."""

    def __init__(self, text: str):
        if not text:
            raise ValueError("CharVocab needs a non-empty text")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        missing = sorted(set(text) - set(self.index))
        if missing:
            raise ValueError(f"CharVocab.encode: characters {missing} are not in the vocabulary of {len(self)}")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        ids = ids._data if isinstance(ids, Tensor) else ids
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


class CharLSTM(nn.Module):
    """``logits, state = model(ids (N, L), state=None)`` with logits (N, L, vocab_size)."""

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_size: int = 128, num_layers: int = 1):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: Tensor, state=None):
        h, state = self.lstm(self.embed(ids), state)
        return self.head(h), state

    def loss(self, ids: Tensor, targets: Tensor) -> Tensor:
        logits, _ = self(ids)
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))


def lm_batch(tokens: np.ndarray, seq_len: int, batch_size: int, rng: np.random.Generator):
    """Random windows of ``seq_len + 1`` tokens: inputs are the first seq_len, targets the next ones."""
    if len(tokens) <= seq_len + 1:
        raise ValueError(f"lm_batch: the text has {len(tokens)} tokens, too few for windows of {seq_len + 1}")
    starts = rng.integers(0, len(tokens) - seq_len - 1, batch_size)
    win = np.stack([tokens[s:s + seq_len + 1] for s in starts])
    return Tensor(win[:, :-1].copy()), Tensor(win[:, 1:].copy())


def train_language_model(model: nn.Module, tokens: np.ndarray, steps: int = 200, seq_len: int = 32,
                         batch_size: int = 16, lr: float = 3e-3, seed: int = 0, clip: float | None = 1.0,
                         progress: bool = True) -> list[float]:
    """Adam on random windows; returns the loss of every step. ``model.loss(ids, targets)`` must exist
    (CharLSTM and TinyGPT both have it). Gradients are clipped to global norm ``clip``."""
    rng = np.random.default_rng(seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    with ProgressBar(steps, desc="train", enabled=progress) as bar:
        for _ in range(steps):
            x, y = lm_batch(tokens, seq_len, batch_size, rng)
            loss = model.loss(x, y)
            opt.zero_grad()
            loss.backward()
            if clip:
                clip_grad_norm_(model.parameters(), clip)
            opt.step()
            losses.append(float(loss._data))
            bar.update(loss=losses[-1])
    return losses


def sample_text(model: nn.Module, vocab: CharVocab, prompt: str, length: int = 100, temperature: float = 1.0,
                seed: int = 0) -> str:
    """Generate ``length`` characters after ``prompt`` by sampling the model's next-character distribution.
    Works with any model whose forward returns logits (N, L, V) first (CharLSTM, TinyGPT)."""
    if temperature <= 0:
        raise ValueError(f"sample_text: temperature={temperature} must be > 0")
    rng = np.random.default_rng(seed)
    was = model.training
    model.eval()
    ids = list(vocab.encode(prompt))
    block = getattr(model, "block_size", None)
    with no_grad():
        for _ in range(length):
            ctx = ids[-block:] if block else ids
            out = model(Tensor(np.array([ctx], np.int64)))
            logits = (out[0] if isinstance(out, tuple) else out)._data[0, -1].astype(np.float64) / temperature
            p = np.exp(logits - logits.max())
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    model.train(was)
    return vocab.decode(ids)
