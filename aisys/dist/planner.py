"""The parallel planner (自动并行): rank (dp, tp, pp, ZeRO stage) layouts of a model on a cluster by step time and
memory per device, and say why the best one wins.

For each layout with dp·tp·pp = devices (tp within a node, pp dividing the layers) and each ZeRO stage:
* memory per device = model states (:func:`zero_memory` of Ψ/(tp·pp) parameters over dp ranks) + activations:
  per layer and micro-batch s·b·h·(10 + 24/tp) bytes (Korthikanti et al., "Reducing Activation Recomputation in
  Large Transformer Models", 2022, Table 2, fp16, no recomputation; the attention-score term is left out), with
  pp micro-batches in flight on the first stage under 1F1B;
* compute = 6·Ψ·tokens FLOPs (forward + backward, Kaplan et al. 2020; Narayanan et al. 2021) over all devices at
  ``efficiency`` of their peak, stretched by the pipeline bubble (m+pp−1)/m;
* tensor parallel: 4 all-reduces of the b·s·h fp16 activations per layer and micro-batch (2 forward, 2
  backward; Megatron-LM) among the tp ranks of a node;
* data parallel: one all-reduce of the 2Ψ/(tp·pp) bytes of fp16 gradients per step (ZeRO-3: 1.5×, the extra
  parameter all-gather), ring over the dp ranks, not overlapped (an upper bound);
* pipeline: one send of the b·s·h activations (and one of its gradient) per micro-batch and stage boundary.
Collective times come from the closed forms (:mod:`aisys.dist.costs`) with α and bandwidth of the links
the ranks actually use on the topology.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .costs import collective_time, link_alpha_beta
from .topology import Topology
from .units import format_bandwidth
from .zero import memory_breakdown

__all__ = ["Device", "DEVICES", "ModelSpec", "Layout", "PlanReport", "plan"]


@dataclass(frozen=True)
class Device:
    """One accelerator: peak FLOP/s (dense fp16/bf16), memory bytes, and where the figures come from."""
    name: str
    flops: float
    memory: float
    source: str = ""

    @classmethod
    def from_chip(cls, chip: str, cores: int, memory: float, name: str | None = None, source: str = "") -> "Device":
        """A device made of ``cores`` copies of an ``aisys.chip`` preset core (its peak read from the preset)."""
        from ..chip import preset
        c = preset(chip)
        return cls(name or f"{cores} x {c.name}", cores * c.peak_ops_per_s, float(memory),
                   source or f"{cores} cores of aisys.chip preset {c.name!r} ({c.peak_tops:.3g} TOPS each)")


def _ascend910() -> Device:
    return Device.from_chip("davinci", 32, 32e9, name="Ascend 910 (32 Da Vinci cores)",
                            source="32 cores of the aisys.chip 'davinci' preset (Hot Chips 2019: Ascend 910 has 32 "
                                   "Da Vinci cores, ~256 TFLOPS fp16) with 32 GB of HBM2")


DEVICES = {
    "a100_80gb": lambda: Device("A100 80GB", 312e12, 80e9,
                                "NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020): 312 TFLOPS dense "
                                "fp16/bf16 Tensor Core peak; 80 GB HBM2e (A100 80GB datasheet)"),
    "ascend910": _ascend910,
}


@dataclass(frozen=True)
class ModelSpec:
    """A transformer to train: parameters Ψ, layers, hidden size, sequence length, global batch (sequences)."""
    params: float
    layers: int
    hidden: int
    seq_len: int = 2048
    global_batch: int = 512
    micro_batch: int = 1

    @classmethod
    def gpt(cls, layers: int, hidden: int, **kw) -> "ModelSpec":
        """Ψ ≈ 12·layers·hidden² (attention 4h², MLP 8h²), as in the Megatron-LM papers."""
        return cls(params=12.0 * layers * hidden ** 2, layers=layers, hidden=hidden, **kw)


@dataclass
class Layout:
    dp: int
    tp: int
    pp: int
    zero: int
    memory: dict = field(default_factory=dict)
    times: dict = field(default_factory=dict)
    fits: bool = True

    @property
    def memory_total(self) -> float:
        return sum(self.memory.values())

    @property
    def step_time(self) -> float:
        return sum(self.times.values())

    def label(self) -> str:
        return f"dp={self.dp} tp={self.tp} pp={self.pp} ZeRO-{self.zero}"


class PlanReport:
    """Every layout (``layouts``, best first: fitting ones by step time, then the rest), ``best``, ``table()``
    and ``explain()``."""

    def __init__(self, model: ModelSpec, device: Device, topology: Topology, layouts: list[Layout]):
        self.model, self.device, self.topology = model, device, topology
        self.layouts = sorted(layouts, key=lambda l: (not l.fits, l.step_time, l.memory_total))

    @property
    def best(self) -> Layout:
        if not self.layouts or not self.layouts[0].fits:
            raise ValueError(f"no layout fits in {self.device.memory / 1e9:.0f} GB per device; the smallest needs "
                             f"{min(l.memory_total for l in self.layouts) / 1e9:.1f} GB — add devices or "
                             f"use a smaller model/micro-batch")
        return self.layouts[0]

    def table(self, top: int = 10) -> str:
        head = (f"{'layout':<28} {'memory GB':>9} {'fits':>4} {'step s':>8} {'compute':>8} {'bubble':>7} "
                f"{'tp comm':>8} {'dp comm':>8} {'pp comm':>8}")
        rows = [head]
        for l in self.layouts[:top]:
            t = l.times
            rows.append(f"{l.label():<28} {l.memory_total / 1e9:9.1f} {'yes' if l.fits else 'no':>4} "
                        f"{l.step_time:8.3f} {t['compute']:8.3f} {t['bubble']:7.3f} {t['tp comm']:8.3f} "
                        f"{t['dp comm']:8.3f} {t['pp comm']:8.3f}")
        return "\n".join(rows)

    def explain(self) -> str:
        b = self.best
        lines = [f"best: {b.label()} — step {b.step_time:.3f} s, {b.memory_total / 1e9:.1f} GB of "
                 f"{self.device.memory / 1e9:.0f} GB per device"]
        rivals = [l for l in self.layouts[1:] if l.fits]
        if rivals:
            r = rivals[0]
            diffs = sorted(((r.times[k] - b.times[k], k) for k in b.times), reverse=True)
            gain, what = diffs[0]
            if r.step_time - b.step_time <= 1e-9 * max(b.step_time, 1e-30):
                lines.append(f"runner-up: {r.label()} — the same step time; the best needs less memory "
                             f"({b.memory_total / 1e9:.1f} vs {r.memory_total / 1e9:.1f} GB per device)")
                return "\n".join(lines + self._dropped(b))
            lines.append(f"runner-up: {r.label()} — step {r.step_time:.3f} s; the best saves {gain:.3f} s of {what}"
                         + (f" ({_why(what, b, r, self)})" if _why(what, b, r, self) else ""))
        return "\n".join(lines + self._dropped(b))

    def _dropped(self, b: Layout) -> list[str]:
        dropped = [l for l in self.layouts if not l.fits]
        if dropped:
            fastest = min(dropped, key=lambda l: l.step_time)
            if fastest.step_time < b.step_time:
                return [f"faster but too big: {fastest.label()} ({fastest.step_time:.3f} s) needs "
                        f"{fastest.memory_total / 1e9:.1f} GB per device"]
        return []

    def summary(self) -> str:
        return (f"plan for {self.model.params / 1e9:.3g} B parameters on {self.topology.ndevices} x {self.device.name} "
                f"({self.topology.name}): {sum(l.fits for l in self.layouts)} of {len(self.layouts)} layouts fit\n"
                + self.table() + "\n" + self.explain())

    def __repr__(self) -> str:
        return self.summary()


def _why(what: str, b: Layout, r: Layout, rep: PlanReport) -> str:
    if what == "tp comm":
        return (f"tensor parallelism of {r.tp} moves activations every layer; {b.tp} ranks keep that inside one node"
                if r.tp > b.tp else "")
    if what == "dp comm":
        return f"dp={r.dp} all-reduces {2 * rep.model.params / (r.tp * r.pp) / 1e9:.2g} GB of gradients per rank"
    if what == "bubble":
        return f"pp={r.pp} idles (pp−1)/(m+pp−1) of the step"
    if what == "compute":
        return "the same FLOPs; ZeRO-3 and pipeline splits change only the overheads"
    return ""


def plan(model: ModelSpec, topology: Topology | str, device: Device | str = "a100_80gb", *,
         efficiency: float = 0.5, zero_stages=(0, 1, 2, 3), bytes_per_value: int = 2) -> PlanReport:
    """Rank every (dp, tp, pp, ZeRO) layout of ``model`` on every device of ``topology`` (see the module doc)."""
    topo = Topology.preset(topology) if isinstance(topology, str) else topology
    dev = DEVICES[device]() if isinstance(device, str) else device
    if not 0 < efficiency <= 1:
        raise ValueError(f"plan: efficiency (the share of peak FLOP/s reached) must be in (0, 1], got {efficiency}")
    N = topo.ndevices
    per_node = len(topo.nodes[0])
    h, s, L, bm = model.hidden, model.seq_len, model.layers, model.micro_batch
    act_bytes = bm * s * h * bytes_per_value
    flops = 6.0 * model.params * model.global_batch * s
    layouts = []
    for tp in [t for t in range(1, per_node + 1) if per_node % t == 0]:
        for pp in [q for q in range(1, L + 1) if L % q == 0]:
            if N % (tp * pp):
                continue
            dp = N // (tp * pp)
            if model.global_batch % (dp * bm):
                continue
            m = model.global_batch // (dp * bm)
            psi = model.params / (tp * pp)
            a_tp = link_alpha_beta(topo, 0, 1) if tp > 1 else (0.0, 1.0)
            a_dp = link_alpha_beta(topo, 0, tp * pp) if dp > 1 else (0.0, 1.0)
            a_pp = link_alpha_beta(topo, 0, tp) if pp > 1 else (0.0, 1.0)
            compute = flops / (N * dev.flops * efficiency)
            bubble = compute * (pp - 1) / m
            tp_comm = (L / pp) * m * 4 * collective_time("allreduce", "ring", tp, act_bytes, *a_tp) if tp > 1 else 0.0
            pp_comm = 2 * (m + pp - 2) * (a_pp[0] + act_bytes / a_pp[1]) if pp > 1 else 0.0
            acts = (L / pp) * min(pp, m) * s * bm * h * (10 + 24 / tp)
            for z in zero_stages:
                grad_bytes = 2 * psi * (1.5 if z == 3 else 1.0)
                dp_comm = collective_time("allreduce", "ring", dp, grad_bytes, *a_dp) if dp > 1 else 0.0
                mem = memory_breakdown(psi, dp, z, activations=acts)
                lay = Layout(dp, tp, pp, z, mem, {"compute": compute, "bubble": bubble, "tp comm": tp_comm,
                                                  "dp comm": dp_comm, "pp comm": pp_comm})
                lay.fits = lay.memory_total <= dev.memory
                layouts.append(lay)
    if not layouts:
        raise ValueError(f"plan: no (dp, tp, pp) layout divides {N} devices, {L} layers and a global batch of "
                         f"{model.global_batch} with micro-batch {bm}")
    return PlanReport(model, dev, topo, layouts)


def describe_links(topology: Topology) -> str:
    """The links a plan prices, with units (GB/s and Gbps)."""
    return "\n".join(f"{t.name}: {format_bandwidth(t.bandwidth)}" for t in topology.link_types)
