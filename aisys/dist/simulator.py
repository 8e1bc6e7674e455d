"""The collective simulator: replay a schedule on a topology with α-β-γ timing and link contention.

Timing. A rank posts a step when its previous step is complete. A message starts when both its sender and
its receiver have posted the steps it belongs to, and takes α (the sum of its links' latencies) plus the
time its busiest link needs to carry every byte that crosses it in the same wave: alone on its links a
message takes α + n/B; two equal messages through one switch port take α + 2n/B each. A step is complete
when all of its messages have arrived, plus γ seconds per byte it had to add up (the reduction's cost).
The result is a :class:`SimReport` with the time, bytes per rank and per link, and a Perfetto ``Trace``.

Data. Given inputs, the same schedule is also executed on numpy buffers (:func:`execute`): sends read the
buffer as it was when their step began, receives are copied or added once the step completes, in message
order — exactly what the MPI backend does, so both give bit-identical results.
"""
from __future__ import annotations

import numpy as np

from ..framework.events import Trace
from .algorithms import DEFAULT_ALGORITHM, build_schedule
from .costs import bus_factor
from .schedule import Schedule, ScheduleError
from .topology import Topology
from .units import format_bandwidth, format_bytes, format_time

__all__ = ["simulate", "execute", "SimReport", "bus_factor"]


def _input_problem(schedule: Schedule, inputs) -> str | None:
    """Why these per-rank inputs do not fit the schedule (None when they do)."""
    p = schedule.p
    if len(inputs) != p:
        return f"{len(inputs)} inputs for {p} ranks (pass one array per rank)"
    sizes = []
    for r, (x, reg) in enumerate(zip(inputs, schedule.inputs)):
        need = 0 if reg is None else reg[1]
        if reg is None:
            sizes.append(None)
            continue
        if x is None:
            return f"rank {r} passes no buffer but {schedule.collective} needs {need} elements from it"
        sizes.append(int(np.size(x)))
    bad = [r for r, (s, reg) in enumerate(zip(sizes, schedule.inputs)) if reg is not None and s != reg[1]]
    if bad:
        listing = ", ".join(f"rank {r}: {sizes[r]}" for r in range(p) if sizes[r] is not None)
        need = ", ".join(f"rank {r}: {schedule.inputs[r][1]}" for r in bad[:4])
        return (f"mismatched buffers: ranks pass {listing} elements, but {schedule.collective}/{schedule.algorithm} "
                f"on {p} ranks of {schedule.n} elements needs {need} (every rank must pass the same shape)")
    return None


def execute(schedule: Schedule, inputs, record: bool = False):
    """Run ``schedule`` on numpy buffers, one per rank; returns each rank's output (None where it has none).

    ``record=True`` also returns every rank's whole buffer after each step: ``(outputs, snapshots)`` with
    ``snapshots[k][r]`` the buffer of rank r after step k (``snapshots[0]``: before any step)."""
    problem = _input_problem(schedule, inputs)
    if problem:
        raise ScheduleError(f"{schedule.collective}/{schedule.algorithm}: {problem}")
    arrays = [None if x is None else np.asarray(x) for x, reg in zip(inputs, schedule.inputs)]
    present = [a for a, reg in zip(arrays, schedule.inputs) if a is not None and reg is not None]
    dtype = np.result_type(*present) if present else np.float64
    bufs = [np.zeros(schedule.buffer_len, dtype=dtype) for _ in range(schedule.p)]
    for r, reg in enumerate(schedule.inputs):
        if reg is not None:
            bufs[r][reg[0]:reg[0] + reg[1]] = arrays[r].reshape(-1)
    src, dst, so, do, cnt, red = (schedule.src, schedule.dst, schedule.src_off, schedule.dst_off, schedule.count,
                                  schedule.reduce)
    order = np.argsort(schedule.wave, kind="stable")
    waves = schedule.wave[order]
    bounds = np.flatnonzero(np.diff(np.concatenate([[-1], waves, [waves[-1] + 1 if waves.size else 0]])))
    if schedule.lockstep:
        apply_wave = schedule.wave
    else:   # a receive lands when its whole step (on the receiving rank) is complete
        key = schedule.dst * (int(schedule.recv_step.max()) + 1) + schedule.recv_step
        last = {}
        for t in range(schedule.ntransfers):
            last[int(key[t])] = max(last.get(int(key[t]), -1), int(schedule.wave[t]))
        apply_wave = np.array([last[int(k)] for k in key], dtype=np.int64)
    pending: dict[int, list] = {}
    snaps = [[b.copy() for b in bufs]] if record else None
    for i in range(len(bounds) - 1):
        idx = order[bounds[i]:bounds[i + 1]]
        w = int(schedule.wave[idx[0]])
        for t in idx:
            a, o, c = int(src[t]), int(so[t]), int(cnt[t])
            pending.setdefault(int(apply_wave[t]), []).append((int(t), bufs[a][o:o + c].copy()))
        for t, data in sorted(pending.pop(w, []), key=lambda x: x[0]):
            b, o = int(dst[t]), int(do[t])
            if red[t]:
                bufs[b][o:o + len(data)] += data
            else:
                bufs[b][o:o + len(data)] = data
        if record:
            snaps.append([b.copy() for b in bufs])
    outs = [None if reg is None else bufs[r][reg[0]:reg[0] + reg[1]].copy() for r, reg in enumerate(schedule.outputs)]
    return (outs, snaps) if record else outs


