"""``run(fn, nprocs, args, timeout)``: run one function on every rank — real MPI processes or simulated threads.

    from aisys import dist
    def work(comm, n):
        return comm.allreduce(np.full(n, comm.rank + 1.0), algorithm="ring")
    res = dist.run(work, nprocs=4, args=(1 << 20,), timeout=60)     # res[r]: rank r's return value
    res.trace                                                        # every rank's calls, one lane per rank

backend="mpi" (default) starts ``mpiexec -n nprocs python -m aisys.dist.worker`` from the same environment
as this Python (the ``mpich`` wheel puts ``mpiexec`` next to the interpreter); ``fn`` may be defined in a
notebook — it travels by value (cloudpickle). The job runs in its own process group: on timeout, on an
error or when the notebook is interrupted, that group — and nothing else — is stopped. A failing rank
writes its traceback and aborts the job, so the others never wait for it.

backend="sim" runs the ranks as threads of this process that take turns (one runs until it communicates):
collectives are executed on numpy and timed by the simulator on ``topology``, and each rank's compute is its
own CPU time; a rank that returns while others wait, or ranks that wait on each other, stop the run with an
error naming them.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from collections import deque
from pathlib import Path

import numpy as np

from ..framework.events import Trace
from .comm import Communicator, RankFailed, SimComm
from .simulator import _time, execute
from .topology import LINK_TYPES, Topology

__all__ = ["run", "RunResult", "MPIUnavailableError", "DistRunError", "DistTimeoutError", "mpiexec_path"]

INSTALL_HINT = ("install both wheels from PyPI into this environment: `python -m pip install mpi4py mpich` "
                "(no system MPI is needed; `make lab` / `make test` do it)")


class MPIUnavailableError(RuntimeError):
    """MPI cannot start here: mpiexec or mpi4py is missing, or mpiexec failed before any rank ran."""


class DistRunError(RuntimeError):
    """A rank raised; the message names it and carries its traceback."""


class DistTimeoutError(TimeoutError):
    """The run did not finish in time; its processes (or threads' collectives) were stopped."""


class RunResult:
    """The ranks' return values (``res[r]``, ``list(res)``), their ``trace`` (one lane per rank), the wall
    time, and ``output``: what the ranks printed, grouped by rank."""

    def __init__(self, values: list, trace: Trace, wall_time: float, output: str, backend: str):
        self.values = values
        self.trace = trace
        self.wall_time = wall_time
        self.output = output
        self.backend = backend

    def __getitem__(self, i):
        return self.values[i]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        return iter(self.values)

    @property
    def nprocs(self) -> int:
        return len(self.values)

    def summary(self) -> str:
        kind = "MPI processes" if self.backend == "mpi" else "simulated ranks"
        return (f"run on {self.nprocs} {kind}: {len(self.trace.events)} recorded events\n"
                + self.trace.summary())

    def __repr__(self) -> str:
        return f"<RunResult of {self.nprocs} {self.backend} ranks: {[type(v).__name__ for v in self.values]}>"


def mpiexec_path() -> str:
    """The ``mpiexec`` of this Python's environment, or a clear error saying how to install it."""
    candidates = [Path(sys.executable).parent / "mpiexec", Path(sysconfig.get_path("scripts")) / "mpiexec"]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    raise MPIUnavailableError(f"MPI is not available: no mpiexec next to this Python ({sys.executable}); looked "
                              f"in {', '.join(str(c.parent) for c in candidates)}. To run real MPI ranks, "
                              f"{INSTALL_HINT}. Without MPI, run(..., backend='sim') runs the ranks as simulated "
                              f"threads.")


def _check_common(fn, nprocs, timeout):
    if not callable(fn):
        raise TypeError(f"run: fn must be a function fn(comm, *args), got {type(fn).__name__}")
    if isinstance(nprocs, bool) or not isinstance(nprocs, (int, np.integer)) or nprocs < 1:
        raise ValueError(f"run: nprocs must be a positive number of ranks, got {nprocs!r}")
    if timeout is None or isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"run: every run needs a timeout in seconds > 0 (got {timeout!r}), so nothing can hang")


