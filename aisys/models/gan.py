"""A tiny GAN (Goodfellow et al. 2014) on low-dimensional toy data.

Two MLPs play a game: the discriminator D learns to tell real samples from generated ones, the
generator G learns to make D call its samples real. Losses are binary cross-entropy on D's logits,
with the non-saturating generator loss −log D(G(z)).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..framework import nn, optim
from ..framework.nn import functional as F
from ..framework.tensor import Tensor, no_grad
from .progress import ProgressBar

__all__ = ["GAN", "train_gan"]


class GAN(nn.Module):
    """``generator``: noise (N, noise_dim) -> samples (N, data_dim); ``discriminator``: samples -> logits (N, 1)."""

    def __init__(self, data_dim: int = 1, noise_dim: int = 4, hidden: int = 32):
        super().__init__()
        self.data_dim, self.noise_dim = data_dim, noise_dim
        self.generator = nn.Sequential(nn.Linear(noise_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                       nn.Linear(hidden, data_dim))
        self.discriminator = nn.Sequential(nn.Linear(data_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                           nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def noise(self, n: int, rng: np.random.Generator) -> Tensor:
        return Tensor(rng.standard_normal((n, self.noise_dim)).astype(np.float32))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        with no_grad():
            return self.generator(self.noise(n, np.random.default_rng(seed)))._data.copy()

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)


def _sampler(data) -> Callable[[int, np.random.Generator], np.ndarray]:
    if callable(data):
        return data
    arr = np.asarray(data, np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    return lambda n, rng: arr[rng.integers(0, len(arr), n)]


def train_gan(gan: GAN, data, steps: int = 300, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
              progress: bool = True) -> dict:
    """Alternate one discriminator and one generator Adam step (betas (0.5, 0.999), as DCGAN).
    ``data``: an array of real samples (rows) or ``fn(n, rng) -> (n, data_dim)``. Returns per-step losses."""
    rng = np.random.default_rng(seed)
    sample_real = _sampler(data)
    opt_d = optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_g = optim.Adam(gan.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    ones = Tensor(np.ones((batch_size, 1), np.float32))
    zeros = Tensor(np.zeros((batch_size, 1), np.float32))
    hist = {"d_loss": [], "g_loss": []}
    with ProgressBar(steps, desc="gan", enabled=progress) as bar:
        for _ in range(steps):
            real = Tensor(np.asarray(sample_real(batch_size, rng), np.float32).reshape(batch_size, -1))
            fake = gan.generator(gan.noise(batch_size, rng))
            d_loss = (F.binary_cross_entropy_with_logits(gan.discriminator(real), ones)
                      + F.binary_cross_entropy_with_logits(gan.discriminator(fake.detach()), zeros))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = F.binary_cross_entropy_with_logits(gan.discriminator(fake), ones)
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            hist["d_loss"].append(float(d_loss._data))
            hist["g_loss"].append(float(g_loss._data))
            bar.update(d=hist["d_loss"][-1], g=hist["g_loss"][-1])
    return hist
