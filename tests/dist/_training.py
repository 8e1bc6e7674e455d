"""Shared by the parallel-training tests: a float64 digits MLP, its data, and per-rank training functions
that run unchanged on simulated ranks (in-process) and on real MPI ranks (tests/dist/test_mpi.py)."""
from __future__ import annotations

import numpy as np

import aisys
import aisys.nn.functional as F
from aisys import nn

STEPS = 3
BATCH = 64


def make_mlp(seed: int = 0, dtype=aisys.float64):
    rng = np.random.default_rng(seed)
    m = nn.Sequential(nn.Linear(64, 32, dtype=dtype), nn.ReLU(), nn.Linear(32, 16, dtype=dtype),
                      nn.ReLU(), nn.Linear(16, 10, dtype=dtype))
    with aisys.no_grad():
        for p in m.parameters():
            p.copy_(rng.standard_normal(tuple(p.shape)) * 0.3)
    return m


def digits_batch(dtype=np.float64):
    from aisys.models.datasets import digits_arrays
    x, y = digits_arrays("train")
    return x[:BATCH].reshape(BATCH, -1).astype(dtype), y[:BATCH]


def flat(model) -> np.ndarray:
    return np.concatenate([p.numpy().ravel() for p in model.parameters()])


def single_process(steps: int = STEPS, float32: bool = False) -> np.ndarray:
    """The reference: one process, the whole batch, Adam."""
    x, y = digits_batch(np.float32 if float32 else np.float64)
    m = make_mlp(dtype=aisys.float32 if float32 else aisys.float64)
    opt = aisys.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(steps):
        F.cross_entropy(m(aisys.tensor(x)), aisys.tensor(y)).backward()
        opt.step()
        opt.zero_grad()
    return flat(m)


def data_parallel(comm, mode: str = "plain", steps: int = STEPS, bucket_mb: float = 0.004, float32: bool = False):
    """Each rank trains on its slice of the batch: mode 'plain', 'overlap' (DDP) or 'zero1'/'zero2'/'zero3'."""
    from aisys.dist.data_parallel import DistributedDataParallel
    from aisys.dist.zero import ZeroOptimizer
    x, y = digits_batch(np.float32 if float32 else np.float64)
    k = BATCH // comm.size
    xs = aisys.tensor(x[comm.rank * k:(comm.rank + 1) * k])
    ys = aisys.tensor(y[comm.rank * k:(comm.rank + 1) * k])
    m = make_mlp(dtype=aisys.float32 if float32 else aisys.float64)
    if mode.startswith("zero"):
        opt = ZeroOptimizer(m, comm, stage=int(mode[-1]), lr=1e-2)
        for _ in range(steps):
            if opt.stage == 3:
                opt.gather_parameters()
            F.cross_entropy(m(xs), ys).backward()
            opt.step()
            opt.zero_grad()
        return flat(m), opt.shard_elements
    ddp = DistributedDataParallel(m, comm, bucket_cap_mb=bucket_mb, overlap=(mode == "overlap"))
    opt = aisys.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(steps):
        ddp.backward(xs, ys, F.cross_entropy)
        opt.step()
        opt.zero_grad()
    return flat(m), len(ddp.buckets)


def tp_weights():
    rng = np.random.default_rng(1)
    return (rng.standard_normal((24, 8)), rng.standard_normal(24), rng.standard_normal((6, 24)),
            rng.standard_normal(6), rng.standard_normal((5, 8)))


def tensor_parallel(comm):
    """The tensor-parallel MLP's output, all-reduces in the forward, and gradients of this rank's shards."""
    from aisys.dist.tensor_parallel import TensorParallelMLP
    w1, b1, w2, b2, x = tp_weights()
    mlp = TensorParallelMLP.from_arrays(comm, w1, b1, w2, b2)
    xt = aisys.tensor(x, requires_grad=True)
    before = comm.calls
    y = mlp(xt)
    forward_collectives = comm.calls - before
    (y * y).sum().backward()
    return dict(y=y.numpy(), calls=forward_collectives, g1=mlp.fc1.weight.grad.numpy(), rows=mlp.fc1.rows,
                gb1=mlp.fc1.bias.grad.numpy(), g2=mlp.fc2.weight.grad.numpy(), cols=mlp.fc2.cols,
                gb2=mlp.bias.grad.numpy(), gx=mlp.sync_input_grad(xt))


def tensor_reference():
    w1, b1, w2, b2, x = tp_weights()
    fc1, fc2 = nn.Linear(8, 24, dtype=aisys.float64), nn.Linear(24, 6, dtype=aisys.float64)
    with aisys.no_grad():
        fc1.weight.copy_(w1), fc1.bias.copy_(b1), fc2.weight.copy_(w2), fc2.bias.copy_(b2)
    xt = aisys.tensor(x, requires_grad=True)
    y = fc2(F.gelu(fc1(xt)))
    (y * y).sum().backward()
    return dict(y=y.numpy(), g1=fc1.weight.grad.numpy(), gb1=fc1.bias.grad.numpy(), g2=fc2.weight.grad.numpy(),
                gb2=fc2.bias.grad.numpy(), gx=xt.grad.numpy())


def check_tensor_parallel(results, ref):
    for r, res in enumerate(results):
        assert res["calls"] == 1, f"rank {r}: {res['calls']} collectives in the forward pass, expected exactly 1"
        (a, b), (c, d) = res["rows"], res["cols"]
        for got, want in ((res["y"], ref["y"]), (res["g1"], ref["g1"][a:b]), (res["gb1"], ref["gb1"][a:b]),
                          (res["g2"], ref["g2"][:, c:d]), (res["gb2"], ref["gb2"]), (res["gx"], ref["gx"])):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


PP_X = np.random.default_rng(3).standard_normal((8, 8))
PP_Y = np.random.default_rng(4).integers(0, 8, 8)


def pp_layers():
    rng = np.random.default_rng(2)
    layers = [nn.Linear(8, 8, dtype=aisys.float64) for _ in range(4)]
    with aisys.no_grad():
        for layer in layers:
            for p in layer.parameters():
                p.copy_(rng.standard_normal(tuple(p.shape)) * 0.5)
    return layers


def pipeline(comm, kind: str):
    from aisys.dist.pipeline import pipeline_step
    per = 4 // comm.size
    layers = pp_layers()[comm.rank * per:(comm.rank + 1) * per]
    stage = nn.Sequential(*[m for layer in layers for m in (layer, nn.Tanh())])
    loss = pipeline_step(comm, stage, aisys.tensor(PP_X) if comm.rank == 0 else None,
                         aisys.tensor(PP_Y) if comm.rank == comm.size - 1 else None, F.cross_entropy,
                         micro_batches=4, kind=kind)
    return loss, [p.grad.numpy() for p in stage.parameters()]


def pipeline_reference():
    full = nn.Sequential(*[m for layer in pp_layers() for m in (layer, nn.Tanh())])
    loss = F.cross_entropy(full(aisys.tensor(PP_X)), aisys.tensor(PP_Y))
    loss.backward()
    return float(loss.numpy()), [p.grad.numpy() for p in full.parameters()]


def check_pipeline(results, ref):
    loss, grads = ref
    assert results[-1][0] == np.float64(loss) or abs(results[-1][0] - loss) <= 1e-12 * abs(loss)
    got = [g for res in results for g in res[1]]
    assert len(got) == len(grads)
    for a, b in zip(got, grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
