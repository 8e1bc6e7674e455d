"""Serving many requests at once: static vs continuous batching over paged or contiguous KV memory.

**Static (request-level) batching** forms a batch from the requests waiting when the engine is free, runs
it until its *last* request finishes, and only then takes new ones: a request that arrives one step after
a batch started waits for the whole batch, and the slots of requests that finish early stay idle.
**Continuous (iteration-level) batching** (Yu et al., "Orca", OSDI 2022) schedules every step anew: finished
requests leave at once, waiting ones join at the next step (their prompt is prefilled in the same step in
which the others decode one token each).

KV memory is ``kv_blocks`` blocks of ``block_size`` tokens (``paged.py``). With ``kv="paged"`` a sequence
takes blocks as it grows (vLLM); with ``kv="contiguous"`` each admitted request reserves room for the
model's whole context up front, as a server without paging must, and the unused part is wasted. Static
batching reserves a request's worst case (prompt + max_new_tokens, or the context when contiguous) at
admission, so it never runs out mid-batch. Continuous batching with paged KV can run out when sequences
grow: then the most recently admitted request is **preempted** (vLLM's policy) — by *recompute* (its blocks
are freed; it waits at the head of the queue and its prompt plus the tokens generated so far are prefilled
again) or by *swap* (its blocks are copied to host memory and back, at ``swap_bandwidth`` bytes/s).

The model really runs: every step is one call over the flat batch of scheduled tokens, and every request
samples with its own seeded generator, so each request's tokens equal ``generate`` on that request alone.
Time comes from ``clock``: a chip preset's roofline (deterministic; the default) or ``"wall"`` (measured).
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..framework.tensor import Tensor, no_grad
from .generate import check_lengths
from .kv_cache import KVSpec, kv_dtype as _kv_dtype
from .paged import PagedKVCache
from .roofline import ModelDims, RooflineClock, iteration_cost
from .sampling import Sampler

__all__ = ["Request", "request_stream", "Engine", "ServeReport", "RequestResult", "Iteration"]

BATCHING = ("continuous", "static")
KV_LAYOUTS = ("paged", "contiguous")
PREEMPTION = ("recompute", "swap")


@dataclass
class Request:
    """One generation request: a prompt, how many tokens to add, when it arrives (seconds), how to sample."""
    id: object
    prompt: np.ndarray
    max_new_tokens: int
    arrival: float = 0.0
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    stop_tokens: tuple = ()

    def __post_init__(self):
        self.prompt = np.asarray(self.prompt, np.int64).reshape(-1)


def request_stream(n: int, *, vocab_size: int, seed: int = 0, rate: float = 1.0, prompt_len=(8, 64),
                   output_len=(8, 64), temperature: float = 0.0, top_k=None, top_p=None, corpus=None) -> list:
    """``n`` seeded requests: Poisson arrivals at ``rate`` per second (the first at t=0), prompt and output
    lengths uniform in the inclusive ranges, prompt tokens uniform over the vocabulary or, with ``corpus``
    (an array of token ids), windows of it. Each request gets its own sampling seed."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"request_stream: n={n!r} must be a positive int")
    if not rate > 0:
        raise ValueError(f"request_stream: rate={rate!r} must be > 0 requests per second")
    for name, (lo, hi) in (("prompt_len", prompt_len), ("output_len", output_len)):
        if not 1 <= lo <= hi:
            raise ValueError(f"request_stream: {name}=({lo}, {hi}) must satisfy 1 <= low <= high")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, n)
    gaps[0] = 0.0
    arrivals = np.cumsum(gaps)
    plens = rng.integers(prompt_len[0], prompt_len[1] + 1, n)
    olens = rng.integers(output_len[0], output_len[1] + 1, n)
    seeds = rng.integers(0, 2 ** 31, n)
    out = []
    for i in range(n):
        if corpus is not None:
            corpus = np.asarray(corpus, np.int64)
            if len(corpus) <= plens[i]:
                raise ValueError(f"request_stream: the corpus has {len(corpus)} tokens, too few for a "
                                 f"{plens[i]}-token prompt")
            start = int(rng.integers(0, len(corpus) - plens[i]))
            prompt = corpus[start:start + plens[i]]
        else:
            prompt = rng.integers(0, vocab_size, plens[i])
        out.append(Request(i, prompt, int(olens[i]), float(arrivals[i]), temperature, top_k, top_p, int(seeds[i])))
    return out


