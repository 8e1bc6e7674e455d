"""The same schedules on real MPI processes (mpi4py + the MPICH wheel), launched with mpiexec -n 2, 3 and 4
(oversubscribed on a 2-core machine) through aisys.dist.run. Each launch runs a whole battery, so the suite
pays the start-up of MPI only a few times. Every run has a timeout; a run that cannot finish is stopped."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

from aisys import dist
from aisys.dist import ALGORITHMS, chunk_bounds
from tests.dist import _training as T

pytest.importorskip("mpi4py")
try:
    dist.mpiexec_path()
except dist.MPIUnavailableError as exc:            # the error itself is tested below
    pytest.skip(str(exc), allow_module_level=True)

TIMEOUT = 120


def collective_battery(comm, n):
    """Every collective and algorithm (and MPI's own) on this rank's data; returns {name: output}."""
    rng = np.random.default_rng(comm.rank)
    x = rng.integers(-9, 9, n).astype(np.float64)
    out = {}
    for algorithm in list(ALGORITHMS["allreduce"]) + ["mpi"]:
        nodes = None
        if algorithm == "hierarchical":              # two nodes of two ranks on 4 ranks, else one rank per node
            nodes = [[0, 1], [2, 3]] if comm.size == 4 else [[r] for r in range(comm.size)]
        out[f"allreduce/{algorithm}"] = comm.allreduce(x, algorithm=algorithm, nodes=nodes)
    for algorithm in list(ALGORITHMS["reduce_scatter"]) + ["mpi"]:
        out[f"reduce_scatter/{algorithm}"] = comm.reduce_scatter(x, algorithm=algorithm)
    piece = x[:5]
    for algorithm in list(ALGORITHMS["allgather"]) + ["mpi"]:
        out[f"allgather/{algorithm}"] = comm.allgather(piece, algorithm=algorithm)
    for algorithm in list(ALGORITHMS["broadcast"]) + ["mpi"]:
        out[f"broadcast/{algorithm}"] = comm.broadcast(x if comm.rank == comm.size - 1 else None,
                                                       root=comm.size - 1, algorithm=algorithm)
    for algorithm in list(ALGORITHMS["reduce"]) + ["mpi"]:
        out[f"reduce/{algorithm}"] = comm.reduce(x, root=comm.size - 1, algorithm=algorithm)
    blocks = x[:3 * comm.size].reshape(comm.size, 3)
    for algorithm in list(ALGORITHMS["alltoall"]) + ["mpi"]:
        out[f"alltoall/{algorithm}"] = comm.alltoall(blocks, algorithm=algorithm)
    b = chunk_bounds(n, comm.size)
    out["allgather/total"] = comm.allgather(x[b[comm.rank]:b[comm.rank + 1]], total=n)
    print(f"rank {comm.rank} of {comm.size} done")
    if comm.size == 2:                               # the tensor-parallel MLP on 2 ranks (4 ranks: training test)
        return out, T.tensor_parallel(comm)
    return out, None


def _check_battery(res, p, n):
    xs = [np.random.default_rng(r).integers(-9, 9, n).astype(np.float64) for r in range(p)]
    total = sum(xs)
    b = chunk_bounds(n, p)
    for r in range(p):
        out = res[r][0]
        for key, got in out.items():
            coll = key.split("/")[0]
            if coll == "allreduce":
                want = total
            elif coll == "reduce_scatter":
                want = total[b[r]:b[r + 1]]
            elif key == "allgather/total":
                want = np.concatenate([xs[q][b[q]:b[q + 1]] for q in range(p)])
            elif coll == "allgather":
                want = np.stack([xs[q][:5] for q in range(p)])
            elif coll == "broadcast":
                want = xs[p - 1]
            elif coll == "reduce":
                want = total if r == p - 1 else None
            else:
                want = np.stack([xs[q][:3 * p].reshape(p, 3)[r] for q in range(p)])
            if want is None:
                assert got is None, f"{key} on rank {r}"
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"{key} on rank {r} of {p}")


@pytest.mark.parametrize("p", [2, 3, 4])
def test_every_collective_on_mpi_equals_numpy_and_mpich(p):
    n = 37                                               # uneven chunks on 2, 3 and 4 ranks
    res = dist.run(collective_battery, nprocs=p, args=(n,), timeout=TIMEOUT, echo=False)
    _check_battery(res, p, n)
    # what the ranks printed comes back rank by rank, whatever order they printed in
    assert res.output.startswith("".join(f"[rank {r}] rank {r} of {p} done\n" for r in range(p)))
    if p == 2:
        T.check_tensor_parallel([res[r][1] for r in range(p)], T.tensor_reference())
    assert res.trace.lanes == [f"rank {r}" for r in range(p)]
    assert {e.args.get("kind") for e in res.trace.events} <= {"comm", "compute"}


def training_battery(comm):
    """Data parallel (plain, overlapped), ZeRO 1/2/3, tensor parallel and pipeline parallel on these ranks."""
    out = {mode: T.data_parallel(comm, mode) for mode in ("plain", "overlap", "zero1", "zero2", "zero3")}
    out["tp"] = T.tensor_parallel(comm)
    out["pp"] = T.pipeline(comm, "1f1b")
    out["gpipe"] = T.pipeline(comm, "gpipe")
    return out


def test_parallel_training_on_4_mpi_ranks():
    res = dist.run(training_battery, nprocs=4, timeout=TIMEOUT, echo=False)
    ref = T.single_process()
    scale = np.abs(ref).max()
    for r in range(4):
        for mode in ("plain", "overlap"):
            np.testing.assert_allclose(res[r][mode][0], ref, rtol=1e-12, atol=1e-12 * scale,
                                       err_msg=f"data parallel ({mode}) on rank {r}")
        for stage in (1, 2, 3):
            np.testing.assert_allclose(res[r][f"zero{stage}"][0], res[r]["plain"][0], rtol=1e-12,
                                       atol=1e-12 * scale)
            np.testing.assert_array_equal(res[r][f"zero{stage}"][0], res[0]["zero1"][0])
    T.check_tensor_parallel([res[r]["tp"] for r in range(4)], T.tensor_reference())
    T.check_pipeline([res[r]["pp"] for r in range(4)], T.pipeline_reference())
    T.check_pipeline([res[r]["gpipe"] for r in range(4)], T.pipeline_reference())
    lanes = set(res.trace.lanes)
    assert {"rank 0", "rank 0 comm"} <= lanes           # the overlapped buckets ran on the comm lane


# ---- failures: clear errors, nothing hangs, nothing left behind -----------------------------------

def _sleeps(comm):
    time.sleep(300)


def _our_processes(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def test_a_run_that_does_not_finish_is_stopped_with_all_its_processes():
    t0 = time.perf_counter()
    with pytest.raises(dist.DistTimeoutError, match=r"did not finish within 2 s; its processes were stopped"):
        dist.run(_sleeps, nprocs=2, timeout=2)
    assert time.perf_counter() - t0 < 30
    time.sleep(0.5)
    assert not [p for p in _our_processes("aisys.dist.worker") if _child_of_us(p)]


def _child_of_us(pid: int) -> bool:
    """Is this process a descendant of the test process (so it would be ours to leave behind)?"""
    me = os.getpid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
        if pid == me:
            return True
    return False


def _fails_on_rank_1(comm):
    if comm.rank == 1:
        raise ValueError("rank 1 cannot go on")
    comm.barrier()                                       # the others would wait for rank 1 forever


def _mismatched(comm):
    return comm.allreduce(np.ones(4 + comm.rank))


def test_a_failing_rank_stops_the_job_and_is_named():
    with pytest.raises(dist.DistRunError, match=r"rank 1 of 3 failed: ValueError: rank 1 cannot go on"):
        dist.run(_fails_on_rank_1, nprocs=3, timeout=TIMEOUT)


def test_mismatched_buffers_on_mpi_name_every_rank():
    with pytest.raises(dist.DistRunError, match=r"mismatched buffers — rank 0: shape \(4,\) float64, rank 1: "
                                                r"shape \(5,\) float64"):
        dist.run(_mismatched, nprocs=2, timeout=TIMEOUT)


def test_a_clear_error_when_mpi_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr("sysconfig.get_path", lambda name: str(tmp_path))
    with pytest.raises(dist.MPIUnavailableError, match=r"no mpiexec next to this Python .*pip install mpi4py mpich"):
        dist.run(_mismatched, nprocs=2, timeout=10)


def test_every_run_needs_a_timeout():
    with pytest.raises(ValueError, match="every run needs a timeout"):
        dist.run(_mismatched, nprocs=2, timeout=None)
