"""Write labs/12_capstone.ipynb (lab 12 — the capstone: TinyGPT from the application layer to the chip).

Usage:  .venv/bin/python tools/make_labs/lab12.py [OUT.ipynb]
Then execute it solved (the committed outputs come from that run):
  .venv/bin/python tools/run_labs.py 12
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import labcells  # tools/make_labs/labcells.py (this folder is on sys.path when run as a script)
from labcells import CODE, EXERCISE_DEPENDENT, MD

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "labs" / "12_capstone.ipynb"

CELLS: list[tuple[str, str]] = [
    (MD, """\
# Lab 12 — Capstone: TinyGPT from the application layer to the chip (大模型推理：从应用层到芯片)

Every earlier lab took one layer of the stack apart. This one puts a language model through all of them at
once, the way a serving system (推理引擎) runs it:

1. **Generation** (自回归生成): a *prefill* pass over the prompt, then one *decode* step per new token, reading
   the keys and values of earlier tokens from a **KV cache** instead of recomputing them.
2. **Why decode is slow**: on the roofline (lab 08) a decode step is a matrix–*vector* product that reads every
   weight to use it once — memory-bound — while prefill is compute-bound.
3. **Fused attention** (算子融合): FlashAttention's tiling and *online softmax* compute attention without ever
   writing the score matrix to memory.
4. **Paged KV memory** (分页显存管理) and **continuous batching** (连续批处理): how vLLM and Orca serve many
   requests at once without wasting memory or making new requests wait.
5. **The capstone walk**: one decode step through trace → passes → memory plan → kernels → chip program,
   and tokens/s against batch size, simulated and measured.

**Lectures followed** (ZOMI's *AISystem* course, Apache-2.0): `01Introduction/03Architecture` (the layers of
"AI 系统组成&生态"), `04Inference/01Inference` (the inference workflow, latency vs throughput) and the
large-model inference notes of `Infrasys-AI/AIInfra:05Infer` (long context, KV cache). Papers: Yu et al.,
*Orca* (OSDI 2022); Kwon et al., *Efficient Memory Management for LLM Serving with PagedAttention* (SOSP 2023,
vLLM); Dao et al., *FlashAttention* (NeurIPS 2022) and Dao, *FlashAttention-2* (2023); Milakov & Gimelshein,
*Online normalizer calculation for softmax* (2018); Williams, Waterman & Patterson, *Roofline* (CACM 2009);
Ainslie et al., *GQA* (2023).

**Goals.** After this lab you can
- say what a KV cache stores and compute its size for any model, including grouped-query attention;
- count the FLOPs and bytes of a prefill and a decode step and place both on a roofline;
- write attention with the online softmax and explain why it moves fewer bytes;
- read a serving timeline: time to first token, time per output token, throughput, KV waste, preemption.

**Exercises.** 12.1 `kv_cache_bytes` · 12.2 `step_flops_bytes` · 12.3 `tiled_attention`. Each stub raises
`NotImplementedError` until you write it; the cell after it checks your function and prints PASS or what
went wrong."""),
    (CODE, """\
import numpy as np

import aisys
from aisys import chip, inference, kernels, models
from aisys.chip import preset
from aisys.labkit import check, exercise

text = models.tiny_corpus()
vocab = models.CharVocab(text)
corpus = vocab.encode(text)
aisys.manual_seed(0)
model = models.TinyGPT(len(vocab), block_size=128, n_embd=64, n_head=4, n_layer=2)
print(model.kv_spec(), f"vocabulary of {len(vocab)} characters,",
      f"{sum(p.numel() for p in model.parameters()):,} parameters")"""),
    (MD, """\
## 1. The whole stack in one call (全栈：从应用到芯片)

Start at the destination. `inference.walk_stack` takes one **decode step** of the model — token ids and every
layer's cached keys and values in, logits and the new keys and values out — through every layer you have met:

- **frontend** (lab 03): `aisys.trace` records the step as a graph (attention written with graph ops over the
  cache);
