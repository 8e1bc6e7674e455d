"""The capstone: one decode step of TinyGPT taken through every layer of the stack, and what it yields.

    report = inference.walk_stack(model, batch_sizes=(1, 2, 4, 8, 16), context=64, chip="davinci")
    print(report.summary())

application  the model and its KV cache (what one token costs in memory)
frontend     ``aisys.trace`` of one decode step: ids (batch, 1) and every layer's cached keys and values in,
             logits and the new keys and values out (``TensorKVCache`` writes attention with graph ops)
compiler     ``aisys.compile``: the pass pipeline, each pass's rewrites, fused numba kernels
runtime      the memory plan of the optimized graph: peak vs the lower bound (the most bytes live at once)
kernels      the fused kernels, and the tiled attention kernel against naive attention (bytes moved)
chip         ``aisys.chip.lower_graph`` + ``simulate``: cycles and utilization on a preset

and, for every batch size, decode throughput three ways: the chip simulation, the roofline estimate on the
same preset, and a measurement of the real model on this CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .kv_cache import KVSpec, TensorKVCache, kv_cache_bytes
from .roofline import ModelDims, RooflineClock, measure_phase

__all__ = ["walk_stack", "StackReport", "BatchPoint", "decode_step_function"]


@dataclass(frozen=True)
class BatchPoint:
    """Decode throughput at one batch size: seconds per step simulated, estimated and measured."""
    batch: int
    chip_s: float
    roofline_s: float
    cpu_s: float | None

    @property
    def chip_tokens_per_s(self) -> float:
        return self.batch / self.chip_s

    @property
    def roofline_tokens_per_s(self) -> float:
        return self.batch / self.roofline_s

    @property
    def cpu_tokens_per_s(self) -> float | None:
        return None if self.cpu_s is None else self.batch / self.cpu_s


@dataclass
class StackReport:
    """Everything :func:`walk_stack` produced, layer by layer (``layers()`` lists them for a summary or a view)."""
    model: object
    chip: object
    batch: int
    context: int
    dims: ModelDims
    graph: object
    compiled: object
    plan: object
    program: object
    result: object
    attention: dict
    points: list = field(default_factory=list)

    @property
    def kv(self) -> KVSpec:
        return self.dims.kv

    def layers(self) -> list[tuple[str, str, str]]:
        """(layer, what it did, the numbers) for each layer of the stack, top to bottom."""
        d, g, c, p, r = self.dims, self.graph, self.compiled, self.plan, self.result
        params = sum(int(np.prod(t.shape)) for t in self.model.parameters())
        kv_token = kv_cache_bytes(self.kv, 1, 1, "float16")
        changed = [f"{res.label} ({len(res.rewrites)})" for res in c.pass_log if res.changed]
        tiled, naive = self.attention["tiled"], self.attention["naive"]
        util = r.unit_stats["matrix"].busy / r.cycles if r.cycles else 0.0
        return [
            ("application (应用层)", f"TinyGPT: {d.n_layer} layers, {d.n_head} heads of {d.head_dim}, "
                                    f"d_model {d.d_model}, vocabulary {d.vocab_size}",
             f"{params:,} parameters; KV cache {kv_token:,} B per token in fp16 "
             f"({kv_cache_bytes(self.kv, self.context, self.batch, 'float16'):,} B for {self.batch} x {self.context})"),
            ("frontend (开发层)", f"aisys.trace of one decode step (batch {self.batch}, {self.context} cached tokens)",
             f"{len(g.op_nodes)} ops, {len(g.inputs)} inputs (ids + keys and values of {d.n_layer} layers), "
             f"{len(g.outputs)} outputs"),
            ("compiler (编译层)", f"{len(c.pass_log)} passes; rewrites by {', '.join(changed) or 'none'}",
             f"{len(c.original.op_nodes)} -> {len(c.graph.op_nodes)} ops, {len(c.kernels)} fused numba kernels"),
            ("runtime (运行时)", f"memory plan ({p.planner})",
             f"peak {p.peak_bytes:,} B vs lower bound {p.lower_bound_bytes:,} B "
             f"({p.peak_bytes / max(1, p.lower_bound_bytes):.2f}x)"),
            ("kernels (算子)", "tiled attention with the online softmax vs naive attention (prefill of the context)",
             f"{tiled.bytes_moved:,} B vs {naive.bytes_moved:,} B moved ({naive.bytes_moved / tiled.bytes_moved:.1f}x "
             f"fewer); decode step {self.attention['decode'].bytes_moved:,} B"),
            ("chip (硬件层)", f"{self.program.chip.name}: {len(self.program.instructions):,} tile instructions",
             f"{r.cycles:,} cycles = {r.time_s * 1e6:.4g} us per step, matrix unit busy {util:.1%}; "
             f"{self.batch / r.time_s:,.0f} tokens/s"),
        ]

    def summary(self, measured: bool = True) -> str:
        """The layers and the throughput table (``measured=False`` leaves out this CPU's timings, which differ
        from run to run)."""
        lines = [f"TinyGPT decode step through the stack (batch {self.batch}, context {self.context}, "
                 f"chip {self.program.chip.name})"]
        for name, what, numbers in self.layers():
            lines.append(f"  {_pad(name, 22)} {what}")
            lines.append(f"  {'':<22} {numbers}")
        if self.points:
            lines.append("  decode tokens/s vs batch size:")
            lines.append(f"    {'batch':>5} {'chip (simulated)':>17} {'roofline':>12}" + (f" {'this CPU':>12}" if measured
                                                                                          else ""))
            for pt in self.points:
                cpu = "-" if pt.cpu_s is None else f"{pt.cpu_tokens_per_s:,.0f}"
                lines.append(f"    {pt.batch:>5} {pt.chip_tokens_per_s:>17,.0f} {pt.roofline_tokens_per_s:>12,.0f}"
                             + (f" {cpu:>12}" if measured else ""))
        return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    """Left-align ``text`` in ``width`` terminal columns (CJK characters take two)."""
    import unicodedata
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - cols)


def decode_step_function(model):
    """``step(ids, k0, v0, k1, v1, ...) -> (logits, new k0, new v0, ...)``: one decode step written with graph
    ops over explicit cache tensors, so ``aisys.trace`` / ``aisys.compile`` can take it."""
    n_layer = KVSpec.of(model).n_layer

    def decode_step(ids, *past):
        cache = TensorKVCache([(past[2 * i], past[2 * i + 1]) for i in range(n_layer)])
        logits = model(ids, kv_cache=cache)
        return (logits, *[t for kv in cache.present for t in kv])

    return decode_step


def _step_inputs(model, batch: int, context: int, seed: int):
    from ..framework.tensor import Tensor
    kv, dims = KVSpec.of(model), ModelDims.of(model)
    rng = np.random.default_rng(seed)
    ids = Tensor(rng.integers(0, dims.vocab_size, (batch, 1)))
    past = [Tensor(rng.standard_normal((batch, kv.n_kv_head, context, kv.head_dim)).astype(np.float32))
            for _ in range(2 * kv.n_layer)]
    return ids, past


def walk_stack(model, batch_sizes=(1, 2, 4, 8), context: int = 64, chip="davinci", batch: int | None = None,
               measure: bool = True, seed: int = 0) -> StackReport:
    """Take one decode step of ``model`` (TinyGPT or a model with the same interface) through every layer
    (module docstring). The layer-by-layer report is for ``batch`` (default: the largest batch size); decode
    tokens/s is reported for every size in ``batch_sizes`` (measured on this CPU too when ``measure``)."""
    import aisys
    from .. import chip as chip_mod
    from ..kernels.attention import attention, attention_naive
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
        raise ValueError(f"walk_stack: batch_sizes={batch_sizes!r} must be positive ints")
    dims = ModelDims.of(model)
    limit = getattr(model, "block_size", None)
    if isinstance(context, bool) or not isinstance(context, (int, np.integer)) or context < 1 or \
            (limit is not None and context >= limit):
        raise ValueError(f"walk_stack: context={context!r} must be an int in [1, {limit}) (the model's block_size "
                         f"leaves room for the decoded token)")
    batch = sizes[-1] if batch is None else int(batch)
    cfg = chip_mod.preset(chip)
    clock = RooflineClock(cfg)
    was = model.training
    model.eval()
    try:
        step = decode_step_function(model)
        ids, past = _step_inputs(model, batch, context, seed)
        graph = aisys.trace(step, ids, *past)
        compiled = aisys.compile(step, ids, *past)
        plan = compiled.memory_plan
        program = chip_mod.lower_graph(compiled.graph, cfg)
        result = chip_mod.simulate(program)
        rng = np.random.default_rng(seed)
        kv = dims.kv
        q = rng.standard_normal((1, kv.n_head, context, kv.head_dim)).astype(np.float32)
        k = rng.standard_normal((1, kv.n_kv_head, context, kv.head_dim)).astype(np.float32)
        _, tiled = attention(q, k, k, causal=True, return_stats=True)
        _, naive = attention_naive(q, k, k, causal=True, return_stats=True)
        qd = rng.standard_normal((batch, kv.n_head, 1, kv.head_dim)).astype(np.float32)
        kd = rng.standard_normal((batch, kv.n_kv_head, context + 1, kv.head_dim)).astype(np.float32)
        _, decode = attention(qd, kd, kd, causal=True, return_stats=True)
        points = []
        for b in sizes:
            if b == batch:
                sim = result.time_s
            else:
                sub_ids, sub_past = _step_inputs(model, b, context, seed)
                sub = aisys.compile(step, sub_ids, *sub_past)
                sim = chip_mod.simulate(chip_mod.lower_graph(sub.graph, cfg)).time_s
            est = clock.step_time(dims, [(1, context)] * b)
            cpu = measure_phase(model, b, 1, context, seed=seed) if measure else None
            points.append(BatchPoint(b, sim, est, cpu))
    finally:
        model.train(was)
    return StackReport(model, cfg, batch, context, dims, graph, compiled, plan, program, result,
                       {"tiled": tiled, "naive": naive, "decode": decode}, points)
