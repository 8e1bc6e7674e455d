"""The serving engine: every request finishes with the tokens generate() gives it alone, the KV budget is
never exceeded, preemption (recompute or swap) keeps answers exact, continuous batching beats static, paged
KV wastes less than contiguous reservation, and bad input is refused before anything changes."""
from __future__ import annotations

import numpy as np
import pytest

import aisys
from aisys import inference, models
from aisys.inference import Engine, Request, generate, request_stream
from tests.inference.models import TinyGQA


@pytest.fixture(scope="module")
def gpt():
    aisys.manual_seed(1)
    return models.TinyGPT(40, block_size=64, n_embd=16, n_head=2, n_layer=2)


@pytest.fixture(scope="module")
def stream():
    reqs = request_stream(10, vocab_size=40, seed=3, rate=1.5e5, prompt_len=(3, 20), output_len=(2, 24))
    reqs[1].temperature, reqs[1].top_k, reqs[2].temperature, reqs[2].top_p = 0.9, 5, 1.2, 0.9
    return reqs


def _alone(gpt, r):
    return generate(gpt, r.prompt, r.max_new_tokens, temperature=r.temperature, top_k=r.top_k, top_p=r.top_p,
                    seed=r.seed, stop_tokens=r.stop_tokens)[len(r.prompt):]


def _check_budget(engine, report):
    for it in report.iterations:
        assert it.kv_blocks <= engine.cache.num_blocks
        owned = [b for _, blocks, _ in it.tables for b in blocks]
        assert len(owned) == len(set(owned)) == it.kv_blocks          # no block owned twice (no forks here)
        assert all(len(blocks) * engine.cache.block_size >= n for _, blocks, n in it.tables)


@pytest.mark.parametrize("batching, kv, preemption, blocks", [
    ("continuous", "paged", "recompute", 11), ("continuous", "paged", "swap", 11), ("continuous", "paged", "recompute", 40),
    ("static", "paged", "recompute", 11), ("static", "contiguous", "recompute", 16),
    ("continuous", "contiguous", "recompute", 16)])
def test_every_request_finishes_with_its_own_tokens(gpt, stream, batching, kv, preemption, blocks):
    engine = Engine(gpt, kv_blocks=blocks, block_size=4, batching=batching, kv=kv, preemption=preemption)
    report = engine.serve(stream)
    for r, res in zip(stream, report.requests):
        np.testing.assert_array_equal(report.outputs[r.id], _alone(gpt, r), err_msg=f"request {r.id}")
        assert res.finish >= res.first_token >= res.admitted >= res.arrival
        assert len(res.tokens) == r.max_new_tokens
    _check_budget(engine, report)
    assert engine.cache.free_blocks == blocks and not engine.cache.tables       # everything freed
    if blocks == 11 and batching == "continuous":
        assert report.preemptions > 0 and any(it.preempted for it in report.iterations)
        if preemption == "swap":
            assert any(it.swapped_in for it in report.iterations)
    t = report.iterations
    assert all(a.start + a.duration <= b.start + 1e-15 for a, b in zip(t, t[1:]))   # steps do not overlap
    assert report.output_tokens == sum(r.max_new_tokens for r in stream)
    assert report.throughput == pytest.approx(report.output_tokens / report.makespan)


def test_any_model_with_the_protocol_is_served_grouped_query_attention_included():
    aisys.manual_seed(3)
    m = TinyGQA()
    reqs = request_stream(5, vocab_size=20, seed=4, rate=1e5, prompt_len=(1, 9), output_len=(2, 12))
    dims = {"n_layer": 1, "d_model": 16, "n_head": 4, "n_kv_head": 2, "head_dim": 4, "d_ff": 1, "vocab_size": 20}
    with pytest.raises(TypeError, match="clock='wall'"):
        Engine(m, kv_blocks=8, block_size=4)
    report = Engine(m, kv_blocks=8, block_size=4, dims=dims).serve(reqs)
    for r in reqs:
        np.testing.assert_array_equal(report.outputs[r.id], _alone(m, r))


def test_stop_tokens_end_a_request_early(gpt, stream):
    r = stream[0]
    full = _alone(gpt, r)
    stop = int(full[2])
    req = Request("s", r.prompt, r.max_new_tokens, stop_tokens=(stop,))
    report = Engine(gpt, kv_blocks=20, block_size=4).serve([req])
    out = report.outputs["s"]
    assert out[-1] == stop and len(out) == list(full).index(stop) + 1


