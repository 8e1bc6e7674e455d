"""Generation: the KV cache gives the same logits as re-running the whole sequence, at every step; its
bytes follow 2·layers·kv_heads·head_dim·seq·bytes; sampling is seeded; bad requests are refused."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import aisys
from aisys import inference, models
from aisys.framework.tensor import Tensor, no_grad
from aisys.inference import KVCache, KVSpec, Sampler, TensorKVCache, generate, kv_cache_bytes, measure_allocation
from tests.inference.models import TinyGQA


@pytest.fixture(scope="module")
def gpt():
    aisys.manual_seed(0)
    return models.TinyGPT(30, block_size=48, n_embd=32, n_head=4, n_layer=2)


def test_cached_logits_equal_the_full_forward_at_every_step(gpt):
    prompts = np.random.default_rng(0).integers(0, 30, (2, 7))
    for kw in ({}, {"temperature": 0.9, "top_k": 8, "seed": 3}, {"temperature": 1.3, "top_p": 0.8, "seed": 4}):
        ids, logits = generate(gpt, prompts, 25, return_logits=True, **kw)
        ids_nc, logits_nc = generate(gpt, prompts, 25, use_cache=False, return_logits=True, **kw)
        np.testing.assert_array_equal(ids, ids_nc)
        np.testing.assert_allclose(logits, logits_nc, rtol=1e-5, atol=1e-5)
        assert ids.shape == (2, 32) and logits.shape == (2, 25, 30)
        # and each step's logits are the model's own last-position logits on the sequence so far
        with no_grad():
            full = gpt(Tensor(ids[:, :-1])).numpy()
        np.testing.assert_allclose(logits, full[:, 6:], rtol=1e-5, atol=1e-5)


def test_a_float16_cache_halves_the_bytes_and_stays_close(gpt):
    p = np.arange(5)
    _, a = generate(gpt, p, 10, return_logits=True)
    _, b = generate(gpt, p, 10, return_logits=True, kv_dtype="float16")
    np.testing.assert_allclose(a, b, atol=5e-3)


def test_traceable_cache_gives_the_same_logits(gpt):
    """TensorKVCache (attention written with graph ops, past keys/values as Tensors) = the numpy cache."""
    ids = np.random.default_rng(1).integers(0, 30, (3, 9))
    spec = KVSpec.of(gpt)
    with no_grad():
        cache = KVCache(spec, batch=3, max_seq=9)
        gpt(Tensor(ids[:, :8]), kv_cache=cache)
        past = [(Tensor(cache.k[i, :, :, :8].copy()), Tensor(cache.v[i, :, :, :8].copy())) for i in range(spec.n_layer)]
        got = gpt(Tensor(ids[:, 8:]), kv_cache=TensorKVCache(past)).numpy()
        want = gpt(Tensor(ids)).numpy()[:, 8:]
        empty = [(Tensor(np.zeros((3, 4, 0, 8), np.float32)),) * 2 for _ in range(spec.n_layer)]
        prefill = gpt(Tensor(ids), kv_cache=TensorKVCache(empty)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prefill, gpt(Tensor(ids)).numpy(), rtol=1e-5, atol=1e-5)


def test_any_causal_model_with_the_protocol_generates_with_a_cache():
    aisys.manual_seed(2)
    m = TinyGQA()
    p = np.random.default_rng(2).integers(0, 20, (2, 6))
    a, la = generate(m, p, 20, return_logits=True, temperature=0.7, seed=1)
    b, lb = generate(m, p, 20, use_cache=False, return_logits=True, temperature=0.7, seed=1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(la, lb, rtol=1e-5, atol=1e-5)
    assert KVSpec.of(m).bytes_per_token("float32") == 2 * 1 * 2 * 4 * 4       # 2 kv heads, not 4
    with no_grad():                                                             # the traceable cache does GQA too
        cache = KVCache(KVSpec.of(m), 2, 7)
        m(Tensor(p), kv_cache=cache)
        got = m(Tensor(np.full((2, 1), 3)), kv_cache=TensorKVCache([(Tensor(cache.k[0, :, :, :6].copy()),
                                                                     Tensor(cache.v[0, :, :, :6].copy()))])).numpy()
        want = m(Tensor(np.concatenate([p, np.full((2, 1), 3)], 1))).numpy()[:, -1:]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_kv_bytes_formula_equals_the_measured_allocation():
    for spec, seq, batch, dtype in ((KVSpec(4, 8, 8, 32), 272, 1, "float32"), (KVSpec(2, 8, 2, 16), 100, 3, "float16"),
                                    (KVSpec(3, 4, 1, 64), 33, 2, aisys.float16)):
        cache, measured = measure_allocation(lambda: KVCache(spec, batch, seq, dtype))
        want = 2 * spec.n_layer * spec.n_kv_head * spec.head_dim * seq * batch * np.dtype(getattr(dtype, "np", dtype)).itemsize
        assert kv_cache_bytes(spec, seq, batch, dtype) == cache.nbytes == want
        assert want <= measured <= want + 4096            # a few hundred bytes of array headers
    cache = KVCache(KVSpec(1, 2, 2, 4), 1, 10)
    cache.begin(1, 6)
    assert cache.used_bytes == kv_cache_bytes(cache.spec, 6, 1, "float32")
    with pytest.raises(ValueError, match="KVCache is full"):
        cache.begin(1, 5)
    with pytest.raises(ValueError, match="multiple of n_kv_head"):
        KVSpec(2, 6, 4, 8)
    with pytest.raises(ValueError, match="not supported"):
        KVCache(KVSpec(1, 1, 1, 1), dtype="int8")


def test_sampling_rules():
    logits = np.array([1.0, 3.0, 2.0, 3.0, -1.0])
    assert Sampler()(logits) == 1                                        # greedy: first of the tied maxima
    p = Sampler(temperature=1.0, top_k=2).probs(logits)
    assert np.count_nonzero(p) == 2 and p[1] == p[3]                     # the two largest (tied)
    p = Sampler(temperature=1.0, top_k=3).probs(logits)
    assert set(np.flatnonzero(p)) == {1, 2, 3}
    full = Sampler(temperature=1.0).probs(logits)
    nucleus = Sampler(temperature=1.0, top_p=0.7).probs(logits)
    kept = np.flatnonzero(nucleus)
    assert set(kept) == {1, 3} and full[kept].sum() >= 0.7 - 1e-12          # smallest set reaching 0.7
    np.testing.assert_allclose(nucleus[kept], full[kept] / full[kept].sum())
    assert Sampler(temperature=2.0).probs(logits).max() < full.max()        # hotter: flatter
    draws = [Sampler(temperature=1.0, seed=7)(logits) for _ in range(3)]
    assert len(set(draws)) == 1                                             # same seed, same token
    s = Sampler(temperature=1.0, seed=7)
    counts = np.bincount([s(logits) for _ in range(4000)], minlength=5) / 4000
    np.testing.assert_allclose(counts, full, atol=0.03)
    rows = Sampler(temperature=1.0, seed=1)(np.stack([logits, -logits]))
    assert rows.shape == (2,)
    for bad in ({"temperature": -1}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_k": 0}, {"temperature": float("inf")}):
        with pytest.raises(ValueError):
            Sampler(**bad)


def test_stop_tokens(gpt):
    ids = generate(gpt, np.array([[1, 2, 3], [4, 5, 6]]), 30)
    stop = int(ids[0, 5])                                  # the token row 0 produces third
    out = generate(gpt, np.array([[1, 2, 3], [4, 5, 6]]), 30, stop_tokens=[stop])
    assert out[0, 5] == stop and (out[0, 5:] == stop).all()
    np.testing.assert_array_equal(out[0, :6], ids[0, :6])
    if stop not in ids[1, 3:]:
        assert out.shape[1] == 33                           # row 1 never stops: runs to max_new_tokens


def test_bad_requests_get_clear_errors(gpt):
    with pytest.raises(ValueError, match="longer than the model's context"):
        generate(gpt, np.zeros(49, np.int64), 1)
    with pytest.raises(ValueError, match="exceeds the model's context"):
        generate(gpt, np.zeros(40, np.int64), 10)
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        generate(gpt, np.zeros(4, np.int64), 0)
    with pytest.raises(ValueError, match="empty"):
        generate(gpt, np.zeros(0, np.int64), 3)
    with pytest.raises(ValueError, match=r"top_p=0"):
        generate(gpt, np.zeros(4, np.int64), 3, temperature=1.0, top_p=0)
    with pytest.raises(TypeError, match="integer token ids"):
        generate(gpt, np.zeros(4), 3)
    assert gpt.training                                     # errors before anything ran leave the model as it was


def test_tinygpt_checks_positions_past_its_context(gpt):
    cache = KVCache(KVSpec.of(gpt), 1, 60)
    cache.begin(1, 47)
    with no_grad(), pytest.raises(ValueError, match="past block_size=48"):
        gpt(Tensor(np.zeros((1, 2), np.int64)), kv_cache=cache)


def test_importing_the_engine_never_loads_numba():
    code = "import sys, aisys.inference, aisys.kernels.attention; assert 'numba' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
