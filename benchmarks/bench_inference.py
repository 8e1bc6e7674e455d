"""Inference benchmark: the KV cache, the attention kernel, paged KV memory and batching, in one run.

    .venv/bin/python benchmarks/bench_inference.py            # the issue's sizes
    .venv/bin/python benchmarks/bench_inference.py --quick    # smaller, for a smoke run

Model: TinyGPT(vocab_size=65, block_size=512, n_embd=256, n_head=8, n_layer=4), random weights (seed 0).

Part 1 — generation of 256 new tokens after a 16-token prompt, greedy: ``inference.generate`` with the KV
cache vs re-running the whole sequence every step (``use_cache=False``). Target: >= 10x faster, identical tokens.

Part 2 — attention at (batch 1, 8 heads, seq 1024, head dim 64), float32, causal and not: the numba tiled kernel
(``aisys.kernels.attention``, online softmax) vs PyTorch's ``scaled_dot_product_attention`` on one thread (when
torch is installed) and vs naive numpy (scores materialized). Best of several interleaved repeats. Target:
<= 1.5x PyTorch (causal, the kernel's default) and faster than naive numpy. Bytes moved as the kernels count them.

Part 3 — serving a seeded stream of requests (Poisson arrivals, prompts of 48-224 tokens, answers of 48-224)
with the same model and a KV pool of 16-token blocks: static vs continuous batching, paged vs contiguous
(max-length) KV reservation. Time is davinci's roofline per step (deterministic). Targets: paged KV wastes
< 4 % of its allocated bytes vs >= 50 % for contiguous reservation (the PagedAttention paper's comparison);
continuous batching has higher throughput than static on the same stream.

Everything runs on one thread (NUMBA_NUM_THREADS=OMP_NUM_THREADS=1, set before numpy loads).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import aisys  # noqa: E402
from aisys import inference, kernels, models  # noqa: E402


def the_model():
    aisys.manual_seed(0)
    return models.TinyGPT(vocab_size=65, block_size=512, n_embd=256, n_head=8, n_layer=4)


def part1(model, new_tokens: int) -> None:
    prompt = np.random.default_rng(0).integers(0, 65, 16)
    inference.generate(model, prompt, 4)                     # warm-up: numba kernels loaded
    times, outs = {}, {}
    for use_cache in (True, False):
        t0 = time.perf_counter()
        outs[use_cache] = inference.generate(model, prompt, new_tokens, use_cache=use_cache)
        times[use_cache] = time.perf_counter() - t0
    ratio = times[False] / times[True]
    same = np.array_equal(outs[True], outs[False])
    print(f"\nPart 1 — {new_tokens} new tokens after a 16-token prompt, greedy")
    print(f"  {'':<22} {'seconds':>9} {'tokens/s':>10}")
    print(f"  {'KV cache':<22} {times[True]:>9.3f} {new_tokens / times[True]:>10.1f}")
    print(f"  {'full forward per step':<22} {times[False]:>9.3f} {new_tokens / times[False]:>10.1f}")
    print(f"  cached / uncached speed-up: {ratio:.1f}x (target >= 10x)   identical tokens: {same}")


def part2(repeats: int, seq: int) -> None:
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 8, seq, 64)).astype(np.float32) for _ in range(3))
    try:
        import torch
        torch.set_num_threads(1)
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    except ImportError:
        torch = None
    print(f"\nPart 2 — attention, batch 1, 8 heads, seq {seq}, head dim 64, float32 (best of {repeats}, interleaved)")
    print(f"  {'causal':<7} {'numba tiled ms':>15} {'torch SDPA ms':>14} {'naive numpy ms':>15} {'tiled/torch':>12} "
          f"{'naive/tiled':>12}")
    for causal in (True, False):
        fns = {"tiled": lambda: kernels.attention(q, k, v, causal=causal),
               "naive": lambda: kernels.attention_naive(q, k, v, causal=causal)}
        if torch is not None:
            fns["torch"] = lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        for fn in fns.values():
            fn()
        best = {name: float("inf") for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
        t = best.get("torch")
        torch_ms = f"{1e3 * t:>14.2f}" if t else f"{'-':>14}"
        vs_torch = f"{best['tiled'] / t:>12.2f}" if t else f"{'-':>12}"
        print(f"  {causal!s:<7} {1e3 * best['tiled']:>15.2f} {torch_ms} {1e3 * best['naive']:>15.2f} {vs_torch} "
              f"{best['naive'] / best['tiled']:>12.2f}")
        out, tiled = kernels.attention(q, k, v, causal=causal, return_stats=True)
        ref, naive = kernels.attention_naive(q, k, v, causal=causal, return_stats=True)
        assert np.allclose(out, ref, atol=1e-4), "the tiled kernel disagrees with naive attention"
    print(f"  target: tiled/torch <= 1.5 (causal), naive/tiled > 1.  Bytes moved at causal=False: tiled "
          f"{tiled.bytes_moved:,} B, naive {naive.bytes_moved:,} B ({naive.bytes_moved / tiled.bytes_moved:.1f}x)")


def part3(model, n_requests: int, kv_blocks: int) -> None:
    dims = inference.ModelDims.of(model)
    step = inference.RooflineClock("davinci").step_time(dims, [(1, 256)])
    reqs = inference.request_stream(n_requests, vocab_size=65, seed=0, rate=1 / (8 * step), prompt_len=(48, 224),
                                    output_len=(48, 224))
    print(f"\nPart 3 — {n_requests} requests (prompts 48-224, answers 48-224 tokens, one arriving every "
          f"~{8 * step * 1e3:.2f} ms), KV pool {kv_blocks} blocks x 16 tokens, time = davinci roofline per step")
    print(f"  {'batching / KV':<24} {'steps':>6} {'tokens/s':>10} {'TTFT ms':>9} {'TPOT ms':>9} {'KV waste':>9} "
          f"{'batch':>6} {'preempt':>8} {'wall s':>7}")
    rows = {}
    for batching, kv in (("static", "contiguous"), ("static", "paged"), ("continuous", "contiguous"),
                         ("continuous", "paged")):
        t0 = time.perf_counter()
        report = inference.Engine(model, kv_blocks=kv_blocks, block_size=16, batching=batching, kv=kv).serve(reqs)
        wall = time.perf_counter() - t0
        r = rows[batching, kv] = report.row()
        print(f"  {batching + ' / ' + kv:<24} {r['steps']:>6} {r['throughput']:>10,.0f} {1e3 * r['ttft']:>9.2f} "
              f"{1e3 * r['tpot']:>9.3f} {r['kv_waste']:>9.1%} {r['mean_batch']:>6.1f} {r['preemptions']:>8} "
              f"{wall:>7.1f}")
    paged, contiguous = rows["continuous", "paged"]["kv_waste"], rows["continuous", "contiguous"]["kv_waste"]
    gain = rows["continuous", "paged"]["throughput"] / rows["static", "contiguous"]["throughput"]
    print(f"  KV waste: paged {paged:.1%} (target < 4%), contiguous {contiguous:.1%} (target >= 50%);  continuous "
          f"paged / static contiguous throughput: {gain:.2f}x; continuous / static, both paged: "
          f"{rows['continuous', 'paged']['throughput'] / rows['static', 'paged']['throughput']:.2f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = ap.parse_args(argv)
    print(f"aisys {aisys.__version__}, numpy {np.__version__}, {platform.machine()}, one thread")
    model = the_model()
    model.eval()
    part1(model, 64 if args.quick else 256)
    part2(3 if args.quick else 10, 512 if args.quick else 1024)
    part3(model, 12 if args.quick else 48, 96 if args.quick else 256)


if __name__ == "__main__":
    main()
