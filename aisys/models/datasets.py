"""Small datasets that ship with aisys or are generated from a seed: nothing is downloaded.

- ``digits``: the UCI 8×8 handwritten digits (1,797 images; Alpaydin & Kaynak 1998, CC BY 4.0 —
  see data/DIGITS_LICENSE.txt), with a fixed seeded train/test split and optional upsampling to
  28×28 so MNIST-sized models (LeNet-5) run on it.
- ``moons``, ``spirals``, ``ring_of_gaussians``: 2-D toy sets for classifiers, GANs and diffusion.
- ``sine_sequences``: next-value prediction on noisy sine waves, for recurrent models.
- ``tiny_corpus``: a short English text written for this project, for character language models.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..framework.data import TensorDataset
from ..framework.tensor import Tensor

DATA_DIR = Path(__file__).resolve().parent / "data"

__all__ = ["digits", "digits_arrays", "resize_images", "moons", "spirals", "ring_of_gaussians", "sine_sequences",
           "tiny_corpus", "DATA_DIR", "DIGITS_MEAN", "DIGITS_STD"]


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATA_DIR / "digits.npz", allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def resize_images(images: np.ndarray, size: int, mode: str = "bilinear") -> np.ndarray:
    """Resize (N, H, W) images to (N, size, size). Bilinear uses pixel-centre alignment (torch's
    interpolate with align_corners=False): output pixel i samples input coordinate (i + ½)·H/size − ½."""
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"resize_images: mode={mode!r} must be 'bilinear' or 'nearest'")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"resize_images: size={size!r} must be a positive int")
    x = np.asarray(images, dtype=np.float32)
    N, H, W = x.shape
    if mode == "nearest":
        ri = np.minimum((np.arange(size) * H / size).astype(np.int64), H - 1)
        ci = np.minimum((np.arange(size) * W / size).astype(np.int64), W - 1)
        return x[:, ri][:, :, ci]

    def axis(n_in):
        pos = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    r0, r1, fr = axis(H)
    c0, c1, fc = axis(W)
    rows = x[:, r0] * (1 - fr)[None, :, None] + x[:, r1] * fr[None, :, None]          # (N, size, W)
    return rows[:, :, c0] * (1 - fc) + rows[:, :, c1] * fc


def digits_arrays(split: str = "train", seed: int = 0, size: int = 8, test_size: int = 360):
    """(images float32 (N, size, size) scaled to [0, 1], labels int64 (N,)) for one split.

    The split is stratified and seeded: each digit class gives the same share (≈20 %) to the test set, so
    the default 1,437/360 split is identical on every machine for a given ``seed``.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"digits: split={split!r} must be 'train', 'test' or 'all'")
    images, labels = _digits_raw()
    n = len(labels)
    if not 0 < test_size < n:
        raise ValueError(f"digits: test_size={test_size} must be between 1 and {n - 1}")
    rng = np.random.default_rng(seed)
    test_idx = []
    counts = np.bincount(labels, minlength=10)
    quota = np.floor(counts * test_size / n).astype(int)
    for i in np.argsort(-(counts * test_size / n - quota))[:test_size - quota.sum()]:
        quota[i] += 1                                   # largest remainders first: quotas sum to test_size
    for c in range(10):
        members = np.flatnonzero(labels == c)
        test_idx.append(rng.permutation(members)[:quota[c]])
    test_idx = np.sort(np.concatenate(test_idx))
    mask = np.zeros(n, bool)
    mask[test_idx] = True
    idx = {"train": np.flatnonzero(~mask), "test": test_idx, "all": np.arange(n)}[split]
    x = images[idx].astype(np.float32) / 16.0
    if size != 8:
        x = resize_images(x, size)
    return x, labels[idx].astype(np.int64)


DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760     # over all 1,797 images scaled to [0, 1]


def digits(split: str = "train", seed: int = 0, size: int = 8, flatten: bool = False, normalize: bool = True,
           test_size: int = 360) -> TensorDataset:
    """The UCI handwritten digits as a TensorDataset of (image, label int64).

    Images are (1, size, size) float32 (or flat (size·size,) with ``flatten=True``), standardized with the
    dataset's mean and std (``normalize=False`` keeps [0, 1]: zero-mean inputs train much faster);
    ``size=28`` upsamples bilinearly for MNIST-shaped models. Default split: 1,437 train / 360 test.
    """
    x, y = digits_arrays(split, seed, size, test_size)
    if normalize:
        x = (x - DIGITS_MEAN) / DIGITS_STD
    x = x.reshape(len(x), -1) if flatten else x[:, None]
    return TensorDataset(Tensor(np.ascontiguousarray(x)), Tensor(y))


def moons(n_samples: int = 200, noise: float = 0.1, seed: int = 0) -> TensorDataset:
    """Two interleaving half circles (the classic non-linearly-separable toy set): X (n, 2), y in {0, 1}."""
    rng = np.random.default_rng(seed)
    n0 = n_samples // 2
    n1 = n_samples - n0
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n1)
    X = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1), np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)])
    X = X + rng.normal(0.0, noise, X.shape)
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    perm = rng.permutation(n_samples)
    return TensorDataset(Tensor(X[perm].astype(np.float32)), Tensor(y[perm]))


def spirals(n_samples: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0) -> TensorDataset:
    """``classes`` interleaved spiral arms in 2-D (as in CS231n's toy example): X (n, 2), y in 0..classes−1."""
    rng = np.random.default_rng(seed)
    per = n_samples // classes
    X, y = [], []
    for c in range(classes):
        r = np.linspace(0.0, 1.0, per)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, per) + rng.normal(0.0, noise, per)
        X.append(np.stack([r * np.sin(t), r * np.cos(t)], 1))
        y.append(np.full(per, c, np.int64))
    X, y = np.concatenate(X), np.concatenate(y)
    perm = rng.permutation(len(y))
    return TensorDataset(Tensor(X[perm].astype(np.float32)), Tensor(y[perm]))


def ring_of_gaussians(n_samples: int = 512, modes: int = 8, radius: float = 2.0, std: float = 0.05,
                      seed: int = 0) -> np.ndarray:
    """Points from ``modes`` small Gaussians on a circle: the standard GAN toy (mode collapse is visible)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, modes, n_samples)
    ang = 2 * np.pi * k / modes
    centres = np.stack([radius * np.cos(ang), radius * np.sin(ang)], 1)
    return (centres + rng.normal(0.0, std, centres.shape)).astype(np.float32)


def sine_sequences(n_sequences: int = 64, seq_len: int = 32, noise: float = 0.0, seed: int = 0) -> TensorDataset:
    """Sine waves with random frequency and phase; the target at step t is the input at t+1.
    Inputs and targets are (n, seq_len, 1), batch-first."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.1, 0.3, (n_sequences, 1))
    phase = rng.uniform(0, 2 * np.pi, (n_sequences, 1))
    t = np.arange(seq_len + 1)[None, :]
    wave = np.sin(freq * t + phase) + rng.normal(0.0, noise, (n_sequences, seq_len + 1))
    wave = wave.astype(np.float32)[..., None]
    return TensorDataset(Tensor(np.ascontiguousarray(wave[:, :-1])), Tensor(np.ascontiguousarray(wave[:, 1:])))


def tiny_corpus() -> str:
    """A ~1.7 kB English text written for aisys-lab (plain words, repeated patterns a small model can learn)."""
    return (DATA_DIR / "tiny_corpus.txt").read_text(encoding="utf-8")
