"""Small programs shared by the frontend tests: an MLP, a LeNet-like CNN, the lecture's RNN cell."""
from __future__ import annotations

import numpy as np

import aisys
from aisys.framework.tensor import apply


class TinyModule:
    """The least a module needs for tracing to name its state: ``named_parameters`` (and buffers)."""

    def __init__(self, **params):
        self._params = params

    def named_parameters(self):
        return list(self._params.items())

    def __getattr__(self, name):
        try:
            return self.__dict__["_params"][name]
        except KeyError:
            raise AttributeError(name) from None


class MLP(TinyModule):
    """Linear layers with ReLU between them, written so that trace and script can both read it."""

    def __init__(self, sizes=(6, 8, 3), seed=0):
        aisys.manual_seed(seed)
        ps = {}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            ps[f"fc{i}.weight"] = aisys.randn(a, b, requires_grad=True)
            ps[f"fc{i}.bias"] = aisys.zeros(b, requires_grad=True)
        super().__init__(**ps)
        self.__dict__["depth"] = len(sizes) - 1
        self.__dict__["weights"] = [ps[f"fc{i}.weight"] for i in range(self.depth)]
        self.__dict__["biases"] = [ps[f"fc{i}.bias"] for i in range(self.depth)]

    def parameters(self):
        return [t for _, t in self.named_parameters()]

    def forward(self, x):
        for i in range(self.depth):
            x = x @ self.weights[i] + self.biases[i]
            if i < self.depth - 1:
                x = x.relu()
        return x

    def __call__(self, x):
        return self.forward(x)


class LeNetish(TinyModule):
    """conv → relu → maxpool → conv → relu → flatten → linear, on 1×10×10 images."""

    def __init__(self, seed=0):
        aisys.manual_seed(seed)
        super().__init__(**{"conv1.weight": aisys.randn(4, 1, 3, 3, requires_grad=True),
                            "conv1.bias": aisys.zeros(4, requires_grad=True),
                            "conv2.weight": aisys.randn(6, 4, 2, 2, requires_grad=True),
                            "fc.weight": aisys.randn(6 * 3 * 3, 5, requires_grad=True)})

    def __call__(self, x):
        conv = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
        h = apply("conv2d", x, self._params["conv1.weight"], self._params["conv1.bias"], **conv).relu()
        h = apply("max_pool2d", h, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1))
        h = apply("conv2d", h, self._params["conv2.weight"], **conv).relu()
        return h.flatten(1) @ self._params["fc.weight"]


def sgd_step(params, lr=0.1):
    """Plain SGD the way optimizers must do it for tracing: ``p.assign_(new)`` under no_grad."""
    with aisys.no_grad():
        for p in params:
            p.assign_(p - lr * p.grad)
            p.grad = None


W_h, W_x = (aisys.tensor(np.random.default_rng(3).standard_normal(s).astype(np.float32)) for s in [(4, 4), (4, 3)])


def rnn_cell(x, prev_h):
    """The RNN cell of ZOMI's 03DataFlow/06StaticGraph: the input term is added only when the hidden
    pre-activation sums to a positive number, so the branch depends on the data."""
    h2h = W_h @ prev_h.T
    if h2h.sum() > 0:
        i2h = W_x @ x.T
        h2h = h2h + i2h
    next_h = h2h.tanh()
    return next_h


def rnn_inputs(seed=0):
    """x (1×3) and a prev_h (1×4) for which the branch is taken; -prev_h takes the other one."""
    rng = np.random.default_rng(seed)
    x = aisys.tensor(rng.standard_normal((1, 3)).astype(np.float32))
    h = rng.standard_normal((1, 4)).astype(np.float32)
    if (W_h.numpy() @ h.T).sum() <= 0:
        h = -h
    return x, aisys.tensor(h)
