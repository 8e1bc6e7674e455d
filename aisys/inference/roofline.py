"""Why decode is memory-bound and prefill compute-bound: the FLOPs and bytes of one forward step.

A decoder step multiplies every new token by every weight matrix (2 FLOPs per weight per token) and reads
every weight once, however many tokens share the step. So

    prefill (hundreds of prompt tokens per step):  FLOPs/B ≈ tokens / bytes_per_element  → compute-bound
    decode  (one token per sequence per step):     FLOPs/B ≈ batch / bytes_per_element   → at batch 1 in
                                                   fp16 about 1 FLOP/B, far under any chip's ridge

and a decode step's time is the time to stream the weights plus the KV cache: batching more sequences into
the step is almost free until the batch reaches the ridge. :func:`step_flops_bytes` counts one step (the
lab's exercise 12.2), :func:`iteration_cost` a mixed step of an engine, :class:`RooflineClock` turns a step
into seconds on a chip preset, and :func:`cpu_roof` measures this CPU's roof.

Counting conventions (stated once, used everywhere):
- FLOPs are those of the matrix products, 2 per multiply-add: every new token through every weight matrix —
  per layer the q/k/v/out projections and the two MLP matrices, then the vocabulary head — plus attention:
  the i-th new token of a sequence (0-based) attends to past + i + 1 keys, for q·kᵀ and again for p·v.
- Bytes cross DRAM: all weights once per step, the cached keys and values each sequence reads (its past
  tokens) and the new keys and values it writes. Activations stay on chip; embeddings lookups are ignored.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .kv_cache import KVSpec

__all__ = ["ModelDims", "StepCost", "step_flops_bytes", "iteration_cost", "RooflineClock", "CpuRoof", "cpu_roof",
           "phase_points", "measure_phase"]


@dataclass(frozen=True)
class ModelDims:
    """The sizes of a decoder-only transformer that its cost depends on."""
    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    head_dim: int
    d_ff: int
    vocab_size: int

    def __post_init__(self):
        for name, v in self.__dict__.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"ModelDims: {name}={v!r} must be a positive int")

    @classmethod
    def of(cls, source) -> "ModelDims":
        """From ModelDims, a dict with its fields, or a TinyGPT-like model (``kv_spec()``, ``tok_emb``, ``blocks``
        with an ``mlp``, ``vocab_size``)."""
        if isinstance(source, ModelDims):
            return source
        if isinstance(source, dict):
            try:
                return cls(**{f: source[f] for f in cls.__dataclass_fields__})
            except KeyError as e:
                raise ValueError(f"ModelDims.of: the dict needs {list(cls.__dataclass_fields__)}; missing {e}") from None
        try:
            kv = KVSpec.of(source)
            return cls(kv.n_layer, int(source.tok_emb.embedding_dim), kv.n_head, kv.n_kv_head, kv.head_dim,
                       int(source.blocks[0].mlp[0].out_features), int(source.vocab_size))
        except (AttributeError, TypeError, IndexError):
            raise TypeError(f"ModelDims.of: cannot read the sizes of a {type(source).__name__}; pass a ModelDims "
                            f"or a dict with {list(cls.__dataclass_fields__)}") from None

    @property
    def kv(self) -> KVSpec:
        return KVSpec(self.n_layer, self.n_head, self.n_kv_head, self.head_dim)

    @property
    def layer_weights(self) -> int:
        d, q, kv = self.d_model, self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        return d * q + 2 * d * kv + q * d + 2 * d * self.d_ff

    @property
    def weights(self) -> int:
        """Elements of every weight matrix a token is multiplied by (layers, then the vocabulary head)."""
        return self.n_layer * self.layer_weights + self.d_model * self.vocab_size


@dataclass(frozen=True)
class StepCost:
    """FLOPs and DRAM bytes of one forward step, split into their sources."""
    linear_flops: int
    attention_flops: int
    weight_bytes: int
    kv_read_bytes: int
    kv_write_bytes: int
    tokens: int

    @property
    def flops(self) -> int:
        return self.linear_flops + self.attention_flops

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.kv_read_bytes + self.kv_write_bytes

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf

    def summary(self) -> str:
        return (f"{self.tokens} tokens: {self.flops:,} FLOPs ({self.attention_flops:,} in attention), "
                f"{self.bytes:,} B (weights {self.weight_bytes:,}, KV read {self.kv_read_bytes:,}, KV write "
                f"{self.kv_write_bytes:,}) -> {self.intensity:.3g} FLOP/B")


def _count(name: str, v, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"{name}={v!r} must be an int >= {low}")
    return int(v)


def iteration_cost(dims, segments, bytes_per_element: int = 2) -> StepCost:
    """One engine step over ``segments`` = [(new_tokens, past_tokens), ...], one per sequence in the step."""
    dims = ModelDims.of(dims)
    b = _count("bytes_per_element", bytes_per_element, 1)
    kv_token = 2 * dims.n_layer * dims.n_kv_head * dims.head_dim * b
    tokens = attended = past_read = 0
    for new, past in segments:
        new, past = _count("new_tokens", new, 0), _count("past tokens", past, 0)
        tokens += new
        attended += new * past + new * (new + 1) // 2
        past_read += past if new else 0
    attention = 4 * dims.n_layer * dims.n_head * dims.head_dim * attended
    return StepCost(2 * dims.weights * tokens, attention, dims.weights * b if tokens else 0, kv_token * past_read,
                    kv_token * tokens, tokens)


def step_flops_bytes(dims, batch: int, new_tokens: int, past: int, bytes_per_element: int = 2) -> tuple[int, int]:
    """(FLOPs, DRAM bytes) of one step: ``batch`` sequences, each bringing ``new_tokens`` tokens after ``past``
    cached ones. Prefill is ``past=0, new_tokens=prompt``; a decode step is ``new_tokens=1``."""
    _count("batch", batch, 1)
    _count("new_tokens", new_tokens, 1)
    cost = iteration_cost(dims, [(new_tokens, past)] * batch, bytes_per_element)
    return cost.flops, cost.bytes


class RooflineClock:
    """Seconds of a step on a chip preset by the roofline: max(FLOPs / peak, bytes / DRAM bandwidth), in the
    chip's own word size. Deterministic, so a serving run's timeline is the same on every machine."""

    def __init__(self, chip="davinci", bytes_per_element: int | None = None):
        from ..chip import preset
        self.chip = preset(chip)
        self.bytes_per_element = bytes_per_element or self.chip.matrix.input_bytes
        self.name = f"roofline of {self.chip.name} ({8 * self.bytes_per_element}-bit words)"

    def time(self, cost: StepCost) -> float:
        return max(cost.flops / self.chip.peak_ops_per_s, cost.bytes / self.chip.dram_bytes_per_s)

    def step_time(self, dims, segments) -> float:
        return self.time(iteration_cost(dims, segments, self.bytes_per_element))

    def __repr__(self) -> str:
        return f"RooflineClock({self.name})"


@dataclass(frozen=True)
class CpuRoof:
    """This CPU's roof, measured on one thread: float32 matmul FLOP/s and copy bandwidth (bytes read +
    written per second)."""
    peak_flops: float
    bandwidth: float

    @property
    def ridge(self) -> float:
        return self.peak_flops / self.bandwidth

    def point(self, name: str, flops: float, nbytes: float, seconds: float | None = None, kind: str = ""):
        """A RooflinePoint under this CPU's roof (with the achieved rate when ``seconds`` is measured)."""
        from ..chip import RooflinePoint
        return RooflinePoint(name, float(flops), float(nbytes), self.peak_flops, self.bandwidth,
                             None if seconds is None else flops / seconds, {}, kind)

    def summary(self) -> str:
        return (f"this CPU (one thread): {self.peak_flops / 1e9:.1f} GFLOP/s float32 matmul, "
                f"{self.bandwidth / 1e9:.1f} GB/s copy, ridge {self.ridge:.1f} FLOP/B")


