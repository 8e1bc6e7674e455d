"""aisys.dist — interconnects, collective communication and parallel training (the architecture layer's
可扩展网络 and 底层通信, and the cluster's 并行训练).

    from aisys import dist
    topo = dist.Topology.preset("dgx_a100")                         # or Topology.fully_connected(8, alpha, bandwidth)
    rep = dist.simulate("allreduce", "ring", topology=topo, nbytes=64 << 20)   # rep.time, rep.bytes_sent, rep.trace
    sched = dist.build_schedule("allreduce", "ring", p=4, n=16)     # the messages, step by step
    def work(comm, n):
        return comm.allreduce(np.full(n, comm.rank + 1.0), algorithm="ring")
    res = dist.run(work, nprocs=4, args=(1 << 20,), timeout=60)     # real MPI ranks (mpi4py + MPICH)
    dist.zero_memory(params=7.5e9, ndevices=64, stage=1)            # bytes per device

Pieces: ``topology`` (devices, links, presets with cited figures), ``schedule`` and ``algorithms`` (collectives
as explicit message schedules), ``simulator`` (α-β-γ timing with link contention, a Perfetto Trace),
``costs`` (closed forms, bus bandwidth, crossovers, α/β fits), ``comm`` and ``launch`` (the same schedules on
real MPI processes or simulated threads), ``parallel`` (data parallel with buckets, ZeRO, tensor and
pipeline parallel, the planner). Importing this package never imports mpi4py: only a real run does.
"""
from .algorithms import ALGORITHMS, DEFAULT_ALGORITHM, build_schedule
from .comm import CollectiveMismatch, Communicator, RankFailed
from .costs import (allreduce_time, bus_factor, bytes_sent_per_rank, collective_time, cost_coefficients, crossover,
                    fit_alpha_beta, link_alpha_beta)
from .data_parallel import DistributedDataParallel, layer_costs, make_buckets, simulate_data_parallel
from .pipeline import bubble_fraction, pipeline_schedule, pipeline_step, simulate_pipeline
from .planner import DEVICES, Device, ModelSpec, plan
from .tensor_parallel import ColumnParallelLinear, RowParallelLinear, TensorParallelMLP
from .timeline import TaskGraph, Timeline
from .zero import ZeroOptimizer, memory_breakdown, zero_memory
from .launch import DistRunError, DistTimeoutError, MPIUnavailableError, RunResult, mpiexec_path, run
from .schedule import COLLECTIVES, DeadlockError, Schedule, ScheduleError, chunk_bounds
from .simulator import SimReport, execute, simulate
from .topology import LINK_TYPES, LinkType, Topology
from .units import format_bandwidth, format_bytes, format_time, gbps

__all__ = [name for name in dir() if not name.startswith("_")]
