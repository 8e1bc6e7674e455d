"""ZeRO (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", SC 2020):
shard the optimizer state, then the gradients, then the parameters across the data-parallel ranks.

Memory. Mixed-precision Adam keeps, per parameter, 2 bytes of fp16 weights, 2 bytes of fp16 gradients and
K = 12 bytes of fp32 optimizer state (a master copy of the weights, momentum and variance): 16Ψ bytes for Ψ
parameters. With N_d data-parallel ranks ZeRO stage 1 (P_os) divides the K·Ψ by N_d, stage 2 (P_os+g) the
gradients too, stage 3 (P_os+g+p) everything: (2+2+K)Ψ, (2+2)Ψ + KΨ/N_d, 2Ψ + (2+K)Ψ/N_d, (2+2+K)Ψ/N_d.
The paper's Figure 1: Ψ = 7.5 B, N_d = 64 gives 120, 31.4, 16.6 and 1.9 GB per device.

Training. :class:`ZeroOptimizer` runs the stages on real ranks with an ``aisys.optim`` optimizer on this
rank's shard: stage 1 all-reduces the gradients and keeps its slice, stages 2 and 3 reduce-scatter them
(each rank receives only the slice it updates); every stage all-gathers the updated parameters. Because a
ring all-reduce *is* a ring reduce-scatter followed by a ring all-gather, and Adam is elementwise, the three
stages give bit-for-bit the same parameters, and plain data parallelism's up to the rounding of its other
summation order (its buckets cut the gradients into other chunks).
"""
from __future__ import annotations

import numpy as np

from ..framework import optim
from ..framework.nn.module import Parameter
from ..framework.tensor import Tensor, no_grad
from .schedule import chunk_bounds

__all__ = ["zero_memory", "memory_breakdown", "ZeroOptimizer", "MEMORY_KINDS"]

MEMORY_KINDS = ("parameters", "gradients", "optimizer states", "activations")


def _check(params, ndevices, stage):
    if isinstance(params, bool) or not isinstance(params, (int, float, np.integer, np.floating)) or params < 0:
        raise ValueError(f"zero_memory: params must be a parameter count >= 0 (7.5e9 for 7.5 B), got {params!r}")
    if isinstance(ndevices, bool) or not isinstance(ndevices, (int, np.integer)) or ndevices < 1:
        raise ValueError(f"zero_memory: ndevices must be a positive integer, got {ndevices!r}")
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_memory: stage must be 0 (plain data parallel), 1, 2 or 3; got {stage!r}")


def memory_breakdown(params: float, ndevices: int, stage: int, *, param_bytes: float = 2, grad_bytes: float = 2,
                     optimizer_bytes: float = 12, activations: float = 0.0) -> dict[str, float]:
    """Bytes per device by kind (``MEMORY_KINDS``) under ZeRO ``stage`` (0 = no sharding)."""
    _check(params, ndevices, stage)
    n = float(ndevices)
    return {"parameters": params * param_bytes / (n if stage >= 3 else 1),
            "gradients": params * grad_bytes / (n if stage >= 2 else 1),
            "optimizer states": params * optimizer_bytes / (n if stage >= 1 else 1),
            "activations": float(activations)}


def zero_memory(params: float, ndevices: int, stage: int, *, param_bytes: float = 2, grad_bytes: float = 2,
                optimizer_bytes: float = 12) -> float:
    """Model-state bytes per device: ``zero_memory(7.5e9, 64, 1)`` = 31.4e9 (Adam, fp16 weights and gradients,
    fp32 optimizer state; see the module doc)."""
    return sum(memory_breakdown(params, ndevices, stage, param_bytes=param_bytes, grad_bytes=grad_bytes,
                                optimizer_bytes=optimizer_bytes).values())


