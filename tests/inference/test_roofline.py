"""Prefill vs decode on the roofline: FLOPs and bytes of a step, counted by hand for TinyGPT's benchmark
configuration; decode sits at ~1 FLOP/B in fp16 (memory-bound), prefill is compute-bound."""
from __future__ import annotations

import pytest

import aisys
from aisys import chip, inference, models
from aisys.inference import ModelDims, RooflineClock, iteration_cost, step_flops_bytes

BENCH = ModelDims(n_layer=4, d_model=256, n_head=8, n_kv_head=8, head_dim=32, d_ff=1024, vocab_size=65)


def test_model_dims_count_the_real_weights():
    aisys.manual_seed(0)
    m = models.TinyGPT(65, block_size=512, n_embd=256, n_head=8, n_layer=4)
    assert ModelDims.of(m) == BENCH
    matmul_weights = sum(p.numel() for name, p in m.named_parameters()
                         if name.endswith(("in_proj_weight", "proj.weight", "mlp.0.weight", "mlp.2.weight", "head.weight")))
    assert BENCH.weights == matmul_weights == 4 * 12 * 256 ** 2 + 256 * 65


def test_decode_is_one_flop_per_byte_in_fp16_and_prefill_is_compute_bound():
    W = BENCH.weights
    flops, nbytes = step_flops_bytes(BENCH, 1, 1, 16, 2)
    attn = 4 * 4 * 8 * 32 * 17                              # 4 layers x 8 heads x 32: q·kᵀ and p·v over 17 keys
    assert flops == 2 * W + attn
    assert nbytes == 2 * W + 2 * 4 * 8 * 32 * 2 * (16 + 1)  # fp16 weights + KV read (16 tokens) + KV written (1)
    assert flops / nbytes == pytest.approx(1.0, abs=0.01)
    davinci = chip.preset("davinci")
    assert flops / nbytes < davinci.ridge_point
    pf, pb = step_flops_bytes(BENCH, 1, 512, 0, 2)
    assert pf == 2 * W * 512 + 4 * 4 * 8 * 32 * (512 * 513 // 2)      # token i attends to i + 1 keys
    assert pf / pb > davinci.ridge_point > 100
    # batching decode raises intensity ~linearly while the weights dominate the bytes
    i8 = step_flops_bytes(BENCH, 8, 1, 16, 2)
    assert 7 < i8[0] / i8[1] < 8.5
    f32 = step_flops_bytes(BENCH, 1, 1, 16, 4)
    assert f32[0] / f32[1] == pytest.approx(0.5, abs=0.01)


def test_mixed_iteration_and_the_chip_clock():
    cost = iteration_cost(BENCH, [(1, 100), (1, 7), (20, 0)], 2)
    a, b, c = (iteration_cost(BENCH, [seg], 2) for seg in [(1, 100), (1, 7), (20, 0)])
    assert cost.flops == a.flops + b.flops + c.flops
    assert cost.bytes == a.bytes + b.bytes + c.bytes - 2 * a.weight_bytes    # weights read once per step
    clock = RooflineClock("davinci")
    d = chip.preset("davinci")
    assert clock.time(cost) == max(cost.flops / d.peak_ops_per_s, cost.bytes / d.dram_bytes_per_s)
    assert "davinci" in clock.name and "intensity" not in cost.summary() and "FLOP/B" in cost.summary()
    points = inference.phase_points(BENCH, "davinci", decode_batches=(1, 64), prompt_lens=(64, 512), context=128)
    bounds = {p.name: p.bound for p in points}
    assert bounds == {"prefill 64 tokens": "memory", "prefill 512 tokens": "compute", "decode b=1": "memory",
                      "decode b=64": "memory"}                 # fp16: a prefill needs > ridge (218) tokens
    with pytest.raises(ValueError, match="batch"):
        step_flops_bytes(BENCH, 0, 1, 0)
    with pytest.raises(TypeError, match="cannot read the sizes"):
        ModelDims.of(object())


def test_cpu_roof_is_measured():
    roof = inference.cpu_roof(repeat=1)
    assert roof.peak_flops > 1e8 and roof.bandwidth > 1e8
    pt = roof.point("decode", 2e6, 2e6, seconds=1e-3)
    assert pt.intensity == 1.0 and pt.achieved_ops_per_s == 2e9 and "ridge" in roof.summary()
