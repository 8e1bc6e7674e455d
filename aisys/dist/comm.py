"""Communicators: what a rank's function receives as ``comm`` — ``comm.rank``, ``comm.size`` and collectives.

    def work(comm, n):
        x = np.full(n, comm.rank + 1.0)
        return comm.allreduce(x, algorithm="ring")

Two implementations share this interface:
* :class:`MPIComm` (real processes, :func:`aisys.dist.run`): each collective runs its :class:`Schedule`
  with MPI point-to-point messages — per step ``Irecv``/``Isend``/``Waitall``, then add or copy what arrived —
  or, with ``algorithm="mpi"``, MPI's own ``MPI_Allreduce``/``MPI_Allgather``/... for comparison.
* :class:`SimComm` (threads in this process, ``run(..., backend="sim")``): every rank's buffer meets at a
  rendezvous, the schedule is executed on numpy and timed by the simulator on a topology, and each rank's
  clock advances by the simulated time (compute between calls is the thread's own CPU time).

Before every collective the ranks compare what they were asked to do (operation, algorithm, shape,
dtype, root); a mismatch stops every rank with an error naming each rank's call. Every call is recorded
as an event on the rank's lane of the run's ``Trace`` (``with comm.region("forward"):`` records compute).
"""
from __future__ import annotations

import contextlib
import threading
import time

import numpy as np

from .algorithms import ALGORITHMS, DEFAULT_ALGORITHM, build_schedule
from .schedule import Schedule
from .units import format_bytes

__all__ = ["Communicator", "MPIComm", "SimComm", "CollectiveMismatch", "RankFailed"]


class CollectiveMismatch(RuntimeError):
    """Ranks disagreed about a collective call (different operation, algorithm, shape, dtype or root)."""


class RankFailed(RuntimeError):
    """Another rank of the same run failed, so this one cannot continue."""


_NEEDS_ROOT = ("broadcast", "reduce")