- **compiler** (lab 04): the pass pipeline folds, deduplicates and fuses it into generated numba kernels;
- **runtime** (lab 05): the memory plan places every intermediate tensor;
- **kernels** (this lab): the tiled attention kernel, and the kernels the compiler generated;
- **chip** (lab 08): the optimized graph is lowered to davinci's tile program and simulated cycle by cycle.

It does this at several batch sizes and reports decode tokens/s three ways: the chip simulation, the roofline
estimate for the same chip, and a measurement of the real model on this CPU. Click a card's button to open the
widget that goes one layer deeper. The rest of the lab explains what you see: why a decode step gets faster
per token as the batch grows (sections 2–3), how attention is computed without the score matrix (4), and
how a server keeps a batch full of requests (5–6)."""),
    (CODE, """\
stack = inference.walk_stack(model, batch_sizes=(1, 2, 4, 8, 16), context=64, chip="davinci")
print(stack.summary(measured=False))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
from widgets.inference import BatchTimeline, KVCacheView, StackView
stack_view = StackView(stack)
stack_view"""),
    (CODE, """\
print(stack_view.summary())"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
for pt in stack.points:    # measured on this machine
    print(f"batch {pt.batch:>3}: this CPU {pt.cpu_tokens_per_s:>10,.0f} tokens/s")"""),
    (MD, """\
## 2. Application layer (应用层): prefill, decode and the KV cache

A decoder-only transformer predicts the next token from all the tokens before it. Generating text is a loop:
run the model, pick a token from the last position's logits, append it, repeat. Done naively, step *t*
recomputes the whole prefix — *t* tokens through every layer — so *n* tokens cost O(n²) work.

But in a causal model the keys and values of a token never change once computed (later tokens cannot
influence earlier ones). So an inference engine splits generation in two phases:

- **prefill**: the whole prompt goes through the model in one pass; each layer stores its keys K and values
  V in the **KV cache**;
- **decode**: each step feeds only the newest token; its attention reads everything else from the cache.

`inference.generate` does both (`use_cache=False` is the naive loop). The model here has random weights — what
it writes is noise, but what it costs is real, and that is what this lab is about. Choosing the next token:
`temperature=0` is greedy (the argmax); otherwise the logits are divided by the temperature and sampled,
optionally only among the `top_k` most likely tokens or the smallest set whose probability reaches `top_p`
(nucleus sampling). Every sampler has its own seeded generator."""),
    (CODE, """\
prompt = vocab.encode("the model reads ")
cached, logits_cached = inference.generate(model, prompt, 48, temperature=0.8, top_k=10, seed=0, return_logits=True)
naive, logits_naive = inference.generate(model, prompt, 48, temperature=0.8, top_k=10, seed=0, return_logits=True,
                                         use_cache=False)
print(repr(vocab.decode(cached)))
print("same tokens with and without the cache:", np.array_equal(cached, naive))
print("same logits at every one of the", len(logits_cached), "steps (to 1e-5):",
      np.allclose(logits_cached, logits_naive, atol=1e-5))"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
import time
for use_cache in (False, True):
    t = time.perf_counter()
    inference.generate(model, prompt, 64, use_cache=use_cache)
    print(f"use_cache={use_cache!s:<5}: {64 / (time.perf_counter() - t):8.0f} tokens/s")"""),
    (MD, """\
### What the cache costs (KV 缓存的显存开销)

Per token, every layer stores one key and one value vector of `head_dim` numbers for each key/value head:

$$\\text{bytes} = 2 \\cdot n_\\text{layer} \\cdot n_\\text{kv\\_head} \\cdot d_\\text{head} \\cdot \\text{seq\\_len}
\\cdot \\text{batch} \\cdot \\text{bytes per element}.$$

It grows with the context and with the number of requests served at once, and for long contexts it outgrows
the weights. **Multi-query** (Shazeer 2019) and **grouped-query attention** (GQA, Ainslie et al. 2023) shrink
it: several query heads share one key/value head, so `n_kv_head` < `n_head`.

