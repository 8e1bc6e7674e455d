"""One training step (forward, loss, backward, SGD update) of three small models, three ways:
aisys eager, a hand-written numpy forward/backward (the floor for "numpy plus Python"), and PyTorch
CPU eager when torch is importable (the column is skipped otherwise; aisys never depends on torch).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train.py [--steps 30] [--rounds 7]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train.py --conv-kernels [--rounds 7]

Models: MLP 784-256-128-10 (batch 64, cross-entropy), LeNet-5 on 1×28×28 (batch 32, cross-entropy),
tiny MLP 2-16-16-1 (batch 32, MSE). All three implementations start from the same weights; the first
step's losses are compared before timing so the table never compares different computations.
Timings: per-step milliseconds, the median over ``rounds`` rounds of ``steps`` steps, the three
implementations interleaved round by round (so machine load hits them alike). Ratios come from this one run.
Targets (aisys / torch): MLP ≤ 1.0, LeNet ≤ 1.5, tiny MLP ≤ 0.5. Then the per-op overhead of recorded ops on
10×10 tensors (from bench_ops.py; target ≤ 2 µs over the numpy call). ``--conv-kernels`` instead times the
LeNet-5 step with aisys.kernels' conv2d kernels and with the references they replace (after / before). Run by
hand; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from numpy.lib.stride_tricks import as_strided

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import aisys                                   # noqa: E402
from aisys import nn                           # noqa: E402
from aisys.framework import optim              # noqa: E402

F = nn.functional
LR = 0.01

try:
    import torch
    torch.set_num_threads(1)
except ImportError:                            # the torch column is optional
    torch = None


# ---- the models' weights (torch layout: Linear (out, in), Conv2d (out, in, kh, kw)) -----------------
def init_weights(shapes, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        out[name] = (rng.uniform(-1, 1, shape) / np.sqrt(fan_in)).astype(np.float32)
    return out


def mlp_shapes(sizes):
    s = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        s += [(f"fc{i}.weight", (b, a)), (f"fc{i}.bias", (b,))]
    return s


LENET_SHAPES = [("conv1.weight", (6, 1, 5, 5)), ("conv1.bias", (6,)), ("conv2.weight", (16, 6, 5, 5)),
                ("conv2.bias", (16,)), ("fc1.weight", (120, 400)), ("fc1.bias", (120,)), ("fc2.weight", (84, 120)),
                ("fc2.bias", (84,)), ("fc3.weight", (10, 84)), ("fc3.bias", (10,))]


# ---- aisys --------------------------------------------------------------------------------------------
class AisysMLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class AisysLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def aisys_step_fn(kind, weights, x, y):
    model = AisysLeNet() if kind == "lenet" else AisysMLP(SIZES[kind])
    sd = model.state_dict()
    names = list(sd)
    model.load_state_dict({n: w for n, w in zip(names, weights.values())})
    opt = optim.SGD(model.parameters(), lr=LR)
    X, Y = aisys.tensor(x), aisys.tensor(y)
    loss_fn = F.mse_loss if kind == "tiny" else F.cross_entropy

    def step():
        loss = loss_fn(model(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.item())
    return step


# ---- hand-written numpy -------------------------------------------------------------------------------
def np_mlp_step_fn(kind, weights, x, y):
    W = [weights[k].copy() for k in weights]
    Ws, bs = W[0::2], W[1::2]
    n_layers = len(Ws)

    def step():
        acts, h = [x], x
        for i in range(n_layers):
            h = h @ Ws[i].T + bs[i]
            if i < n_layers - 1:
                h = np.maximum(h, 0)
            acts.append(h)
        if kind == "tiny":
            d = h - y
            loss = float((d * d).mean())
            g = d * (2.0 / d.size)
        else:
            z = h - h.max(1, keepdims=True)
            e = np.exp(z)
            p = e / e.sum(1, keepdims=True)
            loss = float(-np.log(p[np.arange(len(y)), y]).mean())
            g = p
            g[np.arange(len(y)), y] -= 1
            g /= len(y)
        for i in reversed(range(n_layers)):
            gw, gb = g.T @ acts[i], g.sum(0)
            if i:
                g = (g @ Ws[i]) * (acts[i] > 0)
            Ws[i] -= LR * gw
            bs[i] -= LR * gb
        return loss
    return step


def _im2col(x, k, pad):
    """Columns (C·k·k, N·OH·OW), one strided copy per kernel tap (the fast way to build them in numpy)."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    N, C, H, W = x.shape
    OH, OW = H - k + 1, W - k + 1
    cols = np.empty((C, k, k, N, OH, OW), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = x[:, :, i:i + OH, j:j + OW].transpose(1, 0, 2, 3)
    return cols.reshape(C * k * k, N * OH * OW), (N, OH, OW)


def _col2im(dcols, shape, k, pad):
    N, C, H, W = shape
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dcols.dtype)
    OH, OW = H + 2 * pad - k + 1, W + 2 * pad - k + 1
    d = dcols.reshape(C, k, k, N, OH, OW)
    for i in range(k):
        for j in range(k):
            xp[:, :, i:i + OH, j:j + OW] += d[:, i, j].transpose(1, 0, 2, 3)
    return xp[:, :, pad:pad + H, pad:pad + W]


