"""Seeded buffer sets to test and compare planners on (the same sets for tests, benchmarks and labs)."""
from __future__ import annotations

import random

from .records import Buffer


def random_buffers(n: int, seed: int, steps: int | None = None, max_life: int | None = None,
                   quantum: int = 64) -> list[Buffer]:
    """``n`` buffers with random live intervals over ``steps`` steps and sizes that are multiples of
    ``quantum`` spread over three orders of magnitude (like a network's mix of small vectors and
    large activations). The same (n, seed, ...) always gives the same set."""
    r = random.Random(seed)
    steps = steps or n
    max_life = max_life or max(2, steps // 4)
    out = []
    for i in range(n):
        start = r.randrange(steps)
        end = min(steps - 1, start + r.randrange(1, max_life + 1))
        size = r.choice((1, 2, 4, 8, 16)) * r.randrange(1, 64) * quantum
        out.append(Buffer(f"t{i}", size, start, end, op=f"op{start}"))
    return out


def chain_buffers(sizes, skip: int = 0) -> list[Buffer]:
    """A straight-line network: tensor i is made at step i and read at step i+1 (and at step
    i+1+skip when ``skip`` > 0, like a residual connection). The last tensor is the output."""
    n = len(sizes)
    out = []
    for i, s in enumerate(sizes):
        end = min(n - 1, i + 1 + skip) if i < n - 1 else n - 1
        out.append(Buffer(f"a{i}", int(s), i, end, op=f"layer{i}", kind="output" if i == n - 1 else "activation"))
    return out


def mlp_graph(batch: int = 32, sizes=(784, 256, 128, 10), seed: int = 0, name: str = "mlp"):
    """An inference MLP as a graph: (matmul, add bias, relu) per layer, no relu after the last."""
    import numpy as np

    import aisys.framework.ops  # noqa: F401  (fills the op registry)
    from aisys.framework.graph import Graph

    rng = np.random.default_rng(seed)
    g = Graph(name)
    h = g.add_input("x", (batch, sizes[0])).id
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = g.add_param(f"w{k}", (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32))
        b = g.add_param(f"b{k}", np.zeros(fan_out, np.float32))
        h = g.add("matmul", [h, w.id]).id
        h = g.add("add", [h, b.id]).id
        if k < len(sizes) - 2:
            h = g.add("relu", [h]).id
    g.set_outputs([h])
    return g


def random_graph(seed: int, n_ops: int = 20, batch: int = 4, width: int = 8, name: str | None = None):
    """A random DAG of registry ops over a few shapes ((B,W), (B,1), (W,B), (B,B)), with branches,
    broadcasting, reductions, dead code and 1–3 outputs — for checking planners and the arena
    executor against the interpreter. Values stay bounded (tanh/sigmoid/relu, scaled weights)."""
    import numpy as np

    import aisys.framework.ops  # noqa: F401
    from aisys.framework.graph import Graph

    r = random.Random(seed)
    rng = np.random.default_rng(seed)
    g = Graph(name or f"random{seed}")
    B, W = batch, width
    pool: dict[tuple, list[int]] = {(B, W): [g.add_input("x", (B, W)).id]}
    if r.random() < 0.5:
        pool[(B, W)].append(g.add_input("y", (B, W)).id)
    weight = g.add_param("w", (rng.standard_normal((W, W)) / np.sqrt(W)).astype(np.float32)).id

    def pick(shape):
        return r.choice(pool[shape][-6:])           # prefer recent values: realistic, chain-like lifetimes

    def put(node):
        pool.setdefault(tuple(node.shape), []).append(node.id)

    for _ in range(n_ops):
        shapes = list(pool)
        kind = r.choice(["unary", "unary", "binary", "binary", "matmul", "reduce", "transpose", "bcast"])
        if kind == "unary":
            s = r.choice(shapes)
            put(g.add(r.choice(["relu", "tanh", "neg", "sigmoid"]), [pick(s)]))
        elif kind == "binary":
            s = r.choice(shapes)
            put(g.add(r.choice(["add", "mul", "sub", "maximum"]), [pick(s), pick(s)]))
        elif kind == "matmul":
            if (W, B) in pool and r.random() < 0.5:
                put(g.add("matmul", [pick((B, W)), pick((W, B))]))      # -> (B, B)
            elif (B, B) in pool and r.random() < 0.5:
                put(g.add("matmul", [pick((B, B)), pick((B, W))]))      # -> (B, W)
            else:
                put(g.add("matmul", [pick((B, W)), weight]))
        elif kind == "reduce":
            put(g.add(r.choice(["sum", "mean"]), [pick((B, W))], {"dim": 1, "keepdim": True}))
        elif kind == "transpose":
            put(g.add("permute", [pick((B, W))], {"dims": (1, 0)}))
        else:
            if (B, 1) in pool:
                put(g.add(r.choice(["add", "mul"]), [pick((B, W)), pick((B, 1))]))
            else:
                put(g.add("tanh", [pick((B, W))]))
    ops = [n.id for n in g.op_nodes] or pool[(B, W)][:1]
    outs = sorted(set(r.sample(ops[-8:], k=min(len(ops[-8:]), r.randint(1, 3)))))
    g.set_outputs(outs)
    return g


def deep_training_graph(layers: int = 16, width: int = 32, batch: int = 512, seed: int = 0):
    """One traced training step of a deep tanh MLP (``layers`` square layers, mean-square loss):
    the joint forward + backward graph, with each weight's gradient as an output. Activations
    (batch × width) dominate the weights (width × width) when batch > width, as in real training."""
    import numpy as np

    from aisys.framework.factories import tensor
    from aisys.frontend import trace

    rng = np.random.default_rng(seed)
    params = {f"w{k}": tensor((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32),
                                    requires_grad=True) for k in range(layers)}

    def train_step(x):
        h = x
        for k in range(layers):
            h = (h @ params[f"w{k}"]).tanh()
        loss = (h * h).mean()
        loss.backward()
        return [loss] + [params[name].grad for name in params]

    x = rng.standard_normal((batch, width)).astype(np.float32)
    return trace(train_step, x, params=params, name=f"train_mlp{layers}")


def lenet_training_graph(batch: int = 32, seed: int = 0):
    """One traced training step of LeNet-5 (LeCun et al. 1998 layout: conv 6@5×5, pool, conv 16@5×5,
    pool, fc 120, fc 84, fc 10; ReLU) on 1×28×28 inputs padded to 32×32, softmax cross-entropy."""
    import numpy as np

    from aisys.framework.ops import log_softmax
    from aisys.framework.factories import tensor
    from aisys.framework.tensor import apply
    from aisys.frontend import trace

    rng = np.random.default_rng(seed)

    def weight(*shape):
        fan_in = int(np.prod(shape[1:]))
        return tensor((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), requires_grad=True)

    params = {"c1": weight(6, 1, 5, 5), "c2": weight(16, 6, 5, 5), "f1": weight(400, 120),
              "f2": weight(120, 84), "f3": weight(84, 10)}
    conv = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    pool = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))

    def train_step(x, y):
        h = apply("conv2d", x, params["c1"], **conv).relu()
        h = apply("max_pool2d", h, **pool)
        h = apply("conv2d", h, params["c2"], **conv).relu()
        h = apply("max_pool2d", h, **pool).reshape((x.shape[0], 400))
        h = (h @ params["f1"]).relu()
        h = (h @ params["f2"]).relu()
        logits = h @ params["f3"]
        loss = -(log_softmax(logits, 1) * y).sum() / float(x.shape[0])
        loss.backward()
        return [loss] + [params[k].grad for k in params]

    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return trace(train_step, x, y, params=params, name="train_lenet")


