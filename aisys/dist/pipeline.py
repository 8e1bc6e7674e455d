"""Pipeline parallelism: GPipe and 1F1B schedules, their bubble, a simulated step and a real one on MPI ranks.

A model cut into p stages, one per device, and a batch cut into m micro-batches. Stage s can run the
forward of micro-batch i only after stage s−1 has, and the backward only after stage s+1 has. GPipe
(Huang et al., NeurIPS 2019) runs all m forwards then all m backwards; 1F1B (PipeDream-Flush, Narayanan
et al., 2019/2021) runs p−s−1 warm-up forwards and then alternates one forward, one backward. Both leave
every stage idle for p−1 of the m+p−1 slots — the *bubble* (p−1)/(m+p−1) — but 1F1B keeps at most p−s
micro-batches' activations alive instead of m.
"""
from __future__ import annotations

import numpy as np

from .timeline import TaskGraph, Timeline

__all__ = ["one_f_one_b_order", "pipeline_schedule", "bubble_fraction", "simulate_pipeline", "PipelineReport", "pipeline_step"]

SCHEDULES = ("gpipe", "1f1b")


def one_f_one_b_order(p: int, m: int, stage: int) -> list[tuple[str, int]]:
    """Stage ``stage``'s 1F1B order: p−stage−1 warm-up forwards, then one forward / one backward, then the
    remaining backwards (lab 11's exercise reads it here)."""
    if not 0 <= stage < p:
        raise ValueError(f"one_f_one_b_order: stage {stage} is not one of 0..{p - 1}")
    return pipeline_schedule(p, m, "1f1b")[stage]


def bubble_fraction(p: int, m: int) -> float:
    """The idle share of a pipeline step with equal stages: (p−1)/(m+p−1)."""
    if p < 1 or m < 1:
        raise ValueError(f"bubble_fraction: need p >= 1 stages and m >= 1 micro-batches, got p={p}, m={m}")
    return (p - 1) / (m + p - 1)


def pipeline_schedule(p: int, m: int, kind: str = "1f1b") -> list[list[tuple[str, int]]]:
    """Per stage, the order of its work: ``[("F", 0), ("F", 1), ..., ("B", 0), ...]``."""
    if kind not in SCHEDULES:
        raise ValueError(f"pipeline schedule {kind!r} is not one of {SCHEDULES}")
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1 or \
            isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"pipeline_schedule: need integers p >= 1 stages and m >= 1 micro-batches, got p={p}, m={m}")
    out = []
    for s in range(p):
        if kind == "gpipe":
            out.append([("F", i) for i in range(m)] + [("B", i) for i in range(m)])
            continue
        warm = min(p - s - 1, m)
        ops = [("F", i) for i in range(warm)]
        for i in range(m - warm):
            ops += [("F", warm + i), ("B", i)]
        ops += [("B", i) for i in range(m - warm, m)]
        out.append(ops)
    return out


class PipelineReport:
    """A simulated pipeline step: ``timeline``, ``makespan``, ``bubble`` (measured idle share of the stages),
    ``peak_activations`` (micro-batches alive per stage), ``trace``."""

    def __init__(self, p, m, kind, timeline: Timeline, peak_activations):
        self.p, self.m, self.kind = p, m, kind
        self.timeline = timeline
        self.peak_activations = peak_activations

    @property
    def makespan(self) -> float:
        return self.timeline.makespan

    @property
    def bubble(self) -> float:
        return self.timeline.idle_fraction([f"stage {s}" for s in range(self.p)])

    @property
    def trace(self):
        return self.timeline.trace

    def summary(self) -> str:
        return (f"{self.kind} pipeline, {self.p} stages x {self.m} micro-batches: step {self.makespan:.6g} s, "
                f"bubble {100 * self.bubble:.2f}% (formula (p-1)/(m+p-1) = {100 * bubble_fraction(self.p, self.m):.2f}%), "
                f"peak activations per stage {self.peak_activations[:8]}{' ...' if self.p > 8 else ''}")

    def __repr__(self) -> str:
        return self.summary()