def np_lenet_step_fn(kind, weights, x, y):
    P = {k: v.copy() for k, v in weights.items()}

    def conv(h, w, b, pad):
        cols, (N, OH, OW) = _im2col(h, w.shape[2], pad)
        out = w.reshape(w.shape[0], -1) @ cols + b[:, None]
        return np.ascontiguousarray(out.reshape(-1, N, OH, OW).transpose(1, 0, 2, 3)), cols

    def conv_back(g, cols, h_shape, w, pad, need_input_grad=True):
        O = g.shape[1]
        g2 = g.transpose(1, 0, 2, 3).reshape(O, -1)
        gw = (g2 @ cols.T).reshape(w.shape)
        gx = _col2im(w.reshape(O, -1).T @ g2, h_shape, w.shape[2], pad) if need_input_grad else None
        return gx, gw, g2.sum(1)

    def pool(h):
        """2×2 max pool: the max of four strided slices, and a mask of where it came from (ties are
        measure-zero for random floats, so the baseline does not break them)."""
        taps = [h[:, :, i::2, j::2] for i in range(2) for j in range(2)]
        out = np.maximum(np.maximum(taps[0], taps[1]), np.maximum(taps[2], taps[3]))
        return out, [t == out for t in taps]

    def pool_back(g, masks):
        N, C, H2, W2 = g.shape
        z = np.empty((N, C, 2 * H2, 2 * W2), g.dtype)
        for (i, j), m in zip(((0, 0), (0, 1), (1, 0), (1, 1)), masks):
            z[:, :, i::2, j::2] = g * m
        return z

    def step():
        c1, cols1 = conv(x, P["conv1.weight"], P["conv1.bias"], 2)
        r1 = np.maximum(c1, 0)
        p1, m1 = pool(r1)
        c2, cols2 = conv(p1, P["conv2.weight"], P["conv2.bias"], 0)
        r2 = np.maximum(c2, 0)
        p2, m2 = pool(r2)
        f = p2.reshape(len(x), -1)
        a1 = np.maximum(f @ P["fc1.weight"].T + P["fc1.bias"], 0)
        a2 = np.maximum(a1 @ P["fc2.weight"].T + P["fc2.bias"], 0)
        z = a2 @ P["fc3.weight"].T + P["fc3.bias"]
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(1, keepdims=True)
        loss = float(-np.log(p[np.arange(len(y)), y]).mean())
        g = p
        g[np.arange(len(y)), y] -= 1
        g /= len(y)
        grads = {"fc3.weight": g.T @ a2, "fc3.bias": g.sum(0)}
        g = (g @ P["fc3.weight"]) * (a2 > 0)
        grads.update({"fc2.weight": g.T @ a1, "fc2.bias": g.sum(0)})
        g = (g @ P["fc2.weight"]) * (a1 > 0)
        grads.update({"fc1.weight": g.T @ f, "fc1.bias": g.sum(0)})
        g = (g @ P["fc1.weight"]).reshape(p2.shape)
        g = pool_back(g, m2) * (c2 > 0)
        g, grads["conv2.weight"], grads["conv2.bias"] = conv_back(g, cols2, p1.shape, P["conv2.weight"], 0)
        g = pool_back(g, m1) * (c1 > 0)
        _, grads["conv1.weight"], grads["conv1.bias"] = conv_back(g, cols1, x.shape, P["conv1.weight"], 2, False)
        for k in P:
            P[k] -= LR * grads[k]
        return loss
    return step


