"""Recurrent layers: RNNCell, LSTMCell and the sequence layers RNN and LSTM (PyTorch's parameter names).

A recurrent layer is a cell applied once per time step with the same weights: the Python loop *is*
the unrolled graph that tracing sees (lecture 03DataFlow: dynamic vs static graphs). The input
projection x·W_ihᵀ of every step is one matrix multiply up front; only h·W_hhᵀ stays in the loop.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..errors import ShapeError
from ..ops import stack
from ..registry import OPS as _OPS
from ..tensor import Tensor, apply
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["RNNCell", "LSTMCell", "RNN", "LSTM"]

_MATMUL, _PERMUTE = _OPS["matmul"], _OPS["permute"]


def _uniform_params(module: Module, hidden_size: int) -> None:
    """torch's recurrent init: every weight and bias U(±1/√hidden_size)."""
    k = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        init.uniform_(p, -k, k)


def _param(shape, dtype) -> Parameter:
    return Parameter(np.zeros(shape, (_dt.as_dtype(dtype) if dtype else _dt.default_float).np))


def _check_sizes(layer: str, input_size, hidden_size) -> None:
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{layer}: {name}={v!r} must be a positive int")


def _lstm_step(gates: Tensor, c: Tensor, H: int) -> tuple[Tensor, Tensor]:
    """Gate order i, f, g, o (as torch): c' = σ(f)·c + σ(i)·tanh(g); h' = σ(o)·tanh(c')."""
    i = gates[:, 0:H].sigmoid()
    f = gates[:, H:2 * H].sigmoid()
    g = gates[:, 2 * H:3 * H].tanh()
    o = gates[:, 3 * H:4 * H].sigmoid()
    c = f * c + i * g
    return o * c.tanh(), c