def simulate_pipeline(p: int, m: int, kind: str = "1f1b", t_forward: float = 1.0, t_backward: float = 2.0,
                      t_comm: float = 0.0, order=None) -> PipelineReport:
    """One training step of a p-stage pipeline with m micro-batches; every stage takes ``t_forward`` and
    ``t_backward`` seconds per micro-batch, and passing an activation (or its gradient) takes ``t_comm``.
    ``order``: your own per-stage order (a list of p lists of ("F", i)/("B", i)) instead of ``kind``'s; it is
    checked (each micro-batch's F then B exactly once per stage) and a deadlock is reported."""
    sched = pipeline_schedule(p, m, kind) if order is None else _check_order(order, p, m)
    g = TaskGraph(f"{kind} pipeline {p}x{m}")
    fid: dict[tuple[int, int], int] = {}
    bid: dict[tuple[int, int], int] = {}
    # add in stage order; dependencies on later stages are filled in afterwards
    for s in range(p):
        for op, i in sched[s]:
            name = f"{op}{i}"
            dur = t_forward if op == "F" else t_backward
            tid = g.add(name, f"stage {s}", dur, kind="forward" if op == "F" else "backward", microbatch=i)
            (fid if op == "F" else bid)[(s, i)] = tid
    for s in range(p):
        for i in range(m):
            if s > 0:
                dep = fid[(s - 1, i)]
                if t_comm:
                    dep = g.add(f"act {i}", f"link {s - 1}->{s}", t_comm, deps=[dep], kind="comm")
                g.depend(fid[(s, i)], dep)
            if s < p - 1:
                dep = bid[(s + 1, i)]
                if t_comm:
                    dep = g.add(f"grad {i}", f"link {s + 1}->{s}", t_comm, deps=[dep], kind="comm")
                g.depend(bid[(s, i)], dep)
            else:
                g.depend(bid[(s, i)], fid[(s, i)])
    tl = g.simulate()
    peaks = []
    for s in range(p):
        alive = peak = 0
        for op, _ in sched[s]:
            alive += 1 if op == "F" else -1
            peak = max(peak, alive)
        peaks.append(peak)
    return PipelineReport(p, m, kind, tl, peaks)


def _check_order(order, p: int, m: int):
    if not isinstance(order, (list, tuple)) or len(order) != p:
        raise ValueError(f"pipeline order: expected one list of operations per stage ({p}), got "
                         f"{type(order).__name__} of length {len(order) if hasattr(order, '__len__') else '?'}")
    out = []
    for s, ops in enumerate(order):
        ops = [(str(op), int(i)) for op, i in ops]
        want = sorted([("F", i) for i in range(m)] + [("B", i) for i in range(m)])
        if sorted(ops) != want:
            raise ValueError(f"pipeline order: stage {s} must run F and B of each micro-batch 0..{m - 1} exactly "
                             f"once; got {ops}")
        for i in range(m):
            if ops.index(("B", i)) < ops.index(("F", i)):
                raise ValueError(f"pipeline order: stage {s} runs B{i} before F{i}; a backward needs its forward")
        out.append(ops)
    return out


def pipeline_step(comm, stage, inputs=None, targets=None, loss_fn=None, micro_batches: int = 4,
                  kind: str = "1f1b"):
    """Run one forward/backward of a pipeline for real: this rank is stage ``comm.rank`` of ``comm.size``.

    ``stage`` is this rank's part of the model (an aisys Module). Stage 0 needs ``inputs`` (a Tensor of the
    whole batch), the last stage ``targets`` and ``loss_fn(output, target)``. The batch is cut into
    ``micro_batches`` pieces; activations and gradients travel with ``comm.send``/``comm.recv``. Gradients
    accumulate in the stage's parameters (each micro-batch's loss is divided by m, so they equal the
    full batch's). Returns the mean loss on the last stage, None elsewhere.
    """
    from ..framework.tensor import Tensor

    p, s, m = comm.size, comm.rank, int(micro_batches)
    if s == 0 and inputs is None:
        raise ValueError("pipeline_step: stage 0 needs the inputs")
    if s == p - 1 and (targets is None or loss_fn is None):
        raise ValueError(f"pipeline_step: the last stage (rank {s}) needs targets and loss_fn")
    xs = _split(inputs, m, "inputs") if s == 0 else None
    ys = _split(targets, m, "targets") if s == p - 1 else None
    saved: dict[int, tuple] = {}
    losses = []
    for op, i in pipeline_schedule(p, m, kind)[s]:
        if op == "F":
            with comm.region(f"F{i}", "forward"):
                x = xs[i] if s == 0 else Tensor(comm.recv(s - 1, tag=i), requires_grad=True)
                out = stage(x)
                if s < p - 1:
                    comm.isend(out.numpy(), s + 1, tag=i)
                    saved[i] = (x, out)
                else:
                    loss = loss_fn(out, ys[i]) / m
                    losses.append(float(loss.numpy()) * m)
                    saved[i] = (x, loss)
        else:
            with comm.region(f"B{i}", "backward"):
                x, out = saved.pop(i)
                if s == p - 1:
                    out.backward()
                else:
                    out.backward(Tensor(comm.recv(s + 1, tag=16000 + i)))
                if s > 0:
                    comm.isend(x.grad.numpy(), s - 1, tag=16000 + i)
    comm.wait_sends()
    return float(np.mean(losses)) if losses else None


def _split(t, m, what):
    n = t.shape[0]
    if n % m:
        raise ValueError(f"pipeline_step: the batch of {n} {what} does not split into {m} equal micro-batches")
    k = n // m
    return [t[i * k:(i + 1) * k] for i in range(m)]