# ---- PyTorch ----------------------------------------------------------------------------------------
def torch_step_fn(kind, weights, x, y):
    tnn = torch.nn
    if kind == "lenet":
        model = tnn.ModuleDict(dict(conv1=tnn.Conv2d(1, 6, 5, padding=2), conv2=tnn.Conv2d(6, 16, 5),
                                    fc1=tnn.Linear(400, 120), fc2=tnn.Linear(120, 84), fc3=tnn.Linear(84, 10)))
        tf = torch.nn.functional

        def fwd(X):
            h = tf.max_pool2d(tf.relu(model["conv1"](X)), 2)
            h = tf.max_pool2d(tf.relu(model["conv2"](h)), 2).flatten(1)
            return model["fc3"](tf.relu(model["fc2"](tf.relu(model["fc1"](h)))))
    else:
        sizes = SIZES[kind]
        model = tnn.ModuleDict({f"fc{i}": tnn.Linear(a, b) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))})
        n = len(sizes) - 1

        def fwd(X):
            for i in range(n):
                X = model[f"fc{i}"](X)
                if i < n - 1:
                    X = torch.relu(X)
            return X
    with torch.no_grad():
        for (name, p), w in zip(model.named_parameters(), weights.values()):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.functional.mse_loss if kind == "tiny" else torch.nn.functional.cross_entropy

    def step():
        loss = loss_fn(fwd(X), Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.item())
    return step


SIZES = {"mlp": (784, 256, 128, 10), "tiny": (2, 16, 16, 1)}
CASES = [("mlp", "MLP 784-256-128-10, batch 64", 64, 1.0),
         ("lenet", "LeNet-5 1x28x28, batch 32", 32, 1.5),
         ("tiny", "tiny MLP 2-16-16-1, batch 32", 32, 0.5)]