class SimReport:
    """What the simulator measured: ``time`` (s), ``bytes_sent``/``bytes_received`` per rank, ``link_bytes``
    per link, ``start``/``end`` per message, algorithm and bus bandwidth, ``trace`` (built on first use) and
    ``outputs`` when inputs were given."""

    def __init__(self, schedule: Schedule, topology: Topology, itemsize: int, gamma: float, start, end,
                 rank_done, link_bytes, outputs=None):
        self.schedule = schedule
        self.topology = topology
        self.itemsize = itemsize
        self.gamma = gamma
        self.start = start
        self.end = end
        self.rank_done = rank_done
        self.link_bytes = link_bytes
        self.outputs = outputs
        self._trace: Trace | None = None

    @property
    def time(self) -> float:
        return float(self.rank_done.max()) if self.rank_done.size else 0.0

    @property
    def nbytes(self) -> int:
        """Bytes of the whole vector each rank contributes (the size nccl-tests reports)."""
        return self.schedule.n * self.itemsize

    @property
    def bytes_sent(self) -> np.ndarray:
        return self.schedule.elements_sent() * self.itemsize

    @property
    def bytes_received(self) -> np.ndarray:
        return self.schedule.elements_received() * self.itemsize

    @property
    def steps(self) -> int:
        return self.schedule.nsteps

    @property
    def algbw(self) -> float:
        """Algorithm bandwidth: vector bytes / time (bytes/s)."""
        return self.nbytes / self.time if self.time else float("inf")

    @property
    def busbw(self) -> float:
        return self.algbw * bus_factor(self.schedule.collective, self.schedule.p)

    def link_utilization(self) -> np.ndarray:
        """Share of the run each link spent moving bytes (its bytes / bandwidth / total time)."""
        if not self.time:
            return np.zeros_like(self.link_bytes)
        return self.link_bytes / self.topology.link_bandwidth / self.time

    @property
    def trace(self) -> Trace:
        """One lane per rank, one event per step of that rank (from its post to its completion)."""
        if self._trace is None:
            self._trace = self._build_trace()
        return self._trace

    def _build_trace(self) -> Trace:
        s = self.schedule
        tr = Trace(f"simulated {s.collective}/{s.algorithm} on {self.topology.name}", unit="us")
        groups: dict[tuple[int, int], list] = {}
        for t in range(s.ntransfers):
            groups.setdefault((int(s.src[t]), int(s.send_step[t])), []).append(("send", t))
            groups.setdefault((int(s.dst[t]), int(s.recv_step[t])), []).append(("recv", t))
        for (r, step), items in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            t0 = min(self.start[t] for _, t in items) * 1e6
            t1 = max(self.end[t] for _, t in items) * 1e6
            sends = [f"c{int(s.chunk[t])}->{int(s.dst[t])}" for k, t in items if k == "send" and s.src[t] != s.dst[t]]
            recvs = [f"c{int(s.chunk[t])}<-{int(s.src[t])}" + ("+" if s.reduce[t] else "")
                     for k, t in items if k == "recv" and s.src[t] != s.dst[t]]
            nbytes = sum(int(s.count[t]) for k, t in items if k == "send") * self.itemsize
            tr.add_event(f"rank {r}", f"step {step}", t0, t1, sends=" ".join(sends), recvs=" ".join(recvs),
                         bytes_sent=nbytes, kind="comm")
        return tr

    def summary(self) -> str:
        s, topo = self.schedule, self.topology
        sent = self.bytes_sent
        lines = [f"{s.collective}/{s.algorithm} on {topo.name}: {s.p} ranks, {format_bytes(self.nbytes)} per rank, "
                 f"{s.nsteps} steps, {s.ntransfers} messages",
                 f"  time {format_time(self.time)}; algBw {format_bandwidth(self.algbw)}, "
                 f"busBw {format_bandwidth(self.busbw)}",
                 f"  bytes sent per rank: max {format_bytes(sent.max()) if sent.size else 0}"
                 f" ({int(sent.max()) if sent.size else 0} B), total {format_bytes(sent.sum())}"]
        if self.link_bytes.size and self.time:
            util = self.link_utilization()
            busiest = int(np.argmax(util))
            lines.append(f"  busiest link: {topo.link_name(busiest)}, {format_bytes(self.link_bytes[busiest])}, "
                         f"busy {100 * util[busiest]:.1f}% of the time")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _itemsize(dtype) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        raise ValueError(f"simulate: dtype {dtype!r} is not a numpy dtype; use e.g. 'float32' or 'float16'") from None