def test_continuous_beats_static_and_paging_wastes_less(gpt):
    reqs = request_stream(24, vocab_size=40, seed=5, rate=2e5, prompt_len=(4, 24), output_len=(4, 36))
    rows = {}
    for batching, kv in (("static", "contiguous"), ("static", "paged"), ("continuous", "paged"),
                         ("continuous", "contiguous")):
        rows[batching, kv] = Engine(gpt, kv_blocks=64, block_size=4, batching=batching, kv=kv).serve(reqs)
    assert rows["continuous", "paged"].throughput > rows["static", "paged"].throughput
    assert rows["continuous", "paged"].ttft() < rows["static", "paged"].ttft()
    assert rows["continuous", "paged"].kv_waste < 0.5 * rows["continuous", "contiguous"].kv_waste
    assert rows["static", "contiguous"].kv_waste > 0.5
    assert rows["continuous", "paged"].mean_batch > rows["continuous", "contiguous"].mean_batch
    text = rows["continuous", "paged"].summary()
    assert "continuous batching, paged KV" in text and "time to first token" in text


def test_wall_clock_mode_runs_and_measures(gpt, stream):
    report = Engine(gpt, kv_blocks=40, block_size=4, clock="wall").serve(stream[:3])
    assert all(it.duration > 0 for it in report.iterations) and report.config["clock"].startswith("wall")


def test_bad_input_is_refused_and_leaves_the_engine_unchanged(gpt, stream):
    engine = Engine(gpt, kv_blocks=12, block_size=4)
    before = (engine.cache.free_blocks, dict(engine.cache.tables), engine.cache.allocator.ref.copy())
    p = np.arange(5)
    bad = [([Request("x", np.zeros(65, np.int64), 1)], "longer than the model's context"),
           ([Request("x", p, 0)], "max_new_tokens=0"),
           ([Request("x", p, 4, temperature=1.0, top_p=0.0)], "top_p=0.0"),
           ([Request("x", p, 4, temperature=1.0, top_p=1.5)], "top_p=1.5"),
           ([Request("x", p, 50)], "needs 14 KV blocks"),
           ([Request("x", p, 3), Request("x", p, 3)], "twice"),
           ([Request("x", np.array([1, 99]), 3)], r"token ids must be in \[0, 40\)"),
           ([], "no requests")]
    for reqs, message in bad:
        with pytest.raises(ValueError, match=message):
            engine.serve(stream[:2] + reqs if reqs else reqs)
        assert (engine.cache.free_blocks, engine.cache.tables) == before[:2]
        assert np.array_equal(engine.cache.allocator.ref, before[2]) and gpt.training
    with pytest.raises(ValueError, match="smaller than one block"):
        Engine(gpt, kv_bytes=100, block_size=4)
    with pytest.raises(ValueError, match="smaller than one block"):
        Engine(gpt, kv_blocks=0)
    with pytest.raises(ValueError, match="one of them"):
        Engine(gpt)
    with pytest.raises(ValueError, match="batching"):
        Engine(gpt, kv_blocks=4, batching="dynamic")
    assert Engine(gpt, kv_bytes=3 * 4096 + 100).cache.num_blocks == 3      # bytes -> whole 16-token blocks of 4 KiB


def test_request_stream_is_seeded():
    a = request_stream(5, vocab_size=10, seed=1, rate=3.0)
    b = request_stream(5, vocab_size=10, seed=1, rate=3.0)
    assert [(r.arrival, r.prompt.tolist(), r.max_new_tokens, r.seed) for r in a] == \
           [(r.arrival, r.prompt.tolist(), r.max_new_tokens, r.seed) for r in b]
    assert a[0].arrival == 0 and all(x.arrival < y.arrival for x, y in zip(a, a[1:]))
    corpus = np.arange(100) % 10
    c = request_stream(3, vocab_size=10, seed=0, corpus=corpus, prompt_len=(5, 5))
    assert all((np.diff(r.prompt) % 10 == 1).all() for r in c)              # windows of the corpus
    with pytest.raises(ValueError, match="rate"):
        request_stream(3, vocab_size=10, rate=0)
