"""Schedule: a collective written out as messages — who sends which piece of its buffer to whom, at which step.

Every rank holds one flat buffer of ``buffer_len`` elements. A message (a *transfer*) copies ``count``
elements from ``src``'s buffer at ``src_off`` into ``dst``'s buffer at ``dst_off`` — or adds them there
(``reduce``), which is how a reduction happens. Each rank works through its *steps* in order: at a step it
posts all its sends and receives at once, waits for all of them, and only then adds or copies what it
received (so a send always reads the buffer as it was when the step began). That is exactly what the MPI
backend does with ``Isend``/``Irecv``/``Waitall``, and what the simulator replays.

A schedule says where each rank's input goes (``inputs[r] = (offset, length)``) and where its result is
read (``outputs[r]``), so one executor serves every collective.

Two ways to write one:
* ``Schedule.from_steps(...)`` — global steps: each transfer happens at the same step on both sides
  (ring, tree and halving-doubling algorithms are written like this; builders use numpy arrays).
* ``Schedule.from_programs(...)`` — one program per rank, as an MPI programmer writes it; sends and
  receives are matched in order per (sender, receiver) pair, as MPI does. A mismatch (sizes, a send
  nobody receives) or a deadlock is reported with the ranks and steps involved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Schedule", "ScheduleError", "DeadlockError", "chunk_bounds", "COLLECTIVES"]

COLLECTIVES = ("allreduce", "reduce_scatter", "allgather", "broadcast", "reduce", "alltoall")


class ScheduleError(ValueError):
    """A schedule that cannot run: mismatched sizes, unmatched messages, regions outside the buffer."""


class DeadlockError(ScheduleError):
    """Every unfinished rank waits for a message that no rank can send."""


def chunk_bounds(n: int, k: int) -> np.ndarray:
    """Offsets of ``k`` nearly equal chunks of ``n`` elements: chunk i is [b[i], b[i+1]) (sizes differ by ≤ 1)."""
    if k < 1:
        raise ValueError(f"chunk_bounds: need at least one chunk, got k={k}")
    return (np.arange(k + 1, dtype=np.int64) * int(n)) // int(k)


_COLUMNS = ("src", "dst", "src_off", "dst_off", "count", "reduce", "chunk", "send_step", "recv_step")


@dataclass
class Transfer:
    """One message of a schedule, for reading (``Schedule.transfer(i)``)."""
    index: int
    src: int
    dst: int
    src_off: int
    dst_off: int
    count: int
    reduce: bool
    chunk: int
    send_step: int
    recv_step: int

    def describe(self) -> str:
        what = "reduce" if self.reduce else "copy"
        label = f"chunk {self.chunk} " if self.chunk >= 0 else ""
        if self.src == self.dst:
            return f"rank {self.src} local {what} {label}[{self.src_off}:{self.src_off + self.count}] -> " \
                   f"[{self.dst_off}:{self.dst_off + self.count}]"
        return (f"rank {self.src} -> rank {self.dst}: {label}{self.count} elements [{self.src_off}:"
                f"{self.src_off + self.count}] ({what} into [{self.dst_off}:{self.dst_off + self.count}])")


class Schedule:
    """The messages of one collective on ``p`` ranks (see the module doc). Columns are numpy arrays."""

    def __init__(self, collective: str, algorithm: str, p: int, n: int, buffer_len: int,
                 inputs: list, outputs: list, columns: dict, *, root: int | None = None, lockstep: bool = True,
                 description: str = "", check_overlaps: bool = True):
        self.collective = collective
        self.algorithm = algorithm
        self.p = int(p)
        self.n = int(n)
        self.buffer_len = int(buffer_len)
        self.inputs = [None if r is None else (int(r[0]), int(r[1])) for r in inputs]
        self.outputs = [None if r is None else (int(r[0]), int(r[1])) for r in outputs]
        self.root = root
        self.description = description
        cols = {k: np.asarray(columns[k]) for k in _COLUMNS}
        if cols["count"].size and cols["count"].min() <= 0:
            if cols["count"].min() < 0:
                i = int(np.argmin(cols["count"]))
                raise ScheduleError(f"schedule {collective}/{algorithm}: step {int(cols['send_step'][i])} sends a "
                                    f"negative count ({int(cols['count'][i])} elements)")
            keep = cols["count"] > 0                   # empty chunks (n < p) send nothing
            cols = {k: v[keep] for k, v in cols.items()}
        steps = cols["send_step"]
        if steps.size > 1 and not (steps[1:] >= steps[:-1]).all():
            order = np.argsort(steps, kind="stable")
            cols = {k: v[order] for k, v in cols.items()}
        for k in _COLUMNS:
            setattr(self, k, np.ascontiguousarray(cols[k], dtype=bool if k == "reduce" else np.int64))
        self.lockstep = bool(lockstep and np.array_equal(self.send_step, self.recv_step))
        self._validate(check_overlaps)
        self.wave = self.send_step.copy() if self.lockstep else self._waves()
        self._programs: dict[int, list] | None = None

    # ---- builders ---------------------------------------------------------------------------
    @classmethod
    def from_steps(cls, collective: str, algorithm: str, p: int, n: int, steps, *, buffer_len: int | None = None,
                   inputs=None, outputs=None, root: int | None = None, description: str = "",
                   check_overlaps: bool = True) -> "Schedule":
        """``steps``: a list of steps, each a list of transfers ``(src, dst, src_off, dst_off, count, reduce
        [, chunk])``; or one dict of equal-length arrays with keys src, dst, src_off, dst_off, count, reduce,
        chunk and step. ``inputs``/``outputs`` default to the collective's convention (:func:`regions`).
        ``check_overlaps=False`` skips the (sorting) check that no step copies two messages onto the same
        elements; the built-in algorithms, proven against numpy by the tests, skip it to stay fast at scale."""
        if isinstance(steps, dict):
            arrays = {k: np.asarray(v) for k, v in steps.items()}
            step = arrays.pop("step")
            cols = {k: arrays.get(k, np.full(len(step), -1)) for k in
                    ("src", "dst", "src_off", "dst_off", "count", "reduce", "chunk")}
        else:
            rows = []
            for s, transfers in enumerate(steps):
                for t in transfers:
                    if len(t) not in (6, 7):
                        raise ScheduleError(f"{collective}/{algorithm}: step {s}: a transfer is (src, dst, src_off, "
                                            f"dst_off, count, reduce[, chunk]), got {t!r}")
                    rows.append((s, *t[:6], t[6] if len(t) == 7 else -1))
            arr = np.array(rows, dtype=np.int64).reshape(-1, 8)
            step = arr[:, 0]
            cols = dict(zip(("src", "dst", "src_off", "dst_off", "count", "reduce", "chunk"), arr[:, 1:].T))
        cols["send_step"] = cols["recv_step"] = step
        d_in, d_out, d_len = regions(collective, p, n, root)
        return cls(collective, algorithm, p, n, d_len if buffer_len is None else buffer_len,
                   d_in if inputs is None else inputs, d_out if outputs is None else outputs, cols, root=root,
                   description=description, check_overlaps=check_overlaps)

    @classmethod
    def from_chunk_steps(cls, collective: str, steps, p: int, n: int, algorithm: str = "yours") -> "Schedule":
        """Steps of ``(src, dst, chunk, reduce)`` where chunk c is the c-th of p :func:`chunk_bounds` pieces of
        an n-vector (how lab 10 writes the ring): each message moves that chunk to the same place."""
        b = chunk_bounds(n, p)
        rows = []
        for k, step in enumerate(steps):
            row = []
            for t in step:
                src, dst, ch, red = int(t[0]), int(t[1]), int(t[2]), bool(t[3])
                if not 0 <= ch < p:
                    raise ScheduleError(f"{collective}/{algorithm}: step {k}: chunk {ch} is not one of 0..{p - 1}")
                row.append((src, dst, int(b[ch]), int(b[ch]), int(b[ch + 1] - b[ch]), int(red), ch))
            rows.append(row)
        return cls.from_steps(collective, algorithm, p, n, rows)

    @classmethod
    def from_programs(cls, programs, *, n: int, buffer_len: int | None = None, collective: str = "allreduce",
                      algorithm: str = "custom", inputs=None, outputs=None, root: int | None = None) -> "Schedule":
        """One program per rank: ``programs[r]`` is a list of steps, each a list of operations
        ``("send", peer, offset, count)``, ``("recv", peer, offset, count)`` or ``("recv_reduce", peer, offset,
        count)``. The k-th send from a to b meets the k-th receive at b from a (MPI's order rule)."""
        p = len(programs)
        sends: dict[tuple[int, int], list] = {}
        recvs: dict[tuple[int, int], list] = {}
        for r, prog in enumerate(programs):
            for s, ops in enumerate(prog):
                for op in ops:
                    if not (isinstance(op, (tuple, list)) and len(op) == 4
                            and op[0] in ("send", "recv", "recv_reduce")):
                        raise ScheduleError(f"rank {r} step {s}: an operation is ('send'|'recv'|'recv_reduce', peer, "
                                            f"offset, count), got {op!r}")
                    kind, peer, off, count = op
                    if not 0 <= int(peer) < p:
                        raise ScheduleError(f"rank {r} step {s}: {kind} names rank {peer}, but the program has "
                                            f"ranks 0..{p - 1}")
                    if kind == "send":
                        sends.setdefault((r, int(peer)), []).append((s, int(off), int(count)))
                    else:
                        recvs.setdefault((int(peer), r), []).append((s, int(off), int(count), kind == "recv_reduce"))
        rows = []
        for pair in sorted(set(sends) | set(recvs)):
            a, b = pair
            ss, rr = sends.get(pair, []), recvs.get(pair, [])
            for k, (snd, rcv) in enumerate(zip(ss, rr)):
                if snd[2] != rcv[2]:
                    raise ScheduleError(
                        f"mismatched buffers: rank {a} step {snd[0]} sends {snd[2]} elements to rank {b}, but rank "
                        f"{b} step {rcv[0]} receives {rcv[2]} elements from rank {a} (message {k + 1} between them); "
                        f"both sides must agree on the size")
                rows.append((a, b, snd[1], rcv[1], snd[2], rcv[3], -1, snd[0], rcv[0]))
            if len(ss) > len(rr):
                s = ss[len(rr)]
                raise ScheduleError(f"rank {a} step {s[0]} sends {s[2]} elements to rank {b}, but rank {b} posts only "
                                    f"{len(rr)} receive(s) from rank {a}: that send would wait forever")
            if len(rr) > len(ss):
                r_ = rr[len(ss)]
                raise ScheduleError(f"rank {b} step {r_[0]} waits to receive {r_[2]} elements from rank {a}, but rank "
                                    f"{a} sends it only {len(ss)} message(s): that receive would wait forever")
        arr = np.array(rows, dtype=np.int64).reshape(-1, 9)
        cols = dict(zip(_COLUMNS, arr.T))
        d_in, d_out, d_len = regions(collective, p, n, root)
        return cls(collective, algorithm, p, n, d_len if buffer_len is None else buffer_len,
                   d_in if inputs is None else inputs, d_out if outputs is None else outputs, cols, root=root,
                   lockstep=False)

    # ---- checks -----------------------------------------------------------------------------
    def _where(self) -> str:
        return f"schedule {self.collective}/{self.algorithm} on {self.p} ranks"

    def _validate(self, check_overlaps: bool = True) -> None:
        where = self._where()
        p, L = self.p, self.buffer_len
        if len(self.inputs) != p or len(self.outputs) != p:
            raise ScheduleError(f"{where}: inputs and outputs need one region (or None) per rank")
        for what, regs in (("input", self.inputs), ("output", self.outputs)):
            for r, reg in enumerate(regs):
                if reg is not None and (reg[0] < 0 or reg[1] < 0 or reg[0] + reg[1] > L):
                    raise ScheduleError(f"{where}: rank {r}'s {what} region {reg} lies outside its buffer of {L}")
        if not self.src.size:
            return
        for name in ("src", "dst"):
            col = getattr(self, name)
            bad = np.flatnonzero((col < 0) | (col >= p))
            if bad.size:
                i = int(bad[0])
                raise ScheduleError(f"{where}: step {int(self.send_step[i])} names rank {int(col[i])}, but there are "
                                    f"only ranks 0..{p - 1}")
        for off, side in ((self.src_off, "src"), (self.dst_off, "dst")):
            bad = np.flatnonzero((off < 0) | (off + self.count > L))
            if bad.size:
                i = int(bad[0])
                rank = int(self.src[i] if side == "src" else self.dst[i])
                raise ScheduleError(f"{where}: step {int(self.send_step[i])}: rank {rank}'s region "
                                    f"[{int(off[i])}:{int(off[i] + self.count[i])}] lies outside its buffer of {L} "
                                    f"elements")
        if check_overlaps:
            self._check_conflicting_writes()

    def _check_conflicting_writes(self) -> None:
        """Two messages landing on overlapping elements of one rank in one step must both be reductions
        (their sum does not depend on arrival order; a copy would)."""
        S = int(self.recv_step.max()) + 1
        L1 = self.buffer_len + 1
        if self.p * S * L1 < 2 ** 62:       # one integer key sorts faster than a lexsort of three columns
            order = np.argsort((self.dst * S + self.recv_step) * L1 + self.dst_off)
        else:
            order = np.lexsort((self.dst_off, self.recv_step, self.dst))
        d, s = self.dst[order], self.recv_step[order]
        group = np.concatenate([[0], np.cumsum((d[1:] != d[:-1]) | (s[1:] != s[:-1]))])
        key = group * (self.buffer_len + 1)
        lo, hi = self.dst_off[order] + key, self.dst_off[order] + self.count[order] + key
        copy = ~self.reduce[order]
        prev_all = np.concatenate([[-1], np.maximum.accumulate(hi)[:-1]])
        prev_copy = np.concatenate([[-1], np.maximum.accumulate(np.where(copy, hi, -1))[:-1]])
        bad = np.flatnonzero((copy & (lo < prev_all)) | (~copy & (lo < prev_copy)))
        if not bad.size:
            return
        i = int(bad[0])
        j = next(int(k) for k in range(i - 1, -1, -1) if group[k] == group[i] and hi[k] > lo[i]
                 and (copy[i] or copy[k]))
        a, b = order[i], order[j]
        raise ScheduleError(
            f"{self._where()}: at step {int(s[i])} rank {int(d[i])} receives two messages into overlapping elements "
            f"[{int(self.dst_off[b])}:{int(self.dst_off[b] + self.count[b])}] (from rank {int(self.src[b])}) and "
            f"[{int(self.dst_off[a])}:{int(self.dst_off[a] + self.count[a])}] (from rank {int(self.src[a])}), and at "
            f"least one is a copy, so the result would depend on arrival order; make both reductions or use two steps")

    def _waves(self) -> np.ndarray:
        """Replay per-rank programs with synchronous messages; a message completes in the first round in
        which both sides are at its step. Raises DeadlockError when no rank can move."""
        p = self.p
        T = len(self.src)
        steps_of = [sorted(set(self.send_step[self.src == r].tolist()) | set(self.recv_step[self.dst == r].tolist()))
                    for r in range(p)]
        members: dict[tuple[int, int], list[int]] = {}
        for t in range(T):
            members.setdefault((int(self.src[t]), int(self.send_step[t])), []).append(t)
            members.setdefault((int(self.dst[t]), int(self.recv_step[t])), []).append(t)
        cur = [0] * p
        wave = np.full(T, -1, np.int64)
        rnd = 0
        while True:
            active = [r for r in range(p) if cur[r] < len(steps_of[r])]
            if not active:
                return wave
            moved = False
            posted = {r: steps_of[r][cur[r]] for r in active}
            for r in active:
                for t in members[(r, posted[r])]:
                    if wave[t] >= 0:
                        continue
                    a, b = int(self.src[t]), int(self.dst[t])
                    if posted.get(a) == int(self.send_step[t]) and posted.get(b) == int(self.recv_step[t]):
                        wave[t] = rnd
                        moved = True
            for r in active:
                if all(wave[t] >= 0 for t in members[(r, posted[r])]):
                    cur[r] += 1
                    moved = True
            if not moved:
                lines = []
                for r in active:
                    waits = []
                    for t in members[(r, posted[r])]:
                        if wave[t] >= 0:
                            continue
                        a, b = int(self.src[t]), int(self.dst[t])
                        other = b if a == r else a
                        other_step = int(self.recv_step[t] if a == r else self.send_step[t])
                        verb = f"send to rank {b}" if a == r else f"receive from rank {a}"
                        there = (f"rank {other} is at its step {posted[other]}" if other in posted
                                 else f"rank {other} has finished")
                        waits.append(f"{verb} (matched at rank {other}'s step {other_step}; {there})")
                    lines.append(f"rank {r} at step {posted[r]} waits to " + "; ".join(waits))
                raise DeadlockError(f"deadlock in {self._where()}: no rank can make progress.\n  " + "\n  ".join(lines)
                                    + "\nReorder the steps so that every receive's matching send is posted at the "
                                      "same step or earlier on the other rank.")
            rnd += 1

    # ---- reading ----------------------------------------------------------------------------
    @property
    def ntransfers(self) -> int:
        return int(self.src.size)

    @property
    def nsteps(self) -> int:
        """Number of waves (global steps) the schedule takes."""
        return int(self.wave.max()) + 1 if self.wave.size else 0

    def transfer(self, i: int) -> Transfer:
        return Transfer(i, *(int(getattr(self, k)[i]) if k != "reduce" else bool(self.reduce[i])
                             for k in _COLUMNS))

    def transfers_at(self, wave: int) -> list[Transfer]:
        return [self.transfer(int(i)) for i in np.flatnonzero(self.wave == wave)]

    def elements_sent(self) -> np.ndarray:
        """Elements each rank sends to other ranks (local copies excluded)."""
        remote = self.src != self.dst
        return np.bincount(self.src[remote], weights=self.count[remote], minlength=self.p).astype(np.int64)

    def elements_received(self) -> np.ndarray:
        remote = self.src != self.dst
        return np.bincount(self.dst[remote], weights=self.count[remote], minlength=self.p).astype(np.int64)

    def program(self, rank: int) -> list[tuple[int, list[int], list[int]]]:
        """Rank ``rank``'s part: ``[(step, send transfer ids, receive transfer ids), ...]`` in step order."""
        if self._programs is None:
            progs: dict[int, dict[int, tuple[list, list]]] = {r: {} for r in range(self.p)}
            for t in range(self.ntransfers):
                a, b = int(self.src[t]), int(self.dst[t])
                progs[a].setdefault(int(self.send_step[t]), ([], []))[0].append(t)
                progs[b].setdefault(int(self.recv_step[t]), ([], []))[1].append(t)
            self._programs = {r: [(s, sr[0], sr[1]) for s, sr in sorted(g.items())] for r, g in progs.items()}
        return self._programs[rank]

    def describe_step(self, wave: int) -> str:
        return "\n".join(t.describe() for t in self.transfers_at(wave))

    def summary(self) -> str:
        sent = self.elements_sent()
        lines = [f"Schedule {self.collective}/{self.algorithm}: {self.p} ranks, {self.n} elements per rank, "
                 f"{self.nsteps} steps, {self.ntransfers} messages"
                 + (f", root {self.root}" if self.root is not None else "")]
        if self.description:
            lines.append(f"  {self.description}")
        if self.p:
            lines.append(f"  elements sent per rank: min {int(sent.min())}, max {int(sent.max())}, "
                         f"total {int(sent.sum())}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Schedule {self.collective}/{self.algorithm}: p={self.p}, n={self.n}, {self.nsteps} steps>"


def regions(collective: str, p: int, n: int, root: int | None = None):
    """(inputs, outputs, buffer_len): where each rank's input goes and its result is read, by convention.

    allreduce: the whole vector in and out. reduce_scatter: the whole vector in, chunk r out (chunks from
    :func:`chunk_bounds`). allgather: chunk r in, the whole vector out. broadcast: the root's vector in,
    everyone's out. reduce: everyone's in, the root's out. alltoall: a buffer of 2n, input in [0, n) as p
    blocks, output in [n, 2n): block j of rank i lands in block i of rank j.
    """
    if collective not in COLLECTIVES:
        raise ValueError(f"unknown collective {collective!r}; choose one of {', '.join(COLLECTIVES)}")
    b = chunk_bounds(n, p)
    whole = [(0, n)] * p
    blocks = [(int(b[r]), int(b[r + 1] - b[r])) for r in range(p)]
    if collective == "allreduce":
        return whole, whole, n
    if collective == "reduce_scatter":
        return whole, blocks, n
    if collective == "allgather":
        return blocks, whole, n
    if collective in ("broadcast", "reduce"):
        root = 0 if root is None else root
        if not 0 <= root < p:
            raise ValueError(f"{collective}: root {root} is not a rank of 0..{p - 1}")
        one = [(0, n) if r == root else None for r in range(p)]
        return (one, whole, n) if collective == "broadcast" else (whole, one, n)
    if n % p:
        raise ValueError(f"alltoall: {n} elements do not split into {p} equal blocks (one per rank); make the "
                         f"length a multiple of {p}")
    return whole, [(n, n)] * p, 2 * n