class Communicator:
    """The SPMD interface (see the module doc). Subclasses provide the transport."""

    rank: int
    size: int

    def __init__(self):
        self.events: list[tuple] = []            # (lane, name, start s, end s, args)
        self.calls = 0
        self.trace_steps = False                 # also record every schedule step as an event
        self._local = threading.local()          # the lane of the current thread's calls

    # ---- clock and events -----------------------------------------------------------------------
    def now(self) -> float:
        raise NotImplementedError

    def record(self, name: str, start: float, end: float, kind: str = "compute", lane: str | None = None,
               **args) -> None:
        """Add an event to this rank's lane (``lane="comm"``: its communication lane, ``rank r comm``)."""
        lane = lane or getattr(self._local, "lane", None)
        where = f"rank {self.rank}" + (f" {lane}" if lane else "")
        self.events.append((where, name, start, end, {"kind": kind, **args}))

    @contextlib.contextmanager
    def region(self, name: str, kind: str = "compute", lane: str | None = None, **args):
        """``with comm.region("backward"):`` records the block as an event on this rank's lane; calls made
        inside a ``lane="comm"`` region are recorded on the communication lane too."""
        t0 = self.now()
        before = getattr(self._local, "lane", None)
        if lane:
            self._local.lane = lane
        try:
            yield
        finally:
            self._local.lane = before
            self.record(name, t0, self.now(), kind, lane=lane, **args)

    # ---- collectives ------------------------------------------------------------------------------
    def allreduce(self, x, algorithm: str = "ring", nodes=None) -> np.ndarray:
        """The elementwise sum of every rank's ``x`` (same shape and dtype on every rank), on every rank.
        ``nodes`` (lists of ranks, one per node) is the layout ``algorithm="hierarchical"`` needs."""
        x = self._array(x, "allreduce")
        out = self._collective("allreduce", algorithm, x.reshape(-1), x.size, x, nodes=nodes)
        return out.reshape(x.shape)

    def reduce_scatter(self, x, algorithm: str = "ring") -> np.ndarray:
        """Sum every rank's ``x`` and keep this rank's chunk of the flattened sum (``chunk_bounds``)."""
        x = self._array(x, "reduce_scatter")
        return self._collective("reduce_scatter", algorithm, x.reshape(-1), x.size, x)

    def allgather(self, x, algorithm: str = "ring", total: int | None = None) -> np.ndarray:
        """Every rank's ``x`` stacked: shape ``(size, *x.shape)``, row r from rank r.

        ``total=n``: the ranks hold the :func:`chunk_bounds` pieces of one flat vector of n elements (sizes may
        differ by one, as ZeRO's shards do); the result is that whole vector."""
        x = self._array(x, "allgather")
        if total is None:
            out = self._collective("allgather", algorithm, x.reshape(-1), x.size * self.size, x)
            return out.reshape((self.size,) + x.shape)
        from .schedule import chunk_bounds
        b = chunk_bounds(int(total), self.size)
        need = int(b[self.rank + 1] - b[self.rank])
        if x.size != need:
            raise ValueError(f"allgather(total={total}) on rank {self.rank}: this rank's piece of {total} elements "
                             f"over {self.size} ranks has {need} elements (chunk_bounds), got {x.size}")
        whole = np.empty(int(total), dtype=x.dtype)           # the shape the ranks agree on
        return self._collective("allgather", algorithm, x.reshape(-1), int(total), whole)

    def broadcast(self, x=None, root: int = 0, algorithm: str = "tree") -> np.ndarray:
        """The root's ``x`` on every rank (other ranks may pass None)."""
        self._check_root(root, "broadcast")
        x = self._array(x, "broadcast") if self.rank == root else (None if x is None else np.asarray(x))
        return self._collective("broadcast", algorithm, None if x is None else x.reshape(-1),
                                None if x is None else x.size, x, root=root)

    def reduce(self, x, root: int = 0, algorithm: str = "tree"):
        """The sum of every rank's ``x`` on the root; None elsewhere."""
        self._check_root(root, "reduce")
        x = self._array(x, "reduce")
        out = self._collective("reduce", algorithm, x.reshape(-1), x.size, x, root=root)
        return None if out is None else out.reshape(x.shape)

    def alltoall(self, x, algorithm: str = "pairwise") -> np.ndarray:
        """``x`` has shape (size, ...): block j goes to rank j; the result's block i came from rank i."""
        x = self._array(x, "alltoall")
        if x.ndim == 0 or x.shape[0] != self.size:
            raise ValueError(f"alltoall on rank {self.rank}: x must have one block per rank along axis 0, i.e. "
                             f"shape ({self.size}, ...); got {x.shape}")
        out = self._collective("alltoall", algorithm, x.reshape(-1), x.size, x)
        return out.reshape(x.shape)

    def barrier(self) -> None:
        raise NotImplementedError

    def send(self, x, dst: int, tag: int = 0) -> None:
        raise NotImplementedError

    def recv(self, src: int, tag: int = 0) -> np.ndarray:
        raise NotImplementedError

    def isend(self, x, dst: int, tag: int = 0) -> None:
        """Send without waiting for the receiver (the data is copied first); ``wait_sends()`` completes them."""
        self.send(x, dst, tag)

    def wait_sends(self) -> None:
        """Wait until every ``isend`` of this rank has been delivered."""

    # ---- shared machinery ---------------------------------------------------------------------------
    def _array(self, x, what: str) -> np.ndarray:
        if x is None:
            raise ValueError(f"{what} on rank {self.rank}: pass a numpy array (got None)")
        from ..framework.tensor import Tensor
        arr = np.ascontiguousarray(x.numpy() if isinstance(x, Tensor) else x)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{what} on rank {self.rank}: data of dtype {arr.dtype} cannot be summed; pass numbers")
        return arr

    def _check_root(self, root, what):
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < self.size:
            raise ValueError(f"{what} on rank {self.rank}: root {root!r} is not a rank of 0..{self.size - 1}")

    @staticmethod
    def _check_algorithm(collective: str, algorithm: str) -> None:
        if algorithm != "mpi" and algorithm not in ALGORITHMS[collective]:
            raise ValueError(f"{collective}: unknown algorithm {algorithm!r}; choose one of "
                             f"{', '.join(ALGORITHMS[collective])} or 'mpi' (the MPI library's own)")

    def _signature(self, collective, algorithm, x, root, nodes=None):
        return (self.calls, collective, algorithm, None if x is None else tuple(x.shape),
                None if x is None else x.dtype.str, root,
                None if nodes is None else tuple(tuple(int(r) for r in n) for n in nodes))

    @staticmethod
    def _compare(sigs) -> None:
        """Raise on every rank when the ranks' calls differ."""
        first = sigs[0]
        call, collective = first[0] + 1, first[1]
        if all(s[1:3] == first[1:3] and s[5:] == first[5:] for s in sigs):
            shaped = [(r, s) for r, s in enumerate(sigs) if s[3] is not None]
            if collective == "broadcast":
                shaped = [(r, s) for r, s in shaped if r == first[5]]
            if len({(s[3], s[4]) for _, s in shaped}) <= 1:
                return
            listing = ", ".join(f"rank {r}: shape {s[3]} {np.dtype(s[4]).name}" for r, s in shaped)
            raise CollectiveMismatch(f"{collective} (call #{call}, algorithm {first[2]}): mismatched buffers — "
                                     f"{listing}; every rank must pass the same shape and dtype")
        listing = ", ".join(f"rank {r}: {s[1]}(algorithm={s[2]!r}" + (f", root={s[5]}" if s[5] is not None else "")
                            + ")" for r, s in enumerate(sigs))
        raise CollectiveMismatch(f"collective call #{call} differs between ranks — {listing}; every rank must make "
                                 f"the same collective calls in the same order")

    def _collective(self, collective, algorithm, flat, n, x, root=None, nodes=None):
        raise NotImplementedError

    def _label(self, collective, algorithm, nbytes) -> str:
        return f"{collective} {algorithm} {format_bytes(nbytes)}"


