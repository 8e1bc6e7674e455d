"""Smoke tests for the sequence, generative and RL models: seeded, a few seconds each, and each checks
that learning happened (loss falls, samples move toward the data, the agent finds the goal)."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import models
from aisys.models import datasets
from aisys.models.progress import ProgressBar, progress


@pytest.fixture(scope="module")
def corpus():
    text = datasets.tiny_corpus()
    vocab = models.CharVocab(text)
    return text, vocab, vocab.encode(text)


def test_char_vocab_round_trip(corpus):
    text, vocab, ids = corpus
    assert vocab.decode(ids) == text and ids.dtype == np.int64
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("∑")


def test_lstm_language_model_loss_falls(corpus):
    _, vocab, ids = corpus
    aisys.manual_seed(0)
    lm = models.CharLSTM(len(vocab), embed_dim=16, hidden_size=64)
    losses = models.train_language_model(lm, ids, steps=40, seq_len=16, batch_size=16, lr=1e-2, progress=False)
    assert losses[0] == pytest.approx(np.log(len(vocab)), rel=0.1)       # starts near uniform guessing
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    text = models.sample_text(lm, vocab, "the ", length=20, seed=0)
    assert text.startswith("the ") and len(text) == 24
    assert text == models.sample_text(lm, vocab, "the ", length=20, seed=0)   # seeded sampling


def test_tiny_gpt_loss_falls_and_generates(corpus):
    _, vocab, ids = corpus
    aisys.manual_seed(0)
    gpt = models.TinyGPT(len(vocab), block_size=16, n_embd=32, n_head=2, n_layer=2)
    losses = models.train_language_model(gpt, ids, steps=40, seq_len=16, batch_size=16, lr=3e-3, progress=False)
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5])
    out = gpt.generate(aisys.tensor(ids[None, :5]), max_new_tokens=20, top_k=5, seed=0)
    assert out.shape == (1, 25) and out.numpy()[0, :5].tolist() == ids[:5].tolist()
    with pytest.raises(ValueError, match="block_size"):
        gpt(aisys.tensor(np.zeros((1, 17), np.int64)))


def test_tiny_gpt_is_causal():
    aisys.manual_seed(0)
    gpt = models.TinyGPT(10, block_size=8)
    a = gpt(aisys.tensor(np.array([[1, 2, 3, 4, 5, 6]]))).numpy()
    b = gpt(aisys.tensor(np.array([[1, 2, 3, 9, 9, 9]]))).numpy()
    np.testing.assert_allclose(a[0, :3], b[0, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[0, 3:], b[0, 3:])


def test_gan_moves_samples_to_the_data():
    aisys.manual_seed(0)
    gan = models.GAN(data_dim=1, noise_dim=4, hidden=32)
    real = lambda n, rng: rng.normal(3.0, 0.5, (n, 1))
    before = gan.sample(500).mean()
    hist = models.train_gan(gan, real, steps=150, progress=False)
    after = gan.sample(500)
    assert abs(before - 3.0) > 2.0 and abs(after.mean() - 3.0) < 0.5
    assert len(hist["d_loss"]) == 150 and np.isfinite(hist["g_loss"]).all()


def test_diffusion_loss_falls_and_samples_resemble_moons():
    aisys.manual_seed(0)
    data = datasets.moons(1000, noise=0.05).tensors[0].numpy()
    dm = models.TinyDiffusion(data_dim=2, hidden=64, timesteps=50)
    assert dm.alpha_bars[-1] < 0.01                                    # the chain ends near pure noise
    losses = models.train_diffusion(dm, data, steps=250, progress=False)
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:20])
    s = dm.sample(500, seed=0)
    np.testing.assert_allclose(s.mean(0), data.mean(0), atol=0.2)
    np.testing.assert_allclose(s.std(0), data.std(0), atol=0.2)


def test_reinforce_learns_the_corridor():
    aisys.manual_seed(0)
    env = models.Corridor()
    policy = models.PolicyNet(env.n_states)
    returns = models.reinforce(env, policy, episodes=120, lr=3e-2, seed=0, progress=False)
    best = 1.0 - (env.length - 1) * env.step_penalty                  # walk straight right
    assert np.mean(returns[:20]) < best - 0.1
    assert models.greedy_return(env, policy) == pytest.approx(best)


def test_corridor_rules():
    env = models.Corridor(length=3, max_steps=2)
    obs, _ = env.reset()
    assert obs.tolist() == [1, 0, 0]
    obs, r, term, trunc, _ = env.step(0)                 # bump into the left wall
    assert obs.tolist() == [1, 0, 0] and not term and not trunc and r == pytest.approx(-0.01)
    obs, r, term, trunc, _ = env.step(1)
    assert trunc and not term                             # out of steps
    env.reset()
    env.step(1)
    _, r, term, _, _ = env.step(1)
    assert term and r == pytest.approx(0.99)
    with pytest.raises(ValueError, match="action"):
        env.step(2)


def test_progress_bar_draws_and_can_be_disabled(monkeypatch):
    import io
    buf = io.StringIO()
    with ProgressBar(4, desc="train", file=buf) as bar:
        for _ in range(4):
            bar.update(loss=0.5)
    out = buf.getvalue()
    assert "\r" in out and "[" + "#" * 24 + "] 4/4" in out and "loss 0.5" in out and out.endswith("\n")
    buf = io.StringIO()
    with ProgressBar(3, file=buf, enabled=False) as bar:
        bar.update()
    assert buf.getvalue() == ""
    monkeypatch.setenv("AISYS_PROGRESS", "0")
    buf = io.StringIO()
    with ProgressBar(3, file=buf) as bar:
        bar.update()
    assert buf.getvalue() == ""
    assert list(progress(range(3), enabled=False)) == [0, 1, 2]