@dataclass
class RequestResult:
    """What happened to one request. Times are seconds on the engine's clock."""
    id: object
    arrival: float
    prompt_len: int
    max_new_tokens: int
    tokens: list = field(default_factory=list)
    admitted: float | None = None
    first_token: float | None = None
    finish: float | None = None
    preemptions: int = 0

    @property
    def ttft(self) -> float:
        """Time to first token: arrival → the step that produced it."""
        return self.first_token - self.arrival

    @property
    def tpot(self) -> float:
        """Time per output token after the first (nan for a one-token answer)."""
        n = len(self.tokens)
        return (self.finish - self.first_token) / (n - 1) if n > 1 else math.nan

    @property
    def latency(self) -> float:
        return self.finish - self.arrival


@dataclass(frozen=True)
class Iteration:
    """One engine step: who prefilled, who decoded, who left, and the KV memory right after it ran."""
    index: int
    start: float
    duration: float
    prefill: tuple            # ((request id, tokens prefilled), ...)
    decode: tuple             # request ids that decoded one token
    finished: tuple
    preempted: tuple
    swapped_in: tuple
    waiting: int              # arrived requests not running after the step was scheduled
    kv_blocks: int
    kv_tokens: int
    kv_bytes_allocated: int
    kv_bytes_used: int
    tables: tuple             # ((request id, (blocks...), tokens stored), ...)

    @property
    def batch(self) -> int:
        return len(self.prefill) + len(self.decode)

    @property
    def tokens(self) -> int:
        return sum(n for _, n in self.prefill) + len(self.decode)