class MPIComm(Communicator):
    """A rank of a real MPI job (mpi4py). Created by the worker that :func:`aisys.dist.run` starts."""

    TAG = 17

    def __init__(self, mpi_comm, t0: float | None = None):
        super().__init__()
        from mpi4py import MPI
        self._MPI = MPI
        self.mpi = mpi_comm
        self.rank = mpi_comm.Get_rank()
        self.size = mpi_comm.Get_size()
        self.check = True                       # compare every collective call across ranks first
        self._pending: list = []                # requests of isend, completed by wait_sends
        self._keep: list = []                   # their buffers, alive until then
        self.t0 = mpi_comm.bcast(time.perf_counter() if t0 is None else t0, root=0)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def barrier(self) -> None:
        t = self.now()
        self.mpi.Barrier()
        self.record("barrier", t, self.now(), "comm")

    def send(self, x, dst: int, tag: int = 0) -> None:
        x = self._array(x, "send")
        t = self.now()
        self.mpi.send((x.shape, x.dtype.str), dest=dst, tag=1000 + tag)
        self.mpi.Send(x, dest=dst, tag=2000 + tag)
        self.record(f"send -> {dst}", t, self.now(), "comm", bytes=x.nbytes)

    def isend(self, x, dst: int, tag: int = 0) -> None:
        x = np.array(self._array(x, "isend"), copy=True)
        t = self.now()
        self._pending.append(self.mpi.isend((x.shape, x.dtype.str), dest=dst, tag=1000 + tag))
        self._pending.append(self.mpi.Isend(x, dest=dst, tag=2000 + tag))
        self._keep.append(x)
        self.record(f"isend -> {dst}", t, self.now(), "comm", bytes=x.nbytes)

    def wait_sends(self) -> None:
        t = self.now()
        for req in self._pending:
            req.wait() if hasattr(req, "wait") else req.Wait()
        self._pending, self._keep = [], []
        self.record("wait sends", t, self.now(), "comm")

    def recv(self, src: int, tag: int = 0) -> np.ndarray:
        t = self.now()
        shape, dtype = self.mpi.recv(source=src, tag=1000 + tag)
        out = np.empty(shape, dtype=np.dtype(dtype))
        self.mpi.Recv(out, source=src, tag=2000 + tag)
        self.record(f"recv <- {src}", t, self.now(), "comm", bytes=out.nbytes)
        return out

    def _collective(self, collective, algorithm, flat, n, x, root=None, nodes=None):
        self._check_algorithm(collective, algorithm)
        t_start = self.now()
        if self.check:
            self._compare(self.mpi.allgather(self._signature(collective, algorithm, x, root, nodes)))
            if collective == "broadcast":     # the other ranks learn the shape and dtype from the root
                shape_b, dtype = self.mpi.bcast(None if x is None else (x.shape, x.dtype.str), root=root)
                n = int(np.prod(shape_b)) if shape_b else 1
                dtype = np.dtype(dtype)
            else:
                dtype = flat.dtype
        else:
            if flat is None:
                raise ValueError(f"broadcast on rank {self.rank}: with comm.check off, every rank must pass an "
                                 f"array of the root's shape and dtype")
            dtype = flat.dtype
        self.calls += 1
        shape = None
        if collective == "broadcast":
            shape = x.shape if x is not None else (shape_b if self.check else None)
        if algorithm == "mpi":
            out = self._mpi_library(collective, flat, n, dtype, root)
        else:
            sched = build_schedule(collective, algorithm, self.size, n, root=root if root is not None else 0,
                                   nodes=nodes)
            out = self._run_schedule(sched, flat, dtype)
        if shape is not None:
            out = out.reshape(shape)
        end = self.now()
        nbytes = n * np.dtype(dtype).itemsize
        self.record(self._label(collective, algorithm, nbytes), t_start, end, "comm", bytes=nbytes)
        return out

    def _run_schedule(self, sched: Schedule, flat, dtype) -> np.ndarray | None:
        r, MPI = self.rank, self._MPI
        buf = np.zeros(sched.buffer_len, dtype=dtype)
        reg = sched.inputs[r]
        if reg is not None:
            buf[reg[0]:reg[0] + reg[1]] = flat
        for step, sends, recvs in sched.program(r):
            t = self.now() if self.trace_steps else 0.0
            reqs, incoming = [], []
            local = {}
            for tid in recvs:
                a, c = int(sched.src[tid]), int(sched.count[tid])
                if a == r:
                    continue
                tmp = np.empty(c, dtype=dtype)
                reqs.append(self.mpi.Irecv(tmp, source=a, tag=self.TAG))
                incoming.append((tid, tmp))
            for tid in sends:
                o, c, b = int(sched.src_off[tid]), int(sched.count[tid]), int(sched.dst[tid])
                if b == r:
                    local[tid] = buf[o:o + c].copy()
                    continue
                reqs.append(self.mpi.Isend(buf[o:o + c], dest=b, tag=self.TAG))
            MPI.Request.Waitall(reqs)
            arrived = dict(incoming)
            arrived.update(local)
            for tid in recvs:                          # in message order: the same sums as the simulator
                o = int(sched.dst_off[tid])
                data = arrived[tid]
                if sched.reduce[tid]:
                    buf[o:o + data.size] += data
                else:
                    buf[o:o + data.size] = data
            if self.trace_steps:
                self.record(f"step {step}", t, self.now(), "comm", sends=len(sends), recvs=len(recvs))
        out = sched.outputs[r]
        return None if out is None else buf[out[0]:out[0] + out[1]].copy()

    def _mpi_library(self, collective, flat, n, dtype, root):
        MPI, p, r = self._MPI, self.size, self.rank
        if collective == "allreduce":
            out = np.empty_like(flat)
            self.mpi.Allreduce(flat, out, op=MPI.SUM)
            return out
        if collective == "reduce_scatter":
            from .schedule import chunk_bounds
            b = chunk_bounds(n, p)
            out = np.empty(int(b[r + 1] - b[r]), dtype=dtype)
            self.mpi.Reduce_scatter(flat, out, recvcounts=np.diff(b).astype(int).tolist(), op=MPI.SUM)
            return out
        if collective == "allgather":
            from .schedule import chunk_bounds
            b = chunk_bounds(n, p)
            out = np.empty(n, dtype=dtype)
            self.mpi.Allgatherv(flat, [out, np.diff(b).astype(int).tolist()])
            return out
        if collective == "broadcast":
            buf = flat if r == root else np.empty(n, dtype=dtype)
            self.mpi.Bcast(buf, root=root)
            return buf.copy()
        if collective == "reduce":
            out = np.empty_like(flat) if r == root else None
            self.mpi.Reduce(flat, out, op=MPI.SUM, root=root)
            return out
        out = np.empty_like(flat)
        self.mpi.Alltoall(flat, out)
        return out