class ZeroOptimizer:
    """ZeRO stage 1, 2 or 3 over ``comm``'s ranks for an aisys model (see the module doc).

    ``opt = ZeroOptimizer(model, comm, stage=2, optimizer="adam", lr=1e-3)``; each step: (stage 3:
    ``opt.gather_parameters()`` first), forward and ``loss.backward()`` on this rank's slice, then
    ``opt.step()``, which averages the gradients, updates this rank's shard and gathers the parameters.
    ``shard_elements`` is what this rank owns; ``memory()`` its model-state bytes by kind.
    """

    def __init__(self, module, comm, stage: int = 1, optimizer: str = "adam", algorithm: str = "ring", **hyper):
        if stage not in (1, 2, 3):
            raise ValueError(f"ZeroOptimizer: stage must be 1, 2 or 3 (plain data parallel is stage 0: use "
                             f"DistributedDataParallel); got {stage!r}")
        self.module, self.comm, self.stage, self.algorithm = module, comm, stage, algorithm
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("ZeroOptimizer: the model has no trainable parameters")
        dtypes = {p.numpy().dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"ZeroOptimizer: all parameters must share one dtype to be sharded as one flat "
                             f"vector; got {sorted(str(d) for d in dtypes)}")
        self.dtype = dtypes.pop()
        self.numel = sum(p.numpy().size for p in self.params)
        b = chunk_bounds(self.numel, comm.size)
        self.lo, self.hi = int(b[comm.rank]), int(b[comm.rank + 1])
        self.shard = Parameter(self._flat_params()[self.lo:self.hi].copy())
        classes = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD}
        if optimizer not in classes:
            raise ValueError(f"ZeroOptimizer: optimizer {optimizer!r} must be one of {sorted(classes)}")
        self.inner = classes[optimizer]([self.shard], **hyper)

    @property
    def shard_elements(self) -> int:
        return self.hi - self.lo

    def _flat_params(self) -> np.ndarray:
        return np.concatenate([p.numpy().reshape(-1) for p in self.params])

    def _write_params(self, flat: np.ndarray) -> None:
        off = 0
        with no_grad():
            for p in self.params:
                shape = tuple(p.shape)
                size = int(np.prod(shape)) if shape else 1
                p.copy_(flat[off:off + size].reshape(shape))
                off += size

    def gather_parameters(self) -> None:
        """Stage 3: all-gather the parameter shards into the model before the forward pass."""
        with self.comm.region("all-gather parameters", "comm", lane="comm"):
            self._write_params(self.comm.allgather(self.shard.numpy(), algorithm=self.algorithm, total=self.numel))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for p in self.params:
            if p.grad is None:
                raise ValueError(f"ZeroOptimizer: a parameter of shape {tuple(p.shape)} has no gradient on rank "
                                 f"{self.comm.rank}; run backward first")
        flat = np.concatenate([p.grad.numpy().reshape(-1) for p in self.params]).astype(self.dtype, copy=False)
        with self.comm.region("average gradients", "comm", lane="comm"):
            if self.stage == 1:
                g = self.comm.allreduce(flat, algorithm=self.algorithm)[self.lo:self.hi]
            else:
                g = self.comm.reduce_scatter(flat, algorithm=self.algorithm)
        self.shard.grad = Tensor(g / self.comm.size)
        with self.comm.region("optimizer step (shard)"):
            self.inner.step()
        with self.comm.region("all-gather parameters", "comm", lane="comm"):
            self._write_params(self.comm.allgather(self.shard.numpy(), algorithm=self.algorithm, total=self.numel))
        if self.stage >= 2:
            self.zero_grad()               # the full gradients are not kept

    def memory(self) -> dict[str, float]:
        """This rank's model-state bytes by kind, as ZeRO accounts them (fp16 = the model's own dtype here)."""
        item = np.dtype(self.dtype).itemsize
        state = sum(v.numpy().nbytes for st in self.inner.state.values() for v in st.values()
                    if isinstance(v, Tensor) and v.numpy().ndim)
        per = self.numel / self.comm.size
        return {"parameters": item * (per if self.stage >= 3 else self.numel),
                "gradients": item * (per if self.stage >= 2 else self.numel),
                "optimizer states": float(state), "activations": 0.0}