class ServeReport:
    """Per-request results and per-step records of one ``Engine.serve`` run, with the serving metrics."""

    def __init__(self, config: dict, results: list, iterations: list, block_bytes: int):
        self.config, self.requests, self.iterations = config, results, iterations
        self.block_bytes = block_bytes

    @property
    def outputs(self) -> dict:
        return {r.id: np.array(r.tokens, np.int64) for r in self.requests}

    @property
    def makespan(self) -> float:
        return max(r.finish for r in self.requests) - min(r.arrival for r in self.requests)

    @property
    def output_tokens(self) -> int:
        return sum(len(r.tokens) for r in self.requests)

    @property
    def throughput(self) -> float:
        """Generated tokens per second, first arrival to last finish."""
        return self.output_tokens / self.makespan if self.makespan > 0 else math.inf

    def ttft(self, q: float | None = None) -> float:
        """Mean time to first token, or its ``q`` quantile (0.5, 0.99, ...)."""
        xs = np.array([r.ttft for r in self.requests])
        return float(xs.mean() if q is None else np.quantile(xs, q))

    def tpot(self, q: float | None = None) -> float:
        xs = np.array([r.tpot for r in self.requests if len(r.tokens) > 1])
        if not xs.size:
            return math.nan
        return float(xs.mean() if q is None else np.quantile(xs, q))

    @property
    def kv_waste(self) -> float:
        """Share of allocated KV bytes that held no token, over all steps (Σ wasted / Σ allocated)."""
        alloc = sum(it.kv_bytes_allocated for it in self.iterations)
        return (alloc - sum(it.kv_bytes_used for it in self.iterations)) / alloc if alloc else 0.0

    @property
    def peak_kv_bytes(self) -> int:
        return max((it.kv_bytes_allocated for it in self.iterations), default=0)

    @property
    def preemptions(self) -> int:
        return sum(r.preemptions for r in self.requests)

    @property
    def mean_batch(self) -> float:
        return float(np.mean([it.batch for it in self.iterations])) if self.iterations else 0.0

    def row(self) -> dict:
        """The headline numbers (what the lab and the benchmark tabulate)."""
        return {"batching": self.config["batching"], "kv": self.config["kv"], "steps": len(self.iterations),
                "throughput": self.throughput, "ttft": self.ttft(), "ttft_p99": self.ttft(0.99),
                "tpot": self.tpot(), "kv_waste": self.kv_waste, "peak_kv_bytes": self.peak_kv_bytes,
                "preemptions": self.preemptions, "mean_batch": self.mean_batch}

    def summary(self) -> str:
        c = self.config
        unit, scale = _time_unit(self.makespan)
        lines = [f"{c['batching']} batching, {c['kv']} KV ({c['kv_blocks']} blocks x {c['block_size']} tokens"
                 f"{', preemption by ' + c['preemption'] if c['batching'] == 'continuous' else ''}), clock: "
                 f"{c['clock']}",
                 f"  {len(self.requests)} requests, {self.output_tokens:,} tokens generated in {len(self.iterations)} "
                 f"steps over {self.makespan * scale:.4g} {unit}: {self.throughput:,.4g} tokens/s",
                 f"  time to first token: mean {self.ttft() * scale:.4g} {unit}, p99 {self.ttft(0.99) * scale:.4g} "
                 f"{unit};  time per output token: mean {self.tpot() * scale:.4g} {unit}",
                 f"  mean batch {self.mean_batch:.1f} sequences; KV: peak {self.peak_kv_bytes:,} B, "
                 f"{self.kv_waste:.1%} of allocated bytes wasted; {self.preemptions} preemptions"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ServeReport {self.config['batching']}/{self.config['kv']}: {len(self.requests)} requests>"


def _time_unit(seconds: float) -> tuple[str, float]:
    for unit, scale in (("s", 1.0), ("ms", 1e3), ("us", 1e6)):
        if seconds * scale >= 1.0:
            return unit, scale
    return "us", 1e6


class _Seq:
    """A request inside the engine."""

    def __init__(self, req: Request, order: int):
        self.req, self.order = req, order
        self.sampler = Sampler(req.temperature, req.top_k, req.top_p, req.seed)
        self.tokens = [int(t) for t in req.prompt]          # prompt + generated
        self.result = RequestResult(req.id, float(req.arrival), len(req.prompt), int(req.max_new_tokens))
        self.swapped = None

    @property
    def id(self):
        return self.req.id

    @property
    def done(self) -> bool:
        r = self.result
        return len(r.tokens) >= r.max_new_tokens or (bool(r.tokens) and r.tokens[-1] in self.req.stop_tokens)


class Engine:
    """Serve requests with a real model over a paged KV pool; see the module docstring.

    ``kv_blocks`` (or ``kv_bytes``, converted to whole blocks) is the KV budget; ``max_batch`` caps the
    sequences in one step; ``max_tokens_per_step`` caps the tokens of one step (prompts included). ``clock``
    is a chip preset (or a RooflineClock) or "wall"; the roofline clock reads the model's sizes from the model
    (TinyGPT) or from ``dims`` (a ModelDims or dict).
    """

    def __init__(self, model, kv_blocks: int | None = None, *, kv_bytes: int | None = None, block_size: int = 16,
                 batching: str = "continuous", kv: str = "paged", max_batch: int | None = None,
                 max_tokens_per_step: int | None = None, preemption: str = "recompute", clock="davinci",
                 kv_dtype="float32", swap_bandwidth: float = 32e9, dims=None):
        if batching not in BATCHING:
            raise ValueError(f"Engine: batching={batching!r} must be one of {BATCHING}")
        if kv not in KV_LAYOUTS:
            raise ValueError(f"Engine: kv={kv!r} must be one of {KV_LAYOUTS}")
        if preemption not in PREEMPTION:
            raise ValueError(f"Engine: preemption={preemption!r} must be one of {PREEMPTION}")
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"Engine: block_size={block_size!r} must be a positive int (tokens per block)")
        for name, v in (("max_batch", max_batch), ("max_tokens_per_step", max_tokens_per_step)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"Engine: {name}={v!r} must be None or a positive int")
        spec = KVSpec.of(model)
        block_bytes = spec.bytes_per_token(kv_dtype) * int(block_size)
        if (kv_blocks is None) == (kv_bytes is None):
            raise ValueError("Engine: give the KV budget as kv_blocks=... or kv_bytes=... (one of them)")
        if kv_bytes is not None:
            if kv_bytes < block_bytes:
                raise ValueError(f"Engine: a KV budget of {kv_bytes:,} B is smaller than one block of {block_size} "
                                 f"tokens ({block_bytes:,} B = 2 x {spec.n_layer} layers x {spec.n_kv_head} kv heads x "
                                 f"{spec.head_dim} x {block_size} tokens x {_kv_dtype(kv_dtype).itemsize} B)")
            kv_blocks = int(kv_bytes // block_bytes)
        if isinstance(kv_blocks, bool) or not isinstance(kv_blocks, (int, np.integer)) or kv_blocks < 1:
            raise ValueError(f"Engine: kv_blocks={kv_blocks!r} is smaller than one block; the KV budget must hold at "
                             f"least one block of {block_size} tokens ({block_bytes:,} B)")
        if not swap_bandwidth > 0:
            raise ValueError(f"Engine: swap_bandwidth={swap_bandwidth!r} must be > 0 bytes/s")
        self.model = model
        self.batching, self.kv, self.preemption = batching, kv, preemption
        self.max_batch, self.max_tokens_per_step = max_batch, max_tokens_per_step
        self.swap_bandwidth = float(swap_bandwidth)
        self.cache = PagedKVCache(spec, int(kv_blocks), int(block_size), kv_dtype)
        self.context = int(getattr(model, "block_size", 0)) or None
        if clock == "wall":
            self.clock = None
            self.dims = None
        else:
            self.clock = clock if isinstance(clock, RooflineClock) else RooflineClock(clock)
            try:
                self.dims = ModelDims.of(dims if dims is not None else model)
            except TypeError as e:
                raise TypeError(f"Engine: the roofline clock needs the model's sizes: {e}; or use clock='wall'") \
                    from None
        if kv == "contiguous" and self.context is None:
            raise ValueError("Engine: kv='contiguous' reserves the model's whole context per request, but the model "
                             "has no block_size (context length)")

    @property
    def config(self) -> dict:
        return {"batching": self.batching, "kv": self.kv, "preemption": self.preemption,
                "kv_blocks": self.cache.num_blocks, "block_size": self.cache.block_size, "max_batch": self.max_batch,
                "clock": "wall clock (measured)" if self.clock is None else self.clock.name}

    # ---- validation -----------------------------------------------------------------------------------
    def _validate(self, requests) -> list:
        reqs = list(requests)
        if not reqs:
            raise ValueError("Engine.serve: no requests")
        seen = set()
        vocab = getattr(self.model, "vocab_size", None)
        for r in reqs:
            if not isinstance(r, Request):
                raise TypeError(f"Engine.serve: expected Request objects, got {type(r).__name__}")
            where = f"Engine.serve: request {r.id!r}"
            if r.id in seen:
                raise ValueError(f"{where} appears twice; request ids must be unique")
            seen.add(r.id)
            check_lengths(self.model, len(r.prompt), r.max_new_tokens, where)
            try:
                Sampler(r.temperature, r.top_k, r.top_p, r.seed)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            if vocab is not None and r.prompt.size and (r.prompt.min() < 0 or r.prompt.max() >= vocab):
                raise ValueError(f"{where}: token ids must be in [0, {vocab}), got {r.prompt.min()}..{r.prompt.max()}")
            if not (isinstance(r.arrival, (int, float)) and math.isfinite(r.arrival) and r.arrival >= 0):
                raise ValueError(f"{where}: arrival={r.arrival!r} must be a time >= 0 (seconds)")
            need = self._reservation(len(r.prompt), r.max_new_tokens)
            if need > self.cache.num_blocks:
                raise ValueError(f"{where} needs {need} KV blocks ({self._reserved_tokens(len(r.prompt), r.max_new_tokens)}"
                                 f" tokens) but the budget is {self.cache.num_blocks} blocks: it could never run")
            if self.max_tokens_per_step is not None and len(r.prompt) + r.max_new_tokens > self.max_tokens_per_step:
                raise ValueError(f"{where}: its prompt and output ({len(r.prompt) + r.max_new_tokens} tokens) could "
                                 f"exceed max_tokens_per_step={self.max_tokens_per_step} when recomputed")
        return reqs

    def _reserved_tokens(self, prompt: int, max_new: int) -> int:
        if self.kv == "contiguous":
            return self.context
        return prompt + max_new

    def _reservation(self, prompt: int, max_new: int) -> int:
        return self.cache.blocks_for(self._reserved_tokens(prompt, max_new))

    # ---- serving -------------------------------------------------------------------------------------
    def serve(self, requests, progress: bool = False) -> ServeReport:
        """Run every request to completion; returns a :class:`ServeReport`. Bad requests raise before anything
        runs, leaving the engine as it was."""
        reqs = self._validate(requests)
        seqs = [_Seq(r, i) for i, r in enumerate(reqs)]
        from ..models.progress import ProgressBar
        was = getattr(self.model, "training", False)
        self.model.eval()
        try:
            with no_grad(), ProgressBar(sum(r.max_new_tokens for r in reqs), desc="serve", enabled=progress) as bar:
                iterations = self._run(seqs, bar)
        finally:
            self.model.train(was)
            for seq in list(self.cache.tables):          # leave the pool empty, also after an error
                self.cache.free(seq)
        return ServeReport(self.config, [s.result for s in seqs], iterations, self.cache.block_bytes)

    def _run(self, seqs, bar) -> list:
        pending = deque(sorted(seqs, key=lambda s: (s.req.arrival, s.order)))
        waiting: deque = deque()
        swapped: deque = deque()
        running: list = []
        static_batch: list = []
        iterations: list = []
        now = pending[0].req.arrival
        cache = self.cache
        while pending or waiting or swapped or running or static_batch:
            while pending and pending[0].req.arrival <= now:
                waiting.append(pending.popleft())
            if not (waiting or swapped or running or static_batch):
                now = pending[0].req.arrival
                continue
            preempted, swapped_in, prefill = [], [], []
            swap_bytes = 0
            if self.batching == "static":
                if not static_batch:
                    static_batch = self._admit(waiting, [], prefill, now, whole=True)
                    running = list(static_batch)
                decode = [s for s in running if s not in prefill]
            else:
                decode = list(running)
                if self.kv == "paged":                    # every decode needs room for one token
                    while sum(cache.blocks_needed(s.id, 1) for s in decode) > cache.free_blocks:
                        victim = decode.pop()             # the most recently admitted request
                        running.remove(victim)
                        victim.result.preemptions += 1
                        preempted.append(victim.id)
                        if self.preemption == "swap":
                            victim.swapped = cache.swap_out(victim.id)
                            swap_bytes += victim.swapped.nbytes
                            swapped.appendleft(victim)
                        else:
                            cache.free(victim.id)
                            waiting.appendleft(victim)
                    for s in decode:
                        cache.reserve(s.id, 1)
                if not preempted:
                    while swapped and len(running) < (self.max_batch or math.inf):
                        s = swapped[0]
                        if s.swapped.k.shape[1] + 1 > cache.free_blocks:
                            break
                        swapped.popleft()
                        cache.swap_in(s.id, s.swapped)
                        swap_bytes += s.swapped.nbytes
                        s.swapped = None
                        cache.reserve(s.id, 1)
                        swapped_in.append(s.id)
                        running.append(s)
                        decode.append(s)
                    if not swapped:
                        running += self._admit(waiting, running, prefill, now, whole=False, decode_tokens=len(decode))
            if not prefill and not decode:
                raise RuntimeError("Engine: nothing could be scheduled (a request larger than the KV budget?)")
            segments = [(s, 1) for s in decode] + [(s, len(s.tokens)) for s in prefill]
            start = now
            now += self._step(segments) + swap_bytes / self.swap_bandwidth
            for s, _ in segments:
                if s.result.first_token is None:
                    s.result.first_token = now
            bar.update(len(segments))
            usage = cache.usage()
            members = static_batch if self.batching == "static" else running
            tables = tuple((s.id, tuple(cache.tables[s.id]), cache.lengths[s.id]) for s in members)
            if self.batching == "static":
                # a finished answer keeps its slot and is returned with the whole batch (request-level batching)
                running = [s for s in running if not s.done]
                finished = [] if running else static_batch
                if not running:
                    static_batch = []
            else:
                finished = [s for s, _ in segments if s.done]
                running = [s for s in running if not s.done]
            for s in finished:
                cache.free(s.id)
                s.result.finish = now
            iterations.append(Iteration(
                len(iterations), start, now - start, tuple((s.id, n) for s, n in segments if s in prefill),
                tuple(s.id for s in decode), tuple(s.id for s in finished), tuple(preempted), tuple(swapped_in),
                len(waiting) + len(swapped), usage.blocks_used, usage.tokens, usage.bytes_allocated, usage.bytes_used,
                tables))
        return iterations

    def _admit(self, waiting: deque, running: list, prefill: list, now: float, whole: bool,
               decode_tokens: int = 0) -> list:
        """First-come first-served: take waiting requests while the batch, the token budget and the KV blocks
        allow (stop at the first that does not fit). ``whole``: reserve the request's worst case up front."""
        cache, admitted = self.cache, []
        tokens = decode_tokens
        limit = self.max_batch or math.inf
        while waiting and len(running) + len(admitted) < limit:
            s = waiting[0]
            n = len(s.tokens)
            if self.max_tokens_per_step is not None and tokens + n > self.max_tokens_per_step and (admitted or running):
                break
            if whole or self.kv == "contiguous":
                reserve = self._reserved_tokens(len(s.req.prompt), s.req.max_new_tokens)
            else:
                reserve = n
            if cache.blocks_for(reserve) > cache.free_blocks:
                break
            waiting.popleft()
            cache.add(s.id)
            cache.reserve(s.id, reserve)
            tokens += n
            if s.result.admitted is None:
                s.result.admitted = now
            admitted.append(s)
            prefill.append(s)
        return admitted

    def _step(self, segments) -> float:
        """Run the model on the scheduled tokens, sample one token per sequence; returns the step's seconds."""
        cache = self.cache
        ids = np.concatenate([np.asarray(s.tokens[-n:], np.int64) for s, n in segments])
        cache.schedule([(s.id, n) for s, n in segments])
        t0 = time.perf_counter()
        logits = self.model(Tensor(ids[None, :]), kv_cache=cache)
        logits = (logits[0] if isinstance(logits, tuple) else logits)._data[0]
        ends = np.cumsum([n for _, n in segments]) - 1
        for (s, _), row in zip(segments, ends):
            tok = s.sampler(logits[row])
            s.tokens.append(tok)
            s.result.tokens.append(tok)
        if self.clock is None:
            return time.perf_counter() - t0
        return self.clock.time(iteration_cost(self.dims, [(n, len(s.tokens) - 1 - n) for s, n in segments],
                                              self.clock.bytes_per_element))
