"""aisys.data: datasets, seeded shuffling, batching, collation and splits."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys.framework.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split


def make_ds(n=10):
    x = aisys.tensor(np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    y = aisys.tensor(np.arange(n))
    return TensorDataset(x, y)


def order_of(loader):
    return np.concatenate([y.numpy() for _, y in loader])


def test_tensor_dataset_items_and_length_check():
    ds = make_ds()
    x, y = ds[3]
    assert x.tolist() == [6.0, 7.0] and y.item() == 3 and len(ds) == 10
    with pytest.raises(ValueError, match="first \\(sample\\) dimension"):
        TensorDataset(aisys.zeros(3, 2), aisys.zeros(4))


def test_batches_len_and_drop_last():
    ds = make_ds(10)
    loader = DataLoader(ds, batch_size=4)
    sizes = [len(y) for _, y in loader]
    assert sizes == [4, 4, 2] and len(loader) == 3
    assert order_of(loader).tolist() == list(range(10))
    dl = DataLoader(ds, batch_size=4, drop_last=True)
    assert [len(y) for _, y in dl] == [4, 4] and len(dl) == 2
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 2) and xb.dtype is aisys.float32 and yb.dtype is aisys.int64


def test_seeded_shuffle_is_deterministic_and_a_permutation_per_epoch():
    ds = make_ds(50)
    a = DataLoader(ds, batch_size=8, shuffle=True, generator=7)
    b = DataLoader(ds, batch_size=8, shuffle=True, generator=7)
    ea1, ea2 = order_of(a), order_of(a)
    eb1, eb2 = order_of(b), order_of(b)
    np.testing.assert_array_equal(ea1, eb1)                    # same seed: same sequence of epochs
    np.testing.assert_array_equal(ea2, eb2)
    assert not np.array_equal(ea1, ea2)                        # a new order every epoch
    assert sorted(ea1.tolist()) == list(range(50))             # each sample exactly once
    assert not np.array_equal(ea1, order_of(DataLoader(ds, batch_size=8, shuffle=True, generator=8)))
    # the global generator: aisys.manual_seed makes generator=None reproducible too
    aisys.manual_seed(3)
    g1 = order_of(DataLoader(ds, batch_size=8, shuffle=True))
    aisys.manual_seed(3)
    g2 = order_of(DataLoader(ds, batch_size=8, shuffle=True))
    np.testing.assert_array_equal(g1, g2)


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full(2, i, np.float32), "y": i * i, "w": float(i) / 2}


def test_default_collate_dicts_arrays_ints_floats():
    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    assert batch["x"].shape == (3, 2) and batch["y"].tolist() == [0, 1, 4]
    assert batch["y"].dtype is aisys.int64 and batch["w"].dtype is aisys.float32
    assert default_collate([(1, 2.0), (3, 4.0)])[0].tolist() == [1, 3]
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object(), object()])
    custom = DataLoader(Squares(), batch_size=2, collate_fn=lambda s: len(s))
    assert list(custom) == [2, 2, 1]


def test_random_split_lengths_fractions_and_disjointness():
    ds = make_ds(10)
    a, b = random_split(ds, [7, 3], generator=0)
    ia = [int(a[i][1].item()) for i in range(len(a))]
    ib = [int(b[i][1].item()) for i in range(len(b))]
    assert len(a) == 7 and len(b) == 3 and sorted(ia + ib) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=0)
    assert a2.indices.tolist() == a.indices.tolist()
    parts = random_split(make_ds(11), [0.5, 0.3, 0.2], generator=1)     # torch: floors, remainder round-robin
    assert [len(p) for p in parts] == [6, 3, 2]
    with pytest.raises(ValueError, match="summing to the dataset's 10"):
        random_split(ds, [5, 4])


def test_subset_fast_path_equals_item_by_item():
    ds = make_ds(12)
    sub = Subset(ds, [11, 3, 5, 7, 0])
    fast = list(DataLoader(sub, batch_size=2))
    slow = list(DataLoader(sub, batch_size=2, collate_fn=default_collate))
    for (fx, fy), (sx, sy) in zip(fast, slow):
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())
    assert order_of(DataLoader(sub, batch_size=2)).tolist() == [11, 3, 5, 7, 0]


def test_loader_errors():
    with pytest.raises(ValueError, match="batch_size=0"):
        DataLoader(make_ds(), batch_size=0)
    with pytest.raises(TypeError, match="generator"):
        DataLoader(make_ds(), shuffle=True, generator="seed")
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(42)