### Exercise 12.1 — KV-cache bytes

Write `kv_cache_bytes(spec, seq_len, batch=1, dtype="float16")`. `spec` has `n_layer`, `n_head` (query
heads), `n_kv_head` and `head_dim`; `dtype` is `"float16"` or `"float32"`. The check compares your number with
the bytes that `inference.KVCache` really allocates, measured with Python's `tracemalloc`."""),
    (CODE, """\
@exercise("12.1")
def kv_cache_bytes(spec, seq_len, batch=1, dtype="float16"):
    \"\"\"Bytes of the keys and values of `batch` sequences of `seq_len` tokens.\"\"\"
    raise NotImplementedError("exercise 12.1: count what every layer stores per token")"""),
    (EXERCISE_DEPENDENT, """\
check("12.1", kv_cache_bytes)"""),
    (EXERCISE_DEPENDENT, """\
# your function at work: the cache of this lab's model, and of real model shapes, in fp16
shapes = {"this lab's TinyGPT": inference.KVSpec.of(model),
          "TinyGPT of the benchmark": inference.KVSpec(4, 8, 8, 32),
          "Llama-2-7B shape (MHA)": inference.KVSpec(32, 32, 32, 128),
          "Llama-3-8B shape (GQA 32/8)": inference.KVSpec(32, 32, 8, 128)}
print(f"{'model':<30} {'per token':>12} {'4096 tokens x 8 requests':>26}")
for name, spec in shapes.items():
    print(f"{name:<30} {kv_cache_bytes(spec, 1):>10,} B {kv_cache_bytes(spec, 4096, 8) / 2**30:>22.3f} GiB")"""),
    (MD, """\
## 3. Prefill vs decode on the roofline (Roofline：预填充与解码)

Lab 08's roofline asks: how many FLOPs does an operation do per byte it moves? A decoder step multiplies every
new token by every weight matrix (2 FLOPs per weight per token) and has to read every weight once, however
many tokens share the step. So a prefill of hundreds of tokens reuses each weight hundreds of times, while a
decode step of one sequence uses each weight **once**: in fp16 (2 bytes per weight) that is about one FLOP per
byte — far to the left of any accelerator's ridge point. Decode speed is set by memory bandwidth, not by the
matrix unit; batching many sequences into one decode step is how servers get their throughput back.

### Exercise 12.2 — FLOPs and bytes of one step

Write `step_flops_bytes(dims, batch, new_tokens, past, bytes_per_element=2)` for a decoder whose sizes are in
`dims` (`n_layer`, `d_model`, `n_head`, `n_kv_head`, `head_dim`, `d_ff`, `vocab_size`): `batch` sequences each
bring `new_tokens` tokens after `past` cached ones (prefill: `past=0`; decode: `new_tokens=1`). Return
`(flops, bytes)` with these conventions:

- **FLOPs** (2 per multiply-add): every new token goes through every weight matrix — per layer the query
  (`d_model × n_head·head_dim`), key and value (`d_model × n_kv_head·head_dim` each) and output projections and
  the two MLP matrices (`d_model × d_ff` each), then the vocabulary head (`d_model × vocab_size`). Plus
  attention: the *i*-th new token (counting from 0) attends to `past + i + 1` keys, and each key costs
  `2·head_dim` FLOPs for q·kᵀ and again for p·v, in each of the `n_head` heads of each layer.
- **Bytes** that cross DRAM: every weight once per step; the cached keys and values of the `past` tokens
  (read); the keys and values of the new tokens (written). Activations stay on chip."""),
    (CODE, """\
@exercise("12.2")
def step_flops_bytes(dims, batch, new_tokens, past, bytes_per_element=2):
    \"\"\"(FLOPs, DRAM bytes) of one decoder step.\"\"\"
    raise NotImplementedError("exercise 12.2: count the weights, the attention and the KV traffic")"""),
    (EXERCISE_DEPENDENT, """\
check("12.2", step_flops_bytes)"""),
    (EXERCISE_DEPENDENT, """\
# your function at work: the benchmark TinyGPT on davinci (fp16)
dims = inference.ModelDims(n_layer=4, d_model=256, n_head=8, n_kv_head=8, head_dim=32, d_ff=1024, vocab_size=65)
ridge = preset("davinci").ridge_point
print(f"davinci's ridge point: {ridge:.0f} FLOP/B")
for what, batch, new, past in [("prefill 64 tokens", 1, 64, 0), ("prefill 512 tokens", 1, 512, 0),
                               ("decode, batch 1", 1, 1, 256), ("decode, batch 16", 16, 1, 256),
                               ("decode, batch 256", 256, 1, 256)]:
    f, b = step_flops_bytes(dims, batch, new, past)
    print(f"{what:<20} {f / b:8.2f} FLOP/B  ->  {'compute' if f / b > ridge else 'memory'}-bound")"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
# the same steps under davinci's roof, each at the intensity your step_flops_bytes gives it
from aisys.chip import roofline_point
from widgets.chip import RooflinePlot
your_points = [roofline_point(what, *step_flops_bytes(dims, batch, new, past), "davinci")
               for what, batch, new, past in [("prefill 64", 1, 64, 0), ("prefill 512", 1, 512, 0),
                                              ("decode b=1", 1, 1, 256), ("decode b=16", 16, 1, 256),
                                              ("decode b=256", 256, 1, 256)]]
RooflinePlot(your_points, "davinci")"""),
    (MD, """\
Batching decode raises the intensity only while the weights dominate the bytes: each sequence also reads its
own KV cache, which no other sequence shares. Here are the two phases under davinci's roof — two prompt
lengths, and decode steps at three batch sizes with 64 cached tokens each. Drag the bandwidth slider: the
memory-bound points move with the slanted roof, the compute-bound ones stay under the flat one."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
from widgets.chip import RooflinePlot
roof = RooflinePlot(inference.phase_points(dims, "davinci", decode_batches=(1, 8, 64), prompt_lens=(64, 512),
                                          context=64), "davinci")
roof"""),
    (CODE, """\
print(roof.summary())"""),
    (MD, """\
On this CPU the same two phases, measured (one thread; the roof is this machine's own matmul rate and copy
bandwidth, measured too, so the numbers change from machine to machine):"""),
    (EXERCISE_DEPENDENT, """\
# NBVAL_IGNORE_OUTPUT
cpu = inference.cpu_roof()
print(cpu.summary())
lab_dims = inference.ModelDims.of(model)
for what, batch, new, past in [("prefill 96 tokens", 1, 96, 0), ("decode, batch 1", 1, 1, 96), ("decode, batch 16", 16, 1, 96)]:
    seconds = inference.measure_phase(model, batch, new, past)
    f, b = step_flops_bytes(lab_dims, batch, new, past, 4)
    pt = cpu.point(what, f, b, seconds)
    print(f"{what:<18} {pt.intensity:7.2f} FLOP/B, {pt.bound}-bound: attainable {pt.attainable_ops_per_s / 1e9:6.2f} "
          f"GFLOP/s, achieved {pt.achieved_ops_per_s / 1e9:6.2f} GFLOP/s ({batch * new / seconds:,.0f} tokens/s)")"""),
    (MD, """\
On a CPU, a model this small is far below both roofs: Python overhead per op dominates a decode step. That is
why real engines fuse and compile decode steps (CUDA graphs, `torch.compile`) — the capstone below compiles one.

## 4. Fused attention with the online softmax (FlashAttention)

Attention is softmax(q·kᵀ/√d)·v. Written plainly (FlashAttention's "Algorithm 0") it writes the L × S score
matrix to memory, reads it back for the softmax, writes the probabilities and reads them again: for long
sequences those L·S numbers are most of the traffic. FlashAttention never forms them. It walks the keys in
blocks that fit in fast memory and keeps three running quantities per query: the largest score so far *m*, the
sum *l* of exp(score − *m*), and an unnormalized output *acc*. When a new block raises the maximum to *m′*,
everything summed so far is rescaled by exp(*m* − *m′*) — the **online softmax** (Milakov & Gimelshein):

$$m' = \\max(m, \\max_j s_j), \\quad l' = l\\,e^{m-m'} + \\sum_j e^{s_j - m'}, \\quad
acc' = acc\\,e^{m-m'} + \\sum_j e^{s_j-m'} v_j, \\qquad o = acc / l .$$

Subtracting the maximum keeps exp() from overflowing. With a causal mask, query *i* of *L* new tokens after
*S − L* cached ones may see keys *j ≤ i + S − L* (the mask is aligned to the last key, as in decoding).

### Exercise 12.3 — tiled attention

Write `tiled_attention(q, k, v, causal=False, block=16)` for one head: `q` is an (L, d) array, `k` and `v`
are (S, d). Keys and values live in "main memory": read them only in slices of at most `block` rows,
`k[j:j + block]`. Never build an L × S matrix (the check measures your function's memory peak)."""),
    (CODE, """\
@exercise("12.3")
def tiled_attention(q, k, v, causal=False, block=16):
    \"\"\"softmax(q·kᵀ/√d [+ causal mask])·v, reading k and v one block of rows at a time.\"\"\"
    raise NotImplementedError("exercise 12.3: keep a running max, sum and output per query")"""),
    (EXERCISE_DEPENDENT, """\
check("12.3", tiled_attention)"""),
    (MD, """\
The library's kernel, `aisys.kernels.attention(q, k, v, causal=True)`, is the same recurrence in numba, on
tiles of 64 queries: every loop runs over the tile, so the compiler vectorizes it. It handles batches, and
grouped-query heads (query head *h* reads key/value head *h* ÷ (heads / kv_heads)). It counts the bytes it
loads and stores; here it is against the naive version at a prefill of 512 tokens:"""),
    (CODE, """\
rng = np.random.default_rng(12)
q = rng.standard_normal((1, 8, 512, 32)).astype(np.float32)
k, v = (rng.standard_normal((1, 2, 512, 32)).astype(np.float32) for _ in range(2))   # 8 query heads, 2 kv heads
fast, tiled_stats = kernels.attention(q, k, v, causal=True, return_stats=True)
slow, naive_stats = kernels.attention_naive(q, k, v, causal=True, return_stats=True)
print("same output (to 1e-5):", np.allclose(fast, slow, atol=1e-5))
print(tiled_stats.summary())
print(naive_stats.summary())
print(f"the tiled kernel moves {naive_stats.bytes_moved / tiled_stats.bytes_moved:.1f}x fewer bytes and, skipping "
      f"the tiles above the diagonal, does {naive_stats.flops / tiled_stats.flops:.1f}x fewer FLOPs")"""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
def best_ms(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return 1e3 * min(times)
print(f"numba tiled kernel {best_ms(lambda: kernels.attention(q, k, v)):7.2f} ms")
print(f"naive numpy        {best_ms(lambda: kernels.attention_naive(q, k, v)):7.2f} ms")"""),
    (MD, """\
## 5. Paged KV memory (PagedAttention)

A server does not know how long an answer will be. Without paging it must reserve room for the longest
possible sequence — the model's whole context — for every request, and most of that room stays empty. vLLM
borrows the operating system's answer: cut the KV memory into fixed-size **blocks** (pages) of, say, 8 tokens,
give every sequence a **block table** (logical block → physical block), and take a block from the free list
only when a token needs one. The only waste left is the unfilled tail of each sequence's last block.

Blocks can also be **shared**. Sampling several answers to one prompt (or a system prompt common to many
requests) should not store the prompt twice: a forked sequence points at its parent's blocks, each block keeps
a reference count, and a shared block is copied only when one of its owners writes into it
(**copy-on-write**)."""),
    (CODE, """\
spec = inference.KVSpec.of(model)
pool = inference.PagedKVCache(spec, num_blocks=8, block_size=8)
pool.add("prompt")
pool.reserve("prompt", 12)                     # room for a 12-token prompt: two blocks
pool.schedule([("prompt", 12)])
model.eval()
with aisys.no_grad():
    model(aisys.tensor(prompt[None, :12]), kv_cache=pool)     # prefill writes the keys and values
pool.fork("prompt", "answer A")                # two answers share the prompt's blocks
pool.fork("prompt", "answer B")
print("after the forks:   ", {s: t for s, t in pool.tables.items()}, "refcounts", pool.allocator.ref[:3].tolist())
pool.reserve("answer A", 1)                    # A writes token 13 into the shared, half-full second block...
print("after A grows:     ", {s: t for s, t in pool.tables.items()}, "refcounts", pool.allocator.ref[:4].tolist())
print(f"A now writes into its own copy, block {pool.tables['answer A'][1]}; block 0 is still shared by "
      f"{pool.allocator.ref[0]} sequences")
print(pool.usage())"""),
    (MD, """\
## 6. Serving many requests: static vs continuous batching

A server receives a stream of requests. **Static batching** (request-level) takes the requests that are
waiting when the engine is free, runs them as one batch until the *last* one finishes, and only then looks at
the queue again: a request arriving just after a batch started waits for all of it, and answers that finish
early are returned with the rest. **Continuous batching** (iteration-level, Orca) schedules every step anew:
finished requests leave at once and waiting ones join the next step — their prompts are prefilled in the
same step in which the others decode one token each (the projections and the MLP see all tokens together;
attention runs per sequence over its own blocks, Orca's *selective batching*).

`inference.Engine` runs the real model over a paged KV pool. Time comes from a clock: here davinci's roofline
for each step (deterministic), so the numbers below are the same on every machine. The metrics:
**TTFT**, time to first token (arrival → first token), **TPOT**, time per output token after the first,
**throughput** in tokens per second, and the share of allocated KV bytes that held no token."""),
    (CODE, """\
clock = inference.RooflineClock("davinci")
step = clock.step_time(inference.ModelDims.of(model), [(1, 64)])
requests = inference.request_stream(16, vocab_size=len(vocab), seed=12, rate=1 / (6 * step),
                                    prompt_len=(8, 48), output_len=(8, 40), corpus=corpus)
alone = {q.id: inference.generate(model, q.prompt, q.max_new_tokens)[len(q.prompt):] for q in requests}
print(f"one decode step of one sequence on davinci: {step * 1e6:.2f} us; a request arrives every "
      f"{6 * step * 1e6:.1f} us on average")
runs = {}
for batching, kv in [("static", "contiguous"), ("static", "paged"), ("continuous", "contiguous"),
                     ("continuous", "paged")]:
    engine = inference.Engine(model, kv_blocks=64, block_size=8, batching=batching, kv=kv)
    runs[f"{batching} / {kv}"] = engine.serve(requests)
print(f"{'run':<24} {'steps':>5} {'tokens/s':>10} {'TTFT us':>8} {'TPOT us':>8} {'KV waste':>9} {'batch':>6}")
for name, report in runs.items():
    r = report.row()
    print(f"{name:<24} {r['steps']:>5} {r['throughput']:>10,.0f} {r['ttft'] * 1e6:>8.1f} {r['tpot'] * 1e6:>8.2f} "
          f"{r['kv_waste']:>9.1%} {r['mean_batch']:>6.1f}")
same = all(np.array_equal(report.outputs[q.id], alone[q.id]) for report in runs.values() for q in requests)
print("every request got exactly the tokens generate() gives it alone:", same)"""),
    (MD, """\
The timeline of each run: grey is waiting, the coloured bar is a request in the batch (orange: its prefill
step), the dot its first token; underneath, how many sequences each step ran. Switch between the runs: with
static batching new requests queue behind whole batches; with continuous batching they join within a step."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
timeline = BatchTimeline({"static": runs["static / contiguous"], "continuous": runs["continuous / paged"]})
timeline"""),
    (CODE, """\
print(timeline.summary())"""),
    (MD, """\
And the KV pool itself, step by step: one square per block, coloured by the request that owns it and filled
as far as its tokens go. Drag the slider through the continuous, paged run — blocks are taken as sequences
grow and return to the free list the moment a request finishes."""),
    (CODE, """\
# NBVAL_IGNORE_OUTPUT
pool_view = KVCacheView(runs["continuous / paged"])
pool_view"""),
    (CODE, """\
print(pool_view.summary())"""),
    (MD, """\
### Preemption (抢占): when the blocks run out

Continuous batching with paged memory admits requests as long as their *prompts* fit. As the sequences grow,
the pool can run out. The engine then **preempts** the most recently admitted request (vLLM's policy), in one of
two ways: **recompute** frees its blocks and later prefills its prompt and the tokens it already generated
again (cheap when compute is cheap), **swap** copies its blocks to host memory and back (costs bandwidth over
the host link). With a smaller pool, 24 blocks instead of 64:"""),
    (CODE, """\
for preemption in ("recompute", "swap"):
    report = inference.Engine(model, kv_blocks=24, block_size=8, preemption=preemption).serve(requests)
    r = report.row()
    print(f"{preemption:<9}: {r['preemptions']:>3} preemptions, {r['steps']} steps, {r['throughput']:>10,.0f} tokens/s, "
          f"peak KV {r['peak_kv_bytes']:,} B of {24 * report.block_bytes:,} B")
    assert all(np.array_equal(report.outputs[q.id], alone[q.id]) for q in requests)
print("answers unchanged by preemption: True")"""),
    (MD, """\
## 7. Back to the stack

Now the capstone's numbers read differently:"""),
    (EXERCISE_DEPENDENT, """\
gain = [b.chip_tokens_per_s / a.chip_tokens_per_s for a, b in zip(stack.points, stack.points[1:])]
print("simulated tokens/s gained by each doubling of the batch:", ", ".join(f"{g:.2f}x" for g in gain))
one = stack.points[0]
f, b = step_flops_bytes(inference.ModelDims.of(model), 1, 1, 64)
print(f"decode at batch 1: {f / b:.2f} FLOP/B; the roofline allows {one.roofline_tokens_per_s:,.0f} tokens/s, "
      f"the simulated chip reaches {one.chip_tokens_per_s:,.0f}")"""),
    (MD, """\
At small batches the simulated chip spends a decode step streaming weights, so each doubling of the batch buys
almost twice the tokens/s — the step is memory-bound, as exercise 12.2 predicts — and the gain shrinks as each
sequence's own KV cache starts to weigh. The gap between the simulation and the roofline is what the roofline
leaves out: the layers run one after another, small matrices fill the 16×16×16 cube badly, and every step
fills and drains its pipelines (open the chip card: the matrix unit is mostly waiting).

## Summary

- Generation is a **prefill** over the prompt and one **decode** step per token; the **KV cache** makes a step
  cost one token's work, at 2·n_layer·n_kv_head·head_dim bytes per element per token of memory.
- A decode step reads every weight to use it once: ~1 FLOP/B in fp16, **memory-bound**; prefill is
  compute-bound. Batching decode steps is what buys throughput.
- **FlashAttention** streams keys and values in blocks with the online softmax and never writes the score
  matrix: fewer bytes, same result.
- **Paged KV memory** wastes only the tail of each sequence's last block, and shares prompts copy-on-write;
  **continuous batching** lets requests join and leave every step; **preemption** handles running out.
- The same model, traced, optimized, planned and lowered, runs on the simulated chip — every layer of the
  stack in one call.

Where next: lab 00 is the tour of the stack; labs 03, 04, 05 and 08 go deeper into the layers the capstone
walked through."""),
]


def build() -> nbformat.NotebookNode:
    return labcells.build(CELLS, "lab12")


if __name__ == "__main__":
    labcells.main(CELLS, "lab12", DEFAULT_OUT, sys.argv)
