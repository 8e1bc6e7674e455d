"""Inference widgets built headless: each draws its record, and moving its control changes what is drawn."""
import numpy as np
import pytest

import aisys
from aisys import inference, models
from widgets.inference import BatchTimeline, KVCacheView, StackView


@pytest.fixture(scope="module")
def gpt():
    aisys.manual_seed(0)
    return models.TinyGPT(20, block_size=40, n_embd=16, n_head=2, n_layer=1)


@pytest.fixture(scope="module")
def reports(gpt):
    reqs = inference.request_stream(6, vocab_size=20, seed=2, rate=3e5, prompt_len=(3, 12), output_len=(3, 16))
    return {b: inference.Engine(gpt, kv_blocks=10, block_size=4, batching=b).serve(reqs)
            for b in ("static", "continuous")}


def test_kv_cache_view_steps_through_a_serving_run(reports):
    report = reports["continuous"]
    view = KVCacheView(report)
    svg = view.picture.value
    assert svg.count('class="kv-block"') == 10
    busiest = max(it.kv_blocks for it in report.iterations)
    assert svg.count('data-state="free"') == 10 - busiest
    assert f"{busiest} of 10 blocks in use" in view.summary()
    view.slider.value = 0
    assert view.picture.value != svg and "step 1 of" in view.summary()
    n = view.numbers()
    it = report.iterations[0]
    assert n["blocks_used"] == it.kv_blocks and n["tokens"] == it.kv_tokens


def test_kv_cache_view_shows_shared_blocks_of_a_cache():
    cache = inference.PagedKVCache(inference.KVSpec(1, 1, 1, 2), 6, block_size=4)
    cache.add("a")
    cache.reserve("a", 6)
    cache.schedule([("a", 6)])
    cache.begin(1, 6)
    cache.fork("a", "b")
    view = KVCacheView(cache)
    assert view.picture.value.count('data-state="shared"') == 2
    assert "6 tokens in blocks [0, 1]" in view.summary()
    with pytest.raises(TypeError, match="ServeReport"):
        KVCacheView("nope")


def test_batch_timeline_switches_runs(reports):
    view = BatchTimeline({"static": reports["static"], "continuous": reports["continuous"]})
    names = [t.name for t in view.figure.data]
    assert names[:4] == ["waiting", "running", "prefill", "first token"] and "sequences per step" in names
    before_x, before = tuple(view.figure.data[-1].x), view.summary()
    assert "static batching" in before
    view.picker.value = "continuous"
    assert tuple(view.figure.data[-1].x) != before_x and "continuous batching" in view.summary()
    assert len(view.figure.data[1].y) == 6
    with pytest.raises(TypeError, match="ServeReport"):
        BatchTimeline([1, 2])


def test_stack_view_opens_each_layer(gpt):
    report = inference.walk_stack(gpt, batch_sizes=(1, 2), context=20, measure=False)
    view = StackView(report)
    assert len(view.buttons) == 6 and view.deeper.children == ()
    assert [t.name for t in view.throughput.data] == ["davinci (simulated)", "davinci roofline"]
    view.buttons["runtime"].click()
    assert type(view.deeper.children[0]).__name__ == "MemoryTimeline" and "open: runtime" in view.summary()
    view.buttons["kernels"].click()
    assert "attention" in view.deeper_title.value
    view.show("application")
    assert "KV bytes per token" in view.deeper.children[0].value
    with pytest.raises(ValueError, match="not a layer"):
        view.show("cloud")
