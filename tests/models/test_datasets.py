"""Shipped and generated datasets: shapes, the fixed digits split, resizing, determinism, licensing."""
from __future__ import annotations

import numpy as np
import pytest

from aisys.models import datasets
from aisys.models.datasets import DATA_DIR


def test_digits_split_is_fixed_stratified_and_disjoint():
    x_tr, y_tr = datasets.digits_arrays("train")
    x_te, y_te = datasets.digits_arrays("test")
    assert x_tr.shape == (1437, 8, 8) and x_te.shape == (360, 8, 8)
    assert x_tr.dtype == np.float32 and 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    assert np.bincount(y_te, minlength=10).min() >= 34                # ≈36 per class in the test set
    all_x, all_y = datasets.digits_arrays("all")
    assert len(all_y) == 1797 and np.bincount(all_y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # disjoint: every image lands in exactly one split (match rows of the full set)
    key = lambda a: {r.tobytes() for r in (a * 16).round().astype(np.uint8).reshape(len(a), -1)}
    assert len(key(x_tr) | key(x_te)) == len(key(all_x))
    again, _ = datasets.digits_arrays("test")
    np.testing.assert_array_equal(again, x_te)                         # same seed, same split
    other, _ = datasets.digits_arrays("test", seed=1)
    assert not np.array_equal(other, x_te)


def test_digits_dataset_normalize_flatten_and_28x28():
    ds = datasets.digits("train")
    x, y = ds[0]
    assert x.shape == (1, 8, 8) and y.dtype.name == "int64"
    allx = ds.tensors[0].numpy()
    assert abs(allx.mean()) < 0.05 and abs(allx.std() - 1.0) < 0.05    # standardized
    flat = datasets.digits("test", flatten=True, normalize=False)
    assert flat.tensors[0].shape == (360, 64) and flat.tensors[0].numpy().max() <= 1.0
    big = datasets.digits("test", size=28, normalize=False)
    assert big.tensors[0].shape == (360, 1, 28, 28)
    np.testing.assert_allclose(big.tensors[0].numpy().mean((1, 2, 3)), flat.tensors[0].numpy().mean(1), atol=0.02)


def test_resize_bilinear_closed_forms():
    const = np.full((1, 8, 8), 0.7, np.float32)
    np.testing.assert_allclose(datasets.resize_images(const, 28), 0.7, rtol=1e-6)      # constants stay constant
    ramp = np.tile(np.arange(4, dtype=np.float32), (1, 4, 1))                          # x-ramp 0..3
    up = datasets.resize_images(ramp, 8)
    # align_corners=False: output pixel j samples (j + ½)/2 − ½, clamped to [0, 3]
    expected = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(up[0, 0], expected, rtol=1e-6)
    near = datasets.resize_images(ramp, 8, mode="nearest")
    assert near[0, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="mode"):
        datasets.resize_images(ramp, 8, mode="cubic")


def test_toy_sets_are_seeded_and_shaped():
    a, b = datasets.moons(100, seed=3), datasets.moons(100, seed=3)
    np.testing.assert_array_equal(a.tensors[0].numpy(), b.tensors[0].numpy())
    assert a.tensors[0].shape == (100, 2) and sorted(np.unique(a.tensors[1].numpy()).tolist()) == [0, 1]
    sp = datasets.spirals(300, classes=3)
    assert sp.tensors[0].shape == (300, 2) and np.bincount(sp.tensors[1].numpy()).tolist() == [100, 100, 100]
    ring = datasets.ring_of_gaussians(400, modes=8, radius=2.0)
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1).mean(), 2.0, atol=0.05)
    seq = datasets.sine_sequences(4, seq_len=10)
    x, y = seq.tensors
    assert x.shape == (4, 10, 1)
    np.testing.assert_array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])          # target = next input


def test_shipped_files_and_license():
    assert (DATA_DIR / "digits.npz").stat().st_size < 100_000
    lic = (DATA_DIR / "DIGITS_LICENSE.txt").read_text()
    assert "CC BY 4.0" in lic and "Alpaydin" in lic and "Kaynak" in lic
    text = datasets.tiny_corpus()
    assert 1000 < len(text) < 10_000 and "tensor" in text
    with np.load(DATA_DIR / "digits.npz", allow_pickle=False) as f:
        assert f["images"].dtype == np.uint8 and f["images"].max() == 16