def run(fn, nprocs: int = 2, args: tuple = (), kwargs: dict | None = None, timeout: float = 60.0, *,
        backend: str = "mpi", topology: Topology | str | None = None, gamma: float = 0.0,
        echo: bool = True) -> RunResult:
    """Run ``fn(comm, *args, **kwargs)`` on ``nprocs`` ranks (see the module doc) and collect the results.

    ``timeout`` (seconds) bounds the whole run. ``echo``: print what the ranks printed, rank by rank.
    ``topology``/``gamma`` apply to backend="sim" (default: nprocs GPUs on an A100 NVSwitch).
    """
    _check_common(fn, nprocs, timeout)
    kwargs = dict(kwargs or {})
    if backend == "mpi":
        res = _run_mpi(fn, int(nprocs), tuple(args), kwargs, float(timeout))
    elif backend == "sim":
        res = _run_sim(fn, int(nprocs), tuple(args), kwargs, float(timeout), topology, gamma)
    else:
        raise ValueError(f"run: backend must be 'mpi' (real processes) or 'sim' (simulated threads), got {backend!r}")
    if echo and res.output:
        print(res.output, end="" if res.output.endswith("\n") else "\n")
    return res


# ---------------------------------------------------------------------------------------------------
# real MPI processes
# ---------------------------------------------------------------------------------------------------

