"""L1 — the application layer: small models that train in seconds on a CPU, and their data.

    from aisys import models
    train = aisys.data.DataLoader(models.datasets.digits("train"), 32, shuffle=True, generator=0)
    net = models.LeNet(image_size=8)
    history = models.train_classifier(net, train, epochs=5, lr=3e-3)

Models: MLP, LeNet, CharLSTM (character language model), TinyGPT, GAN, TinyDiffusion and a REINFORCE
agent on the Corridor environment. Datasets ship in ``aisys/models/data`` or are generated from a seed.
``lenet_layers()`` is LeNet traced and lowered to the simulated chip's layer records.
"""
from __future__ import annotations

from . import datasets
from .datasets import digits, moons, ring_of_gaussians, sine_sequences, spirals, tiny_corpus
from .diffusion import TinyDiffusion, train_diffusion
from .gan import GAN, train_gan
from .gpt import Block, TinyGPT
from .lenet import LeNet
from .lstm_lm import CharLSTM, CharVocab, lm_batch, sample_text, train_language_model
from .mlp import MLP
from .progress import ProgressBar, progress
from .rl import Corridor, PolicyNet, greedy_return, reinforce
from .training import History, accuracy, make_optimizer, train_classifier
from .workloads import lenet_graph, lenet_layers

__all__ = ["datasets", "digits", "moons", "spirals", "ring_of_gaussians", "sine_sequences", "tiny_corpus", "MLP",
           "LeNet", "CharVocab", "CharLSTM", "lm_batch", "train_language_model", "sample_text", "Block", "TinyGPT",
           "GAN", "train_gan", "TinyDiffusion", "train_diffusion", "Corridor", "PolicyNet", "reinforce",
           "greedy_return", "History", "accuracy", "make_optimizer", "train_classifier", "ProgressBar", "progress",
           "lenet_graph", "lenet_layers"]
