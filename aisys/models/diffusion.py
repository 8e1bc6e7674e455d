"""A tiny denoising diffusion model (DDPM, Ho et al. 2020) on 2-D toy data.

Forward process: x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε with ᾱ_t = Π(1−β_s). A small MLP ε_θ(x_t, t) learns to
predict the noise ε (mean-squared error); sampling runs the reverse chain from pure noise:
x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε_θ)/√α_t + √β_t·z.
"""
from __future__ import annotations

import numpy as np

from ..framework import nn, optim
from ..framework.nn import functional as F
from ..framework.ops import cat
from ..framework.tensor import Tensor, no_grad
from .progress import ProgressBar

__all__ = ["TinyDiffusion", "train_diffusion"]


def timestep_embedding(t: np.ndarray, dim: int) -> np.ndarray:
    """Sinusoidal embedding of integer timesteps (the transformer's position code), (N, dim) float32."""
    half = dim // 2
    freqs = np.exp(-np.log(10000.0) * np.arange(half) / max(half, 1))
    ang = np.asarray(t, np.float64)[:, None] * freqs[None]
    return np.concatenate([np.sin(ang), np.cos(ang)], 1).astype(np.float32)


class TinyDiffusion(nn.Module):
    """Noise predictor plus the DDPM schedule (linear β from ``beta_start`` to ``beta_end``)."""

    def __init__(self, data_dim: int = 2, hidden: int = 64, timesteps: int = 50, beta_start: float = 1e-3,
                 beta_end: float = 0.2, time_dim: int = 16):
        super().__init__()
        if timesteps < 2:
            raise ValueError(f"TinyDiffusion: timesteps={timesteps} must be at least 2")
        if not 0 < beta_start < beta_end < 1:
            raise ValueError(f"TinyDiffusion: need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
        self.data_dim, self.timesteps, self.time_dim = data_dim, timesteps, time_dim
        self.betas = np.linspace(beta_start, beta_end, timesteps)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = np.cumprod(self.alphas)
        self.net = nn.Sequential(nn.Linear(data_dim + time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, data_dim))

    def forward(self, x: Tensor, t: np.ndarray) -> Tensor:
        """Predicted noise ε_θ(x_t, t); ``t`` holds one integer timestep per row."""
        emb = Tensor._wrap(timestep_embedding(t, self.time_dim).astype(x._data.dtype))
        return self.net(cat([x, emb], 1))

    def noisy(self, x0: np.ndarray, t: np.ndarray, noise: np.ndarray) -> np.ndarray:
        ab = self.alpha_bars[t][:, None]
        return (np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * noise).astype(np.float32)

    def loss(self, x0: np.ndarray, rng: np.random.Generator) -> Tensor:
        t = rng.integers(0, self.timesteps, len(x0))
        noise = rng.standard_normal(x0.shape).astype(np.float32)
        return F.mse_loss(self(Tensor(self.noisy(x0, t, noise)), t), Tensor(noise))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, self.data_dim)).astype(np.float32)
        with no_grad():
            for t in reversed(range(self.timesteps)):
                eps = self(Tensor(x), np.full(n, t))._data
                b, a, ab = self.betas[t], self.alphas[t], self.alpha_bars[t]
                x = (x - b / np.sqrt(1.0 - ab) * eps) / np.sqrt(a)
                if t > 0:
                    x = x + np.sqrt(b) * rng.standard_normal(x.shape)
                x = x.astype(np.float32)
        return x


def train_diffusion(model: TinyDiffusion, data: np.ndarray, steps: int = 500, batch_size: int = 128,
                    lr: float = 3e-3, seed: int = 0, progress: bool = True) -> list[float]:
    """Adam on the noise-prediction loss over random batches of ``data`` rows; returns each step's loss."""
    data = np.asarray(data, np.float32)
    rng = np.random.default_rng(seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    with ProgressBar(steps, desc="diffusion", enabled=progress) as bar:
        for _ in range(steps):
            loss = model.loss(data[rng.integers(0, len(data), batch_size)], rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss._data))
            bar.update(loss=losses[-1])
    return losses