class RNNCell(Module):
    """h' = tanh(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", dtype=None):
        super().__init__()
        _check_sizes("RNNCell", input_size, hidden_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity={nonlinearity!r} must be 'tanh' or 'relu'")
        self.input_size, self.hidden_size, self.nonlinearity = int(input_size), int(hidden_size), nonlinearity
        self.weight_ih = _param((hidden_size, input_size), dtype)
        self.weight_hh = _param((hidden_size, hidden_size), dtype)
        if bias:
            self.bias_ih = _param((hidden_size,), dtype)
            self.bias_hh = _param((hidden_size,), dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        _uniform_params(self, hidden_size)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = _cell_input("RNNCell", input, self.input_size)
        h = _zeros_state(x, self.hidden_size) if hx is None else (hx.unsqueeze(0) if unbatched else hx)
        pre = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        h = pre.tanh() if self.nonlinearity == "tanh" else pre.relu()
        return h.squeeze(0) if unbatched else h

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTMCell(Module):
    """One LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__()
        _check_sizes("LSTMCell", input_size, hidden_size)
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.weight_ih = _param((4 * hidden_size, input_size), dtype)
        self.weight_hh = _param((4 * hidden_size, hidden_size), dtype)
        if bias:
            self.bias_ih = _param((4 * hidden_size,), dtype)
            self.bias_hh = _param((4 * hidden_size,), dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        _uniform_params(self, hidden_size)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        x, unbatched = _cell_input("LSTMCell", input, self.input_size)
        if hx is None:
            h = c = _zeros_state(x, self.hidden_size)
        else:
            h, c = hx
            if unbatched:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        h, c = _lstm_step(gates, c, self.hidden_size)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


def _cell_input(layer, input, input_size):
    if not isinstance(input, Tensor):
        raise TypeError(f"{layer}: input must be an aisys Tensor, got {type(input).__name__}")
    if input.ndim not in (1, 2) or input.shape[-1] != input_size:
        raise ShapeError(layer.lower(), f"{layer} expects input (N, {input_size}) or ({input_size},), got "
                         f"{tuple(input.shape)}", shapes=(input.shape,))
    return (input.unsqueeze(0), True) if input.ndim == 1 else (input, False)


def _zeros_state(x: Tensor, hidden: int) -> Tensor:
    return Tensor._wrap(np.zeros((x.shape[0], hidden), x._data.dtype))


class _RNNBase(Module):
    """Stacked recurrent layers with torch's parameter names weight_ih_l{k}, weight_hh_l{k}, bias_*_l{k}."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype=None):
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size, hidden_size)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"{name}: num_layers={num_layers!r} must be a positive int")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout={dropout} must be a probability in [0, 1]")
        if bidirectional:
            raise ValueError(f"{name}: bidirectional=True is not supported; run a second {name} on the reversed "
                             f"sequence and concatenate the outputs")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        G = self._gates * hidden_size
        for k in range(num_layers):
            fan_in = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", _param((G, fan_in), dtype))
            setattr(self, f"weight_hh_l{k}", _param((G, hidden_size), dtype))
            if bias:
                setattr(self, f"bias_ih_l{k}", _param((G,), dtype))
                setattr(self, f"bias_hh_l{k}", _param((G,), dtype))
        _uniform_params(self, hidden_size)

    def _layer(self, k):
        get = self._parameters.get
        return get(f"weight_ih_l{k}"), get(f"weight_hh_l{k}"), get(f"bias_ih_l{k}"), get(f"bias_hh_l{k}")

    def _prepare(self, input):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be an aisys Tensor, got {type(input).__name__}")
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
            raise ShapeError(name.lower(), f"{name} expects input {layout} or (L, H_in) with H_in={self.input_size}, "
                             f"got {tuple(input.shape)}", shapes=(input.shape,),
                             rule="batch_first=True means (batch, time, features)")
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)
        return x, unbatched

    def _initial(self, hx, x, unbatched, what="h_0"):
        N = x.shape[1]
        want = (self.num_layers, N, self.hidden_size)
        if hx is None:
            return [Tensor._wrap(np.zeros((N, self.hidden_size), x._data.dtype))] * self.num_layers
        if unbatched:
            hx = hx.unsqueeze(1)
        if tuple(hx.shape) != want:
            raise ShapeError(type(self).__name__.lower(), f"{what} must have shape {want if not unbatched else (want[0], want[2])}"
                             f", got {tuple(hx.shape)}", shapes=(hx.shape,))
        return [hx[k] for k in range(self.num_layers)]

    def _output(self, out, unbatched):
        """(L, N, H) -> the caller's layout."""
        if unbatched:
            return out.squeeze(1)
        return out.transpose(0, 1) if self.batch_first else out

    def _run(self, x, states, step):
        """Run every layer over time; ``step(xp_t, state, w_hh_t, b_hh, H)`` -> (h, new_state)."""
        H = self.hidden_size
        finals = []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer(k)
            xp = F.linear(x, w_ih, b_ih)                        # (L, N, G): every step's input projection at once
            w_hh_t = apply(_PERMUTE, w_hh, dims=(1, 0))
            state = states[k]
            outs = []
            for t in range(x.shape[0]):
                h, state = step(xp[t], state, w_hh_t, b_hh, H)
                outs.append(h)
            finals.append(state)
            x = stack(outs, 0)
            if self.dropout and self.training and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, finals

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        return s


class RNN(_RNNBase):
    """Elman RNN over a sequence: output (all hidden states) and h_n (the last one per layer)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity={nonlinearity!r} must be 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._prepare(input)
        states = self._initial(hx, x, unbatched)
        act = (lambda t: t.tanh()) if self.nonlinearity == "tanh" else (lambda t: t.relu())

        def step(xp, h, w_hh_t, b_hh, H):
            pre = xp + apply(_MATMUL, h, w_hh_t)
            if b_hh is not None:
                pre = pre + b_hh
            h = act(pre)
            return h, h

        out, finals = self._run(x, states, step)
        h_n = stack(finals, 0)
        return self._output(out, unbatched), (h_n.squeeze(1) if unbatched else h_n)


class LSTM(_RNNBase):
    """LSTM over a sequence: ``output, (h_n, c_n) = lstm(x, (h_0, c_0))`` with torch's shapes;
    ``batch_first=True`` takes and returns (N, L, H)."""

    _gates = 4

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        x, unbatched = self._prepare(input)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("LSTM: hx must be a pair (h_0, c_0) of tensors (num_layers, N, hidden_size)")
        hs = self._initial(None if hx is None else hx[0], x, unbatched, "h_0")
        cs = self._initial(None if hx is None else hx[1], x, unbatched, "c_0")

        def step(xp, state, w_hh_t, b_hh, H):
            h, c = state
            gates = xp + apply(_MATMUL, h, w_hh_t)
            if b_hh is not None:
                gates = gates + b_hh
            h, c = _lstm_step(gates, c, H)
            return h, (h, c)

        out, finals = self._run(x, list(zip(hs, cs)), step)
        h_n = stack([h for h, _ in finals], 0)
        c_n = stack([c for _, c in finals], 0)
        if unbatched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._output(out, unbatched), (h_n, c_n)