def simulate(what, algorithm: str | None = None, *, topology: Topology | str | None = None, nbytes: int | None = None,
             inputs=None, nranks: int | None = None, dtype="float32", gamma: float = 0.0, root: int = 0,
             segments: int | None = None) -> SimReport:
    """Simulate one collective: ``simulate("allreduce", "ring", topology=topo, nbytes=64 << 20)``.

    ``what`` is a collective name (built with ``algorithm`` for ``nranks`` ranks, default: every device of the
    topology) or a ready :class:`Schedule`. Give either ``nbytes`` (the vector each rank contributes; for
    allgather the whole gathered vector) or ``inputs`` (one numpy array per rank: the data is then reduced for
    real and ``report.outputs`` holds each rank's result). ``gamma``: seconds per byte added up.
    """
    if topology is None:
        raise ValueError("simulate: pass topology= (a Topology or a preset name such as 'dgx_a100')")
    topo = Topology.preset(topology) if isinstance(topology, str) else topology
    if not isinstance(topo, Topology):
        raise TypeError(f"simulate: topology must be a Topology or a preset name, got {type(topology).__name__}")
    if inputs is not None:
        inputs = list(inputs)
        present = [np.asarray(x) for x in inputs if x is not None]
        dtype = np.result_type(*present) if present else np.dtype(dtype)
    itemsize = _itemsize(dtype)
    if isinstance(what, Schedule):
        sched = what
        topo.check_ranks(sched.p, f"{sched.collective}/{sched.algorithm}")
    else:
        p = topo.ndevices if nranks is None else nranks
        if inputs is not None and nranks is None:
            p = len(inputs)
        topo.check_ranks(p, f"{what}/{algorithm or DEFAULT_ALGORITHM.get(what, '?')}")
        if inputs is not None:
            n = _vector_length(what, inputs, root)
        elif nbytes is not None:
            if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
                raise ValueError(f"simulate: nbytes must be a byte count >= 0, got {nbytes!r}")
            if nbytes % itemsize:
                raise ValueError(f"simulate: nbytes={nbytes} is not a whole number of {np.dtype(dtype).name} "
                                 f"elements ({itemsize} bytes each)")
            n = int(nbytes) // itemsize
        else:
            raise ValueError("simulate: give nbytes= (how much each rank contributes) or inputs= (the data)")
        nodes = None
        if algorithm == "hierarchical":
            nodes = [x for x in topo.nodes if x[0] < p]
            if sum(len(x) for x in nodes) != p:
                raise ValueError(f"allreduce/hierarchical: {p} ranks do not fill whole nodes of {topo.name!r} "
                                 f"(node sizes {[len(x) for x in topo.nodes]})")
        sched = build_schedule(what, algorithm, p, n, root=root, nodes=nodes, segments=segments)
    outputs = execute(sched, inputs) if inputs is not None else None
    start, end, done, link_bytes = _time(sched, topo, itemsize, float(gamma))
    return SimReport(sched, topo, itemsize, float(gamma), start, end, done, link_bytes, outputs)


def _vector_length(collective: str, inputs, root: int) -> int:
    if collective == "allgather":
        return int(sum(np.size(x) for x in inputs))
    if collective == "broadcast":
        if not 0 <= root < len(inputs) or inputs[root] is None:
            raise ValueError(f"broadcast: the root (rank {root}) must pass the data")
        return int(np.size(inputs[root]))
    return int(np.size(inputs[0]))


