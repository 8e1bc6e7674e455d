"""The capstone walk: a compiled decode step equals the model, every layer reports, and throughput rises with
batch size on the simulated chip."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import inference, models
from aisys.framework.tensor import Tensor, no_grad


@pytest.fixture(scope="module")
def walk():
    aisys.manual_seed(0)
    m = models.TinyGPT(33, block_size=40, n_embd=16, n_head=2, n_layer=1)
    return m, inference.walk_stack(m, batch_sizes=(1, 4), context=20, measure=False)


def test_walk_reports_every_layer(walk):
    m, report = walk
    names = [name for name, _, _ in report.layers()]
    assert [n.split()[0] for n in names] == ["application", "frontend", "compiler", "runtime", "kernels", "chip"]
    text = report.summary()
    assert "decode tokens/s vs batch size" in text and "chip (硬件层)" in text
    assert report.plan.peak_bytes >= report.plan.lower_bound_bytes > 0
    assert report.result.cycles > 0 and report.program.chip.name == "davinci"
    assert report.attention["tiled"].bytes_moved < report.attention["naive"].bytes_moved
    one, four = report.points
    assert four.chip_tokens_per_s > 2 * one.chip_tokens_per_s          # decode is memory-bound: batching pays
    assert four.roofline_tokens_per_s > 2 * one.roofline_tokens_per_s
    assert one.cpu_s is None


def test_compiled_decode_step_is_the_model(walk):
    """Fill a real cache with a prefix, hand it to the compiled step: its logits are the full forward's."""
    m, report = walk
    ids = np.random.default_rng(4).integers(0, 33, (4, 21))
    spec = inference.KVSpec.of(m)
    m.eval()
    with no_grad():
        cache = inference.KVCache(spec, 4, 21)
        m(Tensor(ids[:, :20]), kv_cache=cache)
        past = [Tensor(np.ascontiguousarray(a[i, :, :, :20])) for i in range(spec.n_layer) for a in (cache.k, cache.v)]
        got = report.compiled(Tensor(ids[:, 20:]), *past)
        want = m(Tensor(ids)).numpy()[:, 20:]
    m.train()
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1].numpy(), _new_keys(m, ids), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="context"):
        inference.walk_stack(m, context=40, measure=False)


def _new_keys(m, ids):
    """Layer 0's key of the last token, computed from the embeddings directly."""
    with no_grad():
        x = m.tok_emb(Tensor(ids)) + m.pos_emb(Tensor(np.arange(ids.shape[1])))
        h = m.blocks[0].ln1(x).numpy()
    W, b = m.blocks[0].attn.in_proj_weight.numpy(), m.blocks[0].attn.in_proj_bias.numpy()
    E = W.shape[1]
    k = h[:, -1:] @ W[E:2 * E].T + b[E:2 * E]
    return k.reshape(4, 1, 2, 8).transpose(0, 2, 1, 3)
