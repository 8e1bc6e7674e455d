"""L3 — the inference engine (推理引擎): TinyGPT (or any causal model with the same interface) served the way
LLM inference systems do it.

    from aisys import inference
    ids = inference.generate(model, prompt_ids, max_new_tokens=64)          # prefill, then cached decode
    engine = inference.Engine(model, kv_blocks=64, block_size=16, batching="continuous")
    report = engine.serve(inference.request_stream(32, vocab_size=65, rate=2e4))
    print(report.summary())                                                  # TTFT, TPOT, throughput, KV waste

Pieces: ``kv_cache`` (what a cache holds and costs; contiguous and traceable caches), ``sampling``
(greedy / temperature / top-k / top-p), ``generate`` (prefill + decode), ``paged`` (block tables,
copy-on-write, waste), ``engine`` (static vs continuous batching, preemption, metrics), ``roofline``
(FLOPs and bytes of prefill vs decode; a chip clock; this CPU's roof), ``capstone`` (one model through every
layer of the stack). Attention runs on ``aisys.kernels.attention``.
"""
from .kv_cache import KVSpec, kv_cache_bytes, KVCache, TensorKVCache, measure_allocation
from .sampling import Sampler
from .generate import generate
from .paged import BlockAllocator, KVUsage, OutOfBlocks, PagedKVCache
from .roofline import (CpuRoof, ModelDims, RooflineClock, StepCost, cpu_roof, iteration_cost, measure_phase,
                       phase_points, step_flops_bytes)
from .engine import Engine, Iteration, Request, RequestResult, ServeReport, request_stream
from .capstone import BatchPoint, StackReport, decode_step_function, walk_stack

__all__ = [name for name in dir() if not name.startswith("_")]
