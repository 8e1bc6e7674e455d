"""One MPI rank of :func:`aisys.dist.run`: ``python -m aisys.dist.worker WORKDIR`` (started by mpiexec).

Reads the function and its arguments from WORKDIR/payload.pkl, calls ``fn(MPIComm, *args, **kwargs)``
and writes ``("ok", value, events)`` or ``("error", traceback, events)`` to WORKDIR/rank<r>.pkl. A rank
that fails aborts the whole job (MPI_Abort) after writing its report, so no other rank waits for it.
"""
from __future__ import annotations

import os
import pickle
import sys
import traceback
from pathlib import Path


def _write(path: Path, blob: bytes) -> None:
    """Write the report atomically, so a rank stopped by another's abort never leaves half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


def main(workdir: str) -> int:
    import cloudpickle
    from mpi4py import MPI

    from aisys.dist.comm import MPIComm

    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    out = Path(workdir) / f"rank{rank}.pkl"
    # this rank's prints (Python and C level) go to its own file; the launcher shows them rank by rank
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(Path(workdir) / f"rank{rank}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    comm = None
    try:
        fn, args, kwargs = pickle.loads((Path(workdir) / "payload.pkl").read_bytes())
        comm = MPIComm(world)
        value = fn(comm, *args, **kwargs)
        try:
            blob = cloudpickle.dumps(("ok", value, comm.events))
        except Exception as exc:
            raise TypeError(f"the function's return value ({type(value).__name__}) cannot be sent back to the "
                            f"notebook: {exc}; return plain data (numbers, arrays, dicts)") from exc
        _write(out, blob)
    except BaseException:                  # noqa: BLE001 - reported to the launcher, then the job is aborted
        events = comm.events if comm is not None else []
        _write(out, pickle.dumps(("error", traceback.format_exc(), events)))
        sys.stdout.flush()
        sys.stderr.flush()
        world.Abort(1)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m aisys.dist.worker WORKDIR   (started by aisys.dist.run through mpiexec)",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
