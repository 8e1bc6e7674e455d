"""Trained digits models shared by the compression tests (trained once per test session, nothing cached on disk).

The recipes are those of tests/models/test_train_digits.py, shortened where the margin allows: the MLP
64-128-10 (10 epochs) and LeNet with 16/32 channels on the native 8×8 images (12 epochs), seeded.
"""
from __future__ import annotations

import copy

import pytest

import aisys
from aisys import optim
from aisys.framework.data import DataLoader
from aisys.models import LeNet, MLP, accuracy, digits, train_classifier


def _train(model, epochs):
    aisys.manual_seed(0)
    loader = DataLoader(digits("train"), 32, shuffle=True, generator=0)
    train_classifier(model, loader, epochs=epochs, lr=3e-3, progress=False,
                     scheduler=lambda opt: optim.CosineAnnealingLR(opt, epochs))
    model.eval()
    return model


@pytest.fixture
def digits_data():
    """(train loader, 4 calibration batches = 512 training samples, test batch (x, y) of all 360); fresh for
    every test, so no test depends on how far another one advanced a loader's shuffling."""
    train = DataLoader(digits("train"), 32, shuffle=True, generator=0)
    calib = DataLoader(digits("train"), 128, shuffle=True, generator=1)
    x, y = next(iter(DataLoader(digits("test"), 360)))
    return train, [b for _, b in zip(range(4), calib)], (x, y)


@pytest.fixture(scope="session")
def _trained():
    aisys.manual_seed(0)
    mlp = _train(MLP([64, 128, 10]), 10)
    aisys.manual_seed(0)
    lenet = _train(LeNet(image_size=8, channels=(16, 32)), 12)
    return {"mlp": mlp, "lenet": lenet}


@pytest.fixture
def trained(_trained):
    """Fresh copies of the trained models (a test may change its copy)."""
    return {k: copy.deepcopy(v) for k, v in _trained.items()}


def test_accuracy(model, batch) -> float:
    x, y = batch
    return accuracy(model, [(x, y)])


test_accuracy.__test__ = False