def _run_mpi(fn, nprocs, args, kwargs, timeout) -> RunResult:
    mpiexec = mpiexec_path()
    if importlib.util.find_spec("mpi4py") is None:
        raise MPIUnavailableError(f"MPI is not available: mpi4py is not installed in {sys.prefix}; {INSTALL_HINT}")
    try:
        import cloudpickle
    except ImportError:
        raise MPIUnavailableError("run(backend='mpi') sends the function to the ranks with cloudpickle, which is "
                                  "not installed: `python -m pip install cloudpickle`") from None
    workdir = Path(tempfile.mkdtemp(prefix="aisys-dist-"))
    try:
        try:
            payload = cloudpickle.dumps((fn, args, kwargs))
        except Exception as exc:
            raise TypeError(f"run: cannot send fn and its arguments to the MPI ranks ({type(exc).__name__}: {exc}); "
                            f"pass plain data (numbers, arrays, models) as args") from exc
        (workdir / "payload.pkl").write_bytes(payload)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("NUMBA_NUM_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        paths = [os.getcwd()] + [p for p in sys.path if p and os.path.isdir(p)]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths + env.get("PYTHONPATH", "").split(os.pathsep)))
        cmd = [mpiexec, "-n", str(nprocs), sys.executable, "-m", "aisys.dist.worker", str(workdir)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out = _stop(proc)
            raise DistTimeoutError(f"the MPI run of {nprocs} ranks did not finish within {timeout:g} s; its "
                                   f"processes were stopped. Pass a larger timeout= if the work needs it."
                                   + _tail(out)) from None
        except BaseException:          # KeyboardInterrupt in a notebook: stop our ranks, then re-raise
            _stop(proc)
            raise
        wall = time.perf_counter() - t0
        text = out.decode("utf-8", "replace")
        return _collect_mpi(workdir, nprocs, proc.returncode, text, wall, cloudpickle)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> bytes:
    """Stop the job's own process group (mpiexec and its ranks): TERM, then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            out, _ = proc.communicate(timeout=3)
            return out or b""
        except subprocess.TimeoutExpired:
            continue
    try:
        out, _ = proc.communicate(timeout=3)
    except Exception:
        out = b""
    return out or b""


def _tail(out, n: int = 1500) -> str:
    text = out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")
    text = text.strip()
    return f"\n--- output (last {n} characters) ---\n{text[-n:]}" if text else ""


def _collect_mpi(workdir: Path, nprocs: int, returncode: int, text: str, wall: float, cloudpickle) -> RunResult:
    reports = {}
    for r in range(nprocs):
        f = workdir / f"rank{r}.pkl"
        if f.exists():
            try:
                reports[r] = pickle.loads(f.read_bytes())
            except Exception as exc:                 # a value the parent cannot unpickle
                reports[r] = ("error", f"rank {r}'s result could not be read back in this process: "
                                       f"{type(exc).__name__}: {exc}", [])
    output = _rank_output(workdir, nprocs)
    errors = {r: rep for r, rep in reports.items() if rep[0] == "error"}
    if errors:
        r = min(errors)
        others = sorted(set(errors) - {r})
        printed = "\n".join(x for x in output.splitlines() if x.startswith(f"[rank {r}] "))[-1500:]
        headline = errors[r][1].strip().splitlines()[-1] if errors[r][1].strip() else "no traceback"
        raise DistRunError(f"rank {r} of {nprocs} failed: {headline}" + (f" (ranks {others} failed too)" if others
                                                                           else "")
                           + f"\nThe job was stopped. Rank {r}'s traceback:\n{errors[r][1]}"
                           + (f"\n--- rank {r} printed ---\n{printed}" if printed else ""))
    if len(reports) < nprocs:
        missing = sorted(set(range(nprocs)) - set(reports))
        if not reports:
            raise MPIUnavailableError(f"MPI could not start {nprocs} ranks (mpiexec exited with code {returncode} "
                                      f"before any rank finished). If MPI is broken or missing, {INSTALL_HINT}."
                                      + _tail(text))
        raise DistRunError(f"ranks {missing} of {nprocs} ended without a result (mpiexec exit code {returncode})"
                           + _tail(text))
    values = [reports[r][1] for r in range(nprocs)]
    trace = Trace(f"MPI run, {nprocs} ranks", unit="us")
    events = sorted((ev for r in range(nprocs) for ev in reports[r][2]), key=lambda e: (int(e[0].split()[1]), e[2]))
    for lane, name, start, end, args in events:
        trace.add_event(lane, name, start * 1e6, max(end, start) * 1e6, **args)
    return RunResult(values, trace, wall, output, "mpi")


def _rank_output(workdir: Path, nprocs: int) -> str:
    """What each rank printed (its own file), rank by rank, each line tagged ``[rank r]``."""
    lines = []
    for r in range(nprocs):
        f = workdir / f"rank{r}.out"
        if f.exists():
            lines += [f"[rank {r}] {x}" for x in f.read_text("utf-8", "replace").splitlines()]
    return "\n".join(lines) + ("\n" if lines else "")


# ---------------------------------------------------------------------------------------------------
# simulated ranks (threads)
# ---------------------------------------------------------------------------------------------------

class SimWorld:
    """The rendezvous of simulated ranks: collectives meet here, point-to-point messages wait in mailboxes."""

    def __init__(self, size: int, topology: Topology, gamma: float, deadline: float):
        self.size = size
        self.topology = topology
        self.gamma = gamma
        self.deadline = deadline
        # One lock is both the rendezvous' lock and the baton: a rank runs its code only while holding it, and
        # lets go while it waits for others. Ranks take turns, so aisys's global grad mode is never shared.
        self.cond = threading.Condition(threading.RLock())
        self.arrivals: dict[int, tuple] = {}
        self.generation = 0
        self.results: dict[int, dict] = {}
        self.failed: str | None = None
        self.finished: set[int] = set()
        self.waiting_recv: dict[int, tuple[int, int]] = {}
        self.mail: dict[tuple[int, int, int], deque] = {}

    # a rank that raises or returns changes what the others may wait for
    def fail(self, message: str) -> None:
        with self.cond:
            if self.failed is None:
                self.failed = message
            self.cond.notify_all()

    def done(self, rank: int) -> None:
        with self.cond:
            self.finished.add(rank)
            self._check_stuck()
            self.cond.notify_all()

    def _check_stuck(self) -> None:
        """Called with the lock held: fail the run when the waiting ranks can never be released."""
        if self.failed:
            return
        live = set(range(self.size)) - self.finished
        if self.arrivals and self.finished:
            sig = next(iter(self.arrivals.values()))[0]
            self.failed = (f"rank(s) {sorted(self.finished)} returned while rank(s) {sorted(self.arrivals)} wait in "
                           f"{sig[1]} (call #{sig[0] + 1}); every rank must make the same collective calls")
            return
        for r, (src, tag) in self.waiting_recv.items():
            if src in self.finished and not self.mail.get((src, r, tag)):
                self.failed = f"rank {r} waits to receive from rank {src} (tag {tag}), which has returned"
                return
        blocked = set(self.arrivals) | {r for r, (src, tag) in self.waiting_recv.items()
                                        if not self.mail.get((src, r, tag))}
        if live and blocked == live and len(self.arrivals) < len(live):
            parts = [f"rank {r} waits in {self.arrivals[r][0][1]}" for r in sorted(self.arrivals)]
            parts += [f"rank {r} waits to receive from rank {src}" for r, (src, _) in sorted(self.waiting_recv.items())]
            self.failed = "deadlock: " + "; ".join(parts)

    def _wait(self, ready) -> None:
        while not ready():
            if self.failed:
                raise RankFailed(self.failed)
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.failed = "timeout: the simulated run did not finish in time"
                self.cond.notify_all()
                raise RankFailed(self.failed)
            self.cond.wait(min(left, 0.5))

    def meet(self, rank: int, sig: tuple, t: float, flat):
        with self.cond:
            if self.failed:
                raise RankFailed(self.failed)
            gen = self.generation
            self.arrivals[rank] = (sig, t, flat)
            if len(self.arrivals) == self.size:
                try:
                    self.results[gen] = self._complete()
                except Exception as exc:
                    self.results[gen] = {"error": exc}
                self.arrivals = {}
                self.generation += 1
                self.cond.notify_all()
            else:
                self._check_stuck()
                self._wait(lambda: self.generation > gen)
            res = self.results[gen]
            if "error" in res:
                raise res["error"]
            return res

    def _complete(self) -> dict:
        ranks = range(self.size)
        sigs = [self.arrivals[r][0] for r in ranks]
        times = np.array([self.arrivals[r][1] for r in ranks])
        Communicator._compare(sigs)
        call, collective, algorithm, _, _, root, nodes = sigs[0]
        if collective == "barrier":
            return {"end": np.full(self.size, times.max())}
        src = sigs[root] if collective == "broadcast" else sigs[0]
        shape, dtype = src[3], np.dtype(src[4])
        n = int(np.prod(shape)) if shape else 1
        if collective == "allgather":           # the signature carries the gathered size
            n = sum(self.arrivals[r][2].size for r in ranks)
        from .algorithms import build_schedule
        sched = build_schedule(collective, algorithm, self.size, n, root=root if root is not None else 0,
                               nodes=nodes)
        flats = [self.arrivals[r][2] for r in ranks]
        if collective == "broadcast":
            flats = [flats[r] if r == root else None for r in ranks]
        outputs = execute(sched, flats)
        if collective == "broadcast":
            outputs = [o.reshape(shape) for o in outputs]
        _, _, done, _ = _time(sched, self.topology, dtype.itemsize, self.gamma, ready0=times)
        return {"outputs": outputs, "end": done, "nbytes": n * dtype.itemsize}

    def post(self, src: int, dst: int, tag: int, x, t: float) -> None:
        with self.cond:
            self.mail.setdefault((src, dst, tag), deque()).append((x, t))
            self.cond.notify_all()

    def take(self, dst: int, src: int, tag: int):
        with self.cond:
            key = (src, dst, tag)
            self.waiting_recv[dst] = (src, tag)
            try:
                self._check_stuck()
                self._wait(lambda: bool(self.mail.get(key)))
                return self.mail[key].popleft()
            finally:
                self.waiting_recv.pop(dst, None)

    def message_time(self, src: int, dst: int, nbytes: int) -> float:
        if src == dst:
            return 0.0
        path = self.topology.route(src, dst)
        return float(self.topology.link_alpha[path].sum() + nbytes / self.topology.link_bandwidth[path].min())


def _run_sim(fn, nprocs, args, kwargs, timeout, topology, gamma) -> RunResult:
    if topology is None:
        topo = Topology.switch(nprocs, link=LINK_TYPES["nvlink3"], name=f"{nprocs} GPUs on an NVSwitch (A100 NVLink)")
    else:
        topo = Topology.preset(topology) if isinstance(topology, str) else topology
    topo.check_ranks(nprocs, "run(backend='sim')")
    world = SimWorld(nprocs, topo, float(gamma), time.monotonic() + timeout)
    comms = [SimComm(r, world) for r in range(nprocs)]
    values: list = [None] * nprocs
    errors: dict[int, str] = {}

    def body(r):
        try:
            with world.cond:
                comms[r]._cpu_mark = time.thread_time()
                values[r] = fn(comms[r], *args, **kwargs)
        except RankFailed as exc:
            errors.setdefault(r, f"RankFailed: {exc}")
        except BaseException as exc:       # noqa: BLE001 - reported to the caller with the traceback
            errors[r] = traceback.format_exc()
            world.fail(f"rank {r} failed ({type(exc).__name__}: {exc})")
        finally:
            world.done(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=body, args=(r,), name=f"aisys-sim-rank-{r}", daemon=True)
               for r in range(nprocs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, world.deadline - time.monotonic()) + 1.0)
    wall = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        world.fail("timeout")
        raise DistTimeoutError(f"the simulated run of {nprocs} ranks did not finish within {timeout:g} s "
                               f"(a rank is still computing; its collectives were cancelled)")
    real = {r: e for r, e in errors.items() if not e.startswith("RankFailed")}
    if real:
        r = min(real)
        headline = real[r].strip().splitlines()[-1]
        raise DistRunError(f"rank {r} of {nprocs} failed: {headline}\nRank {r}'s traceback:\n{real[r]}")
    if errors:
        r = min(errors)
        raise DistRunError(f"the simulated run stopped: {errors[r][len('RankFailed: '):]}")
    trace = Trace(f"simulated run, {nprocs} ranks on {topo.name}", unit="us")
    for c in comms:
        for lane, name, start, end, a in c.events:
            trace.add_event(lane, name, start * 1e6, max(end, start) * 1e6, **a)
    return RunResult(values, trace, wall, "", "sim")