def make_inputs(kind, batch, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "lenet":
        return rng.standard_normal((batch, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, batch)
    if kind == "mlp":
        return rng.standard_normal((batch, 784)).astype(np.float32), rng.integers(0, 10, batch)
    return rng.standard_normal((batch, 2)).astype(np.float32), rng.standard_normal((batch, 1)).astype(np.float32)


def run(steps: int, rounds: int) -> list[dict]:
    rows = []
    for kind, label, batch, target in CASES:
        weights = init_weights(LENET_SHAPES if kind == "lenet" else mlp_shapes(SIZES[kind]))
        x, y = make_inputs(kind, batch)
        impls = {"numpy": (np_lenet_step_fn if kind == "lenet" else np_mlp_step_fn)(kind, weights, x, y),
                 "aisys": aisys_step_fn(kind, weights, x, y)}
        if torch is not None:
            impls["torch"] = torch_step_fn(kind, weights, x, y)
        first = {k: f() for k, f in impls.items()}          # same weights, same batch: same first loss
        ref = first["numpy"]
        for k, v in first.items():
            if abs(v - ref) > 1e-4 * max(1.0, abs(ref)):
                raise AssertionError(f"{label}: first-step loss of {k} is {v}, numpy gives {ref}")
        for f in impls.values():                              # warm up
            for _ in range(3):
                f()
        times = {k: [] for k in impls}
        for _ in range(rounds):
            for k, f in impls.items():
                t0 = time.perf_counter()
                for _ in range(steps):
                    f()
                times[k].append((time.perf_counter() - t0) / steps * 1e3)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(dict(label=label, target=target, **{f"{k}_ms": v for k, v in med.items()}))
    return rows


def table(rows: list[dict]) -> str:
    has_torch = any("torch_ms" in r for r in rows)
    head = f"{'training step':<32} {'numpy ms':>9} {'aisys ms':>9}"
    head += f" {'torch ms':>9}" if has_torch else ""
    head += f" {'aisys/numpy':>12}" + (f" {'aisys/torch':>12} {'target':>7}" if has_torch else "")
    lines = [head]
    for r in rows:
        s = f"{r['label']:<32} {r['numpy_ms']:9.3f} {r['aisys_ms']:9.3f}"
        if has_torch:
            s += f" {r['torch_ms']:9.3f}"
        s += f" {r['aisys_ms'] / r['numpy_ms']:12.2f}"
        if has_torch:
            ratio = r["aisys_ms"] / r["torch_ms"]
            s += f" {ratio:12.2f} {'≤' + format(r['target'], '.1f'):>7}{'' if ratio <= r['target'] else '  (missed)'}"
        lines.append(s)
    if not has_torch:
        lines.append("(torch is not installed: the torch column is skipped)")
    return "\n".join(lines)


def profile(steps: int) -> str:
    """Where an aisys step's time goes: numpy time inside each op's reference implementation (the forward)
    and inside each op's numpy VJP twin (``vjp_np``, the plain backward), summed per op,
    versus everything else (shape inference, tape records, the backward sweep, the optimizer, Python glue)."""
    from aisys.framework.registry import OPS
    spent: dict[str, float] = {}
    originals = {name: (op.eager, op.vjp_np) for name, op in OPS.items()}

    def timed(key, fn):
        def run(*args, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0
        return run

    lines = []
    try:
        for name, op in OPS.items():
            op.eager = timed(name, op.eager)          # what eager calls: the reference (no kernels registered)
            if op.vjp_np is not None:
                op.vjp_np = timed(name + " (backward)", op.vjp_np)
        for kind, label, batch, _ in CASES:
            step = aisys_step_fn(kind, init_weights(LENET_SHAPES if kind == "lenet" else mlp_shapes(SIZES[kind])),
                                 *make_inputs(kind, batch))
            for _ in range(3):
                step()
            spent.clear()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            total = (time.perf_counter() - t0) / steps * 1e3
            fwd = sum(v for k, v in spent.items() if not k.endswith("(backward)")) / steps * 1e3
            bwd = sum(v for k, v in spent.items() if k.endswith("(backward)")) / steps * 1e3
            top = sorted(spent.items(), key=lambda kv: -kv[1])[:8]
            lines.append(f"{label}: {total:.3f} ms per step = {fwd:.3f} ms numpy forward + {bwd:.3f} ms numpy "
                         f"backward + {total - fwd - bwd:.3f} ms framework and optimizer")
            lines.append("    " + ", ".join(f"{k} {v / steps * 1e3:.3f}" for k, v in top))
    finally:
        for name, op in OPS.items():
            op.eager, op.vjp_np = originals[name]
    return "\n".join(lines)


def op_overhead_table() -> str:
    """The recorded (requires_grad=True) rows of bench_ops.py, against the ≤ 2 µs target."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_ops
    lines = [f"recorded op on 10×10 float32   {'aisys µs':>9} {'numpy µs':>9} {'overhead µs':>12}  target"]
    for r in bench_ops.measure():
        if r["requires_grad"]:
            ok = r["overhead_us"] <= 2.0
            lines.append(f"{r['op']:<30} {r['aisys_us']:9.2f} {r['numpy_us']:9.2f} {r['overhead_us']:12.2f}  "
                         f"≤2.0{'' if ok else '  (missed)'}")
    return "\n".join(lines)


def lenet_with_and_without_conv_kernels(repeat: int = 7) -> str:
    """The LeNet-5 step (batch 32) with aisys.kernels' conv2d kernels registered ("after") and with the dispatcher
    falling back to the registry's references ("before"), interleaved in one run (best of ``repeat``, in CPU
    time: one thread, and on a shared machine wall time also counts other processes' turns on the core)."""
    import timeit
    from aisys.framework.dispatch import DISPATCHER
    from aisys.framework.registry import get as get_op
    from aisys.kernels import conv  # noqa: F401  (registers the kernels now: eager loads them on first use)
    x, y = make_inputs("lenet", 32)
    step = aisys_step_fn("lenet", init_weights(LENET_SHAPES), x, y)
    ops = ("conv2d", "conv2d_backward_input", "conv2d_backward_weight")
    saved = {op: dict(get_op(op).kernels) for op in ops}
    assert all(saved.values()), "the conv2d kernels are not registered"

    def without_kernels():
        for op in ops:
            for key in list(saved[op]):
                DISPATCHER.unregister(op, *key)
        try:
            step()
        finally:
            for op in ops:
                for (dev, dt, lay), k in saved[op].items():
                    DISPATCHER.register(op, dev, dt, lay, k.name)(k.fn)

    fns = {"with": step, "without": without_kernels}
    for fn in fns.values():
        fn()                                               # warm up (numba compiles or loads its cache)
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):                                # alternate, so machine load hits both alike
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.Timer(fn, timer=time.process_time).timeit(number=10) / 10)
    with_k, without = best["with"], best["without"]
    return (f"LeNet-5 training step, batch 32: {with_k * 1e3:.2f} ms with the conv kernels, {without * 1e3:.2f} ms "
            f"with the references: after / before = {with_k / without:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="also print where aisys's step time goes, per op")
    ap.add_argument("--conv-kernels", action="store_true",
                    help="only the LeNet-5 step with aisys.kernels' conv2d kernels vs the references (after/before)")
    a = ap.parse_args(argv)
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else '-'}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, SGD lr={LR}")
    if a.conv_kernels:
        print(lenet_with_and_without_conv_kernels(a.rounds))
        return
    print(table(run(a.steps, a.rounds)))
    print()
    print(op_overhead_table())
    if a.profile:
        print(profile(a.steps))


if __name__ == "__main__":
    main()