class SimComm(Communicator):
    """A rank run as a thread of this process; collectives meet at a shared rendezvous (see module doc)."""

    threads_ok = False         # ranks take turns; a helper thread of a rank could never get its turn

    def __init__(self, rank: int, world: "SimWorld"):
        super().__init__()
        self.rank = rank
        self.size = world.size
        self.world = world
        self.clock = 0.0                 # simulated seconds
        self._cpu_mark = time.thread_time()

    def now(self) -> float:
        """Simulated time: the clock plus this thread's CPU time since the last communication."""
        return self.clock + (time.thread_time() - self._cpu_mark)

    def _sync_clock(self) -> float:
        self.clock = self.now()
        self._cpu_mark = time.thread_time()
        return self.clock

    def _settle(self, t: float) -> None:
        self.clock = t
        self._cpu_mark = time.thread_time()

    def barrier(self) -> None:
        t = self._sync_clock()
        res = self.world.meet(self.rank, self._signature("barrier", "", None, None), t, None)
        self.calls += 1
        self._settle(res["end"][self.rank])
        self.record("barrier", t, self.clock, "comm")

    def send(self, x, dst: int, tag: int = 0) -> None:
        x = self._array(x, "send")
        t = self._sync_clock()
        self.world.post(self.rank, dst, tag, x.copy(), t)
        self.record(f"send -> {dst}", t, t, "comm", bytes=x.nbytes)

    def recv(self, src: int, tag: int = 0) -> np.ndarray:
        t = self._sync_clock()
        x, t_sent = self.world.take(self.rank, src, tag)
        arrive = max(t, t_sent + self.world.message_time(src, self.rank, x.nbytes))
        self._settle(arrive)
        self.record(f"recv <- {src}", t, arrive, "comm", bytes=x.nbytes)
        return x

    def _collective(self, collective, algorithm, flat, n, x, root=None, nodes=None):
        self._check_algorithm(collective, algorithm)
        if algorithm == "mpi":
            algorithm = DEFAULT_ALGORITHM[collective]
        t = self._sync_clock()
        sig = self._signature(collective, algorithm, x, root, nodes)
        res = self.world.meet(self.rank, sig, t, flat)
        self.calls += 1
        self._settle(res["end"][self.rank])
        nbytes = res["nbytes"]
        self.record(self._label(collective, algorithm, nbytes), t, self.clock, "comm", bytes=nbytes)
        return res["outputs"][self.rank]