def cpu_roof(repeat: int = 3) -> CpuRoof:
    """Measure this CPU (best of ``repeat``): a 512³ float32 matmul and a 64 MiB copy."""
    a = np.random.default_rng(0).random((512, 512), np.float32)
    src = np.ones(16 * 1024 * 1024, np.float32)
    dst = np.empty_like(src)

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    flops = 2 * 512 ** 3 / best(lambda: a @ a)
    bandwidth = 2 * src.nbytes / best(lambda: np.copyto(dst, src))
    return CpuRoof(flops, bandwidth)


def phase_points(model, chip="davinci", decode_batches=(1, 8, 64), prompt_lens=(64, 512), context: int = 64):
    """RooflinePoints on ``chip`` (in its word size): prefill of one prompt of each length in ``prompt_lens``,
    and a decode step (one token after ``context`` cached ones) at each batch size in ``decode_batches``."""
    from ..chip import preset, roofline_point
    chip = preset(chip)
    dims, b = ModelDims.of(model), chip.matrix.input_bytes
    points = []
    for n in prompt_lens:
        f, by = step_flops_bytes(dims, 1, n, 0, b)
        points.append(roofline_point(f"prefill {n} tokens", f, by, chip, kind="prefill"))
    for n in decode_batches:
        f, by = step_flops_bytes(dims, n, 1, context, b)
        points.append(roofline_point(f"decode b={n}", f, by, chip, kind="decode"))
    return points


def measure_phase(model, batch: int, new_tokens: int, past: int, repeat: int = 3, seed: int = 0) -> float:
    """Best-of-``repeat`` seconds of one forward step on this CPU: ``batch`` sequences bring ``new_tokens``
    tokens after ``past`` cached ones (a contiguous KV cache filled with a random prefix first)."""
    from ..framework.tensor import Tensor, no_grad
    from .kv_cache import KVCache
    rng = np.random.default_rng(seed)
    vocab = ModelDims.of(model).vocab_size
    best = math.inf
    was = model.training
    model.eval()
    try:
        with no_grad():
            for _ in range(repeat):
                cache = KVCache(KVSpec.of(model), batch, past + new_tokens)
                if past:
                    model(Tensor(rng.integers(0, vocab, (batch, past))), kv_cache=cache)
                ids = Tensor(rng.integers(0, vocab, (batch, new_tokens)))
                t = time.perf_counter()
                model(ids, kv_cache=cache)
                best = min(best, time.perf_counter() - t)
    finally:
        model.train(was)
    return best
