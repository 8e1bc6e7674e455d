"""``aisys.data``: Dataset, TensorDataset, Subset, random_split and DataLoader (PyTorch's names).

A DataLoader turns a dataset into mini-batches: it draws an index order (shuffled from a seeded
generator, so runs repeat exactly), cuts it into batches, and collates each batch's samples into
tensors. For in-memory TensorDatasets a batch is one numpy fancy-index per tensor instead of a
Python loop over samples, which is what keeps small models' training fast.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor, _Generator

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "DataLoader", "default_collate"]


class Dataset:
    """A map-style dataset: ``__getitem__(i)`` returns one sample, ``__len__`` the number of samples."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")


class TensorDataset(Dataset):
    """Samples are rows of tensors that share their first dimension: ``ds[i] = (x[i], y[i])``."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        n = tensors[0].shape[0] if tensors[0].ndim else None
        for i, t in enumerate(tensors):
            if t.ndim == 0 or t.shape[0] != n:
                raise ValueError(f"TensorDataset: all tensors must share their first (sample) dimension; tensor 0 has "
                                 f"shape {tuple(tensors[0].shape)}, tensor {i} has {tuple(t.shape)}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(Tensor._wrap(t._data[index]) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def _batch(self, indices: np.ndarray):
        return tuple(Tensor._wrap(t._data[indices]) for t in self.tensors)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index):
        if isinstance(index, (list, np.ndarray)):
            return [self.dataset[int(self.indices[i])] for i in index]
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def _batch(self, indices: np.ndarray):
        inner = getattr(self.dataset, "_batch", None)
        return None if inner is None else inner(self.indices[indices])


def _rng(generator) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator, or None (aisys's global one: aisys.manual_seed)."""
    if generator is None:
        return _Generator.rng
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    if isinstance(getattr(generator, "rng", None), np.random.Generator):     # an aisys.Generator
        return generator.rng
    raise TypeError(f"generator must be an int seed, a numpy.random.Generator or None, got {type(generator).__name__}")


def random_split(dataset: Dataset, lengths: Sequence, generator=None) -> list[Subset]:
    """Split into non-overlapping Subsets of the given lengths (or fractions summing to 1, as torch:
    the remainder of the floors goes round-robin to the first splits)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0):
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if any(not isinstance(x, (int, np.integer)) or x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} must be non-negative ints summing to the dataset's "
                         f"{n} samples (or fractions summing to 1)")
    perm = _rng(generator).permutation(n)
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, perm[start:start + k]))
        start += k
    return out


def default_collate(samples: list):
    """Stack a list of samples into a batch: tuples collate field by field, Tensors and numpy arrays are
    stacked, Python ints become int64 and floats float32 (torch's rules, simplified)."""
    first = samples[0]
    if isinstance(first, Tensor):
        return Tensor._wrap(np.stack([s._data for s in samples]))
    if isinstance(first, np.ndarray):
        return Tensor(np.stack(samples))
    if isinstance(first, (bool, np.bool_)):
        return Tensor(np.asarray(samples, np.bool_))
    if isinstance(first, (int, np.integer)):
        return Tensor(np.asarray(samples, np.int64))
    if isinstance(first, (float, np.floating)):
        return Tensor(np.asarray(samples, np.float32))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: samples in a batch have different numbers of fields")
        return tuple(default_collate(list(field)) for field in zip(*samples))
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; pass collate_fn=")


class DataLoader:
    """Iterate over ``dataset`` in batches.

    ``shuffle=True`` draws a new order every epoch from ``generator``: an int seed (the same sequence of
    epochs on every run), a numpy Generator, or None for aisys's global generator (``aisys.manual_seed``).
    Differs from torch: no worker processes or samplers (everything here fits in memory); ``num_workers``,
    ``pin_memory`` and the other process options are accepted so PyTorch scripts run, and load in-process.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn: Callable | None = None, generator=None, *, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = False, prefetch_factor=None, timeout: float = 0, worker_init_fn=None):
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers={num_workers!r} must be a non-negative int")
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size={batch_size!r} must be a positive int")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must define __len__ and __getitem__, got {type(dataset).__name__}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, int(batch_size), shuffle, drop_last
        self.collate_fn = collate_fn
        self._rng = _rng(generator) if generator is not None else None

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return (self._rng if self._rng is not None else _Generator.rng).permutation(n)

    def __iter__(self):
        order = self._order()
        fast = self.collate_fn is None and hasattr(self.dataset, "_batch")
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = self.dataset._batch(idx) if fast else None
            if batch is None:
                samples = [self.dataset[int(i)] for i in idx]
                batch = (self.collate_fn or default_collate)(samples)
            yield batch

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, {len(self)} batches)")