def _time(s: Schedule, topo: Topology, itemsize: int, gamma: float, ready0=None):
    """Per message start/end, per rank completion time, bytes per link (see the module doc). ``ready0``:
    when each rank arrives at the collective (default: all at 0)."""
    T = s.ntransfers
    start = np.zeros(T)
    end = np.zeros(T)
    link_bytes = np.zeros(topo.nlinks)
    ready = np.zeros(s.p) if ready0 is None else np.array(ready0, dtype=float)
    if T == 0:
        return start, end, ready, link_bytes
    nbytes = s.count.astype(float) * itemsize
    paths = topo.paths(s.src, s.dst)
    valid = paths >= 0
    nl = topo.nlinks
    all_valid = bool(valid.all())
    hops = paths.reshape(-1) if all_valid else paths[valid]
    per_msg_hops = paths.shape[1] if all_valid else valid.sum(axis=1)
    link_bytes = np.bincount(hops, weights=np.repeat(nbytes, per_msg_hops), minlength=nl)
    if all_valid:
        alpha = topo.link_alpha[paths].sum(axis=1)
        bw = topo.link_bandwidth[paths]
    else:
        safe = np.where(valid, paths, 0)
        alpha = np.where(valid, topo.link_alpha[safe], 0.0).sum(axis=1)
        bw = np.where(valid, topo.link_bandwidth[safe], np.inf)
    order = np.argsort(s.wave, kind="stable")
    cuts = np.flatnonzero(np.diff(s.wave[order])) + 1
    if not s.lockstep:
        # groups: (rank, step) on each side, numbered densely; a group completes in its last message's wave
        S = int(max(s.send_step.max(), s.recv_step.max())) + 1
        keys, inv = np.unique(np.concatenate([s.src * S + s.send_step, s.dst * S + s.recv_step]),
                              return_inverse=True)
        gsend, grecv = inv[:T], inv[T:]
        group_rank = keys // S
        done_wave = np.full(len(keys), -1, np.int64)
        np.maximum.at(done_wave, gsend, s.wave)
        np.maximum.at(done_wave, grecv, s.wave)
        group_end = np.zeros(len(keys))
        group_red = np.zeros(len(keys))
        g_order = np.argsort(done_wave, kind="stable")
        g_cuts = np.searchsorted(done_wave[g_order], np.arange(int(s.wave.max()) + 2))
    # contention: the messages of one wave that cross the same link share it; each is done when the link has
    # carried all of them (exact for the step's end under fair sharing, a little pessimistic for small ones)
    hop_key = np.repeat(s.wave, per_msg_hops) * max(nl, 1) + hops
    hop_bytes = np.repeat(nbytes, per_msg_hops)
    if int(s.wave.max() + 1) * max(nl, 1) <= 50_000_000:
        link_load = np.bincount(hop_key, weights=hop_bytes)[hop_key]
    else:
        _, inv_k = np.unique(hop_key, return_inverse=True)
        link_load = np.bincount(inv_k, weights=hop_bytes)[inv_k]
    if all_valid:
        hop_time = (link_load / bw.reshape(-1)).reshape(paths.shape)
    else:
        hop_time = np.zeros(paths.shape)
        hop_time[valid] = link_load / bw[valid]
    dur = np.where(valid.any(axis=1), alpha + hop_time.max(axis=1, initial=0.0), 0.0)
    red_bytes = nbytes * s.reduce
    for idx in np.split(order, cuts):
        a, b = s.src[idx], s.dst[idx]
        st = np.maximum(ready[a], ready[b])
        en = st + dur[idx]
        start[idx], end[idx] = st, en
        if s.lockstep:                      # every step of this wave completes now
            fin = ready.copy()
            np.maximum.at(fin, a, en)
            np.maximum.at(fin, b, en)
            if gamma:
                red = np.zeros(s.p)
                np.add.at(red, b, red_bytes[idx])
                fin += gamma * red
            ready = fin
        else:
            w = int(s.wave[idx[0]])
            np.maximum.at(group_end, gsend[idx], en)
            np.maximum.at(group_end, grecv[idx], en)
            if gamma:
                np.add.at(group_red, grecv[idx], red_bytes[idx])
            finished = g_order[g_cuts[w]:g_cuts[w + 1]]
            if finished.size:
                np.maximum.at(ready, group_rank[finished], group_end[finished] + gamma * group_red[finished])
    return start, end, ready.copy(), link_bytes