def transformer_block_training_graph(batch: int = 4, seq: int = 64, dim: int = 64, heads: int = 4, seed: int = 0):
    """One traced training step of a pre-norm transformer block (attention + 4× GELU MLP, residuals),
    mean-square loss on its output."""
    import numpy as np

    from aisys.framework.ops import gelu, softmax
    from aisys.framework.factories import tensor
    from aisys.framework.tensor import apply
    from aisys.frontend import trace

    rng = np.random.default_rng(seed)

    def weight(*shape):
        return tensor((rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32), requires_grad=True)

    params = {"qkv": weight(dim, 3 * dim), "proj": weight(dim, dim), "up": weight(dim, 4 * dim),
              "down": weight(4 * dim, dim)}
    hd = dim // heads

    def split_heads(t):
        return t.reshape((batch, seq, heads, hd)).permute((0, 2, 1, 3))

    def train_step(x):
        h = apply("layer_norm", x, normalized_shape=(dim,), eps=1e-5)
        qkv = h @ params["qkv"]
        q, k, v = (split_heads(qkv[:, :, i * dim:(i + 1) * dim]) for i in range(3))
        att = softmax((q @ k.permute((0, 1, 3, 2))) * (1.0 / float(np.sqrt(hd))), -1)
        o = (att @ v).permute((0, 2, 1, 3)).reshape((batch, seq, dim))
        x = x + o @ params["proj"]
        h = apply("layer_norm", x, normalized_shape=(dim,), eps=1e-5)
        x = x + gelu(h @ params["up"]) @ params["down"]
        loss = (x * x).mean()
        loss.backward()
        return [loss] + [params[k].grad for k in params]

    x = rng.standard_normal((batch, seq, dim)).astype(np.float32)
    return trace(train_step, x, params=params, name="train_transformer_block")


def sgd_mlp_step(layers: int = 16, width: int = 32, batch: int = 64, seed: int = 0):
    """``(step, x, y, model)``: an eager SGD training step of ``nn.Sequential`` of ``layers`` × (Linear(width,
    width), ReLU) with mean square loss, and a seeded batch. Two calls with the same arguments build two
    models with the same weights (one to run eagerly, one to compile)."""
    import numpy as np

    from aisys.framework import nn, optim
    from aisys.framework.tensor import Tensor

    rng = np.random.default_rng(seed)
    mods = []
    for _ in range(layers):
        lin = nn.Linear(width, width)
        lin.weight._data[...] = rng.standard_normal(lin.weight.shape).astype(np.float32) / np.sqrt(width)
        lin.bias._data[...] = 0.0
        mods += [lin, nn.ReLU()]
    model = nn.Sequential(*mods)
    opt = optim.SGD(model.parameters(), lr=0.01)

    def step(x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    x = Tensor(rng.standard_normal((batch, width)).astype(np.float32))
    y = Tensor(rng.standard_normal((batch, width)).astype(np.float32))
    return step, x, y, model


def sgd_training_graph(layers: int = 16, width: int = 32, batch: int = 64, seed: int = 0):
    """One traced SGD training step of :func:`sgd_mlp_step`: forward, backward and every parameter update in
    one graph (17 ops per layer: 76 ops at 4 layers, 1,096 at 64, 4,360 at 256). The graph the
    compiler-at-scale benchmark and tests grow."""
    from aisys.frontend import trace

    step, x, y, model = sgd_mlp_step(layers, width, batch, seed)
    return trace(step, x, y, params=model, name=f"sgd_mlp{layers}")
